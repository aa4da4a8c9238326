// Package e2e drives the standalone gateway end to end: the same wiring as
// `takumo-aegis gateway --dev` (cli.Main in-process, on a random port), the
// official Anthropic and OpenAI Go SDKs as clients, and a fake provider
// (package fakeprovider) that records what it received and answers with
// realistic JSON and event streams built from the tokens it was sent.
//
// Every test asserts that the provider never received a planted secret, in
// any form, and that the client got the exact original values back.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/takumo/aegis/cli"
	"github.com/takumo/aegis/e2e/fakeprovider"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Planted secrets: fabricated, realistic in shape, and chosen to carry the
// characters that break naive escaping: quotes, backslashes, newlines and
// non-ASCII.
const (
	pgURL      = `postgres://app:p\ss-wörd9Q@db.internal:5432/x`
	dbPassword = `Zq8"w\rtÜß€-9kLm`
	awsKeyID   = "AKIA4HJX7QWERT2UVMNP"
	// A GitHub classic token with a valid CRC32 checksum.
	ghToken = "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"
	pemBody = "MIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MaWrZTcQ8s7vZ2Zq\n" +
		"b3UzZ7aPdq0HvKjmJEW8pQ2mxA3RwVQ9sBbYt8zN1J6xk5p7cR2TqW9nD4fLqvQ1"
	pemKey = "-----BEGIN RSA PRIVATE KEY-----\n" + pemBody + "\n-----END RSA PRIVATE KEY-----"

	// Provider keys of the standalone org (fabricated).
	anthropicProviderKey = "sk-ant-api03-Fq2ZbX9vK3mN7pL1rT5wY8aC4dE6gH0jQ2sU4xW6zB8nM1kP3oR5tV7yA9cF2hJ4lN6qS8uX0aD3gK5mP7rT9vY1bE4hK6nQ8tW0zC2fI4lO6rU8xA-Zq7Yw3AA"
	openAIProviderKey    = "sk-proj-Lm4Np6Qr8St0Uv2Wx4Yz6Ab8Cd0Ef2Gh4Ij6Kl8Mn0Op2Qr4St6Uv8Wx0Yz2Ab4Cd6Ef8Gh0Ij2Kl4Mn6Op8Qr0St2Uv4Wx6Yz8AbT3BlbkFJq1Rs3Tu5Vw7Xy9Za1Bc3De"
	mistralProviderKey   = "Zq8Wm3Rt6Yp1Lk4Hs7Dv0Nb2Xc5Gf9Ja"
	geminiProviderKey    = "AIzaSyD4k8Pq2Wx6Zr0Tv3Ym7Bn1Lc5Hf9Js2Ke"
)

// planted is every secret in prompt, in order of appearance.
var planted = []string{pgURL, dbPassword, awsKeyID, ghToken, pemKey}

// prompt is what a developer pastes: prose with quotes, backslashes and
// non-ASCII around the secrets, so that the text between tokens must come
// back byte-exact too.
var prompt = "Fix the retry loop in this service. Grüße aus Köln ✓ — keep \"quotes\" and C:\\paths.\n\n" +
	".env:\nDATABASE_URL=" + pgURL + "\n" +
	"db_password: '" + dbPassword + "'\n" +
	"AWS_ACCESS_KEY_ID=" + awsKeyID + "\n" +
	"GITHUB_TOKEN=" + ghToken + "\n\n" +
	"deploy/key.pem:\n" + pemKey + "\n\nThanks!"

// neverUpstream lists what must not reach the provider: the planted
// secrets, fragments of the multi-line key, and (added per gateway) the
// client's Takumo key.
func neverUpstream(g *gateway) []string {
	s := append([]string(nil), planted...)
	s = append(s, strings.Split(pemBody, "\n")...)
	s = append(s, "p\\ss-wörd9Q", `Zq8"w`)
	if g != nil {
		s = append(s, g.key)
	}
	return s
}

// forms returns s and the ways JSON can write it.
func forms(s string) []string {
	out := []string{s}
	b, _ := json.Marshal(s)
	out = append(out, string(b[1:len(b)-1]))
	// ASCII-only JSON escaping (\u00fc), as Python's json.dumps writes.
	var a strings.Builder
	for _, r := range string(b[1 : len(b)-1]) {
		if r < utf8.RuneSelf {
			a.WriteRune(r)
		} else if r > 0xFFFF {
			fmt.Fprintf(&a, `\u%04x\u%04x`, 0xD800+((r-0x10000)>>10), 0xDC00+((r-0x10000)&0x3FF))
		} else {
			fmt.Fprintf(&a, `\u%04x`, r)
		}
	}
	out = append(out, a.String())
	// Double-escaped, as inside a JSON string that holds JSON.
	b2, _ := json.Marshal(string(b[1 : len(b)-1]))
	out = append(out, string(b2[1:len(b2)-1]))
	return out
}

