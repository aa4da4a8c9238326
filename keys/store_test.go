package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func newStore(t *testing.T, mode Mode) (*MemStore, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)}
	return NewMemStore(Options{Mode: mode, Clock: clk.Now}), clk
}

func TestMemStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	s, clk := newStore(t, ModeLive)
	rec, k, err := s.Create(ctx, NewKey{Org: "org_acme", Name: "ci-pipeline", Scopes: []string{ScopeShieldWrite}, Mode: ModeLive})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.ID, "key_") || len(rec.ID) != 28 || rec.State != StateActive || rec.Hash != k.Hash() ||
		rec.Prefix != k.Reveal()[:12] || !rec.Created.Equal(clk.Now()) || !rec.LastUsed.IsZero() {
		t.Fatalf("record = %+v", rec)
	}

	clk.Set(clk.Now().Add(time.Hour))
	got, err := s.Authenticate(ctx, k.Reveal())
	if err != nil || got.ID != rec.ID || !got.HasScope(ScopeShieldWrite) {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	if g, _ := s.Get(ctx, rec.ID); !g.LastUsed.Equal(clk.Now()) {
		t.Errorf("last used = %v, want %v", g.LastUsed, clk.Now())
	}
	got.Scopes[0] = "changed"
	if g, _ := s.Get(ctx, rec.ID); g.Scopes[0] != ScopeShieldWrite {
		t.Error("a caller changed the stored scopes")
	}

	steps := []struct {
		name    string
		op      func() error
		authErr error // nil: Authenticate succeeds after op
		opErr   error
	}{
		{name: "disable", op: func() error { return s.Disable(ctx, rec.ID) }, authErr: ErrDisabled},
		{name: "enable", op: func() error { return s.Enable(ctx, rec.ID) }},
		{name: "disable again", op: func() error { return s.Disable(ctx, rec.ID) }, authErr: ErrDisabled},
		{name: "revoke while disabled", op: func() error { return s.Revoke(ctx, rec.ID) }, authErr: ErrRevoked},
		{name: "enable after revoke", op: func() error { return s.Enable(ctx, rec.ID) }, opErr: ErrRevokedFinal, authErr: ErrRevoked},
		{name: "disable after revoke", op: func() error { return s.Disable(ctx, rec.ID) }, opErr: ErrRevokedFinal, authErr: ErrRevoked},
		{name: "revoke twice", op: func() error { return s.Revoke(ctx, rec.ID) }, authErr: ErrRevoked},
		{name: "unknown id", op: func() error { return s.Disable(ctx, "key_nope") }, opErr: ErrNotFound, authErr: ErrRevoked},
	}
	for _, st := range steps {
		if err := st.op(); !errors.Is(err, st.opErr) || (st.opErr == nil && err != nil) {
			t.Fatalf("%s: op error = %v, want %v", st.name, err, st.opErr)
		}
		_, err := s.Authenticate(ctx, k.Reveal())
		if st.authErr == nil {
			if err != nil {
				t.Fatalf("%s: Authenticate: %v", st.name, err)
			}
			continue
		}
		if !errors.Is(err, st.authErr) || !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("%s: Authenticate error = %v, want %v", st.name, err, st.authErr)
		}
		if strings.Contains(err.Error(), k.Reveal()[8:]) {
			t.Fatalf("%s: error echoes the key", st.name)
		}
	}
	if g, _ := s.Get(ctx, rec.ID); g.State != StateRevoked {
		t.Errorf("state = %s", g.State)
	}
}

func TestMemStoreAuthenticateRefusals(t *testing.T) {
	ctx := context.Background()
	live, _ := newStore(t, ModeLive)
	test, _ := newStore(t, ModeTest)
	_, lk, err := live.Create(ctx, NewKey{Org: "org_a", Scopes: []string{ScopeShieldWrite}, Mode: ModeLive})
	if err != nil {
		t.Fatal(err)
	}
	_, tk, err := test.Create(ctx, NewKey{Org: "org_a", Scopes: []string{ScopeShieldWrite}, Mode: ModeTest})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		store  *MemStore
		key    string
		want   error
		msgHas []string
	}{
		{"test key on live gateway", live, tk.Reveal(), ErrWrongMode, []string{"test key", "live gateway"}},
		{"live key on test gateway", test, lk.Reveal(), ErrWrongMode, []string{"live key", "test gateway"}},
		{"unknown", live, liveKey, ErrUnknown, []string{"no such key"}},
		{"malformed", live, "tk_live_123", ErrMalformed, []string{"64 lowercase hex"}},
		{"upper case hex", live, strings.ToUpper(lk.Reveal()[:8]) + lk.Reveal()[8:], ErrMalformed, []string{"lower case"}},
		{"missing", live, "", ErrMissing, []string{"missing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.store.Authenticate(ctx, tc.key)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			for _, s := range tc.msgHas {
				if !strings.Contains(ClientMessage(err), s) {
					t.Errorf("message %q lacks %q", ClientMessage(err), s)
				}
			}
		})
	}
	// A store without a mode (admin, coordinator) accepts both.
	any := NewMemStore(Options{})
	for _, m := range []Mode{ModeLive, ModeTest} {
		_, k, err := any.Create(ctx, NewKey{Org: "org_a", Mode: m})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := any.Authenticate(ctx, k.Reveal()); err != nil {
			t.Errorf("%s key on a mode-less store: %v", m, err)
		}
	}
}

