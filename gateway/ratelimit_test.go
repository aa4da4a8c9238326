package gateway

import (
	"testing"
	"time"
)

// manualClock is a clock the test moves by hand.
type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time          { return c.t }
func (c *manualClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLocalLimiterTokenBuckets(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_700_000_000, 0)}
	l := newLocalLimiter(RateLimits{PerOrg: Limit{RequestsPerMinute: 120, Burst: 3}, PerKey: Limit{RequestsPerMinute: 60, Burst: 2}}, clk.now)
	ds := []Descriptor{{Key: "org", Value: "org_1"}, {Key: "key_id", Value: "key_1"}}

	type step struct {
		advance       time.Duration
		allowed       bool
		limit, remain int
		retryAfter    time.Duration
	}
	for i, s := range []step{
		{allowed: true, limit: 60, remain: 1},
		{allowed: true, limit: 60, remain: 0},
		{allowed: false, limit: 60, remain: 0, retryAfter: time.Second},
		{advance: 500 * time.Millisecond, allowed: false, limit: 60, remain: 0, retryAfter: 500 * time.Millisecond},
		{advance: 500 * time.Millisecond, allowed: true, limit: 60, remain: 0},
		{advance: time.Hour, allowed: true, limit: 60, remain: 1},
	} {
		clk.advance(s.advance)
		res, err := l.Check(t.Context(), ds)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed != s.allowed || res.Limit != s.limit || res.Remaining != s.remain {
			t.Fatalf("step %d: got %+v, want %+v", i, res, s)
		}
		if !s.allowed && res.RetryAfter != s.retryAfter {
			t.Fatalf("step %d: retry after %v, want %v", i, res.RetryAfter, s.retryAfter)
		}
	}
	// Another key of the same org has its own key bucket but shares the
	// org bucket (3 burst, 2 per second refill at 120/min).
	res, _ := l.Check(t.Context(), []Descriptor{{Key: "org", Value: "org_1"}, {Key: "key_id", Value: "key_2"}})
	if !res.Allowed {
		t.Errorf("key_2 should pass: %+v", res)
	}
}

func TestLocalLimiterOrgLimitCountsEveryKey(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_700_000_000, 0)}
	l := newLocalLimiter(RateLimits{PerOrg: Limit{RequestsPerMinute: 2}}, clk.now)
	for i, want := range []bool{true, true, false} {
		res, _ := l.Check(t.Context(), []Descriptor{{Key: "org", Value: "org_1"}, {Key: "key_id", Value: "key_" + itoa(i)}})
		if res.Allowed != want {
			t.Errorf("request %d: allowed %v, want %v", i, res.Allowed, want)
		}
	}
}

func TestLocalLimiterNoDescriptorsNoLimit(t *testing.T) {
	l := newLocalLimiter(RateLimits{PerKey: Limit{RequestsPerMinute: 1}}, time.Now)
	for range 3 {
		if res, _ := l.Check(t.Context(), nil); !res.Allowed || res.Limit != 0 {
			t.Fatalf("got %+v", res)
		}
	}
}

func TestLocalLimiterBoundsBuckets(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_700_000_000, 0)}
	l := newLocalLimiter(RateLimits{PerKey: Limit{RequestsPerMinute: 1}, MaxBuckets: 4}, clk.now)
	for i := range 20 {
		_, _ = l.Check(t.Context(), []Descriptor{{Key: "key_id", Value: "k" + itoa(i)}})
		clk.advance(time.Second)
	}
	if n := len(l.buckets); n > 4 {
		t.Errorf("%d buckets kept, max 4", n)
	}
}
