package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/coordinator"
	"github.com/takumo/aegis/coordinator/store"
	"github.com/takumo/aegis/keys"
)

func TestAuthenticateFollowsKeyState(t *testing.T) {
	co := newCoord(t, nil)
	jk, _ := co.joinKey(t)
	raw := co.key(t, "key_a", "org_a")
	co.key(t, "key_b", "org_b")
	if _, err := co.st.PutOrg(context.Background(), store.Org{ID: "org_a", Plan: "pro", Seats: 2}); err != nil {
		t.Fatal(err)
	}
	v, err := co.st.SetPolicy(context.Background(), store.Policy{Revision: "rev-1", DataJSON: []byte(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	co.server().Changed(v)
	dir := t.TempDir()
	c := runClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: dir})
	ks := c.Keys()
	ctx := context.Background()
	waitFor(t, 10*time.Second, "first snapshot", c.Ready)
	waitFor(t, 10*time.Second, "policy version", func() bool { return c.Version() >= v })

	rec, err := ks.Authenticate(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != "key_a" || rec.Org != "org_a" || rec.State != keys.StateActive || !rec.HasScope("shield:write") ||
		rec.Prefix != raw[:len("tk_live_")+4] {
		t.Fatalf("record %+v", rec)
	}
	if orgs := c.Orgs(); len(orgs) != 1 || orgs[0] != (Org{ID: "org_a", Plan: "pro", Seats: 2}) {
		t.Fatalf("orgs %+v", orgs)
	}
	if p, ok := c.Policy(); !ok || p.Revision != "rev-1" || string(p.DataJSON) != `{"x":1}` {
		t.Fatalf("policy %+v %v", p, ok)
	}

	// Every refusal is the keys.MemStore refusal, with its message.
	ref := keys.NewMemStore(keys.Options{Mode: keys.ModeLive})
	steps := []struct {
		state string
		want  error
	}{
		{store.StateDisabled, keys.ErrDisabled},
		{store.StateActive, nil},
		{store.StateRevoked, keys.ErrRevoked},
	}
	for _, s := range steps {
		start := time.Now()
		co.setState(t, "key_a", s.state)
		took := waitFor(t, 10*time.Second, "key_a "+s.state, func() bool {
			_, err := ks.Authenticate(ctx, raw)
			return (s.want != nil && errors.Is(err, s.want)) || (s.want == nil && err == nil)
		})
		t.Logf("key_a %s: seen by the gateway %v after the store change (%v measured from before the write)",
			s.state, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		if s.want == nil {
			continue
		}
		_, err = ks.Authenticate(ctx, raw)
		var ae *keys.AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("%s: %v is not an AuthError", s.state, err)
		}
		refRec, refKey, cerr := ref.Create(ctx, keys.NewKey{Org: "o", Mode: keys.ModeLive})
		if cerr != nil {
			t.Fatal(cerr)
		}
		if s.state == store.StateDisabled {
			cerr = ref.Disable(ctx, refRec.ID)
		} else {
			cerr = ref.Revoke(ctx, refRec.ID)
		}
		if cerr != nil {
			t.Fatal(cerr)
		}
		_, refErr := ref.Authenticate(ctx, refKey.Reveal())
		if keys.ClientMessage(err) != keys.ClientMessage(refErr) {
			t.Fatalf("%s: message %q, keys.MemStore says %q", s.state, keys.ClientMessage(err), keys.ClientMessage(refErr))
		}
	}

	for _, tc := range []struct {
		name, key string
		want      error
	}{
		{"unknown", "tk_live_" + strings.Repeat("0", 64), keys.ErrUnknown},
		{"other mode", "tk_test_" + strings.Repeat("0", 64), keys.ErrWrongMode},
		{"malformed", "tk_live_abc", keys.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ks.Authenticate(ctx, tc.key); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRegistersOncePerDataDir(t *testing.T) {
	co := newCoord(t, nil)
	jk, _ := co.joinKey(t)
	dir := t.TempDir()
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		c := newClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: dir})
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		waitFor(t, 10*time.Second, "sync", c.Ready)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := co.registers.Load(); n != 1 {
			t.Fatalf("run %d: %d Register calls, want 1", i, n)
		}
	}
	gws, err := co.st.ListGateways(context.Background())
	if err != nil || len(gws) != 1 {
		t.Fatalf("gateways %+v %v", gws, err)
	}
	// A different join key in the configuration registers again.
	jk2, _ := co.joinKey(t)
	runClient(t, Options{Addr: co.addr, JoinKey: jk2, DataDir: dir})
	waitFor(t, 10*time.Second, "gateway.json of the new join key", func() bool {
		id, err := readIdentity(dir)
		return err == nil && id != nil && id.JoinKeySHA256 == joinKeyHash(jk2)
	})
	if n := co.registers.Load(); n != 2 {
		t.Fatalf("%d Register calls after the join key changed, want 2", n)
	}
}

func TestFleetRevocation(t *testing.T) {
	// The coordinator's default debounce (500 ms), as in production.
	co := newCoord(t, func(o *coordinator.Options) { o.Debounce = 0 })
	jk, _ := co.joinKey(t)
	raw := co.key(t, "key_a", "org_a")
	var clients []*Client
	for range 3 {
		c := runClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: t.TempDir()})
		clients = append(clients, c)
	}
	ctx := context.Background()
	for _, c := range clients {
		waitFor(t, 10*time.Second, "sync", func() bool { _, err := c.Keys().Authenticate(ctx, raw); return err == nil })
	}
	start := time.Now()
	co.setState(t, "key_a", store.StateRevoked)
	lat := make([]time.Duration, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for {
				if _, err := c.Keys().Authenticate(ctx, raw); errors.Is(err, keys.ErrRevoked) {
					lat[i] = time.Since(start)
					return
				}
				if time.Since(start) > 10*time.Second {
					lat[i] = -1
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	if lat[0] < 0 {
		t.Fatalf("a gateway still accepts the revoked key after 10 s: %v", lat)
	}
	// p99 of three samples is the maximum.
	t.Logf("revocation seen by %d gateways: min %v, p99=max %v (debounce 500 ms)", len(lat),
		lat[0].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	if worst := lat[len(lat)-1]; worst > 2*time.Second {
		t.Fatalf("revocation took %v on the slowest gateway; DESIGN §7 wants every gateway within 2 s", worst)
	}
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	co := newCoord(t, nil)
	addr := co.addr
	co.halt()
	return addr
}

func TestCoordinatorDownAtStart(t *testing.T) {
	// A previous run leaves a snapshot behind.
	co := newCoord(t, nil)
	jk, _ := co.joinKey(t)
	raw := co.key(t, "key_a", "org_a")
	cached := t.TempDir()
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := newClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: cached})
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		waitFor(t, 10*time.Second, "sync", c.Ready)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	co.halt()
	old := time.Now().Add(-time.Hour)

	cases := []struct {
		name, failMode string
		cache          bool
		mtime          time.Time // of the cached file; zero: as the previous run left it
		ready          bool
	}{
		{"fail_closed without a snapshot", FailClosed, false, time.Time{}, false},
		{"fail_closed with a stale snapshot", FailClosed, true, old, false},
		{"fail_closed with a snapshot within grace", FailClosed, true, time.Time{}, true},
		{"fail_open without a snapshot", FailOpen, false, time.Time{}, false},
		{"fail_open with a stale snapshot", FailOpen, true, old, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.cache {
				for _, f := range []string{snapshotFile, identityFile} {
					b, err := os.ReadFile(filepath.Join(cached, f))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if !tc.mtime.IsZero() {
					if err := os.Chtimes(filepath.Join(dir, snapshotFile), tc.mtime, tc.mtime); err != nil {
						t.Fatal(err)
					}
				}
			}
			c := runClient(t, Options{Addr: deadAddr(t), JoinKey: jk, DataDir: dir, FailMode: tc.failMode,
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
			time.Sleep(100 * time.Millisecond) // a few failed connects
			if c.Ready() != tc.ready {
				t.Fatalf("Ready %v, want %v", c.Ready(), tc.ready)
			}
			_, err := c.Keys().Authenticate(context.Background(), raw)
			switch {
			case tc.ready && err != nil:
				t.Fatalf("Authenticate: %v", err)
			case !tc.ready && (!errors.Is(err, ErrNotReady) || errors.Is(err, keys.ErrUnauthorized)):
				t.Fatalf("Authenticate: %v, want ErrNotReady and no AuthError", err)
			}
			// Never a yes without a key match.
			if _, err := c.Keys().Authenticate(context.Background(), "tk_live_"+strings.Repeat("9", 64)); err == nil {
				t.Fatal("an unknown key passed")
			}
		})
	}
}

// TestCoordinatorRestart restarts the coordinator while a gateway ships
// audit events and the keys change, on SQLite and on PostgreSQL
// (TAKUMO_TEST_DATABASE_URL; required under CI=true): the gateway
// converges and every event is stored exactly once.
func TestCoordinatorRestart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testCoordinatorRestart(t, newCoord(t, nil)) })
	t.Run("postgres", func(t *testing.T) { testCoordinatorRestart(t, newCoordOn(t, pgStore(t), nil)) })
}

// pgStore opens a store on a fresh schema of TAKUMO_TEST_DATABASE_URL.
func pgStore(t *testing.T) *store.Store {
	t.Helper()
	base := os.Getenv("TAKUMO_TEST_DATABASE_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TAKUMO_TEST_DATABASE_URL is not set: CI must run the PostgreSQL restart test")
		}
		t.Skip("TAKUMO_TEST_DATABASE_URL is not set")
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "client_test_" + hex.EncodeToString(rnd[:])
	ctx := context.Background()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	st, err := store.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func testCoordinatorRestart(t *testing.T, co *coord) {
	jk, _ := co.joinKey(t)
	co.key(t, "key_a", "org_a")
	c := runClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: t.TempDir(), AuditBatch: 100,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	waitFor(t, 10*time.Second, "sync", c.Ready)

	const total = 2000
	var seqs []uint64
	send := func(n int) {
		for range n {
			e := &coordv1.AuditEvent{RequestId: fmt.Sprintf("req_%d", len(seqs)), Time: timestamppb.Now(), Org: "org_a",
				KeyId: "key_a", Provider: "anthropic", Status: 200, Mode: "live",
				Detections: []*coordv1.AuditDetection{{Rule: "github-pat", Category: "TOKEN", Action: "tokenize", Line: 1}}}
			c.Audit(e)
			seqs = append(seqs, e.GetSeq())
			if len(seqs)%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	send(total / 2)
	start := time.Now()
	co.halt()
	// Changes made while the coordinator is down (another replica, say).
	co.key(t, "key_b", "org_a")
	send(total / 4)
	co.start()
	co.setState(t, "key_a", store.StateDisabled)
	send(total / 4)
	want, err := co.st.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "converge to the newest version", func() bool { return c.Version() == want })
	t.Logf("converged to version %d %v after the restart began", want, time.Since(start).Round(time.Millisecond))
	waitFor(t, 20*time.Second, "every audit event acknowledged", func() bool { return c.Buffered() == 0 })

	id, err := readIdentity(c.opt.DataDir)
	if err != nil || id == nil {
		t.Fatal(id, err)
	}
	n, err := co.st.AuditCount(context.Background(), id.GatewayID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(seqs)
	if n != total || len(slices.Compact(seqs)) != total || c.Dropped() != 0 {
		t.Fatalf("stored %d events of %d distinct seqs sent (dropped %d), want %d", n, len(seqs), c.Dropped(), total)
	}
	evs, err := co.st.Audit(context.Background(), store.AuditQuery{Limit: total + 10})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]uint64, 0, len(evs))
	for _, e := range evs {
		got = append(got, e.Seq)
	}
	slices.Sort(got)
	if !slices.Equal(got, seqs) {
		t.Fatalf("stored seqs differ from those sent (%d stored)", len(got))
	}
	if co.registers.Load() != 1 {
		t.Fatalf("%d Register calls; a coordinator restart must not re-register", co.registers.Load())
	}
}

func TestRefusedJoinKeyNoStorm(t *testing.T) {
	co := newCoord(t, nil)
	revoked, rjk := co.joinKey(t)
	if err := co.server().RevokeJoinKey(context.Background(), rjk.ID); err != nil {
		t.Fatal(err)
	}
	good, gjk := co.joinKey(t)
	cases := []struct {
		name, joinKey string
		revokeLater   bool
	}{
		{"revoked", revoked, false},
		{"unknown", "jk_" + strings.Repeat("0", 64), false},
		{"revoked after registration", good, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// MaxBackoff is the default 30 s: a refused join key waits that long.
			c := runClient(t, Options{Addr: co.addr, JoinKey: tc.joinKey, DataDir: t.TempDir(), MinBackoff: time.Millisecond})
			if tc.revokeLater {
				waitFor(t, 10*time.Second, "sync", c.Ready)
				if err := co.server().RevokeJoinKey(context.Background(), gjk.ID); err != nil {
					t.Fatal(err)
				}
			}
			before := co.registers.Load()
			time.Sleep(2 * time.Second)
			calls := co.registers.Load() - before
			t.Logf("%d Register calls in 2 s", calls)
			if calls > 2 {
				t.Fatalf("%d Register calls in 2 s: a retry storm", calls)
			}
		})
	}
}

