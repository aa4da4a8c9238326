package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// JoinKey is a stored join key: its hash, never the key.
type JoinKey struct {
	ID          string
	Hash        [32]byte
	Name        string
	Environment string
	// Org is the org the gateways joining with it serve; empty for a
	// fleet-wide key.
	Org       string
	CreatedAt time.Time
	RevokedAt time.Time // zero while the key is valid
}

// Revoked reports whether the join key was revoked.
func (j JoinKey) Revoked() bool { return !j.RevokedAt.IsZero() }

// CreateJoinKey stores a new join key. An id or hash already stored is
// ErrConflict.
func (s *Store) CreateJoinKey(ctx context.Context, j JoinKey) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO join_keys (id, hash, name, environment, org, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, 0)`), j.ID, j.Hash[:], j.Name, j.Environment, j.Org, micros(j.CreatedAt))
	if err != nil {
		if s.isUnique(err) {
			return fmt.Errorf("store: join key %s: %w", j.ID, ErrConflict)
		}
		return fmt.Errorf("store: join key %s: %w", j.ID, err)
	}
	return nil
}

const joinKeyCols = `id, hash, name, environment, org, created_at, revoked_at`

func scanJoinKey(sc interface{ Scan(...any) error }) (JoinKey, error) {
	var (
		j         JoinKey
		h         []byte
		cAt, rvAt int64
	)
	if err := sc.Scan(&j.ID, &h, &j.Name, &j.Environment, &j.Org, &cAt, &rvAt); err != nil {
		return JoinKey{}, err
	}
	var err error
	j.Hash, err = hash32(h)
	j.CreatedAt, j.RevokedAt = fromMicros(cAt), fromMicros(rvAt)
	return j, err
}

// JoinKeyByHash finds the join key with the given hash (ErrNotFound when
// none).
func (s *Store) JoinKeyByHash(ctx context.Context, h [32]byte) (JoinKey, error) {
	j, err := scanJoinKey(s.db.QueryRowContext(ctx, s.q(`SELECT `+joinKeyCols+` FROM join_keys WHERE hash = ?`), h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return JoinKey{}, fmt.Errorf("store: join key: %w", ErrNotFound)
	}
	if err != nil {
		return JoinKey{}, fmt.Errorf("store: join key: %w", err)
	}
	return j, nil
}

// JoinKey returns the join key with the given id.
func (s *Store) JoinKey(ctx context.Context, id string) (JoinKey, error) {
	j, err := scanJoinKey(s.db.QueryRowContext(ctx, s.q(`SELECT `+joinKeyCols+` FROM join_keys WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return JoinKey{}, fmt.Errorf("store: join key %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return JoinKey{}, fmt.Errorf("store: join key %s: %w", id, err)
	}
	return j, nil
}

// ListJoinKeys returns every join key, oldest first.
func (s *Store) ListJoinKeys(ctx context.Context) ([]JoinKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+joinKeyCols+` FROM join_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: join keys: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []JoinKey
	for rows.Next() {
		j, err := scanJoinKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: join keys: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: join keys: %w", err)
	}
	return out, nil
}

// RevokeJoinKey revokes a join key at time at. Revoking twice keeps the
// first time; an unknown id is ErrNotFound.
func (s *Store) RevokeJoinKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE join_keys SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?`),
		micros(at), id)
	if err != nil {
		return fmt.Errorf("store: revoke join key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: revoke join key %s: %w", id, ErrNotFound)
	}
	return nil
}

// Gateway is a registered gateway and its latest health report.
type Gateway struct {
	ID             string
	CredentialHash [32]byte
	JoinKeyID      string
	Org            string
	Name           string
	Version        string
	Mode           string
	RegisteredAt   time.Time
	Health
}

// Health is what a gateway last reported, with the coordinator's receive
// time as LastSeen and the gateway clock's offset from it as Skew.
type Health struct {
	LastSeen        time.Time
	SnapshotVersion uint64
	ActiveSessions  int64
	MemoryBytes     int64
	Skew            time.Duration
	GatewayVersion  string
}

// CreateGateway stores a newly registered gateway.
func (s *Store) CreateGateway(ctx context.Context, g Gateway) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gateways (id, credential_hash, join_key_id, org, name, version, mode, registered_at, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		g.ID, g.CredentialHash[:], g.JoinKeyID, g.Org, g.Name, g.Version, g.Mode, micros(g.RegisteredAt), micros(g.RegisteredAt))
	if err != nil {
		if s.isUnique(err) {
			return fmt.Errorf("store: gateway %s: %w", g.ID, ErrConflict)
		}
		return fmt.Errorf("store: gateway %s: %w", g.ID, err)
	}
	return nil
}

const gatewayCols = `id, credential_hash, join_key_id, org, name, version, mode, registered_at, last_seen, snapshot_version, active_sessions, memory_bytes, skew_us`

func scanGateway(sc interface{ Scan(...any) error }) (Gateway, error) {
	var (
		g              Gateway
		h              []byte
		reg, seen, skw int64
		snap           int64
	)
	if err := sc.Scan(&g.ID, &h, &g.JoinKeyID, &g.Org, &g.Name, &g.Version, &g.Mode, &reg, &seen, &snap,
		&g.ActiveSessions, &g.MemoryBytes, &skw); err != nil {
		return Gateway{}, err
	}
	var err error
	g.CredentialHash, err = hash32(h)
	g.RegisteredAt, g.LastSeen = fromMicros(reg), fromMicros(seen)
	g.SnapshotVersion = uint64(snap) //nolint:gosec // G115: stored from a uint64 below 2^63
	g.Skew = time.Duration(skw) * time.Microsecond
	g.GatewayVersion = g.Version
	return g, err
}

// GatewayByCredential finds the gateway a credential hash was issued to.
func (s *Store) GatewayByCredential(ctx context.Context, h [32]byte) (Gateway, error) {
	g, err := scanGateway(s.db.QueryRowContext(ctx, s.q(`SELECT `+gatewayCols+` FROM gateways WHERE credential_hash = ?`), h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return Gateway{}, fmt.Errorf("store: gateway: %w", ErrNotFound)
	}
	if err != nil {
		return Gateway{}, fmt.Errorf("store: gateway: %w", err)
	}
	return g, nil
}

// ListGateways returns every registered gateway, oldest first.
func (s *Store) ListGateways(ctx context.Context) ([]Gateway, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+gatewayCols+` FROM gateways ORDER BY registered_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: gateways: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Gateway
	for rows.Next() {
		g, err := scanGateway(rows)
		if err != nil {
			return nil, fmt.Errorf("store: gateways: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: gateways: %w", err)
	}
	return out, nil
}

// ReportHealth records a gateway's health report.
func (s *Store) ReportHealth(ctx context.Context, id string, h Health) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE gateways SET last_seen = ?, snapshot_version = ?, active_sessions = ?, memory_bytes = ?, skew_us = ?,
		version = CASE WHEN ? = '' THEN version ELSE ? END WHERE id = ?`),
		micros(h.LastSeen), int64(h.SnapshotVersion), h.ActiveSessions, h.MemoryBytes, h.Skew.Microseconds(), //nolint:gosec // G115: versions stay below 2^63
		h.GatewayVersion, h.GatewayVersion, id)
	if err != nil {
		return fmt.Errorf("store: health %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: health %s: %w", id, ErrNotFound)
	}
	return nil
}
