package rules

// HashiCorp: Vault service, batch and legacy tokens, and Terraform Cloud /
// Enterprise API tokens.
func hashicorp() []Rule {
	return []Rule{
		prefixed("vault-service-token", "HashiCorp Vault service token (hvs.)", TOKEN, []string{"hvs."},
			`[A-Za-z0-9_-]{90,120}`, 124,
			[]Sample{
				envSample("VAULT_TOKEN", "hvs.CAESIIYHH-QrP7SVaXpUzPuS1JrlmZVmz5_783j3oz01IhChHQ5H4l5L2JDjnZMjqTGpI_8xmc9zP6WVTDHPpFOhKF2pVkA"),
				textSample("curl -H \"X-Vault-Token: ", "hvs.CAESI4mXifHUZjyUcm3PB16ctacDDdSpB-EghEuI4Y-yq5R3OUyPeSmUXnThbq6IbnvpogKD171xy-oyEcTQangHXaJ", "\" https://vault.acme.io:8200/v1/secret/data/app\n"),
			},
			[]string{
				"VAULT_TOKEN=hvs.xxxxxxxxxxxxxxxxxxxxxxxx\n",
				"VAULT_TOKEN=hvs.0ArcQFdBCplsOBhYjVqmAo9w\n",
			}),
		prefixed("vault-batch-token", "HashiCorp Vault batch token (hvb.)", TOKEN, []string{"hvb."},
			`[A-Za-z0-9_-]{138,300}`, 304,
			[]Sample{
				jsonSample("client_token", "hvb.AAAAAQAmywDZPHe9FTDKB_SOtUR2-ZCzX_Q1PiveMTJL-daKnnkIwkpJK4gA3TM0Hz17TjzQ2FByzTzEb-Jb9Z0qQiYMmpRRc71CpZgQVL0QgPLizXbKAoQPtxaNeWZtbnrE4RCXmSZ3eevjiiRQk5jGkvZHwCEeBeXxW7pENouXHZ8u"),
				envSample("VAULT_TOKEN", "hvb.AAAAAQ0xfkCwlOfSvqPP-ulEdesUWSobLDYam5Cj_NFgqeiyB2R5C6ZhSJaYryCoMXaHtngMRiLr4a56reXC5MdwaKLxcNztkspaqHuMluSEpp27JGPJjvhk4hlQkb7bxwdvt1HJihHKvkrZmdDb6vCr-Ud0"),
			},
			[]string{
				"VAULT_TOKEN=hvb.<batch-token>\n",
				"VAULT_TOKEN=hvb.PRc62qYocUrCtjSkDujs315GdgvS2pH7GTkWNgS2\n",
			}),
		{
			ID:          "vault-legacy-token",
			Description: "HashiCorp Vault token of the pre-1.10 form (s. + 24) assigned to a Vault name",
			Category:    TOKEN,
			Keywords:    []string{"vault_token", "vaulttoken", "vault-token"},
			Pattern:     named(`vault[_-]?token`, `s\.[A-Za-z0-9]{24}`, endAlnum),
			SecretGroup: 1,
			MaxLen:      80,
			Validate:    MinEntropy(3.5),
			Positives: []Sample{
				envSample("VAULT_TOKEN", "s.XTeDKih8IVOPa5xm4wbR9paO"),
				textSample("curl --header \"X-Vault-Token: ", "s.sRAxig7P54BmLP7mWoSaaist", "\" https://vault.acme.io/v1/sys/health\n"),
			},
			Negatives: []string{
				"VAULT_TOKEN=s.xxxxxxxxxxxxxxxxxxxxxxxx\n",
				"VAULT_TOKEN=s.y7ywEPZHnZ\n",
			},
		},
		{
			ID:          "terraform-cloud-token",
			Description: "Terraform Cloud / Enterprise API token (14 . atlasv1 . 60-70)",
			Category:    TOKEN,
			Keywords:    []string{".atlasv1."},
			Before:      14,
			Pattern:     `(?:^|[^A-Za-z0-9])([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70})` + endWord,
			SecretGroup: 1,
			MaxLen:      82,
			Validate:    MinEntropy(3.5),
			Positives: []Sample{
				textSample("credentials \"app.terraform.io\" {\n  token = \"", "rLMJJjj6hH05GU.atlasv1.jQz-MWrgTo2LuqR26neaO0DTbKpypJKu-ybH_eCAyjK9CZdKgmtRtnSEOAtkDXGsfMS", "\"\n}\n"),
				envSample("TF_TOKEN_app_terraform_io", "l509gwgEB73jUN.atlasv1.NB0S4qwBdr0S11kEBOgFLTgicjnxTQfDxJ8dD1MWwcglx1RfPmmdppTdJPx3Qlv8"),
			},
			Negatives: []string{
				"token = \"xxxxxxxxxxxxxx.atlasv1.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n",
				"token = \"ZoIAjxlZX9ehgh.atlasv1.27EGXE9AQrt1aidSErOO\"\n",
			},
		},
	}
}