func TestFiles(t *testing.T) {
	co := newCoord(t, nil)
	jk, _ := co.joinKey(t)
	raw := co.key(t, "key_a", "org_a")
	dir := t.TempDir()
	var logs lockedBuffer
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := newClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: dir,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		waitFor(t, 10*time.Second, "sync", c.Ready)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	for _, f := range []string{identityFile, snapshotFile, seqFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %04o", f, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(filepath.Join(dir, f))
		for _, secret := range []string{raw, raw[len("tk_live_"):], jk, jk[len("jk_"):]} {
			if bytes.Contains(b, []byte(secret)) {
				t.Fatalf("%s holds a raw key or join key", f)
			}
		}
	}
	id, err := readIdentity(dir)
	if err != nil || id == nil {
		t.Fatal(id, err)
	}
	for _, secret := range []string{raw[len("tk_live_"):], jk[len("jk_"):], id.Credential[len("gwc_"):]} {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("the logs hold a secret")
		}
	}
	if !strings.Contains(logs.String(), id.GatewayID) {
		t.Fatalf("the logs do not name the gateway:\n%s", logs.String())
	}
	for _, f := range []string{identityFile, snapshotFile} {
		t.Run("lax "+f, func(t *testing.T) {
			lax := t.TempDir()
			b, _ := os.ReadFile(filepath.Join(dir, f))
			if err := os.WriteFile(filepath.Join(lax, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := New(Options{Addr: co.addr, JoinKey: jk, Mode: "live", DataDir: lax})
			if !errors.Is(err, ErrFileMode) || !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("New with a 0644 %s: %v", f, err)
			}
		})
	}
}

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

