package extproc

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/token"
)

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type errBody struct {
	Error struct {
		Code      string          `json:"code"`
		Message   string          `json:"message"`
		RequestID string          `json:"request_id"`
		Details   []BlockDetail   `json:"details"`
		Upstream  json.RawMessage `json:"upstream"`
	} `json:"error"`
}

// checkError asserts an immediate DESIGN §6 error and returns its body.
func checkError(t *testing.T, r *extprocv3.ProcessingResponse, status int, code, msgPart string) errBody {
	t.Helper()
	ir := immediateOf(t, r)
	if got := int(ir.GetStatus().GetCode()); got != status {
		t.Errorf("status = %d, want %d (body %s)", got, status, ir.GetBody())
	}
	var b errBody
	mustUnmarshal(t, ir.GetBody(), &b)
	if b.Error.Code != code {
		t.Errorf("code = %q, want %q", b.Error.Code, code)
	}
	if !strings.Contains(b.Error.Message, msgPart) {
		t.Errorf("message = %q, want it to contain %q", b.Error.Message, msgPart)
	}
	rid, _ := headerOf(ir.GetHeaders(), "x-aegis-request-id")
	if !strings.HasPrefix(rid, "req_") || rid != b.Error.RequestID {
		t.Errorf("x-aegis-request-id %q, body request_id %q", rid, b.Error.RequestID)
	}
	if ct, _ := headerOf(ir.GetHeaders(), "content-type"); ct != "application/json" {
		t.Errorf("content-type = %q", ct)
	}
	return b
}

var chatBody = []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":` + jsonString(prose) + `}]}`)

func TestAuthErrors(t *testing.T) {
	cases := []struct {
		name    string
		mode    Mode
		headers []string
		status  int
		code    string
		msg     string
	}{
		{"missing key", ModeTest, nil, 401, CodeUnauthorized, "missing API key"},
		{"missing bearer", ModeTest, []string{"authorization", testKey}, 401, CodeUnauthorized, `missing "Bearer "`},
		{"basic scheme", ModeTest, []string{"authorization", "Basic dXNlcjpwYXNz"}, 401, CodeUnauthorized, "unsupported Authorization scheme"},
		{"two x-api-key headers", ModeTest, []string{"x-api-key", testKey, "x-api-key", testKey}, 401, CodeUnauthorized, "two API keys in the x-api-key header"},
		{"trailing whitespace", ModeTest, []string{"x-api-key", testKey + " "}, 401, CodeUnauthorized, "trailing whitespace"},
		{"trailing newline bearer", ModeTest, []string{"authorization", "Bearer " + testKey + "\t"}, 401, CodeUnauthorized, "trailing whitespace"},
		{"test key on live gateway", ModeLive, []string{"x-api-key", testKey}, 401, CodeUnauthorized, "test key (tk_test_) cannot be used on a live gateway"},
		{"live key on test gateway", ModeTest, []string{"x-api-key", liveKey}, 401, CodeUnauthorized, "live key (tk_live_) cannot be used on a test gateway"},
		{"provider key instead", ModeTest, []string{"x-api-key", anthropicPK}, 401, CodeUnauthorized, "not a Takumo API key"},
		{"malformed key", ModeTest, []string{"x-api-key", "tk_test_ABC"}, 401, CodeUnauthorized, "malformed Takumo API key"},
		{"unknown key", ModeTest, []string{"x-api-key", "tk_test_" + strings.Repeat("0f", 32)}, 401, CodeUnauthorized, "invalid API key: no such key"},
		{"two different keys", ModeTest, []string{"x-api-key", testKey, "authorization", "Bearer " + testKey2}, 401, CodeUnauthorized, "two different API keys"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Mode = tc.mode })
			ex := h.open(t)
			r := ex.roundTrip(postHeaders("/v1/chat/completions", chatBody, tc.headers...))
			b := checkError(t, r, tc.status, tc.code, tc.msg)
			assertNoSecret(t, "error body", []byte(b.Error.Message))
			ex.closeOK()
		})
	}
}

func TestRevokedKey(t *testing.T) {
	h := newHarness(t)
	if !h.keys.Remove(testKey) {
		t.Fatal("key not known")
	}
	ex := h.open(t)
	checkError(t, ex.roundTrip(postHeaders("/v1/chat/completions", chatBody, "x-api-key", testKey)), 401, CodeUnauthorized, "revoked")
}

