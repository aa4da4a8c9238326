package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// A fabricated Anthropic-shaped key (right prefix, length and charset).
const fakeProviderKey = "sk-ant-api03-Zk3vQ9xL2mN8pR4tW7yB1cD5fG6hJ0kM3nP8qS2uV5xA9bC4dE7fH1jK6mL0oQ3rT8wY2zA5cD9eF1gH4iJ7kL-AbCdEfAA"

func decodeError(t *testing.T, body string) errorDetail {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil {
		t.Fatalf("error body %q is not DESIGN §6 JSON: %v", body, err)
	}
	return eb.Error
}

func headersOf(m *extprocv3.HttpHeaders) headerMap {
	var hm headerMap
	for _, h := range m.GetHeaders().GetHeaders() {
		hm = append(hm, header{h.GetKey(), string(h.GetRawValue())})
	}
	return hm
}

func TestProxyBufferedRoundTrip(t *testing.T) {
	up := newRecordingUpstream(t, `{"answer":"__TOKEN__"}`)
	fake := &fakeExtProc{
		onRequestHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
			r := continueRequestHeaders()
			r.DynamicMetadata = identityMetadata("org_1", "key_1", "req_fromextproc")
			return r, nil
		},
		onRequestBody: func(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			out := []byte(strings.ReplaceAll(string(b.GetBody()), "SECRET", "__TOKEN__"))
			r := routeTo("anthropic", out)
			m := r.GetRequestBody().GetResponse().GetHeaderMutation()
			m.SetHeaders = append(m.SetHeaders, setHeader("x-api-key", fakeProviderKey), setHeader(headerRequestID, "req_fromextproc"))
			m.RemoveHeaders = append(m.RemoveHeaders, "authorization")
			return r, nil
		},
		onResponseBody: func(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			out := []byte(strings.ReplaceAll(string(b.GetBody()), "__TOKEN__", "SECRET"))
			return continueResponseBody(&extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("content-length", itoa(len(out)))}},
				BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}},
			}), nil
		},
	}
	h := newHarness(t, fake, up.srv.URL, nil)
	resp, body := h.do(t, http.MethodPost, "/v1/messages?beta=true", `{"prompt":"SECRET"}`, map[string]string{
		"Authorization":     "Bearer tk_test_0000",
		"X-Takumo-Session":  "s1",
		"X-Takumo-Provider": "openai", // a client cannot pick the route
		"Content-Type":      "application/json",
	})
	if resp.StatusCode != http.StatusOK || body != `{"answer":"SECRET"}` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get(canonicalRequestID); got != "req_fromextproc" {
		t.Errorf("X-Aegis-Request-Id = %q", got)
	}
	ur, ubody := up.last()
	if ubody != `{"prompt":"__TOKEN__"}` {
		t.Errorf("upstream body %q", ubody)
	}
	for k := range ur.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-takumo-") {
			t.Errorf("upstream saw %s", k)
		}
	}
	if ur.Header.Get("Authorization") != "" || ur.Header.Get("X-Api-Key") != fakeProviderKey {
		t.Errorf("upstream auth headers wrong: %v", ur.Header)
	}
	if ur.URL.RequestURI() != "/v1/messages?beta=true" {
		t.Errorf("upstream path %q", ur.URL.RequestURI())
	}

	msgs := h.fake.received()
	if len(msgs) != 4 {
		t.Fatalf("ext_proc got %d messages, want 4", len(msgs))
	}
	if msgs[0].GetProtocolConfig().GetRequestBodyMode() != extprocfilterv3.ProcessingMode_BUFFERED || msgs[1].GetProtocolConfig() != nil {
		t.Error("protocol_config must be in the first message only")
	}
	rh := headersOf(msgs[0].GetRequestHeaders())
	for k, want := range map[string]string{":method": "POST", ":path": "/v1/messages?beta=true", ":scheme": "http", "authorization": "Bearer tk_test_0000", "x-takumo-session": "s1"} {
		if got, _ := rh.get(k); got != want {
			t.Errorf("request header %s = %q, want %q", k, got, want)
		}
	}
	if a, _ := rh.get(":authority"); a == "" {
		t.Error(":authority missing")
	}
	if msgs[0].GetRequestHeaders().GetEndOfStream() || !msgs[1].GetRequestBody().GetEndOfStream() {
		t.Error("end_of_stream flags wrong")
	}
	if st, _ := headersOf(msgs[2].GetResponseHeaders()).get(":status"); st != "200" {
		t.Errorf("response :status = %q", st)
	}
}

