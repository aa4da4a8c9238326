package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// passThroughProcess answers every message with a plain CONTINUE (routing
// to anthropic on the request body), recording nothing.
func passThroughProcess(s extprocv3.ExternalProcessor_ProcessServer) error {
	route := routeTo("anthropic", nil)
	for {
		req, err := s.Recv()
		if err != nil {
			return nil //nolint:nilerr // client done
		}
		var resp *extprocv3.ProcessingResponse
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp = continueRequestHeaders()
			if req.GetRequestHeaders().GetEndOfStream() {
				resp = routeHeaders("anthropic")
			}
		case *extprocv3.ProcessingRequest_RequestBody:
			resp = route
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp = continueResponseHeaders(nil)
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp = continueResponseBody(nil)
		}
		if err := s.Send(resp); err != nil {
			return nil //nolint:nilerr // client gone
		}
	}
}

// BenchmarkProxy64KB sends a 64 KB POST through the gateway (with a
// pass-through ext_proc over bufconn) and through a bare
// httputil.ReverseProxy to the same upstream, alternating in one run, and
// reports both latencies and their ratio (gateway/reverseproxy).
func BenchmarkProxy64KB(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 64<<10)
	answer := []byte(`{"id":"msg_1","content":[{"type":"text","text":"ok"}]}`)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	b.Cleanup(upstream.Close)
	upURL, _ := url.Parse(upstream.URL)

	h := newHarness(b, &fakeExtProc{process: passThroughProcess}, upstream.URL, nil)
	bare := httptest.NewServer(httputil.NewSingleHostReverseProxy(upURL))
	b.Cleanup(bare.Close)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)
	post := func(base string) time.Duration {
		start := time.Now()
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, base+"/v1/messages", bytes.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d from %s", resp.StatusCode, base)
		}
		return time.Since(start)
	}
	// Warm both paths (connections, gRPC stream setup).
	post(h.front.URL)
	post(bare.URL)

	var gw, rp time.Duration
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for range b.N {
		gw += post(h.front.URL)
		rp += post(bare.URL)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(gw.Nanoseconds())/n, "gateway-ns/req")
	b.ReportMetric(float64(rp.Nanoseconds())/n, "reverseproxy-ns/req")
	b.ReportMetric(float64(gw)/float64(rp), "gateway/reverseproxy")
}
