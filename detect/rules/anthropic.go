package rules

// Anthropic: API keys, admin keys and OAuth/session tokens. Keys have a
// fixed body length and end in AA.
func anthropic() []Rule {
	return []Rule{
		prefixed("anthropic-api-key", "Anthropic API key (sk-ant-api03-)", KEY, []string{"sk-ant-api03-"},
			`[A-Za-z0-9_-]{93}AA`, 108,
			[]Sample{
				envSample("ANTHROPIC_API_KEY", "sk-ant-api03-hSvQO9VObGo0oBTpogcS0O88nunEcj1yRTcH5LZIheE6fh5xbLWroaRuuIntO5ZgGwVNJ4_ZQG41dpwoEsvN6vYegAqy9AA"),
				textSample("client = anthropic.Anthropic(api_key=\"", "sk-ant-api03-RJmpyZ53v6Fg7d5cic5EjMIb-r90_xrGkAd-WiWUzVMg1rHlPg-g1JyfSXuO8NKiItQFwWkr_FFuvjxidcS6RJqBfhIy7AA", "\")\n"),
				textSample("curl https://api.anthropic.com/v1/messages -H \"x-api-key: ", "sk-ant-api03-eg2TtGEV4Oei91nLDKWKuJSrJH0rUpbeV1s4BumxOMa9jDBBXrh9Jy6gGqhRWnuLG0FA7sJAHW0uYtnP4CW5D4fWapFlGAA", "\"\n"),
			},
			[]string{
				"ANTHROPIC_API_KEY=sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxAA\n",
				"ANTHROPIC_API_KEY=sk-ant-api03-VA_E478K9s0k5GUenXnVJEnt5nV12rGGijBrLCq1ybJ-YU-NO5wvaoAlkEV42aACVua90ew74IjBdecEC-rx_3YfmtlBXAB\n",
				"ANTHROPIC_API_KEY=sk-ant-api03-VqHfkKSwNmOWTkti4LD3manNK8F4GSga792bLxH1AA\n",
				"ANTHROPIC_API_KEY=sk-ant-api03-...\n",
			}),
		prefixed("anthropic-admin-key", "Anthropic admin API key (sk-ant-admin01-)", KEY, []string{"sk-ant-admin01-"},
			`[A-Za-z0-9_-]{93}AA`, 110,
			[]Sample{
				envSample("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-_Ek9WEDjAYcMoK6VVJYdT8ICsQyALgd5e3tBi4kdqqjUtYkLYXeMHXyW9Q1w_JbV113Y86HESFXvkW2b__DkgEIsLZetOAA"),
				jsonSample("adminKey", "sk-ant-admin01-Dj-hDSVO5SwGYdWSyVgYzXcj75JmM27Ql7I6_dWRWsiug0pGuKnABEh3KMUQQYDLCS4Hvs8Q10YBWCVzp0XV_c9lH3n_yAA"),
			},
			[]string{
				"ANTHROPIC_ADMIN_KEY=sk-ant-admin01-<admin-key>\n",
				"ANTHROPIC_ADMIN_KEY=sk-ant-admin01-IACMSp_6nB6lxLhEWp-2taHvQuFIONlpRnnoyks-yMA8BATtMFwPJ2jcDiUZiX4dIrFTKkVvFET55_nD89Mlmo6qORR2q\n",
			}),
		prefixed("anthropic-oauth-token", "Anthropic OAuth access, refresh or session token (sk-ant-oat01-, sk-ant-ort01-, sk-ant-sid01-)", TOKEN,
			[]string{"sk-ant-oat", "sk-ant-ort", "sk-ant-sid"},
			`\d\d-[A-Za-z0-9_-]{80,120}AA`, 140,
			[]Sample{
				envSample("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-FcigjhIrdwwSyP7UtKLm0J7UzszevE5HjfI4w2cppc6otOoPy3BBuR8xavPRRQyXuRx4TmYeYXgOptleyhHHpi8gl1l-1AA"),
				jsonSample("refreshToken", "sk-ant-ort01-_Q98eSXPAEE9Of7FPufGQNVTTH8QNd4JsdUIblIlwG_fwreDLMkJXnXPVgSRKPQPkMZWBVKhK-t6MybAI951WNxZfb5d4AA"),
			},
			[]string{
				"CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-...\n",
				"token: sk-ant-oat01-W1W61DEuta4RSt4WdroUwvuvTyGtZhAA\n",
			}),
	}
}
