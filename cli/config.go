package cli

// Configuration of the server commands (gateway, extproc).
//
// Every setting has one name, spelt three ways: the YAML key of the
// --config file (listen_addr), the environment variable (TAKUMO_LISTEN_ADDR)
// and, unless it holds a secret, a flag (--listen-addr). DESIGN §10 lists
// the sources as "flags, then environment, then the YAML file"; we read that
// as an order of precedence, highest first:
//
//	flag given on the command line  >  TAKUMO_* variable  >  --config file  >  default
//
// so a file holds a site's settings, the environment of a deployment adjusts
// them, and a flag typed by an operator wins over both. A source replaces a
// lower one setting by setting, never merges inside a setting (a list given
// by the environment replaces the file's list).
//
// The file is parsed strictly: unknown keys, keys that belong to the other
// server command, duplicate keys and values of the wrong YAML type are
// errors, and all of them are reported at once, each naming the key and its
// line. An environment variable that does not parse is an error naming the
// variable. Unknown TAKUMO_* variables are ignored (the environment is shared
// with other programs).
//
// Secret settings (provider keys, Takumo API keys) have no flag, since
// command lines are visible to every user of the machine through ps; their
// values are never echoed in an error message and serverConfig.String
// redacts them.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// redacted stands in for a secret in every printed form of the config.
const redacted = "[REDACTED]"

// serverCmd says which server command a setting belongs to.
type serverCmd uint8

const (
	forGateway serverCmd = 1 << iota
	forExtProc
	forBoth = forGateway | forExtProc
)

func (c serverCmd) String() string {
	if c == forExtProc {
		return "extproc"
	}
	return "gateway"
}

// Defaults that are not another package's.
const (
	defaultExtProcListen  = "127.0.0.1:9002"
	defaultRateLimitKey   = 1200 // requests per minute and key
	defaultLogFormat      = "json"
	defaultLogLevel       = "info"
	defaultShutdown       = 30 * time.Second
	defaultUpstreamTimout = 10 * time.Minute
)

// serverConfig is the resolved configuration of gateway or extproc.
type serverConfig struct {
	ListenAddr  string
	ExtProcAddr string // gateway: "" means in-process
	Policy      string
	// PolicyBundle replaces the embedded OPA policy: a bundle directory,
	// a .tar.gz file or an http(s) URL; PolicyBundleKey is the file of the
	// key that verifies its signature. Plan is the standalone org's plan.
	PolicyBundle    string
	PolicyBundleKey string
	Plan            string

	AnthropicURL, OpenAIURL, MistralURL, GeminiURL string

	// Provider keys for the standalone organisation, and the Takumo keys
	// it accepts. Secret.
	AnthropicKey, OpenAIKey, MistralKey, GeminiKey string
	APIKeys                                        []string

	Mode                  string // test | live
	MaxBodyBytes          int64
	MaxVaultEntries       int
	MaxConcurrentSessions int
	LogFormat             string // json | text
	LogLevel              slog.Level

	RateLimitPerKey int // requests per minute; 0 turns the bucket off
	RateLimitPerOrg int
	RateLimitBurst  int // 0: the per-minute figure
	// RateLimitService is the host:port (or unix:/path) of a global
	// rate-limit service (envoy.service.ratelimit.v3); "" keeps the local
	// token buckets. RateLimitFailMode is what a failed check does: "open"
	// (let the request through, as Envoy's default) or "closed" (503).
	RateLimitService  string
	RateLimitFailMode string

	UpstreamTimeout time.Duration
	ShutdownTimeout time.Duration

	// CoordinatorURL is the coordinator's gRPC address (host:port); when
	// set, keys, orgs and policy data come from it (JoinKey registers,
	// environment or file only, secret), audit events and usage go to it,
	// and DataDir keeps the last snapshot for FailMode (fail_closed or
	// fail_open, DESIGN §8).
	CoordinatorURL string
	JoinKey        string
	DataDir        string
	FailMode       string
	// CoordinatorCA verifies the coordinator's certificate (TLS to the
	// coordinator when set); CoordinatorCert and CoordinatorKey are this
	// gateway's client certificate for a coordinator that requires mTLS.
	CoordinatorCA, CoordinatorCert, CoordinatorKey string
	// MetricsAddr is where extproc serves /metrics (Prometheus text); ""
	// serves none. (The gateway serves /metrics on its own listener.)
	MetricsAddr string
	// AdminListen is where a standalone gateway serves its embedded
	// coordinator's admin API ("off": nowhere).
	AdminListen string

	Dev bool
	// DevKey is TAKUMO_DEV_KEY (environment only). Secret.
	DevKey string
	// TokenSecret is the standalone org's token secret (TAKUMO_TOKEN_SECRET,
	// environment or config file only): replicas that share it derive the
	// same tokens for a session. Empty: a random one per process. Secret.
	TokenSecret []byte

	// set records which settings came from a source rather than a default.
	set map[string]bool
}

