package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/takumo/aegis/e2e/fakeprovider"
)

// TestClaudeCode runs the real Claude Code CLI (the native binary of the
// pinned npm release, installed by scripts/install-claude-code.sh and named
// by TAKUMO_E2E_CLAUDE) through the gateway that `make run` starts, with
// nothing set but the two variables the gateway prints, and a fake Anthropic
// behind it that plays a model working on a config file full of secrets:
//
//  1. the user pastes config.env on stdin; the model reads the file (Read);
//  2. given the file (as tokens), the model writes config.fixed.env with
//     debug logging (Write), its content built from the tokens it saw;
//  3. given the Write result, the model answers with the values it kept.
//
// Claude Code runs the tools for real, so the file it writes on disk holds
// the real values only if the gateway rehydrated the streamed tool call, and
// its final answer only if it rehydrated the text. The provider must never
// see a secret: not in the pasted prompt, not in the Read tool result, not
// in the history where Claude Code sends back the rehydrated tool call.
//
// It runs once with the release's default model and once with an older
// model, for which Claude Code sends a different body: other betas and
// thinking settings, and every tool schema inline (about 90 KB instead of 50).
func TestClaudeCode(t *testing.T) {
	t.Parallel()
	bin := claudeBinary(t)
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"default model", nil},
		{"claude-sonnet-4-5", []string{"--model", "claude-sonnet-4-5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runClaudeCode(t, bin, tc.flags)
		})
	}
}

// runClaudeCode is one TestClaudeCode run, with extra claude flags.
func runClaudeCode(t *testing.T, bin string, flags []string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	proj := filepath.Join(dir, "orders-service")
	for _, d := range []string{home, proj} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(proj, "config.env"), []byte(ccConfig), 0o600); err != nil {
		t.Fatal(err)
	}

	model := &ccModel{t: t, proj: proj}
	p := fakeprovider.New(model.serve)
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})
	outside := newOutsideRecorder()
	defer outside.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{
		"-p", "--output-format", "json",
		"--max-turns", "5",
		"--allowedTools", "Read,Write",
		"--no-session-persistence",
	}, flags...)...)
	cmd.Dir = proj
	cmd.Stdin = strings.NewReader(ccPrompt)
	cmd.Env = []string{
		// What a user pastes from `make run`, and nothing else of theirs.
		"ANTHROPIC_BASE_URL=" + g.base,
		"ANTHROPIC_API_KEY=" + g.key,
		// No traffic but the model calls, no state outside the test.
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_TELEMETRY=1",
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1",
		"HOME=" + home,
		"CLAUDE_CONFIG_DIR=" + filepath.Join(home, ".claude"),
		"TMPDIR=" + dir,
		"PATH=/usr/local/bin:/usr/bin:/bin",
		// Anything that would leave the machine goes to a recorder instead
		// (which refuses it), so that the test sees the attempt.
		"HTTPS_PROXY=" + outside.URL(), "HTTP_PROXY=" + outside.URL(),
		"https_proxy=" + outside.URL(), "http_proxy=" + outside.URL(),
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	g.stop()
	reqs := p.Requests()
	ccLogRequests(t, reqs)
	if d := os.Getenv("TAKUMO_E2E_CLAUDE_DUMP"); d != "" {
		// A directory to keep the (tokenized) bodies in, to see what
		// Claude Code sends.
		for i, r := range reqs {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("request%d.json", i)), r.Body, 0o600); err != nil {
				t.Errorf("TAKUMO_E2E_CLAUDE_DUMP: %v", err)
			}
		}
	}
	if err != nil {
		t.Fatalf("claude: %v\nstdout:\n%.2000s\nstderr:\n%.2000s", err, stdout.String(), stderr.String())
	}

	// What the user sees: the final answer, with the real values.
	var res struct {
		Type, Subtype string
		IsError       bool   `json:"is_error"`
		NumTurns      int    `json:"num_turns"`
		Result        string `json:"result"`
		SessionID     string `json:"session_id"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("claude's output is not its JSON result: %v\n%.2000s", err, stdout.String())
	}
	if res.Type != "result" || res.Subtype != "success" || res.IsError || res.NumTurns != 3 {
		t.Errorf("claude's result: type %q subtype %q is_error %v num_turns %d, want a success after 3 turns\n%.2000s",
			res.Type, res.Subtype, res.IsError, res.NumTurns, stdout.String())
	}
	if res.Result != ccFinalAnswer(ccValues) {
		t.Errorf("claude's answer is not the model's answer with the real values put back:\n got %q\nwant %q",
			res.Result, ccFinalAnswer(ccValues))
	}

	// What Claude Code did with the streamed tool call: the file on disk.
	fixed, err := os.ReadFile(filepath.Join(proj, "config.fixed.env"))
	if err != nil {
		t.Fatalf("Claude Code did not write config.fixed.env (the Write tool call): %v", err)
	}
	if string(fixed) != ccFixedConfig(ccValues) {
		t.Errorf("config.fixed.env as Claude Code wrote it:\n got %q\nwant %q", fixed, ccFixedConfig(ccValues))
	}

	checkClaudeCodeUpstream(t, p, g, res.SessionID)
	if got := outside.Requests(); len(got) > 0 {
		t.Errorf("Claude Code tried to reach other hosts: %v", got)
	}
	for i, s := range ccSecrets() {
		if strings.Contains(g.stderr.String(), s) {
			t.Errorf("the gateway's logs hold secret #%d", i)
		}
	}
	if t.Failed() {
		t.Logf("claude stderr:\n%.4000s", stderr.String())
	}
}

// claudeBinary is the Claude Code binary from TAKUMO_E2E_CLAUDE. Without it
// the test is skipped, except under CI, where it must run.
func claudeBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("TAKUMO_E2E_CLAUDE")
	if bin == "" {
		msg := "TAKUMO_E2E_CLAUDE is unset: run `export TAKUMO_E2E_CLAUDE=\"$(scripts/install-claude-code.sh)\"` " +
			"to test the real Claude Code through the gateway"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: .ci/run must install it)")
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("TAKUMO_E2E_CLAUDE: %v", err)
	}
	return bin
}

