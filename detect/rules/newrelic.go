package rules

// New Relic: user API keys, insert keys, ingest license keys and browser
// keys.
func newrelic() []Rule {
	return []Rule{
		prefixed("newrelic-user-api-key", "New Relic user API key (NRAK-)", KEY, []string{"NRAK-"},
			`[A-Z0-9]{27}`, 32,
			[]Sample{
				envSample("NEW_RELIC_API_KEY", "NRAK-V2YINUCU0OUVHAKVF4IPKLXYGYH"),
				textSample("curl -H 'API-Key: ", "NRAK-RISQ31MRTBG2O00B36WN64Z41CQ", "' https://api.newrelic.com/graphql\n"),
			},
			[]string{"NEW_RELIC_API_KEY=NRAK-XXXXXXXXXXXXXXXXXXXXXXXXXXX\n", "NEW_RELIC_API_KEY=NRAK-YJY5HJJIB2C3\n"}),
		prefixed("newrelic-insert-key", "New Relic insights insert key (NRII-)", KEY, []string{"NRII-"},
			`[A-Za-z0-9_-]{32}`, 37,
			[]Sample{
				envSample("NEW_RELIC_INSERT_KEY", "NRII-ryOYxrCe_3PdiqdLGRkRKBEMBU59QZ66"),
				yamlSample("insert_key", "NRII-Ma4bFdehzT8dRDYSNJWwtbnHrkshnU61"),
			},
			[]string{"NEW_RELIC_INSERT_KEY=NRII-<insert-key>\n", "NEW_RELIC_INSERT_KEY=NRII-Rv18Ip6sWOe4XMxy\n"}),
		prefixed("newrelic-browser-key", "New Relic browser API key (NRJS-)", KEY, []string{"NRJS-"},
			`[a-f0-9]{19}`, 24,
			[]Sample{
				textSample("window.NREUM.loader_config = {licenseKey: \"", "NRJS-81a4171b96615fbc1bf", "\", applicationID: \"1234567\"};\n"),
				envSample("NEW_RELIC_BROWSER_KEY", "NRJS-6cb9d3d0d1ee622650c"),
			},
			[]string{"licenseKey: \"NRJS-0000000000000000000\"\n", "licenseKey: \"NRJS-64cee1e36e\"\n"}),
		{
			ID:            "newrelic-license-key",
			Description:   "New Relic ingest license key (36 hex + NRAL)",
			Category:      KEY,
			Keywords:      []string{"NRAL"},
			CaseSensitive: true,
			Before:        36,
			Pattern:       `(?:^|[^A-Za-z0-9])([a-f0-9]{36}NRAL)(?:[^A-Za-z0-9]|$)`,
			SecretGroup:   1,
			MaxLen:        6,
			Validate:      MinEntropy(3),
			Positives: []Sample{
				envSample("NEW_RELIC_LICENSE_KEY", "52660ffba63fb31bbd5a3d107a60d656058dNRAL"),
				yamlSample("license_key", "0026abb258c6df9dad2d754070f4f28fa512NRAL"),
			},
			Negatives: []string{
				"NEW_RELIC_LICENSE_KEY=000000000000000000000000000000000000NRAL\n",
				"NEW_RELIC_LICENSE_KEY=e88831ee9ab8fea2f35bNRAL\n",
			},
		},
	}
}