func TestBodilessRequestSendsNoBodyMessage(t *testing.T) {
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
		return routeHeaders("openai"), nil
	}}
	h := newHarness(t, fake, up.srv.URL, nil)
	resp, _ := h.do(t, http.MethodGet, "/v1/models", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	msgs := fake.received()
	if !msgs[0].GetRequestHeaders().GetEndOfStream() {
		t.Error("GET headers need end_of_stream")
	}
	for _, m := range msgs {
		if m.GetRequestBody() != nil {
			t.Error("no request body message for a bodiless request")
		}
	}
}

func TestContentLengthMismatchIs500(t *testing.T) {
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		r := routeTo("anthropic", nil)
		r.GetRequestBody().Response.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("longer body than before")}}
		return r, nil // content-length left at the client's value
	}}
	h := newHarness(t, fake, up.srv.URL, nil)
	resp, body := h.do(t, http.MethodPost, "/v1/messages", `{"a":1}`, nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	if e := decodeError(t, body); e.RequestID == "" || resp.Header.Get(canonicalRequestID) != e.RequestID {
		t.Errorf("request id missing or different: %+v / %q", e, resp.Header.Get(canonicalRequestID))
	}
	if up.count() != 0 {
		t.Error("upstream must get nothing")
	}
}

func TestImmediateResponse(t *testing.T) {
	for _, tc := range []struct {
		name       string
		code, want int
	}{
		{"unauthorized", 401, 401},
		{"status_zero_becomes_200", 0, 200},
		{"status_below_200_becomes_200", 150, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRecordingUpstream(t, `{}`)
			fake := &fakeExtProc{onRequestHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
				return immediate(tc.code, `{"error":{"code":"X"}}`, setHeader("content-type", "application/json"), setHeader(headerRequestID, "req_imm")), nil
			}}
			h := newHarness(t, fake, up.srv.URL, nil)
			resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
			if resp.StatusCode != tc.want || body != `{"error":{"code":"X"}}` {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get(canonicalRequestID) != "req_imm" {
				t.Errorf("headers %v", resp.Header)
			}
			if up.count() != 0 {
				t.Error("upstream must get nothing")
			}
		})
	}
}

// streamingOverride is the response-headers reply the ext_proc server
// sends for event streams.
func streamingOverride() *extprocv3.ProcessingResponse {
	r := continueResponseHeaders(&extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{RemoveHeaders: []string{"content-length"}}})
	r.ModeOverride = &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED, ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
	return r
}

func upperChunk(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	return continueResponseBody(&extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: bytes.ToUpper(b.GetBody())}}}), nil
}

func TestStreamedChunksFlushImmediately(t *testing.T) {
	clientGotFirst := make(chan struct{})
	up := newRecordingUpstream(t, "")
	up.handler = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		waitFor(t, clientGotFirst, "the client to receive the first chunk before the upstream sends the second")
		_, _ = io.WriteString(w, "data: two\n\n")
	}
	fake := &fakeExtProc{
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return routeTo("anthropic", nil), nil
		},
		onResponseHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) { return streamingOverride(), nil },
		onResponseBody:    upperChunk,
	}
	h := newHarness(t, fake, up.srv.URL, nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.front.URL+"/v1/messages", strings.NewReader(`{}`))
	resp, err := h.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.ContentLength != -1 {
		t.Errorf("streamed response must not carry content-length (%d)", resp.ContentLength)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "DATA: ONE\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(clientGotFirst)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream ended badly: %v", err)
	}
	if string(rest) != "\nDATA: TWO\n\n" {
		t.Errorf("rest %q", rest)
	}
	// The last message is an end_of_stream chunk.
	msgs := fake.received()
	last := msgs[len(msgs)-1].GetResponseBody()
	if last == nil || !last.GetEndOfStream() {
		t.Errorf("last message %v, want a response body with end_of_stream", msgs[len(msgs)-1])
	}
}

