package rules

// age (age-encryption.org) X25519 secret keys, bech32-encoded.
func age() []Rule {
	return []Rule{
		{
			ID:            "age-secret-key",
			Description:   "age secret key (AGE-SECRET-KEY-1…, bech32 checksum)",
			Category:      PKEY,
			Keywords:      []string{"AGE-SECRET-KEY-1"},
			CaseSensitive: true,
			Pattern:       `(AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})` + endAlnum,
			SecretGroup:   1,
			MaxLen:        80,
			Validate:      Bech32,
			Positives: []Sample{
				textSample("# created: 2026-01-12T10:00:00Z\n# public key: age1x76dyzfa9hqyia9o189e50k6p3ew174y1e9c3ptnckjcx35aypu1przfav\n", "AGE-SECRET-KEY-16MEVVTJYVWEW32CYTZJSQLK0VPVA0KR7JV5A8RLA56ZR5SKGYQ4Q4QG5QR", "\n"),
				envSample("SOPS_AGE_KEY", "AGE-SECRET-KEY-1VUXR5LPWFNZ3FJA5CAQ0GTLXVLGVMCFGZLQLG8ZVY99GDW5ETVDSC3E28M"),
			},
			Negatives: []string{
				"SOPS_AGE_KEY=AGE-SECRET-KEY-1TA4AE7LZELXKJ0XT38H73NXJUSVLW5P3EY4N58DH67KCXCGPLHJS2L9AE8\n",
				"SOPS_AGE_KEY=AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
				"grep AGE-SECRET-KEY-1 keys.txt\n",
			},
		},
	}
}
