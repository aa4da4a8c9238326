package rules

// Databricks personal access tokens (dapi + 32 hex, optionally -N).
func databricks() []Rule {
	return []Rule{
		prefixed("databricks-pat", "Databricks personal access token (dapi)", TOKEN, []string{"dapi"},
			`[a-f0-9]{32}(?:-\d)?`, 38,
			[]Sample{
				envSample("DATABRICKS_TOKEN", "dapie9addb52c1f1ac0b422458dcae208af4"),
				textSample("[DEFAULT]\nhost  = https://adb-1234567890123456.7.azuredatabricks.net\ntoken = ", "dapi3dd2d904587c7d06d96b4c0fef232dc0-2", "\n"),
			},
			[]string{
				"DATABRICKS_TOKEN=dapi00000000000000000000000000000000\n",
				"DATABRICKS_TOKEN=dapie1b2d165cdfb7a19face\n",
				"from databricks.sdk import dapi_client\n",
			}),
	}
}