func TestRequestErrors(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 70<<10)
	cases := []struct {
		name    string
		path    string
		headers []string // after the key
		body    []byte
		status  int
		code    string
		msg     string
		atHead  bool // answered at the request headers
	}{
		{"malformed JSON", "/v1/chat/completions", nil, []byte(`{"model":"gpt-4o","messages":[`), 400, CodeBadRequest, "", false},
		{"not an object", "/v1/messages", nil, []byte(`[1,2,3]`), 400, CodeBadRequest, "", false},
		{"unsupported encoding", "/v1/messages", []string{"content-encoding", "br"}, chatBody, 400, CodeBadRequest, `unsupported content-encoding "br"`, true},
		{"bad gzip", "/v1/messages", []string{"content-encoding", "gzip"}, chatBody, 400, CodeBadRequest, "not gzip", false},
		{"text/plain", "/v1/messages", []string{"content-type", "text/plain"}, chatBody, 400, CodeBadRequest, "unsupported content-type", true},
		{"unknown path", "/v2/nothing-here", nil, chatBody, 404, CodeNotFound, "no such route", true},
		{"declared too large", "/v1/messages", []string{"content-length", strconv.Itoa(2 << 20)}, chatBody, 413, CodePayloadTooLarge, "size limit", true},
		{"body too large", "/v1/messages", []string{"content-length", ""}, []byte(`{"model":"x","messages":[{"role":"user","content":"` + string(big) + `"}]}`), 413, CodePayloadTooLarge, "size limit", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
			ex := h.open(t)
			kv := []string{":method", "POST", ":path", tc.path, "x-api-key", testKey,
				"content-type", "application/json", "content-length", strconv.Itoa(len(tc.body))}
			kv = append(kv, tc.headers...)
			// Later entries override earlier ones in this fake map.
			r := ex.roundTrip(reqHeaders(false, dedupe(kv)...))
			if !tc.atHead {
				if r.GetRequestHeaders() == nil {
					t.Fatalf("headers: want CONTINUE, got %v", r)
				}
				r = ex.roundTrip(reqBody(tc.body))
			}
			checkError(t, r, tc.status, tc.code, tc.msg)
			ex.closeOK()
		})
	}
}

// dedupe keeps the last value of each key (and drops empty values).
func dedupe(kv []string) []string {
	last := map[string]string{}
	var order []string
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := last[kv[i]]; !ok {
			order = append(order, kv[i])
		}
		last[kv[i]] = kv[i+1]
	}
	var out []string
	for _, k := range order {
		if last[k] != "" {
			out = append(out, k, last[k])
		}
	}
	return out
}

// TestGzipBomb: 128 MiB of zeros in ~130 KiB of gzip against a 1 MiB
// limit is refused with 413, and the server allocates nowhere near the
// decompressed size.
func TestGzipBomb(t *testing.T) {
	// gzip readers read concatenated members as one stream: one member of
	// 1 MiB of zeros, 128 times.
	member := gzipBytes(t, make([]byte, 1<<20))
	bomb := bytes.Repeat(member, 128)

	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 1 << 20 })
	ex := h.open(t)
	ex.roundTrip(postHeaders("/v1/messages", bomb, "x-api-key", testKey, "content-encoding", "gzip"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := ex.roundTrip(reqBody(bomb))
	runtime.ReadMemStats(&after)
	checkError(t, r, 413, CodePayloadTooLarge, "size limit")
	ex.closeOK()
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("allocated %d MiB handling a 128 MiB bomb with a 1 MiB limit", alloc>>20)
	}
}

func TestBlockedRequest(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Engine = newEngine(t, detect.Options{CategoryActions: map[detect.Category]detect.Action{detect.CONN: detect.Block}})
	})
	ex := h.open(t)
	ex.roundTrip(postHeaders("/v1/chat/completions", chatBody, "x-api-key", testKey))
	r := ex.roundTrip(reqBody(chatBody))
	b := checkError(t, r, 403, CodeForbidden, "blocked")
	if len(b.Error.Details) != 1 {
		t.Fatalf("details = %+v", b.Error.Details)
	}
	d := b.Error.Details[0]
	if d.Category != "CONN" || d.Rule == "" || d.Line != 3 || !strings.Contains(d.Field, "messages[0]") {
		t.Errorf("detail = %+v", d)
	}
	assertNoSecret(t, "403 body", immediateOf(t, r).GetBody())
	ex.closeOK()
}

func TestVaultFull(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		st, err := NewSessionStore(c.OrgSecret, token.StoreOptions{Limits: token.Limits{MaxEntries: 1}})
		if err != nil {
			t.Fatal(err)
		}
		c.Sessions = st
	})
	ex := h.open(t)
	ex.roundTrip(postHeaders("/v1/chat/completions", chatBody, "x-api-key", testKey, "x-takumo-session", "full"))
	checkError(t, ex.roundTrip(reqBody(chatBody)), 503, CodeServiceUnavailable, "too many secrets")
	ex.closeOK()
}

