package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/takumo/aegis/token"
)

// codeText is prose-and-code filler of the kind a coding agent sends.
func codeText(r *rand.Rand, n int) string {
	lines := []string{
		"func (s *Server) handle(w http.ResponseWriter, r *http.Request) {",
		"\tif err := s.db.QueryRowContext(ctx, \"SELECT id, name FROM users WHERE id = $1\", id).Scan(&u.ID, &u.Name); err != nil {",
		"\t\treturn fmt.Errorf(\"load user %d: %w\", id, err)",
		"\t}",
		"// The retry loop backs off exponentially; see DESIGN.md for the budget.",
		"    logger.info(\"processed %d records in %.2fs\", count, elapsed)",
		"const config = { region: 'eu-west-1', retries: 3, timeoutMs: 2500 };",
		"Let me check the failing test first, then look at the handler.",
		"I ran `go test ./...` and three packages failed with \"connection refused\".",
		"}",
	}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(lines[r.IntN(len(lines))])
		b.WriteByte('\n')
	}
	return b.String()[:n]
}

// anthropic64KB builds an Anthropic Messages body of about size bytes with
// three secrets in it, shaped like a coding agent's request.
func anthropicBody(size int) []byte {
	r := rand.New(rand.NewPCG(42, 43))
	sec := plantedSecrets()
	type block = map[string]any
	var msgs []any
	total := 0
	turn := 0
	for total < size-4000 {
		txt := codeText(r, 1500+r.IntN(1500))
		total += len(txt) + 200
		switch turn % 3 {
		case 0:
			msgs = append(msgs, block{"role": "user", "content": txt})
		case 1:
			msgs = append(msgs, block{"role": "assistant", "content": []any{
				block{"type": "text", "text": txt[:len(txt)/2]},
				block{"type": "tool_use", "id": fmt.Sprintf("toolu_%024d", turn), "name": "Bash",
					"input": block{"command": "cat main.go", "description": txt[len(txt)/2:]}},
			}})
		case 2:
			msgs = append(msgs, block{"role": "user", "content": []any{
				block{"type": "tool_result", "tool_use_id": fmt.Sprintf("toolu_%024d", turn-1), "content": txt},
			}})
		}
		turn++
	}
	// Three secrets: in the first user message, a tool result, the last message.
	msgs[0].(block)["content"] = msgs[0].(block)["content"].(string) + "\nexport ANTHROPIC_API_KEY=" + sec["{{ANTHROPIC_KEY}}"] + "\n"
	msgs = append(msgs, block{"role": "user", "content": "AWS_ACCESS_KEY_ID=" + sec["{{AWS_KEY_ID}}"] + "\nDATABASE_URL=postgres://app:" + sec["{{DB_PASSWORD}}"] + "@db.internal:5432/prod\nwhy does this fail?"})
	body := block{
		"model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "stream": true,
		"system":   []any{block{"type": "text", "text": codeText(r, 2500), "cache_control": block{"type": "ephemeral"}}},
		"messages": msgs,
		"metadata": block{"user_id": "user_abc_account_6f0b1f4e-3b8a-4d53-9a3e-2f6f5b1c7d20_session_0c9e7f1a-5b2d-4e8c-a1f3-7d6b5c4e3a21"},
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return b
}

func openAIBody(size int) []byte {
	r := rand.New(rand.NewPCG(44, 45))
	sec := plantedSecrets()
	var msgs []any
	total := 0
	for i := 0; total < size-3000; i++ {
		txt := codeText(r, 1500+r.IntN(1500))
		total += len(txt) + 150
		switch i % 3 {
		case 0:
			msgs = append(msgs, map[string]any{"role": "user", "content": txt})
		case 1:
			args, _ := json.Marshal(map[string]any{"path": "main.go", "content": txt})
			msgs = append(msgs, map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{
				map[string]any{"id": fmt.Sprintf("call_%020d", i), "type": "function", "function": map[string]any{"name": "write_file", "arguments": string(args)}},
			}})
		case 2:
			msgs = append(msgs, map[string]any{"role": "tool", "tool_call_id": fmt.Sprintf("call_%020d", i-1), "content": txt})
		}
	}
	msgs = append(msgs, map[string]any{"role": "user", "content": "key " + sec["{{ANTHROPIC_KEY}}"] + " and " + sec["{{AWS_KEY_ID}}"] + " and postgres://app:" + sec["{{DB_PASSWORD}}"] + "@db.internal:5432/prod"})
	b, _ := json.Marshal(map[string]any{"model": "gpt-4.1", "stream": true, "messages": msgs})
	return b
}

