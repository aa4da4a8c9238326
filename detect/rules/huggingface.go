package rules

// Hugging Face user access tokens and organization API tokens.
func huggingface() []Rule {
	return []Rule{
		prefixed("huggingface-token", "Hugging Face user access token (hf_)", TOKEN, []string{"hf_"},
			`[A-Za-z0-9]{34,40}`, 43,
			[]Sample{
				envSample("HF_TOKEN", "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"),
				textSample("from huggingface_hub import login\nlogin(token=\"", "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", "\")\n"),
			},
			[]string{
				"HF_TOKEN=hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"HF_TOKEN=hf_EsxwCdcUTarcbQcnrAGA\n",
				"self.hf_model_name_or_path_for_tokenizer = None\n",
			}),
		prefixed("huggingface-org-token", "Hugging Face organization API token (api_org_)", TOKEN, []string{"api_org_"},
			`[A-Za-z0-9]{34}`, 42,
			[]Sample{
				envSample("HUGGINGFACE_ORG_TOKEN", "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"),
				jsonSample("hf_org_token", "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"),
			},
			[]string{
				"HUGGINGFACE_ORG_TOKEN=api_org_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"def api_org_members(org): pass\n",
			}),
	}
}
