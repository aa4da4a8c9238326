package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/takumo/aegis/token"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking)\ngot:\n%s", name, got)
	}
}

var requestFixtures = []struct {
	file, method, path string
	info               RequestInfo
}{
	{"anthropic_messages.json", "POST", "/v1/v1/messages?beta=true", RequestInfo{
		Provider: Anthropic, Model: "claude-sonnet-4-5-20250929", Stream: true,
		Session: "0c9e7f1a-5b2d-4e8c-a1f3-7d6b5c4e3a21"}},
	{"openai_chat.json", "POST", "/v1/chat/completions", RequestInfo{
		Provider: OpenAI, Model: "gpt-4.1", Stream: true, Session: "session-7f3a"}},
	{"openai_responses.json", "POST", "/v1/responses", RequestInfo{
		Provider: OpenAI, Model: "gpt-5", Stream: true, Session: "0c9e7f1a-5b2d-4e8c-a1f3-7d6b5c4e3a21",
		PreviousResponseID: "resp_68af2c1e9b0c8190a1b2c3d4e5f60718"}},
	{"gemini_generate.json", "POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", RequestInfo{
		Provider: Gemini, Model: "gemini-2.5-pro", Stream: true}},
	{"generic_embeddings.json", "POST", "/v1/embeddings", RequestInfo{
		Provider: OpenAI, Model: "text-embedding-3-small"}},
	{"mistral_chat.json", "POST", "/v1/chat/completions", RequestInfo{
		Provider: Mistral, Model: "mistral-large-latest"}},
}

func TestTokenizeFixtures(t *testing.T) {
	sec := plantedSecrets()
	eng := testEngine(t)
	for _, fx := range requestFixtures {
		t.Run(fx.file, func(t *testing.T) {
			orig := sec.fill(readTestdata(t, "requests/"+fx.file))
			route, err := Resolve(fx.method, fx.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req, err := ParseRequest(route, orig)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Info(); got != fx.info {
				t.Errorf("Info() = %+v\nwant %+v", got, fx.info)
			}
			v := testVault(t)
			prefix := []byte("prefix:")
			out, dets, err := req.Tokenize(token.Tokenizer{Engine: eng}, v, prefix)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatal("output does not extend dst")
			}
			out = out[len(prefix):]
			sec.assertNoSecret(t, out)
			if !json.Valid(out) {
				t.Fatalf("output is not valid JSON:\n%s", out)
			}
			assertSameModuloTokens(t, v, orig, out)
			assertBlobsKept(t, orig, out)
			for _, d := range dets {
				if d.Token == "" || d.Field == "" || d.Line < 1 {
					t.Errorf("incomplete detection %+v", d)
				}
			}
			golden(t, "requests/"+strings.TrimSuffix(fx.file, ".json")+".out.json", out)
			golden(t, "requests/"+strings.TrimSuffix(fx.file, ".json")+".dets.txt", formatDets(dets))
		})
	}
}

func formatDets(ds []Detection) []byte {
	var b bytes.Buffer
	for _, d := range ds {
		fmt.Fprintf(&b, "%s line %d [%d,%d) %s %s %s %s\n", d.Field, d.Line, d.Start, d.End, d.RuleID, d.Category, d.Action, d.Token)
	}
	return b.Bytes()
}

// assertSameModuloTokens checks that out decodes to the structure of orig
// once every token in every decoded string is put back.
func assertSameModuloTokens(t *testing.T, v *token.Vault, orig, out []byte) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(orig, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	b = mapStrings(b, func(s string) string {
		r, _ := token.Rehydrate(v, []byte(s), token.Raw)
		return string(r)
	})
	if !reflect.DeepEqual(a, b) {
		t.Errorf("output does not decode to the input once rehydrated")
	}
}

func mapStrings(x any, f func(string) string) any {
	switch x := x.(type) {
	case string:
		return f(x)
	case []any:
		for i := range x {
			x[i] = mapStrings(x[i], f)
		}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[f(k)] = mapStrings(v, f)
		}
		return m
	}
	return x
}

