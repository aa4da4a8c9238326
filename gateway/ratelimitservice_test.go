package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ratelimitcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// fakeRLS is a rate-limit service that records the requests and answers
// with answer (a nil answer and a nil error: block until the caller gives
// up).
type fakeRLS struct {
	ratelimitv3.UnimplementedRateLimitServiceServer

	answer func(*ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error)

	mu   sync.Mutex
	reqs []*ratelimitv3.RateLimitRequest // guarded by mu
}

var _ ratelimitv3.RateLimitServiceServer = (*fakeRLS)(nil)

func (f *fakeRLS) ShouldRateLimit(ctx context.Context, req *ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	resp, err := f.answer(req)
	if resp == nil && err == nil {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return resp, err
}

func (f *fakeRLS) requests() []*ratelimitv3.RateLimitRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*ratelimitv3.RateLimitRequest(nil), f.reqs...)
}

// newFakeRLS serves f over bufconn and returns a connection to it.
func newFakeRLS(t *testing.T, f *fakeRLS) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer()
	ratelimitv3.RegisterRateLimitServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///rls",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
	})
	return conn
}

// rlsStatus is one descriptor status as envoyproxy/ratelimit writes it.
func rlsStatus(code ratelimitv3.RateLimitResponse_Code, perUnit uint32, unit ratelimitv3.RateLimitResponse_RateLimit_Unit, remaining uint32, reset time.Duration) *ratelimitv3.RateLimitResponse_DescriptorStatus {
	return &ratelimitv3.RateLimitResponse_DescriptorStatus{
		Code:               code,
		CurrentLimit:       &ratelimitv3.RateLimitResponse_RateLimit{RequestsPerUnit: perUnit, Unit: unit},
		LimitRemaining:     remaining,
		DurationUntilReset: durationpb.New(reset),
	}
}

const (
	rlsOK     = ratelimitv3.RateLimitResponse_OK
	rlsOver   = ratelimitv3.RateLimitResponse_OVER_LIMIT
	rlsMinute = ratelimitv3.RateLimitResponse_RateLimit_MINUTE
	rlsHour   = ratelimitv3.RateLimitResponse_RateLimit_HOUR
)

// descriptorStrings writes descriptors as "k=v,k=v" for comparison.
func descriptorStrings(ds []*ratelimitcommonv3.RateLimitDescriptor) []string {
	var out []string
	for _, d := range ds {
		var parts []string
		for _, e := range d.GetEntries() {
			parts = append(parts, e.GetKey()+"="+e.GetValue())
		}
		if d.GetLimit() != nil {
			parts = append(parts, "limit!")
		}
		out = append(out, strings.Join(parts, ","))
	}
	return out
}

