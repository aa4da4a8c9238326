package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// Fabricated values for custom rules.
const (
	acmeToken = "acme_5f0c2e9a7b1d4c3e8f6a0b2d4c6e8a1f"
	istToken  = "ist_Q7vX2mK9pL4wR8tY3nB6cJ1hF5dG0sA2zE4uW7iO"
)

func init() { allSecrets = append(allSecrets, acmeToken, istToken) }

func TestScanPolicyAndGitleaks(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"policy.yaml": `version: 1
rules:
  - id: acme-internal-token
    description: ACME internal service token
    regex: 'acme_[0-9a-f]{32}'
    category: TOKEN
    keywords: [acme_]
actions:
  categories: {HOST: tokenize, KEY: "off"}
`,
		"bad-policy.yaml": "version: 2\nrulez: []\n",
		"gitleaks.toml": `[[rules]]
id = "internal-service-token"
description = "Internal service token"
regex = '''\b(ist_[A-Za-z0-9]{40})\b'''
keywords = ["ist_"]
tags = ["TOKEN"]
`,
		"src/a.txt": "t=" + acmeToken + "\nh=" + host1 + "\nk=" + awsKey1 + "\ni=" + istToken + "\n",
	})
	src := filepath.Join(dir, "src")
	for _, tc := range []struct {
		name string
		args []string
		want []string // rule ids found, in order
		code int
	}{
		{"built-in only", []string{src}, []string{"internal-host", "aws-access-key-id"}, ExitFindings},
		{"policy adds a rule and overrides actions", []string{"--policy", filepath.Join(dir, "policy.yaml"), src},
			[]string{"acme-internal-token", "internal-host"}, ExitFindings},
		{"gitleaks import", []string{"--gitleaks-config", filepath.Join(dir, "gitleaks.toml"), src},
			[]string{"internal-host", "aws-access-key-id", "gitleaks-internal-service-token"}, ExitFindings},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", append([]string{"scan", "--show-monitor"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			var got []string
			for _, line := range strings.Split(r.stdout, "\n") {
				if f := strings.Fields(line); len(f) >= 3 && strings.HasSuffix(f[0], ":") {
					got = append(got, f[1])
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("rules %v, want %v\n%s", got, tc.want, r.stdout)
			}
		})
	}
	t.Run("a broken policy is a usage-level error naming the file", func(t *testing.T) {
		r := run(t, "", "scan", "--policy", filepath.Join(dir, "bad-policy.yaml"), src)
		if r.code != ExitError || !strings.Contains(r.stderr, "bad-policy.yaml") {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}