// TestStreamedChunksArePipelined holds the reply to the first chunk until
// the second chunk has arrived: a gateway that waited for each reply
// before sending the next chunk would never get there.
func TestStreamedChunksArePipelined(t *testing.T) {
	up := newRecordingUpstream(t, "")
	up.handler = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, s := range []string{"a", "b", "c"} {
			_, _ = io.WriteString(w, s)
			w.(http.Flusher).Flush()
		}
	}
	var chunks []string
	fake := &fakeExtProc{}
	fake.process = func(s extprocv3.ExternalProcessor_ProcessServer) error {
		var held []*extprocv3.HttpBody
		for {
			req, err := s.Recv()
			if err != nil {
				return nil //nolint:nilerr // client done
			}
			var resp *extprocv3.ProcessingResponse
			switch m := req.GetRequest().(type) {
			case *extprocv3.ProcessingRequest_RequestHeaders:
				resp = continueRequestHeaders()
			case *extprocv3.ProcessingRequest_RequestBody:
				resp = routeTo("anthropic", nil)
			case *extprocv3.ProcessingRequest_ResponseHeaders:
				resp = streamingOverride()
			case *extprocv3.ProcessingRequest_ResponseBody:
				chunks = append(chunks, string(m.ResponseBody.GetBody()))
				held = append(held, m.ResponseBody)
				// Answer only once two chunks are outstanding, or at the end.
				if len(held) < 2 && !m.ResponseBody.GetEndOfStream() {
					continue
				}
				for _, b := range held {
					r, _ := upperChunk(b)
					if err := s.Send(r); err != nil {
						return nil //nolint:nilerr // client gone
					}
				}
				held = nil
				continue
			}
			if err := s.Send(resp); err != nil {
				return nil //nolint:nilerr // client gone
			}
		}
	}
	h := newHarness(t, fake, up.srv.URL, nil)
	done := make(chan string, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.front.URL+"/v1/messages", strings.NewReader(`{}`))
		resp, err := h.front.Client().Do(req)
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		done <- string(b)
	}()
	if got := waitFor(t, done, "the pipelined response"); got != "ABC" {
		t.Fatalf("got %q", got)
	}
}

func TestSpuriousOrOutOfOrderReplyIs500(t *testing.T) {
	for _, tc := range []struct {
		name string
		fake *fakeExtProc
	}{
		{"body_reply_to_headers", &fakeExtProc{onRequestHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
			return continueRequestBody(nil), nil
		}}},
		{"response_reply_in_request_phase", &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return continueResponseHeaders(nil), nil
		}}},
		{"streamed_response_in_buffered_mode", &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return continueRequestBody(&extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{Body: []byte("x")}}}}), nil
		}}},
		{"invalid_header_value", &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return continueRequestBody(&extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-a", "bad\r\nvalue")}}}), nil
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRecordingUpstream(t, `{}`)
			h := newHarness(t, tc.fake, up.srv.URL, nil)
			resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			decodeError(t, body)
			if up.count() != 0 {
				t.Error("upstream must get nothing")
			}
		})
	}
}

func TestMessageTimeoutIs504(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		<-release
		return routeTo("anthropic", nil), nil
	}}
	filter := DefaultFilter()
	filter.MessageTimeout = durationpb.New(0) // fires at once: no wall-clock threshold in the test
	h := newHarness(t, fake, up.srv.URL, func(c *Config) { c.Filter = filter })
	resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
	if resp.StatusCode != http.StatusGatewayTimeout || decodeError(t, body).Code != codeGatewayTimeout {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if up.count() != 0 {
		t.Error("upstream must get nothing")
	}
}

func TestExtProcDiesMidRequest(t *testing.T) {
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		return nil, status.Error(codes.Internal, "tokenizer crashed")
	}}
	h := newHarness(t, fake, up.srv.URL, nil)
	resp, body := h.do(t, http.MethodPost, "/v1/messages", `{"k":"SECRET"}`, nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "tokenizer") {
		t.Error("the gRPC message must not leak to the client")
	}
	if up.count() != 0 {
		t.Error("upstream must get nothing")
	}
}

// brokenStreamRead reads a response and reports whether it ended with an
// error (a broken stream) rather than a clean end.
func brokenStreamRead(t *testing.T, h *harness) (string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.front.URL+"/v1/messages", strings.NewReader(`{}`))
	resp, err := h.front.Client().Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestExtProcDiesMidStreamBreaksTheClientStream(t *testing.T) {
	up := newRecordingUpstream(t, "")
	up.handler = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 5 {
			_, _ = io.WriteString(w, "data: "+itoa(i)+"\n\n")
			w.(http.Flusher).Flush()
		}
	}
	n := 0
	fake := &fakeExtProc{
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return routeTo("anthropic", nil), nil
		},
		onResponseHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) { return streamingOverride(), nil },
		onResponseBody: func(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			n++
			if n == 1 {
				return nil, status.Error(codes.Internal, "rehydrator crashed")
			}
			return upperChunk(b)
		},
	}
	h := newHarness(t, fake, up.srv.URL, nil)
	got, err := brokenStreamRead(t, h)
	if err == nil {
		t.Fatalf("the client saw a clean end after %q; logs:\n%s", got, h.logs.String())
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("broken stream error: %v", err)
	}
}

