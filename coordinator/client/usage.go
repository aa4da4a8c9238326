package client

import (
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/keys"
)

// usageKey identifies one monthly counter.
type usageKey struct {
	org, keyID, month, mode string
}

// pendingUsage is usage counted since the last acknowledged health report,
// to be reported to the coordinator (which aggregates the fleet).
type pendingUsage struct {
	mu sync.Mutex
	m  map[usageKey]keys.Counts // guarded by mu
}

func (p *pendingUsage) add(u keys.Usage, now time.Time) {
	at := u.At
	if at.IsZero() {
		at = now
	}
	k := usageKey{org: u.Org, keyID: u.KeyID, month: at.UTC().Format("2006-01"), mode: string(u.Mode)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[usageKey]keys.Counts{}
	}
	c := p.m[k]
	c.Requests += u.Requests
	c.Credits += u.Credits
	p.m[k] = c
}

// take empties the pending usage and returns it as report deltas, with a
// function that puts it back (for a report that failed).
func (p *pendingUsage) take() ([]*coordv1.UsageDelta, func()) {
	p.mu.Lock()
	m := p.m
	p.m = nil
	p.mu.Unlock()
	out := make([]*coordv1.UsageDelta, 0, len(m))
	for k, c := range m {
		month, _ := time.Parse("2006-01", k.month)
		out = append(out, &coordv1.UsageDelta{Org: k.org, KeyId: k.keyID, Month: timestamppb.New(month), Mode: k.mode,
			Requests: c.Requests, Credits: c.Credits})
	}
	restore := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.m == nil {
			p.m = map[usageKey]keys.Counts{}
		}
		for k, c := range m {
			cur := p.m[k]
			cur.Requests += c.Requests
			cur.Credits += c.Credits
			p.m[k] = cur
		}
	}
	return out, restore
}
