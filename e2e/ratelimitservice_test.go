package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/takumo/aegis/e2e/fakeprovider"
)

// TestRateLimitServiceSharedByReplicas runs the real envoyproxy/ratelimit
// service (TAKUMO_E2E_RATELIMIT, from scripts/install-ratelimit.sh) on the
// local Redis (TAKUMO_E2E_REDIS) and shows:
//
//   - the shipped envoy/ratelimit/config.yaml loads (the service lists its
//     limits on /rlconfig and reports healthy only with a config loaded);
//   - two gateway replicas started with --ratelimit-service share one
//     limit: within one fixed window the total they admit equals the
//     org's limit exactly (tolerance 0: the test stays inside one window,
//     and the service's counters are atomic in Redis), 429s carry
//     RATE_LIMITED, Retry-After and X-RateLimit-*, 200s carry X-RateLimit-*;
//   - with Redis gone (the service's Redis connection runs through a
//     forwarder the test cuts), the service answers with errors and each
//     replica follows its fail mode: replica A (ratelimit_fail_mode open,
//     the default) lets requests through without X-RateLimit-* headers,
//     replica B (closed) answers 503 SERVICE_UNAVAILABLE; both log the
//     failed check.
//
// Its Redis keys carry a prefix of its own (CACHE_KEY_PREFIX), deleted at
// the end; nothing else in Redis is touched.
func TestRateLimitServiceSharedByReplicas(t *testing.T) {
	bin, redisAddr := ratelimitEnv(t)
	t.Parallel()

	t.Run("shipped config loads", func(t *testing.T) {
		shipped, err := os.ReadFile(filepath.Join("..", "envoy", "ratelimit", "config.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		svc := startRatelimit(t, bin, shipped, redisAddr, uniquePrefix(t))
		cfg := svc.get(t, svc.debug+"/rlconfig")
		for _, want := range []string{
			"takumo.org.plan_free: unit=MINUTE requests_per_unit=30,",
			"takumo.org.plan_free.window_hour: unit=HOUR requests_per_unit=500,",
			"takumo.key.plan_enterprise: unit=MINUTE requests_per_unit=500,",
			"takumo.key.plan_enterprise.window_hour: unit=HOUR requests_per_unit=20000,",
			"takumo.org.plan: unit=MINUTE requests_per_unit=30,",
		} {
			if !strings.Contains(cfg, want) {
				t.Errorf("/rlconfig lacks %q:\n%s", want, cfg)
			}
		}
		if strings.Contains(svc.logs.String(), "Error loading new configuration") {
			t.Errorf("the service refused the shipped config:\n%s", svc.logs)
		}
	})

	// A small limit for the free plan, the plan of both replicas' org
	// ("standalone"): 5 per minute for the org; the key and hour limits
	// are far away so the org's minute limit is the one that bites.
	const limit = 5
	testConfig := fmt.Sprintf(`domain: takumo
descriptors:
  - key: org
    descriptors:
      - key: plan
        value: free
        rate_limit: {unit: minute, requests_per_unit: %d}
        descriptors:
          - key: window
            value: hour
            rate_limit: {unit: hour, requests_per_unit: 1000}
  - key: key
    descriptors:
      - key: plan
        value: free
        rate_limit: {unit: minute, requests_per_unit: 100}
        descriptors:
          - key: window
            value: hour
            rate_limit: {unit: hour, requests_per_unit: 1000}
`, limit)
	prefix := uniquePrefix(t)
	fwd := newForwarder(t, redisAddr) // faults_test.go
	t.Cleanup(fwd.cut)
	svc := startRatelimit(t, bin, []byte(testConfig), fwd.ln.Addr().String(), prefix)

	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
	defer p.Close()
	a := startGateway(t, p, gatewayOpts{yaml: "plan: free\n", args: []string{"--ratelimit-service", svc.grpc}})
	b := startGateway(t, p, gatewayOpts{yaml: "plan: free\n", args: []string{"--ratelimit-service", svc.grpc, "--ratelimit-fail-mode", "closed"}})
	replicas := []*gateway{a, b}
	body := []byte(`{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"Say hi."}]}`)
	send := func(g *gateway) reply { return g.post(t, "/v1/messages", "application/json", body, nil) }

	// Stay inside one minute window: the service counts in fixed windows
	// aligned to the Unix epoch, and the requests below take well under
	// the 15 s left at worst.
	if s := time.Now().Second(); s >= 45 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
	admitted := map[*gateway]int{}
	total := 0
	for i := range 2*limit + 2 {
		g := replicas[i%2]
		r := send(g)
		rl := func(h string) int {
			n, err := strconv.Atoi(r.header.Get(h))
			if err != nil {
				t.Errorf("request %d: %s %q is not a number", i, h, r.header.Get(h))
			}
			return n
		}
		if got := rl("X-RateLimit-Limit"); got != limit {
			t.Errorf("request %d: X-RateLimit-Limit %d, want %d", i, got, limit)
		}
		if reset := rl("X-RateLimit-Reset"); reset < 1 || reset > 60 {
			t.Errorf("request %d: X-RateLimit-Reset %d, want 1..60 seconds", i, reset)
		}
		switch r.status {
		case http.StatusOK:
			admitted[g]++
			total++
			if got, want := rl("X-RateLimit-Remaining"), limit-total; got != want {
				t.Errorf("request %d (admitted #%d): X-RateLimit-Remaining %d, want %d", i, total, got, want)
			}
		case http.StatusTooManyRequests:
			wantError(t, r, http.StatusTooManyRequests, "RATE_LIMITED")
			if got := rl("X-RateLimit-Remaining"); got != 0 {
				t.Errorf("request %d: 429 with X-RateLimit-Remaining %d", i, got)
			}
			if ra := rl("Retry-After"); ra < 1 || ra > 60 {
				t.Errorf("request %d: Retry-After %d, want 1..60 seconds", i, ra)
			}
		default:
			t.Fatalf("request %d: status %d: %s", i, r.status, r.body)
		}
	}
	t.Logf("admitted in one window: %d of %d requests (replica A %d, replica B %d); limit %d", total, 2*limit+2, admitted[a], admitted[b], limit)
	if total != limit {
		t.Errorf("the replicas admitted %d requests in one window, want the limit %d", total, limit)
	}
	if admitted[a] == 0 || admitted[b] == 0 {
		t.Errorf("admitted per replica: A %d, B %d; want both to have served some", admitted[a], admitted[b])
	}
	if n := len(p.Requests()); n != total {
		t.Errorf("the provider got %d requests, the replicas admitted %d", n, total)
	}
	// (The metric aegis_rate_limit_checks_total{result} is checked in
	// package gateway; here the logs say whether a check failed.)
	for name, g := range map[string]*gateway{"A": a, "B": b} {
		if logs := g.stderr.String(); strings.Contains(logs, "rate limit check failed") {
			t.Errorf("replica %s: a rate-limit check failed while the service was up:\n%s", name, logs)
		}
	}
	keys, err := redisKeys(redisAddr, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Error("no counters under the test's prefix in Redis: the limit was not shared through Redis")
	}

	// Redis goes away.
	fwd.cut()
	r := send(a)
	if r.status != http.StatusOK {
		t.Errorf("fail open: status %d, want 200: %s", r.status, r.body)
	}
	if v := r.header.Get("X-RateLimit-Limit"); v != "" {
		t.Errorf("fail open: X-RateLimit-Limit %q, want none (no limit was applied)", v)
	}
	r = send(b)
	wantError(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	if n, want := len(p.Requests()), total+1; n != want {
		t.Errorf("the provider got %d requests, want %d (only the fail-open one more)", n, want)
	}
	for g, want := range map[*gateway]string{
		a: "rate limit check failed; letting the request through",
		b: "rate limit check failed; refusing the request (fail closed)",
	} {
		if logs := g.stderr.String(); !strings.Contains(logs, want) {
			t.Errorf("no %q in the replica's log:\n%s", want, logs)
		}
	}
}

// ratelimitEnv returns the ratelimit binary and the Redis address, or
// skips the test when they are not configured, except under CI, where it
// must run.
func ratelimitEnv(t *testing.T) (bin, redisAddr string) {
	t.Helper()
	bin, redisAddr = os.Getenv("TAKUMO_E2E_RATELIMIT"), os.Getenv("TAKUMO_E2E_REDIS")
	if bin == "" || redisAddr == "" {
		msg := "TAKUMO_E2E_RATELIMIT or TAKUMO_E2E_REDIS is unset: run " +
			"`export TAKUMO_E2E_RATELIMIT=\"$(scripts/install-ratelimit.sh)\" TAKUMO_E2E_REDIS=127.0.0.1:6379` " +
			"to test the shared limit with the real rate-limit service and Redis"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: .ci/run must set them)")
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("TAKUMO_E2E_RATELIMIT: %v", err)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(t.Context(), "tcp", redisAddr)
	if err != nil {
		t.Fatalf("TAKUMO_E2E_REDIS: %v", err)
	}
	_ = c.Close()
	return bin, redisAddr
}

// uniquePrefix is a Redis key prefix of this test run; its keys are
// deleted when the test ends.
func uniquePrefix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := "takumo_e2e_" + hex.EncodeToString(b) + "_"
	redisAddr := os.Getenv("TAKUMO_E2E_REDIS")
	t.Cleanup(func() {
		keys, err := redisKeys(redisAddr, prefix)
		if err == nil && len(keys) > 0 {
			err = redisDo(redisAddr, append([]string{"DEL"}, keys...), nil)
		}
		if err != nil {
			t.Errorf("deleting the test's Redis keys (%s*): %v", prefix, err)
		}
	})
	return prefix
}

// ratelimitService is one running envoyproxy/ratelimit.
type ratelimitService struct {
	grpc  string // host:port
	http  string // http://host:port (healthcheck)
	debug string // http://host:port (rlconfig)
	logs  *syncBuffer
}

// startRatelimit runs the service with config as its only config file,
// on Redis at redisAddr with the key prefix, and waits until it is healthy
// with a config loaded. It stops when the test ends.
func startRatelimit(t *testing.T, bin string, config []byte, redisAddr, prefix string) *ratelimitService {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "aegis", "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), config, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	svc := &ratelimitService{
		http:  "http://127.0.0.1:" + ports[0],
		grpc:  "127.0.0.1:" + ports[1],
		debug: "http://127.0.0.1:" + ports[2],
		logs:  &syncBuffer{},
	}
	// The test's end cancels ctx: the service gets SIGTERM, then SIGKILL
	// if it has not stopped 10 s later.
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOST=127.0.0.1", "PORT=" + ports[0],
		"GRPC_HOST=127.0.0.1", "GRPC_PORT=" + ports[1],
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT=" + ports[2],
		"USE_STATSD=false", "LOG_LEVEL=debug", "LOG_FORMAT=text",
		"REDIS_SOCKET_TYPE=tcp", "REDIS_URL=" + redisAddr, "REDIS_TIMEOUT=2s",
		"CACHE_KEY_PREFIX=" + prefix,
		// Counters expire at the window's end, not up to 5 min later.
		"EXPIRATION_JITTER_MAX_SECONDS=0",
		"RUNTIME_ROOT=" + root, "RUNTIME_SUBDIRECTORY=aegis", "RUNTIME_WATCH_ROOT=false",
		"HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED=true",
	}
	cmd.Stdout, cmd.Stderr = svc.logs, svc.logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("the rate-limit service exited:\n%s", svc.logs)
		default:
		}
		if svc.healthy(t) {
			d := net.Dialer{Timeout: time.Second}
			if c, err := d.DialContext(t.Context(), "tcp", svc.grpc); err == nil {
				_ = c.Close()
				return svc
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rate-limit service did not become healthy:\n%s", svc.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *ratelimitService) healthy(t *testing.T) bool {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.http+"/healthcheck", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *ratelimitService) get(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// freePorts returns n ports that were free a moment ago.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		var lc net.ListenConfig
		ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return out
}

// redisKeys lists the keys under prefix (a plain prefix, no glob
// characters).
func redisKeys(addr, prefix string) ([]string, error) {
	var keys []string
	err := redisDo(addr, []string{"KEYS", prefix + "*"}, &keys)
	return keys, err
}

// redisDo sends one command in RESP and reads its reply: an array of bulk
// strings into out (when not nil), or an integer or status.
func redisDo(addr string, args []string, out *[]string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var sb strings.Builder
	fmt.Fprintf(&sb, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&sb, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, sb.String()); err != nil {
		return err
	}
	rd := bufio.NewReader(c)
	line := func() (string, error) {
		s, err := rd.ReadString('\n')
		return strings.TrimRight(s, "\r\n"), err
	}
	head, err := line()
	if err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(head, "-"):
		return errors.New("redis: " + head[1:])
	case strings.HasPrefix(head, ":"), strings.HasPrefix(head, "+"):
		return nil
	case strings.HasPrefix(head, "*"):
		n, err := strconv.Atoi(head[1:])
		if err != nil {
			return fmt.Errorf("redis: bad reply %q", head)
		}
		for range n {
			h, err := line()
			if err != nil {
				return err
			}
			size, err := strconv.Atoi(strings.TrimPrefix(h, "$"))
			if err != nil || !strings.HasPrefix(h, "$") {
				return fmt.Errorf("redis: bad bulk header %q", h)
			}
			buf := make([]byte, size+2)
			if _, err := io.ReadFull(rd, buf); err != nil {
				return err
			}
			if out != nil {
				*out = append(*out, string(buf[:size]))
			}
		}
		return nil
	}
	return fmt.Errorf("redis: unexpected reply %q", head)
}
