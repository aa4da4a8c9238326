package gateway

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// planMetadata is identityMetadata plus the plan's rate limits, as the
// ext_proc server sends them (numbers; absent when nil).
func planMetadata(org, keyID string, perMinute, perHour any) *structpb.Struct {
	md := identityMetadata(org, keyID, "")
	f := md.Fields[MetadataNamespace].GetStructValue().Fields
	for k, v := range map[string]any{metaRateLimitPerMinute: perMinute, metaRateLimitPerHour: perHour} {
		if v == nil {
			continue
		}
		pv, err := structpb.NewValue(v)
		if err != nil {
			panic(err)
		}
		f[k] = pv
	}
	return md
}

// planFake is a fake ext_proc that routes every request and sends md.
func planFake(md *structpb.Struct) *fakeExtProc {
	return &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		r := routeTo("anthropic", nil)
		r.DynamicMetadata = md
		return r, nil
	}}
}

type rateStep struct {
	status           int
	limit, remaining string
}

// runRateSteps sends one request per step and checks status and
// X-RateLimit-* headers; a 429 must carry Retry-After in (0, maxRetry]
// seconds, the RATE_LIMITED code, and never reach the upstream.
func runRateSteps(t *testing.T, h *harness, up *recordingUpstream, steps []rateStep, maxRetry int) {
	t.Helper()
	passed := 0
	for i, s := range steps {
		resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
		if resp.StatusCode != s.status {
			t.Fatalf("request %d: status %d, want %d (%s)", i, resp.StatusCode, s.status, body)
		}
		if got := resp.Header.Get("X-RateLimit-Limit"); got != s.limit {
			t.Errorf("request %d: X-RateLimit-Limit %q, want %q", i, got, s.limit)
		}
		if got := resp.Header.Get("X-RateLimit-Remaining"); got != s.remaining {
			t.Errorf("request %d: X-RateLimit-Remaining %q, want %q", i, got, s.remaining)
		}
		if resp.Header.Get("X-RateLimit-Reset") == "" {
			t.Errorf("request %d: no X-RateLimit-Reset", i)
		}
		if s.status == http.StatusOK {
			passed++
			continue
		}
		if code := decodeError(t, body).Code; code != codeRateLimited {
			t.Errorf("request %d: code %q", i, code)
		}
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > maxRetry {
			t.Errorf("request %d: Retry-After %q, want 1..%d", i, resp.Header.Get("Retry-After"), maxRetry)
		}
	}
	if up.count() != passed {
		t.Errorf("upstream got %d requests, want %d", up.count(), passed)
	}
}

func TestRateLimitFromPlanMetadata(t *testing.T) {
	for _, tc := range []struct {
		name     string
		md       *structpb.Struct
		cfg      RateLimits
		steps    []rateStep
		maxRetry int
	}{{
		// The plan's 2/min replaces no configured limit at all.
		name: "plan per minute",
		md:   planMetadata("org_1", "key_1", 2, -1),
		steps: []rateStep{
			{http.StatusOK, "2", "1"}, {http.StatusOK, "2", "0"}, {http.StatusTooManyRequests, "2", "0"},
		},
		maxRetry: 30, // one token every 30 s
	}, {
		// The plan's 3/min replaces a configured 100/min (the configured
		// figure is a cap, and 3 is under it).
		name: "plan under the configured cap",
		md:   planMetadata("org_1", "key_1", 3, nil),
		cfg:  RateLimits{PerOrg: Limit{RequestsPerMinute: 100}},
		steps: []rateStep{
			{http.StatusOK, "3", "2"}, {http.StatusOK, "3", "1"}, {http.StatusOK, "3", "0"}, {http.StatusTooManyRequests, "3", "0"},
		},
		maxRetry: 20,
	}, {
		// A configured 1/min caps a plan's 500/min.
		name: "configured cap under the plan",
		md:   planMetadata("org_1", "key_1", 500, 20000),
		cfg:  RateLimits{PerOrg: Limit{RequestsPerMinute: 1}},
		steps: []rateStep{
			{http.StatusOK, "1", "0"}, {http.StatusTooManyRequests, "1", "0"},
		},
		maxRetry: 60,
	}, {
		// The hourly bucket (2/h) empties before the minute one (30/min):
		// the headers describe it, and its Retry-After is 30 minutes.
		name: "hourly bucket closest to empty",
		md:   planMetadata("org_1", "key_1", 30, 2),
		steps: []rateStep{
			{http.StatusOK, "2", "1"}, {http.StatusOK, "2", "0"}, {http.StatusTooManyRequests, "2", "0"},
		},
		maxRetry: 1800,
	}, {
		// The per-key bucket has fewer tokens left than the plan's org
		// bucket: the headers follow the key bucket.
		name: "key bucket closest to empty",
		md:   planMetadata("org_1", "key_1", 30, 500),
		cfg:  RateLimits{PerKey: Limit{RequestsPerMinute: 60, Burst: 1}},
		steps: []rateStep{
			{http.StatusOK, "60", "0"}, {http.StatusTooManyRequests, "60", "0"},
		},
		maxRetry: 1,
	}, {
		// No limits in the metadata: the configured 2/min applies.
		name: "fallback when absent",
		md:   planMetadata("org_1", "key_1", nil, nil),
		cfg:  RateLimits{PerOrg: Limit{RequestsPerMinute: 2}},
		steps: []rateStep{
			{http.StatusOK, "2", "1"}, {http.StatusOK, "2", "0"}, {http.StatusTooManyRequests, "2", "0"},
		},
		maxRetry: 30,
	}, {
		// Malformed limits (a string, a fraction) are ignored.
		name: "fallback when malformed",
		md:   planMetadata("org_1", "key_1", "5", 1.5),
		cfg:  RateLimits{PerOrg: Limit{RequestsPerMinute: 1}},
		steps: []rateStep{
			{http.StatusOK, "1", "0"}, {http.StatusTooManyRequests, "1", "0"},
		},
		maxRetry: 60,
	}, {
		// An unlimited plan (-1) without a configured limit: no bucket, no
		// headers.
		name:  "unlimited plan",
		md:    planMetadata("org_1", "key_1", -1, -1),
		steps: []rateStep{{http.StatusOK, "", ""}, {http.StatusOK, "", ""}, {http.StatusOK, "", ""}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRecordingUpstream(t, `{}`)
			h := newHarness(t, planFake(tc.md), up.srv.URL, func(c *Config) { c.RateLimits = tc.cfg })
			if tc.steps[0].limit == "" {
				for i := range tc.steps {
					resp, _ := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
					if resp.StatusCode != http.StatusOK || resp.Header.Get("X-RateLimit-Limit") != "" {
						t.Fatalf("request %d: status %d, headers %v", i, resp.StatusCode, resp.Header)
					}
				}
				return
			}
			runRateSteps(t, h, up, tc.steps, tc.maxRetry)
		})
	}
}