// String lists the settings with every secret redacted, so the config can
// be logged.
func (c *serverConfig) String() string {
	n := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return redacted
	}
	return fmt.Sprintf("listen_addr=%s extproc_addr=%q mode=%s max_body_bytes=%d max_vault_entries=%d "+
		"max_concurrent_sessions=%d log_format=%s rate_limit_per_key=%d rate_limit_per_org=%d "+
		"ratelimit_service=%q ratelimit_fail_mode=%s coordinator_url=%q join_key=%s data_dir=%q fail_mode=%s "+
		"anthropic_url=%s openai_url=%s mistral_url=%s gemini_url=%s anthropic_api_key=%s "+
		"openai_api_key=%s mistral_api_key=%s gemini_api_key=%s api_keys=%d dev=%t",
		c.ListenAddr, c.ExtProcAddr, c.Mode, c.MaxBodyBytes, c.MaxVaultEntries,
		c.MaxConcurrentSessions, c.LogFormat, c.RateLimitPerKey, c.RateLimitPerOrg,
		c.RateLimitService, c.RateLimitFailMode, c.CoordinatorURL, n(c.JoinKey), c.DataDir, c.FailMode,
		c.AnthropicURL, c.OpenAIURL, c.MistralURL, c.GeminiURL, n(c.AnthropicKey),
		n(c.OpenAIKey), n(c.MistralKey), n(c.GeminiKey), len(c.APIKeys), c.Dev)
}

// GoString is String, so %#v does not print secrets either.
func (c *serverConfig) GoString() string { return c.String() }

// LogValue is String, for slog.
func (c *serverConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// valueKind is the YAML type a setting takes.
type valueKind uint8

const (
	kindString valueKind = iota
	kindInt
	kindSize // an integer of bytes, or a string such as "32MiB"
	kindDuration
	kindBool
	kindList // a sequence of strings, or one string; comma-separated in the environment
)

func (k valueKind) want() string {
	return [...]string{"a string", "an integer", "a size (bytes, or a string such as 32MiB)",
		"a duration string such as 30s", "true or false", "a list of strings"}[k]
}

// setting is one configuration setting.
type setting struct {
	key    string // YAML key; env TAKUMO_<KEY>; flag --key-with-dashes
	flag   string // flag name when it differs from the key's; "-" for none
	kind   valueKind
	secret bool
	cmds   serverCmd
	usage  string
	// set stores one value. For kindList it is called once per item. Its
	// error never contains the value.
	set func(c *serverConfig, v string) error
}

func (s setting) env() string { return "TAKUMO_" + strings.ToUpper(s.key) }

func (s setting) flagName() string {
	switch s.flag {
	case "-":
		return ""
	case "":
		return strings.ReplaceAll(s.key, "_", "-")
	}
	return s.flag
}

func setString(dst func(*serverConfig) *string) func(*serverConfig, string) error {
	return func(c *serverConfig, v string) error { *dst(c) = v; return nil }
}

func setURL(dst func(*serverConfig) *string) func(*serverConfig, string) error {
	return func(c *serverConfig, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an http or https URL", v)
		}
		*dst(c) = v
		return nil
	}
}

func setSecret(dst func(*serverConfig) *string) func(*serverConfig, string) error {
	return func(c *serverConfig, v string) error {
		if strings.TrimSpace(v) != v || strings.ContainsAny(v, "\r\n") {
			return errors.New("has surrounding spaces or a line break (value not shown)")
		}
		*dst(c) = v
		return nil
	}
}

