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

// Month is org's usage in the calendar month of t. Its live counts are the
// fleet's (the coordinator's totals at the last health report, plus what
// this gateway counted since), so monthly plan limits hold across
// replicas; before the first report, or when the coordinator has no
// total for the org, they are this gateway's own.
func (k *Keys) Month(org string, t time.Time) (keys.MonthUsage, error) {
	mu, err := k.c.usage.Month(org, t)
	if err != nil {
		return mu, err
	}
	month := t.UTC().Format("2006-01")
	if fleet, ok := k.c.fleet.get(org, month); ok {
		p := k.c.pending.live(org, month)
		total := keys.Counts{Requests: fleet.Requests + p.Requests, Credits: fleet.Credits + p.Credits}
		if total.Requests > mu.Live.Requests {
			mu.Live.Requests = total.Requests
		}
		if total.Credits > mu.Live.Credits {
			mu.Live.Credits = total.Credits
		}
	}
	return mu, nil
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
