package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The suite runs every test against both engines. PostgreSQL comes from
// TAKUMO_TEST_DATABASE_URL (.ci/run sets it); each test gets a schema of
// its own, dropped afterwards. Without the variable the PostgreSQL half is
// skipped locally and fails under CI=true, so CI can never pass without
// having run it.
const pgEnv = "TAKUMO_TEST_DATABASE_URL"

type opener func(t testing.TB) (s *Store, reopen func() *Store)

func engines(t *testing.T) map[Engine]opener {
	return map[Engine]opener{
		SQLite: func(t testing.TB) (*Store, func() *Store) {
			path := filepath.Join(t.TempDir(), "data", "coordinator.db")
			return openT(t, path), func() *Store { return openT(t, path) }
		},
		Postgres: func(t testing.TB) (*Store, func() *Store) {
			dsn := pgSchema(t)
			return openT(t, dsn), func() *Store { return openT(t, dsn) }
		},
	}
}

func openT(t testing.TB, url string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// pgSchema creates a fresh schema and returns a DSN whose search_path is
// that schema.
func pgSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(pgEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL half of the store suite", pgEnv)
		}
		t.Skipf("%s is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", pgEnv)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "store_test_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	if _, err := admin.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer func() { _ = db.Close() }()
		_, _ = db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func each(t *testing.T, fn func(t *testing.T, open opener)) {
	for eng, open := range engines(t) {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			fn(t, open)
		})
	}
}