func setCount(dst func(*serverConfig) *int) func(*serverConfig, string) error {
	return func(c *serverConfig, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a non-negative integer", v)
		}
		*dst(c) = n
		return nil
	}
}

func setDuration(dst func(*serverConfig) *time.Duration) func(*serverConfig, string) error {
	return func(c *serverConfig, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration such as 30s or 2m", v)
		}
		*dst(c) = d
		return nil
	}
}

func setOneOf(dst func(*serverConfig) *string, allowed ...string) func(*serverConfig, string) error {
	return func(c *serverConfig, v string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
		}
		*dst(c) = v
		return nil
	}
}

// serverSettings is every setting of the server commands.
func serverSettings() []setting {
	return []setting{
		{key: "listen_addr", flag: "listen", cmds: forBoth,
			usage: "`ADDR` to listen on: host:port (gateway default " + "127.0.0.1:8080" + ", extproc default " + defaultExtProcListen + "); extproc also takes unix:/path",
			set:   setString(func(c *serverConfig) *string { return &c.ListenAddr })},
		{key: "extproc_addr", cmds: forGateway,
			usage: "remote ext_proc server `ADDR` (host:port or unix:/path); default: run it in-process",
			set:   setString(func(c *serverConfig) *string { return &c.ExtProcAddr })},
		{key: "policy", cmds: forBoth,
			usage: "policy `FILE` with custom rules and action overrides",
			set:   setString(func(c *serverConfig) *string { return &c.Policy })},
		{key: "policy_bundle", cmds: forBoth,
			usage: "OPA bundle replacing the embedded policy: a directory, a .tar.gz `FILE` or an http(s) URL, polled for changes",
			set:   setString(func(c *serverConfig) *string { return &c.PolicyBundle })},
		{key: "policy_bundle_key", cmds: forBoth,
			usage: "`FILE` holding the key that verifies the bundle's signature (PEM public key, or an HS256 secret)",
			set:   setString(func(c *serverConfig) *string { return &c.PolicyBundleKey })},
		{key: "plan", cmds: forBoth,
			usage: "`PLAN` of the standalone organisation (free, developer, pro, enterprise; default enterprise)",
			set:   setString(func(c *serverConfig) *string { return &c.Plan })},
		{key: "anthropic_url", cmds: forGateway, usage: "Anthropic API base `URL`",
			set: setURL(func(c *serverConfig) *string { return &c.AnthropicURL })},
		{key: "openai_url", cmds: forGateway, usage: "OpenAI API base `URL`",
			set: setURL(func(c *serverConfig) *string { return &c.OpenAIURL })},
		{key: "mistral_url", cmds: forGateway, usage: "Mistral API base `URL`",
			set: setURL(func(c *serverConfig) *string { return &c.MistralURL })},
		{key: "gemini_url", cmds: forGateway, usage: "Gemini API base `URL`",
			set: setURL(func(c *serverConfig) *string { return &c.GeminiURL })},
		{key: "anthropic_api_key", flag: "-", secret: true, cmds: forBoth,
			set: setSecret(func(c *serverConfig) *string { return &c.AnthropicKey })},
		{key: "openai_api_key", flag: "-", secret: true, cmds: forBoth,
			set: setSecret(func(c *serverConfig) *string { return &c.OpenAIKey })},
		{key: "mistral_api_key", flag: "-", secret: true, cmds: forBoth,
			set: setSecret(func(c *serverConfig) *string { return &c.MistralKey })},
		{key: "gemini_api_key", flag: "-", secret: true, cmds: forBoth,
			set: setSecret(func(c *serverConfig) *string { return &c.GeminiKey })},
		{key: "api_keys", flag: "-", kind: kindList, secret: true, cmds: forBoth,
			set: func(c *serverConfig, v string) error {
				if !validTakumoKey(v) {
					return errors.New("an entry is not a Takumo key (tk_live_ or tk_test_ and 64 lowercase hex; value not shown)")
				}
				c.APIKeys = append(c.APIKeys, v)
				return nil
			}},
		{key: "mode", cmds: forBoth, usage: "traffic `MODE` served: test or live (--dev forces test)",
			set: setOneOf(func(c *serverConfig) *string { return &c.Mode }, "test", "live")},
		{key: "max_body_bytes", kind: kindSize, cmds: forBoth,
			usage: "largest request body, as sent and decompressed (`SIZE`, e.g. 32MiB)",
			set: func(c *serverConfig, v string) error {
				n, err := parseSize(v)
				if err != nil {
					return err
				}
				if n == 0 {
					return errors.New("must be more than 0")
				}
				c.MaxBodyBytes = n
				return nil
			}},
		{key: "max_vault_entries", kind: kindInt, cmds: forBoth,
			usage: "values kept per session vault (`N`; 0: 10,000)",
			set:   setCount(func(c *serverConfig) *int { return &c.MaxVaultEntries })},
		{key: "max_concurrent_sessions", kind: kindInt, cmds: forBoth,
			usage: "session vaults kept at once (`N`; 0: 5,000)",
			set:   setCount(func(c *serverConfig) *int { return &c.MaxConcurrentSessions })},
		{key: "log_format", cmds: forBoth, usage: "log `FORMAT` on stderr: json or text (--dev: text)",
			set: setOneOf(func(c *serverConfig) *string { return &c.LogFormat }, "json", "text")},
		{key: "log_level", cmds: forBoth, usage: "log `LEVEL`: debug, info, warn or error",
			set: func(c *serverConfig, v string) error {
				if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
					return fmt.Errorf("%q is not one of debug, info, warn, error", v)
				}
				return nil
			}},
		{key: "rate_limit_per_key", kind: kindInt, cmds: forGateway,
			usage: "requests per minute and Takumo key (`N`; 0: no limit)",
			set:   setCount(func(c *serverConfig) *int { return &c.RateLimitPerKey })},
		{key: "rate_limit_per_org", kind: kindInt, cmds: forGateway,
			usage: "cap on the plan's requests per minute and organisation (`N`; 0: the plan's limit alone)",
			set:   setCount(func(c *serverConfig) *int { return &c.RateLimitPerOrg })},
		{key: "rate_limit_burst", kind: kindInt, cmds: forGateway,
			usage: "token-bucket size (`N`; 0: the per-minute figure)",
			set:   setCount(func(c *serverConfig) *int { return &c.RateLimitBurst })},
		{key: "ratelimit_service", cmds: forGateway,
			usage: "global rate-limit service `ADDR` (host:port or unix:/path; envoyproxy/ratelimit with envoy/ratelimit/config.yaml) shared by replicas; default: local token buckets",
			set: func(c *serverConfig, v string) error {
				if p, ok := strings.CutPrefix(v, "unix:"); ok && p != "" {
					c.RateLimitService = v
					return nil
				}
				if host, port, err := net.SplitHostPort(v); err != nil || host == "" || port == "" {
					return fmt.Errorf("%q is not host:port or unix:/path", v)
				}
				c.RateLimitService = v
				return nil
			}},
		{key: "ratelimit_fail_mode", cmds: forGateway,
			usage: "when the rate-limit service fails: open (let requests through, Envoy's default) or closed (503) (`MODE`)",
			set:   setOneOf(func(c *serverConfig) *string { return &c.RateLimitFailMode }, "open", "closed")},
		{key: "coordinator_url", cmds: forBoth,
			usage: "coordinator gRPC `ADDR` (host:port): keys, orgs and policy come from it; needs TAKUMO_JOIN_KEY",
			set: func(c *serverConfig, v string) error {
				if host, port, err := net.SplitHostPort(v); err != nil || host == "" || port == "" {
					return fmt.Errorf("%q is not host:port", v)
				}
				c.CoordinatorURL = v
				return nil
			}},
		{key: "join_key", flag: "-", secret: true, cmds: forBoth,
			set: func(c *serverConfig, v string) error {
				if !strings.HasPrefix(v, "jk_") || len(v) != 67 {
					return errors.New("not a join key (jk_ and 64 lowercase hex; value not shown)")
				}
				c.JoinKey = v
				return nil
			}},
		{key: "coordinator_ca", cmds: forBoth,
			usage: "PEM CA `FILE` that signed the coordinator's certificate: TLS to the coordinator",
			set:   setString(func(c *serverConfig) *string { return &c.CoordinatorCA })},
		{key: "coordinator_cert", cmds: forBoth,
			usage: "PEM client certificate `FILE` for a coordinator that requires mTLS (with coordinator_key)",
			set:   setString(func(c *serverConfig) *string { return &c.CoordinatorCert })},
		{key: "coordinator_key", cmds: forBoth,
			usage: "PEM private key `FILE` of coordinator_cert",
			set:   setString(func(c *serverConfig) *string { return &c.CoordinatorKey })},
		{key: "data_dir", cmds: forBoth,
			usage: "`DIR` for the coordinator registration, the last snapshot and the audit sequence (with --coordinator-url)",
			set:   setString(func(c *serverConfig) *string { return &c.DataDir })},
		{key: "metrics_addr", cmds: forExtProc,
			usage: "`ADDR` (host:port) to serve Prometheus metrics on, at /metrics; default: none",
			set: func(c *serverConfig, v string) error {
				if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
					return fmt.Errorf("%q is not host:port", v)
				}
				c.MetricsAddr = v
				return nil
			}},
		{key: "admin_listen", cmds: forGateway,
			usage: "`ADDR` of the embedded coordinator's admin API of a standalone gateway (the keys, usage, audit … commands), or off",
			set:   setString(func(c *serverConfig) *string { return &c.AdminListen })},
		{key: "fail_mode", cmds: forBoth,
			usage: "without a current snapshot from the coordinator: fail_closed (503) or fail_open (serve the cached snapshot) (`MODE`)",
			set:   setOneOf(func(c *serverConfig) *string { return &c.FailMode }, "fail_closed", "fail_open")},
		{key: "upstream_timeout", kind: kindDuration, cmds: forGateway,
			usage: "wait at most `DURATION` for a provider's response headers (then 504)",
			set:   setDuration(func(c *serverConfig) *time.Duration { return &c.UpstreamTimeout })},
		{key: "shutdown_timeout", kind: kindDuration, cmds: forBoth,
			usage: "on SIGINT/SIGTERM, let requests in flight finish for at most `DURATION`",
			set:   setDuration(func(c *serverConfig) *time.Duration { return &c.ShutdownTimeout })},
		{key: "dev", kind: kindBool, cmds: forGateway,
			usage: "development mode: test mode with a dev key (TAKUMO_DEV_KEY or a new one), printed with the export lines for AI tools",
			set: func(c *serverConfig, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("%q is not true or false", v)
				}
				c.Dev = b
				return nil
			}},
		{key: "dev_key", flag: "-", secret: true, cmds: forGateway,
			set: func(c *serverConfig, v string) error { c.DevKey = v; return nil }},
		{key: "token_secret", flag: "-", secret: true, cmds: forBoth,
			usage: "the organisation's token secret (64+ hex characters); replicas sharing it give a session the same tokens",
			set: func(c *serverConfig, v string) error {
				b, err := hex.DecodeString(strings.TrimSpace(v))
				if err != nil || len(b) < 32 {
					return errors.New("must be at least 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`")
				}
				c.TokenSecret = b
				return nil
			}},
	}
}