func TestOKCloseFailsOpenLoudly(t *testing.T) {
	up := newRecordingUpstream(t, `{"from":"upstream"}`)
	fake := &fakeExtProc{
		onRequestHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
			return routeHeaders("anthropic"), nil
		},
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) { return nil, errClose },
	}
	h := newHarness(t, fake, up.srv.URL, nil)
	resp, body := h.do(t, http.MethodPost, "/v1/messages", `{"k":"SECRET"}`, nil)
	// Envoy carries on without ext_proc: the body goes up unprocessed.
	if resp.StatusCode != http.StatusOK || body != `{"from":"upstream"}` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if _, ub := up.last(); ub != `{"k":"SECRET"}` {
		t.Errorf("upstream body %q", ub)
	}
	if !strings.Contains(h.logs.String(), "fail-open") || !strings.Contains(h.logs.String(), `"level":"ERROR"`) {
		t.Error("fail-open must be logged at error level")
	}
	if m := scrapeMetrics(t, h); !strings.Contains(m, `aegis_extproc_failures_total{kind="ok_close"} 1`) {
		t.Errorf("ok_close not counted:\n%s", m)
	}
}

func scrapeMetrics(t *testing.T, h *harness) string {
	t.Helper()
	resp, body := h.do(t, http.MethodGet, "/metrics", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics status %d", resp.StatusCode)
	}
	return body
}

func TestBodyOverLimitIs413(t *testing.T) {
	up := newRecordingUpstream(t, `{}`)
	h := newHarness(t, &fakeExtProc{}, up.srv.URL, func(c *Config) { c.MaxBodyBytes = 16 })
	for _, chunked := range []bool{false, true} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.front.URL+"/v1/messages", strings.NewReader(strings.Repeat("x", 17)))
		if chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(strings.NewReader(strings.Repeat("x", 17)))
		}
		resp, err := h.front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || decodeError(t, string(b)).Code != codeTooLarge {
			t.Errorf("chunked=%v: got %d %s", chunked, resp.StatusCode, b)
		}
	}
	if up.count() != 0 {
		t.Error("upstream must get nothing")
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		return routeTo("anthropic", nil), nil
	}}
	h := newHarness(t, fake, deadURL, nil)
	resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
	if resp.StatusCode != http.StatusBadGateway || decodeError(t, body).Code != codeBadGateway {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	// The local reply travelled back through ext_proc's response path.
	var sawStatus string
	for _, m := range fake.received() {
		if rh := m.GetResponseHeaders(); rh != nil {
			sawStatus, _ = headersOf(rh).get(":status")
		}
	}
	if sawStatus != "502" {
		t.Errorf("ext_proc saw response :status %q, want 502", sawStatus)
	}
}

func TestUpstreamSlowIs504(t *testing.T) {
	release := make(chan struct{})
	up := newRecordingUpstream(t, "")
	up.handler = func(http.ResponseWriter, *http.Request) { <-release }
	t.Cleanup(func() { close(release) })
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		return routeTo("anthropic", nil), nil
	}}
	h := newHarness(t, fake, up.srv.URL, func(c *Config) { c.Timeouts.ResponseHeader = time.Millisecond })
	resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
	if resp.StatusCode != http.StatusGatewayTimeout || decodeError(t, body).Code != codeGatewayTimeout {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

func TestProviderResetMidStreamBreaksTheClientStream(t *testing.T) {
	up := newRecordingUpstream(t, "")
	up.handler = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // cut the connection mid-stream
	}
	fake := &fakeExtProc{
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return routeTo("anthropic", nil), nil
		},
		onResponseHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) { return streamingOverride(), nil },
	}
	h := newHarness(t, fake, up.srv.URL, nil)
	got, err := brokenStreamRead(t, h)
	if err == nil {
		t.Fatalf("the client saw a clean end after %q", got)
	}
}

