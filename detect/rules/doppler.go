package rules

// Doppler tokens: personal, service, service account, CLI, SCIM and audit
// (dp.<kind>. + 40-44 alphanumerics; service tokens name
// their config first: dp.st.<config>.<token>).
func doppler() []Rule {
	return []Rule{
		prefixed("doppler-token", "Doppler API token (dp.pt., dp.st., dp.sa., dp.ct., dp.scim., dp.audit.)", TOKEN,
			[]string{"dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."},
			`(?:[A-Za-z0-9_-]{1,40}\.)?[A-Za-z0-9]{40,44}`, 100,
			[]Sample{
				envSample("DOPPLER_TOKEN", "dp.st.prd.AuBxMv2SVpnH2WznWQySiVwVmKlL53JlKWIpCSS7wRL"),
				textSample("doppler configure set token ", "dp.pt.5uFfvcI9AZXlXlajmCaEf8Pw9lLyueAOmF2NKciHTlK", " --scope /\n"),
			},
			[]string{
				"DOPPLER_TOKEN=dp.st.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"DOPPLER_TOKEN=dp.pt.726xUheFyQFrRGKgfIyC\n",
			}),
	}
}
