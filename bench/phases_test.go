package bench

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/takumo/aegis/bench/benchkit"
)

// spanTimes collects the wall time of every ended span by name.
type spanTimes struct {
	mu sync.Mutex
	d  map[string][]time.Duration
}

func (s *spanTimes) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (s *spanTimes) OnEnd(sp sdktrace.ReadOnlySpan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d[sp.Name()] = append(s.d[sp.Name()], sp.EndTime().Sub(sp.StartTime()))
}
func (s *spanTimes) Shutdown(context.Context) error   { return nil }
func (s *spanTimes) ForceFlush(context.Context) error { return nil }

func (s *spanTimes) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = map[string][]time.Duration{}
}

// BenchmarkPhases64KB splits the wall time of one 64 KB request at a time
// through the in-process gateway by span: the gateway's ext_proc round
// trips (ext_proc.*), the server's work inside them (aegis.*), the
// upstream exchange, and the whole request. It reports each span's p50 in
// microseconds. The round trip minus the server's span is what the
// Envoy-faithful transport costs per message (bench/README.md).
func BenchmarkPhases64KB(b *testing.B) {
	st := &spanTimes{d: map[string][]time.Duration{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(st))
	prov := httptest.NewServer(benchkit.NewProvider())
	b.Cleanup(prov.Close)
	gw, err := benchkit.StartGatewayWith("", prov.URL, benchkit.GatewayOptions{TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Close() })
	c := benchkit.NewClient(1)
	body := benchkit.Prompt(64<<10, false)
	for range 50 { // warm up connections, pools and the policy memo
		post(b, c, gw.URL, body, "gateway", "phases")
	}
	st.reset()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for range b.N {
		post(b, c, gw.URL, body, "gateway", "phases")
	}
	b.StopTimer()
	st.mu.Lock()
	defer st.mu.Unlock()
	for name, d := range st.d {
		if !strings.HasPrefix(name, "ext_proc.") && !strings.HasPrefix(name, "aegis.") &&
			!strings.HasPrefix(name, "upstream.") && name != "gateway.request" {
			continue
		}
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds()), name+"-p50-us")
	}
}
