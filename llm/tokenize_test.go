package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/token"
)

func tokenizeBody(t *testing.T, eng *detect.Engine, v *token.Vault, route Route, body string) ([]byte, []Detection, error) {
	t.Helper()
	req, err := ParseRequest(route, []byte(body))
	if err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	return req.Tokenize(token.Tokenizer{Engine: eng}, v, nil)
}

func TestTokenizeCases(t *testing.T) {
	sec := plantedSecrets()
	key, aws := sec["{{ANTHROPIC_KEY}}"], sec["{{AWS_KEY_ID}}"]
	anth := Route{Provider: Anthropic, Operation: OpMessages}
	chat := Route{Provider: OpenAI, Operation: OpChatCompletions}
	gen := Route{Provider: OpenAI, Operation: OpGeneric}
	blob := strings.Repeat("QUJD", 100) + aws + strings.Repeat("REVG", 100)
	tests := []struct {
		name  string
		route Route
		body  string
		gone  []string // must not be in the output
		kept  []string // must be in the output, byte for byte
		field []string // detection fields, in order
		line  []int
	}{
		{
			name: "escaped quotes and newlines around a key", route: anth,
			body: `{"messages":[{"role":"user","content":"line one\nline two\nexport K=\"` + key + `\"\n"}]}`,
			gone: []string{key}, kept: []string{`line one\nline two\nexport K=\"__TAKUMO_v1_KEY_`},
			field: []string{"messages[0].content"}, line: []int{3},
		},
		{
			name: "unicode escape inside the secret", route: anth,
			body: `{"messages":[{"role":"user","content":"aws \u0041` + aws[1:] + ` ok"}]}`,
			gone: []string{aws[1:]}, kept: []string{`"aws __TAKUMO_v1_KEY_`, `__ ok"`},
			field: []string{"messages[0].content"}, line: []int{1},
		},
		{
			name: "ids, signatures, redacted thinking, model and image data untouched", route: anth,
			body: `{"model":"` + aws + `","messages":[{"role":"assistant","content":[` +
				`{"type":"thinking","thinking":"x","signature":"` + aws + `"},` +
				`{"type":"redacted_thinking","data":"` + aws + `"},` +
				`{"type":"tool_use","id":"` + aws + `","name":"` + aws + `","input":{"k":"` + aws + `"}},` +
				`{"type":"image","source":{"data":"` + aws + `","media_type":"image/png","type":"base64"}}]}]}`,
			kept:  []string{`"model":"` + aws, `"signature":"` + aws, `"data":"` + aws + `"},{"type":"tool_use","id":"` + aws + `","name":"` + aws + `","input":{"k":"__TAKUMO`, `"source":{"data":"` + aws},
			field: []string{"messages[0].content[2].input.k"}, line: []int{1},
		},
		{
			name: "member names in tool inputs and free-form data are data", route: anth,
			body:  `{"metadata":{"tags":{"` + key + `":"x"}},"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"env":{"` + aws + `":"` + key + `"}}}]}]}`,
			gone:  []string{aws, key},
			kept:  []string{`"input":{"env":{"__TAKUMO_v1_KEY_`},
			field: []string{"metadata.tags.*", "messages[0].content[0].input.env.*", "messages[0].content[0].input.env.*"}, line: []int{1, 1, 1},
		},
		{
			name: "document text source is prose, whatever the member order", route: anth,
			body:  `{"messages":[{"role":"user","content":[{"type":"document","source":{"data":"k ` + aws + `","type":"text","media_type":"text/plain"}}]}]}`,
			gone:  []string{aws},
			field: []string{"messages[0].content[0].source.data"}, line: []int{1},
		},
		{
			name: "tool descriptions and schema descriptions, not names or types", route: anth,
			body:  `{"tools":[{"name":"` + aws + `","description":"uses ` + aws + `","input_schema":{"type":"object","properties":{"` + aws + `":{"type":"string","description":"default ` + key + `"}},"required":["` + aws + `"]}}],"messages":[]}`,
			kept:  []string{`"name":"` + aws, `"properties":{"` + aws, `"required":["` + aws},
			gone:  []string{key},
			field: []string{"tools[0].description", "tools[0].input_schema.properties." + aws + ".description"}, line: []int{1, 1},
		},
		{
			name: "arguments that are not JSON are text", route: chat,
			body:  `{"messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"key=` + key + `"}}]}]}`,
			gone:  []string{key},
			field: []string{"messages[0].tool_calls[0].function.arguments"}, line: []int{1},
		},
		{
			name: "arguments with escapes at both levels", route: chat,
			body:  `{"messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"cmd\":\"echo \\\"` + key + `\\\"\\n\",\"n\":1}"}}]}]}`,
			gone:  []string{key},
			kept:  []string{`"arguments":"{\"cmd\":\"echo \\\"__TAKUMO_v1_KEY_`, `__\\\"\\n\",\"n\":1}"`},
			field: []string{"messages[0].tool_calls[0].function.arguments"}, line: []int{1},
		},
		{
			name: "image_url and audio data untouched, text tokenized", route: chat,
			body:  `{"messages":[{"role":"user","name":"` + aws + `","content":[{"type":"text","text":"` + aws + `"},{"type":"image_url","image_url":{"url":"https://x/` + aws + `"}},{"type":"input_audio","input_audio":{"data":"` + aws + `","format":"wav"}}]}]}`,
			kept:  []string{`"name":"` + aws, `"url":"https://x/` + aws, `"input_audio":{"data":"` + aws},
			field: []string{"messages[0].content[0].text"}, line: []int{1},
		},
		{
			name: "generic: ids and types kept, base64 blobs kept, everything else tokenized", route: gen,
			body:  `{"model":"m","id":"` + aws + `","file_id":"` + aws + `","type":"` + aws + `","role":"` + aws + `","blob":"` + blob + `","uri":"data:image/png;base64,` + aws + `","deep":{"x":["` + aws + `"]}}`,
			kept:  []string{`"id":"` + aws, `"file_id":"` + aws, `"type":"` + aws, `"role":"` + aws, blob, `base64,` + aws},
			field: []string{"deep.x[0]"}, line: []int{1},
		},
	}
	eng := testEngine(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.body)) {
				t.Fatalf("test body is not JSON")
			}
			v := testVault(t)
			out, dets, err := tokenizeBody(t, eng, v, tt.route, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(out) {
				t.Fatalf("output is not JSON: %s", out)
			}
			for _, g := range tt.gone {
				if bytes.Contains(out, []byte(g)) {
					t.Errorf("secret left in output: %s", out)
				}
			}
			for _, k := range tt.kept {
				if !bytes.Contains(out, []byte(k)) {
					t.Errorf("output lacks %q:\n%s", k, out)
				}
			}
			var fields []string
			var lines []int
			for _, d := range dets {
				fields = append(fields, d.Field)
				lines = append(lines, d.Line)
			}
			if strings.Join(fields, " ") != strings.Join(tt.field, " ") {
				t.Errorf("fields %q, want %q", fields, tt.field)
			}
			if len(lines) == len(tt.line) {
				for i := range lines {
					if lines[i] != tt.line[i] {
						t.Errorf("lines %v, want %v", lines, tt.line)
						break
					}
				}
			}
			assertSameModuloTokens(t, v, []byte(tt.body), out)
		})
	}
}

