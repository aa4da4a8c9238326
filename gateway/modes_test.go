package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

func sseUpstream(t *testing.T, events ...string) *recordingUpstream {
	up := newRecordingUpstream(t, "")
	up.handler = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			_, _ = io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	}
	return up
}

func countBodies(msgs []*extprocv3.ProcessingRequest) (req, resp int) {
	for _, m := range msgs {
		if m.GetRequestBody() != nil {
			req++
		}
		if m.GetResponseBody() != nil {
			resp++
		}
	}
	return req, resp
}

func TestMessageTimeoutMidStreamBreaksTheClientStream(t *testing.T) {
	up := sseUpstream(t, "data: a\n\n")
	filter := DefaultFilter()
	filter.MaxMessageTimeout = durationpb.New(time.Hour)
	fake := &fakeExtProc{
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return routeTo("anthropic", nil), nil
		},
		onResponseHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) { return streamingOverride(), nil },
		onResponseBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			// Shorten the timer for this state to 1 ms, then never answer.
			return &extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(time.Millisecond)}, nil
		},
	}
	h := newHarness(t, fake, up.srv.URL, func(c *Config) { c.Filter = filter })
	if got, err := brokenStreamRead(t, h); err == nil {
		t.Fatalf("clean end after %q", got)
	}
	if m := scrapeMetrics(t, h); !strings.Contains(m, `aegis_extproc_failures_total{kind="message_timeout"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}
}

func TestOverrideMessageTimeoutIgnoredWithoutMax(t *testing.T) {
	// Without max_message_timeout the override is ignored (and is not an
	// answer): the real reply that follows is used.
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{}
	inner := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		return routeTo("anthropic", nil), nil
	}}
	fake.process = func(s extprocv3.ExternalProcessor_ProcessServer) error {
		return inner.Process(&overrideFirst{ExternalProcessor_ProcessServer: s})
	}
	h := newHarness(t, fake, up.srv.URL, nil)
	if resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

// overrideFirst sends an override_message_timeout before every reply.
type overrideFirst struct {
	extprocv3.ExternalProcessor_ProcessServer
}

func (o *overrideFirst) Send(r *extprocv3.ProcessingResponse) error {
	if err := o.ExternalProcessor_ProcessServer.Send(&extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(time.Millisecond)}); err != nil {
		return err
	}
	return o.ExternalProcessor_ProcessServer.Send(r)
}

func TestOKCloseMidStreamFailsOpen(t *testing.T) {
	up := sseUpstream(t, "data: a\n\n")
	fake := &fakeExtProc{
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return routeTo("anthropic", nil), nil
		},
		onResponseHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) { return streamingOverride(), nil },
		onResponseBody:    func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) { return nil, errClose },
	}
	h := newHarness(t, fake, up.srv.URL, nil)
	got, err := brokenStreamRead(t, h)
	if err != nil || got != "data: a\n\n" {
		t.Fatalf("got %q, %v; want the unprocessed stream", got, err)
	}
	if !strings.Contains(h.logs.String(), "fail-open") {
		t.Error("fail-open not logged")
	}
}

func TestModeOverrideRules(t *testing.T) {
	const upstreamBody = `{"a":"b"}`
	toStreamed := func() *extprocfilterv3.ProcessingMode {
		return &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED, ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
	}
	for _, tc := range []struct {
		name          string
		filter        func(*extprocfilterv3.ExternalProcessor)
		reqHeaders    func() *extprocv3.ProcessingResponse
		reqBody       func() *extprocv3.ProcessingResponse
		respHeaders   func() *extprocv3.ProcessingResponse
		wantReqBodies int
		wantUpstream  string
		wantClientCL  int64 // content-length the client sees (-1: none)
	}{
		{
			name: "override to STREAMED keeps content-length unless removed",
			respHeaders: func() *extprocv3.ProcessingResponse {
				r := continueResponseHeaders(nil)
				r.ModeOverride = toStreamed()
				return r
			},
			wantReqBodies: 1, wantUpstream: `{"k":1}`, wantClientCL: int64(len(upstreamBody)),
		},
		{
			name:          "override to STREAMED with removal drops content-length",
			respHeaders:   streamingOverride,
			wantReqBodies: 1, wantUpstream: `{"k":1}`, wantClientCL: -1,
		},
		{
			name: "override ignored without allow_mode_override",
			filter: func(f *extprocfilterv3.ExternalProcessor) {
				f.AllowModeOverride = false
			},
			// The removal still applies and the body stays BUFFERED; Go's
			// server then sets content-length for a body written at once.
			respHeaders:   streamingOverride,
			wantReqBodies: 1, wantUpstream: `{"k":1}`, wantClientCL: int64(len(upstreamBody)),
		},
		{
			name: "override in a body reply is ignored",
			reqBody: func() *extprocv3.ProcessingResponse {
				r := routeTo("anthropic", nil)
				r.ModeOverride = toStreamed()
				return r
			},
			wantReqBodies: 1, wantUpstream: `{"k":1}`, wantClientCL: int64(len(upstreamBody)),
		},
		{
			name: "override outside allowed_override_modes is ignored",
			filter: func(f *extprocfilterv3.ExternalProcessor) {
				f.AllowedOverrideModes = []*extprocfilterv3.ProcessingMode{{ResponseBodyMode: extprocfilterv3.ProcessingMode_NONE}}
			},
			respHeaders: func() *extprocv3.ProcessingResponse {
				r := continueResponseHeaders(nil)
				r.ModeOverride = toStreamed()
				return r
			},
			wantReqBodies: 1, wantUpstream: `{"k":1}`, wantClientCL: int64(len(upstreamBody)),
		},
		{
			// extproc-anchors §0.5: a zero request body mode means NONE, so
			// the body goes up unprocessed. Modelled, not fixed.
			name: "override in request headers with zero request mode turns the body off",
			reqHeaders: func() *extprocv3.ProcessingResponse {
				r := routeHeaders("anthropic")
				r.ModeOverride = &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
				return r
			},
			wantReqBodies: 0, wantUpstream: `{"k":1}`, wantClientCL: -1, // configured STREAMED: removed
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRecordingUpstream(t, upstreamBody)
			f := DefaultFilter()
			if tc.filter != nil {
				tc.filter(f)
			}
			fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
				return routeTo("anthropic", nil), nil
			}}
			if tc.reqHeaders != nil {
				fake.onRequestHeaders = func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) { return tc.reqHeaders(), nil }
			}
			if tc.reqBody != nil {
				fake.onRequestBody = func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) { return tc.reqBody(), nil }
			}
			if tc.respHeaders != nil {
				fake.onResponseHeaders = func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) { return tc.respHeaders(), nil }
			}
			h := newHarness(t, fake, up.srv.URL, func(c *Config) { c.Filter = f })
			resp, body := h.do(t, http.MethodPost, "/v1/messages", `{"k":1}`, nil)
			if resp.StatusCode != http.StatusOK || body != upstreamBody {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if resp.ContentLength != tc.wantClientCL {
				t.Errorf("client content-length %d, want %d", resp.ContentLength, tc.wantClientCL)
			}
			if reqBodies, _ := countBodies(fake.received()); reqBodies != tc.wantReqBodies {
				t.Errorf("request body messages %d, want %d", reqBodies, tc.wantReqBodies)
			}
			if _, ub := up.last(); ub != tc.wantUpstream {
				t.Errorf("upstream body %q", ub)
			}
		})
	}
}

func TestConfiguredStreamedRemovesContentLength(t *testing.T) {
	up := newRecordingUpstream(t, `{"a":"b"}`)
	f := DefaultFilter()
	f.ProcessingMode.ResponseBodyMode = extprocfilterv3.ProcessingMode_STREAMED
	var sawCL bool
	fake := &fakeExtProc{
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return routeTo("anthropic", nil), nil
		},
		onResponseHeaders: func(hh *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
			_, sawCL = headersOf(hh).get("content-length")
			// Setting it is skipped in STREAMED.
			return continueResponseHeaders(&extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("content-length", "3")}}}), nil
		},
	}
	h := newHarness(t, fake, up.srv.URL, func(c *Config) { c.Filter = f })
	resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
	if resp.StatusCode != http.StatusOK || body != `{"a":"b"}` || resp.ContentLength != -1 {
		t.Fatalf("got %d %q cl=%d", resp.StatusCode, body, resp.ContentLength)
	}
	if sawCL {
		t.Error("ext_proc saw content-length in STREAMED mode")
	}
}

func TestContinueAndReplaceOnRequestHeaders(t *testing.T) {
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
		r := routeHeaders("anthropic")
		cr := r.GetRequestHeaders().GetResponse()
		cr.Status = extprocv3.CommonResponse_CONTINUE_AND_REPLACE
		cr.HeaderMutation.SetHeaders = append(cr.HeaderMutation.SetHeaders, setHeader(":method", "POST"))
		cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(`{"replaced":true}`)}}
		return r, nil
	}}
	h := newHarness(t, fake, up.srv.URL, nil)
	resp, _ := h.do(t, http.MethodGet, "/v1/models", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ur, ub := up.last()
	if ur.Method != http.MethodPost || ub != `{"replaced":true}` {
		t.Errorf("upstream got %s %q", ur.Method, ub)
	}
	if reqBodies, _ := countBodies(fake.received()); reqBodies != 0 {
		t.Error("no body message after CONTINUE_AND_REPLACE")
	}
}

func TestMetadataOnlyFromReceivingNamespaces(t *testing.T) {
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		r := routeTo("anthropic", nil)
		// Identity only in a namespace the filter does not receive, and no
		// identity headers: no descriptors, so no limit applies.
		md := identityMetadata("org_1", "key_1", "")
		md.Fields["other.ns"] = md.Fields[MetadataNamespace]
		delete(md.Fields, MetadataNamespace)
		r.DynamicMetadata = md
		m := r.GetRequestBody().GetResponse().GetHeaderMutation()
		m.SetHeaders = m.SetHeaders[:1]
		return r, nil
	}}
	h := newHarness(t, fake, up.srv.URL, func(c *Config) { c.RateLimits.PerKey = Limit{RequestsPerMinute: 1} })
	for range 3 {
		if resp, _ := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil); resp.StatusCode != http.StatusOK || resp.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
		}
	}
}

func TestRateLimitFallsBackToIdentityHeaders(t *testing.T) {
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		return routeTo("anthropic", nil), nil
	}}
	h := newHarness(t, fake, up.srv.URL, func(c *Config) { c.RateLimits.PerOrg = Limit{RequestsPerMinute: 1} })
	if resp, _ := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	if resp, _ := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second: %d", resp.StatusCode)
	}
}
