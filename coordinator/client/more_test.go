package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/coordinator"
	"github.com/takumo/aegis/coordinator/store"
	"github.com/takumo/aegis/keys"
)

func TestHealthReports(t *testing.T) {
	co := newCoord(t, nil)
	jk, _ := co.joinKey(t)
	co.key(t, "key_a", "org_a")
	c := runClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: t.TempDir(), Version: "v9", HealthInterval: 20 * time.Millisecond,
		Stats: func() Stats { return Stats{ActiveSessions: 7, Requests: 3} }})
	waitFor(t, 10*time.Second, "sync", c.Ready)
	var g store.Gateway
	waitFor(t, 10*time.Second, "a health report with the snapshot version", func() bool {
		gws, err := co.st.ListGateways(context.Background())
		if err != nil || len(gws) != 1 {
			return false
		}
		g = gws[0]
		return g.SnapshotVersion == c.Version()
	})
	if g.ActiveSessions != 7 || g.MemoryBytes <= 0 || g.GatewayVersion != "v9" || g.Skew > time.Minute || g.Skew < -time.Minute {
		t.Fatalf("stored health %+v", g.Health)
	}
}

func TestGraceWhileDisconnected(t *testing.T) {
	co := newCoord(t, nil)
	jk, _ := co.joinKey(t)
	raw := co.key(t, "key_a", "org_a")
	var skip atomic.Int64 // how far the test clock is ahead
	now := func() time.Time { return time.Now().Add(time.Duration(skip.Load())) }
	cases := []struct {
		failMode string
		ready    bool // after Grace out of sync
	}{{FailClosed, false}, {FailOpen, true}}
	for _, tc := range cases {
		t.Run(tc.failMode, func(t *testing.T) {
			skip.Store(0)
			if co.server() == nil {
				co.start()
			}
			c := runClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: t.TempDir(), FailMode: tc.failMode, Now: now,
				Grace: time.Minute, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			waitFor(t, 10*time.Second, "sync", func() bool { return c.inSync.Load() })
			// In sync, the snapshot serves however long nothing changes.
			skip.Store(int64(time.Hour))
			if !c.Ready() {
				t.Fatal("not ready while in sync")
			}
			co.halt()
			waitFor(t, 10*time.Second, "out of sync", func() bool { return !c.inSync.Load() })
			if !c.Ready() {
				t.Fatal("not ready right after losing the coordinator")
			}
			skip.Store(int64(time.Hour + 2*time.Minute))
			if c.Ready() != tc.ready {
				t.Fatalf("Ready %v after Grace out of sync, want %v", c.Ready(), tc.ready)
			}
			_, err := c.Keys().Authenticate(context.Background(), raw)
			if tc.ready != (err == nil) || (err != nil && (!errors.Is(err, ErrNotReady) || errors.Is(err, keys.ErrUnauthorized))) {
				t.Fatalf("Authenticate: %v", err)
			}
			co.start()
			waitFor(t, 10*time.Second, "back in sync", c.Ready)
		})
	}
}

func TestUnknownCredentialRegistersAgain(t *testing.T) {
	co := newCoord(t, nil)
	jk, _ := co.joinKey(t)
	dir := t.TempDir()
	// A gateway.json the coordinator does not know (its database was reset, say).
	if err := writeIdentity(dir, identity{GatewayID: "gw_0000000000000000", Credential: "gwc_" + strings.Repeat("0", 64),
		HealthIntervalSeconds: 30, JoinKeySHA256: joinKeyHash(jk)}); err != nil {
		t.Fatal(err)
	}
	c := runClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: dir, MinBackoff: time.Millisecond})
	waitFor(t, 10*time.Second, "sync after registering again", c.Ready)
	id, err := readIdentity(dir)
	if err != nil || id == nil || id.GatewayID == "gw_0000000000000000" {
		t.Fatalf("gateway.json %v %v", id, err)
	}
	if n := co.registers.Load(); n != 1 {
		t.Fatalf("%d Register calls, want 1", n)
	}
}

