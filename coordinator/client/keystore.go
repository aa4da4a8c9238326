package client

import (
	"context"
	"time"

	"github.com/takumo/aegis/keys"
)

// Keys is the gateway's key store backed by the coordinator's snapshot; it
// has the methods of extproc.KeyStore. It is safe for concurrent use.
type Keys struct{ c *Client }

// Authenticate finds the presented key in the current snapshot by its
// SHA-256 and compares the hash in constant time (keys.MemStore does
// both). Refusals are the *keys.AuthError values of keys.MemStore:
// unknown, disabled, revoked, wrong mode, malformed. When the fail mode
// allows no answer from the snapshot it returns an error wrapping
// ErrNotReady, which is not an AuthError: the request fails with 503.
func (k *Keys) Authenticate(ctx context.Context, presented string) (keys.Record, error) {
	if err := k.c.usable(); err != nil {
		// A malformed key is refused the same whatever the snapshot.
		if _, perr := keys.Parse(presented); perr != nil {
			return keys.Record{}, perr
		}
		return keys.Record{}, err
	}
	rec, err := k.c.cur.Load().index.Authenticate(ctx, presented)
	if err != nil {
		return keys.Record{}, err
	}
	if raw, err := keys.Parse(presented); err == nil {
		rec.Prefix = keys.DisplayPrefix(raw)
	}
	return rec, nil
}

// Month is org's usage, counted by this gateway, in the calendar month of
// t.
func (k *Keys) Month(org string, t time.Time) (keys.MonthUsage, error) {
	return k.c.usage.Month(org, t)
}

// Record adds a request's usage to this gateway's counters and to the
// usage the next health report sends to the coordinator.
func (k *Keys) Record(ctx context.Context, u keys.Usage) error {
	if err := k.c.usage.Record(ctx, u); err != nil {
		return err
	}
	k.c.pending.add(u, k.c.opt.Now())
	return nil
}

// String describes the store without any key material.
func (k *Keys) String() string { return "coordinator client key store" }
