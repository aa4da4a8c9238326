package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/takumo/aegis/e2e/fakeprovider"
)

// A thinking signature: opaque, must reach the client untouched.
const thinkingSignature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+SBEJV3kCFNvVXsbHPMafDZH/1Ebf3cv9KNmHcIrQj4eWV9kMGKgzNV8MB2hb1ZU0fTBwAA"

func anthropicClient(g *gateway, opts ...option.RequestOption) *anthropic.Client {
	c := anthropic.NewClient(append([]option.RequestOption{
		option.WithBaseURL(g.base), option.WithAPIKey(g.key), option.WithMaxRetries(0),
	}, opts...)...)
	return &c
}

func anthropicParams(text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 4096,
		System:    []anthropic.TextBlockParam{{Text: "You are a careful code reviewer."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
		Thinking:  anthropic.ThinkingConfigParamOfEnabled(2048),
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
			Name:        "write_config",
			Description: anthropic.String("Write the fixed configuration file"),
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{
				"content": map[string]any{"type": "string"},
				"values":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			}},
		}}},
	}
}

// anthropicUserText is the (tokenized) user text of a recorded request.
func anthropicUserText(t *testing.T, body []byte) string {
	t.Helper()
	var req struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
		t.Errorf("provider got a body that is not a Messages request: %v", err)
		return ""
	}
	var s string
	if json.Unmarshal(req.Messages[0].Content, &s) == nil {
		return s
	}
	var blocks []struct{ Type, Text string }
	if err := json.Unmarshal(req.Messages[0].Content, &blocks); err != nil || len(blocks) == 0 {
		t.Errorf("provider got message content it cannot read: %v", err)
		return ""
	}
	return blocks[0].Text
}

// anthropicEcho is a model that thinks about the text, repeats it, and
// calls write_config with the text and every token it was sent.
func anthropicEcho(t *testing.T, r *fakeprovider.Request) fakeprovider.AnthropicReply {
	text := anthropicUserText(t, r.Body)
	return fakeprovider.AnthropicReply{
		Thinking:  "Reading the user's files:\n" + text,
		Signature: thinkingSignature,
		Text:      text,
		Tool: &fakeprovider.ToolCall{ID: "toolu_01A09q90qw90lq917835lq9", Name: "write_config",
			Input: echoInput(t, text, fakeprovider.Tokens(r.Body))},
	}
}

// checkAnthropicUpstream checks what the provider was sent besides secrets.
func checkAnthropicUpstream(t *testing.T, p *fakeprovider.Server, g *gateway) {
	t.Helper()
	reqs := p.Requests()
	if len(reqs) == 0 {
		t.Fatal("the provider received no request")
	}
	for _, r := range reqs {
		if got := r.Header.Get("X-Api-Key"); got != anthropicProviderKey {
			t.Errorf("provider x-api-key is not the configured provider key (%d bytes)", len(got))
		}
		if r.Header.Get("Authorization") != "" {
			t.Error("provider got an Authorization header")
		}
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-takumo-") {
				t.Errorf("provider got %s", k)
			}
		}
		if toks := fakeprovider.Tokens(r.Body); len(toks) != len(planted) {
			t.Errorf("provider got %d distinct tokens, want %d (one per planted secret)", len(toks), len(planted))
		}
	}
	assertProviderSawNoSecret(t, p, neverUpstream(g))
}

