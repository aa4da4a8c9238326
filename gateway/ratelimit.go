package gateway

import (
	"context"
	"math"
	"sync"
	"time"
)

// Descriptor is one rate-limit descriptor entry, as Envoy sends to a
// rate-limit service: a key ("org" or "key_id") and its value, and
// optionally a limit that overrides the configured one for this entry
// (Envoy's RateLimitOverride, filled from dynamic metadata). An entry with
// key "plan" names the org's plan: it carries no limit of its own (the
// local limiter skips it), the rate-limit service client pairs it with
// the org and the key id (ratelimitservice.go).
type Descriptor struct {
	Key, Value string
	// Override, when Requests is not zero, is the limit the control plane
	// decided for this entry (the org's plan): Requests per Unit.
	Override RateOverride
}

// identityHeaderPlan is the plan header ext_proc sets beside
// x-takumo-org and x-takumo-key-id; rate limiting falls back to it when
// the takumo.aegis metadata has no plan.
const identityHeaderPlan = "x-takumo-plan"

// RateOverride is a limit decided per request: Requests per Unit
// (time.Minute or time.Hour). Requests -1 means unlimited; 0 means no
// override (the configured limit applies).
type RateOverride struct {
	Requests int
	Unit     time.Duration
}

// RateLimitResult is the verdict for one request. Limit, Remaining and
// Reset describe the descriptor with the fewest remaining requests; they
// become the X-RateLimit-* headers. Limit 0 means no limit applied (no
// headers).
type RateLimitResult struct {
	Allowed   bool
	Limit     int
	Remaining int
	// Reset is the time until that bucket is full again.
	Reset time.Duration
	// RetryAfter is the time until the next request would be allowed (only
	// meaningful when !Allowed).
	RetryAfter time.Duration
}

// RateLimiter decides whether a request may go on. The gateway calls it
// after ext_proc's request phase with the descriptors it found. An error
// lets the request through (Envoy's global rate-limit filter defaults to
// failure_mode_deny false) and is logged and counted, unless
// Config.RateLimitFailClosed says to refuse it. Two implementations:
// NewLocalRateLimiter (in memory, per replica; the default) and
// NewServiceRateLimiter (a global rate-limit service shared by replicas).
type RateLimiter interface {
	Check(ctx context.Context, descriptors []Descriptor) (RateLimitResult, error)
}

// clock is the time source of the local limiter (tests drive it by hand).
type clock func() time.Time

// localLimiter keeps token buckets in memory: one per org (and one more
// per org and hour when the descriptor carries an hourly override) and one
// per key id.
type localLimiter struct {
	// immutable after construction
	limits     map[string]Limit // descriptor key → configured limit
	maxBuckets int
	now        clock

	mu      sync.Mutex
	buckets map[bucketKey]*bucket // guarded by mu
}

// bucketKey names a bucket: the descriptor entry and the unit of its limit
// (an org has a per-minute and a per-hour bucket).
type bucketKey struct {
	key, value string
	unit       time.Duration
}

// rate is the limit one bucket enforces for one request.
type rate struct {
	limit  int     // requests per unit (the X-RateLimit-Limit value)
	burst  float64 // bucket size
	perSec float64 // refill
}

type bucket struct {
	tokens float64
	last   time.Time
	rate   rate // the rate last applied (eviction needs it)
}

// NewLocalRateLimiter returns the in-memory token-bucket limiter the
// gateway uses when Config.RateLimiter is nil.
func NewLocalRateLimiter(cfg RateLimits) RateLimiter {
	return newLocalLimiter(cfg, time.Now)
}

func newLocalLimiter(cfg RateLimits, now clock) *localLimiter {
	l := &localLimiter{
		limits:     map[string]Limit{},
		maxBuckets: cfg.MaxBuckets,
		now:        now,
		buckets:    map[bucketKey]*bucket{},
	}
	if l.maxBuckets <= 0 {
		l.maxBuckets = 10000
	}
	if cfg.PerOrg.RequestsPerMinute > 0 {
		l.limits["org"] = cfg.PerOrg
	}
	if cfg.PerKey.RequestsPerMinute > 0 {
		l.limits["key_id"] = cfg.PerKey
	}
	return l
}

func (lim Limit) burst() float64 {
	if lim.Burst > 0 {
		return float64(lim.Burst)
	}
	return float64(lim.RequestsPerMinute)
}

