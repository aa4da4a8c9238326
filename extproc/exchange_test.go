package extproc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/takumo/aegis/token"
)

// prose carries three planted secrets, in this order.
const prose = "Deploy it. aws_access_key_id = " + awsKeyID + "\nGITHUB_TOKEN=" + ghToken +
	"\nDATABASE_URL=" + pgURL + "\nThanks!"

var plantedInOrder = []string{awsKeyID, ghToken, pgURL}

func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

type providerCase struct {
	name         string
	path         string
	model        string
	request      string
	wantProvider string
	authHeader   string // where the provider key must go
	authValue    string
	removed      []string // client auth headers that must be gone
	response     func(text string) string
	text         func(t *testing.T, body []byte) string
}

func providerCases() []providerCase {
	return []providerCase{
		{
			name: "anthropic", path: "/v1/messages?beta=true", model: "claude-sonnet-4-5",
			request:      `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":` + jsonString(prose) + `}]}`,
			wantProvider: "anthropic", authHeader: "x-api-key", authValue: anthropicPK, removed: []string{"authorization"},
			response: func(text string) string {
				return `{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5",` +
					`"content":[{"type":"text","text":` + jsonString(text) + `}],"stop_reason":"end_turn","stop_sequence":null,` +
					`"usage":{"input_tokens":42,"output_tokens":17}}`
			},
			text: func(t *testing.T, body []byte) string {
				var v struct {
					Content []struct{ Text string } `json:"content"`
				}
				mustUnmarshal(t, body, &v)
				return v.Content[0].Text
			},
		},
		{
			name: "openai", path: "/v1/chat/completions", model: "gpt-4o",
			request:      `{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":` + jsonString(prose) + `}]}`,
			wantProvider: "openai", authHeader: "authorization", authValue: "Bearer " + openAIPK, removed: []string{"x-api-key"},
			response: openAIResponse,
			text:     openAIText,
		},
		{
			name: "mistral", path: "/v1/chat/completions", model: "mistral-large-latest",
			request:      `{"model":"mistral-large-latest","messages":[{"role":"user","content":` + jsonString(prose) + `}]}`,
			wantProvider: "mistral", authHeader: "authorization", authValue: "Bearer " + mistralPK, removed: []string{"x-api-key"},
			response: openAIResponse,
			text:     openAIText,
		},
		{
			name: "gemini", path: "/v1beta/models/gemini-2.5-pro:generateContent", model: "gemini-2.5-pro",
			request:      `{"contents":[{"role":"user","parts":[{"text":` + jsonString(prose) + `}]}],"generationConfig":{"temperature":0.2}}`,
			wantProvider: "gemini", authHeader: "x-goog-api-key", authValue: geminiPK, removed: []string{"authorization", "x-api-key"},
			response: func(text string) string {
				return `{"candidates":[{"content":{"role":"model","parts":[{"text":` + jsonString(text) + `}]},"finishReason":"STOP","index":0}],` +
					`"usageMetadata":{"promptTokenCount":40,"candidatesTokenCount":12,"totalTokenCount":52},"modelVersion":"gemini-2.5-pro"}`
			},
			text: func(t *testing.T, body []byte) string {
				var v struct {
					Candidates []struct {
						Content struct {
							Parts []struct{ Text string } `json:"parts"`
						} `json:"content"`
					} `json:"candidates"`
				}
				mustUnmarshal(t, body, &v)
				return v.Candidates[0].Content.Parts[0].Text
			},
		},
	}
}

func openAIResponse(text string) string {
	return `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-2024-08-06",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":` + jsonString(text) + `,"refusal":null},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}}`
}

func openAIText(t *testing.T, body []byte) string {
	var v struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	mustUnmarshal(t, body, &v)
	return v.Choices[0].Message.Content
}

func mustUnmarshal(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("unmarshal %q: %v", truncate(b), err)
	}
}

func truncate(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// assertNoSecret fails if any planted secret (or its JSON-escaped form)
// occurs in b.
func assertNoSecret(t testing.TB, where string, b []byte) {
	t.Helper()
	for _, s := range plantedSecrets {
		esc := strings.Trim(jsonString(s), `"`)
		if bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte(esc)) {
			t.Errorf("%s contains a planted secret (%d bytes, prefix %.4s…)", where, len(s), s)
		}
	}
}

// tokensIn returns the canonical tokens of a tokenized body, in order.
func tokensIn(b []byte) []string {
	var out []string
	for _, m := range token.Find(b, token.JSONString) {
		out = append(out, m.Token)
	}
	return out
}

