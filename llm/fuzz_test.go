package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sort"
	"testing"
	"unicode/utf8"

	"github.com/takumo/aegis/token"
)

var fuzzRoutes = []Route{
	{Provider: Anthropic, Operation: OpMessages},
	{Provider: OpenAI, Operation: OpChatCompletions},
	{Provider: OpenAI, Operation: OpResponses},
	{Provider: Gemini, Operation: OpStreamGenerateContent},
	{Provider: OpenAI, Operation: OpGeneric},
}

// FuzzSSEChunking: any chunking of a stream gives the output of one chunk.
func FuzzSSEChunking(f *testing.F) {
	_, toks := streamVault(f)
	for i, fx := range sseFixtures {
		f.Add(fillTokens(f, readTestdata(f, "sse/"+fx.file), toks), uint8(i), uint64(i))
	}
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"__TAKUMO_v1_SECRET_\"}}]}\r\n\r\ndata: [DONE]\r\n\r\n"), uint8(1), uint64(7))
	f.Fuzz(func(t *testing.T, in []byte, r uint8, seed uint64) {
		v, _ := streamVault(t)
		route := fuzzRoutes[int(r)%len(fuzzRoutes)]
		whole, _ := sseRewrite(t, route, v, in)
		rng := rand.New(rand.NewPCG(seed, 1))
		cuts := []int{0, len(in)}
		for range rng.IntN(10) {
			cuts = append(cuts, rng.IntN(len(in)+1))
		}
		sort.Ints(cuts)
		var cs [][]byte
		for i := 1; i < len(cuts); i++ {
			cs = append(cs, in[cuts[i-1]:cuts[i]])
		}
		got, _ := sseRewrite(t, route, v, cs...)
		if !bytes.Equal(got, whole) {
			t.Fatalf("cuts %v: chunked output differs\n got %q\nwant %q", cuts, got, whole)
		}
		// Events whose data was JSON stay JSON.
		inEvents := 0
		for _, ev := range parseSSE(in) {
			if ev == "[DONE]" || json.Valid([]byte(ev)) {
				inEvents++
			}
		}
		if inEvents == len(parseSSE(in)) {
			for _, ev := range parseSSE(whole) {
				if ev != "[DONE]" && !json.Valid([]byte(ev)) {
					t.Fatalf("event became invalid JSON: %q", ev)
				}
			}
		}
	})
}

// FuzzTokenizeRequest: no crash; a body accepted is valid JSON and so is
// the output; a valid JSON object is accepted.
func FuzzTokenizeRequest(f *testing.F) {
	sec := plantedSecrets()
	for i, fx := range requestFixtures {
		f.Add(sec.fill(readTestdata(f, "requests/"+fx.file)), uint8(i))
	}
	f.Add([]byte(`{"messages":[{"role":"user","content":"k=\u0041KIA\"x\\"}]}`), uint8(0))
	f.Add([]byte(`{"messages":[{"tool_calls":[{"function":{"arguments":"{\"a\":\"sk-ant-api03-x\\\\\"}"}}]}]}`), uint8(1))
	eng := testEngine(f)
	f.Fuzz(func(t *testing.T, body []byte, r uint8) {
		route := fuzzRoutes[int(r)%len(fuzzRoutes)]
		req, err := ParseRequest(route, body)
		valid := json.Valid(body) && utf8.Valid(body)
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RequestError", err)
			}
			if valid && len(trimmed) > 0 && trimmed[0] == '{' && bytes.Count(body, []byte("{"))+bytes.Count(body, []byte("[")) < maxDepth {
				t.Fatalf("valid JSON object refused: %v", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON")
		}
		v := testVault(t)
		out, _, err := req.Tokenize(token.Tokenizer{Engine: eng}, v, nil)
		if err != nil {
			return // vault full and the like: an error, never a pass-through
		}
		if !json.Valid(out) {
			t.Fatalf("output is not JSON:\n%q\nfrom\n%q", out, body)
		}
		if utf8.Valid(body) {
			assertSameModuloTokens(t, v, body, out)
		}
	})
}

// FuzzResponseJSON: a JSON body stays JSON after rehydration, in one chunk
// or in many.
func FuzzResponseJSON(f *testing.F) {
	_, toks := streamVault(f)
	f.Add(fillTokens(f, []byte(`{"choices":[{"message":{"content":"{{T1}}","tool_calls":[{"function":{"arguments":"{\"p\":\"{{T1}}\",\"d\":\"{{T3}}\"}"}}]}}]}`), toks), uint8(1), uint8(3))
	f.Add(fillTokens(f, []byte(`{"content":[{"type":"tool_use","input":{"arguments":"{{T2md}}","x":["{{T3}}"]}}]}`), toks), uint8(0), uint8(5))
	f.Add([]byte(`{"arguments":"[\"__TAKUMO_v1_KEY_0000\"]"}`), uint8(4), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, r, step uint8) {
		v, _ := streamVault(t)
		route := fuzzRoutes[int(r)%len(fuzzRoutes)]
		rw := NewResponseRewriter(route, RequestInfo{Provider: route.Provider}, 200, "application/json", v)
		n := int(step) + 1
		var out []byte
		for i := 0; i < len(body); i += n {
			b, _ := rw.Write(body[i:min(i+n, len(body))], false)
			out = append(out, b...)
		}
		b, _ := rw.Write(nil, true)
		out = append(out, b...)
		if json.Valid(body) && utf8.Valid(body) && !json.Valid(out) {
			t.Fatalf("output is not JSON:\n%q\nfrom\n%q", out, body)
		}
	})
}