// validTakumoKey reports whether k has the shape of a Takumo API key.
func validTakumoKey(k string) bool {
	rest, ok := strings.CutPrefix(k, "tk_test_")
	if !ok {
		rest, ok = strings.CutPrefix(k, "tk_live_")
	}
	if !ok || len(rest) != 64 {
		return false
	}
	for i := range len(rest) {
		if !(rest[i] >= '0' && rest[i] <= '9' || rest[i] >= 'a' && rest[i] <= 'f') {
			return false
		}
	}
	return true
}

// configFlags holds the flags of a server command until they are resolved.
type configFlags struct {
	cmd    serverCmd
	file   string
	values map[string]*string // by key; bool flags too, as text
	fs     *pflag.FlagSet
}

// addConfigFlags declares --config and one flag per non-secret setting of
// cmd.
func addConfigFlags(fs *pflag.FlagSet, cmd serverCmd) *configFlags {
	cf := &configFlags{cmd: cmd, values: map[string]*string{}, fs: fs}
	fs.StringVar(&cf.file, "config", "", "YAML `FILE` with settings (keys as the TAKUMO_* names, lower-case, without the prefix)")
	for _, s := range serverSettings() {
		name := s.flagName()
		if s.cmds&cmd == 0 || name == "" {
			continue
		}
		v := new(string)
		cf.values[s.key] = v
		if s.kind == kindBool {
			b := new(bool)
			fs.Var(boolText{b: b, s: v}, name, s.usage)
			fs.Lookup(name).NoOptDefVal = "true"
			continue
		}
		fs.StringVar(v, name, "", s.usage+" [env "+s.env()+"]")
	}
	return cf
}

