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

// live sums the pending live usage of org in month ("2006-01").
func (p *pendingUsage) live(org, month string) keys.Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	var c keys.Counts
	for k, v := range p.m {
		if k.org == org && k.month == month && k.mode == string(keys.ModeLive) {
			c.Requests += v.Requests
			c.Credits += v.Credits
		}
	}
	return c
}

// fleetUsage is the fleet's live usage per org for one month, as the
// coordinator last reported it (including everything this gateway had
// reported by then).
type fleetUsage struct {
	mu sync.Mutex
	m  map[string]monthCounts // org → totals; guarded by mu
}

type monthCounts struct {
	month string
	c     keys.Counts
}

func (f *fleetUsage) set(deltas []*coordv1.UsageDelta) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]monthCounts{}
	}
	for _, d := range deltas {
		if d.GetMode() != string(keys.ModeLive) {
			continue
		}
		f.m[d.GetOrg()] = monthCounts{month: d.GetMonth().AsTime().UTC().Format("2006-01"),
			c: keys.Counts{Requests: d.GetRequests(), Credits: d.GetCredits()}}
	}
}

// orgs lists the orgs the client holds totals for.
func (f *fleetUsage) orgs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.m))
	for o := range f.m {
		out = append(out, o)
	}
	return out
}

func (f *fleetUsage) get(org, month string) (keys.Counts, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mc, ok := f.m[org]
	if !ok || mc.month != month {
		return keys.Counts{}, false
	}
	return mc.c, true
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
