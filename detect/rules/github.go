package rules

// GitHub: classic, OAuth, App and refresh tokens (prefix + 30 random base62
// characters + a 6-character base62 CRC32, checked offline) and fine-grained
// personal access tokens.
func github() []Rule {
	return []Rule{
		{
			ID:            "github-pat",
			Description:   "GitHub personal access token (classic) (ghp_, checksummed)",
			Category:      TOKEN,
			Keywords:      []string{"ghp_"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_])(ghp_[A-Za-z0-9]{36})(?:[^A-Za-z0-9_]|$)`,
			SecretGroup:   1,
			MaxLen:        48,
			Validate:      GitHubChecksum,
			Positives: []Sample{
				envSample("GITHUB_TOKEN", "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"),
				textSample("git clone https://x-access-token:", "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", "@github.com/acme/infra.git\n"),
				yamlSample("token", "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"),
			},
			Negatives: []string{
				"GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"token: ghp_bzDXhh1CfZirliK37h8k1f1sR0lAt81C2u8A\n",
				"token: ghp_TIc3UzRw8q1Z56mkNZsWBdfzS2BzGP\n",
				"token = \"ghp_<your-token>\"\n",
			},
		},
		{
			ID:            "github-oauth-token",
			Description:   "GitHub OAuth access token (gho_, checksummed)",
			Category:      TOKEN,
			Keywords:      []string{"gho_"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_])(gho_[A-Za-z0-9]{36})(?:[^A-Za-z0-9_]|$)`,
			SecretGroup:   1,
			MaxLen:        48,
			Validate:      GitHubChecksum,
			Positives: []Sample{
				jsonSample("access_token", "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"),
				textSample("github.com:\n    user: octo\n    oauth_token: ", "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", "\n    git_protocol: https\n"),
			},
			Negatives: []string{
				"GITHUB_TOKEN=gho_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"token: gho_QUkNH23K9kW7OGLZ1XE1wpthQtv25j0Go8VA\n",
				"token: gho_8cvagLESxdX8AOM4Gsn7d6s9fWZdFQ\n",
				"token = \"gho_<your-token>\"\n",
			},
		},
		{
			ID:            "github-user-to-server-token",
			Description:   "GitHub App user-to-server token (ghu_, checksummed)",
			Category:      TOKEN,
			Keywords:      []string{"ghu_"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_])(ghu_[A-Za-z0-9]{36})(?:[^A-Za-z0-9_]|$)`,
			SecretGroup:   1,
			MaxLen:        48,
			Validate:      GitHubChecksum,
			Positives: []Sample{
				pySample("GH_USER_TOKEN", "ghu_dtg76KW8Tp0zVya7FHCHvsM1FWtEks08MLev"),
				textSample("curl -H \"Authorization: token ", "ghu_UnUnXLFCZDg4zqdqdNWbFsGL5qaVDZ4fqgSU", "\" https://api.github.com/user\n"),
			},
			Negatives: []string{
				"GITHUB_TOKEN=ghu_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"token: ghu_FQbiHMYkzMt4nhSMzBcPumCmOY7rD50CXqLA\n",
				"token: ghu_c6rHD8pTk2X4oZy9gxlT6hHhS5Q30j\n",
				"token = \"ghu_<your-token>\"\n",
			},
		},
		{
			ID:            "github-installation-token",
			Description:   "GitHub App installation (server-to-server) token (ghs_, checksummed)",
			Category:      TOKEN,
			Keywords:      []string{"ghs_"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_])(ghs_[A-Za-z0-9]{36})(?:[^A-Za-z0-9_]|$)`,
			SecretGroup:   1,
			MaxLen:        48,
			Validate:      GitHubChecksum,
			Positives: []Sample{
				textSample("- uses: actions/checkout@v4\n  with:\n    token: ", "ghs_TbRISI9H1H69W8dentqxDgXSlF3gX72WDg3I", "\n"),
				goShortSample("tok", "ghs_Czl4MUW10ywpZjY2RgCu8ebW74MM2V3t1mKT"),
			},
			Negatives: []string{
				"GITHUB_TOKEN=ghs_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"token: ghs_3vHjMEmlixR4rTxMZzik17dut8hgYc2Y5lOA\n",
				"token: ghs_ddZn47jEZ0q6GWWiIi7E1uuEtWqwOs\n",
				"token = \"ghs_<your-token>\"\n",
			},
		},
		{
			ID:            "github-refresh-token",
			Description:   "GitHub App refresh token (ghr_, checksummed)",
			Category:      TOKEN,
			Keywords:      []string{"ghr_"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_])(ghr_[A-Za-z0-9]{36})(?:[^A-Za-z0-9_]|$)`,
			SecretGroup:   1,
			MaxLen:        48,
			Validate:      GitHubChecksum,
			Positives: []Sample{
				jsonSample("refresh_token", "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"),
				envSample("GITHUB_REFRESH_TOKEN", "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"),
			},
			Negatives: []string{
				"GITHUB_TOKEN=ghr_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"token: ghr_TuMDuS8UOYAIFIfV1w6NWFBEOzOKT82SDE9A\n",
				"token: ghr_cbfFtHn0nPJDtQO82uEGJuYzFalXAv\n",
				"token = \"ghr_<your-token>\"\n",
			},
		},
		{
			ID:            "github-fine-grained-pat",
			Description:   "GitHub fine-grained personal access token (github_pat_)",
			Category:      TOKEN,
			Keywords:      []string{"github_pat_"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_])(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?:[^A-Za-z0-9_]|$)`,
			SecretGroup:   1,
			MaxLen:        100,
			Validate:      MinEntropy(4),
			Positives: []Sample{
				envSample("GH_TOKEN", "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"),
				shSample("GITHUB_PAT", "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"),
			},
			Negatives: []string{
				"GH_TOKEN=github_pat_xxxxxxxxxxxxxxxxxxxxxx_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"GH_TOKEN=github_pat_zVkX1krfKhLkh5xMoOnsuK_KWqmKSN3aU5kCjVfjlSjwiOcGPCs20\n",
				"pattern: github_pat_<22 characters>_<59 characters>\n",
			},
		},
	}
}
