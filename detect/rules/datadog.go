package rules

// Datadog API keys (32 hex) and application keys (40 hex). Neither has a
// prefix, so both are found by their names (DD_API_KEY, datadog_app_key,
// the DD-API-KEY header, …).
func datadog() []Rule {
	return []Rule{
		{
			ID:          "datadog-api-key",
			Description: "Datadog API key (32 hex) assigned to a Datadog API key name",
			Category:    KEY,
			Keywords:    []string{"dd_api_key", "ddapikey", "dd-api-key", "datadog_api_key", "datadogapikey", "datadog-api-key"},
			Pattern:     named(`(?:dd|datadog)[_-]?api[_-]?key`, `[a-f0-9]{32}`, endAlnum),
			SecretGroup: 1,
			MaxLen:      100,
			Validate:    MinEntropy(3),
			Positives: []Sample{
				envSample("DD_API_KEY", "7e35ef5393112f2e2bd1c057b7fbd11c"),
				yamlSample("datadog_api_key", "d0686fe61db3965b4627ee0a5c1732a9"),
				textSample("curl -X POST https://api.datadoghq.eu/api/v2/logs -H \"DD-API-KEY: ", "7462b755006371688ba9c097ccbd63e7", "\"\n"),
			},
			Negatives: []string{
				"DD_API_KEY=<DATADOG_API_KEY>\n",
				"DD_API_KEY=00000000000000000000000000000000\n",
				"DD_API_KEY=9a7c439155fe5479d6c3b9074f38ed99e59ff3df\n",
			},
		},
		{
			ID:          "datadog-app-key",
			Description: "Datadog application key (40 hex) assigned to a Datadog application key name",
			Category:    KEY,
			Keywords:    []string{"dd_app_key", "ddappkey", "dd-application-key", "dd_application_key", "datadog_app_key", "datadogappkey", "datadog_application_key", "datadog-app-key"},
			Pattern:     named(`(?:dd|datadog)[_-]?app(?:lication)?[_-]?key`, `[a-f0-9]{40}`, endAlnum),
			SecretGroup: 1,
			MaxLen:      110,
			Validate:    MinEntropy(3),
			Positives: []Sample{
				envSample("DD_APP_KEY", "b0a7a73bf7f38da28bac3efde1d6dc63fb262281"),
				textSample("curl https://api.datadoghq.com/api/v1/monitor -H \"DD-APPLICATION-KEY: ", "6055d57bf5249aa4197b3680d33aa9127ee1753c", "\"\n"),
			},
			Negatives: []string{
				"DD_APP_KEY=${DD_APP_KEY}\n",
				"DD_APP_KEY=ea5f1036fdc850ca404f70183cead001\n",
			},
		},
	}
}