// boolText is a bool flag that records its value as text.
type boolText struct {
	b *bool
	s *string
}

func (f boolText) String() string {
	if f.b == nil {
		return "false"
	}
	return strconv.FormatBool(*f.b)
}

func (f boolText) Set(v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*f.b, *f.s = b, strconv.FormatBool(b)
	return nil
}

func (boolText) Type() string { return "bool" }

// rawValue is a setting's value as one source gave it.
type rawValue struct {
	items  []string // one for scalars
	origin string   // "--listen", "TAKUMO_LISTEN_ADDR", "gw.yaml:3"
}

// configErrors is every problem found in the configuration.
type configErrors []string

func (e configErrors) Error() string {
	if len(e) == 1 {
		return "configuration: " + e[0]
	}
	return fmt.Sprintf("configuration: %d problems:\n  %s", len(e), strings.Join(e, "\n  "))
}

// resolve builds the configuration from the flags, lookupEnv and the
// --config file, reporting every problem at once.
func (cf *configFlags) resolve(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (*serverConfig, error) {
	settings := serverSettings()
	byKey := make(map[string]setting, len(settings))
	for _, s := range settings {
		byKey[s.key] = s
	}
	var errs configErrors
	chosen := map[string]rawValue{}

	// Lowest first; each source overwrites what it sets.
	if cf.file != "" {
		data, err := readFile(cf.file)
		if err != nil {
			return nil, fmt.Errorf("--config: %w%s", err, pathHint(err))
		}
		vals, ferrs := parseConfigFile(cf.file, data, byKey, cf.cmd)
		errs = append(errs, ferrs...)
		for k, v := range vals {
			chosen[k] = v
		}
	}
	for _, s := range settings {
		if s.cmds&cf.cmd == 0 {
			continue
		}
		v, ok := lookupEnv(s.env())
		if !ok {
			continue
		}
		rv := rawValue{items: []string{v}, origin: s.env()}
		if s.kind == kindList {
			rv.items = nil
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					rv.items = append(rv.items, item)
				}
			}
		}
		chosen[s.key] = rv
	}
	for key, v := range cf.values {
		s := byKey[key]
		if f := cf.fs.Lookup(s.flagName()); f != nil && f.Changed {
			chosen[key] = rawValue{items: []string{*v}, origin: "--" + s.flagName()}
		}
	}

	c := defaultServerConfig(cf.cmd)
	for _, s := range settings {
		rv, ok := chosen[s.key]
		if !ok {
			continue
		}
		c.set[s.key] = true
		for _, item := range rv.items {
			if err := s.set(c, item); err != nil {
				if s.secret {
					// The setters of secrets never print the value, but
					// make sure of it for any that might.
					err = errors.New(strings.ReplaceAll(err.Error(), item, redacted))
				}
				errs = append(errs, fmt.Sprintf("%s: %s: %v", rv.origin, s.key, err))
				break
			}
		}
	}
	if len(errs) > 0 {
		// File problems in line order, then the environment's and flags'.
		slices.SortStableFunc(errs, func(a, b string) int { return fileLine(cf.file, a) - fileLine(cf.file, b) })
		return nil, errs
	}
	return c, nil
}

