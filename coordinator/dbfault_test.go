package coordinator

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/takumo/aegis/coordinator/store"
)

// cuttableProxy forwards TCP connections to target until cut, when it
// closes every connection and refuses new ones; restore reopens it on the
// same address.
type cuttableProxy struct {
	target string
	addr   string
	mu     sync.Mutex
	lis    net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	p := &cuttableProxy{target: target}
	lis, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = lis.Addr().String()
	p.serve(lis)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *cuttableProxy) serve(lis net.Listener) {
	p.mu.Lock()
	p.lis = lis
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(up, c); _ = up.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, up); _ = c.Close() })
		}
	})
}

func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		_ = p.lis.Close()
		p.lis = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *cuttableProxy) restore(t *testing.T) {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(lis)
}

// The database going away makes the coordinator unready (and its calls
// UNAVAILABLE) with a clear log line, and it recovers by itself when the
// database returns.
func TestDatabaseUnreachable(t *testing.T) {
	base := os.Getenv("TAKUMO_TEST_DATABASE_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TAKUMO_TEST_DATABASE_URL is not set: CI must run the database fault test")
		}
		t.Skip("TAKUMO_TEST_DATABASE_URL is not set")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCuttableProxy(t, u.Host)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "coord_fault_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	u.Host = proxy.addr
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	st, err := store.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()

	var logs syncBuf
	r := newRig(t, func(o *Options) {
		o.Store = st
		o.Logger = slogTo(&logs)
	})
	h := httptest.NewServer(NewAdmin(r.srv, adminTok).Handler())
	defer h.Close()
	ready := func() int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := ready(); got != http.StatusOK {
		t.Fatalf("ready before the cut: %d", got)
	}
	raw, _ := r.joinKey(t, "")

	proxy.cut()
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("ready with the database gone: %d", got)
	}
	_, _, err = r.srv.CreateJoinKey(ctx, "x", "y", "")
	if err == nil {
		t.Fatal("a join key was created with the database gone")
	}
	if !strings.Contains(logs.String(), "database unreachable") && !strings.Contains(logs.String(), "not ready") {
		t.Fatalf("no clear log line:\n%s", logs.String())
	}

	proxy.restore(t)
	deadline := time.Now().Add(15 * time.Second)
	for ready() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("not ready again 15 s after the database returned")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.register(t, raw) // registration works again
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