func TestNoProviderKey(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ProviderKeys = StaticProviderKeys{} })
	ex := h.open(t)
	ex.roundTrip(postHeaders("/v1/chat/completions", chatBody, "x-api-key", testKey))
	checkError(t, ex.roundTrip(reqBody(chatBody)), 403, CodeForbidden, "no provider API key")
	ex.closeOK()
}

// upstreamExchange runs a request to the response headers.
func upstreamExchange(t *testing.T, h *harness) (*exchange, []string) {
	t.Helper()
	ex := h.open(t)
	ex.roundTrip(postHeaders("/v1/messages", chatBodyAnthropic, "x-api-key", testKey))
	r := ex.roundTrip(reqBody(chatBodyAnthropic))
	return ex, tokensIn(r.GetRequestBody().GetResponse().GetBodyMutation().GetBody())
}

var chatBodyAnthropic = []byte(`{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":` + jsonString(prose) + `}]}`)

func TestUpstreamErrors(t *testing.T) {
	t.Run("429 passes with rehydrated body", func(t *testing.T) {
		h := newHarness(t)
		ex, toks := upstreamExchange(t, h)
		body := []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"slow down with ` + toks[0] + `"}}`)
		r := ex.roundTrip(respHeaders(false, ":status", "429", "content-type", "application/json", "retry-after", "17"))
		if r.GetResponseHeaders() == nil {
			t.Fatalf("want the 429 to pass, got %v", r)
		}
		r = ex.roundTrip(respBody(body, true))
		got := r.GetResponseBody().GetResponse().GetBodyMutation().GetBody()
		if !bytes.Contains(got, []byte(awsKeyID)) || !json.Valid(got) {
			t.Errorf("429 body = %s", got)
		}
		ex.closeOK()
	})
	t.Run("data plane 429 gets Retry-After", func(t *testing.T) {
		h := newHarness(t)
		ex, _ := upstreamExchange(t, h)
		r := ex.roundTrip(respHeaders(true, ":status", "429", "x-envoy-ratelimited", "true", "x-ratelimit-reset", "12"))
		hm := r.GetResponseHeaders().GetResponse().GetHeaderMutation()
		if v, _ := headerOf(hm, "retry-after"); v != "12" {
			t.Errorf("retry-after = %q, want 12 (mutation %v)", v, hm)
		}
		ex.closeOK()
	})
	t.Run("text 429 passes", func(t *testing.T) {
		h := newHarness(t)
		ex, _ := upstreamExchange(t, h)
		if r := ex.roundTrip(respHeaders(false, ":status", "429", "content-type", "text/plain")); r.GetResponseHeaders() == nil {
			t.Fatalf("got %v", r)
		}
		r := ex.roundTrip(respBody([]byte("Too Many Requests"), true))
		if got := r.GetResponseBody().GetResponse().GetBodyMutation().GetBody(); string(got) != "Too Many Requests" {
			t.Errorf("body = %q", got)
		}
		ex.closeOK()
	})
	t.Run("529 overloaded passes", func(t *testing.T) {
		h := newHarness(t)
		ex, _ := upstreamExchange(t, h)
		body := []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
		if r := ex.roundTrip(respHeaders(false, ":status", "529", "content-type", "application/json")); r.GetResponseHeaders() == nil {
			t.Fatalf("got %v", r)
		}
		if r := ex.roundTrip(respBody(body, true)); !bytes.Equal(r.GetResponseBody().GetResponse().GetBodyMutation().GetBody(), body) {
			t.Errorf("529 body changed: %v", r)
		}
		ex.closeOK()
	})
	t.Run("401 from provider becomes 502 with upstream", func(t *testing.T) {
		h := newHarness(t)
		ex, toks := upstreamExchange(t, h)
		body := []byte(`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key near ` + toks[1] + `"}}`)
		ex.roundTrip(respHeaders(false, ":status", "401", "content-type", "application/json"))
		b := checkError(t, ex.roundTrip(respBody(body, true)), 502, CodeBadGateway, "upstream provider returned 401")
		var up struct {
			Error struct{ Type, Message string } `json:"error"`
		}
		mustUnmarshal(t, b.Error.Upstream, &up)
		if up.Error.Type != "authentication_error" || !strings.Contains(up.Error.Message, ghToken) {
			t.Errorf("upstream = %s", b.Error.Upstream)
		}
		ex.closeOK()
	})
	t.Run("HTML 502 becomes JSON 502", func(t *testing.T) {
		h := newHarness(t)
		ex, _ := upstreamExchange(t, h)
		ex.roundTrip(respHeaders(false, ":status", "502", "content-type", "text/html"))
		b := checkError(t, ex.roundTrip(respBody([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"), true)),
			502, CodeBadGateway, "upstream provider returned 502")
		if len(b.Error.Upstream) != 0 {
			t.Errorf("upstream = %s, want none for HTML", b.Error.Upstream)
		}
		ex.closeOK()
	})
	t.Run("500 JSON passes, 500 HTML does not", func(t *testing.T) {
		h := newHarness(t)
		ex, _ := upstreamExchange(t, h)
		ex.roundTrip(respHeaders(false, ":status", "500", "content-type", "text/html; charset=utf-8"))
		checkError(t, ex.roundTrip(respBody([]byte("<html>oops</html>"), true)), 502, CodeBadGateway, "returned 500")
		ex.closeOK()
	})
	t.Run("bodiless 403 answered at headers", func(t *testing.T) {
		h := newHarness(t)
		ex, _ := upstreamExchange(t, h)
		checkError(t, ex.roundTrip(respHeaders(true, ":status", "403")), 502, CodeBadGateway, "returned 403")
		ex.closeOK()
	})
}

func TestGzipResponseBuffered(t *testing.T) {
	h := newHarness(t)
	ex, toks := upstreamExchange(t, h)
	plain := []byte(`{"type":"message","content":[{"type":"text","text":"` + toks[2] + `"}]}`)
	gz := gzipBytes(t, plain)
	ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "application/json", "content-encoding", "gzip"))
	r := ex.roundTrip(respBody(gz, true))
	rb := r.GetResponseBody().GetResponse()
	if !contains(rb.GetHeaderMutation().GetRemoveHeaders(), "content-encoding") {
		t.Error("content-encoding not removed")
	}
	if got := rb.GetBodyMutation().GetBody(); !bytes.Contains(got, []byte(pgURL)) {
		t.Errorf("body = %s", got)
	}
	ex.closeOK()
}

