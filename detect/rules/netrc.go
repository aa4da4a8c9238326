package rules

// .netrc and _netrc entries (machine … login … password …), used by curl,
// git, ftp and the Heroku CLI. The password is the secret.
func netrc() []Rule {
	return []Rule{
		{
			ID:          "netrc-password",
			Description: "Password of a .netrc machine entry",
			Category:    SECRET,
			Keywords:    []string{"machine"},
			Pattern:     `(?:^|\s)machine\s+\S+\s+(?:login\s+\S+\s+)?password\s+(\S+)`,
			SecretGroup: 1,
			MaxLen:      400,
			Validate:    NotPlaceholder,
			Positives: []Sample{
				textSample("machine api.heroku.com\n  login ops@acme.io\n  password ", "57e2538f-d45d-4325-a08e-3d4f6bbff760", "\nmachine git.heroku.com\n"),
				textSample("machine artifacts.acme.io login ci password ", "N41BpfdLihJiOHkyGF", "\n"),
			},
			Negatives: []string{
				"machine learning models need data\n",
				"machine ftp.acme.io login anonymous password changeme\n",
				"machine ftp.acme.io\n  login ci\n  password $FTP_PASSWORD\n",
			},
		},
	}
}
