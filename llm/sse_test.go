package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/token"
)

// streamValues are the values behind the tokens of the SSE fixtures: a
// password with a quote, a backslash, a newline and non-ASCII; an API key;
// a path that ends in a backslash.
func streamValues() []string {
	r := rand.New(rand.NewPCG(1, 2))
	return []string{
		"p\"a\\ss\nwörd",
		fakeAnthropicKey(r),
		`C:\path\to\`,
	}
}

// streamVault returns a vault holding the stream values and their tokens.
func streamVault(t testing.TB) (*token.Vault, []string) {
	t.Helper()
	v := testVault(t)
	var toks []string
	for _, val := range streamValues() {
		tok, err := v.Token(detect.SECRET, []byte(val))
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	return v, toks
}

var placeholderRE = regexp.MustCompile(`\{\{T(\d)(md)?(?:\[(\d*):(\d*)\])?\}\}`)

// fillTokens replaces {{Tn}}, {{Tnmd}} (Markdown-escaped, as a JSON string
// holds it) and slices {{Tn[a:b]}} with token n.
func fillTokens(t testing.TB, b []byte, toks []string) []byte {
	t.Helper()
	return placeholderRE.ReplaceAllFunc(b, func(m []byte) []byte {
		sm := placeholderRE.FindSubmatch(m)
		n, _ := strconv.Atoi(string(sm[1]))
		form := toks[n-1]
		if len(sm[2]) > 0 {
			form = strings.ReplaceAll(form, "_", `\\_`)
		}
		lo, hi := 0, len(form)
		if len(sm[3]) > 0 {
			lo, _ = strconv.Atoi(string(sm[3]))
		}
		if len(sm[4]) > 0 {
			hi, _ = strconv.Atoi(string(sm[4]))
		}
		return []byte(form[lo:hi])
	})
}

var sseFixtures = []struct {
	file string
	path string
}{
	{"anthropic.sse", "/v1/messages"},
	{"openai_chat.sse", "/v1/chat/completions"},
	{"openai_responses.sse", "/v1/responses"},
	{"gemini.sse", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
}

func sseRewrite(t testing.TB, route Route, v *token.Vault, chunks ...[]byte) ([]byte, token.Stats) {
	t.Helper()
	rw := NewResponseRewriter(route, RequestInfo{Provider: route.Provider}, 200, "text/event-stream; charset=utf-8", v)
	var out []byte
	for i, c := range chunks {
		b, err := rw.Write(c, i == len(chunks)-1)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out, rw.Stats()
}

func TestSSEFixtures(t *testing.T) {
	for _, fx := range sseFixtures {
		t.Run(fx.file, func(t *testing.T) {
			v, toks := streamVault(t)
			route, err := Resolve("POST", fx.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			in := fillTokens(t, readTestdata(t, "sse/"+fx.file), toks)
			for _, ev := range parseSSE(in) {
				if ev != "[DONE]" && !json.Valid([]byte(ev)) {
					t.Fatalf("fixture event is not JSON: %s", ev)
				}
			}
			out, st := sseRewrite(t, route, v, in)
			golden(t, "sse/"+strings.TrimSuffix(fx.file, ".sse")+".out.sse", out)
			checkStream(t, route.Provider, v, toks, in, out)
			if st.Replaced == 0 {
				t.Error("Stats.Replaced = 0")
			}
			if fx.file == "anthropic.sse" && st.Unknown == 0 {
				t.Error("the unknown token was not counted")
			}
		})
	}
}

// checkStream checks what a client makes of out against what it would make
// of in with every token replaced by its value.
func checkStream(t *testing.T, p Provider, v *token.Vault, toks []string, in, out []byte) {
	t.Helper()
	for _, ev := range parseSSE(out) {
		if ev != "[DONE]" && !json.Valid([]byte(ev)) {
			t.Fatalf("output event is not JSON: %s", ev)
		}
	}
	for _, tok := range toks {
		if bytes.Contains(out, []byte(tok)) || bytes.Contains(out, []byte(strings.ReplaceAll(tok, "_", `\\_`))) {
			t.Errorf("token %s left in the output", tok)
		}
	}
	want := accumulate(t, p, in)
	got := accumulate(t, p, out)
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing in output", k)
			continue
		}
		if strings.HasSuffix(k, "json") {
			var wv, gv any
			wtext, _ := token.Rehydrate(v, []byte(w), token.JSONString)
			if err := json.Unmarshal(wtext, &wv); err != nil {
				t.Fatalf("%s: expected JSON does not parse: %v", k, err)
			}
			if err := json.Unmarshal([]byte(g), &gv); err != nil {
				t.Errorf("%s: accumulated JSON does not parse: %v\n%s", k, err, g)
				continue
			}
			if !reflect.DeepEqual(wv, gv) {
				t.Errorf("%s:\n got %#v\nwant %#v", k, gv, wv)
			}
			continue
		}
		wtext, _ := token.Rehydrate(v, []byte(w), token.Raw)
		if g != string(wtext) {
			t.Errorf("%s:\n got %q\nwant %q", k, g, wtext)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: only in output", k)
		}
	}
	// The values themselves come back whole, byte for byte, in decoded
	// strings.
	var leaves []string
	for k, g := range got {
		if !strings.HasSuffix(k, "json") {
			leaves = append(leaves, g)
			continue
		}
		var x any
		if json.Unmarshal([]byte(g), &x) == nil {
			mapStrings(x, func(s string) string { leaves = append(leaves, s); return s })
		}
	}
	all := strings.Join(leaves, "\x00")
	for _, val := range streamValues() {
		if !strings.Contains(all, val) {
			t.Errorf("value %q not found in the accumulated output", val)
		}
	}
}

// parseSSE returns the data of each complete event, as a client reads it.
func parseSSE(b []byte) []string {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var evs []string
	for {
		i := strings.Index(s, "\n\n")
		if i < 0 {
			return evs // an unterminated event is discarded
		}
		block := s[:i+1]
		s = s[i+2:]
		var data []string
		for _, ln := range strings.Split(block, "\n") {
			if rest, ok := strings.CutPrefix(ln, "data:"); ok {
				data = append(data, strings.TrimPrefix(rest, " "))
			}
		}
		if data != nil {
			evs = append(evs, strings.Join(data, "\n"))
		}
	}
}

// accumulate plays an SDK: it decodes every event and accumulates the
// deltas per content stream. Keys ending in "json" hold JSON text.
func accumulate(t *testing.T, p Provider, b []byte) map[string]string {
	t.Helper()
	acc := map[string]string{}
	var order []string
	for _, data := range parseSSE(b) {
		if data == "[DONE]" {
			order = append(order, "[DONE]")
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event does not decode: %v", err)
		}
		typ, _ := ev["type"].(string)
		order = append(order, typ)
		switch p {
		case Anthropic:
			if typ != "content_block_delta" {
				continue
			}
			idx := ev["index"].(float64)
			d := ev["delta"].(map[string]any)
			switch d["type"] {
			case "text_delta":
				acc[fmt.Sprintf("block%v.text", idx)] += d["text"].(string)
			case "thinking_delta":
				acc[fmt.Sprintf("block%v.thinking", idx)] += d["thinking"].(string)
			case "signature_delta":
				acc[fmt.Sprintf("block%v.signature", idx)] += d["signature"].(string)
			case "input_json_delta":
				acc[fmt.Sprintf("block%v.json", idx)] += d["partial_json"].(string)
			}
		case OpenAI, Mistral:
			chs, _ := ev["choices"].([]any)
			for _, c := range chs {
				c := c.(map[string]any)
				ci := c["index"].(float64)
				if fr, ok := c["finish_reason"].(string); ok {
					acc[fmt.Sprintf("c%v.finish", ci)] += fr
				}
				d, _ := c["delta"].(map[string]any)
				if s, ok := d["content"].(string); ok {
					acc[fmt.Sprintf("c%v.content", ci)] += s
				}
				tcs, _ := d["tool_calls"].([]any)
				for _, tc := range tcs {
					tc := tc.(map[string]any)
					ti := tc["index"].(float64)
					if f, ok := tc["function"].(map[string]any); ok {
						if a, ok := f["arguments"].(string); ok {
							acc[fmt.Sprintf("c%v.tool%v.json", ci, ti)] += a
						}
					}
				}
			}
			// Responses events.
			switch typ {
			case "response.output_text.delta":
				acc[fmt.Sprintf("%v.%v.text", ev["item_id"], ev["content_index"])] += ev["delta"].(string)
			case "response.output_text.done":
				acc[fmt.Sprintf("%v.%v.done", ev["item_id"], ev["content_index"])] += ev["text"].(string)
			case "response.function_call_arguments.delta":
				acc[fmt.Sprintf("%v.args.json", ev["item_id"])] += ev["delta"].(string)
			case "response.function_call_arguments.done":
				acc[fmt.Sprintf("%v.argsdone.json", ev["item_id"])] += ev["arguments"].(string)
			case "response.completed":
				out := ev["response"].(map[string]any)["output"].([]any)
				for i, it := range out {
					it := it.(map[string]any)
					if a, ok := it["arguments"].(string); ok {
						acc[fmt.Sprintf("completed.%d.json", i)] = a
					}
					if cs, ok := it["content"].([]any); ok {
						for j, c := range cs {
							acc[fmt.Sprintf("completed.%d.%d", i, j)] = c.(map[string]any)["text"].(string)
						}
					}
				}
			}
		case Gemini:
			cands, _ := ev["candidates"].([]any)
			for ci, c := range cands {
				c := c.(map[string]any)
				if fr, ok := c["finishReason"].(string); ok {
					acc[fmt.Sprintf("cand%d.finish", ci)] += fr
				}
				content, _ := c["content"].(map[string]any)
				parts, _ := content["parts"].([]any)
				for _, pt := range parts {
					pt := pt.(map[string]any)
					if s, ok := pt["text"].(string); ok {
						if pt["thought"] == true {
							acc[fmt.Sprintf("cand%d.thought", ci)] += s
						} else {
							acc[fmt.Sprintf("cand%d.text", ci)] += s
						}
					}
					if fc, ok := pt["functionCall"].(map[string]any); ok {
						j, _ := json.Marshal(fc["args"])
						acc[fmt.Sprintf("cand%d.fc.json", ci)] += string(j)
					}
				}
			}
		}
	}
	acc["order"] = strings.Join(dedupRuns(order), ",")
	return acc
}

// dedupRuns collapses runs of one event type: an extra delta event adds
// to a run, it does not change the order of kinds.
func dedupRuns(s []string) []string {
	var out []string
	for _, x := range s {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

func TestSSEEverySplit(t *testing.T) {
	for _, fx := range sseFixtures {
		t.Run(fx.file, func(t *testing.T) {
			v, toks := streamVault(t)
			route, _ := Resolve("POST", fx.path, nil)
			in := fillTokens(t, readTestdata(t, "sse/"+fx.file), toks)
			whole, _ := sseRewrite(t, route, v, in)
			for k := 0; k <= len(in); k++ {
				got, _ := sseRewrite(t, route, v, in[:k], in[k:])
				if !bytes.Equal(got, whole) {
					t.Fatalf("split at %d: output differs from the one-chunk output", k)
				}
			}
			// One byte at a time.
			chunks := make([][]byte, 0, len(in)+1)
			for i := range in {
				chunks = append(chunks, in[i:i+1])
			}
			chunks = append(chunks, nil)
			if got, _ := sseRewrite(t, route, v, chunks...); !bytes.Equal(got, whole) {
				t.Fatal("byte-at-a-time output differs from the one-chunk output")
			}
			// Random multi-splits.
			r := rand.New(rand.NewPCG(5, 9))
			for range 200 {
				cuts := []int{0, len(in)}
				for range 1 + r.IntN(8) {
					cuts = append(cuts, r.IntN(len(in)+1))
				}
				sort.Ints(cuts)
				var cs [][]byte
				for i := 1; i < len(cuts); i++ {
					cs = append(cs, in[cuts[i-1]:cuts[i]])
				}
				if got, _ := sseRewrite(t, route, v, cs...); !bytes.Equal(got, whole) {
					t.Fatalf("cuts %v: output differs from the one-chunk output", cuts)
				}
			}
		})
	}
}

// TestSSEMultipleChoices: streams of several choices (n > 1) and
// candidates are kept apart, and each ends with its own finish.
func TestSSEMultipleChoices(t *testing.T) {
	v, toks := streamVault(t)
	vals := streamValues()
	a, b := toks[0], toks[2]
	chunk := func(parts string) string {
		return `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[` + parts + "]}\n\n"
	}
	in := chunk(`{"index":0,"delta":{"content":"`+a[:9]+`"},"finish_reason":null},{"index":1,"delta":{"content":"x `+b[:20]+`"},"finish_reason":null}`) +
		chunk(`{"index":1,"delta":{"content":"`+b[20:]+` y"},"finish_reason":null},{"index":0,"delta":{"content":"`+a[9:20]+`"},"finish_reason":null}`) +
		chunk(`{"index":1,"delta":{},"finish_reason":"stop"}`) +
		chunk(`{"index":0,"delta":{"content":"`+a[20:]+`"},"finish_reason":"stop"}`) +
		"data: [DONE]\n\n"
	route := Route{Provider: OpenAI, Operation: OpChatCompletions}
	whole, _ := sseRewrite(t, route, v, []byte(in))
	got := accumulate(t, OpenAI, whole)
	if got["c0.content"] != vals[0] || got["c1.content"] != "x "+vals[2]+" y" {
		t.Errorf("accumulated %q", got)
	}
	for k := 0; k <= len(in); k++ {
		if out, _ := sseRewrite(t, route, v, []byte(in[:k]), []byte(in[k:])); !bytes.Equal(out, whole) {
			t.Fatalf("split %d differs", k)
		}
	}

	g := func(cands string) string {
		return `data: {"candidates":[` + cands + `],"modelVersion":"gemini-2.5-flash"}` + "\r\n\r\n"
	}
	gin := g(`{"content":{"parts":[{"text":"`+a[:5]+`"}],"role":"model"},"index":0},{"content":{"parts":[{"text":"`+b[:5]+`"}],"role":"model"},"index":1}`) +
		g(`{"content":{"parts":[{"text":"`+a[5:]+`"}],"role":"model"},"index":0,"finishReason":"STOP"},{"content":{"parts":[{"text":"`+b[5:12]+`"}],"role":"model"},"index":1}`) +
		g(`{"content":{"parts":[{"text":"`+b[12:]+`!"}],"role":"model"},"index":1,"finishReason":"STOP"}`)
	gout, _ := sseRewrite(t, Route{Provider: Gemini, Operation: OpStreamGenerateContent}, v, []byte(gin))
	// Candidates are positions in each event; accumulate by index here.
	acc := map[float64]string{}
	for _, ev := range parseSSE(gout) {
		var m struct {
			Candidates []struct {
				Index   float64
				Content struct{ Parts []struct{ Text string } }
			}
		}
		if err := json.Unmarshal([]byte(ev), &m); err != nil {
			t.Fatal(err)
		}
		for _, c := range m.Candidates {
			for _, p := range c.Content.Parts {
				acc[c.Index] += p.Text
			}
		}
	}
	if acc[0] != vals[0] || acc[1] != vals[2]+"!" {
		t.Errorf("gemini candidates %v", acc)
	}
}

// TestSSEMistralContentChunks: Mistral's reasoning models stream content
// as typed chunks; thinking text and answer text are streams of their own.
func TestSSEMistralContentChunks(t *testing.T) {
	v, toks := streamVault(t)
	vals := streamValues()
	a, b := toks[0], toks[2]
	chunk := func(delta, finish string) string {
		return `data: {"id":"cmpl-1","object":"chat.completion.chunk","created":1,"model":"magistral-medium-latest","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + finish + "}]}\n\n"
	}
	think := func(s string) string {
		return `{"content":[{"type":"thinking","thinking":[{"type":"text","text":"` + s + `"}]}]}`
	}
	in := chunk(`{"role":"assistant","content":""}`, "null") +
		chunk(think("check "+a[:11]), "null") +
		chunk(think(a[11:]+" then "+b[:4]), "null") +
		chunk(`{"content":[{"type":"text","text":"answer `+a[:15]+`"}]}`, "null") +
		chunk(`{"content":"`+a[15:]+`"}`, "null") +
		chunk(`{"content":""}`, `"stop"`) +
		"data: [DONE]\n\n"
	route := Route{Provider: Mistral, Operation: OpChatCompletions}
	out, _ := sseRewrite(t, route, v, []byte(in))
	var thinking, text string
	for _, ev := range parseSSE(out) {
		if ev == "[DONE]" {
			continue
		}
		var m struct {
			Choices []struct {
				Delta struct{ Content json.RawMessage }
			}
		}
		if err := json.Unmarshal([]byte(ev), &m); err != nil {
			t.Fatalf("%v: %s", err, ev)
		}
		c := m.Choices[0].Delta.Content
		var s string
		if json.Unmarshal(c, &s) == nil {
			text += s
			continue
		}
		var parts []struct {
			Type, Text string
			Thinking   []struct{ Text string }
		}
		if err := json.Unmarshal(c, &parts); err != nil {
			t.Fatalf("content %s: %v", c, err)
		}
		for _, p := range parts {
			text += p.Text
			for _, th := range p.Thinking {
				thinking += th.Text
			}
		}
	}
	if thinking != "check "+vals[0]+" then "+b[:4] {
		t.Errorf("thinking %q", thinking)
	}
	if text != "answer "+vals[0] {
		t.Errorf("text %q", text)
	}
}

