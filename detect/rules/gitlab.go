package rules

// GitLab: personal, project and group access tokens (legacy 20-character and
// routable forms) and the other gl-prefixed token families. Routable tokens
// carry a CRC32 whose exact encoding we do not check: their shape (payload,
// version, checksum fields) is already distinctive.
func gitlab() []Rule {
	return []Rule{
		{
			ID:            "gitlab-pat",
			Description:   "GitLab personal, project or group access token (glpat-), legacy and routable",
			Category:      TOKEN,
			Keywords:      []string{"glpat-"},
			CaseSensitive: true,
			Pattern:       startWord + `(glpat-(?:[A-Za-z0-9_-]{27,300}\.[0-9a-z]{2}\.?[0-9a-z]{7,9}|[A-Za-z0-9_-]{20}))` + endWord,
			SecretGroup:   1,
			MaxLen:        330,
			Validate:      MinEntropy(3.5),
			Positives: []Sample{
				envSample("GITLAB_TOKEN", "glpat-72d_Sc4r57y20kgm2_-P"),
				textSample("curl --header \"PRIVATE-TOKEN: ", "glpat-LlD5EnKPFCCcLVxWLEVAFsORs0_pS9DFUrdwxNF0Z29D.01.e2ivs9a10", "\" https://gitlab.com/api/v4/projects\n"),
				yamlSample("gitlab_token", "glpat-TWjA5zdeXnqdjXJ6dk1x"),
			},
			Negatives: []string{
				"GITLAB_TOKEN=glpat-xxxxxxxxxxxxxxxxxxxx\n",
				"GITLAB_TOKEN=glpat-FYva9PVLgZPn\n",
				"GITLAB_TOKEN=glpat-tunAaYDrV6kxnXOGvgUeQHJF\n",
				"token: glpat-<your-token>\n",
			},
		},
		gitlabRule("gitlab-pipeline-trigger-token", "GitLab pipeline trigger token (glptt-)", TOKEN, "glptt-", `[0-9a-f]{40}`,
			[]Sample{
				textSample("curl -X POST --fail -F token=", "glptt-c60c79c72402bfa1fc464402209b3d7bb357cb0d", " -F ref=main https://gitlab.com/api/v4/projects/42/trigger/pipeline\n"),
				envSample("TRIGGER_TOKEN", "glptt-37b578c121c97b0f3f893e48bb4e7233b574426c"),
			},
			[]string{"TRIGGER_TOKEN=glptt-0000000000000000000000000000000000000000\n", "token=glptt-fc70d24224e56f5a7208a23108649534\n"}),
		gitlabRule("gitlab-runner-token", "GitLab runner authentication token (glrt-)", TOKEN, "glrt-", `(?:t\d_)?[A-Za-z0-9_-]{20,300}(?:\.[0-9a-z]{2}\.?[0-9a-z]{7,9})?`,
			[]Sample{
				textSample("[[runners]]\n  name = \"docker-runner\"\n  url = \"https://gitlab.com\"\n  token = \"", "glrt-774trm-LD51dGXNalX1L", "\"\n  executor = \"docker\"\n"),
				textSample("gitlab-runner register --non-interactive --url https://gitlab.com --token ", "glrt-t1_bKyaUTwSHMlT5UHTs9Tm", " --executor shell\n"),
			},
			[]string{"token = \"glrt-xxxxxxxxxxxxxxxxxxxx\"\n", "token = \"glrt-mZcuk9dbWA\"\n"}),
		gitlabRule("gitlab-deploy-token", "GitLab deploy token (gldt-)", TOKEN, "gldt-", `[A-Za-z0-9_-]{20}`,
			[]Sample{
				textSample("docker login -u gitlab+deploy-token-17 -p ", "gldt-QXdM4KjpKE8g6qYkRDIp", " registry.gitlab.com\n"),
				envSample("CI_DEPLOY_PASSWORD", "gldt-V3shJOy1DSHp6aJWN4Zk"),
			},
			[]string{"CI_DEPLOY_PASSWORD=gldt-<deploy-token>\n", "CI_DEPLOY_PASSWORD=gldt-b09Rt2AW\n"}),
		gitlabRule("gitlab-ci-job-token", "GitLab CI/CD job token (glcbt-)", TOKEN, "glcbt-", `[0-9a-zA-Z]{1,5}_[A-Za-z0-9_-]{20}`,
			[]Sample{
				textSample("curl --header \"JOB-TOKEN: ", "glcbt-64_ziYCD3LWKsst-hMytK7R", "\" \"${CI_API_V4_URL}/projects/1/packages/generic/app/1.0/app.tar\"\n"),
				jsonSample("job_token", "glcbt-1a2_a4Cxhwka9oRET04lNypz"),
			},
			[]string{"JOB-TOKEN: glcbt-xxxxx_xxxxxxxxxxxxxxxxxxxx\n", "JOB-TOKEN: glcbt-64_Xdv2cuwz1\n"}),
		gitlabRule("gitlab-feed-token", "GitLab feed token (glft-)", TOKEN, "glft-", `[A-Za-z0-9_-]{20}`,
			[]Sample{
				textSample("url: https://gitlab.com/dashboard/projects.atom?feed_token=", "glft-uKx-aDmNGsI1rnGYGTGI", "\n"),
				envSample("GITLAB_FEED_TOKEN", "glft-cWQf97uA0JABHJTIm9wn"),
			},
			[]string{"feed_token=glft-xxxxxxxxxxxxxxxxxxxx\n", "feed_token=glft-6j0mYe\n"}),
		gitlabRule("gitlab-incoming-mail-token", "GitLab incoming mail token (glimt-)", TOKEN, "glimt-", `[A-Za-z0-9_-]{25}`,
			[]Sample{
				yamlSample("incoming_email_token", "glimt-swt33r0xxlkcz127mvmgqng5v"),
				envSample("INCOMING_EMAIL_TOKEN", "glimt-hdcxgwopebr31nst270k50fbe"),
			},
			[]string{"glimt-xxxxxxxxxxxxxxxxxxxxxxxxx\n", "token glimt-nbxefp3sj6yz\n"}),
		gitlabRule("gitlab-agent-token", "GitLab agent for Kubernetes token (glagent-)", TOKEN, "glagent-", `[A-Za-z0-9_-]{50}`,
			[]Sample{
				textSample("helm upgrade --install k8s-agent gitlab/gitlab-agent --set config.token=", "glagent-eosZtwcpn5Th9Z756j5WZE9y2CYPTp54PFWIFfLtjyeCbNPXU3", " --set config.kasAddress=wss://kas.gitlab.com\n"),
				yamlSample("token", "glagent-WJyYFO7nLKjGCscVU1IouztzSod8VxHhLEjfAXXkO7UGp7pWUV"),
			},
			[]string{"config.token=glagent-<token>\n", "token: glagent-q7xpkyOnYUiu9X5XdzCv\n"}),
		gitlabRule("gitlab-oauth-app-secret", "GitLab OAuth application secret (gloas-)", SECRET, "gloas-", `[A-Za-z0-9_-]{64}`,
			[]Sample{
				envSample("GITLAB_OAUTH_SECRET", "gloas-e8b750b109a5c6b0d803592fa8b244abd0db6c8c998ebe2f7c4aa3efefb06f2a"),
				jsonSample("client_secret", "gloas-8u3cOO1yuEzKxqYF9eC4JnyiieuqCjNhJmHv1d1R0sSqM3fNhrkUm7pRWSJFIx4X"),
			},
			[]string{"GITLAB_OAUTH_SECRET=gloas-${SECRET}\n", "client_secret: gloas-0784778fb80866b98b0c77b3fb92104baf6072e7\n"}),
		gitlabRule("gitlab-scim-token", "GitLab SCIM OAuth token (glsoat-)", TOKEN, "glsoat-", `[A-Za-z0-9_-]{20}`,
			[]Sample{
				envSample("GITLAB_SCIM_TOKEN", "glsoat-OtAaBLdG5rj91dtvUdRU"),
				textSample("Authorization: Bearer ", "glsoat-cqD8C95wWl1XUp61HA2g", "\n"),
			},
			[]string{"GITLAB_SCIM_TOKEN=glsoat-xxxxxxxxxxxxxxxxxxxx\n", "token glsoat-h7c9268QLZ\n"}),
		gitlabRule("gitlab-feature-flag-token", "GitLab feature flags client token (glffct-)", TOKEN, "glffct-", `[A-Za-z0-9_-]{20}`,
			[]Sample{
				jsSample("instanceId", "glffct-Ncg5a9pkEODbh1LmK8xV"),
				envSample("UNLEASH_INSTANCE_ID", "glffct-LmfCPZy2GjhEwM0PHHSl"),
			},
			[]string{"UNLEASH_INSTANCE_ID=glffct-xxxxxxxxxxxxxxxxxxxx\n", "UNLEASH_INSTANCE_ID=glffct-788XD\n"}),
		gitlabRule("gitlab-runner-registration-token", "GitLab runner registration token (GR1348941)", TOKEN, "GR1348941", `[A-Za-z0-9_-]{20}`,
			[]Sample{
				textSample("gitlab-runner register --url https://gitlab.com --registration-token ", "GR13489417TtvgSWwGIWMPX08RFN6", "\n"),
				envSample("REGISTRATION_TOKEN", "GR13489417hoXnUf6CRnaiQ6MXiQT"),
			},
			[]string{"REGISTRATION_TOKEN=GR1348941xxxxxxxxxxxxxxxxxxxx\n", "REGISTRATION_TOKEN=GR13489418ZAeMIiU\n"}),
		{
			ID:          "gitlab-session-cookie",
			Description: "GitLab session cookie (_gitlab_session=)",
			Category:    TOKEN,
			Keywords:    []string{"_gitlab_session="},
			Pattern:     `_gitlab_session=([0-9a-f]{32})(?:[^0-9a-zA-Z]|$)`,
			SecretGroup: 1,
			MaxLen:      64,
			Validate:    MinEntropy(3),
			Positives: []Sample{
				textSample("curl -b \"_gitlab_session=", "4fabc60cec401edcf52ee5b1f1bcd50f", "\" https://gitlab.example.com/-/profile\n"),
				textSample("Cookie: known_sign_in=abc; _gitlab_session=", "d1b996717f8f2e1b6df27cbdec7030be", "; event_filter=all\n"),
			},
			Negatives: []string{
				"Cookie: _gitlab_session=00000000000000000000000000000000\n",
				"Cookie: _gitlab_session=f3c6ff7bcb87e19601f7\n",
			},
		},
	}
}

// gitlabRule builds the rule of a gl-prefixed token family.
func gitlabRule(id, desc string, cat Category, prefix, body string, pos []Sample, neg []string) Rule {
	return prefixed(id, desc, cat, []string{prefix}, body, len(prefix)+330, pos, neg)
}
