package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/takumo/aegis/coordinator"
	"github.com/takumo/aegis/coordinator/store"
	"github.com/takumo/aegis/extproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ extproc.KeyStore = (*Keys)(nil)

// coord is a real coordinator.Server on SQLite, served over gRPC on
// loopback TCP. It can be stopped and started again on the same store and
// address (a coordinator restart).
type coord struct {
	t         *testing.T
	st        *store.Store
	addr      string
	registers atomic.Int64 // Register calls seen, across restarts
	mod       func(*coordinator.Options)

	mu   sync.Mutex
	srv  *coordinator.Server // guarded by mu; nil while stopped
	stop func()              // guarded by mu
}

func newCoord(t *testing.T, mod func(*coordinator.Options)) *coord {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	return newCoordOn(t, st, mod)
}

// newCoordOn is newCoord on a given store (closed at the end of the test).
func newCoordOn(t *testing.T, st *store.Store, mod func(*coordinator.Options)) *coord {
	t.Helper()
	c := &coord{t: t, st: st, addr: "127.0.0.1:0", mod: mod}
	c.start()
	t.Cleanup(func() {
		c.halt()
		_ = st.Close()
	})
	return c
}

func (c *coord) start() {
	c.t.Helper()
	opt := coordinator.Options{Store: c.st, Debounce: 50 * time.Millisecond, Poll: 50 * time.Millisecond,
		AuditFlush: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testWriter{c.t}, nil)).With("side", "coordinator")}
	if c.mod != nil {
		c.mod(&opt)
	}
	srv, err := coordinator.NewServer(opt)
	if err != nil {
		c.t.Fatal(err)
	}
	count := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == "/takumo.coordinator.v1.CoordinatorService/Register" {
			c.registers.Add(1)
		}
		return h(ctx, req)
	}
	g := grpc.NewServer(append(srv.ServerOptions(), grpc.ChainUnaryInterceptor(count))...)
	srv.Attach(g)
	lis, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", c.addr)
	if err != nil {
		c.t.Fatal(err)
	}
	c.addr = lis.Addr().String()
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = g.Serve(lis) })
	wg.Go(func() { _ = srv.Run(runCtx) })
	c.mu.Lock()
	c.srv = srv
	c.stop = func() {
		cancel()
		srv.Shutdown()
		g.Stop()
		wg.Wait()
	}
	c.mu.Unlock()
}

// halt stops the gRPC server (the store stays).
func (c *coord) halt() {
	c.mu.Lock()
	stop := c.stop
	c.srv, c.stop = nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (c *coord) server() *coordinator.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv
}

func (c *coord) joinKey(t *testing.T) (string, store.JoinKey) {
	t.Helper()
	raw, jk, err := c.server().CreateJoinKey(context.Background(), "edge", "prod", "")
	if err != nil {
		t.Fatal(err)
	}
	return raw, jk
}

// key stores a new active live key of org and returns the raw key.
func (c *coord) key(t *testing.T, id, org string) string {
	t.Helper()
	var b [32]byte
	_, _ = rand.Read(b[:])
	raw := "tk_live_" + hex.EncodeToString(b[:])
	v, err := c.st.CreateKey(context.Background(), store.APIKey{ID: id, Hash: sha256.Sum256([]byte(raw)), Org: org,
		Name: id, Mode: "live", Scopes: []string{"shield:write"}, State: store.StateActive, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if srv := c.server(); srv != nil {
		srv.Changed(v)
	}
	return raw
}

func (c *coord) setState(t *testing.T, id, state string) uint64 {
	t.Helper()
	v, err := c.st.SetKeyState(context.Background(), id, state)
	if err != nil {
		t.Fatal(err)
	}
	if srv := c.server(); srv != nil {
		srv.Changed(v)
	}
	return v
}

// runClient makes a client on dir and runs it until the test ends.
func runClient(t *testing.T, opt Options) *Client {
	t.Helper()
	c := newClient(t, opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

func newClient(t *testing.T, opt Options) *Client {
	t.Helper()
	if opt.Mode == "" {
		opt.Mode = "live"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testWriter sends logs to t.Log, so they show only when a test fails (or
// with -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// waitFor polls cond until it holds and returns how long that took; it
// fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}
