package gateway

import (
	"context"
	"math"
	"sync"
	"time"
)

// Descriptor is one rate-limit descriptor entry, as Envoy sends to a
// rate-limit service: a key ("org" or "key_id") and its value.
type Descriptor struct {
	Key, Value string
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
// failure_mode_deny false) and is logged and counted.
type RateLimiter interface {
	Check(ctx context.Context, descriptors []Descriptor) (RateLimitResult, error)
}

// clock is the time source of the local limiter (tests drive it by hand).
type clock func() time.Time

// localLimiter keeps one token bucket per org and one per key id in memory.
type localLimiter struct {
	// immutable after construction
	limits     map[string]Limit // descriptor key → limit
	maxBuckets int
	now        clock

	mu      sync.Mutex
	buckets map[Descriptor]*bucket // guarded by mu
}

type bucket struct {
	tokens float64
	last   time.Time
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
		buckets:    map[Descriptor]*bucket{},
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

// Check takes one token from every bucket that applies, or none when any
// of them is empty.
func (l *localLimiter) Check(_ context.Context, ds []Descriptor) (RateLimitResult, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	type hit struct {
		lim Limit
		b   *bucket
	}
	hits := make([]hit, 0, len(ds))
	for _, d := range ds {
		lim, ok := l.limits[d.Key]
		if !ok || d.Value == "" {
			continue
		}
		b := l.bucketFor(d, lim, now)
		hits = append(hits, hit{lim, b})
	}
	res := RateLimitResult{Allowed: true}
	if len(hits) == 0 {
		return res, nil
	}
	for _, h := range hits {
		if h.b.tokens < 1 {
			res.Allowed = false
			wait := time.Duration((1 - h.b.tokens) / h.lim.perSecond() * float64(time.Second))
			res.RetryAfter = max(res.RetryAfter, wait)
		}
	}
	if res.Allowed {
		for _, h := range hits {
			h.b.tokens--
		}
	}
	// Headers describe the bucket with the fewest whole tokens left.
	first := true
	for _, h := range hits {
		rem := int(math.Floor(h.b.tokens))
		if first || rem < res.Remaining {
			first = false
			res.Limit = h.lim.RequestsPerMinute
			res.Remaining = rem
			res.Reset = time.Duration((h.lim.burst() - h.b.tokens) / h.lim.perSecond() * float64(time.Second))
		}
	}
	if !res.Allowed {
		res.Remaining = 0
	}
	return res, nil
}

// bucketFor returns d's bucket refilled to now, creating it full. Called
// with mu held.
func (l *localLimiter) bucketFor(d Descriptor, lim Limit, now time.Time) *bucket {
	b, ok := l.buckets[d]
	if !ok {
		if len(l.buckets) >= l.maxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: lim.burst(), last: now}
		l.buckets[d] = b
		return b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(lim.burst(), b.tokens+el.Seconds()*lim.perSecond())
		b.last = now
	}
	return b
}

// evict drops buckets that would be full by now (forgetting them changes
// nothing); if none is, it drops the one idle the longest. Called with mu
// held.
func (l *localLimiter) evict(now time.Time) {
	var oldest Descriptor
	var oldestAt time.Time
	for d, b := range l.buckets {
		lim := l.limits[d.Key]
		if b.tokens+now.Sub(b.last).Seconds()*lim.perSecond() >= lim.burst() {
			delete(l.buckets, d)
			continue
		}
		if oldestAt.IsZero() || b.last.Before(oldestAt) {
			oldest, oldestAt = d, b.last
		}
	}
	if len(l.buckets) >= l.maxBuckets {
		delete(l.buckets, oldest)
	}
}