var blobRE = regexp.MustCompile(`"((?:data:[a-z/]+;base64,)?[A-Za-z0-9+/=]{300,})"`)

// assertBlobsKept checks that every base64 blob of orig is in out, byte
// for byte.
func assertBlobsKept(t *testing.T, orig, out []byte) {
	t.Helper()
	n := 0
	for _, m := range blobRE.FindAllSubmatch(orig, -1) {
		n++
		if !bytes.Contains(out, m[1]) {
			t.Errorf("blob of %d bytes changed", len(m[1]))
		}
	}
	if n == 0 && bytes.Contains(orig, []byte("base64")) {
		t.Error("fixture has base64 data but no blob was checked")
	}
}

func TestParseRequestErrors(t *testing.T) {
	route := Route{Provider: Anthropic, Operation: OpMessages, Path: "/v1/messages"}
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	deepArr := `{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "}"
	huge := `{"model":"x","messages":[{"role":"user","content":"` + strings.Repeat("a", 4<<20)
	tests := []struct {
		name string
		body string
		msg  string // substring of the message
	}{
		{"empty", "", "empty body"},
		{"spaces", "  \n", "empty body"},
		{"not JSON", "hello", "must be a JSON object"},
		{"array at top", `[{"model":"x"}]`, "must be a JSON object"},
		{"string at top", `"x"`, "must be a JSON object"},
		{"truncated", `{"model":"claude","messages":[{"role":"user","content":"hi"}`, "unexpected end"},
		{"truncated in string", `{"model":"clau`, "unterminated string"},
		{"trailing data", `{"a":1} {"b":2}`, "after the JSON value at byte offset 8"},
		{"depth 10000", deep, "nested deeper than 256"},
		{"array depth 300", deepArr, "nested deeper than 256"},
		{"invalid UTF-8", "{\"model\":\"x\",\"system\":\"caf\xc3\x28\"}", "invalid UTF-8 in a JSON string at byte offset 26"},
		{"invalid UTF-8 in key", "{\"mo\xffdel\":\"x\"}", "invalid UTF-8 in a JSON string at byte offset 4"},
		{"control char", "{\"a\":\"x\ny\"}", "control character in a JSON string at byte offset 7"},
		{"bad escape", `{"a":"\x41"}`, "invalid escape"},
		{"bad unicode escape", `{"a":"\u12G4"}`, "invalid \\u escape"},
		{"bad number", `{"a":01}`, "expected ',' or '}'"},
		{"bad number 2", `{"a":1.}`, "invalid number"},
		{"bad literal", `{"a":tru}`, "invalid value"},
		{"missing colon", `{"a" 1}`, "expected ':'"},
		{"missing comma", `{"a":1 "b":2}`, "expected ',' or '}'"},
		{"trailing comma", `{"a":1,}`, "expected a member name"},
		{"huge unterminated string", huge, "unterminated string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRequest(route, []byte(tt.body))
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RequestError", err)
			}
			if !strings.Contains(re.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", re.Msg, tt.msg)
			}
			if len(re.Msg) > 120 {
				t.Errorf("message too long (%d bytes): body content may leak", len(re.Msg))
			}
		})
	}
}

func TestParseRequestAcceptsValid(t *testing.T) {
	route := Route{Provider: OpenAI, Operation: OpGeneric, Path: "/v1/x"}
	huge := `{"input":"` + strings.Repeat("ab ", 2<<20) + `"}`
	for _, body := range []string{
		`{}`, ` {"a":[]} `, `{"a":{}}`, `{"a":[1,-2.5e+3,0,0.1,true,false,null,"x",{"b":[]}]}`,
		`{"a":"\ud83d\ude00 \u00e9 \" \\ \/ \b\f\n\r\t"}`, huge,
		`{"a":` + strings.Repeat("[", 255) + strings.Repeat("]", 255) + `}`,
	} {
		if _, err := ParseRequest(route, []byte(body)); err != nil {
			t.Errorf("ParseRequest(%.40q): %v", body, err)
		}
		if !json.Valid([]byte(body)) {
			t.Errorf("test body %.40q is not valid JSON", body)
		}
	}
}

func TestSessionFromUserID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"user_abc123_account_6f0b1f4e-3b8a-4d53-9a3e-2f6f5b1c7d20_session_0c9e7f1a-5b2d-4e8c-a1f3-7d6b5c4e3a21", "0c9e7f1a-5b2d-4e8c-a1f3-7d6b5c4e3a21"},
		{`{"device_id":"d1","account_uuid":"a1","session_id":"s-42"}`, "s-42"},
		{"plain-user", "plain-user"},
		{"user_x_session_", "user_x_session_"},
	}
	for _, tt := range tests {
		if got := sessionFromUserID(tt.in); got != tt.want {
			t.Errorf("sessionFromUserID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestInfoSessionPrecedence(t *testing.T) {
	route := Route{Provider: OpenAI, Operation: OpChatCompletions}
	tests := []struct {
		body string
		want string
	}{
		{`{"user":"u1","prompt_cache_key":"k1"}`, "k1"},
		{`{"prompt_cache_key":"k1","user":"u1"}`, "k1"},
		{`{"user":"u1"}`, "u1"},
		{`{"messages":[{"role":"user","content":"x","user":"nested"}]}`, ""},
	}
	for _, tt := range tests {
		req, err := ParseRequest(route, []byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if got := req.Info().Session; got != tt.want {
			t.Errorf("%s: session %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestInfoProviderRefinement(t *testing.T) {
	body := []byte(`{"model":"codestral-latest","messages":[{"role":"user","content":"hi"}]}`)
	tests := []struct {
		path string
		want Provider
	}{
		{"/v1/chat/completions", Mistral},
		{"/openai/v1/chat/completions", OpenAI}, // an explicit prefix wins
		{"/mistral/v1/chat/completions", Mistral},
	}
	for _, tt := range tests {
		route, err := Resolve("POST", tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req, err := ParseRequest(route, body)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.Info().Provider; got != tt.want {
			t.Errorf("%s: provider %s, want %s", tt.path, got, tt.want)
		}
	}
}

func TestTokenizeShapes(t *testing.T) {
	sec := plantedSecrets()
	key := sec["{{ANTHROPIC_KEY}}"]
	tests := []struct {
		name, path, body, field string
	}{
		{"responses input string", "/v1/responses", `{"model":"gpt-5","input":"key ` + key + `"}`, "input"},
		{"responses instructions", "/v1/responses", `{"model":"gpt-5","instructions":"key ` + key + `","input":[]}`, "instructions"},
		{"responses function_call_output", "/v1/responses", `{"input":[{"type":"function_call_output","call_id":"c","output":"` + key + `"}]}`, "input[0].output"},
		{"gemini countTokens wraps a request", "/v1beta/models/gemini-2.5-pro:countTokens",
			`{"generateContentRequest":{"model":"models/gemini-2.5-pro","contents":[{"role":"user","parts":[{"text":"` + key + `"}]}]}}`,
			"generateContentRequest.contents[0].parts[0].text"},
		{"gemini snake case", "/v1beta/models/gemini-2.5-pro:generateContent",
			`{"system_instruction":{"parts":[{"text":"` + key + `"}]},"contents":[]}`, "system_instruction.parts[0].text"},
		{"anthropic count_tokens", "/v1/messages/count_tokens", `{"model":"claude","system":"` + key + `","messages":[]}`, "system"},
		{"mistral fim", "/v1/fim/completions", `{"model":"codestral-latest","prompt":"def f():\n  k = '` + key + `'","suffix":"return k"}`, "prompt"},
		{"mistral agents", "/v1/agents/completions", `{"agent_id":"ag_1","messages":[{"role":"user","content":"` + key + `"}]}`, "messages[0].content"},
	}
	eng := testEngine(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route, err := Resolve("POST", tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, dets, err := tokenizeBody(t, eng, testVault(t), route, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte(key)) || len(dets) != 1 || dets[0].Field != tt.field {
				t.Errorf("dets %s, output %s", formatDets(dets), out)
			}
		})
	}
}
