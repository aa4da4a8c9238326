package rules

// Grafana: service account tokens, Grafana Cloud access policy tokens and
// legacy API keys (base64 JSON starting {"k":").
func grafana() []Rule {
	return []Rule{
		prefixed("grafana-service-account-token", "Grafana service account token (glsa_)", TOKEN, []string{"glsa_"},
			`[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}`, 46,
			[]Sample{
				envSample("GRAFANA_TOKEN", "glsa_XVUc1ykmWy6S4vPbBQNwGGhqdcgb4n0V_b8f0d14e"),
				textSample("curl -H \"Authorization: Bearer ", "glsa_Dg2bbBKvOwoN7rmiMZ5oaSffHX8GPtKg_40376893", "\" https://grafana.acme.io/api/dashboards/uid/abc\n"),
			},
			[]string{"GRAFANA_TOKEN=glsa_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_xxxxxxxx\n", "GRAFANA_TOKEN=glsa_5TCf1LvEpwGiX5SquYSnSdUFweQrw7hD\n"}),
		{
			ID:            "grafana-cloud-token",
			Description:   "Grafana Cloud access policy token (glc_ + base64 JSON)",
			Category:      TOKEN,
			Keywords:      []string{"glc_"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_])(glc_[A-Za-z0-9+/]{32,400}={0,2})` + endB64,
			SecretGroup:   1,
			MaxLen:        410,
			Validate:      All(NotPlaceholder, MinEntropy(4)),
			Positives: []Sample{
				envSample("GRAFANA_CLOUD_TOKEN", "glc_eyJvIjoiNjUyNjk2IiwibiI6InN0YWNrLTY0NzM4MC1hbGxveSIsImsiOiJNdDA0Uk5raHFnekdTUTJ2MTc5NFRIRnMiLCJtIjp7InIiOiJwcm9kLWV1LXdlc3QtMiJ9fQ=="),
				yamlSample("password", "glc_eyJvIjoiNzY3Nzk0NCIsIm4iOiJtZXRyaWNzLXdyaXRlciIsImsiOiJ6UHZDQ3hFemx2eHBXZEczdmN1NVY4TkEiLCJtIjp7InIiOiJwcm9kLXVzLWVhc3QtMCJ9fQ=="),
			},
			Negatives: []string{"GRAFANA_CLOUD_TOKEN=glc_<token>\n", "GRAFANA_CLOUD_TOKEN=glc_p2SLPTCNhayo\n"},
		},
		{
			ID:            "grafana-api-key",
			Description:   "Grafana legacy API key (base64 of {\"k\":\"…)",
			Category:      KEY,
			Keywords:      []string{"eyJrIjoi"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9+/])(eyJrIjoi[A-Za-z0-9+/]{70,400}={0,2})` + endB64,
			SecretGroup:   1,
			MaxLen:        420,
			Validate:      MinEntropy(4),
			Positives: []Sample{
				envSample("GRAFANA_API_KEY", "eyJrIjoiaU1VWTlGNkd5WllXYTZmY1VxcFpUYkNXbEpjaTFQZTAiLCJuIjoiY2ktZGVwbG95ZXIiLCJpZCI6MQ=="),
				jsonSample("grafanaKey", "eyJrIjoiWnE3SGhkd0NkeDl0QkRVWHZZUUdFWm1lV2J2SnR5aVkiLCJuIjoiZGFzaGJvYXJkcy1zeW5jIiwiaWQiOjc="),
			},
			Negatives: []string{"GRAFANA_API_KEY=eyJrIjoiWFhYWCJ9\n", "GRAFANA_API_KEY=eyJrIjoi<rest>\n"},
		},
	}
}
