package rules

// DigitalOcean: personal access, OAuth and refresh tokens (prefix + 64 hex).
func digitalocean() []Rule {
	return []Rule{
		prefixed("digitalocean-pat", "DigitalOcean personal access token (dop_v1_)", TOKEN, []string{"dop_v1_"},
			`[a-f0-9]{64}`, 71,
			[]Sample{
				envSample("DIGITALOCEAN_TOKEN", "dop_v1_87cf675258d10cc333451dca57b20573edd4f8e373d380fbe275b0d1c09da581"),
				textSample("doctl auth init --access-token ", "dop_v1_17af34ff32b746e9cb07441a0ff3c3d810fa2e4bb7616dd6eaf21894d6992f91", "\n"),
			},
			[]string{
				"DIGITALOCEAN_TOKEN=dop_v1_0000000000000000000000000000000000000000000000000000000000000000\n",
				"DIGITALOCEAN_TOKEN=dop_v1_c8c57297d00374f16d34884d50cc13444b13f23b\n",
			}),
		prefixed("digitalocean-oauth-token", "DigitalOcean OAuth access token (doo_v1_)", TOKEN, []string{"doo_v1_"},
			`[a-f0-9]{64}`, 71,
			[]Sample{
				jsonSample("access_token", "doo_v1_6ca698d77f3a11ba097cf10eaf31e3eab485436f0f93c00daf19ec95d7adc5df"),
				goShortSample("token", "doo_v1_1f0e8ca33c16d93cf19678d3191b05790f4bb5a25a5ca6c29a9be807d88f4ea0"),
			},
			[]string{
				"access_token: doo_v1_<token>\n",
				"access_token: doo_v1_575d54c62921f43cb495389acdecc923ef039141585dd277fcaa1798fdd57fcd0\n",
			}),
		prefixed("digitalocean-refresh-token", "DigitalOcean OAuth refresh token (dor_v1_)", TOKEN, []string{"dor_v1_"},
			`[a-f0-9]{64}`, 71,
			[]Sample{
				jsonSample("refresh_token", "dor_v1_82b00eacf84a52eb17ef66fdd611e596a45b9cc03db2fbfca71137880651465a"),
				envSample("DO_REFRESH_TOKEN", "dor_v1_b16437e6f978aa59a57e2e407fe2b2636da03c0dbffee962c0bb80d10b3c0051"),
			},
			[]string{
				"refresh_token: dor_v1_xxxxxxxx\n",
				"refresh_token: dor_v1_RfYUgeldjX9Ea2CBDPjqz378csPXB264vB5RZBoTJL7OyciZmhmYjcLSR5zK3pLJ\n",
			}),
	}
}