// The project's secrets: fabricated, realistic in shape (the AWS key id
// decodes to an account, the GitHub token carries a valid CRC32).
const (
	ccAWSKeyID     = "AKIAE4EDHP7JA2NSOWBT"
	ccAWSSecret    = "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"
	ccDBPassword   = "Vt7q-Lm2x9Rk4wPz"
	ccDatabaseURL  = "postgres://orders_app:" + ccDBPassword + "@db.staging.internal:5432/orders?sslmode=require"
	ccGitHubToken  = "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"
	ccReadToolID   = "toolu_01Kq7VJ3nXbR8wY2mTzP4cLd"
	ccWriteToolID  = "toolu_01Rb5HsN9eWq3Gk6uZyT8xAf"
	ccThinkingSig  = "ErcBCkgIBRABGAIiQL3k9Vq2xW7mN4pR8tY1uZ6aB0cD3eF5gH7jK9lM2nP4qS6tU8vW0xY2zA4bC6dE8fG0hJ2kL4mN6oP8qR0sT2EgxVbn8Kq3WzRt5Yp1oaDJmL7xQ9sU1vX3zB5dGiIwN7pR9tV1xZ3bD5fH7jL9nP1rT3vX5zB7dF9hJ1lN3pR5tV7xZ9bD1fH3jL5nP7rT9vX1zB3dF5hJ7lN9pRMAI="
	ccFixedComment = "# LOG_LEVEL raised to debug for the retry investigation\n"
)

// ccValues are the values by token category, as the model places them.
var ccValues = map[string]string{
	"KEY": ccAWSKeyID, "SECRET": ccAWSSecret, "CONN": ccDatabaseURL, "TOKEN": ccGitHubToken,
}

// ccCategories is the order of the values in the config file.
var ccCategories = []string{"KEY", "SECRET", "CONN", "TOKEN"}

// ccSecrets is what must never reach the provider, in any form.
func ccSecrets() []string {
	return []string{ccAWSKeyID, ccAWSSecret, ccDBPassword, ccDatabaseURL, ccGitHubToken}
}

