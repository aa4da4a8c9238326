package cli

import (
	"errors"
	"io/fs"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// Fabricated keys.
const (
	cfgTestKey      = "tk_test_5d2f8a1c9e7b3f6a0d4c8e2b7f1a5c9d3e6b0f4a8c2d7e1b5f9a3c6d0e4b8f2a"
	cfgAnthropicKey = "sk-ant-api03-Fq2ZbX9vK3mN7pL1rT5wY8aC4dE6gH0jQ2sU4xW6zB8nM1kP3oR5tV7yA9cF2hJ4lN6qS8uX0aD3gK5mP7rT9vY1bE4hK6nQ8tW0zC2fI4lO6rU8xA-Zq7Yw3AA"
)

func resolveWith(t *testing.T, cmd serverCmd, args []string, env map[string]string, file string) (*serverConfig, error) {
	t.Helper()
	flags := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cf := addConfigFlags(flags, cmd)
	if file != "" {
		args = append(args, "--config", "gw.yaml")
	}
	if err := flags.Parse(args); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	read := func(name string) ([]byte, error) {
		if name != "gw.yaml" {
			return nil, fs.ErrNotExist
		}
		return []byte(file), nil
	}
	return cf.resolve(lookup, read)
}

func TestConfigPrecedence(t *testing.T) {
	file := "listen_addr: 127.0.0.1:7001\nmode: live\nmax_body_bytes: 2MiB\nupstream_timeout: 90s\napi_keys:\n  - " + cfgTestKey + "\n"
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		listen string
	}{
		{"default", nil, nil, "127.0.0.1:8080"},
		{"file", nil, map[string]string{}, "127.0.0.1:7001"},
		{"env beats file", nil, map[string]string{"TAKUMO_LISTEN_ADDR": "127.0.0.1:7002"}, "127.0.0.1:7002"},
		{"flag beats env", []string{"--listen", "127.0.0.1:7003"}, map[string]string{"TAKUMO_LISTEN_ADDR": "127.0.0.1:7002"}, "127.0.0.1:7003"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := file
			if c.env == nil {
				f = ""
			}
			cfg, err := resolveWith(t, forGateway, c.args, c.env, f)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ListenAddr != c.listen {
				t.Errorf("listen %q, want %q", cfg.ListenAddr, c.listen)
			}
			if f != "" && (cfg.Mode != "live" || cfg.MaxBodyBytes != 2<<20 || cfg.UpstreamTimeout != 90*time.Second || len(cfg.APIKeys) != 1) {
				t.Errorf("file settings not applied: %v", cfg)
			}
		})
	}
}

func TestConfigEnvList(t *testing.T) {
	cfg, err := resolveWith(t, forExtProc, nil, map[string]string{
		"TAKUMO_API_KEYS": cfgTestKey + ", " + strings.Replace(cfgTestKey, "5d2f", "6e3a", 1), "TAKUMO_ANTHROPIC_API_KEY": cfgAnthropicKey,
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.APIKeys) != 2 || cfg.AnthropicKey != cfgAnthropicKey || cfg.ListenAddr != defaultExtProcListen {
		t.Errorf("got %v", cfg)
	}
	if s := cfg.String(); strings.Contains(s, cfgAnthropicKey) || strings.Contains(s, cfgTestKey) || !strings.Contains(s, redacted) {
		t.Errorf("String shows a secret or hides that one is set: %s", s)
	}
}

func TestConfigStrictFileReportsEverything(t *testing.T) {
	file := `listen_adr: 127.0.0.1:1
max_body_bytes: lots
log_format: xml
rate_limit_per_key: "12"
anthropic_url: ftp://example.com
dev: yes-please
mode: test
mode: live
anthropic_api_key:
  nested: ` + cfgAnthropicKey + `
api_keys: [tk_test_short]
upstream_timeout: 5
`
	_, err := resolveWith(t, forGateway, nil, map[string]string{}, file)
	var ce configErrors
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want configErrors", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`gw.yaml:1: unknown key "listen_adr" (did you mean "listen_addr"?)`,
		`gw.yaml:2: max_body_bytes:`,
		`gw.yaml:3: log_format: "xml" is not one of json, text`,
		`gw.yaml:4: rate_limit_per_key: want an integer, got a str`,
		`gw.yaml:5: anthropic_url:`,
		`gw.yaml:6: dev: want true or false, got a str`,
		`gw.yaml:8: "mode" is already set on line 7`,
		`gw.yaml:10: anthropic_api_key: want a string, got a mapping`,
		`gw.yaml:11: api_keys: an entry is not a Takumo key`,
		`gw.yaml:12: upstream_timeout: want a duration string such as 30s, got a int`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if len(ce) != 10 {
		t.Errorf("got %d problems, want 10:\n%s", len(ce), msg)
	}
	if strings.Contains(msg, cfgAnthropicKey) || strings.Contains(msg, "tk_test_short") {
		t.Errorf("an error message shows a secret:\n%s", msg)
	}
}

func TestConfigOtherCommandsKeysAndBadEnv(t *testing.T) {
	_, err := resolveWith(t, forExtProc, nil, map[string]string{"TAKUMO_MAX_VAULT_ENTRIES": "-3"}, "upstream_timeout: 5s\n")
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	for _, want := range []string{`"upstream_timeout" is not a setting of the extproc command`, `TAKUMO_MAX_VAULT_ENTRIES: max_vault_entries: "-3" is not a non-negative integer`} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in: %s", want, msg)
		}
	}
	_, err = resolveWith(t, forGateway, nil, map[string]string{"TAKUMO_OPENAI_API_KEY": " sk-proj-Lm4Np6Qr8St0Uv2Wx4 "}, "")
	if err == nil || strings.Contains(err.Error(), "Lm4Np6") {
		t.Errorf("a provider key with spaces: got %v, want an error that does not show it", err)
	}
}