func TestMemStoreCreateInvalid(t *testing.T) {
	s, _ := newStore(t, ModeLive)
	tests := []struct {
		name string
		req  NewKey
		has  string
	}{
		{"no org", NewKey{Mode: ModeLive}, "org is required"},
		{"bad mode", NewKey{Org: "o", Mode: "prod"}, "mode must be live or test"},
		{"unknown scope", NewKey{Org: "o", Mode: ModeLive, Scopes: []string{"shield:admin"}}, `unknown scope "shield:admin"`},
		{"dot scope", NewKey{Org: "o", Mode: ModeLive, Scopes: []string{"api_keys.read"}}, "unknown scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.Create(context.Background(), tc.req)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.has) {
				t.Fatalf("error = %v, want ErrInvalid with %q", err, tc.has)
			}
		})
	}
}

func TestMemStoreListAndPut(t *testing.T) {
	ctx := context.Background()
	s, clk := newStore(t, "")
	var ids []string
	for i := range 3 {
		clk.Set(clk.Now().Add(time.Minute))
		rec, _, err := s.Create(ctx, NewKey{Org: "org_a", Name: fmt.Sprint("k", i), Mode: ModeLive})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	if _, _, err := s.Create(ctx, NewKey{Org: "org_b", Mode: ModeTest}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, "org_a")
	if err != nil || len(list) != 3 {
		t.Fatalf("List = %d records, %v", len(list), err)
	}
	for i, r := range list {
		if r.ID != ids[i] {
			t.Errorf("List[%d] = %s, want %s (oldest first)", i, r.ID, ids[i])
		}
	}
	if l, _ := s.List(ctx, "org_none"); len(l) != 0 {
		t.Errorf("List of an unknown org = %v", l)
	}

	// Put: a record from a coordinator snapshot, by hash.
	k, _ := Parse(testKey)
	rec := Record{ID: "key_fromsync", Hash: k.Hash(), Org: "org_c", Mode: ModeTest, State: StateActive, Scopes: []string{ScopeShieldRead}}
	if err := s.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, testKey); err != nil || got.ID != "key_fromsync" {
		t.Fatalf("Authenticate after Put = %+v, %v", got, err)
	}
	rec.State = StateRevoked
	if err := s.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, testKey); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Authenticate after revoking Put = %v", err)
	}
	bad := []Record{
		{Hash: k.Hash(), Org: "o", Mode: ModeTest, State: StateActive},
		{ID: "key_x", Org: "o", Mode: ModeTest, State: StateActive},
		{ID: "key_x", Hash: k.Hash(), Org: "o", Mode: ModeTest, State: "paused"},
		{ID: "key_other", Hash: k.Hash(), Org: "o", Mode: ModeTest, State: StateActive},
	}
	for i, b := range bad {
		if err := s.Put(ctx, b); !errors.Is(err, ErrInvalid) {
			t.Errorf("Put(bad[%d]) = %v", i, err)
		}
	}
}

func TestMemStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, ModeLive)
	const n = 50
	recs := make([]Record, n)
	raws := make([]string, n)
	for i := range n {
		r, k, err := s.Create(ctx, NewKey{Org: fmt.Sprint("org_", i%5), Scopes: []string{ScopeShieldWrite}, Mode: ModeLive})
		if err != nil {
			t.Fatal(err)
		}
		recs[i], raws[i] = r, k.Reveal()
	}
	var (
		wg sync.WaitGroup
		ok atomic.Int64
	)
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				j := (i + w) % n
				rec, err := s.Authenticate(ctx, raws[j])
				if err != nil && !errors.Is(err, ErrDisabled) {
					t.Errorf("Authenticate: %v", err)
					return
				}
				if err == nil && rec.ID != recs[j].ID {
					t.Errorf("key %d authenticated as %s", j, rec.ID)
					return
				}
				if err == nil {
					ok.Add(1)
					if err := s.Record(ctx, Usage{Org: recs[j].Org, KeyID: recs[j].ID, Mode: ModeLive, Requests: 1, Credits: 2}); err != nil {
						t.Errorf("Record: %v", err)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			id := recs[i%n].ID
			_ = s.Disable(ctx, id)
			_ = s.Enable(ctx, id)
			_, _ = s.List(ctx, recs[i%n].Org)
		}
	})
	wg.Wait()
	var requests, credits int64
	for o := range 5 {
		u, _ := s.Month(fmt.Sprint("org_", o), time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC))
		requests += u.Live.Requests
		credits += u.Live.Credits
	}
	if requests != ok.Load() || credits != 2*ok.Load() {
		t.Errorf("counted %d requests and %d credits for %d successful authentications", requests, credits, ok.Load())
	}
}