func TestProviderExchange(t *testing.T) {
	for _, tc := range providerCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ex := h.open(t)
			body := []byte(tc.request)
			// The client sends its Takumo key both ways tools do.
			r := ex.roundTrip(postHeaders(tc.path, body, "x-api-key", testKey, "authorization", "Bearer "+testKey,
				"anthropic-version", "2023-06-01"))
			if r.GetRequestHeaders() == nil || r.GetRequestHeaders().GetResponse().GetHeaderMutation() != nil {
				t.Fatalf("request headers: want a bare CONTINUE, got %v", r)
			}

			r = ex.roundTrip(reqBody(body))
			br := r.GetRequestBody().GetResponse()
			if br == nil {
				t.Fatalf("request body: got %v", r)
			}
			out := br.GetBodyMutation().GetBody()
			assertNoSecret(t, "upstream body", out)
			if !json.Valid(out) {
				t.Fatalf("upstream body is not JSON: %s", truncate(out))
			}
			toks := tokensIn(out)
			if len(toks) != len(plantedInOrder) {
				t.Fatalf("tokens in upstream body: %v, want %d", toks, len(plantedInOrder))
			}
			if !br.GetClearRouteCache() {
				t.Error("clear_route_cache not set")
			}
			hdr := applyMutation(map[string]string{
				"x-api-key": testKey, "authorization": "Bearer " + testKey, "content-length": strconv.Itoa(len(body)),
			}, br.GetHeaderMutation())
			want := map[string]string{
				"x-takumo-provider": tc.wantProvider,
				"x-takumo-org":      "org_acme",
				"x-takumo-key-id":   "key_test1",
				"x-takumo-plan":     "pro",
				"accept-encoding":   "identity",
				"content-length":    strconv.Itoa(len(out)),
				tc.authHeader:       tc.authValue,
				":path":             strings.TrimPrefix(tc.path, ""),
			}
			for k, v := range want {
				if hdr[k] != v {
					t.Errorf("upstream header %s = %q, want %q", k, hdr[k], v)
				}
			}
			for _, k := range tc.removed {
				if _, ok := hdr[k]; ok {
					t.Errorf("client header %s still present upstream", k)
				}
			}
			if !strings.HasPrefix(hdr["x-aegis-request-id"], "req_") {
				t.Errorf("x-aegis-request-id = %q", hdr["x-aegis-request-id"])
			}
			md := r.GetDynamicMetadata().GetFields()[metadataNamespace].GetStructValue().GetFields()
			if md["org"].GetStringValue() != "org_acme" || md["provider"].GetStringValue() != tc.wantProvider ||
				md["model"].GetStringValue() != tc.model || md["key_id"].GetStringValue() != "key_test1" {
				t.Errorf("dynamic metadata = %v", md)
			}

			// The provider answers with the tokens; the tool gets the values.
			reply := []byte(tc.response("Use " + strings.Join(toks, ", ") + "."))
			r = ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "application/json",
				"content-length", strconv.Itoa(len(reply))))
			rh := r.GetResponseHeaders().GetResponse().GetHeaderMutation()
			if v, _ := headerOf(rh, "x-aegis-request-id"); v != hdr["x-aegis-request-id"] {
				t.Errorf("response x-aegis-request-id = %q, want %q", v, hdr["x-aegis-request-id"])
			}
			if r.GetModeOverride() != nil {
				t.Errorf("mode override on a JSON response: %v", r.GetModeOverride())
			}
			r = ex.roundTrip(respBody(reply, true))
			rb := r.GetResponseBody().GetResponse()
			got := rb.GetBodyMutation().GetBody()
			if cl, _ := headerOf(rb.GetHeaderMutation(), "content-length"); cl != strconv.Itoa(len(got)) {
				t.Errorf("response content-length = %q, body is %d bytes", cl, len(got))
			}
			if text, wantText := tc.text(t, got), "Use "+strings.Join(plantedInOrder, ", ")+"."; text != wantText {
				t.Errorf("rehydrated text = %q, want %q", text, wantText)
			}
			ex.closeOK()
		})
	}
}

