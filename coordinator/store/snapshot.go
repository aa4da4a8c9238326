package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Key states.
const (
	StateActive   = "active"
	StateDisabled = "disabled"
	StateRevoked  = "revoked"
)

// APIKey is a stored Takumo API key: its SHA-256, never the key.
type APIKey struct {
	ID        string
	Hash      [32]byte
	Org       string
	Name      string
	Mode      string // "live" or "test"
	Scopes    []string
	State     string
	CreatedAt time.Time
	Version   uint64 // store version of its last change
}

// Org is an organization as the policy sees it.
type Org struct {
	ID      string
	Plan    string
	Seats   int
	Deleted bool
	Version uint64
}

// Policy is the operator's policy: data merged over the embedded defaults
// and an optional OPA bundle that replaces the embedded policy.
type Policy struct {
	Revision string
	DataJSON []byte
	Bundle   []byte
	Version  uint64
}

// CreateKey stores a new API key and returns the new store version. An id
// or hash already stored is ErrConflict.
func (s *Store) CreateKey(ctx context.Context, k APIKey) (uint64, error) {
	if strings.Contains(strings.Join(k.Scopes, ""), ",") {
		return 0, fmt.Errorf("store: key %s: a scope holds a comma", k.ID)
	}
	var v uint64
	err := s.tx(ctx, func(t *sql.Tx) error {
		var err error
		if v, err = s.bump(ctx, t); err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, s.q(`INSERT INTO api_keys (id, hash, org, name, mode, scopes, state, created_at, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			k.ID, k.Hash[:], k.Org, k.Name, k.Mode, strings.Join(k.Scopes, ","), k.State, micros(k.CreatedAt), int64(v)) //nolint:gosec // G115
		return err
	})
	if err != nil {
		if s.isUnique(err) {
			return 0, fmt.Errorf("store: key %s: %w", k.ID, ErrConflict)
		}
		return 0, fmt.Errorf("store: key %s: %w", k.ID, err)
	}
	return v, nil
}

// SetKeyState moves a key to state and returns the new store version. A
// revoked key stays revoked (ErrRevoked); setting the state a key already
// has changes nothing and returns the current version.
func (s *Store) SetKeyState(ctx context.Context, id, state string) (uint64, error) {
	if state != StateActive && state != StateDisabled && state != StateRevoked {
		return 0, fmt.Errorf("store: key %s: unknown state %q", id, state)
	}
	var v uint64
	err := s.tx(ctx, func(t *sql.Tx) error {
		var cur string
		err := t.QueryRowContext(ctx, s.q(`SELECT state FROM api_keys WHERE id = ?`), id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		switch cur {
		case state:
			v, err = s.versionTx(ctx, t)
			return err
		case StateRevoked:
			return ErrRevoked
		}
		if v, err = s.bump(ctx, t); err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, s.q(`UPDATE api_keys SET state = ?, version = ? WHERE id = ?`), state, int64(v), id) //nolint:gosec // G115
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: key %s: %w", id, err)
	}
	return v, nil
}

func (s *Store) versionTx(ctx context.Context, t *sql.Tx) (uint64, error) {
	var v int64
	err := t.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'version'`).Scan(&v)
	return uint64(v), err //nolint:gosec // G115: never negative
}

const keyCols = `id, hash, org, name, mode, scopes, state, created_at, version`

func scanKey(sc interface{ Scan(...any) error }) (APIKey, error) {
	var (
		k        APIKey
		h        []byte
		scopes   string
		cAt, ver int64
	)
	if err := sc.Scan(&k.ID, &h, &k.Org, &k.Name, &k.Mode, &scopes, &k.State, &cAt, &ver); err != nil {
		return APIKey{}, err
	}
	var err error
	k.Hash, err = hash32(h)
	if scopes != "" {
		k.Scopes = strings.Split(scopes, ",")
	}
	k.CreatedAt, k.Version = fromMicros(cAt), uint64(ver) //nolint:gosec // G115
	return k, err
}

// Key returns the key with the given id.
func (s *Store) Key(ctx context.Context, id string) (APIKey, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, s.q(`SELECT `+keyCols+` FROM api_keys WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, fmt.Errorf("store: key %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("store: key %s: %w", id, err)
	}
	return k, nil
}

// ListKeys returns the keys of org (every org when org is empty), oldest
// first.
func (s *Store) ListKeys(ctx context.Context, org string) ([]APIKey, error) {
	query, args := `SELECT `+keyCols+` FROM api_keys ORDER BY created_at, id`, []any(nil)
	if org != "" {
		query, args = `SELECT `+keyCols+` FROM api_keys WHERE org = ? ORDER BY created_at, id`, []any{org}
	}
	return s.keys(ctx, query, args...)
}

func (s *Store) keys(ctx context.Context, query string, args ...any) ([]APIKey, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: keys: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: keys: %w", err)
	}
	return out, nil
}

// PutOrg creates or replaces an org (and undeletes it) and returns the
// new store version.
func (s *Store) PutOrg(ctx context.Context, o Org) (uint64, error) {
	if o.ID == "" {
		return 0, errors.New("store: org without an id")
	}
	var v uint64
	err := s.tx(ctx, func(t *sql.Tx) error {
		var err error
		if v, err = s.bump(ctx, t); err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, s.q(`INSERT INTO orgs (id, plan, seats, deleted, version) VALUES (?, ?, ?, 0, ?)
			ON CONFLICT (id) DO UPDATE SET plan = excluded.plan, seats = excluded.seats, deleted = 0, version = excluded.version`),
			o.ID, o.Plan, o.Seats, int64(v)) //nolint:gosec // G115
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: org %s: %w", o.ID, err)
	}
	return v, nil
}

// DeleteOrg marks an org deleted (ErrNotFound when unknown) and returns
// the new store version.
func (s *Store) DeleteOrg(ctx context.Context, id string) (uint64, error) {
	var v uint64
	err := s.tx(ctx, func(t *sql.Tx) error {
		var err error
		if v, err = s.bump(ctx, t); err != nil {
			return err
		}
		res, err := t.ExecContext(ctx, s.q(`UPDATE orgs SET deleted = 1, version = ? WHERE id = ? AND deleted = 0`), int64(v), id) //nolint:gosec // G115
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: org %s: %w", id, err)
	}
	return v, nil
}

// ListOrgs returns the orgs that are not deleted, by id.
func (s *Store) ListOrgs(ctx context.Context) ([]Org, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, plan, seats, deleted, version FROM orgs WHERE deleted = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: orgs: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Org
	for rows.Next() {
		var (
			o        Org
			del, ver int64
		)
		if err := rows.Scan(&o.ID, &o.Plan, &o.Seats, &del, &ver); err != nil {
			return nil, fmt.Errorf("store: orgs: %w", err)
		}
		o.Deleted, o.Version = del != 0, uint64(ver) //nolint:gosec // G115
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: orgs: %w", err)
	}
	return out, nil
}

// SetPolicy replaces the policy and returns the new store version.
func (s *Store) SetPolicy(ctx context.Context, p Policy) (uint64, error) {
	var v uint64
	err := s.tx(ctx, func(t *sql.Tx) error {
		var err error
		if v, err = s.bump(ctx, t); err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, s.q(`INSERT INTO policy (id, revision, data_json, bundle, version) VALUES (1, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, data_json = excluded.data_json, bundle = excluded.bundle, version = excluded.version`),
			p.Revision, nonNil(p.DataJSON), nonNil(p.Bundle), int64(v)) //nolint:gosec // G115
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: policy: %w", err)
	}
	return v, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Policy returns the stored policy; ok is false when none was ever set.
func (s *Store) Policy(ctx context.Context) (p Policy, ok bool, err error) {
	var ver int64
	err = s.db.QueryRowContext(ctx, `SELECT revision, data_json, bundle, version FROM policy WHERE id = 1`).
		Scan(&p.Revision, &p.DataJSON, &p.Bundle, &ver)
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, false, nil
	}
	if err != nil {
		return Policy{}, false, fmt.Errorf("store: policy: %w", err)
	}
	p.Version = uint64(ver) //nolint:gosec // G115
	return p, true, nil
}

// Changes is what changed after a version: the rows a gateway at that
// version must apply to reach Version.
type Changes struct {
	// Version is the store version the changes bring a gateway to.
	Version uint64
	Keys    []APIKey
	Orgs    []Org
	// Policy is set when the policy changed (or, since 0, exists).
	Policy *Policy
}

// Changes returns everything changed after version since (since 0: every
// row, a full snapshot), read in one transaction so that the rows and
// Version agree.
func (s *Store) Changes(ctx context.Context, since uint64) (Changes, error) {
	var c Changes
	// One read transaction: the version and the rows are from the same
	// moment. (SQLite's immediate lock is taken for this one too; reads are
	// short.)
	t, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.engine == Postgres, Isolation: s.snapshotIsolation()})
	if err != nil {
		return c, fmt.Errorf("store: changes: %w", err)
	}
	defer func() { _ = t.Rollback() }()
	if c.Version, err = s.versionTx(ctx, t); err != nil {
		return c, fmt.Errorf("store: changes: %w", err)
	}
	if since > c.Version {
		// The store is behind the gateway (a restored database): only a
		// full snapshot is consistent.
		since = 0
	}
	sinceArg := int64(since)
	if err := s.changedRows(ctx, t, sinceArg, &c); err != nil {
		return c, fmt.Errorf("store: changes: %w", err)
	}
	return c, nil
}

func (s *Store) snapshotIsolation() sql.IsolationLevel {
	if s.engine == Postgres {
		return sql.LevelRepeatableRead
	}
	return sql.LevelDefault
}

func (s *Store) changedRows(ctx context.Context, t *sql.Tx, since int64, c *Changes) error {
	rows, err := t.QueryContext(ctx, s.q(`SELECT `+keyCols+` FROM api_keys WHERE version > ? ORDER BY version, id`), since)
	if err != nil {
		return err
	}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			_ = rows.Close()
			return err
		}
		c.Keys = append(c.Keys, k)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	orgRows, err := t.QueryContext(ctx, s.q(`SELECT id, plan, seats, deleted, version FROM orgs WHERE version > ? ORDER BY id`), since)
	if err != nil {
		return err
	}
	for orgRows.Next() {
		var (
			o        Org
			del, ver int64
		)
		if err := orgRows.Scan(&o.ID, &o.Plan, &o.Seats, &del, &ver); err != nil {
			_ = orgRows.Close()
			return err
		}
		o.Deleted, o.Version = del != 0, uint64(ver) //nolint:gosec // G115
		if since == 0 && o.Deleted {
			continue // a full snapshot simply lacks it
		}
		c.Orgs = append(c.Orgs, o)
	}
	if err := orgRows.Close(); err != nil {
		return err
	}
	var (
		p   Policy
		ver int64
	)
	err = t.QueryRowContext(ctx, s.q(`SELECT revision, data_json, bundle, version FROM policy WHERE id = 1 AND version > ?`), since).
		Scan(&p.Revision, &p.DataJSON, &p.Bundle, &ver)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	default:
		p.Version = uint64(ver) //nolint:gosec // G115
		c.Policy = &p
	}
	slices.SortFunc(c.Keys, func(a, b APIKey) int { return strings.Compare(a.ID, b.ID) })
	return nil
}
