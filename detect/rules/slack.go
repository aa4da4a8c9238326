package rules

// Slack: bot, user, app-level, configuration and legacy tokens, and
// incoming-webhook URLs (whose path is the credential).
func slack() []Rule {
	return []Rule{
		prefixed("slack-bot-token", "Slack bot token (xoxb-)", TOKEN, []string{"xoxb-"},
			`\d{10,13}-\d{10,13}-[A-Za-z0-9]{24,34}`, 70,
			[]Sample{
				envSample("SLACK_BOT_TOKEN", "xoxb-456158454869-1876041616323-Pt8QnnIQ6s44iJtPsFrDc2K4"),
				pySample("slack_token", "xoxb-49997086915-880769596200-6pmYxFVq9dLFD4bpN7lkwb34"),
			},
			[]string{
				"SLACK_BOT_TOKEN=xoxb-your-bot-token\n",
				"SLACK_BOT_TOKEN=xoxb-000000000000-0000000000000-xxxxxxxxxxxxxxxxxxxxxxxx\n",
				"token: xoxb-853090252774-m7ymIEh6VL1GDzCbbeEPwyWP\n",
			}),
		prefixed("slack-user-token", "Slack user token (xoxp-)", TOKEN, []string{"xoxp-"},
			`\d{10,13}-\d{10,13}-\d{10,13}-[A-Za-z0-9]{28,34}`, 90,
			[]Sample{
				jsonSample("user_token", "xoxp-795539992887-899496605585-5691514746612-f2a94c05ec4980961db06ab7eefb4811"),
				shSample("SLACK_USER_TOKEN", "xoxp-83248850236-36918912421-954307449293-a4ad702e6cd01c1cb6fded3e1603fba7"),
			},
			[]string{
				"SLACK_USER_TOKEN=xoxp-<user-token>\n",
				"SLACK_USER_TOKEN=xoxp-158414985133-742808720877-5ec613a9d4be71062488d91a75d1337d\n",
			}),
		prefixed("slack-app-token", "Slack app-level token (xapp-)", TOKEN, []string{"xapp-"},
			`\d-[A-Z0-9]{9,12}-\d{10,13}-[A-Za-z0-9]{64}`, 110,
			[]Sample{
				envSample("SLACK_APP_TOKEN", "xapp-1-A0TNTX79UGZ-8821044187868-2e2e5fca965352ea7a6ca66aa31dd3a1b594ce4587a84ff63a428b959594902f"),
				tomlSample("app_token", "xapp-1-A0TVWSAO9P-238720850686-cb5186abd9d589984692748fdfaebb2547c99b5a19a6d829e72aa3b26d2206d3"),
			},
			[]string{
				"SLACK_APP_TOKEN=xapp-1-XXXXXXXXXXX-0000000000000-xxxxxxxx\n",
				"SLACK_APP_TOKEN=xapp-1-A0CSCLQPVUI-6906622812451-79dbe8f67b97b0b750af\n",
			}),
		prefixed("slack-config-token", "Slack app configuration and refresh tokens (xoxe.xoxb-, xoxe.xoxp-, xoxe-)", TOKEN, []string{"xoxe.xoxb-", "xoxe.xoxp-", "xoxe-"},
			`\d-[A-Za-z0-9]{140,170}`, 185,
			[]Sample{
				envSample("SLACK_CONFIG_TOKEN", "xoxe.xoxp-1-NHVvr5dpxefKySnqcdvt6KPN7iDPDkKYp05b0zJQB49yEHNLVJhDatzvB4c6CDNVD1EaxyseLY2WlSVl1FeoLvv83aYV1Q2pJJZ8jGjzAwdUoo2YgRklg7Xcefr0KwPKXRUW2FosHNAvY3x3YwzIbui3nICv5YVJdwJy"),
				jsonSample("refresh_token", "xoxe-1-LyRihvAOWSm9Krh7LM9SRMgGPlofsaPWkiZVLmHYvcw51j0aSfN2uw9dMh4O6jSvunmB91yDS3VPAqZmrfxkAWThsHpvt0vGTPB9ERFEJu6KOo1xpOwV93zKWaRsjgmeRxvt7iELIIwY7otFld"),
			},
			[]string{
				"SLACK_CONFIG_TOKEN=xoxe.xoxp-1-...\n",
				"refresh_token: xoxe-1-WgavA6AKLXsFQuumTB5Az1K62dOnI1wEwDGXBIIz\n",
			}),
		prefixed("slack-legacy-token", "Slack legacy workspace, refresh, OAuth and session tokens (xoxa-, xoxr-, xoxo-, xoxs-, xoxc-)", TOKEN, []string{"xoxa-", "xoxr-", "xoxo-", "xoxs-", "xoxc-"},
			`\d+-[A-Za-z0-9-]{20,200}`, 220,
			[]Sample{
				envSample("SLACK_LEGACY_TOKEN", "xoxs-240321463419-587369605786-450034363065-55ecb048e3d7e8ae491e82d9d1e0985ed9311a07bb1d254791adca141ca8c7e3"),
				textSample("cookie d=...; token=", "xoxc-243725435186-586115832986-8787333903906-8f032d9868e187aa5c0ef9805053541ba10d567a74fcfb7ecddbea09b577499d", "\n"),
			},
			[]string{
				"token: xoxa-2-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"token: xoxr-c1gkEDgfiz\n",
			}),
		{
			ID:          "slack-webhook-url",
			Description: "Slack incoming webhook or workflow trigger URL",
			Category:    SECRET,
			Keywords:    []string{"hooks.slack.com/"},
			Before:      8,
			Pattern:     `(https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_+/-]{43,140})(?:[^A-Za-z0-9_+/-]|$)`,
			SecretGroup: 1,
			MaxLen:      170,
			Validate:    All(NotPlaceholder, MinEntropy(3.5)),
			Positives: []Sample{
				envSample("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/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"),
				textSample("curl -X POST -H 'Content-type: application/json' --data '{\"text\":\"deploy done\"}' ", "https://hooks.slack.com/triggers/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", "\n"),
			},
			Negatives: []string{
				"SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n",
				"see https://hooks.slack.com/services/ for the format\n",
				"url: https://hooks.slack.com/services/${SLACK_PATH}\n",
			},
		},
	}
}