var ccConfig = ccConfigWith(ccValues, "info", "")

func ccConfigWith(v map[string]string, level, comment string) string {
	return comment +
		"# staging settings for the orders service\n" +
		"AWS_ACCESS_KEY_ID=" + v["KEY"] + "\n" +
		"AWS_SECRET_ACCESS_KEY=" + v["SECRET"] + "\n" +
		"AWS_REGION=eu-central-1\n" +
		"DATABASE_URL=" + v["CONN"] + "\n" +
		"GITHUB_TOKEN=" + v["TOKEN"] + "\n" +
		"LOG_LEVEL=" + level + "\n"
}

// ccFixedConfig is the file the model writes, with v's values.
func ccFixedConfig(v map[string]string) string { return ccConfigWith(v, "debug", ccFixedComment) }

// ccFinalAnswer is the model's last answer, with v's values.
func ccFinalAnswer(v map[string]string) string {
	return "Done: config.fixed.env has LOG_LEVEL=debug and keeps the other settings as they were:\n" +
		"- AWS_ACCESS_KEY_ID=`" + v["KEY"] + "`\n" +
		"- AWS_SECRET_ACCESS_KEY=`" + v["SECRET"] + "`\n" +
		"- DATABASE_URL=`" + v["CONN"] + "`\n" +
		"- GITHUB_TOKEN=`" + v["TOKEN"] + "`"
}

// ccPrompt is what the user pipes into `claude -p`.
var ccPrompt = "The orders service retries too fast on staging. Here is config.env:\n\n```\n" + ccConfig +
	"```\n\nRead config.env, write a copy with LOG_LEVEL=debug to config.fixed.env, and list the values you kept.\n"

// ccModel is the fake model behind the gateway. It tells the three turns
// apart by the tool result at the end of the conversation.
type ccModel struct {
	t    *testing.T
	proj string
}

// ccMessages is the part of a Messages request the model reads.
type ccMessages struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

type ccBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

// lastToolResult is the tool result block of the last user message, if any.
func (m *ccMessages) lastToolResult() *ccBlock {
	if len(m.Messages) == 0 {
		return nil
	}
	var blocks []ccBlock
	if json.Unmarshal(m.Messages[len(m.Messages)-1].Content, &blocks) != nil {
		return nil
	}
	for i := len(blocks) - 1; i >= 0; i-- {
		if blocks[i].Type == "tool_result" {
			return &blocks[i]
		}
	}
	return nil
}

// conversation is the raw messages array: the tokens a model would quote
// come from there, not from the tool descriptions.
func conversation(body []byte) []byte {
	var m struct {
		Messages json.RawMessage `json:"messages"`
	}
	_ = json.Unmarshal(body, &m)
	return m.Messages
}

// byCategory maps each category to the one token of it in b.
func byCategory(b []byte) map[string]string {
	out := map[string]string{}
	for _, tok := range fakeprovider.Tokens(b) {
		for _, c := range ccCategories {
			if strings.HasPrefix(tok, "__TAKUMO_v1_"+c+"_") {
				out[c] = tok
			}
		}
	}
	return out
}

