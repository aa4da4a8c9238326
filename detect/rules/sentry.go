package rules

// Sentry: DSNs (the key in the user part of the URL), user auth tokens and
// organization auth tokens.
func sentry() []Rule {
	return []Rule{
		{
			ID:          "sentry-dsn",
			Description: "Sentry DSN: the key before @o<org>.ingest.sentry.io",
			Category:    KEY,
			Keywords:    []string{"sentry.io/"},
			Before:      120,
			Pattern:     `https?://([0-9a-f]{32})(?::[0-9a-f]{32})?@o\d+\.ingest(?:\.[a-z]{2})?\.sentry\.io/\d+`,
			SecretGroup: 1,
			MaxLen:      40,
			Validate:    MinEntropy(3),
			Positives: []Sample{
				textSample("Sentry.init({\n  dsn: \"https://", "0d29f291ba59a156cc121da822bdf84a", "@o402091.ingest.sentry.io/7933677\",\n  tracesSampleRate: 0.1,\n});\n"),
				textSample("SENTRY_DSN=https://", "3a37b6f06fa068415801965c7092d74a", "@o810783.ingest.us.sentry.io/3645267812586815\n"),
			},
			Negatives: []string{
				"SENTRY_DSN=https://examplePublicKey@o0.ingest.sentry.io/0\n",
				"SENTRY_DSN=https://00000000000000000000000000000000@o0.ingest.sentry.io/0\n",
				"see https://docs.sentry.io/platforms/ for details\n",
			},
		},
		prefixed("sentry-user-token", "Sentry user auth token (sntryu_)", TOKEN, []string{"sntryu_"},
			`[a-f0-9]{64}`, 71,
			[]Sample{
				envSample("SENTRY_AUTH_TOKEN", "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"),
				textSample("[auth]\ntoken=", "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", "\n"),
			},
			[]string{"SENTRY_AUTH_TOKEN=sntryu_<token>\n", "SENTRY_AUTH_TOKEN=sntryu_35afdff318973e72f1d0a76082ce90b7\n"}),
		prefixed("sentry-org-token", "Sentry organization auth token (sntrys_ + base64 JSON + _ + secret)", TOKEN, []string{"sntrys_eyJpYXQiO"},
			`[A-Za-z0-9+/=]{40,400}_[A-Za-z0-9+/]{43}`, 470,
			[]Sample{
				envSample("SENTRY_AUTH_TOKEN", "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"),
				yamlSample("auth_token", "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"),
			},
			[]string{"SENTRY_AUTH_TOKEN=sntrys_eyJpYXQiO...\n", "SENTRY_AUTH_TOKEN=sntrys_eyJpYXQiOjE3NjcyMjU2MDB9\n"}),
	}
}
