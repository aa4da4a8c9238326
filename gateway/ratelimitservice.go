package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	ratelimitcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
)

// The contract with the global rate-limit service (envoyproxy/ratelimit and
// its config in envoy/ratelimit/config.yaml); Envoy's rate-limit filter in
// envoy/edge.yaml sends the same domain and descriptors:
//
//	domain: takumo
//	1. [("org", <org>), ("plan", <plan>)]                       per minute
//	2. [("key", <key_id>), ("plan", <plan>)]                    per minute
//	3. [("org", <org>), ("plan", <plan>), ("window", "hour")]   per hour
//	4. [("key", <key_id>), ("plan", <plan>), ("window", "hour")] per hour
//
// The service takes one unit per descriptor, so the hourly limits need
// descriptors of their own: 3 and 4 are 1 and 2 with a third entry.
const (
	// RateLimitServiceDomain is the domain of every ShouldRateLimit call.
	RateLimitServiceDomain = "takumo"
	// DefaultRateLimitServiceTimeout bounds one ShouldRateLimit call when
	// RateLimitServiceConfig.Timeout is zero. The service answers from
	// Redis in about a millisecond; a slow answer costs every request its
	// wait, so it is short (Envoy's filter defaults to 20 ms).
	DefaultRateLimitServiceTimeout = 100 * time.Millisecond

	rlsKeyOrg     = "org"
	rlsKeyKey     = "key"
	rlsKeyPlan    = "plan"
	rlsKeyWindow  = "window"
	rlsWindowHour = "hour"
)

// RateLimitServiceConfig configures NewServiceRateLimiter.
type RateLimitServiceConfig struct {
	// Conn is the connection to the service (required).
	Conn grpc.ClientConnInterface
	// Domain is the rate-limit domain (default RateLimitServiceDomain).
	Domain string
	// Timeout bounds one call (default DefaultRateLimitServiceTimeout).
	Timeout time.Duration
}

// serviceLimiter asks a global rate-limit service
// (envoy.service.ratelimit.v3.RateLimitService), so that every replica
// counts against the same limits (in the service's Redis). The limits are
// the service's configuration, per plan; the per-request overrides in the
// descriptors (the plan's limits from the takumo.aegis metadata) are not
// sent, so the service's config.yaml must follow the policy's plans.
type serviceLimiter struct {
	// immutable after construction
	client  ratelimitv3.RateLimitServiceClient
	domain  string
	timeout time.Duration
	now     clock
}

// NewServiceRateLimiter returns a RateLimiter that asks the rate-limit
// service behind cfg.Conn. Check returns an error when the service cannot
// answer (unreachable, timeout, its Redis gone: the service answers
// UNAVAILABLE or UNKNOWN); the gateway then follows
// Config.RateLimitFailClosed.
func NewServiceRateLimiter(cfg RateLimitServiceConfig) (RateLimiter, error) {
	if cfg.Conn == nil {
		return nil, errors.New("rate-limit service: no connection")
	}
	l := &serviceLimiter{
		client:  ratelimitv3.NewRateLimitServiceClient(cfg.Conn),
		domain:  cfg.Domain,
		timeout: cfg.Timeout,
		now:     time.Now,
	}
	if l.domain == "" {
		l.domain = RateLimitServiceDomain
	}
	if l.timeout <= 0 {
		l.timeout = DefaultRateLimitServiceTimeout
	}
	return l, nil
}

