package rules

// Passwords in the user information of a URL of any scheme
// (https://user:password@host). Only the password is the secret. Database
// and broker schemes have their own rules that report the whole URL; this
// rule is Generic so that theirs win where both match.
func urlAuth() []Rule {
	return []Rule{
		{
			ID:          "url-credentials",
			Description: "Password in the user information of a URL (scheme://user:password@host)",
			Category:    SECRET,
			Keywords:    []string{"://"},
			// Starts at the literal "://" (no scheme, no counted repeats) so
			// the regexp engine jumps between "://" occurrences, which are
			// everywhere in source code, instead of trying every position.
			Pattern:     `://[^\s:@/?#"'\x60<>]+:([^\s@/?#"'\x60<>]+)@[A-Za-z0-9.\-\[\]]+`,
			SecretGroup: 1,
			MaxLen:      420,
			Validate:    URLPassword,
			Generic:     true,
			Positives: []Sample{
				textSample("git clone https://ci-bot:", "LJTrCx5eaUDQ7WcGyWn1MW7R", "@git.acme.io/platform/infra.git\n"),
				textSample("HTTP_PROXY=http://svc-proxy:", "64N0i8vqd0aQkZ", "@proxy.acme.io:3128\n"),
				textSample("[[smtp]]\nurl = \"smtps://alerts%40acme.io:", "qw4tIoS5ZuAa7gBs", "@smtp.acme.io:465\"\n"),
			},
			Negatives: []string{
				"git clone https://oauth2:${CI_JOB_TOKEN}@gitlab.com/acme/app.git\n",
				"see https://docs.acme.io:443/setup for details\n",
				"git clone git@github.com:acme/app.git\n",
				"proxy: http://user:password@proxy:3128\n",
				"url: https://<user>:<token>@example.com/\n",
			},
		},
	}
}
