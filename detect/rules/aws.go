package rules

// Amazon Web Services: access key ids (validated by the account id they
// encode), secret access keys and session tokens by name, and Bedrock API
// keys.
func aws() []Rule {
	return []Rule{
		{
			ID:            "aws-access-key-id",
			Description:   "AWS access key id (AKIA long-term, ASIA temporary, ABIA, ACCA)",
			Category:      KEY,
			Keywords:      []string{"AKIA", "ASIA", "ABIA", "ACCA"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9])((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?:[^A-Za-z0-9]|$)`,
			SecretGroup:   1,
			MaxLen:        24,
			Validate:      AWSKeyID,
			Positives: []Sample{
				envSample("AWS_ACCESS_KEY_ID", "AKIABTVVYOCDLBEIZ5FZ"),
				textSample("[default]\naws_access_key_id = ", "ASIAIUPQQ7PHH7OW3MOR", "\nregion = us-east-1\n"),
				jsonSample("AccessKeyId", "AKIAX475ZUOJUZAOVIKE"),
			},
			Negatives: []string{
				"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
				envSample("AWS_ACCESS_KEY_ID", "AKIA6SIVB3ZTHBZY3X4E").Text,
				"key := \"AKIA1234567890ABCDEF\" // digits 0, 1, 8, 9 are not base32\n",
				"id = \"XAKIAAKIAMBTPMRZT3CU5U5DK\"\n",
				"AKIAMKBIFZPZOY2AW5M is too short\n",
			},
		},
		{
			ID:          "aws-secret-access-key",
			Description: "AWS secret access key assigned to a name such as aws_secret_access_key",
			Category:    SECRET,
			Keywords:    []string{"secret_access_key", "secretaccesskey", "secret-access-key", "aws_secret", "awssecret", "aws-secret"},
			Pattern:     named(`secret[_-]?access[_-]?key|aws[_-]?secret`, `[A-Za-z0-9/+]{40}`, endB64),
			SecretGroup: 1,
			MaxLen:      128,
			Validate:    All(NotPlaceholder, MinEntropy(3.5)),
			Positives: []Sample{
				textSample("[default]\naws_access_key_id = AKIAFI3LCBAFB5VT4UAM\naws_secret_access_key = ", "B8sO/2pkDqs08GVnWWKaFteQoYQSBFgCjk93OFUf", "\n"),
				envSample("AWS_SECRET_ACCESS_KEY", "a+yvCpi59v0hqZgpVb5QprU/F5veZIUwNfJxgVgk"),
				jsonSample("SecretAccessKey", "76IQVq0KdCgVOPRagT/Jd3wMHAVMbR9KB58agGT7"),
				pySample("aws_secret_key", "Ls5tHyALT5wfJd7+/ERiVPgnzK49eLPvKsLHhS46"),
				k8sEnvSample("AWS_SECRET_ACCESS_KEY", "3a1h07+MZVwNIyOXT+IwRRMvVv9UenFRX5yS6Vjv"),
				textSample("os.Setenv(\"AWS_SECRET_ACCESS_KEY\", \"", "oM60dUW0TANz6mdLLjUfYdTAaynTsEpjEvJSvTvb", "\")\n"),
			},
			Negatives: []string{
				"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
				"AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}\n",
				"aws_secret_access_key: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"aws_secret_access_key = SJ20bCy3ADcS3sKR185HlutwNSd/gXrh3dUKy8cXm\n",
				"secret_access_key = \"XbLRgWlq+WC/Apnhlpc+G3TMvlIOgu\"\n",
			},
		},
		{
			ID:          "aws-session-token",
			Description: "AWS session token assigned to aws_session_token, aws_security_token or X-Amz-Security-Token",
			Category:    TOKEN,
			Keywords:    []string{"aws_session_token", "awssessiontoken", "aws-session-token", "aws_security_token", "awssecuritytoken", "x-amz-security-token"},
			Pattern:     named(`aws[_-]?session[_-]?token|aws[_-]?security[_-]?token|x-amz-security-token`, `[A-Za-z0-9/+]{100,}={0,2}`, endB64),
			SecretGroup: 1,
			MaxLen:      2200,
			Validate:    All(NotPlaceholder, MinEntropy(4)),
			Positives: []Sample{
				textSample("[default]\naws_access_key_id = ASIAAGLTEWOBQHESW45M\naws_session_token = ", "IQoJb3JpZ2luX2VjEWmamWiLgzxFQdK/5ix11LFJzn/xC8XMVtyBtx+mc4s/X/phq17qcSiYOBdXu5N8IKG9ICp8VMZiAL3SSvnAgEZEADI1wYTs0i2Egn5izAwt6sjo8Et+zIaxIattiOI86IV7VQ7MtxF+/fzZkA4JcWRLS/dJkkfNm+znsa98Ozk6cJbU6T7WNXjBJLqOV+8HoImMF4EjoJuDeIAUw78qRY1lBmsfCjE6u+fyzK36RsZfATJEBrcMy7aNx3CgQp7upVoZqn/N5lia87EQly8jwJTPCqt3wocklK9", "\n"),
				envSample("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEWcntKRhiTtpzY6t0JV8To+lnauh+W8rFmSXcc44iAgYZx4DVIZGeVQaCPPpodTE4sREF7Q5Nymeb2unaZxw4hof5ce7Sy8aIIPOVfBXA0grqn3Ffy2SVo1PLH3PrrRXhqLcENFMtCEg4mamDUvQA19fhiwbeY4q8rXyT7kX5wxAphaYQAQ5bsRGLa1UOsAzqy1Rehsi6DM/TtQ7wu8osaoNHWeiKRl/fXsi0NEW3bAtqkTbS"),
				textSample("curl -H \"X-Amz-Security-Token: ", "IQoJb3JpZ2luX2VjEfjvcUmx0QIcB3K3sdRQZp6I70S+Er35Tj6FkgByIQbTyy+ijBSdXvZm5uEe6hz9yN9lxIlDXlMWdgPUMnPiL4+YWgTLGbJxEXOWZKrKwEqpvOIyWpUeukBfoFcJVAby4Nf9kxJKwO5C5qRzR1yRZX7qmjvj4vVnghy14R9EdrQxZ33YXfq4tBwEoueR5EA912wxj3z1DlCoBWuRWvYvDQZgXAVF60oWGOVREgly6HtLN9vUGHLpOV436GLr5YSRjnfLUUwCcAPs6tqzy27mAxMC2XqClNrcmnOHCF165wbGZ5Rgytjhkhv2mUMRJJ1bnBAY4fT2cdS=", "\" https://s3.amazonaws.com/\n"),
			},
			Negatives: []string{
				"AWS_SESSION_TOKEN=${AWS_SESSION_TOKEN}\n",
				"aws_session_token = \"GNPT/1N0SaR7JZo/ELv3IX/2CycL/xn807yXz9dPFbCYE7PT+LKpXHy/NEzi\"\n",
				"aws_session_token: <paste the session token here>\n",
			},
		},
		{
			ID:            "aws-session-token-prefix",
			Description:   "AWS STS session token recognised by its serialized prefix",
			Category:      TOKEN,
			Keywords:      []string{"IQoJb3JpZ2luX2Vj", "FwoGZXIvYXdz"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9+/])((?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdz)[A-Za-z0-9/+]{100,}={0,2})` + endB64,
			SecretGroup:   1,
			MaxLen:        2100,
			Validate:      MinEntropy(4),
			Positives: []Sample{
				jsonSample("SessionToken", "IQoJb3JpZ2luX2VjE3k1NMMLZ/uckvxaJosKvqVTbIywUUsil0eYaS9fsO4YQUeLTto0CDXpGzCGdAPMOWT7Xz7N9f1hGPBR0CbACAShhANQ6OCSHHnwB9kc8gem4qaSKkq85xVXcn7JrDgME6wdfrBiaaB3oJRGrVQkmGDZ47CrsUfafgt4Wqr1iifOmiaIsjp05ZcVHny4KjgmOPsIhd3sUaTUZ+JtGtJzJVcx6U2ke/vMaKiIFadr92TKyjLCW5VAbOUFbyPvAodcNO7LA/75tNW1W157YHSWlEDeXsWs572xv7Iz63N5Pmt1PRygiIT3OBzEPo54e2e/Rs/RBjTmOYJ/u6Q6FubRMbk7QU+D6QwxOSi5OhD0uDBs/PAhcaG3BonzxmSkXVOUyjKi3RVJ7sGO3gycR"),
				goShortSample("token", "FwoGZXIvYXdzEbaFIYaiJr7peG66ZA+EOQaSYayb5kQz2agEZBYTGx6oEPFUGKAgbAq3Hb9HfhprsQEzI3jjbcOVghVtiDBjiR3K+r43fFF7Bff8ZMiHOHkLWXKd0Mb6VogGRODHGUfmmpj9bXlc3PvCkhMkTMJf1zAabtvhDiBSlNMHkT3kk5NjFcEYYfHfe2401xrEZ4rw90iK/aImY=="),
			},
			Negatives: []string{
				"token = \"IQoJb3JpZ2luX2VjE1vgwxhMXq7c34V6EfId2QoLybXlLUgxiU88AhHQO\"\n",
				"prefix FwoGZXIvYXdz is how STS tokens start\n",
			},
		},
		{
			ID:            "aws-secret-access-key-paired",
			Description:   "AWS secret access key written right after its access key id (positional arguments, CSV, credential pairs)",
			Category:      SECRET,
			Keywords:      []string{"AKIA", "ASIA"},
			CaseSensitive: true,
			Pattern:       `(?:AKIA|ASIA)[A-Z2-7]{16}(?:[^A-Za-z0-9/+=][\s\S]{0,120}?)?[^A-Za-z0-9/+=]([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`,
			SecretGroup:   1,
			MaxLen:        190,
			Validate:      All(NotPlaceholder, MinEntropy(4), mixedBase64),
			Positives: []Sample{
				textSample("credentials.NewStaticCredentialsProvider(\n\t\"AKIABTVVYOCDLBEIZ5FZ\",\n\t\"", "lBUqMAiQckGDMcOywNyGhIC1v26N0TWFuNVWvPJu", "\",\n\t\"\",\n)\n"),
				textSample("Access key ID,Secret access key\nAKIABTVVYOCDLBEIZ5FZ,", "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", "\n"),
			},
			Negatives: []string{
				"aws_access_key_id = AKIABTVVYOCDLBEIZ5FZ\ncommit = \"67073689ca037ed19ae039432ec3c6a440b169b2\"\n",
				"AKIA6SIVB3ZTHBZY3X4E is the key; the secret is in ${AWS_SECRET_ACCESS_KEY}\n",
			},
		},
		{
			ID:            "aws-bedrock-api-key",
			Description:   "Amazon Bedrock long-term API key (ABSK + base64 of BedrockAPIKey-…)",
			Category:      KEY,
			Keywords:      []string{"ABSKQmVkcm9ja0FQSUtleS"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9+/])(ABSK[A-Za-z0-9+/]{100,300}={0,2})` + endB64,
			SecretGroup:   1,
			MaxLen:        320,
			Validate:      func(b []byte) bool { return Base64Prefix("BedrockAPIKey-")(b[4:]) },
			Positives: []Sample{
				envSample("AWS_BEARER_TOKEN_BEDROCK", "ABSKQmVkcm9ja0FQSUtleS1qd2Z2LWF0LTk1MTg2NjgzNzQ5OTpSYkFMWjJuZ1p3S0d3VHI3UVJMcENNY2trVUZNUVFweks3aWtDNWFvZFB4Tg=="),
				pySample("bedrock_key", "ABSKQmVkcm9ja0FQSUtleS1jdjJhLWF0LTMwMTU0MzU5NDExNTo2WFN1dnJQdDZxRHBZaWFwd0FkeGtobUJiemp1VE4rbFZEeUo5UUVJUDE5cw=="),
			},
			Negatives: []string{
				"AWS_BEARER_TOKEN_BEDROCK=ABSKQmVkcm9ja0FQSUtleS0=\n",
				"key = \"ABSKQmVkcm9ja0FQSUtleSYTPsFems3vZmjI5aHHwZubHQvs6ghF\"\n",
			},
		},
	}
}

// mixedBase64 accepts a value with upper-case letters, lower-case letters
// and digits, as a random base64 secret of 40 characters has; hex digests
// and words do not.
func mixedBase64(b []byte) bool {
	var up, low, dig bool
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			low = true
		case c >= '0' && c <= '9':
			dig = true
		}
	}
	return up && low && dig
}