// Check sends one ShouldRateLimit call with the descriptors of the
// contract above. Without an org or key id, or without a plan, there is
// nothing the service's config could match (as in Envoy, where an action
// on absent metadata drops the descriptor): the request passes unlimited.
func (l *serviceLimiter) Check(ctx context.Context, ds []Descriptor) (RateLimitResult, error) {
	descs := serviceDescriptors(ds)
	if len(descs) == 0 {
		return RateLimitResult{Allowed: true}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.client.ShouldRateLimit(ctx, &ratelimitv3.RateLimitRequest{Domain: l.domain, Descriptors: descs})
	if err != nil {
		return RateLimitResult{}, fmt.Errorf("rate-limit service: %w", err)
	}
	return l.result(resp)
}

// serviceDescriptors turns the gateway's descriptor entries (org, key_id,
// plan; see rateLimit in proxy.go) into the service's descriptors.
func serviceDescriptors(ds []Descriptor) []*ratelimitcommonv3.RateLimitDescriptor {
	var org, key, plan string
	for _, d := range ds {
		switch d.Key {
		case "org":
			org = d.Value
		case "key_id":
			key = d.Value
		case "plan":
			plan = d.Value
		}
	}
	if plan == "" {
		return nil
	}
	entry := func(k, v string) *ratelimitcommonv3.RateLimitDescriptor_Entry {
		return &ratelimitcommonv3.RateLimitDescriptor_Entry{Key: k, Value: v}
	}
	// In the contract's order (Envoy's rate_limits entries): the minute
	// descriptors, then the same with the hour window.
	var out []*ratelimitcommonv3.RateLimitDescriptor
	for _, hour := range []bool{false, true} {
		for _, who := range []struct{ key, value string }{{rlsKeyOrg, org}, {rlsKeyKey, key}} {
			if who.value == "" {
				continue
			}
			d := &ratelimitcommonv3.RateLimitDescriptor{Entries: []*ratelimitcommonv3.RateLimitDescriptor_Entry{
				entry(who.key, who.value), entry(rlsKeyPlan, plan),
			}}
			if hour {
				d.Entries = append(d.Entries, entry(rlsKeyWindow, rlsWindowHour))
			}
			out = append(out, d)
		}
	}
	return out
}

// result maps the service's answer. The headers describe the most
// constrained limit: on OVER_LIMIT, the exceeded limit that resets last
// (Retry-After is its reset); otherwise the one with the fewest requests
// left (on a tie, the one that resets last). Descriptors without a limit
// (nothing in the config matched) do not count.
func (l *serviceLimiter) result(resp *ratelimitv3.RateLimitResponse) (RateLimitResult, error) {
	var res RateLimitResult
	switch resp.GetOverallCode() {
	case ratelimitv3.RateLimitResponse_OK:
		res.Allowed = true
	case ratelimitv3.RateLimitResponse_OVER_LIMIT:
	default:
		return RateLimitResult{}, fmt.Errorf("rate-limit service: overall code %s", resp.GetOverallCode())
	}
	now := l.now()
	found := false
	for _, st := range resp.GetStatuses() {
		lim := st.GetCurrentLimit()
		unit := unitDuration(lim.GetUnit())
		if lim == nil || lim.GetRequestsPerUnit() == 0 || unit == 0 {
			continue
		}
		over := st.GetCode() == ratelimitv3.RateLimitResponse_OVER_LIMIT
		if !res.Allowed && !over {
			continue
		}
		reset := st.GetDurationUntilReset().AsDuration()
		if st.GetDurationUntilReset() == nil || reset <= 0 {
			reset = windowLeft(now, unit)
		}
		rem := int(st.GetLimitRemaining())
		if over {
			rem = 0
		}
		if !found || rem < res.Remaining || (rem == res.Remaining && reset > res.Reset) {
			found = true
			res.Limit = int(min(lim.GetRequestsPerUnit(), 1<<31-1))
			res.Remaining = rem
			res.Reset = reset
		}
	}
	if !res.Allowed {
		res.RetryAfter = res.Reset
		if !found {
			// OVER_LIMIT without a limit to name: retry in a second.
			res.RetryAfter = time.Second
		}
	}
	return res, nil
}

// unitDuration is the length of a rate-limit unit; 0 for units without a
// fixed length (MONTH, YEAR) or unknown ones.
func unitDuration(u ratelimitv3.RateLimitResponse_RateLimit_Unit) time.Duration {
	switch u {
	case ratelimitv3.RateLimitResponse_RateLimit_SECOND:
		return time.Second
	case ratelimitv3.RateLimitResponse_RateLimit_MINUTE:
		return time.Minute
	case ratelimitv3.RateLimitResponse_RateLimit_HOUR:
		return time.Hour
	case ratelimitv3.RateLimitResponse_RateLimit_DAY:
		return 24 * time.Hour
	case ratelimitv3.RateLimitResponse_RateLimit_WEEK:
		return 7 * 24 * time.Hour
	default:
		return 0
	}
}

// windowLeft is the time until the service's fixed window of length unit
// ends: its windows start at multiples of unit since the Unix epoch. Used
// when a status carries no duration_until_reset.
func windowLeft(now time.Time, unit time.Duration) time.Duration {
	sec := int64(unit / time.Second)
	return time.Duration(sec-now.Unix()%sec) * time.Second
}