func h(s string) [32]byte { return sha256.Sum256([]byte(s)) }

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func TestJoinKeys(t *testing.T) {
	each(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		s, _ := open(t)
		jk := JoinKey{ID: "jk1", Hash: h("jk_one"), Name: "edge", Environment: "prod", Org: "org_a", CreatedAt: t0}
		if err := s.CreateJoinKey(ctx, jk); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateJoinKey(ctx, jk); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		dupHash := jk
		dupHash.ID = "jk2"
		if err := s.CreateJoinKey(ctx, dupHash); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate hash: %v", err)
		}
		got, err := s.JoinKeyByHash(ctx, h("jk_one"))
		if err != nil || got != jk {
			t.Fatalf("by hash: %+v %v, want %+v", got, err, jk)
		}
		if _, err := s.JoinKeyByHash(ctx, h("jk_other")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		if err := s.RevokeJoinKey(ctx, "jk1", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeJoinKey(ctx, "jk1", t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err = s.JoinKey(ctx, "jk1")
		if err != nil || !got.Revoked() || !got.RevokedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("revoked: %+v %v (the first revocation time must stay)", got, err)
		}
		if err := s.RevokeJoinKey(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		list, err := s.ListJoinKeys(ctx)
		if err != nil || len(list) != 1 || list[0].ID != "jk1" {
			t.Fatalf("list: %+v %v", list, err)
		}
	})
}

func TestGateways(t *testing.T) {
	each(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		s, _ := open(t)
		if err := s.CreateJoinKey(ctx, JoinKey{ID: "jk1", Hash: h("jk"), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		g := Gateway{ID: "gw_1", CredentialHash: h("cred1"), JoinKeyID: "jk1", Org: "org_a", Name: "pod-a",
			Version: "v1", Mode: "live", RegisteredAt: t0}
		if err := s.CreateGateway(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateGateway(ctx, g); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate registration: %v", err)
		}
		bad := g
		bad.ID, bad.CredentialHash, bad.JoinKeyID = "gw_2", h("cred2"), "no-such-join-key"
		if err := s.CreateGateway(ctx, bad); err == nil {
			t.Fatal("a gateway with an unknown join key was stored")
		}
		hl := Health{LastSeen: t0.Add(30 * time.Second), SnapshotVersion: 7, ActiveSessions: 3, MemoryBytes: 1 << 20,
			Skew: -1500 * time.Millisecond, GatewayVersion: "v2"}
		if err := s.ReportHealth(ctx, "gw_1", hl); err != nil {
			t.Fatal(err)
		}
		if err := s.ReportHealth(ctx, "gw_nope", hl); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown gateway: %v", err)
		}
		got, err := s.GatewayByCredential(ctx, h("cred1"))
		if err != nil {
			t.Fatal(err)
		}
		want := g
		want.Health = hl
		want.Version = "v2"
		if got != want {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		if _, err := s.GatewayByCredential(ctx, h("cred-unknown")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown credential: %v", err)
		}
		list, err := s.ListGateways(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %v %v", list, err)
		}
	})
}

func key(id, org string) APIKey {
	return APIKey{ID: id, Hash: h("tk_" + id), Org: org, Name: "k " + id, Mode: "live",
		Scopes: []string{"shield:write", "audit:read"}, State: StateActive, CreatedAt: t0}
}

func TestKeysAndChanges(t *testing.T) {
	each(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		s, reopen := open(t)
		mustV := func(v uint64, err error) uint64 {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		v1 := mustV(s.CreateKey(ctx, key("k1", "org_a")))
		v2 := mustV(s.CreateKey(ctx, key("k2", "org_b")))
		if v1 != 1 || v2 != 2 {
			t.Fatalf("versions %d %d, want 1 2", v1, v2)
		}
		if _, err := s.CreateKey(ctx, key("k1", "org_a")); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate key: %v", err)
		}
		mustV(s.PutOrg(ctx, Org{ID: "org_a", Plan: "pro", Seats: 5}))
		v4 := mustV(s.SetPolicy(ctx, Policy{Revision: "rev-1", DataJSON: []byte(`{"plans":{}}`)}))

		full, err := s.Changes(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if full.Version != v4 || len(full.Keys) != 2 || len(full.Orgs) != 1 || full.Policy == nil || full.Policy.Revision != "rev-1" {
			t.Fatalf("full snapshot: %+v", full)
		}
		if k := full.Keys[0]; k.ID != "k1" || k.Hash != h("tk_k1") || strings.Join(k.Scopes, ",") != "shield:write,audit:read" || !k.CreatedAt.Equal(t0) {
			t.Fatalf("key round trip: %+v", k)
		}

		// Disable, enable, revoke; revoked is final.
		v5 := mustV(s.SetKeyState(ctx, "k1", StateDisabled))
		if again := mustV(s.SetKeyState(ctx, "k1", StateDisabled)); again != v5 {
			t.Fatalf("setting the same state bumped the version: %d → %d", v5, again)
		}
		delta, err := s.Changes(ctx, v4)
		if err != nil {
			t.Fatal(err)
		}
		if delta.Version != v5 || len(delta.Keys) != 1 || delta.Keys[0].State != StateDisabled || len(delta.Orgs) != 0 || delta.Policy != nil {
			t.Fatalf("delta after disable: %+v", delta)
		}
		mustV(s.SetKeyState(ctx, "k1", StateActive))
		vRev := mustV(s.SetKeyState(ctx, "k1", StateRevoked))
		if _, err := s.SetKeyState(ctx, "k1", StateActive); !errors.Is(err, ErrRevoked) {
			t.Fatalf("re-enabling a revoked key: %v", err)
		}
		if _, err := s.SetKeyState(ctx, "k1", StateDisabled); !errors.Is(err, ErrRevoked) {
			t.Fatalf("disabling a revoked key: %v", err)
		}
		if _, err := s.SetKeyState(ctx, "nope", StateActive); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
		if _, err := s.SetKeyState(ctx, "k2", "paused"); err == nil {
			t.Fatal("unknown state accepted")
		}

		// A deleted org is in a delta (so gateways drop it) but not in a
		// full snapshot.
		vDel := mustV(s.DeleteOrg(ctx, "org_a"))
		if _, err := s.DeleteOrg(ctx, "org_a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
		delta, err = s.Changes(ctx, vRev)
		if err != nil || delta.Version != vDel || len(delta.Orgs) != 1 || !delta.Orgs[0].Deleted || len(delta.Keys) != 0 {
			t.Fatalf("delta after delete: %+v %v", delta, err)
		}
		full, err = s.Changes(ctx, 0)
		if err != nil || len(full.Orgs) != 0 || len(full.Keys) != 2 {
			t.Fatalf("full after delete: %+v %v", full, err)
		}
		// A gateway ahead of the store (restored database) gets a full one.
		ahead, err := s.Changes(ctx, vDel+100)
		if err != nil || len(ahead.Keys) != 2 || ahead.Policy == nil {
			t.Fatalf("gateway ahead: %+v %v", ahead, err)
		}
		// Nothing changed: an empty delta at the same version.
		none, err := s.Changes(ctx, vDel)
		if err != nil || none.Version != vDel || len(none.Keys)+len(none.Orgs) != 0 || none.Policy != nil {
			t.Fatalf("empty delta: %+v %v", none, err)
		}

		// Everything survives a reopen, and migrations run again cleanly;
		// the store keeps its id.
		id1, err := s.ID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s2 := reopen()
		if id2, err := s2.ID(ctx); err != nil || id2 != id1 {
			t.Fatalf("store id after reopen %q %v, want %q", id2, err, id1)
		}
		other, _ := open(t)
		if id3, err := other.ID(ctx); err != nil || id3 == id1 {
			t.Fatalf("two databases share the id %q (%v)", id3, err)
		}
		if v, err := s2.Version(ctx); err != nil || v != vDel {
			t.Fatalf("version after reopen: %d %v", v, err)
		}
		k, err := s2.Key(ctx, "k1")
		if err != nil || k.State != StateRevoked {
			t.Fatalf("key after reopen: %+v %v", k, err)
		}
		keys, err := s2.ListKeys(ctx, "org_b")
		if err != nil || len(keys) != 1 || keys[0].ID != "k2" {
			t.Fatalf("list org_b: %+v %v", keys, err)
		}
		p, ok, err := s2.Policy(ctx)
		if err != nil || !ok || p.Revision != "rev-1" || string(p.DataJSON) != `{"plans":{}}` || len(p.Bundle) != 0 {
			t.Fatalf("policy after reopen: %+v %v %v", p, ok, err)
		}
	})
}

// Concurrent writers each get a distinct version, and the last version
// equals the number of changes: no lost update of the counter.
func TestConcurrentVersions(t *testing.T) {
	each(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		s, _ := open(t)
		const writers, each = 8, 10
		var (
			mu   sync.Mutex
			seen = map[uint64]bool{}
			wg   sync.WaitGroup
			errs = make(chan error, writers*each)
		)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					v, err := s.CreateKey(ctx, key(fmt.Sprintf("k%d_%d", w, i), "org"))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if seen[v] {
						errs <- fmt.Errorf("version %d handed out twice", v)
					}
					seen[v] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if v, err := s.Version(ctx); err != nil || v != writers*each {
			t.Fatalf("final version %d %v, want %d", v, err, writers*each)
		}
	})
}

func events(gw string, from, n int) []AuditEvent {
	out := make([]AuditEvent, n)
	for i := range out {
		seq := uint64(from + i)
		out[i] = AuditEvent{GatewayID: gw, Seq: seq, RequestID: fmt.Sprintf("req_%s_%d", gw, seq),
			Time: t0.Add(time.Duration(seq) * time.Millisecond), Org: "org_a", KeyID: "key_1", Provider: "anthropic",
			Model: "claude-sonnet-4-5", Mode: "live", Status: 200, Duration: 1500 * time.Microsecond,
			Detections: []Detection{{Rule: "aws-access-key-id", Category: "KEY", Action: "tokenize", Line: 3}}}
	}
	return out
}

func TestAudit(t *testing.T) {
	each(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		s, _ := open(t)
		n, err := s.AppendAudit(ctx, events("gw_1", 1, 6000)) // more than one INSERT
		if err != nil || n != 6000 {
			t.Fatalf("append: %d %v", n, err)
		}
		// A resend after a lost acknowledgement: overlapping events are
		// skipped, the new ones stored.
		n, err = s.AppendAudit(ctx, events("gw_1", 5501, 1000))
		if err != nil || n != 500 {
			t.Fatalf("resend: %d new, %v; want 500", n, err)
		}
		// The same sequence numbers from another gateway are other events.
		if n, err = s.AppendAudit(ctx, events("gw_2", 1, 10)); err != nil || n != 10 {
			t.Fatalf("gw_2: %d %v", n, err)
		}
		if c, err := s.AuditCount(ctx, "gw_1"); err != nil || c != 6500 {
			t.Fatalf("count gw_1: %d %v", c, err)
		}
		if c, err := s.AuditCount(ctx, ""); err != nil || c != 6510 {
			t.Fatalf("count: %d %v", c, err)
		}
		page, err := s.Audit(ctx, AuditQuery{Limit: 3})
		if err != nil || len(page) != 3 {
			t.Fatalf("page: %v %v", page, err)
		}
		want := events("gw_1", 1, 1)[0]
		got := page[0]
		if got.ID == 0 || got.GatewayID != want.GatewayID || got.Seq != 1 || !got.Time.Equal(want.Time) ||
			got.Duration != want.Duration || len(got.Detections) != 1 || got.Detections[0] != want.Detections[0] {
			t.Fatalf("round trip: %+v", got)
		}
		next, err := s.Audit(ctx, AuditQuery{AfterID: page[2].ID, Limit: 2})
		if err != nil || len(next) != 2 || next[0].Seq != 4 {
			t.Fatalf("next page: %+v %v", next, err)
		}
		if other, err := s.Audit(ctx, AuditQuery{Org: "org_b"}); err != nil || len(other) != 0 {
			t.Fatalf("org filter: %v %v", other, err)
		}
		if n, err := s.AppendAudit(ctx, nil); err != nil || n != 0 {
			t.Fatalf("empty: %d %v", n, err)
		}
	})
}

func TestUsage(t *testing.T) {
	each(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		s, _ := open(t)
		nov, dec := t0, t0.AddDate(0, 1, 0)
		add := []UsageDelta{
			{Org: "org_a", KeyID: "k1", Month: nov, Mode: "live", Requests: 3, Credits: 30},
			{Org: "org_a", KeyID: "k1", Month: nov, Mode: "test", Requests: 1, Credits: 10},
			{Org: "org_a", KeyID: "k1", Month: dec, Mode: "live", Requests: 1, Credits: 1},
		}
		if err := s.AddUsage(ctx, add); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUsage(ctx, add[:1]); err != nil {
			t.Fatal(err)
		}
		rows, err := s.Usage(ctx, "org_a", nov)
		if err != nil {
			t.Fatal(err)
		}
		want := []UsageRow{
			{Org: "org_a", KeyID: "k1", Month: "2026-11", Mode: "live", Requests: 6, Credits: 60},
			{Org: "org_a", KeyID: "k1", Month: "2026-11", Mode: "test", Requests: 1, Credits: 10},
		}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Fatalf("usage:\n got %+v\nwant %+v", rows, want)
		}
		if rows, err := s.Usage(ctx, "", dec); err != nil || len(rows) != 1 || rows[0].Requests != 1 {
			t.Fatalf("december: %+v %v", rows, err)
		}
	})
}

