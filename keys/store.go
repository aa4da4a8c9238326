package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The scopes of DESIGN §7. Proxying, tokenizing and detecting need
// ScopeShieldWrite.
const (
	ScopeShieldRead  = "shield:read"
	ScopeShieldWrite = "shield:write"
	ScopeAuditRead   = "audit:read"
	ScopeFleetRead   = "fleet:read"
	ScopeFleetWrite  = "fleet:write"
	ScopePolicyRead  = "policy:read"
	ScopePolicyWrite = "policy:write"
	ScopeOrgRead     = "org:read"
	ScopeOrgWrite    = "org:write"
)

// Scopes lists every known scope.
func Scopes() []string {
	return []string{ScopeShieldRead, ScopeShieldWrite, ScopeAuditRead, ScopeFleetRead, ScopeFleetWrite,
		ScopePolicyRead, ScopePolicyWrite, ScopeOrgRead, ScopeOrgWrite}
}

// KnownScope reports whether s is one of Scopes.
func KnownScope(s string) bool { return slices.Contains(Scopes(), s) }

// State is the lifecycle state of a key.
type State string

// The states. Disabled keys can be enabled again; revoked is final.
const (
	StateActive   State = "active"
	StateDisabled State = "disabled"
	StateRevoked  State = "revoked"
)

// Record describes a key without holding it. It is safe to log.
type Record struct {
	ID       string            // "key_" + 24 hex; safe to log
	Hash     [sha256.Size]byte // SHA-256 of the key
	Prefix   string            // display prefix, e.g. tk_live_a1b2
	Org      string
	Name     string
	Scopes   []string
	Mode     Mode
	State    State
	Created  time.Time
	LastUsed time.Time // zero until first used
}

// HasScope reports whether the key holds scope.
func (r Record) HasScope(scope string) bool { return slices.Contains(r.Scopes, scope) }

// NewKey is a request to create a key.
type NewKey struct {
	Org    string
	Name   string
	Scopes []string
	Mode   Mode
}

// Store is a key store. Implementations are safe for concurrent use.
type Store interface {
	// Create makes a key and returns its record and the raw key, which is
	// never available again.
	Create(ctx context.Context, req NewKey) (Record, Key, error)
	// Get returns the record with id, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Record, error)
	// List returns the records of org, oldest first.
	List(ctx context.Context, org string) ([]Record, error)
	// Disable stops a key from authenticating until Enable.
	Disable(ctx context.Context, id string) error
	// Enable re-enables a disabled key; a revoked key stays revoked
	// (ErrRevokedFinal).
	Enable(ctx context.Context, id string) error
	// Revoke ends a key for good.
	Revoke(ctx context.Context, id string) error
	// Authenticate parses the presented key and returns its record if it is
	// active and of the store's mode; otherwise an *AuthError wrapping
	// ErrUnauthorized. Other errors mean the store could not decide.
	Authenticate(ctx context.Context, presented string) (Record, error)
}

// Options configure a MemStore. The zero value is usable.
type Options struct {
	// Mode is the mode the gateway serves; Authenticate refuses keys of the
	// other mode. Empty accepts both (for an admin or coordinator store).
	Mode Mode
	// Clock returns the current time; time.Now when nil.
	Clock func() time.Time
	// Rand is the randomness for keys and ids; crypto/rand when nil.
	Rand io.Reader
}

// MemStore is an in-memory Store and usage meter. Keys are found by the
// SHA-256 of the presented key in one map lookup and then compared in
// constant time. It is safe for concurrent use.
type MemStore struct {
	// immutable after construction
	mode  Mode
	clock func() time.Time
	rand  io.Reader

	mu     sync.RWMutex
	byHash map[[sha256.Size]byte]*entry // guarded by mu
	byID   map[string]*entry            // guarded by mu

	usage usageBook
}