func TestDevKey(t *testing.T) {
	k, fromEnv, err := devKeyFor(cfgTestKey)
	if err != nil || !fromEnv || k != cfgTestKey {
		t.Errorf("valid TAKUMO_DEV_KEY not used: %v %v", fromEnv, err)
	}
	for _, bad := range []string{"", "tk_live_" + cfgTestKey[8:], "tk_test_ABC", cfgTestKey + "0"} {
		k, fromEnv, err := devKeyFor(bad)
		if err != nil || fromEnv || !validTakumoKey(k) || !strings.HasPrefix(k, "tk_test_") || k == bad {
			t.Errorf("%q: got a key that is not a fresh tk_test_ key (from env %v, err %v)", bad, fromEnv, err)
		}
	}
	k1, _, _ := devKeyFor("")
	k2, _, _ := devKeyFor("")
	if k1 == k2 {
		t.Error("two generated dev keys are equal")
	}
}

func TestDevLines(t *testing.T) {
	var b strings.Builder
	addr := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	if err := printDevLines(&b, cfgTestKey, addr); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"TAKUMO_API_KEY=" + cfgTestKey + "\n",
		"\nexport ANTHROPIC_BASE_URL=http://127.0.0.1:8080\n",
		"\nexport ANTHROPIC_API_KEY=" + cfgTestKey + "\n",
		"\nexport OPENAI_BASE_URL=http://127.0.0.1:8080/v1\n",
		"\nexport OPENAI_API_KEY=" + cfgTestKey + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(out, "TAKUMO_API_KEY=") {
		t.Errorf("the key line is not first:\n%s", out)
	}
}

func TestServerCommandsRefuseBadSetup(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"gateway without keys", []string{"gateway", "--listen", "127.0.0.1:0"}, "no Takumo API key", ExitError},
		{"extproc without keys", []string{"extproc", "--listen", "127.0.0.1:0"}, "no Takumo API key", ExitError},
		{"bad flag value", []string{"gateway", "--max-body-bytes", "huge"}, "--max-body-bytes: max_body_bytes", ExitError},
		{"missing config file", []string{"gateway", "--config", "/nonexistent/gw.yaml"}, "check the path", ExitError},
		{"policy bundle that cannot load", []string{"extproc", "--listen", "127.0.0.1:0", "--policy-bundle", "/nonexistent/bundle.tar.gz"}, "policy_bundle /nonexistent/bundle.tar.gz: first load failed", ExitError},
		{"bundle key without a bundle", []string{"extproc", "--listen", "127.0.0.1:0", "--policy-bundle-key", "/etc/hostname"}, "policy_bundle_key is set but policy_bundle is not", ExitError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("TAKUMO_API_KEYS", "")
			if strings.Contains(c.name, "bundle") {
				t.Setenv("TAKUMO_API_KEYS", cfgTestKey)
			}
			r := run(t, "", c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, c.code, c.want)
			}
		})
	}
}

func TestTokenSecret(t *testing.T) {
	const good = "8f3a2b1c9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
	cfg, err := resolveWith(t, forGateway, nil, map[string]string{"TAKUMO_TOKEN_SECRET": good}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TokenSecret) != 32 {
		t.Fatalf("token secret of %d bytes, want 32", len(cfg.TokenSecret))
	}
	if strings.Contains(cfg.String(), good) || strings.Contains(cfg.String(), good[:16]) {
		t.Errorf("String shows the token secret: %s", cfg)
	}
	for _, bad := range []string{"abc", "zz" + good[2:], good[:40]} {
		_, err := resolveWith(t, forExtProc, nil, map[string]string{"TAKUMO_TOKEN_SECRET": bad}, "")
		if err == nil || !strings.Contains(err.Error(), "64 hex characters") || strings.Contains(err.Error(), bad) {
			t.Errorf("token secret %q: got %v, want an error naming the format and not the value", bad, err)
		}
	}
}