// An unreachable database is a clear error that never quotes the password.
func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://aegis:s3cr3t-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("opened a database on a closed port")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("error quotes the password: %v", err)
	}
	if _, err := Open(ctx, ""); err == nil {
		t.Fatal("empty path accepted")
	}
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, filepath.Join(blocker, "db")); err == nil {
		t.Fatal("a path under a regular file was accepted")
	}
}

// The SQLite file holds hashes only and is private to its owner.
func TestSQLiteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", "c.db")
	s := openT(t, path)
	if _, err := s.CreateKey(context.Background(), key("k1", "o")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Fatalf("%s has mode %v, want no group or other access", p, perm)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "tk_k1") {
		t.Fatal("the raw key is in the database file")
	}
}

// BenchmarkAppendAudit stores audit events in batches of 500, the
// coordinator's batch size, and reports events per second of wall time
// (issue 5: at least 20,000 events/s into PostgreSQL).
func BenchmarkAppendAudit(b *testing.B) {
	for _, eng := range []Engine{Postgres, SQLite} {
		b.Run(string(eng), func(b *testing.B) {
			var s *Store
			if eng == Postgres {
				s = openT(b, pgSchema(b))
			} else {
				s = openT(b, filepath.Join(b.TempDir(), "c.db"))
			}
			ctx := context.Background()
			const batch = 500
			next := 1
			start := time.Now()
			for b.Loop() {
				if _, err := s.AppendAudit(ctx, events("gw_bench", next, batch)); err != nil {
					b.Fatal(err)
				}
				next += batch
			}
			b.ReportMetric(float64((next-1))/time.Since(start).Seconds(), "events/s")
		})
	}
}
