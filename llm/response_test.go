package llm

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/takumo/aegis/token"
)

// jsonTok returns s with {{Tn}} replaced by token n.
func jsonTok(t *testing.T, s string, toks []string) []byte {
	t.Helper()
	return fillTokens(t, []byte(s), toks)
}

func TestResponseJSON(t *testing.T) {
	v, toks := streamVault(t)
	vals := streamValues()
	tests := []struct {
		name     string
		route    Route
		provider Provider
		status   int
		body     string
		// paths into the decoded body and the value expected there
		want map[string]string
	}{
		{
			name: "anthropic text and tool_use", route: Route{Provider: Anthropic, Operation: OpMessages}, status: 200,
			body: `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[` +
				`{"type":"text","text":"pw {{T1}} key {{T2md}}"},` +
				`{"type":"tool_use","id":"toolu_01","name":"login","input":{"password":"{{T1}}","dir":"{{T3}}","nested":["{{T2}}"]}}],` +
				`"stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":20}}`,
			want: map[string]string{
				"content.0.text":           "pw " + vals[0] + " key " + vals[1],
				"content.1.input.password": vals[0],
				"content.1.input.dir":      vals[2],
				"content.1.input.nested.0": vals[1],
				"content.1.id":             "toolu_01",
			},
		},
		{
			name: "openai chat tool_calls", route: Route{Provider: OpenAI, Operation: OpChatCompletions}, status: 200,
			body: `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4.1","choices":[{"index":0,"message":{"role":"assistant","content":"use {{T1}}",` +
				`"tool_calls":[{"id":"call_1","type":"function","function":{"name":"login","arguments":"{\"password\":\"{{T1}}\",\"dir\":\"{{T3}}\"}"}}]},"finish_reason":"tool_calls"}]}`,
			want: map[string]string{
				"choices.0.message.content":                                  "use " + vals[0],
				"choices.0.message.tool_calls.0.function.arguments#password": vals[0],
				"choices.0.message.tool_calls.0.function.arguments#dir":      vals[2],
			},
		},
		{
			name: "responses function_call", route: Route{Provider: OpenAI, Operation: OpResponses}, status: 200,
			body: `{"id":"resp_1","object":"response","output":[{"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"{{T3}} and {{T1}}","annotations":[]}]},` +
				`{"type":"function_call","id":"fc_1","call_id":"call_1","name":"login","arguments":"{\"password\":\"{{T1}}\"}"}]}`,
			want: map[string]string{
				"output.0.content.0.text":     vals[2] + " and " + vals[0],
				"output.1.arguments#password": vals[0],
			},
		},
		{
			name: "gemini", route: Route{Provider: Gemini, Operation: OpGenerateContent}, status: 200,
			body: `{"candidates":[{"content":{"parts":[{"text":"{{T1}}"},{"functionCall":{"name":"f","args":{"arguments":"{{T3}}"}}}],"role":"model"},"finishReason":"STOP"}]}`,
			want: map[string]string{
				"candidates.0.content.parts.0.text":                        vals[0],
				"candidates.0.content.parts.1.functionCall.args.arguments": vals[2],
			},
		},
		{
			name: "error body", route: Route{Provider: Anthropic, Operation: OpMessages}, status: 400,
			body: `{"type":"error","error":{"type":"invalid_request_error","message":"bad value {{T1}}"}}`,
			want: map[string]string{"error.message": "bad value " + vals[0]},
		},
		{
			name: "unknown token stays", route: Route{Provider: OpenAI, Operation: OpGeneric}, status: 200,
			body: `{"data":"__TAKUMO_v1_KEY_0123abcd__ and {{T1}}"}`,
			want: map[string]string{"data": "__TAKUMO_v1_KEY_0123abcd__ and " + vals[0]},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := jsonTok(t, tt.body, toks)
			if !json.Valid(body) {
				t.Fatalf("test body is not JSON: %s", body)
			}
			rw := NewResponseRewriter(tt.route, RequestInfo{Provider: tt.route.Provider}, tt.status, "application/json", v)
			// Any chunking: nothing comes out before the end.
			var out []byte
			for i := 0; i < len(body); i += 7 {
				b, err := rw.Write(body[i:min(i+7, len(body))], false)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) != 0 {
					t.Fatal("JSON body emitted before its end")
				}
			}
			out, err := rw.Write(nil, true)
			if err != nil {
				t.Fatal(err)
			}
			var doc any
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			for path, want := range tt.want {
				if got := lookup(t, doc, path); got != want {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
			}
			if strings.Contains(tt.name, "unknown") {
				if st := rw.Stats(); st.Unknown != 1 || len(st.UnknownTokens) != 1 {
					t.Errorf("stats %+v, want one unknown token", st)
				}
			} else if st := rw.Stats(); st.Replaced == 0 || st.Unknown != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// lookup follows a dotted path (numbers index arrays); "#key" decodes the
// string reached so far as JSON and continues in it.
func lookup(t *testing.T, doc any, path string) string {
	t.Helper()
	outer, inner, hasInner := strings.Cut(path, "#")
	x := doc
	for _, seg := range strings.Split(outer, ".") {
		switch y := x.(type) {
		case map[string]any:
			x = y[seg]
		case []any:
			i := 0
			for _, c := range seg {
				i = i*10 + int(c-'0')
			}
			if i >= len(y) {
				return "<missing>"
			}
			x = y[i]
		default:
			return "<missing>"
		}
	}
	s, _ := x.(string)
	if hasInner {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("%s is not JSON: %v (%s)", outer, err, s)
		}
		s, _ = m[inner].(string)
	}
	return s
}

func TestResponseJSONUntouched(t *testing.T) {
	v, _ := streamVault(t)
	body := []byte(`{"id":"msg_1","content":[{"type":"text","text":"no tokens here, just TAKUMO in passing"}]}`)
	plain := []byte(`{"id":"msg_1","content":[{"type":"text","text":"nothing"}]}`)
	for _, b := range [][]byte{body, plain} {
		rw := NewResponseRewriter(Route{Provider: Anthropic, Operation: OpMessages}, RequestInfo{}, 200, "application/json; charset=utf-8", v)
		first, _ := rw.Write(b[:10], false)
		rest, _ := rw.Write(b[10:], true)
		if got := append(first, rest...); !bytes.Equal(got, b) {
			t.Errorf("body changed:\n got %s\nwant %s", got, b)
		}
	}
}

func TestResponseRaw(t *testing.T) {
	v, toks := streamVault(t)
	vals := streamValues()
	body := []byte("plain text " + toks[0] + " and " + strings.ReplaceAll(toks[2], "_", `\_`) + " end")
	want := "plain text " + vals[0] + " and " + vals[2] + " end"
	for k := 0; k <= len(body); k++ {
		rw := NewResponseRewriter(Route{Provider: OpenAI, Operation: OpGeneric}, RequestInfo{}, 200, "text/plain", v)
		a, _ := rw.Write(body[:k], false)
		b, _ := rw.Write(body[k:], true)
		if got := string(a) + string(b); got != want {
			t.Fatalf("split %d: got %q, want %q", k, got, want)
		}
	}
}

func TestResponseRewriterAfterEOS(t *testing.T) {
	v, _ := streamVault(t)
	for _, ct := range []string{"application/json", "text/event-stream", "text/plain", "application/x-ndjson"} {
		rw := NewResponseRewriter(Route{Provider: Anthropic, Operation: OpMessages}, RequestInfo{}, 200, ct, v)
		if _, err := rw.Write([]byte(`{"a":1}`), true); err != nil {
			t.Fatal(err)
		}
		if b, err := rw.Write([]byte("more"), true); err != nil || len(b) != 0 {
			t.Errorf("%s: write after eos gave %q, %v", ct, b, err)
		}
	}
}

// TestSSECut: a stream that ends without its stop events gets what each
// content stream holds in a final delta event, and an unterminated event
// as it came.
func TestSSECut(t *testing.T) {
	v, toks := streamVault(t)
	tok := toks[0]
	in := "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a " + tok[:10] + "\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + tok[10:]
	route := Route{Provider: Anthropic, Operation: OpMessages}
	out, _ := sseRewrite(t, route, v, []byte(in))
	evs := parseSSE(out)
	if len(evs) != 3 {
		t.Fatalf("got %d events, want start, delta, extra delta:\n%s", len(evs), out)
	}
	var last struct {
		Index int
		Delta struct{ Type, Text string }
	}
	if err := json.Unmarshal([]byte(evs[2]), &last); err != nil || last.Index != 0 || last.Delta.Type != "text_delta" || last.Delta.Text != tok[:10] {
		t.Errorf("extra event %s (%v): want the held prefix as it was", evs[2], err)
	}
	if !bytes.HasSuffix(out, []byte(tok[10:])) {
		t.Errorf("the unterminated event was not passed on as it came:\n%s", out)
	}
}

// TestStreamEscapeParity: a delta ending in an escaped backslash must not
// be cut between the two bytes of its escape, whatever the rehydrator
// holds back.
func TestStreamEscapeParity(t *testing.T) {
	v, toks := streamVault(t)
	for _, esc := range []token.Escaping{token.JSONString, token.JSONFragment} {
		for _, raw := range []string{`C:\\`, `C:\\\\`, `x\\\\\\`, `\\`, `a\"\\`, `\\\\\\_`, `\\\\_\\_TAK`} {
			d := &deltaStream{sr: token.NewStreamRehydrator(v, esc)}
			out := d.write(nil, []byte(raw))
			if endsInEscape(out) {
				t.Errorf("%v %q: emitted %q ends inside an escape", esc, raw, out)
			}
			rest := d.write(nil, []byte(toks[0][:5]))
			all := string(out) + string(rest) + string(d.flush(nil))
			if want := raw + toks[0][:5]; all != want {
				t.Errorf("%v %q: stream gave %q, want %q", esc, raw, all, want)
			}
		}
	}
}

func TestEndsInEscape(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{``, false}, {`a`, false}, {`\`, true}, {`\\`, false}, {`\\\`, true}, {`\n`, false}, {`a\u00e9\`, true}, {`\"`, false},
	}
	for _, tt := range tests {
		if got := endsInEscape([]byte(tt.in)); got != tt.want {
			t.Errorf("endsInEscape(%q) = %v", tt.in, got)
		}
	}
}

func TestSSEEventEndTerminators(t *testing.T) {
	v, _ := streamVault(t)
	route := Route{Provider: OpenAI, Operation: OpChatCompletions}
	for _, sep := range []string{"\n", "\r\n", "\r"} {
		ev := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}" + sep + sep
		in := []byte(ev + ev + "data: [DONE]" + sep + sep)
		for k := 0; k <= len(in); k++ {
			out, _ := sseRewrite(t, route, v, in[:k], in[k:])
			if !bytes.Equal(out, in) {
				t.Fatalf("sep %q split %d: %q", sep, k, out)
			}
		}
	}
}

func TestSSEGenericEventsWhole(t *testing.T) {
	v, toks := streamVault(t)
	vals := streamValues()
	in := []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"" + toks[0] + "\"}]}}\n\n" +
		": comment " + "\n\n" +
		"data: {\"type\":\"x\"}\ndata: {\"t\":\"" + toks[2] + "\"}\n\n")
	out, _ := sseRewrite(t, Route{Provider: Anthropic, Operation: OpMessages}, v, in)
	evs := parseSSE(out)
	var m struct {
		Message struct{ Content []struct{ Text string } }
	}
	if err := json.Unmarshal([]byte(evs[0]), &m); err != nil || m.Message.Content[0].Text != vals[0] {
		t.Errorf("message_start not rehydrated: %s", evs[0])
	}
	if !strings.Contains(evs[1], jsonEsc(vals[2])) {
		t.Errorf("multi-line data not rehydrated: %s", evs[1])
	}
	if !reflect.DeepEqual(len(evs), 2) {
		t.Errorf("%d events", len(evs))
	}
}

func TestResponseNDJSON(t *testing.T) {
	v, toks := streamVault(t)
	vals := streamValues()
	body := []byte(`{"message":{"content":"` + toks[0] + `"}}` + "\n" + `{"message":{"content":"` + toks[2] + `"},"done":true}` + "\n")
	for k := 0; k <= len(body); k++ {
		rw := NewResponseRewriter(Route{Provider: OpenAI, Operation: OpGeneric}, RequestInfo{}, 200, "application/x-ndjson", v)
		a, _ := rw.Write(body[:k], false)
		b, _ := rw.Write(body[k:], true)
		lines := strings.Split(strings.TrimSpace(string(a)+string(b)), "\n")
		for i, ln := range lines {
			var m struct{ Message struct{ Content string } }
			if err := json.Unmarshal([]byte(ln), &m); err != nil {
				t.Fatalf("split %d: line %d: %v", k, i, err)
			}
			if want := vals[2*i]; m.Message.Content != want {
				t.Fatalf("split %d: line %d holds %q, want %q", k, i, m.Message.Content, want)
			}
		}
	}
}
