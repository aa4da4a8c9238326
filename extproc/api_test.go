package extproc

import (
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

func TestHealth(t *testing.T) {
	h := newHarness(t)
	ex := h.open(t)
	// No key needed.
	ir := immediateOf(t, ex.roundTrip(reqHeaders(true, ":method", "GET", ":path", "/v1/health")))
	if ir.GetStatus().GetCode() != 200 || string(ir.GetBody()) != `{"status":"ok"}` {
		t.Errorf("health = %d %s", ir.GetStatus().GetCode(), ir.GetBody())
	}
	if rid, _ := headerOf(ir.GetHeaders(), "x-aegis-request-id"); !strings.HasPrefix(rid, "req_") {
		t.Errorf("request id %q", rid)
	}
	ex.closeOK()
}

type apiResult struct {
	Content    string         `json:"content"`
	Detections []apiDetection `json:"detections"`
}

func callAPI(t *testing.T, h *harness, path string, body []byte, extra ...string) apiResult {
	t.Helper()
	ex := h.open(t)
	kv := append([]string{"authorization", "Bearer " + testKey}, extra...)
	if r := ex.roundTrip(postHeaders(path, body, kv...)); r.GetRequestHeaders() == nil {
		t.Fatalf("headers: want CONTINUE, got %v", r)
	}
	ir := immediateOf(t, ex.roundTrip(reqBody(body)))
	if ir.GetStatus().GetCode() != 200 {
		t.Fatalf("status %d: %s", ir.GetStatus().GetCode(), ir.GetBody())
	}
	ex.closeOK()
	var res apiResult
	mustUnmarshal(t, ir.GetBody(), &res)
	return res
}

func TestTokenizeAPI(t *testing.T) {
	h := newHarness(t)
	content := "const cfg = {\n  db: \"" + pgURL + "\",\n  gh: \"" + ghToken + "\",\n}\n"
	body := []byte(`{"content":` + jsonString(content) + `,"filename":"config.ts"}`)
	res := callAPI(t, h, "/v1/tokenize", body)
	assertNoSecret(t, "tokenized content", []byte(res.Content))
	if len(res.Detections) != 2 {
		t.Fatalf("detections = %+v", res.Detections)
	}
	want := []struct {
		cat       string
		line, col int
		length    int
	}{
		{"CONN", 2, 8, len(pgURL)},
		{"TOKEN", 3, 8, len(ghToken)},
	}
	for i, d := range res.Detections {
		w := want[i]
		if d.Category != w.cat || d.Line != w.line || d.Column != w.col || d.Length != w.length ||
			d.Type == "" || !strings.HasPrefix(d.Token, "__TAKUMO_v1_") || !strings.Contains(res.Content, d.Token) {
			t.Errorf("detection %d = %+v, want %+v", i, d, w)
		}
	}

	// The same session gives the same tokens.
	a := callAPI(t, h, "/v1/tokenize", body, "x-takumo-session", "s1")
	b := callAPI(t, h, "/v1/tokenize", body, "x-takumo-session", "s1")
	if a.Content != b.Content {
		t.Errorf("same session, different tokens")
	}
}

func TestDetectAPI(t *testing.T) {
	h := newHarness(t)
	body := []byte(`{"content":` + jsonString("x\naws_access_key_id = "+awsKeyID+"\n") + `}`)
	res := callAPI(t, h, "/v1/detect", body)
	if len(res.Detections) != 1 {
		t.Fatalf("detections = %+v", res.Detections)
	}
	d := res.Detections[0]
	if d.Category != "KEY" || d.Line != 2 || d.Length != len(awsKeyID) || d.Token != "" || d.Action != "tokenize" {
		t.Errorf("detection = %+v", d)
	}
	if res.Content != "" {
		t.Error("detect returned content")
	}
}

func TestAPIErrors(t *testing.T) {
	cases := []struct {
		name   string
		path   string
		body   string
		status int
		msg    string
	}{
		{"tokenize malformed", "/v1/tokenize", `{"content":`, 400, "malformed JSON"},
		{"tokenize missing content", "/v1/tokenize", `{"filename":"a.go"}`, 400, "missing required field: content"},
		{"detect malformed", "/v1/detect", `nope`, 400, "malformed JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ex := h.open(t)
			ex.roundTrip(postHeaders(tc.path, []byte(tc.body), "x-api-key", testKey))
			checkError(t, ex.roundTrip(reqBody([]byte(tc.body))), tc.status, CodeBadRequest, tc.msg)
			ex.closeOK()
		})
	}
	t.Run("tokenize needs a key", func(t *testing.T) {
		h := newHarness(t)
		ex := h.open(t)
		checkError(t, ex.roundTrip(postHeaders("/v1/tokenize", []byte(`{}`))), 401, CodeUnauthorized, "missing API key")
		ex.closeOK()
	})
	t.Run("tokenize blocked", func(t *testing.T) {
		h := newHarness(t, func(c *Config) {
			c.Engine = newEngine(t, detect.Options{CategoryActions: map[detect.Category]detect.Action{detect.TOKEN: detect.Block}})
		})
		ex := h.open(t)
		body := []byte(`{"content":"GITHUB_TOKEN=` + ghToken + `"}`)
		ex.roundTrip(postHeaders("/v1/tokenize", body, "x-api-key", testKey))
		r := ex.roundTrip(reqBody(body))
		b := checkError(t, r, 403, CodeForbidden, "blocked")
		if len(b.Error.Details) != 1 || b.Error.Details[0].Field != "content" || b.Error.Details[0].Line != 1 {
			t.Errorf("details %+v", b.Error.Details)
		}
		assertNoSecret(t, "403", immediateOf(t, r).GetBody())
		ex.closeOK()
	})
}