func (lim Limit) perSecond() float64 { return float64(lim.RequestsPerMinute) / 60 }

func (lim Limit) rate() rate {
	return rate{limit: lim.RequestsPerMinute, burst: lim.burst(), perSec: lim.perSecond()}
}

// rateFor is the limit for d, ok false when none applies. Without an
// override it is the configured limit for d.Key. A per-minute override
// (the org's plan) is capped by the configured limit: the configured
// figure can lower a plan's limit, never raise it; an unlimited (-1)
// override leaves the configured limit. A per-hour override is a bucket of
// its own (Requests tokens, refilled over the hour), not capped.
func (l *localLimiter) rateFor(d Descriptor) (bucketKey, rate, bool) {
	cfg, configured := l.limits[d.Key]
	k := bucketKey{key: d.Key, value: d.Value, unit: time.Minute}
	o := d.Override
	switch {
	case o.Requests == 0 || o.Unit <= 0:
		return k, cfg.rate(), configured
	case o.Unit != time.Minute:
		k.unit = o.Unit
		if o.Requests < 0 {
			return k, rate{}, false
		}
		n := float64(o.Requests)
		return k, rate{limit: o.Requests, burst: n, perSec: n / o.Unit.Seconds()}, true
	case o.Requests < 0 || (configured && cfg.RequestsPerMinute <= o.Requests):
		return k, cfg.rate(), configured
	}
	r := rate{limit: o.Requests, burst: float64(o.Requests), perSec: float64(o.Requests) / 60}
	if configured && cfg.Burst > 0 {
		r.burst = math.Min(r.burst, float64(cfg.Burst))
	}
	return k, r, true
}

// Check takes one token from every bucket that applies, or none when any
// of them is empty.
func (l *localLimiter) Check(_ context.Context, ds []Descriptor) (RateLimitResult, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	hits := make([]*bucket, 0, len(ds))
	for _, d := range ds {
		if d.Value == "" {
			continue
		}
		k, r, ok := l.rateFor(d)
		if !ok || r.perSec <= 0 || r.burst <= 0 {
			continue
		}
		hits = append(hits, l.bucketFor(k, r, now))
	}
	res := RateLimitResult{Allowed: true}
	if len(hits) == 0 {
		return res, nil
	}
	for _, b := range hits {
		if b.tokens < 1 {
			res.Allowed = false
			wait := time.Duration((1 - b.tokens) / b.rate.perSec * float64(time.Second))
			res.RetryAfter = max(res.RetryAfter, wait)
		}
	}
	if res.Allowed {
		for _, b := range hits {
			b.tokens--
		}
	}
	// Headers describe the bucket closest to empty: the fewest whole
	// tokens left (on a tie, the one that takes longest to refill, since
	// its Reset is what a client must wait for).
	first := true
	for _, b := range hits {
		rem := int(math.Floor(b.tokens))
		reset := time.Duration((b.rate.burst - b.tokens) / b.rate.perSec * float64(time.Second))
		if first || rem < res.Remaining || (rem == res.Remaining && reset > res.Reset) {
			first = false
			res.Limit = b.rate.limit
			res.Remaining = rem
			res.Reset = reset
		}
	}
	if !res.Allowed {
		res.Remaining = 0
	}
	return res, nil
}

// bucketFor returns k's bucket refilled to now at rate r, creating it
// full. A bucket whose rate changed (the org's plan did) keeps its tokens,
// cut to the new size. Called with mu held.
func (l *localLimiter) bucketFor(k bucketKey, r rate, now time.Time) *bucket {
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= l.maxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: r.burst, last: now, rate: r}
		l.buckets[k] = b
		return b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens += el.Seconds() * r.perSec
		b.last = now
	}
	b.tokens = math.Min(r.burst, b.tokens)
	b.rate = r
	return b
}

// evict drops buckets that would be full by now (forgetting them changes
// nothing); if none is, it drops the one idle the longest. Called with mu
// held.
func (l *localLimiter) evict(now time.Time) {
	var oldest bucketKey
	var oldestAt time.Time
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*b.rate.perSec >= b.rate.burst {
			delete(l.buckets, k)
			continue
		}
		if oldestAt.IsZero() || b.last.Before(oldestAt) {
			oldest, oldestAt = k, b.last
		}
	}
	if len(l.buckets) >= l.maxBuckets {
		delete(l.buckets, oldest)
	}
}
