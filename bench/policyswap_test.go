package bench

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/takumo/aegis/bench/benchkit"
	"github.com/takumo/aegis/policy"
)

// The two policies the bundle server alternates between. Each maps the
// bench organisation to a plan of its own name and defines only that plan
// (beside the embedded ones), so the decision's x-aegis-plan header names
// the policy that decided. Rego of one with data of the other, or a store
// caught half-written, has no plan for the organisation and denies
// (403): a half-loaded policy cannot pass for either.
const (
	planA = "swap-a"
	planB = "swap-b"
)

// bundleServer is an OPA bundle server whose bundle changes on Next: a
// complete bundle (Rego, data, manifest with a unique revision) under a
// new ETag. It answers If-None-Match with 304 when nothing changed.
type bundleServer struct {
	mods map[string]string
	data map[string]any

	mu   sync.Mutex
	n    int
	body []byte
	etag string
	revs map[string]string // every revision served → its plan
	gets int
	n304 int
}

func newBundleServer(tb testing.TB) *bundleServer {
	tb.Helper()
	emb, err := policy.Embedded()
	if err != nil {
		tb.Fatal(err)
	}
	s := &bundleServer{mods: emb.Modules, data: emb.Data, revs: map[string]string{}}
	if err := s.Next(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// Next publishes the next bundle (plans alternate A, B, A, …) and returns
// an error if it could not be built.
func (s *bundleServer) Next() error {
	s.mu.Lock()
	n := s.n
	s.n++
	s.mu.Unlock()
	plan := planA
	if n%2 == 1 {
		plan = planB
	}
	rev := fmt.Sprintf("%s-%05d", plan, n)
	body, err := s.build(plan, rev)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag = body, fmt.Sprintf("%q", rev)
	s.revs[rev] = plan
	return nil
}

// build makes a .tar.gz bundle: the embedded Rego, the embedded data with
// the plan added and the bench organisation on it, and a manifest.
func (s *bundleServer) build(plan, rev string) ([]byte, error) {
	data := maps.Clone(s.data)
	plans := maps.Clone(s.data["plans"].(map[string]any))
	plans[plan] = map[string]any{
		"requests_per_month": -1, "credits_per_month": -1, "credits_per_seat": false, "hard_cap": false,
		"rate_limits": map[string]any{"per_minute": -1, "per_hour": -1}, "models": []any{"*"},
	}
	data["plans"] = plans
	data["orgs"] = map[string]any{benchkit.Org: map[string]any{"plan": plan}}
	files := map[string][]byte{}
	for name, src := range s.mods {
		files["/"+name] = []byte(src)
	}
	var err error
	if files["/data.json"], err = json.Marshal(data); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if files["/.manifest"], err = json.Marshal(map[string]any{"revision": rev}); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		if _, err := tw.Write(b); err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	body, etag := s.body, s.etag
	s.gets++
	notModified := r.Header.Get("If-None-Match") == etag
	if notModified {
		s.n304++
	}
	s.mu.Unlock()
	w.Header().Set("ETag", etag)
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(body)
}

// planOf returns the plan of a revision the server published.
func (s *bundleServer) planOf(rev string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.revs[rev]
	return p, ok
}

// revSink records the revision of every decision by request id.
type revSink struct {
	byRequest sync.Map // request id → revision
	errors    atomic.Int64
}

func (s *revSink) Log(_ context.Context, r policy.DecisionRecord) error {
	if r.Error != "" {
		s.errors.Add(1)
	}
	s.byRequest.Store(r.RequestID, r.Revision)
	return nil
}

// swapRig is a gateway whose policy comes from a bundle server through
// OPA's downloader (policy.BundleLoader).
type swapRig struct {
	bundles *bundleServer
	loader  *policy.BundleLoader
	engine  *policy.Engine
	sink    *revSink
	gw      *benchkit.Gateway
}

func newSwapRig(tb testing.TB) *swapRig {
	tb.Helper()
	ctx := tb.Context()
	bs := newBundleServer(tb)
	srv := httptest.NewServer(bs)
	tb.Cleanup(srv.Close)
	sink := &revSink{}
	eng, err := policy.New(ctx, policy.Options{Sink: sink, Logger: discardLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	loader, err := eng.NewBundleLoader(policy.BundleOptions{Source: srv.URL + "/bundle.tar.gz"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := loader.Poll(ctx); err != nil {
		tb.Fatalf("first bundle: %v", err)
	}
	up := httptest.NewServer(benchkit.NewProvider())
	tb.Cleanup(up.Close)
	gw, err := benchkit.StartGatewayWith("", up.URL, benchkit.GatewayOptions{Policy: eng})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := gw.Close(); err != nil {
			tb.Errorf("gateway close: %v", err)
		}
	})
	return &swapRig{bundles: bs, loader: loader, engine: eng, sink: sink, gw: gw}
}

// swap publishes the next bundle and has the loader fetch and load it.
func (r *swapRig) swap(ctx context.Context) error {
	if err := r.bundles.Next(); err != nil {
		return err
	}
	return r.loader.Poll(ctx)
}

// check reports an error unless res is a complete, correct answer decided
// wholly by one published policy: 200 with every planted value back, an
// x-aegis-plan header naming one of the two plans, and a decision-log
// record for its request id whose revision the server published for that
// same plan.
func (r *swapRig) check(res benchkit.Result, h http.Header) error {
	if err := benchkit.CheckAnswer(res); err != nil {
		return err
	}
	plan := h.Get("X-Aegis-Plan")
	if plan != planA && plan != planB {
		return fmt.Errorf("x-aegis-plan %q is neither policy's plan", plan)
	}
	id := h.Get("X-Aegis-Request-Id")
	v, ok := r.sink.byRequest.Load(id)
	if !ok {
		return fmt.Errorf("no decision logged for request %q", id)
	}
	rev, _ := v.(string)
	want, ok := r.bundles.planOf(rev)
	if !ok {
		return fmt.Errorf("decision from revision %q, which the bundle server never published", rev)
	}
	if want != plan {
		return fmt.Errorf("decision from revision %q (plan %s) answered with plan %s", rev, want, plan)
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// postSwap sends body through the gateway as benchkit.Post does and also
// returns the response headers.
func postSwap(ctx context.Context, c *http.Client, base string, body []byte) (benchkit.Result, http.Header, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return benchkit.Result{}, nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("X-Api-Key", benchkit.TakumoKey)
	req.Header.Set(benchkit.HeaderPath, "gateway")
	resp, err := c.Do(req)
	if err != nil {
		return benchkit.Result{}, nil, fmt.Errorf("post: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return benchkit.Result{}, nil, fmt.Errorf("read answer: %w", err)
	}
	return benchkit.Result{Status: resp.StatusCode, Body: out, Elapsed: time.Since(start)}, resp.Header, nil
}

// swapPrompt is the prompt of the swap measurement: 1 KB with the three
// planted values. 64 KB prompts cost about 1.5 ms of gateway CPU each
// (README), so 1,000 of them a second would need more than the box's two
// cores.
func swapPrompt() []byte { return benchkit.Prompt(1024, false) }

// TestPolicySwapRig checks the rig of BenchmarkPolicySwap: each swap
// through the bundle server and OPA's downloader changes the deciding
// policy, and check tells the two apart and refuses what neither policy
// would answer.
func TestPolicySwapRig(t *testing.T) {
	r := newSwapRig(t)
	ctx := t.Context()
	c := benchkit.NewClient(1)
	body := swapPrompt()
	for i, want := range []string{planA, planB, planA} {
		if i > 0 {
			before := r.engine.Generation()
			if err := r.swap(ctx); err != nil {
				t.Fatalf("swap %d: %v", i, err)
			}
			if r.engine.Generation() == before {
				t.Fatalf("swap %d: the engine did not load the new bundle", i)
			}
		}
		res, h, err := postSwap(ctx, c, r.gw.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.check(res, h); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := h.Get("X-Aegis-Plan"); got != want {
			t.Errorf("request %d: plan %q, want %q", i, got, want)
		}
	}
	// A poll with no new bundle is a 304 and loads nothing.
	before := r.engine.Generation()
	if err := r.loader.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if r.engine.Generation() != before {
		t.Error("an unchanged bundle was loaded again")
	}

	// check refuses answers no complete published policy gives.
	res, h, err := postSwap(ctx, c, r.gw.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		edit func(http.Header)
	}{
		{"plan of neither policy", func(h http.Header) { h.Set("X-Aegis-Plan", "(none)") }},
		{"plan of the other policy", func(h http.Header) { h.Set("X-Aegis-Plan", planB) }},
		{"no decision logged", func(h http.Header) { h.Set("X-Aegis-Request-Id", "req_0000000000000000") }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			hh := h.Clone()
			tc.edit(hh)
			if err := r.check(res, hh); err == nil {
				t.Error("check accepted it")
			}
		})
	}
	t.Run("not published", func(t *testing.T) {
		r.sink.byRequest.Store("req_ffffffffffffffff", planA+"-99999")
		hh := h.Clone()
		hh.Set("X-Aegis-Request-Id", "req_ffffffffffffffff")
		if err := r.check(res, hh); err == nil {
			t.Error("check accepted a revision never published")
		}
	})
	t.Run("denied", func(t *testing.T) {
		if err := r.check(benchkit.Result{Status: http.StatusForbidden}, h); err == nil {
			t.Error("check accepted a 403")
		}
	})
}

// BenchmarkPolicySwap is issue 4's "policy swap under load": requests at
// a paced 1,000 a second through the gateway for 5 s while the bundle
// server publishes a new bundle every 100 ms and the loader fetches and
// loads it (OPA's downloader: If-None-Match, tar.gz, manifest revision;
// then Engine.Load). Every answer must be a 200 with the planted values
// back, decided wholly by one published policy (see swapRig.check).
//
// The loader's own polling counts in whole seconds (at least 1 s), so the
// benchmark triggers BundleLoader.Poll itself on a 100 ms ticker: the same
// download and load path at ten times the fastest polling an operator can
// configure.
func BenchmarkPolicySwap(b *testing.B) {
	const (
		rate     = 1000
		duration = 5 * time.Second
		every    = 100 * time.Millisecond
	)
	r := newSwapRig(b)
	body := swapPrompt()
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{
		{"swap_every_100ms", every},
		{"no_swaps", 0}, // the baseline: the same load on a fixed policy
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				reportPolicySwap(b, runPolicySwap(b.Context(), r, body, rate, duration, tc.every), tc.every > 0)
			}
		})
	}
}

func reportPolicySwap(b *testing.B, res swapResult, swapping bool) {
	b.Helper()
	for _, e := range res.firstErrs {
		b.Error(e)
	}
	if res.failed > 0 || res.bad > 0 {
		b.Errorf("%d failed requests and %d answers from no complete policy, of %d", res.failed, res.bad, res.sent)
	}
	if res.swapErrs > 0 {
		b.Errorf("%d swaps failed", res.swapErrs)
	}
	if swapping && res.swaps == 0 {
		b.Error("no swap happened")
	}
	b.ReportMetric(res.rps, "req/s")
	b.ReportMetric(float64(res.failed), "failed")
	b.ReportMetric(float64(res.bad), "bad_decisions")
	b.ReportMetric(float64(res.swaps), "swaps")
	b.ReportMetric(float64(res.swapMean.Microseconds())/1000, "swap_ms")
	b.ReportMetric(float64(res.swapMax.Microseconds())/1000, "swap_max_ms")
	b.ReportMetric(float64(res.p50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(res.p99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(res.late), "late")
	b.ReportMetric(float64(res.revisions), "revisions_seen")
}

type swapResult struct {
	sent, failed, bad int
	late              int // requests sent more than 10 ms after their slot
	rps               float64
	swaps, swapErrs   int
	swapMean, swapMax time.Duration
	p50, p99          time.Duration
	revisions         int // distinct revisions that decided answered requests
	firstErrs         []error
}

// runPolicySwap sends rate requests a second for duration, each in its
// own goroutine at its own slot (an open loop: a slow answer does not
// delay the next request), while swapping the policy every interval (never
// when every is 0).
func runPolicySwap(ctx context.Context, r *swapRig, body []byte, rate int, duration, every time.Duration) swapResult {
	c := benchkit.NewClient(256)
	defer c.CloseIdleConnections()
	n := int(duration.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)

	var out swapResult
	stopSwaps := make(chan struct{})
	swapsDone := make(chan struct{})
	go func() {
		defer close(swapsDone)
		if every <= 0 {
			<-stopSwaps
			return
		}
		t := time.NewTicker(every)
		defer t.Stop()
		var total time.Duration
		for {
			select {
			case <-stopSwaps:
				if out.swaps > 0 {
					out.swapMean = total / time.Duration(out.swaps)
				}
				return
			case <-t.C:
			}
			start := time.Now()
			before := r.engine.Generation()
			err := r.swap(ctx)
			d := time.Since(start)
			if err != nil || r.engine.Generation() == before {
				out.swapErrs++
				continue
			}
			out.swaps++
			total += d
			out.swapMax = max(out.swapMax, d)
		}
	}()

	var (
		mu    sync.Mutex
		lats  = make([]time.Duration, 0, n)
		revs  = map[string]bool{}
		wg    sync.WaitGroup
		first = time.Now()
		last  time.Time
	)
	for i := range n {
		due := first.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if d < -10*time.Millisecond {
			out.late++
		}
		wg.Go(func() {
			res, h, err := postSwap(ctx, c, r.gw.URL, body)
			if err == nil && res.Status == http.StatusOK {
				err = r.check(res, h)
			}
			mu.Lock()
			defer mu.Unlock()
			last = time.Now()
			switch {
			case err != nil && (res.Status != http.StatusOK):
				out.failed++
			case err != nil:
				out.bad++
			default:
				lats = append(lats, res.Elapsed)
				if v, ok := r.sink.byRequest.Load(h.Get("X-Aegis-Request-Id")); ok {
					rev, _ := v.(string)
					revs[rev] = true
				}
			}
			if err != nil && len(out.firstErrs) < 5 {
				out.firstErrs = append(out.firstErrs, err)
			}
		})
	}
	wg.Wait()
	close(stopSwaps)
	<-swapsDone
	out.sent = n
	if el := last.Sub(first); el > 0 {
		out.rps = float64(n-out.failed) / el.Seconds()
	}
	out.p50 = benchkit.Percentile(lats, 50)
	out.p99 = benchkit.Percentile(lats, 99)
	out.revisions = len(revs)
	return out
}