func apiKey(id, state string, b byte) *coordv1.ApiKey {
	h := sha256.Sum256([]byte{b})
	return &coordv1.ApiKey{Id: id, Hash: h[:], Org: "org_a", Mode: "live", Scopes: []string{"shield:write"}, State: state,
		CreatedAt: timestamppb.Now()}
}

func TestApply(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	base, err := apply(nil, &coordv1.Snapshot{Version: 5, Keys: []*coordv1.ApiKey{apiKey("k1", "active", 1), apiKey("k2", "active", 2)},
		Orgs: []*coordv1.Org{{Id: "org_a", Plan: "pro"}}, Policy: &coordv1.Policy{Revision: "rev-1"}}, keys.ModeLive, log)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		sn       *coordv1.Snapshot
		err      error
		keys     []string // ids held after
		orgs     int
		revision string
	}{
		{"delta", &coordv1.Snapshot{Version: 6, BaseVersion: 5, Keys: []*coordv1.ApiKey{apiKey("k3", "disabled", 3)},
			RemovedKeyIds: []string{"k1"}, RemovedOrgIds: []string{"org_a"}}, nil, []string{"k2", "k3"}, 0, "rev-1"},
		{"delta of another base", &coordv1.Snapshot{Version: 7, BaseVersion: 6}, errBaseMismatch, nil, 0, ""},
		{"full replaces", &coordv1.Snapshot{Version: 9, Keys: []*coordv1.ApiKey{apiKey("k9", "active", 9)}}, nil, []string{"k9"}, 0, ""},
		{"unknown scope left out", &coordv1.Snapshot{Version: 6, BaseVersion: 5, Keys: []*coordv1.ApiKey{
			{Id: "k4", Hash: make([]byte, 32), Org: "o", Mode: "live", Scopes: []string{"root"}, State: "active"}}},
			nil, []string{"k1", "k2", "k4"}, 1, "rev-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next, err := apply(base, tc.sn, keys.ModeLive, log)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			var ids []string
			for _, id := range []string{"k1", "k2", "k3", "k4", "k9"} {
				if _, ok := next.keys[id]; ok {
					ids = append(ids, id)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.keys, ",") || len(next.orgs) != tc.orgs ||
				next.policy.GetRevision() != tc.revision || next.version != tc.sn.GetVersion() {
				t.Fatalf("state: keys %v orgs %d policy %q version %d", ids, len(next.orgs), next.policy.GetRevision(), next.version)
			}
			// The index serves only keys it could hold.
			if _, err := next.index.Get(context.Background(), "k4"); err == nil {
				t.Fatal("a key with an unknown scope is in the index")
			}
		})
	}
	// The base state is untouched by the deltas applied to it.
	if len(base.keys) != 2 || len(base.orgs) != 1 {
		t.Fatalf("base changed: %d keys %d orgs", len(base.keys), len(base.orgs))
	}
}

func TestBackoff(t *testing.T) {
	b := &backoffState{min: 100 * time.Millisecond, max: 30 * time.Second}
	for i := range 40 {
		ceil := min(b.min<<min(i, 30), b.max)
		if d := b.next(); d < 0 || d > ceil {
			t.Fatalf("wait %d: %v outside [0, %v]", i, d, ceil)
		}
	}
	b.reset()
	if d := b.next(); d > b.min {
		t.Fatalf("after reset: %v > %v", d, b.min)
	}
}