// fileLine is the line number of a problem reported as "file:line: ...",
// or a number past every line for other problems.
func fileLine(file, problem string) int {
	rest, ok := strings.CutPrefix(problem, file+":")
	if !ok {
		return 1 << 30
	}
	n, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, ':'), 0)])
	if err != nil {
		return 1 << 30
	}
	return n
}

func defaultServerConfig(cmd serverCmd) *serverConfig {
	c := &serverConfig{
		ListenAddr:        "127.0.0.1:8080",
		AnthropicURL:      "https://api.anthropic.com",
		OpenAIURL:         "https://api.openai.com",
		MistralURL:        "https://api.mistral.ai",
		GeminiURL:         "https://generativelanguage.googleapis.com",
		Mode:              "test",
		MaxBodyBytes:      32 << 20,
		LogFormat:         defaultLogFormat,
		RateLimitPerKey:   defaultRateLimitKey,
		RateLimitFailMode: "open",
		DataDir:           "data",
		AdminListen:       "127.0.0.1:8081",
		FailMode:          "fail_closed",
		UpstreamTimeout:   defaultUpstreamTimout,
		ShutdownTimeout:   defaultShutdown,
		set:               map[string]bool{},
	}
	if cmd == forExtProc {
		c.ListenAddr = defaultExtProcListen
		c.RateLimitPerKey = 0
	}
	return c
}