func TestBenchBodies(t *testing.T) {
	for name, b := range map[string][]byte{"anthropic": anthropicBody(64 << 10), "openai": openAIBody(64 << 10)} {
		route := Route{Provider: Anthropic, Operation: OpMessages}
		if name == "openai" {
			route = Route{Provider: OpenAI, Operation: OpChatCompletions}
		}
		req, err := ParseRequest(route, b)
		if err != nil {
			t.Fatal(err)
		}
		out, dets, err := req.Tokenize(token.Tokenizer{Engine: testEngine(t)}, testVault(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(dets) != 3 {
			t.Errorf("%s: %d detections, want 3: %s", name, len(dets), formatDets(dets))
		}
		plantedSecrets().assertNoSecret(t, out)
		if len(b) < 60<<10 || len(b) > 70<<10 {
			t.Errorf("%s body is %d bytes", name, len(b))
		}
	}
}

func benchTokenize(b *testing.B, route Route, body []byte) {
	eng := testEngine(b)
	v := testVault(b)
	tk := token.Tokenizer{Engine: eng}
	dst := make([]byte, 0, len(body)*2)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := ParseRequest(route, body)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := req.Tokenize(tk, v, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenizeAnthropic64KB(b *testing.B) {
	benchTokenize(b, Route{Provider: Anthropic, Operation: OpMessages}, anthropicBody(64<<10))
}

func BenchmarkTokenizeOpenAI64KB(b *testing.B) {
	benchTokenize(b, Route{Provider: OpenAI, Operation: OpChatCompletions}, openAIBody(64<<10))
}

func BenchmarkTokenizeGeneric64KB(b *testing.B) {
	benchTokenize(b, Route{Provider: OpenAI, Operation: OpGeneric}, anthropicBody(64<<10))
}

// BenchmarkParseAnthropic64KB is the validation and classification pass
// alone.
func BenchmarkParseAnthropic64KB(b *testing.B) {
	body := anthropicBody(64 << 10)
	route := Route{Provider: Anthropic, Operation: OpMessages}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(route, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDetectOnly64KB runs the engine once over the whole body: the
// floor for any per-string scheme.
func BenchmarkDetectOnly64KB(b *testing.B) {
	body := anthropicBody(64 << 10)
	eng := testEngine(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = eng.Detect(body)
	}
}

// BenchmarkBaselineClone64KB is the cost of one copy of the body.
func BenchmarkBaselineClone64KB(b *testing.B) {
	body := anthropicBody(64 << 10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = bytes.Clone(body)
	}
}

// sseBody is an Anthropic stream of n text deltas, some with tokens.
func sseBody(tok string, n int) []byte {
	var b bytes.Buffer
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\"}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for i := range n {
		txt := "some streamed text of a typical length, with code `x := y` "
		switch i % 50 {
		case 0:
			txt = "the key is " + tok[:10]
		case 1:
			txt = tok[10:] + " ok "
		}
		fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n", txt)
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return b.Bytes()
}

func BenchmarkSSERehydrate(b *testing.B) {
	v, toks := streamVault(b)
	body := sseBody(toks[1], 2000)
	route := Route{Provider: Anthropic, Operation: OpMessages}
	const chunk = 1024
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rw := NewResponseRewriter(route, RequestInfo{Provider: Anthropic}, 200, "text/event-stream", v)
		for i := 0; i < len(body); i += chunk {
			end := min(i+chunk, len(body))
			if _, err := rw.Write(body[i:end], end == len(body)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkResponseJSON(b *testing.B) {
	v, toks := streamVault(b)
	var sb strings.Builder
	sb.WriteString(`{"id":"msg_1","type":"message","role":"assistant","content":[`)
	for i := range 200 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"type":"text","text":"line %d of the answer, with %s in it"}`, i, toks[i%3])
	}
	sb.WriteString(`],"stop_reason":"end_turn"}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rw := NewResponseRewriter(Route{Provider: Anthropic, Operation: OpMessages}, RequestInfo{Provider: Anthropic}, 200, "application/json", v)
		if _, err := rw.Write(body, true); err != nil {
			b.Fatal(err)
		}
	}
}
