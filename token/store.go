package token

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults of a SessionStore (TAKUMO_MAX_CONCURRENT_SESSIONS and the idle
// timeout of DESIGN §4).
const (
	DefaultSessionTTL  = 30 * time.Minute
	DefaultMaxSessions = 5000
)

// StoreOptions configures a SessionStore.
type StoreOptions struct {
	// NewKey returns the key of a session's vault when the session is first
	// seen, typically DeriveSessionKey with the organisation's secret.
	// Required. It is called with the store locked and must not use the
	// store.
	NewKey func(sessionID string) (Key, error)
	// TTL is how long a session may stay idle before its vault is cleared
	// and dropped; 0 or less means DefaultSessionTTL.
	TTL time.Duration
	// MaxSessions bounds the vaults held; when a new session would exceed
	// it, the least recently used one is dropped. 0 or less means
	// DefaultMaxSessions.
	MaxSessions int
	// Limits applies to each vault (default 10,000 entries).
	Limits Limits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SessionStore holds one bounded vault per session, for APIs that keep
// state on the server between requests. A vault leaves the store, its
// values zeroed, when it has been idle for TTL or is the least recently
// used one when room is needed. Expired vaults are dropped whenever the
// store is used; call Sweep periodically as well so an idle store does not
// keep secrets past their TTL.
//
// A request that still holds an evicted vault keeps working, but the vault
// is empty and no longer shared. It is safe for concurrent use.
type SessionStore struct {
	// Immutable after NewSessionStore.
	newKey func(string) (Key, error)
	ttl    time.Duration
	max    int
	limits Limits
	now    func() time.Time

	mu       sync.Mutex
	sessions map[string]*list.Element // guarded by mu; values are *session
	lru      *list.List               // guarded by mu; front = most recently used
}

type session struct {
	id       string
	vault    *Vault
	lastUsed time.Time
}

// NewSessionStore returns an empty store.
func NewSessionStore(opts StoreOptions) (*SessionStore, error) {
	if opts.NewKey == nil {
		return nil, errors.New("token: session store needs NewKey")
	}
	s := &SessionStore{
		newKey:   opts.NewKey,
		ttl:      opts.TTL,
		max:      opts.MaxSessions,
		limits:   opts.Limits,
		now:      opts.Now,
		sessions: make(map[string]*list.Element),
		lru:      list.New(),
	}
	if s.ttl <= 0 {
		s.ttl = DefaultSessionTTL
	}
	if s.max <= 0 {
		s.max = DefaultMaxSessions
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Get returns the vault of sessionID, creating it (with a key from NewKey)
// when the session is new or has expired, and marks it used. Session ids
// are the store's only namespace: a store shared by organisations needs ids
// that name the organisation too.
func (s *SessionStore) Get(sessionID string) (*Vault, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	if el, ok := s.sessions[sessionID]; ok {
		ss := el.Value.(*session)
		ss.lastUsed = now
		s.lru.MoveToFront(el)
		return ss.vault, nil
	}
	key, err := s.newKey(sessionID)
	if err != nil {
		return nil, fmt.Errorf("token: session key: %w", err)
	}
	v, err := NewVault(key, s.limits)
	if err != nil {
		return nil, fmt.Errorf("token: session vault: %w", err)
	}
	for s.lru.Len() >= s.max {
		s.evict(s.lru.Back())
	}
	s.sessions[sessionID] = s.lru.PushFront(&session{id: sessionID, vault: v, lastUsed: now})
	return v, nil
}

// Sweep drops the sessions idle for TTL or longer.
func (s *SessionStore) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.now())
}

// Len returns the number of sessions held.
func (s *SessionStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// Clear drops every session, zeroing its values (at shutdown).
func (s *SessionStore) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.lru.Len() > 0 {
		s.evict(s.lru.Back())
	}
}

// expire drops idle sessions; they sit at the back of the LRU list since
// last use is what orders it.
func (s *SessionStore) expire(now time.Time) {
	for el := s.lru.Back(); el != nil; el = s.lru.Back() {
		if now.Sub(el.Value.(*session).lastUsed) < s.ttl {
			return
		}
		s.evict(el)
	}
}

func (s *SessionStore) evict(el *list.Element) {
	ss := s.lru.Remove(el).(*session)
	delete(s.sessions, ss.id)
	ss.vault.Clear()
}
