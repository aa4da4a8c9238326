package rules

// Google Cloud: API keys, OAuth client secrets and OAuth access tokens. The
// private key of a service-account JSON file is found by the PEM rules,
// which also accept the \n escapes of a JSON string.
func gcp() []Rule {
	return []Rule{
		{
			ID:            "gcp-api-key",
			Description:   "Google API key (AIza + 35 characters)",
			Category:      KEY,
			Keywords:      []string{"AIza"},
			CaseSensitive: true,
			Pattern:       startWord + `(AIza[A-Za-z0-9_-]{35})` + endWord,
			SecretGroup:   1,
			MaxLen:        48,
			Validate:      MinEntropy(3.5),
			Positives: []Sample{
				envSample("GOOGLE_API_KEY", "AIza39lS0wexg3UO8eYJaO2SoP8_d7tX4QeWRO7"),
				textSample("<script src=\"https://maps.googleapis.com/maps/api/js?key=", "AIza4qFxUJWREMpO7oZUGvSnjQ50UNlOQku8XBW", "&callback=initMap\"></script>\n"),
				jsonSample("apiKey", "AIzaSyrQY0RB2MEJhDpU9Jrwnac6yLCKNLuPRaJ"),
			},
			Negatives: []string{
				"GOOGLE_API_KEY=AIzaxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"key: AIzavqr3gRZXqEVJ2cKbZ0y2C3s9T3WV5g\n",
				"key: AIzaNhgIyUBbpmOGF0knftCGTD8QiNllOWvsKPPEUFpG\n",
			},
		},
		{
			ID:            "gcp-oauth-client-secret",
			Description:   "Google OAuth client secret (GOCSPX-)",
			Category:      SECRET,
			Keywords:      []string{"GOCSPX-"},
			CaseSensitive: true,
			Pattern:       startWord + `(GOCSPX-[A-Za-z0-9_-]{28})` + endWord,
			SecretGroup:   1,
			MaxLen:        40,
			Validate:      MinEntropy(3.5),
			Positives: []Sample{
				textSample("{\"web\":{\"client_id\":\"595642110672-1zedvhezulq6ai3syc9tnxyg24aqo1lj.apps.googleusercontent.com\",\"client_secret\":\"", "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", "\",\"redirect_uris\":[\"http://localhost:8080/callback\"]}}\n"),
				envSample("GOOGLE_CLIENT_SECRET", "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"),
			},
			Negatives: []string{
				"GOOGLE_CLIENT_SECRET=GOCSPX-xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"client_secret: GOCSPX-ApeuHYmjDiI8\n",
				"client_secret: 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1glGNrbIxEHi\n",
			},
		},
		{
			ID:            "gcp-oauth-access-token",
			Description:   "Google OAuth 2.0 access token (ya29.)",
			Category:      TOKEN,
			Keywords:      []string{"ya29."},
			CaseSensitive: true,
			Pattern:       startWord + `(ya29\.[A-Za-z0-9_.-]{60,})` + endWord,
			SecretGroup:   1,
			MaxLen:        2100,
			Validate:      MinEntropy(4),
			Positives: []Sample{
				textSample("curl -H \"Authorization: Bearer ", "ya29.a0A7XCvSjPGUqgOM5RVxOpUnOr9WyenZa4CXRilQqdeSOEHtM92w9Ev8yEmtJeGCuRhrdq2iOPvIjF2MSSitlc08K_xDHmzNtLGnL1Ag-B8gsNAc7MaSwjx3j15FKkovVsJd3fxyul9EF9gIcmiGR9mD_", "\" https://www.googleapis.com/drive/v3/files\n"),
				jsonSample("access_token", "ya29.c.drF70_0wx7i_t0Xp115pWzPKkbQr9FcfOAuu1jLP8vChPioZgbQ6HFpSQPEc6WHsVmVeYoMW3duzOu5X2To52RBOgaZIbbzkyCPC1eW-gy5rGnM0pa1ubAp_4hD4oftbGovqE62UqXOmwBem31z16cfnrGAyorfC61Z1H3uM_Iv1ZFCDcPRYo9Y6HHFr8QsrK18OqK_z0ouMD6j9MGdYmqjG8Ngq"),
			},
			Negatives: []string{
				"token = \"ya29.CBGMmHSD4hMOFX3PEAVh\"\n",
				"access tokens start with ya29. followed by a long random string\n",
			},
		},
	}
}
