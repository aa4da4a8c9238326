package extproc

import (
	"strconv"
	"strings"
	"testing"
)

// anthropic64KB is a 64 KB Anthropic Messages request: source code with
// three planted secrets, as a coding tool sends it.
func anthropic64KB() []byte {
	var code strings.Builder
	code.WriteString("Please review this module.\n\n```go\npackage store\n\n")
	line := "func handler%d(w http.ResponseWriter, r *http.Request) { if err := db.QueryRowContext(r.Context(), \"SELECT 1\").Err(); err != nil { http.Error(w, err.Error(), 500) } }\n"
	for i := 0; code.Len() < 63<<10; i++ {
		code.WriteString(strings.Replace(line, "%d", strconv.Itoa(i), 1))
		switch i {
		case 40:
			code.WriteString("// aws_access_key_id = " + awsKeyID + "\n")
		case 200:
			code.WriteString("const token = \"" + ghToken + "\"\n")
		case 350:
			code.WriteString("var dsn = \"" + pgURL + "\"\n")
		}
	}
	code.WriteString("```\n")
	return []byte(`{"model":"claude-sonnet-4-5","max_tokens":4096,"system":"You are a careful reviewer.",` +
		`"messages":[{"role":"user","content":[{"type":"text","text":` + jsonString(code.String()) + `}]}]}`)
}

// BenchmarkBufferedExchange64KB is one full BUFFERED exchange (request
// headers, a 64 KB body with 3 secrets, response headers, a JSON reply
// with the 3 tokens) over an in-memory gRPC connection.
func BenchmarkBufferedExchange64KB(b *testing.B) {
	h := newHarness(b)
	body := anthropic64KB()
	// One warm-up exchange learns the tokens (the session keeps them).
	toks := func() []string {
		ex := h.open(b)
		ex.roundTrip(postHeaders("/v1/messages", body, "x-api-key", testKey, "x-takumo-session", "bench"))
		r := ex.roundTrip(reqBody(body))
		ex.cancel()
		_ = ex.end()
		return tokensIn(r.GetRequestBody().GetResponse().GetBodyMutation().GetBody())
	}()
	if len(toks) != 3 {
		b.Fatalf("tokens: %v", toks)
	}
	reply := []byte(`{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Rotate ` +
		strings.Join(toks, ", ") + `."}],"stop_reason":"end_turn","usage":{"input_tokens":16000,"output_tokens":40}}`)
	hdrs := postHeaders("/v1/messages", body, "x-api-key", testKey, "x-takumo-session", "bench")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ex := h.open(b)
		ex.roundTrip(hdrs)
		r := ex.roundTrip(reqBody(body))
		if r.GetRequestBody() == nil {
			b.Fatalf("got %v", r)
		}
		ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "application/json"))
		ex.roundTrip(respBody(reply, true))
		if err := ex.end(); err != nil {
			b.Fatal(err)
		}
		ex.cancel()
	}
}