// TestSessionTokensStable: two requests of one session get the same
// tokens; another session gets others.
func TestSessionTokensStable(t *testing.T) {
	h := newHarness(t)
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":` + jsonString(prose) + `}]}`)
	tokensFor := func(session string) []string {
		ex := h.open(t)
		ex.roundTrip(postHeaders("/v1/chat/completions", body, "authorization", "Bearer "+testKey, "x-takumo-session", session))
		r := ex.roundTrip(reqBody(body))
		ex.cancel()
		_ = ex.end()
		return tokensIn(r.GetRequestBody().GetResponse().GetBodyMutation().GetBody())
	}
	a1, a2, b := tokensFor("sess-a"), tokensFor("sess-a"), tokensFor("sess-b")
	if strings.Join(a1, ",") != strings.Join(a2, ",") {
		t.Errorf("same session, different tokens: %v vs %v", a1, a2)
	}
	if strings.Join(a1, ",") == strings.Join(b, ",") {
		t.Errorf("different sessions, same tokens: %v", a1)
	}
}

// sseEvent is one Anthropic SSE event.
func sseEvent(name, data string) string {
	return "event: " + name + "\ndata: " + data + "\n\n"
}

// TestSSEStreamedManyChunks cuts an Anthropic stream into chunks of many
// sizes (1 byte upwards: events and tokens split everywhere).
func TestSSEStreamedManyChunks(t *testing.T) {
	h := newHarness(t)
	for _, size := range []int{1, 2, 3, 7, 16, 61, 4096} {
		t.Run(strconv.Itoa(size), func(t *testing.T) { streamAnthropic(t, h, size) })
	}
}

func streamAnthropic(t *testing.T, h *harness, size int) {
	ex := h.open(t)
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":` + jsonString(prose) + `}]}`)
	ex.roundTrip(postHeaders("/v1/messages", body, "x-api-key", testKey, "x-claude-code-session-id", "3f1e2d4c-5b6a-4789-8abc-def012345678"))
	r := ex.roundTrip(reqBody(body))
	toks := tokensIn(r.GetRequestBody().GetResponse().GetBodyMutation().GetBody())
	if len(toks) != 3 {
		t.Fatalf("tokens %v", toks)
	}

	var stream strings.Builder
	stream.WriteString(sseEvent("message_start", `{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}}`))
	stream.WriteString(sseEvent("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`))
	stream.WriteString(sseEvent("ping", `{"type": "ping"}`))
	for i, tok := range toks {
		stream.WriteString(sseEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"value `+strconv.Itoa(i)+`: `+tok+`\n"}}`))
	}
	stream.WriteString(sseEvent("content_block_stop", `{"type":"content_block_stop","index":0}`))
	stream.WriteString(sseEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`))
	stream.WriteString(sseEvent("message_stop", `{"type":"message_stop"}`))
	raw := []byte(stream.String())

	r = ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "text/event-stream; charset=utf-8", "content-length", strconv.Itoa(len(raw))))
	mo := r.GetModeOverride()
	if mo.GetResponseBodyMode() != extprocfilterv3.ProcessingMode_STREAMED || mo.GetRequestBodyMode() != extprocfilterv3.ProcessingMode_BUFFERED {
		t.Fatalf("mode override = %v, want response STREAMED and request BUFFERED", mo)
	}
	hm := r.GetResponseHeaders().GetResponse().GetHeaderMutation()
	if !contains(hm.GetRemoveHeaders(), "content-length") {
		t.Errorf("content-length not removed: %v", hm)
	}

	// Envoy pipelines chunks: send them all, then read the replies 1:1.
	var chunks [][]byte
	for i := 0; i < len(raw); i += size {
		chunks = append(chunks, raw[i:min(i+size, len(raw))])
	}
	chunks = append(chunks, []byte{}) // an empty final chunk with end_of_stream
	for i, c := range chunks {
		ex.send(respBody(c, i == len(chunks)-1))
	}
	var out bytes.Buffer
	for range chunks {
		r := ex.recv()
		rb := r.GetResponseBody()
		if rb == nil {
			t.Fatalf("want a body reply per chunk, got %v", r)
		}
		if rb.GetResponse().GetHeaderMutation() != nil {
			t.Error("header mutation in a STREAMED body reply")
		}
		bm, ok := rb.GetResponse().GetBodyMutation().GetMutation().(*extprocv3.BodyMutation_Body)
		if !ok {
			t.Fatalf("body reply without a body mutation (the chunk would pass unchanged): %v", rb)
		}
		out.Write(bm.Body)
	}
	ex.closeOK()

	text := accumulateAnthropicText(t, out.Bytes())
	var want strings.Builder
	for i, v := range plantedInOrder {
		want.WriteString("value " + strconv.Itoa(i) + ": " + v + "\n")
	}
	if text != want.String() {
		t.Errorf("accumulated text = %q, want %q", text, want.String())
	}
}