func TestAuditOverflow(t *testing.T) {
	dir := t.TempDir()
	c := newClient(t, Options{Addr: "127.0.0.1:1", JoinKey: "jk_" + strings.Repeat("a", 64), DataDir: dir, AuditBuffer: 1000})
	for range 25_000 {
		c.Audit(&coordv1.AuditEvent{RequestId: "r"})
	}
	if c.Buffered() != 1000 || c.Dropped() != 24_000 {
		t.Fatalf("buffered %d dropped %d, want 1000 and 24000", c.Buffered(), c.Dropped())
	}
	if c.audit.next != 1001 {
		t.Fatalf("next seq %d: dropped events must not use numbers", c.audit.next)
	}
	// The buffer's memory stays bounded as acks free it and events keep coming.
	for i := range 50 {
		c.audit.ack(uint64(1000 + i*1000))
		for range 1000 {
			c.Audit(&coordv1.AuditEvent{RequestId: "r"})
		}
		if n := c.Buffered(); n != 1000 || cap(c.audit.pending) > 4*1000 {
			t.Fatalf("round %d: %d buffered, capacity %d", i, n, cap(c.audit.pending))
		}
	}
}

func TestAuditSeqNeverReused(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Addr: "127.0.0.1:1", JoinKey: "jk_" + strings.Repeat("a", 64), DataDir: dir}
	var last uint64
	for run := range 3 {
		c := newClient(t, opt)
		// Past a block boundary without Run: Audit reserves on its own.
		for range seqBlock + 10 {
			e := &coordv1.AuditEvent{}
			c.Audit(e)
			if e.GetSeq() <= last {
				t.Fatalf("run %d: seq %d after %d", run, e.GetSeq(), last)
			}
			last = e.GetSeq()
		}
		hw, err := readSeq(dir)
		if err != nil || hw < last {
			t.Fatalf("run %d: high-water mark %d below the last seq %d (%v)", run, hw, last, err)
		}
	}
}