// Responses events are numbered: an extra delta event the rewriter inserts
// takes the next number, and the events after it move up, so the client
// sees 0, 1, 2, … with no number twice, whole or cut, at any chunking.
func TestSSEResponsesSequenceNumbers(t *testing.T) {
	route, err := Resolve("POST", "/v1/responses", nil)
	if err != nil {
		t.Fatal(err)
	}
	seqRe := regexp.MustCompile(`"sequence_number":(\d+)`)
	numbers := func(out []byte) []int {
		var ns []int
		for _, ev := range parseSSE(out) {
			if m := seqRe.FindStringSubmatch(ev); m != nil {
				n, _ := strconv.Atoi(m[1])
				ns = append(ns, n)
			}
		}
		return ns
	}
	contiguous := func(t *testing.T, ns []int) {
		t.Helper()
		for i, n := range ns {
			if n != i {
				t.Fatalf("sequence numbers %v: want 0, 1, 2, …", ns)
			}
		}
	}
	v, toks := streamVault(t)
	in := fillTokens(t, readTestdata(t, "sse/openai_responses.sse"), toks)
	whole, _ := sseRewrite(t, route, v, in)
	ns := numbers(whole)
	if len(ns) != len(numbers(in))+1 {
		t.Fatalf("%d numbered events out of %d in; the fixture needs one extra delta event", len(ns), len(numbers(in)))
	}
	contiguous(t, ns)
	for _, cut := range []int{1, 7, 64, 333} {
		var chunks [][]byte
		for i := 0; i < len(in); i += cut {
			chunks = append(chunks, in[i:min(len(in), i+cut)])
		}
		out, _ := sseRewrite(t, route, v, chunks...)
		if string(out) != string(whole) {
			t.Fatalf("chunks of %d bytes give another output", cut)
		}
	}
	// Cut before response.output_text.done: the extra event at the end
	// follows the last number sent.
	i := strings.Index(string(in), "event: response.output_text.done")
	if i < 0 {
		t.Fatal("fixture without response.output_text.done")
	}
	cutOut, _ := sseRewrite(t, route, v, in[:i])
	cns := numbers(cutOut)
	contiguous(t, cns)
	if len(cns) != len(numbers(in[:i]))+1 {
		t.Fatalf("cut stream: %v", cns)
	}
}