// checkAnthropicMessage checks the SDK's parsed (or accumulated) message.
func checkAnthropicMessage(t *testing.T, m *anthropic.Message) {
	t.Helper()
	if len(m.Content) != 3 {
		t.Fatalf("got %d content blocks, want thinking, text, tool_use", len(m.Content))
	}
	th, tx, tu := m.Content[0], m.Content[1], m.Content[2]
	if th.Type != "thinking" || th.Thinking != "Reading the user's files:\n"+prompt {
		t.Errorf("thinking block %s:\n got %q\nwant %q", th.Type, th.Thinking, "Reading the user's files:\n"+prompt)
	}
	if th.Signature != thinkingSignature {
		t.Errorf("thinking signature changed: %q", th.Signature)
	}
	if tx.Type != "text" || tx.Text != prompt {
		t.Errorf("text block %s:\n got %q\nwant %q", tx.Type, tx.Text, prompt)
	}
	if tu.Type != "tool_use" || tu.Name != "write_config" || tu.ID != "toolu_01A09q90qw90lq917835lq9" {
		t.Errorf("tool_use block %s %s %s", tu.Type, tu.Name, tu.ID)
	}
	checkEchoTool(t, tu.Input)
	if m.StopReason != "tool_use" || m.Usage.OutputTokens != 187 || m.Usage.InputTokens != 412 {
		t.Errorf("stop_reason %q usage %+v", m.StopReason, m.Usage)
	}
}

func TestAnthropicMessagesJSON(t *testing.T) {
	t.Parallel()
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})

	msg, err := anthropicClient(g).Messages.New(context.Background(), anthropicParams(prompt))
	if err != nil {
		t.Fatal(err)
	}
	checkAnthropicMessage(t, msg)
	checkAnthropicUpstream(t, p, g)
}

// streamEventOrder checks what Anthropic SDKs rely on: message_start first,
// blocks started, filled and stopped in index order, then message_delta and
// message_stop.
func streamEventOrder(t *testing.T, events []anthropic.MessageStreamEventUnion) {
	t.Helper()
	var seq []string
	open, next := -1, 0
	for i, e := range events {
		bad := func(why string) {
			t.Errorf("event %d (%s index %d): %s; sequence so far %v", i, e.Type, e.Index, why, seq)
		}
		switch e.Type {
		case "message_start":
			if i != 0 {
				bad("message_start not first")
			}
		case "content_block_start":
			if open != -1 || int(e.Index) != next {
				bad("block started out of order")
			}
			open = int(e.Index)
		case "content_block_delta":
			if int(e.Index) != open {
				bad("delta outside its block")
			}
		case "content_block_stop":
			if int(e.Index) != open {
				bad("stop of a block that is not open")
			}
			open, next = -1, next+1
		case "message_delta":
			if open != -1 || next != 3 {
				bad("message_delta before every block stopped")
			}
		case "message_stop":
			if i != len(events)-1 {
				bad("message_stop not last")
			}
		default:
			bad("unexpected event type")
		}
		if len(seq) == 0 || seq[len(seq)-1] != e.Type {
			seq = append(seq, e.Type)
		}
	}
	want := []string{"message_start", "content_block_start", "content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
	if strings.Join(seq, ",") != strings.Join(want, ",") {
		t.Errorf("event sequence\n got %v\nwant %v", seq, want)
	}
}

// streamAnthropic runs one streamed request and checks everything the
// client sees.
func streamAnthropic(t *testing.T, c *anthropic.Client, params anthropic.MessageNewParams, opts ...option.RequestOption) {
	t.Helper()
	stream := c.Messages.NewStreaming(context.Background(), params, opts...)
	// stream.Err is what is checked; Close only releases the connection.
	defer func() { _ = stream.Close() }()
	var (
		msg    anthropic.Message
		events []anthropic.MessageStreamEventUnion
		texts  strings.Builder
	)
	for stream.Next() {
		ev := stream.Current()
		events = append(events, ev)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("SDK accumulator: %v", err)
		}
		if ev.Type == "content_block_delta" && ev.Delta.Type == "text_delta" {
			texts.WriteString(ev.Delta.Text)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	streamEventOrder(t, events)
	checkAnthropicMessage(t, &msg)
	if texts.String() != prompt {
		t.Errorf("text deltas concatenated:\n got %q\nwant %q", texts.String(), prompt)
	}
}

// splits are the ways the fake provider cuts a stream into writes.
func splits() []struct {
	name string
	cut  func(data []byte, boundaries []int) [][]byte
} {
	return []struct {
		name string
		cut  func(data []byte, boundaries []int) [][]byte
	}{
		{"one write", func(d []byte, _ []int) [][]byte { return [][]byte{d} }},
		{"event boundaries", func(d []byte, b []int) [][]byte { return fakeprovider.SplitAt(d, b...) }},
		{"every byte", func(d []byte, _ []int) [][]byte { return fakeprovider.SplitEvery(d, 1) }},
		{"every 5 bytes", func(d []byte, _ []int) [][]byte { return fakeprovider.SplitEvery(d, 5) }},
		{"every 61 bytes", func(d []byte, _ []int) [][]byte { return fakeprovider.SplitEvery(d, 61) }},
		{"mid-event and mid-token", func(d []byte, b []int) [][]byte {
			var at []int
			for _, o := range b {
				at = append(at, o-3, o+9)
			}
			return fakeprovider.SplitAt(d, at...)
		}},
	}
}

func TestAnthropicMessagesStream(t *testing.T) {
	t.Parallel()
	for _, sp := range splits() {
		t.Run(sp.name, func(t *testing.T) {
			t.Parallel()
			p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
				data, b := fakeprovider.Encode(anthropicEcho(t, r).Events())
				w.Stream(sp.cut(data, b))
			})
			defer p.Close()
			g := startGateway(t, p, gatewayOpts{})
			streamAnthropic(t, anthropicClient(g), anthropicParams(prompt))
			checkAnthropicUpstream(t, p, g)
		})
	}
}

