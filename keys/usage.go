package keys

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Usage is what one or more requests used. Test-mode usage is counted apart
// and never against the plan.
type Usage struct {
	Org      string
	KeyID    string
	Mode     Mode
	Requests int64
	Credits  int64
	// At is when the usage happened; the store's clock when zero.
	At time.Time
}

// Counts are requests and credits.
type Counts struct {
	Requests int64
	Credits  int64
}

func (c *Counts) add(u Usage) {
	c.Requests += u.Requests
	c.Credits += u.Credits
}

// KeyUsage is one key's usage in a month, live and test apart.
type KeyUsage struct {
	Live Counts
	Test Counts
}

// MonthUsage is an organization's usage in one calendar month (UTC). Live
// is what counts against the plan; Test never does.
type MonthUsage struct {
	Org   string
	Month time.Time // first instant of the month, UTC
	Live  Counts
	Test  Counts
	Keys  map[string]KeyUsage // by key id
}

// MonthStart returns the first instant of t's calendar month in UTC.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

type orgMonth struct {
	org   string
	month int64 // MonthStart unix seconds
}

type monthCounts struct {
	live, test Counts
	keys       map[string]*KeyUsage
}

// usageBook holds the counters. It is part of MemStore.
type usageBook struct {
	mu     sync.Mutex
	months map[orgMonth]*monthCounts // guarded by mu
}

// Record adds u to the counters of its organization and key for the
// calendar month (UTC) of u.At.
func (m *MemStore) Record(_ context.Context, u Usage) error {
	if u.Org == "" {
		return fmt.Errorf("keys: record usage: %w: org is required", ErrInvalid)
	}
	if !u.Mode.Valid() {
		return fmt.Errorf("keys: record usage: %w: mode must be live or test, got %q", ErrInvalid, u.Mode)
	}
	if u.Requests < 0 || u.Credits < 0 {
		return fmt.Errorf("keys: record usage: %w: negative counts", ErrInvalid)
	}
	at := u.At
	if at.IsZero() {
		at = m.clock()
	}
	k := orgMonth{org: u.Org, month: MonthStart(at).Unix()}
	b := &m.usage
	b.mu.Lock()
	defer b.mu.Unlock()
	mc := b.months[k]
	if mc == nil {
		mc = &monthCounts{keys: make(map[string]*KeyUsage)}
		b.months[k] = mc
	}
	var ku *KeyUsage
	if u.KeyID != "" {
		ku = mc.keys[u.KeyID]
		if ku == nil {
			ku = &KeyUsage{}
			mc.keys[u.KeyID] = ku
		}
	}
	if u.Mode == ModeTest {
		mc.test.add(u)
		if ku != nil {
			ku.Test.add(u)
		}
	} else {
		mc.live.add(u)
		if ku != nil {
			ku.Live.add(u)
		}
	}
	return nil
}

// Month returns org's usage in the calendar month (UTC) that contains t.
func (m *MemStore) Month(org string, t time.Time) (MonthUsage, error) {
	start := MonthStart(t)
	out := MonthUsage{Org: org, Month: start, Keys: map[string]KeyUsage{}}
	b := &m.usage
	b.mu.Lock()
	defer b.mu.Unlock()
	mc := b.months[orgMonth{org: org, month: start.Unix()}]
	if mc == nil {
		return out, nil
	}
	out.Live, out.Test = mc.live, mc.test
	for id, ku := range mc.keys {
		out.Keys[id] = *ku
	}
	return out, nil
}

// PruneUsage forgets the counters of months that start before before.
func (m *MemStore) PruneUsage(before time.Time) {
	cut := MonthStart(before).Unix()
	b := &m.usage
	b.mu.Lock()
	defer b.mu.Unlock()
	maps.DeleteFunc(b.months, func(k orgMonth, _ *monthCounts) bool { return k.month < cut })
}
