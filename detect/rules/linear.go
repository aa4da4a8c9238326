package rules

// Linear API keys and OAuth access tokens.
func linear() []Rule {
	return []Rule{
		prefixed("linear-api-key", "Linear personal API key (lin_api_)", KEY, []string{"lin_api_"},
			`[A-Za-z0-9]{40}`, 48,
			[]Sample{
				envSample("LINEAR_API_KEY", "lin_api_ywE66KFnOUpFcR0uhEgfBjsnBYP6xLQ2B5VyP1Rj"),
				textSample("curl -H \"Authorization: ", "lin_api_4JrEufU3DsvbFNiALzsddcxX8vutIuttquJIHKHF", "\" https://api.linear.app/graphql\n"),
			},
			[]string{"LINEAR_API_KEY=lin_api_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", "LINEAR_API_KEY=lin_api_jnh9i2VhpLtwJWjxifga\n"}),
		prefixed("linear-oauth-token", "Linear OAuth access token (lin_oauth_)", TOKEN, []string{"lin_oauth_"},
			`[a-f0-9]{64}`, 74,
			[]Sample{
				jsonSample("access_token", "lin_oauth_08ebfa35d658e9018270dc3cc7e598dd395b17169848a0610a8dd59298041fc7"),
				goShortSample("linearToken", "lin_oauth_c4b1703b55358496f8e217690eb5cdc523f527fd5d29a0fbb884344dee67e532"),
			},
			[]string{"access_token: lin_oauth_<token>\n", "access_token: lin_oauth_312334cfb0ddfb18b59c43a4d80d2e11\n"}),
	}
}
