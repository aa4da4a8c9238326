package store

import (
	"context"
	"fmt"
	"time"
)

// UsageDelta is usage a gateway counted since its last report.
type UsageDelta struct {
	Org      string
	KeyID    string
	Month    time.Time // any time in the calendar month (UTC)
	Mode     string    // "live" or "test": test traffic is counted apart
	Requests int64
	Credits  int64
}

// UsageRow is the total of one org, key, month and mode.
type UsageRow struct {
	Org      string
	KeyID    string
	Month    string // "2026-11"
	Mode     string
	Requests int64
	Credits  int64
}

func monthKey(t time.Time) string { return t.UTC().Format("2006-01") }

// AddUsage adds deltas to the monthly totals in one transaction.
func (s *Store) AddUsage(ctx context.Context, deltas []UsageDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: usage: %w", err)
	}
	defer func() { _ = t.Rollback() }()
	stmt := s.q(`INSERT INTO usage (org, key_id, month, mode, requests, credits) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (org, key_id, month, mode) DO UPDATE SET requests = usage.requests + excluded.requests, credits = usage.credits + excluded.credits`)
	for _, d := range deltas {
		if _, err := t.ExecContext(ctx, stmt, d.Org, d.KeyID, monthKey(d.Month), d.Mode, d.Requests, d.Credits); err != nil {
			return fmt.Errorf("store: usage: %w", err)
		}
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("store: usage: %w", err)
	}
	return nil
}

// Usage returns the totals of a month (at: any time in it), for one org or
// every org when org is empty, ordered by org, key and mode.
func (s *Store) Usage(ctx context.Context, org string, at time.Time) ([]UsageRow, error) {
	query := `SELECT org, key_id, month, mode, requests, credits FROM usage WHERE month = ?`
	args := []any{monthKey(at)}
	if org != "" {
		query += ` AND org = ?`
		args = append(args, org)
	}
	query += ` ORDER BY org, key_id, mode`
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: usage: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []UsageRow
	for rows.Next() {
		var u UsageRow
		if err := rows.Scan(&u.Org, &u.KeyID, &u.Month, &u.Mode, &u.Requests, &u.Credits); err != nil {
			return nil, fmt.Errorf("store: usage: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: usage: %w", err)
	}
	return out, nil
}