func TestLocalLimiterPlanOverrides(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_700_000_000, 0)}
	l := newLocalLimiter(RateLimits{PerOrg: Limit{RequestsPerMinute: 100}}, clk.now)
	org := func(perMinute, perHour int) []Descriptor {
		ds := []Descriptor{{Key: "org", Value: "org_1", Override: RateOverride{Requests: perMinute, Unit: time.Minute}}}
		if perHour != 0 {
			ds = append(ds, Descriptor{Key: "org", Value: "org_1", Override: RateOverride{Requests: perHour, Unit: time.Hour}})
		}
		return ds
	}
	for i, s := range []struct {
		advance       time.Duration
		ds            []Descriptor
		allowed       bool
		limit, remain int
		reset         time.Duration
		retryAfter    time.Duration
	}{
		// free plan: 30/min and 500/h; the minute bucket is closest to empty.
		{ds: org(30, 500), allowed: true, limit: 30, remain: 29, reset: 2 * time.Second},
		// the plan changes to 2/min: the bucket shrinks to 2 tokens.
		{ds: org(2, 500), allowed: true, limit: 2, remain: 1, reset: 30 * time.Second},
		{ds: org(2, 500), allowed: true, limit: 2, remain: 0, reset: time.Minute},
		{ds: org(2, 500), allowed: false, limit: 2, remain: 0, reset: time.Minute, retryAfter: 30 * time.Second},
		// 30 s later one token is back.
		{advance: 30 * time.Second, ds: org(2, 500), allowed: true, limit: 2, remain: 0, reset: time.Minute},
		// unlimited per minute: the configured 100/min applies (its bucket
		// is a different one only by rate; it keeps its tokens: 0 + 0 refill).
		{ds: org(-1, 0), allowed: false, limit: 100, remain: 0, reset: time.Minute, retryAfter: 600 * time.Millisecond},
		// a plan above the configured cap gets the cap.
		{advance: time.Hour, ds: org(500, 0), allowed: true, limit: 100, remain: 99, reset: 600 * time.Millisecond},
		// hourly bucket alone nearly empty: 3/h after the minute is refilled.
		{ds: org(500, 3), allowed: true, limit: 3, remain: 2, reset: 20 * time.Minute},
		{ds: org(500, 3), allowed: true, limit: 3, remain: 1, reset: 40 * time.Minute},
		{ds: org(500, 3), allowed: true, limit: 3, remain: 0, reset: time.Hour},
		{ds: org(500, 3), allowed: false, limit: 3, remain: 0, reset: time.Hour, retryAfter: 20 * time.Minute},
	} {
		clk.advance(s.advance)
		res, err := l.Check(t.Context(), s.ds)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed != s.allowed || res.Limit != s.limit || res.Remaining != s.remain || res.Reset.Round(time.Millisecond) != s.reset {
			t.Fatalf("step %d: got %+v, want %+v", i, res, s)
		}
		if !s.allowed && res.RetryAfter.Round(time.Millisecond) != s.retryAfter {
			t.Fatalf("step %d: retry after %v, want %v", i, res.RetryAfter, s.retryAfter)
		}
	}
}
