package rules

// OpenAI API keys: project, service-account and admin keys, and the legacy
// user key. Keys carry the marker T3BlbkFJ (base64 of "OpenAI"); the newer
// prefixed forms are also accepted without it when they are long enough.
func openai() []Rule {
	const body = `[A-Za-z0-9_-]{40,250}`
	return []Rule{
		prefixed("openai-project-key", "OpenAI project API key (sk-proj-)", KEY, []string{"sk-proj-"},
			body, 260,
			[]Sample{
				envSample("OPENAI_API_KEY", "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"),
				textSample("client = OpenAI(api_key=\"", "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", "\")\n"),
			},
			openaiNegatives("sk-proj-")),
		prefixed("openai-service-account-key", "OpenAI service account key (sk-svcacct-)", KEY, []string{"sk-svcacct-"},
			body, 260,
			[]Sample{
				jsonSample("openai_key", "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"),
				shSample("OPENAI_API_KEY", "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"),
			},
			openaiNegatives("sk-svcacct-")),
		prefixed("openai-admin-key", "OpenAI admin API key (sk-admin-)", KEY, []string{"sk-admin-"},
			body, 260,
			[]Sample{
				envSample("OPENAI_ADMIN_KEY", "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"),
				yamlSample("admin_key", "sk-admin-eES6RkLBLMLyI5S1YVaB0sOv6NIo22-5IPjQIQrIDHcpbKpsJPlcMHhlC5tRDWDbDKprMKAGr61DoBCoNmSFnHEce8RXnPtdl49Q8TupXJRC_bSkEnyHwy10"),
			},
			openaiNegatives("sk-admin-")),
		{
			ID:            "openai-legacy-key",
			Description:   "OpenAI legacy user API key (sk- + 20 + T3BlbkFJ + 20)",
			Category:      KEY,
			Keywords:      []string{"T3BlbkFJ"},
			CaseSensitive: true,
			Before:        23,
			Pattern:       `(?:^|[^A-Za-z0-9_-])(sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})` + endWord,
			SecretGroup:   1,
			MaxLen:        30,
			Validate:      MinEntropy(3.5),
			Positives: []Sample{
				envSample("OPENAI_API_KEY", "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"),
				pySample("openai.api_key", "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"),
			},
			Negatives: []string{
				"OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxT3BlbkFJxxxxxxxxxxxxxxxxxxxx\n",
				"OPENAI_API_KEY=sk-3leuevQ67Ayd1IqgaknaT3BlbkFJzqea44xczQ\n",
				"the marker T3BlbkFJ is base64 for OpenAI\n",
			},
		},
	}
}

// openaiNegatives returns the usual non-keys for a prefixed OpenAI key form.
func openaiNegatives(prefix string) []string {
	return []string{
		"OPENAI_API_KEY=" + prefix + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
		"OPENAI_API_KEY=" + prefix + "...\n",
		"OPENAI_API_KEY=" + prefix + "abc123\n",
		"OPENAI_API_KEY=" + prefix + "your-openai-api-key-goes-here-replace-this-value-now\n",
	}
}
