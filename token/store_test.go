package token

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/takumo/aegis/detect"
)

// fakeClock is a hand-written clock for the store.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestStore(t *testing.T, opts StoreOptions) (*SessionStore, *fakeClock, *int) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	calls := new(int)
	secret := testKeyBytes()
	opts.Now = clock.Now
	opts.NewKey = func(id string) (Key, error) {
		*calls++
		return DeriveSessionKey(secret, "org_test", id), nil
	}
	s, err := NewSessionStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, clock, calls
}

func get(t *testing.T, s *SessionStore, id string) *Vault {
	t.Helper()
	v, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStoreGet(t *testing.T) {
	s, _, calls := newTestStore(t, StoreOptions{})
	a := get(t, s, "a")
	if get(t, s, "a") != a {
		t.Error("same session, other vault")
	}
	b := get(t, s, "b")
	if a == b {
		t.Error("two sessions share a vault")
	}
	if *calls != 2 || s.Len() != 2 {
		t.Errorf("NewKey calls = %d, Len = %d", *calls, s.Len())
	}
	// Keys differ per session, so do tokens.
	if mustToken(t, a, detect.KEY, awsKey) == mustToken(t, b, detect.KEY, awsKey) {
		t.Error("two sessions give the same token")
	}
}

func TestStoreTTL(t *testing.T) {
	s, clock, _ := newTestStore(t, StoreOptions{})
	a := get(t, s, "a")
	tok := mustToken(t, a, detect.SECRET, password)
	held := a.byToken[tok].value
	clock.Advance(DefaultSessionTTL - time.Second)
	if get(t, s, "a") != a {
		t.Fatal("evicted before its TTL")
	}
	clock.Advance(DefaultSessionTTL - time.Second) // idle time counts from the last use
	get(t, s, "b")
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
	clock.Advance(2 * time.Second)
	s.Sweep()
	if s.Len() != 1 {
		t.Fatalf("Len after sweep = %d, want 1 (b)", s.Len())
	}
	if a.Len() != 0 || string(held) != string(make([]byte, len(password))) {
		t.Error("evicted vault not cleared")
	}
	if again := get(t, s, "a"); again == a {
		t.Error("expired session came back with its old vault")
	} else if v, _ := again.Token(detect.SECRET, []byte(password)); v != tok {
		t.Errorf("new vault of the same session: token %s, want %s (same derived key)", v, tok)
	}
}

func TestStoreLRU(t *testing.T) {
	s, clock, _ := newTestStore(t, StoreOptions{MaxSessions: 2, TTL: time.Hour})
	a := get(t, s, "a")
	clock.Advance(time.Second)
	b := get(t, s, "b")
	mustToken(t, b, detect.KEY, awsKey)
	clock.Advance(time.Second)
	get(t, s, "a") // a is now the most recently used
	clock.Advance(time.Second)
	get(t, s, "c")
	if s.Len() != 2 {
		t.Fatalf("Len = %d", s.Len())
	}
	if b.Len() != 0 {
		t.Error("evicted vault b not cleared")
	}
	if get(t, s, "a") != a {
		t.Error("a was evicted instead of b")
	}
}

func TestStoreLimitsAndErrors(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{Limits: Limits{MaxEntries: 1}})
	v := get(t, s, "a")
	mustToken(t, v, detect.KEY, awsKey)
	if _, err := v.Token(detect.KEY, []byte(awsKey2)); !errors.Is(err, ErrVaultFull) {
		t.Errorf("per-vault limit: %v", err)
	}
	if _, err := NewSessionStore(StoreOptions{}); err == nil {
		t.Error("store without NewKey accepted")
	}
	boom := errors.New("no secret for org")
	bad, err := NewSessionStore(StoreOptions{NewKey: func(string) (Key, error) { return Key{}, boom }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Get("a"); !errors.Is(err, boom) {
		t.Errorf("NewKey error: %v", err)
	}
	zero, err := NewSessionStore(StoreOptions{NewKey: func(string) (Key, error) { return Key{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zero.Get("a"); !errors.Is(err, ErrZeroKey) {
		t.Errorf("zero key: %v", err)
	}
	if zero.Len() != 0 {
		t.Error("failed Get left a session")
	}
}

func TestStoreClear(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{})
	v := get(t, s, "a")
	mustToken(t, v, detect.KEY, awsKey)
	s.Clear()
	if s.Len() != 0 || v.Len() != 0 {
		t.Errorf("after Clear: store %d, vault %d", s.Len(), v.Len())
	}
}

func TestStoreConcurrent(t *testing.T) {
	s, clock, _ := newTestStore(t, StoreOptions{MaxSessions: 8})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				v, err := s.Get(fmt.Sprintf("s%d", (g+i)%12))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Token(detect.KEY, []byte(awsKey)); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					clock.Advance(time.Minute)
					s.Sweep()
				}
			}
		}()
	}
	wg.Wait()
	if n := s.Len(); n > 8 {
		t.Errorf("Len = %d, over MaxSessions", n)
	}
}