// parseConfigFile reads the YAML mapping of settings in data. Errors name
// the file, line and key; values of secret settings are never quoted.
func parseConfigFile(name string, data []byte, byKey map[string]setting, cmd serverCmd) (map[string]rawValue, configErrors) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, configErrors{fmt.Sprintf("%s: %v", name, err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, configErrors{fmt.Sprintf("%s:%d: want a mapping of settings (key: value)", name, root.Line)}
	}
	out := map[string]rawValue{}
	seen := map[string]int{}
	var errs configErrors
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		at := fmt.Sprintf("%s:%d", name, k.Line)
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, at+": a key must be a plain name")
			continue
		}
		key := k.Value
		s, ok := byKey[key]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("%s: unknown key %q%s", at, key, suggestKey(key, byKey)))
			continue
		case s.cmds&cmd == 0:
			errs = append(errs, fmt.Sprintf("%s: %q is not a setting of the %s command", at, key, cmd))
			continue
		}
		if line, dup := seen[key]; dup {
			errs = append(errs, fmt.Sprintf("%s: %q is already set on line %d", at, key, line))
			continue
		}
		seen[key] = k.Line
		items, err := yamlItems(v, s.kind)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %s: %v", name, v.Line, key, err))
			continue
		}
		out[key] = rawValue{items: items, origin: fmt.Sprintf("%s:%d", name, v.Line)}
	}
	return out, errs
}

// yamlItems checks that v has the YAML type kind wants and returns its text.
func yamlItems(v *yaml.Node, kind valueKind) ([]string, error) {
	wrong := func() error {
		got := "a " + strings.TrimPrefix(v.ShortTag(), "!!")
		switch v.Kind {
		case yaml.MappingNode:
			got = "a mapping"
		case yaml.SequenceNode:
			got = "a list"
		case yaml.AliasNode:
			got = "an alias"
		}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			got = "no value"
		}
		return fmt.Errorf("want %s, got %s", kind.want(), got)
	}
	if kind == kindList {
		switch {
		case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str":
			return []string{v.Value}, nil
		case v.Kind != yaml.SequenceNode:
			return nil, wrong()
		}
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode || it.ShortTag() != "!!str" {
				return nil, fmt.Errorf("want a list of strings, got an item that is not a string (line %d)", it.Line)
			}
			items = append(items, it.Value)
		}
		return items, nil
	}
	if v.Kind != yaml.ScalarNode {
		return nil, wrong()
	}
	tag := v.ShortTag()
	ok := false
	switch kind {
	case kindString, kindDuration:
		ok = tag == "!!str"
	case kindInt:
		ok = tag == "!!int"
	case kindSize:
		ok = tag == "!!int" || tag == "!!str"
	case kindBool:
		ok = tag == "!!bool"
	}
	if !ok {
		return nil, wrong()
	}
	return []string{v.Value}, nil
}

// suggestKey names the known key closest to an unknown one, if one is
// within two edits (after ignoring case, a TAKUMO_ prefix and - for _).
func suggestKey(key string, byKey map[string]setting) string {
	k := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(key), "takumo_"), "-", "_")
	best, bestD := "", 3
	for known := range byKey {
		if d := editDistance(k, known); d < bestD || d == bestD && known < best {
			best, bestD = known, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
