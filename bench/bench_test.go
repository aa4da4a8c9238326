// Package bench measures the gateway against the targets of DESIGN §12:
// added latency for 64 KB prompts with three secrets, throughput at
// saturation against a bare httputil.ReverseProxy, and streaming
// rehydration. Each benchmark measures both sides in the same run and
// reports the ratio. See README.md for the load-tool run (run.sh).
package bench

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/takumo/aegis/bench/benchkit"
)

type rig struct {
	provider *benchkit.Provider
	upstream *httptest.Server
	gw       *benchkit.Gateway
	bare     *httptest.Server
}

func newRig(tb testing.TB) *rig {
	tb.Helper()
	p := benchkit.NewProvider()
	up := httptest.NewServer(p)
	tb.Cleanup(up.Close)
	gw, err := benchkit.StartGateway("", up.URL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := gw.Close(); err != nil {
			tb.Errorf("gateway close: %v", err)
		}
	})
	u, _ := url.Parse(up.URL)
	bare := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	tb.Cleanup(bare.Close)
	return &rig{provider: p, upstream: up, gw: gw, bare: bare}
}

// TestThroughTheGateway is the bench's own correctness check: the provider
// sees three tokens and no planted value, the client gets every value back,
// with a fresh session and with a known one.
func TestThroughTheGateway(t *testing.T) {
	r := newRig(t)
	c := benchkit.NewClient(1)
	t.Cleanup(c.CloseIdleConnections)
	prompt := benchkit.Prompt(64<<10, false)
	for _, tc := range []struct {
		name, base, via, session string
	}{
		{"direct", r.upstream.URL, "direct", ""},
		{"bare proxy", r.bare.URL, "direct", ""},
		{"gateway, no session", r.gw.URL, "gateway", ""},
		{"gateway, new session", r.gw.URL, "gateway", "s-1"},
		{"gateway, same session", r.gw.URL, "gateway", "s-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.provider.Tokens.Load()
			res, err := benchkit.Post(t.Context(), c, tc.base, prompt, tc.via, tc.session, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := benchkit.CheckAnswer(res); err != nil {
				t.Fatal(err)
			}
			if got := r.provider.Tokens.Load() - before; tc.via == "gateway" && got != 3 {
				t.Errorf("provider saw %d tokens, want 3", got)
			}
		})
	}
	if n := r.provider.Leaks.Load(); n != 0 {
		t.Fatalf("%d requests reached the provider with a planted value", n)
	}
}

