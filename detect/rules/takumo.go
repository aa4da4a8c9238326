package rules

// Takumo's own credentials: API keys (tk_live_ / tk_test_ + 64 lowercase
// hex) and coordinator join keys (jk_ + random). Tokens that Takumo puts in
// place of secrets (__TAKUMO_v1_…__) are not secrets and match no rule.
func takumo() []Rule {
	return []Rule{
		prefixed("takumo-api-key", "Takumo API key (tk_live_, tk_test_ + 64 hex)", KEY, []string{"tk_live_", "tk_test_"},
			`[0-9a-f]{64}`, 72,
			[]Sample{
				envSample("TAKUMO_API_KEY", "tk_live_369d12431b29d527685c9b42f7aa82b66e8558266c589e127b91a29527b4aa1c"),
				textSample("export ANTHROPIC_BASE_URL=https://aegis.acme.io\nexport ANTHROPIC_API_KEY=", "tk_test_aba4fc10e2e00cc3c9db8370c85146953bbcbd91f31172c4703cae04fbbbfe4c", "\n"),
			},
			[]string{
				"TAKUMO_API_KEY=tk_live_a1b2c3d4e5f6...\n",
				"TAKUMO_API_KEY=tk_live_de267865061d07575987896e28e3c74c\n",
				"TAKUMO_API_KEY=tk_live_A9A7D8355A8E219AB6B0A4911240A17582FDEB64779C51F1A822F0FBFBF91C53\n",
				"key: __TAKUMO_v1_KEY_8f3a2b1c__\n",
			}),
		prefixed("takumo-join-key", "Takumo coordinator join key (jk_ + random)", KEY, []string{"jk_"},
			`[A-Za-z0-9_-]{32,128}`, 131,
			[]Sample{
				envSample("TAKUMO_JOIN_KEY", "jk_zkZ5UE_fapOEwRyXGbXQxsQyXZnM6GqiDQ7u5jlV2Ig"),
				textSample("takumo-aegis gateway --coordinator coord.acme.io:50051 --join-key ", "jk_3bfd56c009a5d70db7e453b720f5b594c3663df79a81cf5765b7d55aac50b373", "\n"),
			},
			[]string{
				"TAKUMO_JOIN_KEY=jk_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"TAKUMO_JOIN_KEY=jk_p4Tlw8AJSh1O\n",
				"func (s *Store) revoke_jk_by_id_and_disconnect_all_gateways(id string) {}\n",
			}),
	}
}
