package rules

import "bytes"

// HTTP credentials by structure: Bearer and Basic authorization values,
// API-key headers and curl's --user. These guess from context, so they are
// Generic: a provider rule that finds the same value wins.
func authHeaders() []Rule {
	return []Rule{
		{
			ID:          "authorization-bearer",
			Description: "Bearer token (Authorization: Bearer …)",
			Category:    TOKEN,
			Keywords:    []string{"bearer"},
			Pattern:     `(?i)(?:^|[^A-Za-z0-9_])bearer\s+([A-Za-z0-9._~+/-]{16,}=*)(?:[^A-Za-z0-9._~+/=-]|$)`,
			SecretGroup: 1,
			MaxLen:      4096,
			Validate:    All(NotPlaceholder, hasDigit, MinEntropy(3)),
			Generic:     true,
			Positives: []Sample{
				textSample("curl -H \"Authorization: Bearer ", "cUCwmMRakLBQp4rPgkTISRPpzPHDiJRnrOVjhumB", "\" https://api.acme.io/v2/invoices\n"),
				textSample("GET /v1/me HTTP/1.1\r\nHost: api.acme.io\r\nAuthorization: Bearer ", "5KdwPk7H87aIUZNjCSVS0t_-Bvk7LBlTjU_rOFrHvq3DBhoE1fLCT1HDHXmcptME", "\r\n\r\n"),
				textSample("headers = {\"Authorization\": \"Bearer ", "X21dIdi7W7262AMbfgyLwdgdJhZKqvvhZu+z/DVSme+=", "\"}\n"),
			},
			Negatives: []string{
				"headers = {\"Authorization\": f\"Bearer {token}\"}\n",
				"Authorization: Bearer ${ACCESS_TOKEN}\n",
				"Authorization: Bearer <YOUR_ACCESS_TOKEN>\n",
				"Authorization: Bearer YOUR_ACCESS_TOKEN_HERE\n",
				"Use bearer authentication for the admin endpoints.\n",
			},
		},
		{
			ID:          "authorization-basic",
			Description: "HTTP Basic credentials (Authorization: Basic base64(user:password))",
			Category:    SECRET,
			// "Basic" as the scheme is written in practice; a literal,
			// case-sensitive start keeps the regexp on its fast path, as
			// "basic" is a common word.
			Keywords:      []string{"Basic", "BASIC"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_])(?:Basic|BASIC)\s+([A-Za-z0-9+/]{8,}={0,2})` + endB64,
			SecretGroup:   1,
			MaxLen:        1024,
			Validate:      BasicAuth,
			Generic:       true,
			Positives: []Sample{
				textSample("curl -H \"Authorization: Basic ", "ZGVwbG95Onk5NjlYaUsxVGhzWk9WY2xJeW94", "\" https://nexus.acme.io/service/rest/v1/assets\n"),
				textSample("proxy_set_header Authorization \"Basic ", "Z3JhZmFuYTouLmFFVWZIbSE4bFJPemk4ZVI=", "\";\n"),
			},
			Negatives: []string{
				"Authorization: Basic YWRtaW46Y2hhbmdlbWU=\n",
				"Authorization: Basic ${BASIC_AUTH}\n",
				"Basic authentication is disabled by default.\n",
				"Authorization: Basic bm8gY29sb24gYXQgYWxs\n",
			},
		},
		{
			ID:          "api-key-header",
			Description: "API key in an X-API-Key, api-key, X-Auth-Token or PRIVATE-TOKEN header",
			Category:    KEY,
			Keywords:    []string{"api-key", "x-auth-token", "private-token"},
			Pattern:     `(?i)(?:api-key|x-auth-token|private-token)["']?\s*[:=,]\s*["']?([A-Za-z0-9._~+/-]{16,512}=*)(?:[^A-Za-z0-9._~+/=-]|$)`,
			SecretGroup: 1,
			MaxLen:      600,
			Validate:    All(NotPlaceholder, hasDigit, MinEntropy(3)),
			Generic:     true,
			Positives: []Sample{
				textSample("curl https://api.acme.io/v1/reports -H 'X-API-Key: ", "HMdIRAlm4NA1agNunL45E7S4mvANseZX", "'\n"),
				textSample("requests.get(url, headers={\"api-key\": \"", "635640048302fc253024e981c63a97bd", "\"})\n"),
			},
			Negatives: []string{
				"curl -H \"X-API-Key: $API_KEY\" https://api.acme.io\n",
				"headers: { 'x-api-key': process.env.API_KEY }\n",
				"X-API-Key: your-api-key-goes-here\n",
			},
		},
		{
			ID:          "curl-user-password",
			Description: "Password given to curl with -u or --user",
			Category:    SECRET,
			Keywords:    []string{"curl"},
			Pattern:     `curl\s(?:[^\n]*?\s)?(?:-u|--user)\s*["']?[^\s:"']+:([^\s"']+)`,
			SecretGroup: 1,
			MaxLen:      512,
			Validate:    NotPlaceholder,
			Generic:     true,
			Positives: []Sample{
				textSample("curl -fsS -u admin:", "qMTwBwLLe6firoZP", " https://jenkins.acme.io/api/json\n"),
				textSample("curl --user 'deploy:", "1t4wAJMZKwxvHJj66R", "' -X POST https://artifacts.acme.io/upload\n"),
			},
			Negatives: []string{
				"curl -u admin:$ADMIN_PASSWORD https://jenkins.acme.io\n",
				"curl -u user:password https://httpbin.org/basic-auth/user/passwd\n",
				"curl -u \"$USER:$TOKEN\" https://api.acme.io\n",
			},
		},
	}
}

// hasDigit reports whether b contains an ASCII digit; real tokens almost
// always do, prose and identifiers usually do not.
func hasDigit(b []byte) bool { return bytes.ContainsAny(b, "0123456789") }