// TestNeverOKEarly: a stream that ends before the exchange is complete
// ends with a non-OK status at every stage.
func TestNeverOKEarly(t *testing.T) {
	stages := []struct {
		name string
		play func(ex *exchange)
	}{
		{"nothing sent", func(*exchange) {}},
		{"after request headers", func(ex *exchange) {
			ex.roundTrip(postHeaders("/v1/messages", chatBodyAnthropic, "x-api-key", testKey))
		}},
		{"after request body", func(ex *exchange) {
			ex.roundTrip(postHeaders("/v1/messages", chatBodyAnthropic, "x-api-key", testKey))
			ex.roundTrip(reqBody(chatBodyAnthropic))
		}},
		{"after response headers", func(ex *exchange) {
			ex.roundTrip(postHeaders("/v1/messages", chatBodyAnthropic, "x-api-key", testKey))
			ex.roundTrip(reqBody(chatBodyAnthropic))
			ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "text/event-stream"))
		}},
		{"mid stream", func(ex *exchange) {
			ex.roundTrip(postHeaders("/v1/messages", chatBodyAnthropic, "x-api-key", testKey))
			ex.roundTrip(reqBody(chatBodyAnthropic))
			ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "text/event-stream"))
			ex.roundTrip(respBody([]byte("event: ping\ndata: {}\n\n"), false))
		}},
	}
	for _, st := range stages {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t)
			ex := h.open(t)
			st.play(ex)
			if err := ex.end(); err == nil {
				t.Fatal("stream ended OK before the exchange was complete")
			}
		})
	}
}

func TestProtocolViolations(t *testing.T) {
	t.Run("request body mode NONE", func(t *testing.T) {
		h := newHarness(t)
		ex := h.open(t)
		r := postHeaders("/v1/messages", chatBodyAnthropic, "x-api-key", testKey)
		r.ProtocolConfig = &extprocv3.ProtocolConfiguration{}
		ex.first = false
		ex.send(r)
		if _, err := ex.stream.Recv(); err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("got %v, want a non-OK status", err)
		} else if statusCode(err) != "FailedPrecondition" {
			t.Errorf("status %s", statusCode(err))
		}
	})
	t.Run("response headers before request body", func(t *testing.T) {
		h := newHarness(t)
		ex := h.open(t)
		ex.roundTrip(postHeaders("/v1/messages", chatBodyAnthropic, "x-api-key", testKey))
		ex.send(respHeaders(false, ":status", "200"))
		if _, err := ex.stream.Recv(); err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("got %v, want a non-OK status", err)
		}
	})
	t.Run("trailers end a stream holding bytes", func(t *testing.T) {
		h := newHarness(t)
		ex, toks := upstreamExchange(t, h)
		ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "text/event-stream"))
		half := toks[0][:12]
		ex.roundTrip(respBody([]byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\""+half), false))
		ex.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}})
		if _, err := ex.stream.Recv(); err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("got %v, want a reset", err)
		}
	})
}