// entry is one stored key. The record is replaced under mu (copy on write);
// lastUsed is updated without the write lock.
type entry struct {
	rec      Record       // guarded by MemStore.mu
	lastUsed atomic.Int64 // unix nanoseconds, 0 = never
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore(opts Options) *MemStore {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	return &MemStore{
		mode:   opts.Mode,
		clock:  opts.Clock,
		rand:   opts.Rand,
		byHash: make(map[[sha256.Size]byte]*entry),
		byID:   make(map[string]*entry),
		usage:  usageBook{months: make(map[orgMonth]*monthCounts)},
	}
}

// String describes the store without any key material.
func (m *MemStore) String() string {
	m.mu.RLock()
	n := len(m.byID)
	m.mu.RUnlock()
	return fmt.Sprintf("keys.MemStore(%d keys, mode %q)", n, m.mode)
}

// GoString is String.
func (m *MemStore) GoString() string { return m.String() }

func validateNew(req NewKey) error {
	if req.Org == "" {
		return fmt.Errorf("%w: org is required", ErrInvalid)
	}
	if !req.Mode.Valid() {
		return fmt.Errorf("%w: mode must be live or test, got %q", ErrInvalid, req.Mode)
	}
	for _, s := range req.Scopes {
		if !KnownScope(s) {
			return fmt.Errorf("%w: unknown scope %q (known: %v)", ErrInvalid, s, Scopes())
		}
	}
	return nil
}

// Create makes a key.
func (m *MemStore) Create(_ context.Context, req NewKey) (Record, Key, error) {
	if err := validateNew(req); err != nil {
		return Record{}, Key{}, fmt.Errorf("keys: create: %w", err)
	}
	k, err := Generate(req.Mode, m.rand)
	if err != nil {
		return Record{}, Key{}, fmt.Errorf("keys: create: %w", err)
	}
	id, err := m.newID()
	if err != nil {
		return Record{}, Key{}, fmt.Errorf("keys: create: %w", err)
	}
	rec := Record{
		ID:      id,
		Hash:    k.Hash(),
		Prefix:  DisplayPrefix(k),
		Org:     req.Org,
		Name:    req.Name,
		Scopes:  slices.Clone(req.Scopes),
		Mode:    req.Mode,
		State:   StateActive,
		Created: m.clock().UTC(),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.byHash[rec.Hash]; dup {
		// 256 random bits do not collide; a broken random source does.
		return Record{}, Key{}, fmt.Errorf("keys: create: generated a key that already exists (random source broken?)")
	}
	e := &entry{rec: rec}
	m.byHash[rec.Hash] = e
	m.byID[rec.ID] = e
	return cloneRecord(rec), k, nil
}

// Put stores a record received from elsewhere (a coordinator snapshot),
// replacing any record with the same id. The record carries the hash only.
func (m *MemStore) Put(_ context.Context, rec Record) error {
	if rec.ID == "" {
		return fmt.Errorf("keys: put: %w: id is required", ErrInvalid)
	}
	if err := validateNew(NewKey{Org: rec.Org, Scopes: rec.Scopes, Mode: rec.Mode}); err != nil {
		return fmt.Errorf("keys: put %s: %w", rec.ID, err)
	}
	switch rec.State {
	case StateActive, StateDisabled, StateRevoked:
	default:
		return fmt.Errorf("keys: put %s: %w: unknown state %q", rec.ID, ErrInvalid, rec.State)
	}
	if rec.Hash == ([sha256.Size]byte{}) {
		return fmt.Errorf("keys: put %s: %w: hash is required", rec.ID, ErrInvalid)
	}
	rec = cloneRecord(rec)
	m.mu.Lock()
	defer m.mu.Unlock()
	if other, ok := m.byHash[rec.Hash]; ok && other.rec.ID != rec.ID {
		return fmt.Errorf("keys: put %s: %w: the hash belongs to another key", rec.ID, ErrInvalid)
	}
	if old, ok := m.byID[rec.ID]; ok {
		delete(m.byHash, old.rec.Hash)
	}
	e := &entry{rec: rec}
	if !rec.LastUsed.IsZero() {
		e.lastUsed.Store(rec.LastUsed.UnixNano())
	}
	m.byHash[rec.Hash] = e
	m.byID[rec.ID] = e
	return nil
}

func (m *MemStore) newID() (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(m.rand, b[:]); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return "key_" + hex.EncodeToString(b[:]), nil
}

// snapshot returns a copy of e's record with the current last-used time.
// Call with mu held (read or write).
func snapshot(e *entry) Record {
	r := cloneRecord(e.rec)
	if ns := e.lastUsed.Load(); ns != 0 {
		r.LastUsed = time.Unix(0, ns).UTC()
	}
	return r
}

func cloneRecord(r Record) Record {
	r.Scopes = slices.Clone(r.Scopes)
	return r
}

// Get returns the record with id.
func (m *MemStore) Get(_ context.Context, id string) (Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.byID[id]
	if !ok {
		return Record{}, fmt.Errorf("keys: get %s: %w", id, ErrNotFound)
	}
	return snapshot(e), nil
}

// List returns the records of org, oldest first (then by id).
func (m *MemStore) List(_ context.Context, org string) ([]Record, error) {
	m.mu.RLock()
	var out []Record
	for _, e := range m.byID {
		if e.rec.Org == org {
			out = append(out, snapshot(e))
		}
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// setState moves key id to state to, refusing to leave revoked.
func (m *MemStore) setState(op, id string, to State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byID[id]
	if !ok {
		return fmt.Errorf("keys: %s %s: %w", op, id, ErrNotFound)
	}
	if e.rec.State == StateRevoked && to != StateRevoked {
		return fmt.Errorf("keys: %s %s: %w", op, id, ErrRevokedFinal)
	}
	rec := cloneRecord(e.rec)
	rec.State = to
	e.rec = rec
	return nil
}

// Disable stops a key from authenticating until Enable.
func (m *MemStore) Disable(_ context.Context, id string) error {
	return m.setState("disable", id, StateDisabled)
}

// Enable re-enables a disabled key.
func (m *MemStore) Enable(_ context.Context, id string) error {
	return m.setState("enable", id, StateActive)
}

// Revoke ends a key for good; it takes effect on the next Authenticate.
func (m *MemStore) Revoke(_ context.Context, id string) error {
	return m.setState("revoke", id, StateRevoked)
}

// Authenticate parses the presented key, refuses a key of the other mode,
// finds the record by hash, compares the hash in constant time, checks the
// state and updates the last-used time.
func (m *MemStore) Authenticate(_ context.Context, presented string) (Record, error) {
	k, err := Parse(presented)
	if err != nil {
		return Record{}, err
	}
	if km := k.Mode(); m.mode != "" && km != m.mode {
		return Record{}, authErr(ErrWrongMode, fmt.Sprintf(
			"a %s key (tk_%s_) cannot be used on a %s gateway: use a tk_%s_ key", km, km, m.mode, m.mode))
	}
	h := k.Hash()
	m.mu.RLock()
	e, ok := m.byHash[h]
	var rec Record
	if ok {
		rec = e.rec
	}
	m.mu.RUnlock()
	// The map lookup finds the candidate (its timing depends on the hash,
	// which tells nothing about the key); the constant-time comparison is
	// the check.
	if !ok || subtle.ConstantTimeCompare(rec.Hash[:], h[:]) != 1 {
		return Record{}, authErr(ErrUnknown, "invalid API key: no such key (check that the whole key was copied)")
	}
	switch rec.State {
	case StateActive:
	case StateDisabled:
		return Record{}, authErr(ErrDisabled, "this API key is disabled: an administrator of the organization can enable it again")
	case StateRevoked:
		return Record{}, authErr(ErrRevoked, "this API key has been revoked: create a new key")
	default:
		return Record{}, fmt.Errorf("keys: key %s has unknown state %q", rec.ID, rec.State)
	}
	now := m.clock()
	e.lastUsed.Store(now.UnixNano())
	out := cloneRecord(rec)
	out.LastUsed = now.UTC()
	return out, nil
}
