package rules

// Twilio: account and API key SIDs (AC/SK + 32 hex) and auth tokens and API
// secrets by name. An account SID only names the account and appears in
// every API URL, so its rule defaults to monitor; an API key SID is kept
// with its secret and tokenized. The two-letter prefixes are too short for keywords, so the keywords
// are the prefixes followed by each possible first hex digit.
func twilio() []Rule {
	return []Rule{
		{
			ID:            "twilio-account-sid",
			Description:   "Twilio account SID (AC + 32 hex); an identifier, so monitored rather than tokenized",
			Category:      KEY,
			Action:        Monitor,
			Keywords:      hexKeywords("AC"),
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9])(AC[0-9a-f]{32})(?:[^A-Za-z0-9]|$)`,
			SecretGroup:   1,
			MaxLen:        40,
			Validate:      MinEntropy(3),
			Positives: []Sample{
				envSample("TWILIO_ACCOUNT_SID", "AC43b9fc3cc2f71f426ec21933b69ff57c"),
				textSample("client = Client(\"", "AC49068e66866df4b39761b60557f649b0", "\", auth_token)\n"),
			},
			Negatives: []string{
				"TWILIO_ACCOUNT_SID=ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000\n",
				"sid = \"AC89bf0374f26e4f05f6ad8210\"\n",
			},
		},
		{
			ID:            "twilio-api-key-sid",
			Description:   "Twilio API key SID (SK + 32 hex)",
			Category:      KEY,
			Keywords:      hexKeywords("SK"),
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9])(SK[0-9a-f]{32})(?:[^A-Za-z0-9]|$)`,
			SecretGroup:   1,
			MaxLen:        40,
			Validate:      MinEntropy(3),
			Positives: []Sample{
				envSample("TWILIO_API_KEY", "SK3415d4ba4eb0525e15ee6f45b3c8f862"),
				jsSample("apiKeySid", "SKbaa71e19b4bbea11fd098c37ebcd3afc"),
			},
			Negatives: []string{
				"TWILIO_API_KEY=SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"TWILIO_API_KEY=SK3b54e1bfa440ebac6b0c3dce5762d0245034e793\n",
			},
		},
		{
			ID:          "twilio-auth-token",
			Description: "Twilio auth token or API key secret assigned to a Twilio name",
			Category:    SECRET,
			Keywords:    []string{"twilio"},
			Pattern:     named(`twilio[\w.-]{0,20}?(?:auth[_-]?token|api[_-]?secret|secret)`, `[A-Za-z0-9]{32}`, endAlnum),
			SecretGroup: 1,
			MaxLen:      100,
			Validate:    All(NotPlaceholder, MinEntropy(3)),
			Positives: []Sample{
				envSample("TWILIO_AUTH_TOKEN", "6d2fbf1a0796a69635c5d788791d49b6"),
				yamlSample("twilio_api_secret", "btxYxUkDRAWCYaSWlO6a5lF8dNonDAAO"),
			},
			Negatives: []string{
				"TWILIO_AUTH_TOKEN=your_auth_token\n",
				"TWILIO_AUTH_TOKEN=${TWILIO_AUTH_TOKEN}\n",
				"TWILIO_AUTH_TOKEN=86cf8dc5d0fc5d56b73c\n",
			},
		},
	}
}

// hexKeywords returns prefix followed by each lowercase hex digit.
func hexKeywords(prefix string) []string {
	kws := make([]string, 0, 16)
	for _, c := range "0123456789abcdef" {
		kws = append(kws, prefix+string(c))
	}
	return kws
}