// accumulateAnthropicText parses an SSE stream and joins the text deltas.
func accumulateAnthropicText(t *testing.T, b []byte) string {
	t.Helper()
	var text strings.Builder
	for _, ev := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n") {
		for _, line := range strings.Split(ev, "\n") {
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			var d struct {
				Type  string `json:"type"`
				Delta struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"delta"`
			}
			mustUnmarshal(t, []byte(data), &d)
			if d.Type == "content_block_delta" && d.Delta.Type == "text_delta" {
				text.WriteString(d.Delta.Text)
			}
		}
	}
	return text.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestBodilessRequest: a GET is completed at the headers.
func TestBodilessRequest(t *testing.T) {
	h := newHarness(t)
	ex := h.open(t)
	r := ex.roundTrip(reqHeaders(true, ":method", "GET", ":path", "/v1/models", "authorization", "Bearer "+testKey))
	mut := r.GetRequestHeaders().GetResponse().GetHeaderMutation()
	hdr := applyMutation(map[string]string{"authorization": "Bearer " + testKey}, mut)
	if hdr["authorization"] != "Bearer "+openAIPK || hdr["x-takumo-provider"] != "openai" {
		t.Fatalf("headers after mutation: provider %q, authorization replaced: %v", hdr["x-takumo-provider"], hdr["authorization"] == "Bearer "+openAIPK)
	}
	if _, ok := hdr["content-length"]; ok {
		t.Error("content-length set on a bodiless request")
	}
	list := []byte(`{"object":"list","data":[{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"}]}`)
	ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "application/json"))
	r = ex.roundTrip(respBody(list, true))
	if got := r.GetResponseBody().GetResponse().GetBodyMutation().GetBody(); !bytes.Equal(got, list) {
		t.Errorf("body = %s", got)
	}
	ex.closeOK()
}

// TestGzipRequest: a gzip body is decoded, tokenized and sent identity.
func TestGzipRequest(t *testing.T) {
	h := newHarness(t)
	ex := h.open(t)
	plain := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":` + jsonString(prose) + `}]}`)
	gz := gzipBytes(t, plain)
	ex.roundTrip(postHeaders("/v1/chat/completions", gz, "authorization", "Bearer "+testKey, "content-encoding", "gzip"))
	r := ex.roundTrip(reqBody(gz))
	br := r.GetRequestBody().GetResponse()
	out := br.GetBodyMutation().GetBody()
	assertNoSecret(t, "upstream body", out)
	if len(tokensIn(out)) != 3 {
		t.Errorf("tokens: %v", tokensIn(out))
	}
	if !contains(br.GetHeaderMutation().GetRemoveHeaders(), "content-encoding") {
		t.Error("content-encoding not removed")
	}
}

// TestConcurrentExchanges: many streams at once, sharing one session
// vault, each get the session's tokens and their values back.
func TestConcurrentExchanges(t *testing.T) {
	h := newHarness(t)
	const n = 16
	errs := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex := h.open(t)
			body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":` + jsonString(prose) + `}]}`)
			session := "shared"
			if i%2 == 1 {
				session = ""
			}
			// step sends one message and returns the reply.
			step := func(m *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, bool) {
				if err := ex.stream.Send(m); err != nil {
					errs <- err.Error()
					return nil, false
				}
				r, err := ex.stream.Recv()
				if err != nil {
					errs <- err.Error()
					return nil, false
				}
				return r, true
			}
			if _, ok := step(postHeaders("/v1/chat/completions", body, "x-api-key", testKey, "x-takumo-session", session)); !ok {
				return
			}
			r, ok := step(reqBody(body))
			if !ok {
				return
			}
			reply := []byte(openAIResponse(strings.Join(tokensIn(r.GetRequestBody().GetResponse().GetBodyMutation().GetBody()), " ")))
			if _, ok := step(respHeaders(false, ":status", "200", "content-type", "application/json")); !ok {
				return
			}
			if r, ok = step(respBody(reply, true)); !ok {
				return
			}
			out := r.GetResponseBody().GetResponse().GetBodyMutation().GetBody()
			var v struct {
				Choices []struct {
					Message struct{ Content string } `json:"message"`
				} `json:"choices"`
			}
			if err := json.Unmarshal(out, &v); err != nil || v.Choices[0].Message.Content != strings.Join(plantedInOrder, " ") {
				errs <- "stream " + strconv.Itoa(i) + ": wrong rehydration: " + string(out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestClientGoneMidStream: the data plane cancels the stream while the
// response streams; Process returns (goleak in TestMain checks nothing is
// left behind) with a non-OK status.
func TestClientGoneMidStream(t *testing.T) {
	h := newHarness(t)
	ex, _ := upstreamExchange(t, h)
	ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "text/event-stream"))
	ex.roundTrip(respBody([]byte("event: ping\ndata: {\"type\": \"ping\"}\n\n"), false))
	ex.cancel()
	if err := ex.end(); err == nil {
		t.Fatal("canceled stream ended OK")
	}
}

// TestGeminiKeyPlaces: Gemini tools send the key as x-goog-api-key or
// ?key=; the query key never reaches the provider.
func TestGeminiKeyPlaces(t *testing.T) {
	body := []byte(`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`)
	cases := []struct {
		name     string
		path     string
		headers  []string
		wantPath string
	}{
		{"x-goog-api-key", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", []string{"x-goog-api-key", testKey},
			"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
		{"query key", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=" + testKey + "&alt=sse", nil,
			"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
		{"query key only", "/v1beta/models/gemini-2.5-flash:generateContent?key=" + testKey, nil,
			"/v1beta/models/gemini-2.5-flash:generateContent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ex := h.open(t)
			ex.roundTrip(postHeaders(tc.path, body, tc.headers...))
			r := ex.roundTrip(reqBody(body))
			hm := r.GetRequestBody().GetResponse().GetHeaderMutation()
			if p, _ := headerOf(hm, ":path"); p != tc.wantPath {
				t.Errorf(":path = %q, want %q", p, tc.wantPath)
			}
			if k, _ := headerOf(hm, "x-goog-api-key"); k != geminiPK {
				t.Errorf("x-goog-api-key not the provider key")
			}
		})
	}
}

// Gemini's streamGenerateContent without alt=sse streams one JSON array:
// the response goes STREAMED like an event stream, and each element comes
// back rehydrated as soon as it is complete.
func TestGeminiStreamedJSONArray(t *testing.T) {
	h := newHarness(t)
	ex := h.open(t)
	path := "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
	body := []byte(`{"contents":[{"role":"user","parts":[{"text":` + jsonString(prose) + `}]}]}`)
	ex.roundTrip(postHeaders(path, body, "x-goog-api-key", testKey))
	r := ex.roundTrip(reqBody(body))
	toks := tokensIn(r.GetRequestBody().GetResponse().GetBodyMutation().GetBody())
	if len(toks) != 3 {
		t.Fatalf("tokens %v", toks)
	}
	var elems []string
	for i, tok := range toks {
		elems = append(elems, `{"candidates":[{"content":{"parts":[{"text":"value `+strconv.Itoa(i)+`: `+tok+`\n"}],"role":"model"},"index":0}]}`)
	}
	elems = append(elems, `{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}]}`)
	raw := []byte("[" + strings.Join(elems, "\r\n,\r\n") + "]")

	r = ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "application/json; charset=UTF-8"))
	if mo := r.GetModeOverride(); mo.GetResponseBodyMode() != extprocfilterv3.ProcessingMode_STREAMED {
		t.Fatalf("mode override = %v, want response STREAMED", mo)
	}
	half := len(raw) / 2
	var out bytes.Buffer
	for i, c := range [][]byte{raw[:half], raw[half:]} {
		r := ex.roundTrip(respBody(c, i == 1))
		out.Write(r.GetResponseBody().GetResponse().GetBodyMutation().GetBody())
		if i == 0 && !bytes.Contains(out.Bytes(), []byte(plantedInOrder[0])) {
			t.Fatalf("the first complete element did not come back at once: %q", out.String())
		}
	}
	ex.closeOK()
	var got []struct {
		Candidates []struct {
			Content struct {
				Parts []struct{ Text string } `json:"parts"`
			} `json:"content"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out.String())
	}
	var text strings.Builder
	for _, e := range got {
		for _, c := range e.Candidates {
			for _, p := range c.Content.Parts {
				text.WriteString(p.Text)
			}
		}
	}
	for i, v := range plantedInOrder {
		if !strings.Contains(text.String(), "value "+strconv.Itoa(i)+": "+v+"\n") {
			t.Fatalf("value %d not rehydrated: %q", i, text.String())
		}
	}
}