func TestTokenizeVaultGetsDecodedValue(t *testing.T) {
	sec := plantedSecrets()
	aws := sec["{{AWS_KEY_ID}}"]
	v := testVault(t)
	body := `{"messages":[{"role":"user","content":"id \u0041` + aws[1:] + `"}]}`
	_, dets, err := tokenizeBody(t, testEngine(t), v, Route{Provider: Anthropic, Operation: OpMessages}, body)
	if err != nil || len(dets) != 1 {
		t.Fatalf("dets %v, err %v", dets, err)
	}
	got, ok := v.Value(dets[0].Token)
	if !ok || string(got) != aws {
		t.Errorf("vault holds a value of %d bytes, want the decoded secret", len(got))
	}
	if dets[0].Start != 3 || dets[0].End != 3+len(aws) {
		t.Errorf("offsets [%d,%d), want offsets in the decoded value", dets[0].Start, dets[0].End)
	}
}

func TestTokenizeBlockAndMonitor(t *testing.T) {
	sec := plantedSecrets()
	key, aws := sec["{{ANTHROPIC_KEY}}"], sec["{{AWS_KEY_ID}}"]
	eng, err := detect.New(detect.Options{RuleActions: map[string]detect.Action{
		"anthropic-api-key": detect.Block,
		"aws-access-key-id": detect.Monitor,
	}})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"messages":[{"role":"user","content":"` + key + ` ` + aws + `"}]}`
	out, dets, err := tokenizeBody(t, eng, testVault(t), Route{Provider: Anthropic, Operation: OpMessages}, body)
	if err != nil {
		t.Fatal(err)
	}
	if !Blocked(dets) {
		t.Error("Blocked = false")
	}
	if len(dets) != 2 || dets[0].Token != "" || dets[1].Action != detect.Monitor {
		t.Errorf("detections %+v", dets)
	}
	if string(out) != body {
		t.Error("block and monitor findings must be left in place")
	}
}

func TestTokenizeVaultFull(t *testing.T) {
	sec := plantedSecrets()
	k, _ := token.KeyFromBytes(bytes.Repeat([]byte{1}, token.KeySize))
	v, err := token.NewVault(k, token.Limits{MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"messages":[{"role":"user","content":"` + sec["{{ANTHROPIC_KEY}}"] + `"},{"role":"user","content":"` + sec["{{AWS_KEY_ID}}"] + `"}]}`
	out, dets, err := tokenizeBody(t, testEngine(t), v, Route{Provider: Anthropic, Operation: OpMessages}, body)
	if !errors.Is(err, token.ErrVaultFull) {
		t.Fatalf("err = %v, want ErrVaultFull", err)
	}
	if out != nil || dets != nil {
		t.Error("a failed tokenization returned a body")
	}
	if strings.Contains(err.Error(), sec["{{AWS_KEY_ID}}"]) {
		t.Error("the error names the secret")
	}
	if !strings.Contains(err.Error(), "messages[1].content") {
		t.Errorf("the error does not name the field: %v", err)
	}
}

func TestTokenizeIdempotent(t *testing.T) {
	sec := plantedSecrets()
	eng := testEngine(t)
	route := Route{Provider: Anthropic, Operation: OpMessages}
	body := sec.fill(readTestdata(t, "requests/anthropic_messages.json"))
	v := testVault(t)
	req, _ := ParseRequest(route, body)
	once, _, err := req.Tokenize(token.Tokenizer{Engine: eng}, v, nil)
	if err != nil {
		t.Fatal(err)
	}
	req2, err := ParseRequest(route, once)
	if err != nil {
		t.Fatal(err)
	}
	twice, dets, err := req2.Tokenize(token.Tokenizer{Engine: eng}, v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(once, twice) || len(dets) != 0 {
		t.Errorf("tokenizing a tokenized body changed it (%d detections)", len(dets))
	}
}
