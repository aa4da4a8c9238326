package llm

import (
	"encoding/json"
	"strings"
	"testing"
)

// geminiArray turns the Gemini SSE fixture into the body Gemini sends
// without alt=sse: one JSON array, elements separated as Gemini does.
func geminiArray(events []string) []byte {
	return []byte("[" + strings.Join(events, "\r\n,\r\n") + "\n]")
}

// arrayAsSSE turns a rewritten array back into events, so the SSE checks
// apply to it.
func arrayAsSSE(t *testing.T, out []byte) []byte {
	t.Helper()
	var elems []json.RawMessage
	if err := json.Unmarshal(out, &elems); err != nil {
		t.Fatalf("the rewritten body is not a JSON array: %v\n%s", err, out)
	}
	var b strings.Builder
	for _, e := range elems {
		b.WriteString("data: ")
		b.Write(e)
		b.WriteString("\n\n")
	}
	return []byte(b.String())
}

func TestGeminiStreamedArray(t *testing.T) {
	route, err := Resolve("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !StreamedJSON(route, 200, "application/json; charset=UTF-8") || StreamedJSON(route, 400, "application/json") {
		t.Fatal("StreamedJSON: want true for a 200 JSON stream only")
	}
	v, toks := streamVault(t)
	sseIn := fillTokens(t, readTestdata(t, "sse/gemini.sse"), toks)
	in := geminiArray(parseSSE(sseIn))
	rw := NewResponseRewriter(route, RequestInfo{Provider: Gemini}, 200, "application/json; charset=UTF-8", v)
	if _, ok := rw.(*geminiArrayRewriter); !ok {
		t.Fatalf("rewriter %T, want the streamed array one", rw)
	}
	out, err := rw.Write(in, true)
	if err != nil {
		t.Fatal(err)
	}
	checkStream(t, Gemini, v, toks, sseIn, arrayAsSSE(t, out))
	if rw.Stats().Replaced == 0 {
		t.Error("Stats.Replaced = 0")
	}
	// Element by element: every split of the body gives the same output,
	// and a complete element goes out as soon as it is complete.
	for _, n := range []int{1, 2, 3, 7, 16, 61, 200} {
		rw := NewResponseRewriter(route, RequestInfo{Provider: Gemini}, 200, "application/json", v)
		var got []byte
		for i := 0; i < len(in); i += n {
			end := min(len(in), i+n)
			b, err := rw.Write(in[i:end], end == len(in))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, b...)
		}
		if string(got) != string(out) {
			t.Fatalf("chunks of %d give another output:\n%s\nwant\n%s", n, got, out)
		}
	}
	first := strings.Index(string(in), "\r\n,")
	rw = NewResponseRewriter(route, RequestInfo{Provider: Gemini}, 200, "application/json", v)
	b, _ := rw.Write(in[:first+1], false)
	if !strings.HasPrefix(string(b), "[{") || !strings.HasSuffix(string(b), "}") {
		t.Fatalf("the first element did not go out when complete: %q", b)
	}
}

func TestGeminiStreamedArrayOddBodies(t *testing.T) {
	route, err := Resolve("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, toks := streamVault(t)
	cases := map[string]struct{ in, want string }{
		"an error object": {`{"error":{"code":400,"message":"bad ` + toks[0] + `"}}`, "not-array"},
		"empty array":     {"[]", "[]"},
		"cut mid-element": {`[{"candidates":[{"content":{"parts":[{"text":"x"}]}}]}` + "\r\n,\r\n" + `{"candidates":[`, "cut"},
		"nested brackets": {`[{"a":[1,{"b":"]}"}],"candidates":[{"content":{"parts":[{"text":"ok"}]},"index":0}]}]`, "[{"},
		"escaped quotes":  {`[{"candidates":[{"content":{"parts":[{"text":"a\"}]\\"}]},"index":0}]}]`, "[{"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rw := NewResponseRewriter(route, RequestInfo{Provider: Gemini}, 200, "application/json", v)
			out, err := rw.Write([]byte(tc.in), true)
			if err != nil {
				t.Fatal(err)
			}
			switch tc.want {
			case "not-array":
				if strings.Contains(string(out), toks[0]) || !json.Valid(out) {
					t.Fatalf("error body not rehydrated whole: %s", out)
				}
			case "cut":
				if !strings.HasPrefix(string(out), `[{"candidates"`) {
					t.Fatalf("cut body: %s", out)
				}
			default:
				if !json.Valid(out) || !strings.HasPrefix(string(out), tc.want) {
					t.Fatalf("output %s", out)
				}
			}
		})
	}
}

// FuzzGeminiArrayChunking cuts the streamed array at two fuzzed points:
// the output is the same as in one piece, whatever the cuts.
func FuzzGeminiArrayChunking(f *testing.F) {
	f.Add(uint16(1), uint16(2))
	f.Add(uint16(37), uint16(400))
	f.Add(uint16(0), uint16(9999))
	route, err := Resolve("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", nil)
	if err != nil {
		f.Fatal(err)
	}
	v, toks := streamVault(f)
	in := geminiArray(parseSSE(fillTokens(f, readTestdata(f, "sse/gemini.sse"), toks)))
	want, err := NewResponseRewriter(route, RequestInfo{Provider: Gemini}, 200, "application/json", v).Write(in, true)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b uint16) {
		i, j := int(a)%(len(in)+1), int(b)%(len(in)+1)
		if i > j {
			i, j = j, i
		}
		rw := NewResponseRewriter(route, RequestInfo{Provider: Gemini}, 200, "application/json", v)
		var got []byte
		for _, part := range [][2]int{{0, i}, {i, j}, {j, len(in)}} {
			out, err := rw.Write(in[part[0]:part[1]], part[1] == len(in) && part[0] == j)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, out...)
		}
		if string(got) != string(want) {
			t.Fatalf("cuts at %d and %d change the output", i, j)
		}
	})
}