// TestAnthropicStreamSplitAtEveryOffsetOfAToken cuts the stream in two at
// every byte offset in and around the first token of a text delta and of a
// partial_json delta, one request each.
func TestAnthropicStreamSplitAtEveryOffsetOfAToken(t *testing.T) {
	t.Parallel()
	var cutAt = make(chan int, 1)
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		data, _ := fakeprovider.Encode(anthropicEcho(t, r).Events())
		w.Stream(fakeprovider.SplitAt(data, <-cutAt))
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})
	c := anthropicClient(g)

	// Learn the offsets from one unsplit run.
	cutAt <- 0
	streamAnthropic(t, c, anthropicParams(prompt))
	reqs := p.Requests()
	data, _ := fakeprovider.Encode(anthropicEcho(t, reqs[len(reqs)-1]).Events())
	var offsets []int
	// Every occurrence region of the first token in the text deltas and in
	// the tool deltas: the token is cut into 7-byte deltas, so the region
	// spans several events.
	first := fakeprovider.Tokens(reqs[0].Body)[0]
	for _, kind := range []string{`"text_delta"`, `"input_json_delta"`} {
		start := bytes.Index(data, []byte(kind))
		if start < 0 {
			t.Fatalf("no %s in the stream", kind)
		}
		// The first 6 bytes of the token are the start of the region.
		at := bytes.Index(data[start:], []byte(first[:6]))
		if at < 0 {
			t.Fatalf("token not found after %s", kind)
		}
		from := start + at - 2
		// Cover the token's length in the stream, event framing included.
		for o := from; o < from+len(first)*12 && o < len(data); o++ {
			offsets = append(offsets, o)
		}
	}
	for _, o := range offsets {
		t.Run(fmt.Sprint("offset ", o), func(t *testing.T) {
			cutAt <- o
			streamAnthropic(t, c, anthropicParams(prompt))
		})
	}
	checkAnthropicUpstream(t, p, g)
}