func TestServiceLimiterSendsTheContractDescriptors(t *testing.T) {
	withPlan := []string{
		"org=org_1,plan=free", "key=key_1,plan=free",
		"org=org_1,plan=free,window=hour", "key=key_1,plan=free,window=hour",
	}
	for _, tc := range []struct {
		name string
		ds   []Descriptor
		want []string // nil: no call
	}{{
		name: "org key and plan, overrides not sent",
		ds: []Descriptor{
			{Key: "org", Value: "org_1", Override: RateOverride{Requests: 30, Unit: time.Minute}},
			{Key: "org", Value: "org_1", Override: RateOverride{Requests: 500, Unit: time.Hour}},
			{Key: "key_id", Value: "key_1"},
			{Key: "plan", Value: "free"},
		},
		want: withPlan,
	}, {
		name: "order does not matter",
		ds:   []Descriptor{{Key: "plan", Value: "free"}, {Key: "key_id", Value: "key_1"}, {Key: "org", Value: "org_1"}},
		want: withPlan,
	}, {
		name: "no key id",
		ds:   []Descriptor{{Key: "org", Value: "org_1"}, {Key: "plan", Value: "pro"}},
		want: []string{"org=org_1,plan=pro", "org=org_1,plan=pro,window=hour"},
	}, {
		name: "no plan, no call",
		ds:   []Descriptor{{Key: "org", Value: "org_1"}, {Key: "key_id", Value: "key_1"}},
	}, {
		name: "plan alone, no call",
		ds:   []Descriptor{{Key: "plan", Value: "free"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRLS{answer: func(*ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error) {
				return &ratelimitv3.RateLimitResponse{OverallCode: rlsOK}, nil
			}}
			l, err := NewServiceRateLimiter(RateLimitServiceConfig{Conn: newFakeRLS(t, f)})
			if err != nil {
				t.Fatal(err)
			}
			res, err := l.Check(t.Context(), tc.ds)
			if err != nil || !res.Allowed || res.Limit != 0 {
				t.Fatalf("Check: %+v, %v", res, err)
			}
			reqs := f.requests()
			if tc.want == nil {
				if len(reqs) != 0 {
					t.Fatalf("%d calls, want none", len(reqs))
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("%d calls, want 1", len(reqs))
			}
			if reqs[0].GetDomain() != "takumo" || reqs[0].GetHitsAddend() != 0 {
				t.Errorf("domain %q hits_addend %d, want takumo and 0 (one hit)", reqs[0].GetDomain(), reqs[0].GetHitsAddend())
			}
			if got := descriptorStrings(reqs[0].GetDescriptors()); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("descriptors\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestServiceLimiterMapsTheAnswer(t *testing.T) {
	// 12:00:15 UTC: a minute window has 45 s left, an hour window 59m45s.
	now := time.Date(2026, 3, 1, 12, 0, 15, 0, time.UTC)
	noLimit := &ratelimitv3.RateLimitResponse_DescriptorStatus{Code: rlsOK}
	for _, tc := range []struct {
		name    string
		resp    *ratelimitv3.RateLimitResponse
		want    RateLimitResult
		wantErr bool
	}{{
		name: "ok: the fewest left wins",
		resp: &ratelimitv3.RateLimitResponse{OverallCode: rlsOK, Statuses: []*ratelimitv3.RateLimitResponse_DescriptorStatus{
			rlsStatus(rlsOK, 30, rlsMinute, 12, 45*time.Second),
			rlsStatus(rlsOK, 500, rlsHour, 7, 30*time.Minute),
			rlsStatus(rlsOK, 30, rlsMinute, 20, 45*time.Second),
			noLimit,
		}},
		want: RateLimitResult{Allowed: true, Limit: 500, Remaining: 7, Reset: 30 * time.Minute},
	}, {
		name: "ok: a tie goes to the later reset",
		resp: &ratelimitv3.RateLimitResponse{OverallCode: rlsOK, Statuses: []*ratelimitv3.RateLimitResponse_DescriptorStatus{
			rlsStatus(rlsOK, 30, rlsMinute, 0, 45*time.Second),
			rlsStatus(rlsOK, 500, rlsHour, 0, 30*time.Minute),
		}},
		want: RateLimitResult{Allowed: true, Limit: 500, Remaining: 0, Reset: 30 * time.Minute},
	}, {
		name: "over limit: the exceeded limit, retry at its reset",
		resp: &ratelimitv3.RateLimitResponse{OverallCode: rlsOver, Statuses: []*ratelimitv3.RateLimitResponse_DescriptorStatus{
			rlsStatus(rlsOver, 30, rlsMinute, 0, 45*time.Second),
			rlsStatus(rlsOK, 500, rlsHour, 0, 30*time.Minute),
			rlsStatus(rlsOK, 30, rlsMinute, 3, 45*time.Second),
		}},
		want: RateLimitResult{Limit: 30, Remaining: 0, Reset: 45 * time.Second, RetryAfter: 45 * time.Second},
	}, {
		name: "over limit twice: the one that resets last",
		resp: &ratelimitv3.RateLimitResponse{OverallCode: rlsOver, Statuses: []*ratelimitv3.RateLimitResponse_DescriptorStatus{
			rlsStatus(rlsOver, 30, rlsMinute, 0, 45*time.Second),
			rlsStatus(rlsOver, 500, rlsHour, 0, 30*time.Minute),
		}},
		want: RateLimitResult{Limit: 500, Remaining: 0, Reset: 30 * time.Minute, RetryAfter: 30 * time.Minute},
	}, {
		name: "no duration_until_reset: the fixed window's end",
		resp: &ratelimitv3.RateLimitResponse{OverallCode: rlsOver, Statuses: []*ratelimitv3.RateLimitResponse_DescriptorStatus{{
			Code: rlsOver, CurrentLimit: &ratelimitv3.RateLimitResponse_RateLimit{RequestsPerUnit: 30, Unit: rlsMinute},
		}}},
		want: RateLimitResult{Limit: 30, Remaining: 0, Reset: 45 * time.Second, RetryAfter: 45 * time.Second},
	}, {
		name: "ok without any limit: no headers",
		resp: &ratelimitv3.RateLimitResponse{OverallCode: rlsOK, Statuses: []*ratelimitv3.RateLimitResponse_DescriptorStatus{noLimit, noLimit}},
		want: RateLimitResult{Allowed: true},
	}, {
		name: "over limit without a limit named: retry in a second",
		resp: &ratelimitv3.RateLimitResponse{OverallCode: rlsOver},
		want: RateLimitResult{RetryAfter: time.Second},
	}, {
		name:    "unknown overall code is an error",
		resp:    &ratelimitv3.RateLimitResponse{},
		wantErr: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			l := &serviceLimiter{now: func() time.Time { return now }}
			got, err := l.result(tc.resp)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestServiceLimiterFailures(t *testing.T) {
	ds := []Descriptor{{Key: "org", Value: "org_1"}, {Key: "plan", Value: "free"}}
	for _, tc := range []struct {
		name   string
		answer func(*ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error)
		code   codes.Code
	}{{
		// What envoyproxy/ratelimit answers when its Redis is gone.
		name: "service error",
		answer: func(*ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error) {
			return nil, status.Error(codes.Unknown, "redis: connection refused")
		},
		code: codes.Unknown,
	}, {
		name:   "no answer within the timeout",
		answer: func(*ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error) { return nil, nil },
		code:   codes.DeadlineExceeded,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewServiceRateLimiter(RateLimitServiceConfig{Conn: newFakeRLS(t, &fakeRLS{answer: tc.answer}), Timeout: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.Check(t.Context(), ds)
			if status.Code(errors.Unwrap(err)) != tc.code {
				t.Errorf("error %v, want code %s", err, tc.code)
			}
		})
	}
	if _, err := NewServiceRateLimiter(RateLimitServiceConfig{}); err == nil {
		t.Error("NewServiceRateLimiter without a connection: no error")
	}
}

// servicePlanFake is a fake ext_proc that routes and sends identity
// metadata with a plan.
func servicePlanFake(plan string) *fakeExtProc {
	md := planMetadata("org_1", "key_1", 30, 500)
	md.Fields[MetadataNamespace].GetStructValue().Fields["plan"] = structpb.NewStringValue(plan)
	return planFake(md)
}

func TestRateLimitServiceThroughTheGateway(t *testing.T) {
	over := func(*ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error) {
		return &ratelimitv3.RateLimitResponse{OverallCode: rlsOver, Statuses: []*ratelimitv3.RateLimitResponse_DescriptorStatus{
			rlsStatus(rlsOver, 30, rlsMinute, 0, 42*time.Second), rlsStatus(rlsOK, 500, rlsHour, 400, time.Hour),
		}}, nil
	}
	ok := func(*ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error) {
		return &ratelimitv3.RateLimitResponse{OverallCode: rlsOK, Statuses: []*ratelimitv3.RateLimitResponse_DescriptorStatus{
			rlsStatus(rlsOK, 30, rlsMinute, 17, 42*time.Second), rlsStatus(rlsOK, 500, rlsHour, 400, time.Hour),
		}}, nil
	}
	down := func(*ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error) {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	for _, tc := range []struct {
		name       string
		answer     func(*ratelimitv3.RateLimitRequest) (*ratelimitv3.RateLimitResponse, error)
		failClosed bool
		status     int
		code       string // error code of a refused request
		headers    map[string]string
		result     string // aegis_rate_limit_checks_total result label
	}{{
		name: "ok", answer: ok, status: http.StatusOK,
		headers: map[string]string{"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "17", "X-RateLimit-Reset": "42", "Retry-After": ""},
		result:  "ok",
	}, {
		name: "over limit", answer: over, status: http.StatusTooManyRequests, code: codeRateLimited,
		headers: map[string]string{"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "42", "Retry-After": "42"},
		result:  "over_limit",
	}, {
		name: "service down, fail open", answer: down, status: http.StatusOK,
		headers: map[string]string{"X-RateLimit-Limit": "", "Retry-After": ""},
		result:  "error",
	}, {
		name: "service down, fail closed", answer: down, failClosed: true, status: http.StatusServiceUnavailable, code: codeUnavailable,
		headers: map[string]string{"X-RateLimit-Limit": "", "Retry-After": ""},
		result:  "error",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rls := &fakeRLS{answer: tc.answer}
			l, err := NewServiceRateLimiter(RateLimitServiceConfig{Conn: newFakeRLS(t, rls)})
			if err != nil {
				t.Fatal(err)
			}
			up := newRecordingUpstream(t, `{}`)
			h := newHarness(t, servicePlanFake("free"), up.srv.URL, func(c *Config) {
				c.RateLimiter = l
				c.RateLimitFailClosed = tc.failClosed
			})
			resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s %q, want %q", k, got, v)
				}
			}
			wantUp := 1
			if tc.code != "" {
				wantUp = 0
				if got := decodeError(t, body).Code; got != tc.code {
					t.Errorf("code %q, want %q", got, tc.code)
				}
			}
			if up.count() != wantUp {
				t.Errorf("upstream got %d requests, want %d", up.count(), wantUp)
			}
			if n := len(rls.requests()); n != 1 {
				t.Errorf("%d ShouldRateLimit calls, want 1", n)
			}
			if m := scrapeMetrics(t, h); !strings.Contains(m, `aegis_rate_limit_checks_total{result="`+tc.result+`"} 1`) {
				t.Errorf("metrics lack result %q:\n%s", tc.result, m)
			}
		})
	}
}

// TestShippedRateLimitConfigFollowsThePlans: envoy/ratelimit/config.yaml
// carries, for every plan of policy/data/plans.yaml, the plan's per-minute
// and per-hour limits for the org and for the key, under the descriptors
// the gateway sends; a plan name it does not know gets the free plan's.
func TestShippedRateLimitConfigFollowsThePlans(t *testing.T) {
	type rlDescriptor struct {
		Key       string `yaml:"key"`
		Value     string `yaml:"value"`
		RateLimit *struct {
			Unit            string `yaml:"unit"`
			RequestsPerUnit int    `yaml:"requests_per_unit"`
		} `yaml:"rate_limit"`
		Descriptors []rlDescriptor `yaml:"descriptors"`
	}
	var rl struct {
		Domain      string         `yaml:"domain"`
		Descriptors []rlDescriptor `yaml:"descriptors"`
	}
	var plans struct {
		Plans map[string]struct {
			RateLimits struct {
				PerMinute int `yaml:"per_minute"`
				PerHour   int `yaml:"per_hour"`
			} `yaml:"rate_limits"`
		} `yaml:"plans"`
	}
	for path, v := range map[string]any{
		filepath.Join("..", "envoy", "ratelimit", "config.yaml"): &rl,
		filepath.Join("..", "policy", "data", "plans.yaml"):      &plans,
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if rl.Domain != RateLimitServiceDomain {
		t.Errorf("domain %q, want %q", rl.Domain, RateLimitServiceDomain)
	}
	if len(plans.Plans) == 0 {
		t.Fatal("plans.yaml has no plans")
	}
	// lookup follows entries the way the service does: key and value,
	// else the key alone; the limit is the last entry's.
	lookup := func(entries ...string) (string, int) {
		level := rl.Descriptors
		var found *rlDescriptor
		for i := 0; i+1 < len(entries); i += 2 {
			found = nil
			for j := range level {
				if level[j].Key == entries[i] && level[j].Value == entries[i+1] {
					found = &level[j]
				}
			}
			for j := range level {
				if found == nil && level[j].Key == entries[i] && level[j].Value == "" {
					found = &level[j]
				}
			}
			if found == nil {
				return "", 0
			}
			level = found.Descriptors
		}
		if found.RateLimit == nil {
			return "", 0
		}
		return found.RateLimit.Unit, found.RateLimit.RequestsPerUnit
	}
	check := func(plan, asPlan string) {
		want := plans.Plans[asPlan].RateLimits
		for _, who := range []string{"org", "key"} {
			for _, c := range []struct {
				entries []string
				unit    string
				n       int
			}{
				{[]string{who, "x", "plan", plan}, "minute", want.PerMinute},
				{[]string{who, "x", "plan", plan, "window", "hour"}, "hour", want.PerHour},
			} {
				unit, n := lookup(c.entries...)
				if unit != c.unit || n != c.n {
					t.Errorf("%s: %d per %s, want %d per %s (plan %s)", strings.Join(c.entries, ","), n, unit, c.n, c.unit, asPlan)
				}
			}
		}
	}
	for name, p := range plans.Plans {
		if p.RateLimits.PerMinute <= 0 || p.RateLimits.PerHour <= 0 {
			t.Errorf("plan %s: unlimited (-1) plans need `unlimited: true` entries; update this test and config.yaml", name)
			continue
		}
		check(name, name)
	}
	check("custom-"+strconv.Itoa(len(plans.Plans)), "free")
}
