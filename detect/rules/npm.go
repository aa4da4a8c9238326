package rules

// npm: granular and automation access tokens (npm_ + 30 base62 + CRC32, the
// GitHub scheme) and the auth entries of an .npmrc file.
func npm() []Rule {
	return []Rule{
		{
			ID:            "npm-access-token",
			Description:   "npm access token (npm_, checksummed)",
			Category:      TOKEN,
			Keywords:      []string{"npm_"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9_])(npm_[A-Za-z0-9]{36})(?:[^A-Za-z0-9_]|$)`,
			SecretGroup:   1,
			MaxLen:        48,
			Validate:      GitHubChecksum,
			Positives: []Sample{
				textSample("//registry.npmjs.org/:_authToken=", "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", "\n"),
				envSample("NPM_TOKEN", "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"),
			},
			Negatives: []string{
				"NPM_TOKEN=npm_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"NPM_TOKEN=npm_3QZBR3f9ijCsPNyfVHf163I5bIkJDi2GQqNA\n",
				"run: npm_config_cache=/tmp/npm npm ci\n",
			},
		},
		{
			ID:          "npmrc-auth-token",
			Description: "Registry auth token in an .npmrc or .yarnrc (_authToken=)",
			Category:    TOKEN,
			Keywords:    []string{"_authtoken"},
			Pattern:     `(?i)_authToken["']?\s*[=:]\s*["']?([A-Za-z0-9_.+/=-]{20,200})` + `(?:[^A-Za-z0-9_.+/=-]|$)`,
			SecretGroup: 1,
			MaxLen:      240,
			Validate:    All(NotPlaceholder, MinEntropy(3)),
			Positives: []Sample{
				textSample("registry=https://npm.pkg.acme.io/\n//npm.pkg.acme.io/:_authToken=", "11e7cbc4-4fa3-255f-077c-35bc4a711856", "\nalways-auth=true\n"),
				textSample("npmScopes:\n  acme:\n    npmAuthToken: x\n    npmRegistryServer: \"https://npm.acme.io\"\n//npm.acme.io/:_authToken=\"", "MghyLJXOtxLiwu4PHfxz3YR3D-jJJJYaKXLbrdpKfSfEmJoN4RbJCVojhrLVL2s-", "\"\n"),
			},
			Negatives: []string{
				"//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n",
				"//registry.npmjs.org/:_authToken=<token>\n",
			},
		},
		{
			ID:          "npmrc-basic-auth",
			Description: "Base64 user:password in an .npmrc (_auth=)",
			Category:    SECRET,
			Keywords:    []string{"_auth="},
			Pattern:     `(?:^|[^A-Za-z0-9])_auth\s*=\s*["']?([A-Za-z0-9+/]{8,300}={0,2})` + endB64,
			SecretGroup: 1,
			MaxLen:      320,
			Validate:    BasicAuth,
			Positives: []Sample{
				textSample("registry=https://nexus.acme.io/repository/npm/\n_auth=", "ZGVwbG95Ok81RFpaNlF1Wk55UWZOVEtlaw==", "\nemail=ci@acme.io\n"),
				textSample("//nexus.acme.io/repository/npm/:_auth=\"", "Y2ktYm90OmlELlZPdkMtWFd5ak9UZk4=", "\"\n"),
			},
			Negatives: []string{
				"_auth=${NPM_AUTH}\n",
				"_auth=dXNlcjpjaGFuZ2VtZQ==\n",
				"_auth=0ieIA\n",
			},
		},
	}
}