// TestClaudeCodeShapedRequest sends what Claude Code sends: x-api-key,
// ?beta=true, anthropic-beta, X-Claude-Code-Session-Id, accept-encoding
// with br and zstd, and a body over 50 KB; and checks two requests of one
// session get the same tokens.
func TestClaudeCodeShapedRequest(t *testing.T) {
	t.Parallel()
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		data, b := fakeprovider.Encode(anthropicEcho(t, r).Events())
		w.Stream(fakeprovider.SplitAt(data, b...))
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})
	c := anthropicClient(g)

	params := anthropicParams(prompt)
	filler := strings.Repeat("// helper: add returns the sum of two integers.\nfunc add(a, b int) int { return a + b }\n\n", 700)
	params.Messages = append(params.Messages,
		anthropic.NewAssistantMessage(anthropic.NewTextBlock("Please paste the rest of the package.")),
		anthropic.NewUserMessage(anthropic.NewTextBlock(filler)))
	// The echo model answers the first user text; the rest is history.
	opts := []option.RequestOption{
		option.WithQuery("beta", "true"),
		option.WithHeader("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
		option.WithHeader("X-Claude-Code-Session-Id", "4f0c8a52-7d1e-4c6b-9a3f-2b8e5d7c1a90"),
		option.WithHeader("Accept-Encoding", "gzip, br, zstd"),
		option.WithHeader("User-Agent", "claude-cli/2.0.14 (external, cli)"),
	}
	streamAnthropic(t, c, params, opts...)
	streamAnthropic(t, c, params, opts...)

	reqs := p.Requests()
	if len(reqs) != 2 {
		t.Fatalf("provider got %d requests, want 2", len(reqs))
	}
	if len(reqs[0].Body) < 50_000 {
		t.Errorf("body is %d bytes, want over 50 KB", len(reqs[0].Body))
	}
	for _, r := range reqs {
		if r.Path != "/v1/messages" || r.RawQuery != "beta=true" {
			t.Errorf("provider got %s?%s", r.Path, r.RawQuery)
		}
		if ae := r.Header.Get("Accept-Encoding"); ae != "identity" {
			t.Errorf("provider got accept-encoding %q, want identity (we cannot rehydrate what we cannot read)", ae)
		}
		if r.Header.Get("Anthropic-Beta") == "" {
			t.Error("anthropic-beta was dropped")
		}
	}
	t0, t1 := fakeprovider.Tokens(reqs[0].Body), fakeprovider.Tokens(reqs[1].Body)
	if strings.Join(t0, " ") != strings.Join(t1, " ") {
		t.Errorf("one session, two requests, different tokens:\n%v\n%v", t0, t1)
	}
	checkAnthropicUpstream(t, p, g)
}

// TestAnthropicOverloadedAndRateLimitedPassThrough: 529 overloaded_error
// and 429 with retry headers reach the SDK with their status, headers and
// body, so its retry logic works; with retries on, the SDK retries and
// succeeds.
func TestAnthropicOverloadedAndRateLimitedPassThrough(t *testing.T) {
	t.Parallel()
	var calls = make(chan int, 16)
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		n := len(calls)
		calls <- n
		switch n {
		case 0:
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Retry-After-Ms", "10")
			w.JSON(529, fakeprovider.AnthropicError("overloaded_error", "Overloaded"))
		case 1:
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Retry-After-Ms", "10")
			w.Header().Set("Anthropic-Ratelimit-Requests-Remaining", "0")
			w.JSON(http.StatusTooManyRequests, fakeprovider.AnthropicError("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"))
		default:
			w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
		}
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})

	// Without retries the SDK reports the provider's error as is.
	_, err := anthropicClient(g).Messages.New(context.Background(), anthropicParams(prompt))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || !strings.Contains(apiErr.RawJSON(), "overloaded_error") {
		t.Fatalf("got %v, want the provider's 529 overloaded_error", err)
	}
	_, err = anthropicClient(g).Messages.New(context.Background(), anthropicParams(prompt))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Response.Header.Get("Retry-After") != "0" ||
		apiErr.Response.Header.Get("Anthropic-Ratelimit-Requests-Remaining") != "0" {
		t.Fatalf("got %v, want the provider's 429 with its retry headers", err)
	}
	// With retries the third call succeeds; reset the script first.
	for len(calls) > 0 {
		<-calls
	}
	msg, err := anthropicClient(g, option.WithMaxRetries(3)).Messages.New(context.Background(), anthropicParams(prompt))
	if err != nil {
		t.Fatalf("with retries: %v", err)
	}
	checkAnthropicMessage(t, msg)
	checkAnthropicUpstream(t, p, g)
}
