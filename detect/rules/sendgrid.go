package rules

// SendGrid (Twilio SendGrid) API keys.
func sendgrid() []Rule {
	return []Rule{
		prefixed("sendgrid-api-key", "SendGrid API key (SG. + 22 . 43)", KEY, []string{"SG."},
			`[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}`, 70,
			[]Sample{
				envSample("SENDGRID_API_KEY", "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"),
				textSample("sg = sendgrid.SendGridAPIClient('", "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", "')\n"),
			},
			[]string{
				"SENDGRID_API_KEY=SG.xxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"SENDGRID_API_KEY=SG.2C1b5qybIVWeHEOHSVvCBv.UVG3tIyzBJP7cpLIdcMh\n",
				"see SG.Client for details\n",
			}),
	}
}