func (m *ccModel) serve(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
	t := m.t
	var req ccMessages
	if r.Path != "/v1/messages" || json.Unmarshal(r.Body, &req) != nil {
		t.Errorf("the provider got %s %s?%s, which the fake model does not answer", r.Method, r.Path, r.RawQuery)
		w.JSON(http.StatusNotFound, fakeprovider.AnthropicError("not_found_error", "fake model: not found"))
		return
	}
	var reply fakeprovider.AnthropicReply
	switch tr := req.lastToolResult(); {
	case tr == nil:
		// Turn 1: think about the pasted file, then read it.
		reply = fakeprovider.AnthropicReply{
			ID: "msg_01Ha4TcWqZ7mX3pN9vL2bK5e",
			Thinking: "The pasted config has these values:\n" + strings.Join(fakeprovider.Tokens(conversation(r.Body)), "\n") +
				"\nRead the file itself before writing the copy.",
			Signature: ccThinkingSig,
			Text:      "I'll read config.env first.",
			Tool: &fakeprovider.ToolCall{ID: ccReadToolID, Name: "Read",
				Input: ccJSON(t, map[string]string{"file_path": filepath.Join(m.proj, "config.env")})},
		}
	case tr.ToolUseID == ccReadToolID:
		// Turn 2: write the copy from the tokens in the file as read.
		toks := byCategory(tr.Content)
		if len(toks) != len(ccCategories) || tr.IsError {
			t.Errorf("the Read result the provider got holds tokens %v (is_error %v), want one per category %v",
				toks, tr.IsError, ccCategories)
		}
		reply = fakeprovider.AnthropicReply{
			ID:   "msg_01Nw8FbR2yKq6Zt4Xc9Hd3Jm",
			Text: "Writing config.fixed.env with debug logging.",
			Tool: &fakeprovider.ToolCall{ID: ccWriteToolID, Name: "Write",
				Input: ccJSON(t, map[string]string{
					"file_path": filepath.Join(m.proj, "config.fixed.env"),
					"content":   ccFixedConfig(toks),
				})},
		}
	case tr.ToolUseID == ccWriteToolID:
		// Turn 3: report, quoting the tokens of the whole conversation.
		if tr.IsError {
			t.Errorf("Claude Code reports the Write failed: %s", tr.Content)
		}
		reply = fakeprovider.AnthropicReply{ID: "msg_01Pe3VgL8sQx5Rj7Wn2Tb6Ya",
			Text: ccFinalAnswer(byCategory(conversation(r.Body))), InputTokens: 1834, OutputTokens: 96}
	default:
		t.Errorf("the provider got a tool result for %q, which the fake model never asked for", tr.ToolUseID)
		reply = fakeprovider.AnthropicReply{Text: "I did not ask for that."}
	}
	reply.Model = req.Model
	if !req.Stream {
		w.JSON(http.StatusOK, reply.JSON())
		return
	}
	// Odd-sized chunks: events, JSON strings and tokens split across writes.
	data, _ := fakeprovider.Encode(reply.Events())
	w.Stream(fakeprovider.SplitEvery(data, 61))
}

func ccJSON(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Errorf("fake model: %v", err)
	}
	return b
}

// ccTokenPattern finds Takumo tokens in what the provider got.
var ccTokenPattern = regexp.MustCompile(`__TAKUMO_v1_[A-Z]+_[0-9a-f]{8,16}__`)

