package rules

// Mailgun private API keys: the legacy key- + 32 hex form and the current
// form (32 hex - 8 hex - 8 hex), which only a Mailgun name identifies.
func mailgun() []Rule {
	return []Rule{
		prefixed("mailgun-api-key", "Mailgun private API key, legacy form (key- + 32 hex)", KEY, []string{"key-"},
			`[0-9a-f]{32}`, 40,
			[]Sample{
				envSample("MAILGUN_API_KEY", "key-f539430dbead4d42da17b4e8ca154fd5"),
				textSample("curl -s --user 'api:", "key-ce64a5c3f626db15fda4a1cdc6176ad8", "' https://api.mailgun.net/v3/mg.acme.io/messages\n"),
			},
			[]string{
				"MAILGUN_API_KEY=key-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"pubkey-ce4717527eecd9fe059f78ed0ce1fcff is the public validation key\n",
				"primary-key-65fcf579b282343266c1\n",
			}),
		{
			ID:          "mailgun-private-key",
			Description: "Mailgun private API key (32 hex - 8 hex - 8 hex) assigned to a Mailgun name",
			Category:    KEY,
			Keywords:    []string{"mailgun"},
			Pattern:     named(`mailgun[\w.-]{0,20}?(?:api[_-]?)?(?:key|secret|token)`, `[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}`, endAlnum),
			SecretGroup: 1,
			MaxLen:      110,
			Validate:    MinEntropy(3),
			Positives: []Sample{
				envSample("MAILGUN_API_KEY", "77b6bc85cc095fc07ff4f1edaee04fbb-eaea10d2-1cd3d2c5"),
				jsonSample("mailgunApiKey", "fd5da409bd397f20cbc731f23b412b19-f2bff71b-1a4d98dd"),
			},
			Negatives: []string{
				"MAILGUN_API_KEY=00000000000000000000000000000000-00000000-00000000\n",
				"MAILGUN_DOMAIN=mg.acme.io\n",
			},
		},
	}
}