func TestNoRouteIs404(t *testing.T) {
	for _, provider := range []string{"", "nosuchprovider"} {
		up := newRecordingUpstream(t, `{}`)
		fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			if provider == "" {
				return continueRequestBody(nil), nil
			}
			return routeTo(provider, nil), nil
		}}
		h := newHarness(t, fake, up.srv.URL, nil)
		resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
		if resp.StatusCode != http.StatusNotFound || decodeError(t, body).Code != codeNotFound {
			t.Errorf("provider %q: got %d %s", provider, resp.StatusCode, body)
		}
		if up.count() != 0 {
			t.Error("upstream must get nothing")
		}
	}
}

func TestRouteNeedsClearRouteCache(t *testing.T) {
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		r := routeTo("anthropic", nil)
		r.GetRequestBody().Response.ClearRouteCache = false
		return r, nil
	}}
	h := newHarness(t, fake, up.srv.URL, nil)
	resp, _ := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("without clear_route_cache the route computed on arrival stands: got %d", resp.StatusCode)
	}
}

func TestRateLimit429(t *testing.T) {
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		r := routeTo("anthropic", nil)
		r.DynamicMetadata = identityMetadata("org_1", "key_1", "")
		return r, nil
	}}
	h := newHarness(t, fake, up.srv.URL, func(c *Config) {
		c.RateLimits = RateLimits{PerKey: Limit{RequestsPerMinute: 60, Burst: 2}}
	})
	for i, wantRemaining := range []string{"1", "0"} {
		resp, _ := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		if resp.Header.Get("X-RateLimit-Limit") != "60" || resp.Header.Get("X-RateLimit-Remaining") != wantRemaining || resp.Header.Get("X-RateLimit-Reset") == "" {
			t.Errorf("request %d: rate headers %v", i, resp.Header)
		}
	}
	resp, body := h.do(t, http.MethodPost, "/v1/messages", `{}`, nil)
	if resp.StatusCode != http.StatusTooManyRequests || decodeError(t, body).Code != codeRateLimited {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("429 headers %v", resp.Header)
	}
	if up.count() != 2 {
		t.Errorf("upstream got %d requests, want 2", up.count())
	}
	m := scrapeMetrics(t, h)
	if !strings.Contains(m, `aegis_rate_limit_checks_total{result="over_limit"} 1`) || !strings.Contains(m, `aegis_gateway_requests_total{provider="none",status="429"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	fake := &fakeExtProc{onRequestHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
		return immediate(200, `{"status":"ok"}`), nil
	}}
	h := newHarness(t, fake, "", nil)
	if resp, _ := h.do(t, http.MethodGet, "/v1/health", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/v1/health %d", resp.StatusCode)
	}
	if resp, _ := h.do(t, http.MethodGet, "/healthz", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz %d", resp.StatusCode)
	}
	if resp, body := h.do(t, http.MethodGet, "/readyz", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz %d %s", resp.StatusCode, body)
	}
	if p, _ := headersOf(fake.received()[1].GetRequestHeaders()).get(":path"); p != "/v1/health" {
		t.Errorf("probe path %q", p)
	}
	m := scrapeMetrics(t, h)
	for _, name := range []string{"aegis_gateway_requests_total", "aegis_gateway_request_duration_seconds"} {
		if !strings.Contains(m, name) {
			t.Errorf("metric %s missing:\n%s", name, m)
		}
	}
}

func TestReadinessFailsWithoutExtProc(t *testing.T) {
	fake := &fakeExtProc{onRequestHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
		return nil, status.Error(codes.Unavailable, "not ready")
	}}
	h := newHarness(t, fake, "", nil)
	if resp, _ := h.do(t, http.MethodGet, "/readyz", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d, want 503", resp.StatusCode)
	}
}

func TestNewRejectsUnsupportedFilters(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*extprocfilterv3.ExternalProcessor)
	}{
		{"full_duplex", func(f *extprocfilterv3.ExternalProcessor) {
			f.ProcessingMode.ResponseBodyMode = extprocfilterv3.ProcessingMode_FULL_DUPLEX_STREAMED
		}},
		{"streamed_request", func(f *extprocfilterv3.ExternalProcessor) {
			f.ProcessingMode.RequestBodyMode = extprocfilterv3.ProcessingMode_STREAMED
		}},
		{"observability", func(f *extprocfilterv3.ExternalProcessor) { f.ObservabilityMode = true }},
		{"trailers", func(f *extprocfilterv3.ExternalProcessor) {
			f.ProcessingMode.ResponseTrailerMode = extprocfilterv3.ProcessingMode_SEND
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := DefaultFilter()
			tc.mod(f)
			h := newHarness(t, &fakeExtProc{}, "", nil)
			if _, err := New(Config{ExtProc: h.conn, Filter: f}); err == nil {
				t.Error("New accepted an unsupported filter")
			}
		})
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without ExtProc must fail")
	}
}

func TestLargeBodiesNeedRaisedGRPCLimits(t *testing.T) {
	big := strings.Repeat("a", 5<<20) // over gRPC's 4 MiB default
	route := func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		return routeTo("anthropic", nil), nil
	}

	up := newRecordingUpstream(t, `{}`)
	h := newHarnessWith(t, &fakeExtProc{onRequestBody: route}, up.srv.URL, nil,
		[]grpc.ServerOption{grpc.MaxRecvMsgSize(8 << 20)}, ExtProcDialOptions(8<<20))
	if resp, body := h.do(t, http.MethodPost, "/v1/messages", big, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("raised limits: %d %s", resp.StatusCode, body)
	}
	if _, ub := up.last(); len(ub) != len(big) {
		t.Errorf("upstream got %d bytes", len(ub))
	}

	// A server left at the default fails the request closed (500), and the
	// upstream gets nothing.
	up2 := newRecordingUpstream(t, `{}`)
	h2 := newHarnessWith(t, &fakeExtProc{onRequestBody: route}, up2.srv.URL, nil, nil, ExtProcDialOptions(8<<20))
	if resp, _ := h2.do(t, http.MethodPost, "/v1/messages", big, nil); resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("default server limit: %d, want 500", resp.StatusCode)
	}
	if up2.count() != 0 {
		t.Error("upstream must get nothing")
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		r := routeTo("gemini", nil)
		r.GetRequestBody().GetResponse().GetHeaderMutation().SetHeaders = append(r.GetRequestBody().GetResponse().GetHeaderMutation().SetHeaders,
			setHeader("x-goog-api-key", fakeProviderKey), setHeader(":path", "/v1beta/models/m:generateContent?key="+fakeProviderKey))
		return r, nil
	}}
	h := newHarness(t, fake, "", func(c *Config) {
		u, _ := url.Parse(deadURL)
		c.Upstreams = map[string]*url.URL{"gemini": u}
	})
	resp, body := h.do(t, http.MethodPost, "/v1beta/models/m:generateContent", `{"password":"`+fakeProviderKey+`"}`, nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, fakeProviderKey) {
		t.Error("the error body carries the key")
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "upstream connect failed") {
		t.Fatalf("expected the upstream failure in the logs:\n%s", logs)
	}
	if strings.Contains(logs, fakeProviderKey) {
		t.Errorf("logs carry the key:\n%s", logs)
	}
}

func TestFailureModeAllowContinuesUnprocessed(t *testing.T) {
	up := newRecordingUpstream(t, `{"ok":1}`)
	fake := &fakeExtProc{
		onRequestHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
			return routeHeaders("anthropic"), nil
		},
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return nil, status.Error(codes.Internal, "boom")
		},
	}
	f := DefaultFilter()
	f.FailureModeAllow = true
	h := newHarness(t, fake, up.srv.URL, func(c *Config) { c.Filter = f })
	resp, body := h.do(t, http.MethodPost, "/v1/messages", `{"k":1}`, nil)
	if resp.StatusCode != http.StatusOK || body != `{"ok":1}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

func TestTracingSpansPerPhaseWithoutSecrets(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	up := newRecordingUpstream(t, `{}`)
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		return routeTo("anthropic", nil), nil
	}}
	h := newHarness(t, fake, up.srv.URL, func(c *Config) { c.TracerProvider = tp })
	if resp, _ := h.do(t, http.MethodPost, "/v1/messages?key="+fakeProviderKey, `{"k":"`+fakeProviderKey+`"}`, map[string]string{"X-Api-Key": fakeProviderKey}); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	names := map[string]bool{}
	for _, s := range rec.Ended() {
		names[s.Name()] = true
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.String(), fakeProviderKey) {
				t.Errorf("span %s attribute %s carries the key", s.Name(), a.Key)
			}
		}
	}
	for _, n := range []string{"gateway.request", "ext_proc.request_headers", "ext_proc.request_body", "upstream.headers", "ext_proc.response_headers", "ext_proc.response_body"} {
		if !names[n] {
			t.Errorf("span %s missing (have %v)", n, names)
		}
	}
}
