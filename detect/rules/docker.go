package rules

// Docker: Docker Hub personal and organization access tokens, and the
// base64 credentials in a Docker config.json.
func docker() []Rule {
	return []Rule{
		prefixed("docker-hub-pat", "Docker Hub personal access token (dckr_pat_)", TOKEN, []string{"dckr_pat_"},
			`[A-Za-z0-9_-]{27}`, 36,
			[]Sample{
				textSample("echo \"", "dckr_pat_AF4rkba1g3ZtHJ3kZvlyI-E_Cxj", "\" | docker login -u ci-bot --password-stdin\n"),
				envSample("DOCKERHUB_TOKEN", "dckr_pat_1RDRB2aIpJJyNGdQlFWX5drFkDO"),
			},
			[]string{
				"DOCKERHUB_TOKEN=dckr_pat_xxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"DOCKERHUB_TOKEN=dckr_pat_FSznga1J3YKi\n",
			}),
		prefixed("docker-hub-org-token", "Docker Hub organization access token (dckr_oat_)", TOKEN, []string{"dckr_oat_"},
			`[A-Za-z0-9_-]{32}`, 41,
			[]Sample{
				yamlSample("docker_password", "dckr_oat_hrnvVZChPkePo3EqP_KmcMwyCO7DN_Td"),
				envSample("DOCKER_ORG_TOKEN", "dckr_oat_8U5h6ePgfbf7WVrbrOmHJcmr6LQqbArJ"),
			},
			[]string{
				"DOCKER_ORG_TOKEN=dckr_oat_${TOKEN}\n",
				"DOCKER_ORG_TOKEN=dckr_oat_L0D9WX12qo\n",
			}),
		{
			ID:          "docker-config-auth",
			Description: "Base64 user:password in a Docker config.json auths entry",
			Category:    SECRET,
			Keywords:    []string{`"auth"`},
			Pattern:     `"auth"\s*:\s*"([A-Za-z0-9+/]{8,400}={0,2})"`,
			SecretGroup: 1,
			MaxLen:      420,
			Validate:    BasicAuth,
			Positives: []Sample{
				textSample("{\n  \"auths\": {\n    \"registry.acme.io\": {\n      \"auth\": \"", "Y2ktYm90OjVoVmdtUTN2bExRajZqa0VEVktj", "\"\n    }\n  }\n}\n"),
				textSample("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"", "YWNtZTpkY2tyX3BhdF9CbkxwS0ZjXzBsdFhnZDVkdDdFZGpTbllIZ0I=", "\"}}}\n"),
			},
			Negatives: []string{
				"{\"auths\":{\"ghcr.io\":{\"auth\":\"dXNlcjpwYXNzd29yZA==\"}}}\n",
				"{\"auth\": \"bearer\"}\n",
				"{\"auth\": \"bm8tY29sb24taGVyZQ==\"}\n",
			},
		},
	}
}