// assertProviderSawNoSecret fails if any recorded request carries any form
// of a value in secrets, in its body, path, query or any header.
func assertProviderSawNoSecret(t *testing.T, p *fakeprovider.Server, secrets []string) {
	t.Helper()
	for i, r := range p.Requests() {
		var hay bytes.Buffer
		hay.Write(r.Body)
		hay.WriteString("\n" + r.Path + "?" + r.RawQuery + "\n")
		for k, vs := range r.Header {
			for _, v := range vs {
				hay.WriteString(k + ": " + v + "\n")
			}
		}
		for j, s := range secrets {
			for _, f := range forms(s) {
				if bytes.Contains(hay.Bytes(), []byte(f)) {
					t.Errorf("request %d to %s: the provider received secret #%d of neverUpstream (%d bytes)", i, r.Path, j, len(s))
					break
				}
			}
		}
	}
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gateway is one running `takumo-aegis gateway`.
type gateway struct {
	base   string // http://127.0.0.1:port
	key    string // the dev key
	stdout *syncBuffer
	stderr *syncBuffer
	stop   func() // stops it and waits (idempotent)
}

// gatewayOpts adjusts a test gateway.
type gatewayOpts struct {
	yaml string   // extra config file lines
	args []string // extra flags
}

// writeConfig writes a config file pointing every provider at p.
func writeConfig(t *testing.T, p *fakeprovider.Server, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	cfg := fmt.Sprintf(`# written by the e2e tests
anthropic_url: %[1]s
openai_url: %[1]s
mistral_url: %[1]s
gemini_url: %[1]s
anthropic_api_key: %[2]q
openai_api_key: %[3]q
mistral_api_key: %[4]q
gemini_api_key: %[5]q
log_format: json
log_level: debug
shutdown_timeout: 5s
data_dir: %[6]s
admin_listen: 127.0.0.1:0
`, p.URL(), anthropicProviderKey, openAIProviderKey, mistralProviderKey, geminiProviderKey, t.TempDir()) + extra
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runMain runs cli.Main in the background; the returned func cancels it and
// returns its exit code.
func runMain(t *testing.T, args []string, stdout, stderr *syncBuffer) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, args, strings.NewReader(""), stdout, stderr) }()
	var once sync.Once
	code := -1
	return func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s", args[0])
			}
		})
		return code
	}
}

// waitFor polls until cond or fails after 10 s (a wait, not an assertion
// on speed).
func waitFor(t *testing.T, what string, cond func() bool, stderr *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stderr:\n%s", what, stderr)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startGateway runs `gateway --dev --listen 127.0.0.1:0 --config FILE` with
// every provider pointed at p, and waits for the printed key and URLs.
func startGateway(t *testing.T, p *fakeprovider.Server, o gatewayOpts) *gateway {
	t.Helper()
	args := []string{"gateway", "--dev", "--listen", "127.0.0.1:0", "--config", writeConfig(t, p, o.yaml)}
	args = append(args, o.args...)
	g := &gateway{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	stop := runMain(t, args, g.stdout, g.stderr)
	g.stop = func() {
		if code := stop(); code != cli.ExitOK {
			t.Errorf("gateway exited with %d; stderr:\n%s", code, g.stderr)
		}
	}
	t.Cleanup(g.stop)
	waitFor(t, "the dev lines", func() bool { return strings.Contains(g.stdout.String(), "export OPENAI_API_KEY=") }, g.stderr)
	sc := bufio.NewScanner(strings.NewReader(g.stdout.String()))
	lines := map[string]string{}
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			lines[k] = v
		}
	}
	g.key, g.base = lines["TAKUMO_API_KEY"], lines["ANTHROPIC_BASE_URL"]
	if g.key == "" || lines["ANTHROPIC_API_KEY"] != g.key || lines["OPENAI_API_KEY"] != g.key ||
		lines["OPENAI_BASE_URL"] != g.base+"/v1" || !strings.HasPrefix(g.base, "http://127.0.0.1:") {
		t.Fatalf("dev output is not what a user pastes:\n%s", g.stdout)
	}
	return g
}

// errorBody is the DESIGN §6 error body.
type errorBody struct {
	Error struct {
		Code      string          `json:"code"`
		Message   string          `json:"message"`
		RequestID string          `json:"request_id"`
		Upstream  json.RawMessage `json:"upstream"`
	} `json:"error"`
}

// reply is what post read of a response: the body is read to the end and
// closed, so no *http.Response with a dead body escapes to the tests.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// post sends a raw request through the gateway with the dev key.
func (g *gateway) post(t *testing.T, path, contentType string, body []byte, hdr map[string]string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, g.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("x-api-key", g.key)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	// Read to the end below: closing cannot lose anything we check.
	defer func() { _ = resp.Body.Close() }()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatalf("POST %s: reading the body: %v", path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b.Bytes()}
}

// wantError checks a DESIGN §6 error response.
func wantError(t *testing.T, r reply, status int, code string) errorBody {
	t.Helper()
	var e errorBody
	if r.status != status {
		t.Errorf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, r.body)
	}
	if e.Error.Code != code || e.Error.Message == "" || !strings.HasPrefix(e.Error.RequestID, "req_") {
		t.Errorf("error body %s, want code %s with a message and a request id", r.body, code)
	}
	if got := r.header.Get("X-Aegis-Request-Id"); got != e.Error.RequestID {
		t.Errorf("X-Aegis-Request-Id %q, body request_id %q", got, e.Error.RequestID)
	}
	return e
}

// echoTool is the tool input a fake model writes: the whole user text and
// every token, each in its own string, so that the client can check that
// tool arguments parse to the original values.
type echoTool struct {
	Content string   `json:"content"`
	Values  []string `json:"values"`
}

func echoInput(t *testing.T, text string, tokens []string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(echoTool{Content: text, Values: tokens})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkEchoTool checks tool arguments as the client parsed them.
func checkEchoTool(t *testing.T, args []byte) {
	t.Helper()
	var got echoTool
	if err := json.Unmarshal(args, &got); err != nil {
		t.Fatalf("tool arguments do not parse: %v", err)
	}
	if got.Content != prompt {
		t.Errorf("tool argument content:\n got %q\nwant %q", got.Content, prompt)
	}
	if len(got.Values) != len(planted) {
		t.Fatalf("tool argument values: got %d values, want the %d planted secrets (what was tokenized is not what was planted)", len(got.Values), len(planted))
	}
	for i := range planted {
		if got.Values[i] != planted[i] {
			t.Errorf("tool argument value %d: got %q, want %q", i, got.Values[i], planted[i])
		}
	}
}