// TestStreamThroughTheGateway checks the streamed answer comes back with
// every value in place.
func TestStreamThroughTheGateway(t *testing.T) {
	r := newRig(t)
	c := benchkit.NewClient(1)
	t.Cleanup(c.CloseIdleConnections)
	res, err := benchkit.Post(t.Context(), c, r.gw.URL, benchkit.Prompt(64<<10, true), "gateway", "s-stream",
		http.Header{benchkit.HeaderStream: {"200000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := benchkit.CheckAnswer(res); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(res.Body, []byte("__TAKUMO_v1_")) {
		t.Fatal("a token reached the client")
	}
	if n := r.provider.Leaks.Load(); n != 0 {
		t.Fatalf("%d requests reached the provider with a planted value", n)
	}
}

func post(b *testing.B, c *http.Client, base string, body []byte, via, session string) time.Duration {
	res, err := benchkit.Post(b.Context(), c, base, body, via, session, nil)
	if err != nil {
		b.Fatal(err)
	}
	if res.Status != http.StatusOK {
		b.Fatalf("status %d from %s: %.300s", res.Status, via, res.Body)
	}
	return res.Elapsed
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// BenchmarkAddedLatency64KB (target 1): one request at a time, alternating
// direct to the fake provider, through the gateway in a known session and
// through the gateway as the first request of a new session. Reports p50
// and p99 of each and the added p50/p99.
func BenchmarkAddedLatency64KB(b *testing.B) {
	r := newRig(b)
	c := benchkit.NewClient(1)
	b.Cleanup(c.CloseIdleConnections)
	prompt := benchkit.Prompt(64<<10, false)
	for i := range 20 { // warm connections, pools and the session
		post(b, c, r.upstream.URL, prompt, "direct", "")
		post(b, c, r.gw.URL, prompt, "gateway", "warm")
		post(b, c, r.gw.URL, prompt, "gateway", fmt.Sprintf("warm-%d", i))
	}
	var direct, same, first []time.Duration
	b.SetBytes(int64(len(prompt)))
	b.ResetTimer()
	for i := range b.N {
		direct = append(direct, post(b, c, r.upstream.URL, prompt, "direct", ""))
		same = append(same, post(b, c, r.gw.URL, prompt, "gateway", "warm"))
		first = append(first, post(b, c, r.gw.URL, prompt, "gateway", fmt.Sprintf("new-%d", i)))
	}
	b.StopTimer()
	d50, d99 := benchkit.Percentile(direct, 50), benchkit.Percentile(direct, 99)
	g50, g99 := benchkit.Percentile(same, 50), benchkit.Percentile(same, 99)
	f50 := benchkit.Percentile(first, 50)
	b.ReportMetric(ms(d50), "direct-p50-ms")
	b.ReportMetric(ms(d99), "direct-p99-ms")
	b.ReportMetric(ms(g50), "gateway-p50-ms")
	b.ReportMetric(ms(g99), "gateway-p99-ms")
	b.ReportMetric(ms(g50-d50), "added-p50-ms")
	b.ReportMetric(ms(g99-d99), "added-p99-ms")
	b.ReportMetric(ms(f50), "first-of-session-p50-ms")
	b.ReportMetric(float64(f50)/float64(g50), "first/later")
	if n := r.provider.Leaks.Load(); n != 0 {
		b.Fatalf("%d requests reached the provider with a planted value", n)
	}
}

// BenchmarkThroughput64KB (target 2): 16 connections at saturation, b.N
// requests through a bare httputil.ReverseProxy and b.N through the
// gateway, to the same fake provider. Reports both rates and the ratio.
func BenchmarkThroughput64KB(b *testing.B) {
	const conns = 16
	r := newRig(b)
	prompt := benchkit.Prompt(64<<10, false)
	run := func(base, via string, n int) (float64, time.Duration) {
		c := benchkit.NewClient(conns)
		defer c.CloseIdleConnections()
		work := make(chan struct{}, n)
		for range n {
			work <- struct{}{}
		}
		close(work)
		var wg sync.WaitGroup
		start, cpu := time.Now(), benchkit.CPUTime()
		for range conns {
			wg.Go(func() {
				for range work {
					post(b, c, base, prompt, via, "load")
				}
			})
		}
		wg.Wait()
		return float64(n) / time.Since(start).Seconds(), (benchkit.CPUTime() - cpu) / time.Duration(n)
	}
	run(r.bare.URL, "direct", 4*conns) // warm both
	run(r.gw.URL, "gateway", 4*conns)
	b.SetBytes(int64(len(prompt)))
	b.ResetTimer()
	bare, bareCPU := run(r.bare.URL, "direct", b.N)
	gw, gwCPU := run(r.gw.URL, "gateway", b.N)
	b.StopTimer()
	b.ReportMetric(bare, "reverseproxy-req/s")
	b.ReportMetric(gw, "gateway-req/s")
	b.ReportMetric(gw/bare, "gateway/reverseproxy")
	// CPU per request of the whole process (load generator, proxy or
	// gateway, provider): the rate a dedicated machine would reach is
	// inversely proportional to it, whatever else shares this one.
	b.ReportMetric(float64(bareCPU.Microseconds()), "reverseproxy-cpu-us/req")
	b.ReportMetric(float64(gwCPU.Microseconds()), "gateway-cpu-us/req")
	b.ReportMetric(float64(bareCPU)/float64(gwCPU), "cpu-ratio")
	if n := r.provider.Leaks.Load(); n != 0 {
		b.Fatalf("%d requests reached the provider with a planted value", n)
	}
}

// BenchmarkStreamRehydration (target 3): an Anthropic event stream with a
// token in every text delta, 16 MB per op, through the gateway and
// directly from the fake provider. Reports MB/s of both and MB per
// CPU-second of this whole process on the gateway side (client and fake
// provider included, so the gateway's own figure is higher).
func BenchmarkStreamRehydration(b *testing.B) {
	const size = 16 << 20
	r := newRig(b)
	c := benchkit.NewClient(1)
	b.Cleanup(c.CloseIdleConnections)
	prompt := benchkit.Prompt(64<<10, true)
	hdr := http.Header{benchkit.HeaderStream: {fmt.Sprint(size)}}
	pull := func(base, via string) int {
		res, err := benchkit.Post(b.Context(), c, base, prompt, via, "stream", hdr)
		if err != nil {
			b.Fatal(err)
		}
		if err := benchkit.CheckAnswer(res); err != nil {
			b.Fatal(err)
		}
		return len(res.Body)
	}
	pull(r.gw.URL, "gateway") // the session learns the tokens
	var gwTime, directTime, gwCPU time.Duration
	var n int
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		pull(r.upstream.URL, "direct")
		directTime += time.Since(start)
		start, cpu := time.Now(), benchkit.CPUTime()
		n += pull(r.gw.URL, "gateway")
		gwTime += time.Since(start)
		gwCPU += benchkit.CPUTime() - cpu
	}
	b.StopTimer()
	mb := float64(n) / 1e6
	b.ReportMetric(mb/directTime.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/gwTime.Seconds(), "gateway-MB/s")
	b.ReportMetric(mb/gwCPU.Seconds(), "gateway-MB/cpu-s")
}