// checkClaudeCodeUpstream checks what the provider received from Claude Code
// through the gateway.
func checkClaudeCodeUpstream(t *testing.T, p *fakeprovider.Server, g *gateway, session string) {
	t.Helper()
	reqs := p.Requests()
	if len(reqs) != 3 {
		t.Errorf("the provider got %d requests, want the 3 turns", len(reqs))
	}
	if len(reqs) == 0 {
		t.FailNow()
	}
	var tokens map[string]string // by category, from the first request
	for i, r := range reqs {
		if r.Method != http.MethodPost || r.Path != "/v1/messages" || r.RawQuery != "beta=true" {
			t.Errorf("request %d: %s %s?%s, want POST /v1/messages?beta=true (as Claude Code sends it)", i, r.Method, r.Path, r.RawQuery)
		}
		if got := r.Header.Get("X-Api-Key"); got != anthropicProviderKey {
			t.Errorf("request %d: x-api-key is not the configured provider key (%d bytes)", i, len(got))
		}
		if r.Header.Get("Authorization") != "" {
			t.Errorf("request %d: the provider got an Authorization header", i)
		}
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-takumo-") {
				t.Errorf("request %d: the provider got %s", i, k)
			}
		}
		if got := r.Header.Get("X-Claude-Code-Session-Id"); got == "" || got != session {
			t.Errorf("request %d: X-Claude-Code-Session-Id %q, want Claude Code's session %q", i, got, session)
		}
		if !strings.Contains(r.Header.Get("Anthropic-Beta"), "claude-code-") {
			t.Errorf("request %d: anthropic-beta %q lost Claude Code's betas", i, r.Header.Get("Anthropic-Beta"))
		}
		// Claude Code sends its whole system prompt and tool schemas each
		// turn: these bodies are large, which is the point of the test.
		if len(r.Body) < 32<<10 {
			t.Errorf("request %d: body of %d bytes; Claude Code sends tens of KB (did the gateway cut it?)", i, len(r.Body))
		}
		var m ccMessages
		if err := json.Unmarshal(r.Body, &m); err != nil || len(m.Messages) == 0 {
			t.Errorf("request %d: not a Messages body: %v", i, err)
			continue
		}
		// The pasted prompt, sent again every turn, is exactly the user's
		// text with a token in place of each secret, and the same tokens
		// each time (one session).
		if i == 0 {
			tokens = byCategory(conversation(r.Body))
		}
		var blocks []ccBlock
		_ = json.Unmarshal(m.Messages[0].Content, &blocks)
		if want := strings.Replace(ccPrompt, ccConfig, ccConfigWith(tokens, "info", ""), 1); !slices.ContainsFunc(blocks,
			func(b ccBlock) bool { return b.Type == "text" && b.Text == want }) {
			t.Errorf("request %d: the first user message has no text block that is the prompt with request 0's tokens in place of the secrets", i)
		}
	}
	// One token per secret in the whole conversation: the pasted file, the
	// file as read, the thinking and the rehydrated Write call that Claude
	// Code sends back in the history all tokenize the same way.
	all := map[string]bool{}
	for _, r := range reqs {
		for _, tok := range ccTokenPattern.FindAll(conversation(r.Body), -1) {
			all[string(tok)] = true
		}
	}
	if len(all) != len(ccCategories) {
		t.Errorf("the conversation used %d distinct tokens, want %d (one per secret): %v", len(all), len(ccCategories), all)
	}
	// The thinking block comes back in the history with its signature.
	if len(reqs) > 1 && !bytes.Contains(conversation(reqs[1].Body), []byte(`"signature":"`+ccThinkingSig+`"`)) {
		t.Error("request 1: the history does not carry the thinking block's signature unchanged")
	}
	// Tokens outside the conversation (system prompt, tool descriptions)
	// would be detector false positives in Claude Code's own text: they
	// change the model's instructions and, keyed per session, defeat the
	// provider's prompt cache.
	for i, r := range reqs {
		conv := len(ccTokenPattern.FindAll(conversation(r.Body), -1))
		if n := len(ccTokenPattern.FindAll(r.Body, -1)) - conv; n > 0 {
			t.Errorf("request %d: %d token(s) outside the messages, in Claude Code's own system prompt or tool descriptions", i, n)
		}
	}
	assertProviderSawNoSecret(t, p, append(ccSecrets(), g.key))
}

// ccLogRequests reports what Claude Code sent through the gateway.
func ccLogRequests(t *testing.T, reqs []*fakeprovider.Request) {
	t.Helper()
	for i, r := range reqs {
		t.Logf("request %d: %s %s?%s, %d body bytes, tokens %d, accept-encoding %q, anthropic-beta %q, user-agent %q",
			i, r.Method, r.Path, r.RawQuery, len(r.Body), len(fakeprovider.Tokens(r.Body)),
			r.Header.Get("Accept-Encoding"), r.Header.Get("Anthropic-Beta"), r.Header.Get("User-Agent"))
	}
}

// outsideRecorder is the proxy Claude Code is given for every host but the
// gateway: it records each attempt and refuses it.
type outsideRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []string // guarded by mu
}

func newOutsideRecorder() *outsideRecorder {
	o := &outsideRecorder{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.reqs = append(o.reqs, fmt.Sprintf("%s %s", r.Method, r.Host))
		o.mu.Unlock()
		http.Error(w, "no network in this test", http.StatusForbidden)
	}))
	return o
}

func (o *outsideRecorder) URL() string { return o.srv.URL }

func (o *outsideRecorder) Close() {
	o.srv.CloseClientConnections()
	o.srv.Close()
}

func (o *outsideRecorder) Requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.reqs...)
}
