package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/takumo/aegis/keys"
)

// lockedBuffer is a bytes.Buffer safe for the server goroutine and the
// test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// startCoordinator runs `coordinator` in the background on SQLite in a
// temporary data dir and returns the admin URL and the data dir.
func startCoordinator(t *testing.T) (adminURL, dataDir string, logs *lockedBuffer) {
	adminURL, _, dataDir, logs = startCoordinatorAt(t)
	return adminURL, dataDir, logs
}

// startCoordinatorAt is startCoordinator that also returns the gRPC
// address.
func startCoordinatorAt(t *testing.T) (adminURL, grpcAddr, dataDir string, logs *lockedBuffer) {
	t.Helper()
	dataDir = filepath.Join(t.TempDir(), "data")
	grpcAddr = freeAddr(t)
	adminAddr := freeAddr(t)
	logs = &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		a := &app{stdin: strings.NewReader(""), stdout: &lockedBuffer{}, stderr: logs}
		done <- a.run(ctx, []string{"coordinator", "--listen", grpcAddr, "--admin-listen", adminAddr, "--data-dir", dataDir, "--log-format", "text"})
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("coordinator exited %d:\n%s", code, logs.String())
		}
	})
	adminURL = "http://" + adminAddr
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("coordinator not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return adminURL, grpcAddr, dataDir, logs
}

