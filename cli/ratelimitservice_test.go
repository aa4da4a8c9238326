package cli

import (
	"strings"
	"testing"
)

// TestRateLimitServiceSettings: --ratelimit-service / TAKUMO_RATELIMIT_SERVICE
// / ratelimit_service take host:port or unix:/path, ratelimit_fail_mode
// open or closed (default open); anything else is an error naming the
// setting.
func TestRateLimitServiceSettings(t *testing.T) {
	for _, tc := range []struct {
		name        string
		args        []string
		env         map[string]string
		file        string
		addr, mode  string
		errContains string
	}{
		{name: "default", mode: "open"},
		{name: "flag", args: []string{"--ratelimit-service", "127.0.0.1:8081"}, addr: "127.0.0.1:8081", mode: "open"},
		{name: "env", env: map[string]string{"TAKUMO_RATELIMIT_SERVICE": "ratelimit.takumo:8081", "TAKUMO_RATELIMIT_FAIL_MODE": "closed"},
			addr: "ratelimit.takumo:8081", mode: "closed"},
		{name: "file", file: "ratelimit_service: unix:/run/ratelimit.sock\nratelimit_fail_mode: open\n", addr: "unix:/run/ratelimit.sock", mode: "open"},
		{name: "flag fail mode", args: []string{"--ratelimit-fail-mode", "closed"}, mode: "closed"},
		{name: "no port", args: []string{"--ratelimit-service", "ratelimit.takumo"}, errContains: "ratelimit_service"},
		{name: "bad fail mode", env: map[string]string{"TAKUMO_RATELIMIT_FAIL_MODE": "deny"}, errContains: "ratelimit_fail_mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := resolveWith(t, forGateway, tc.args, tc.env, tc.file)
			if tc.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("error %v, want one naming %s", err, tc.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RateLimitService != tc.addr || cfg.RateLimitFailMode != tc.mode {
				t.Errorf("service %q fail mode %q, want %q %q", cfg.RateLimitService, cfg.RateLimitFailMode, tc.addr, tc.mode)
			}
		})
	}
	if _, err := resolveWith(t, forExtProc, nil, map[string]string{}, "ratelimit_service: 127.0.0.1:8081\n"); err == nil {
		t.Error("ratelimit_service accepted for extproc")
	}
}
