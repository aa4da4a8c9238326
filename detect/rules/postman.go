package rules

// Postman API keys (PMAK- + 24 hex - 34 hex).
func postman() []Rule {
	return []Rule{
		prefixed("postman-api-key", "Postman API key (PMAK-)", KEY, []string{"PMAK-"},
			`[a-f0-9]{24}-[a-f0-9]{34}`, 64,
			[]Sample{
				envSample("POSTMAN_API_KEY", "PMAK-0bc96f563289a25d0f95c87a-44ba8adf10ca5a1ce3ce93fee0cc5d1483"),
				textSample("newman run https://api.getpostman.com/collections/1234?apikey=", "PMAK-6e77b04347ee6fed237a4394-ee5b011e285e99e2fd5694bdb4dc45ff12", "\n"),
			},
			[]string{"POSTMAN_API_KEY=PMAK-<your-api-key>\n", "POSTMAN_API_KEY=PMAK-de564ff54ded67eb5d51800b-f5180fa02b\n"}),
	}
}