func TestAuditDrainAtShutdown(t *testing.T) {
	// The coordinator stores only when a batch fills or the gateway closes
	// its side: events still buffered at shutdown reach it through the drain.
	co := newCoord(t, func(o *coordinator.Options) { o.AuditFlush = time.Hour; o.AuditBatch = 100_000 })
	jk, _ := co.joinKey(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Storing thousands of events on SQLite is slow under the race detector.
	c := newClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: dir, DrainTimeout: time.Minute})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, 10*time.Second, "sync", c.Ready)
	const n = 6000 // past half a sequence block: Run's writer extends the reservation
	for range n {
		c.Audit(&coordv1.AuditEvent{RequestId: "r", Time: timestamppb.Now()})
	}
	waitFor(t, 10*time.Second, "the reservation extended in the background", func() bool {
		hw, err := readSeq(dir)
		return err == nil && hw >= n+seqBlock/2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	id, err := readIdentity(dir)
	if err != nil || id == nil {
		t.Fatal(id, err)
	}
	got, err := co.st.AuditCount(context.Background(), id.GatewayID)
	if err != nil || got != n || c.Buffered() != 0 {
		t.Fatalf("stored %d (%v), buffered %d; want %d stored at shutdown", got, err, c.Buffered(), n)
	}
}

// Usage the gateway records reaches the coordinator's monthly totals with
// the next health report, live and test apart, and exactly once when the
// reports succeed.
func TestUsageReported(t *testing.T) {
	co := newCoord(t, nil)
	jk, _ := co.joinKey(t)
	co.key(t, "key_a", "org_a")
	c := runClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: t.TempDir(), HealthInterval: 20 * time.Millisecond})
	waitFor(t, 10*time.Second, "sync", c.Ready)
	ctx := context.Background()
	for range 3 {
		if err := c.Keys().Record(ctx, keys.Usage{Org: "org_a", KeyID: "key_a", Mode: keys.ModeTest, Requests: 1, Credits: 4}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Keys().Record(ctx, keys.Usage{Org: "org_a", KeyID: "key_a", Mode: keys.ModeLive, Requests: 1, Credits: 2}); err != nil {
		t.Fatal(err)
	}
	var rows []store.UsageRow
	waitFor(t, 10*time.Second, "usage at the coordinator", func() bool {
		var err error
		rows, err = co.st.Usage(ctx, "org_a", time.Now())
		return err == nil && len(rows) == 2
	})
	// Several more reports go by; nothing is counted twice.
	time.Sleep(100 * time.Millisecond)
	rows, err := co.st.Usage(ctx, "org_a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.UsageRow{}
	for _, r := range rows {
		got[r.Mode] = r
	}
	if got["test"].Requests != 3 || got["test"].Credits != 12 || got["live"].Requests != 1 || got["live"].Credits != 2 {
		t.Fatalf("usage at the coordinator: %+v", rows)
	}
}

// Two replicas serving one org see the fleet's monthly usage, not only
// their own, so a plan's monthly cap holds across replicas.
func TestFleetMonthUsage(t *testing.T) {
	co := newCoord(t, nil)
	jk, _ := co.joinKey(t)
	co.key(t, "key_a", "org_a")
	a := runClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: t.TempDir(), HealthInterval: 20 * time.Millisecond})
	b := runClient(t, Options{Addr: co.addr, JoinKey: jk, DataDir: t.TempDir(), HealthInterval: 20 * time.Millisecond})
	waitFor(t, 10*time.Second, "sync", func() bool { return a.Ready() && b.Ready() })
	ctx := context.Background()
	rec := func(c *Client, n int) {
		for range n {
			if err := c.Keys().Record(ctx, keys.Usage{Org: "org_a", KeyID: "key_a", Mode: keys.ModeLive, Requests: 1, Credits: 2}); err != nil {
				t.Fatal(err)
			}
		}
	}
	live := func(c *Client) int64 {
		mu, err := c.Keys().Month("org_a", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return mu.Live.Requests
	}
	rec(a, 5)
	if got := live(a); got < 5 {
		t.Fatalf("A counts %d of its own 5", got)
	}
	rec(b, 1)
	waitFor(t, 10*time.Second, "both replicas to see the fleet's 6", func() bool { return live(a) == 6 && live(b) == 6 })
	mu, _ := b.Keys().Month("org_a", time.Now())
	if mu.Live.Credits != 12 {
		t.Fatalf("credits %d, want 12", mu.Live.Credits)
	}
	// Test traffic is never counted against the plan.
	if err := b.Keys().Record(ctx, keys.Usage{Org: "org_a", KeyID: "key_a", Mode: keys.ModeTest, Requests: 3}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // several reports go by
	if got := live(b); got != 6 {
		t.Fatalf("live usage %d after test traffic, want 6", got)
	}
}
