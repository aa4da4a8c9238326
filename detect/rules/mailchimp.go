package rules

// Mailchimp marketing API keys (32 hex + data-centre suffix -usNN).
func mailchimp() []Rule {
	return []Rule{
		{
			ID:            "mailchimp-api-key",
			Description:   "Mailchimp API key (32 hex + -us + data centre)",
			Category:      KEY,
			Keywords:      []string{"-us"},
			CaseSensitive: true,
			Before:        33,
			Pattern:       `(?:^|[^0-9A-Za-z])([0-9a-f]{32}-us\d{1,2})(?:[^0-9A-Za-z]|$)`,
			SecretGroup:   1,
			MaxLen:        8,
			Validate:      MinEntropy(3),
			Positives: []Sample{
				envSample("MAILCHIMP_API_KEY", "e849f694f16fa4667f211a47d26a0f33-us21"),
				pySample("mailchimp_key", "bffa5aaebb0322c96824720e8c19f64e-us6"),
			},
			Negatives: []string{
				"MAILCHIMP_API_KEY=00000000000000000000000000000000-us21\n",
				"lang: en-us\n",
				"MAILCHIMP_API_KEY=9074ac4c8381a91e6b740444a04cbb-us21\n",
			},
		},
	}
}
