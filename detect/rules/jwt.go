package rules

// JSON Web Tokens: three base64url segments whose header decodes to JSON
// with an "alg" other than "none" and whose payload decodes to JSON.
func jwt() []Rule {
	return []Rule{
		{
			ID:            "jwt",
			Description:   "JSON Web Token (signed; header with alg, payload JSON)",
			Category:      TOKEN,
			Keywords:      []string{"eyJ"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})` + endWord,
			SecretGroup:   1,
			MaxLen:        9500,
			Validate:      JWTHeader,
			Positives: []Sample{
				textSample("curl -H \"Authorization: Bearer ", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3NjcyMjkyMDAsImlhdCI6MTc2NzIyNTYwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwic3ViIjoiZDVlbGoxdnRvZnNuIn0.PXsXmn4H5c60Z3KN0SpxDR7Q80yr4h5uVqW_9VRZLM0", "\" https://api.acme.io/v1/orders\n"),
				envSample("SUPABASE_SERVICE_ROLE_KEY", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3NjcyMjkyMDAsImlhdCI6MTc2NzIyNTYwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwic3ViIjoidm52N3V3eGszbGVxIn0.GC9JoDV7Ilwqui5j4zTzivy37CH5mwycY9eLXfnecw8"),
				jsonSample("id_token", "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3NjcyMjkyMDAsImlhdCI6MTc2NzIyNTYwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwic3ViIjoibHdvaWFra2xuOXNmIn0.WLTk8tJvO4RoqR-f5oJUiQElmeYVYyYbe35jyOXOjvU"),
			},
			Negatives: []string{
				"token = \"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjE3NjcyMjkyMDAsImlhdCI6MTc2NzIyNTYwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwic3ViIjoiazBrN3RhNjF1aDMxIn0.vukbsCJCpq6oRO1f\"\n",
				"token = \"eyJhbGciOiJIUzI1NiJ9.not-json-payload.Ta3mKyonVmg1ml0RpCj_4egRFVq__uTZuGfwbgUcXvb\"\n",
				"token = \"eyJub3RfYWxnIjoxfQ.eyJzdWIiOiIxIn0.bfKKkB3OV3CTEXGk5mmzf6Ud3MdEqLrWCs2LG8MGIlA\"\n",
				"const prefix = 'eyJ'; // base64 of {\"\n",
			},
		},
	}
}