func TestCoordinatorAndAdminCommands(t *testing.T) {
	t.Setenv("TAKUMO_ADMIN_TOKEN", "")
	url, dataDir, logs := startCoordinator(t)
	fi, err := os.Stat(filepath.Join(dataDir, "admin.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", fi, err)
	}
	admin := func(args ...string) result {
		t.Helper()
		return runUnchecked("", append(args, "--coordinator", url, "--data-dir", dataDir)...)
	}
	ok := func(args ...string) string {
		t.Helper()
		r := admin(args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}

	out := ok("keys", "create", "--org", "acme", "--name", "ci", "--scopes", "shield:write", "--mode", "test", "--output", "json")
	var created struct{ ID, Key string }
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("keys create --output json: %v\n%s", err, out)
	}
	if _, err := keys.Parse(created.Key); err != nil || !strings.HasPrefix(created.Key, "tk_test_") {
		t.Fatalf("created key: %q %v", created.Key, err)
	}
	text := ok("keys", "create", "--org", "acme", "--mode", "live")
	if !strings.Contains(text, "shown only now") || !strings.Contains(text, "tk_live_") {
		t.Fatalf("keys create text: %s", text)
	}
	list := ok("keys", "list", "--org", "acme")
	if !strings.Contains(list, created.ID) || strings.Contains(list, created.Key) || !strings.Contains(list, "active") {
		t.Fatalf("keys list: %s", list)
	}
	if s := ok("keys", "disable", created.ID); !strings.Contains(s, "disabled") {
		t.Fatalf("disable: %s", s)
	}
	ok("keys", "enable", created.ID)
	ok("keys", "revoke", created.ID)
	r := admin("keys", "enable", created.ID)
	if r.code != ExitError || !strings.Contains(r.stderr, "revocation is final") {
		t.Fatalf("re-enable a revoked key: %d %s", r.code, r.stderr)
	}

	jk := ok("join-keys", "create", "--name", "edge", "--environment", "prod", "--output", "json")
	var j struct {
		ID      string `json:"id"`
		JoinKey string `json:"join_key"`
	}
	if err := json.Unmarshal([]byte(jk), &j); err != nil || !strings.HasPrefix(j.JoinKey, "jk_") {
		t.Fatalf("join-keys create: %v %s", err, jk)
	}
	if s := ok("join-keys", "list"); !strings.Contains(s, "edge") || strings.Contains(s, j.JoinKey) {
		t.Fatalf("join-keys list: %s", s)
	}
	ok("join-keys", "revoke", j.ID)
	ok("orgs", "set", "acme", "--plan", "pro", "--seats", "4")
	if s := ok("orgs", "list"); !strings.Contains(s, "pro") {
		t.Fatalf("orgs list: %s", s)
	}
	if s := ok("fleet", "list"); !strings.Contains(s, "STATUS") {
		t.Fatalf("fleet list: %s", s)
	}
	ok("audit", "tail")
	if s := ok("usage", "--month", "2026-11"); !strings.Contains(s, "2026-11") {
		t.Fatalf("usage: %s", s)
	}
	data := filepath.Join(t.TempDir(), "plans.yaml")
	if err := os.WriteFile(data, []byte("orgs:\n  acme:\n    plan: enterprise\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok("policies", "set", "--revision", "r1", "--data", data)
	if s := ok("policies", "get"); !strings.Contains(s, "r1") || !strings.Contains(s, "enterprise") {
		t.Fatalf("policies get: %s", s)
	}

	// Mistakes: usage errors (exit 2) and clear run errors.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"keys", "create", "--org", "acme"}, ExitError, "--org and --mode are required"},
		{[]string{"keys", "create", "--org", "acme", "--mode", "test", "--scopes", "nope"}, ExitError, `unknown scope "nope"`},
		{[]string{"keys", "revoke"}, ExitError, "expected a key id"},
		{[]string{"keys", "disable", "key_missing"}, ExitError, "no key"},
		{[]string{"policies", "set", "--revision", "r2"}, ExitError, "at least one of --data and --bundle"},
		{[]string{"fleet", "list", "--output", "yaml"}, ExitError, "want text or json"},
	} {
		r := admin(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.msg)
		}
	}
	// A malformed and a wrong token.
	r = runUnchecked("", "keys", "list", "--coordinator", url, "--admin-token-file", data)
	if r.code != ExitError || !strings.Contains(r.stderr, "the admin token holds spaces") {
		t.Fatalf("malformed token: %d %s", r.code, r.stderr)
	}
	wrong := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(wrong, []byte("tka_wrong_but_well_formed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runUnchecked("", "keys", "list", "--coordinator", url, "--admin-token-file", wrong)
	if r.code != ExitError || !strings.Contains(r.stderr, "missing or wrong admin token") {
		t.Fatalf("wrong token: %d %s", r.code, r.stderr)
	}
	// No raw key or join key in the coordinator's logs.
	for _, secret := range []string{created.Key, j.JoinKey} {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a raw key is in the coordinator's log")
		}
	}
}

func TestCoordinatorFlagErrors(t *testing.T) {
	t.Setenv("TAKUMO_TELEMETRY_BATCH_SIZE", "lots")
	r := runUnchecked("", "coordinator", "--tls-cert", "x.pem", "--log-format", "xml")
	if r.code != ExitError {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, msg := range []string{`TAKUMO_TELEMETRY_BATCH_SIZE="lots"`, "--tls-cert and --tls-key go together", `--log-format "xml"`} {
		if !strings.Contains(r.stderr, msg) {
			t.Errorf("stderr lacks %q:\n%s", msg, r.stderr)
		}
	}
}

// In a fleet, extproc's gRPC health is NOT_SERVING until it holds a
// snapshot of keys, then SERVING.
func TestExtProcHealthFollowsSnapshot(t *testing.T) {
	t.Setenv("TAKUMO_ADMIN_TOKEN", "tka_cli_test_admin_token_0123")
	adminURL, grpcAddr, _, _ := startCoordinatorAt(t)
	r := runUnchecked("", "join-keys", "create", "--name", "x", "--output", "json", "--coordinator", adminURL)
	var jk struct {
		JoinKey string `json:"join_key"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &jk); err != nil {
		t.Fatalf("join key: %v %s %s", err, r.stdout, r.stderr)
	}
	check := func(t *testing.T, coordinator string, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		t.Setenv("TAKUMO_COORDINATOR_URL", coordinator)
		t.Setenv("TAKUMO_JOIN_KEY", jk.JoinKey)
		t.Setenv("TAKUMO_DATA_DIR", t.TempDir())
		addr := freeAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int)
		logs := &lockedBuffer{}
		go func() {
			a := &app{stdin: strings.NewReader(""), stdout: &lockedBuffer{}, stderr: logs}
			done <- a.run(ctx, []string{"extproc", "--listen", addr})
		}()
		defer func() { cancel(); <-done }()
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		hc := healthpb.NewHealthClient(conn)
		deadline := time.Now().Add(15 * time.Second)
		var got healthpb.HealthCheckResponse_ServingStatus
		for time.Now().Before(deadline) {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				got = resp.GetStatus()
				if got == want {
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("health %v, want %v\n%s", got, want, logs.String())
	}
	t.Run("coordinator reachable", func(t *testing.T) { check(t, grpcAddr, healthpb.HealthCheckResponse_SERVING) })
	t.Run("coordinator unreachable", func(t *testing.T) {
		check(t, freeAddr(t), healthpb.HealthCheckResponse_NOT_SERVING)
	})
}

// extproc --metrics-addr serves the ext_proc server's metrics for
// Prometheus.
func TestExtProcMetricsEndpoint(t *testing.T) {
	t.Setenv("TAKUMO_API_KEYS", "tk_test_"+strings.Repeat("c", 64))
	addr, maddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	logs := &lockedBuffer{}
	go func() {
		a := &app{stdin: strings.NewReader(""), stdout: &lockedBuffer{}, stderr: logs}
		done <- a.run(ctx, []string{"extproc", "--listen", addr, "--metrics-addr", maddr})
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+maddr+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(b.String(), "aegis_") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics on %s: %v\n%s", maddr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
