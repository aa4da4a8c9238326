package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListen covers the listening address forms and the handling of a
// socket file that is already there: a stale one is replaced, a live one
// (another process serving it) is never removed, not even when the probe
// is cut short by a cancelled context.
func TestListen(t *testing.T) {
	t.Parallel()
	// live serves a unix socket in a temporary directory and returns its path.
	live := func(t *testing.T) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "a.sock")
		var lc net.ListenConfig
		ln, err := lc.Listen(t.Context(), "unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		return path
	}
	// stale leaves a socket file behind that nobody serves.
	stale := func(t *testing.T) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "a.sock")
		var lc net.ListenConfig
		ln, err := lc.Listen(t.Context(), "unix", path)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("the stale socket file is gone: %v", err)
		}
		return path
	}
	cases := []struct {
		name      string
		addr      func(t *testing.T) string
		cancelled bool
		wantErr   string // empty: listen must succeed
		stillLive bool   // the socket must still be served after listen
	}{
		{"tcp host:port", func(*testing.T) string { return "127.0.0.1:0" }, false, "", false},
		{"unix socket, new", func(t *testing.T) string { return "unix:" + filepath.Join(t.TempDir(), "a.sock") }, false, "", false},
		{"unix socket, unix:// form", func(t *testing.T) string { return "unix://" + filepath.Join(t.TempDir(), "a.sock") }, false, "", false},
		{"unix socket without a path", func(*testing.T) string { return "unix:" }, false, "needs a socket path", false},
		{"stale socket is replaced", func(t *testing.T) string { return "unix:" + stale(t) }, false, "", false},
		{"live socket is refused", func(t *testing.T) string { return "unix:" + live(t) }, false, "another process", true},
		{"live socket kept when the probe is cancelled", func(t *testing.T) string { return "unix:" + live(t) }, true, "context canceled", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr := c.addr(t)
			ctx := t.Context()
			if c.cancelled {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				cancel()
			}
			ln, err := listen(ctx, addr)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("listen(%q): %v", addr, err)
				}
				defer func() { _ = ln.Close() }()
				var d net.Dialer
				conn, err := d.DialContext(t.Context(), ln.Addr().Network(), ln.Addr().String())
				if err != nil {
					t.Fatalf("dialing what listen opened: %v", err)
				}
				_ = conn.Close()
			} else if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				if ln != nil {
					_ = ln.Close()
				}
				t.Fatalf("listen(%q) = %v, want an error with %q", addr, err, c.wantErr)
			}
			if c.stillLive {
				path := strings.TrimPrefix(addr, "unix:")
				var d net.Dialer
				conn, err := d.DialContext(t.Context(), "unix", path)
				if err != nil {
					t.Fatalf("the live socket no longer answers: %v", err)
				}
				_ = conn.Close()
			}
		})
	}
}
