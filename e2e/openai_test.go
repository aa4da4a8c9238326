package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/takumo/aegis/e2e/fakeprovider"
)

func openAIClient(g *gateway, opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(g.base + "/v1"), option.WithAPIKey(g.key), option.WithMaxRetries(0),
	}, opts...)...)
	return &c
}

var echoToolSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"content": map[string]any{"type": "string"},
		"values":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
	},
}

func chatParams(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("You are a careful code reviewer."),
			openai.UserMessage(text),
		},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        "write_config",
			Description: openai.String("Write the fixed configuration file"),
			Parameters:  echoToolSchema,
		})},
	}
}

// chatUserText is the (tokenized) user text of a recorded Chat request.
func chatUserText(t *testing.T, body []byte) string {
	t.Helper()
	var req struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Errorf("provider got a body that is not a Chat request: %v", err)
		return ""
	}
	for _, m := range req.Messages {
		var s string
		if m.Role == "user" && json.Unmarshal(m.Content, &s) == nil {
			return s
		}
	}
	t.Error("provider got no user message")
	return ""
}

func chatEcho(t *testing.T, r *fakeprovider.Request) fakeprovider.ChatReply {
	text := chatUserText(t, r.Body)
	return fakeprovider.ChatReply{
		Text: text,
		Tool: &fakeprovider.ToolCall{ID: "call_Jx3mYp0aQ7rL2vN8sK4tW1bE", Name: "write_config",
			Input: echoInput(t, text, fakeprovider.Tokens(r.Body))},
	}
}

func checkOpenAIUpstream(t *testing.T, p *fakeprovider.Server, g *gateway) {
	t.Helper()
	reqs := p.Requests()
	if len(reqs) == 0 {
		t.Fatal("the provider received no request")
	}
	for _, r := range reqs {
		if got := r.Header.Get("Authorization"); got != "Bearer "+openAIProviderKey {
			t.Errorf("provider Authorization is not the configured provider key (%d bytes)", len(got))
		}
		if toks := fakeprovider.Tokens(r.Body); len(toks) != len(planted) {
			t.Errorf("provider got %d distinct tokens, want %d", len(toks), len(planted))
		}
	}
	assertProviderSawNoSecret(t, p, neverUpstream(g))
}

func checkChatCompletion(t *testing.T, c *openai.ChatCompletion) {
	t.Helper()
	if len(c.Choices) != 1 {
		t.Fatalf("got %d choices", len(c.Choices))
	}
	m := c.Choices[0].Message
	if m.Content != prompt {
		t.Errorf("content:\n got %q\nwant %q", m.Content, prompt)
	}
	if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "write_config" || m.ToolCalls[0].ID != "call_Jx3mYp0aQ7rL2vN8sK4tW1bE" {
		t.Fatalf("tool calls %+v", m.ToolCalls)
	}
	checkEchoTool(t, []byte(m.ToolCalls[0].Function.Arguments))
	if c.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("finish_reason %q", c.Choices[0].FinishReason)
	}
}

func TestOpenAIChatJSON(t *testing.T) {
	t.Parallel()
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, chatEcho(t, r).JSON())
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})
	c, err := openAIClient(g).Chat.Completions.New(context.Background(), chatParams(prompt))
	if err != nil {
		t.Fatal(err)
	}
	checkChatCompletion(t, c)
	if c.Usage.TotalTokens != 498 {
		t.Errorf("usage %+v", c.Usage)
	}
	checkOpenAIUpstream(t, p, g)
}

func TestOpenAIChatStream(t *testing.T) {
	t.Parallel()
	for _, sp := range splits() {
		t.Run(sp.name, func(t *testing.T) {
			t.Parallel()
			p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
				data, b := fakeprovider.Encode(chatEcho(t, r).Events())
				w.Stream(sp.cut(data, b))
			})
			defer p.Close()
			g := startGateway(t, p, gatewayOpts{})
			params := chatParams(prompt)
			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			stream := openAIClient(g).Chat.Completions.NewStreaming(context.Background(), params)
			// stream.Err is what is checked; Close only releases the connection.
			defer func() { _ = stream.Close() }()
			var (
				acc        openai.ChatCompletionAccumulator
				chunks     int
				usageOnly  int
				finishedTC int
				content    strings.Builder
			)
			for stream.Next() {
				ch := stream.Current()
				chunks++
				if !acc.AddChunk(ch) {
					t.Fatalf("the SDK accumulator refused chunk %d", chunks)
				}
				if len(ch.Choices) == 0 {
					usageOnly++
					if ch.Usage.TotalTokens != 498 {
						t.Errorf("usage chunk %+v", ch.Usage)
					}
				} else {
					content.WriteString(ch.Choices[0].Delta.Content)
				}
				if tc, ok := acc.JustFinishedToolCall(); ok {
					finishedTC++
					checkEchoTool(t, []byte(tc.Arguments))
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if usageOnly != 1 {
				t.Errorf("got %d usage chunks, want 1 (last before [DONE])", usageOnly)
			}
			if finishedTC != 1 {
				t.Errorf("the accumulator finished %d tool calls, want 1", finishedTC)
			}
			if content.String() != prompt {
				t.Errorf("content deltas:\n got %q\nwant %q", content.String(), prompt)
			}
			checkChatCompletion(t, &acc.ChatCompletion)
			checkOpenAIUpstream(t, p, g)
		})
	}
}

// TestOpenAIRateLimitPassThrough: OpenAI's 429 reaches the SDK with its
// status, retry-after and body.
func TestOpenAIRateLimitPassThrough(t *testing.T) {
	t.Parallel()
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, _ *fakeprovider.Request) {
		w.Header().Set("Retry-After", "7")
		w.Header().Set("X-Ratelimit-Remaining-Requests", "0")
		w.Header().Set("X-Ratelimit-Reset-Requests", "6.5s")
		w.JSON(http.StatusTooManyRequests, fakeprovider.OpenAIError("requests", "rate_limit_exceeded",
			"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500."))
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})
	_, err := openAIClient(g).Chat.Completions.New(context.Background(), chatParams(prompt))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %v, want an API error", err)
	}
	if apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "rate_limit_exceeded" ||
		apiErr.Response.Header.Get("Retry-After") != "7" ||
		apiErr.Response.Header.Get("X-Ratelimit-Reset-Requests") != "6.5s" {
		t.Errorf("got %d %q retry-after %q", apiErr.StatusCode, apiErr.Code, apiErr.Response.Header.Get("Retry-After"))
	}
	checkOpenAIUpstream(t, p, g)
}

func responsesParams(text string) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model:        "gpt-4.1",
		Instructions: openai.String("You are a careful code reviewer."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String(text)},
		Tools: []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{
			Name: "write_config", Parameters: echoToolSchema, Strict: openai.Bool(false),
		}}},
	}
}

func responsesEcho(t *testing.T, r *fakeprovider.Request) fakeprovider.ResponsesReply {
	var req struct {
		Input string `json:"input"`
	}
	if err := json.Unmarshal(r.Body, &req); err != nil {
		t.Errorf("provider got a body that is not a Responses request with string input: %v", err)
	}
	return fakeprovider.ResponsesReply{
		Text: req.Input,
		Tool: &fakeprovider.ToolCall{ID: "call_Rq8vZ2mK5pT1wY7nL4xB9cA0", Name: "write_config",
			Input: echoInput(t, req.Input, fakeprovider.Tokens(r.Body))},
	}
}

func checkResponse(t *testing.T, r *responses.Response) {
	t.Helper()
	if got := r.OutputText(); got != prompt {
		t.Errorf("output text:\n got %q\nwant %q", got, prompt)
	}
	var fc int
	for _, item := range r.Output {
		if item.Type != "function_call" {
			continue
		}
		fc++
		if item.Name != "write_config" || item.CallID != "call_Rq8vZ2mK5pT1wY7nL4xB9cA0" {
			t.Errorf("function call %s %s", item.Name, item.CallID)
		}
		checkEchoTool(t, []byte(item.Arguments.OfString))
	}
	if fc != 1 {
		t.Errorf("got %d function calls, want 1", fc)
	}
}

func TestOpenAIResponsesJSON(t *testing.T) {
	t.Parallel()
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, responsesEcho(t, r).JSON())
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})
	r, err := openAIClient(g).Responses.New(context.Background(), responsesParams(prompt))
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, r)
	checkOpenAIUpstream(t, p, g)
}

func TestOpenAIResponsesStream(t *testing.T) {
	t.Parallel()
	for _, sp := range splits() {
		t.Run(sp.name, func(t *testing.T) {
			t.Parallel()
			p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
				data, b := fakeprovider.Encode(responsesEcho(t, r).Events())
				w.Stream(sp.cut(data, b))
			})
			defer p.Close()
			g := startGateway(t, p, gatewayOpts{})
			stream := openAIClient(g).Responses.NewStreaming(context.Background(), responsesParams(prompt))
			// stream.Err is what is checked; Close only releases the connection.
			defer func() { _ = stream.Close() }()
			var (
				types              []string
				text, args         strings.Builder
				textDone, argsDone string
				completed          *responses.Response
				lastSeq            int64 = -1
			)
			for stream.Next() {
				ev := stream.Current()
				if ev.SequenceNumber != lastSeq+1 {
					t.Errorf("event %s has sequence_number %d after %d", ev.Type, ev.SequenceNumber, lastSeq)
				}
				lastSeq = ev.SequenceNumber
				if len(types) == 0 || types[len(types)-1] != ev.Type {
					types = append(types, ev.Type)
				}
				switch ev.Type {
				case "response.output_text.delta":
					text.WriteString(ev.Delta)
				case "response.output_text.done":
					textDone = ev.Text
				case "response.function_call_arguments.delta":
					args.WriteString(ev.Delta)
				case "response.function_call_arguments.done":
					argsDone = ev.Arguments
				case "response.completed":
					r := ev.Response
					completed = &r
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			want := []string{"response.created", "response.in_progress", "response.output_item.added",
				"response.content_part.added", "response.output_text.delta", "response.output_text.done",
				"response.content_part.done", "response.output_item.done", "response.output_item.added",
				"response.function_call_arguments.delta", "response.function_call_arguments.done",
				"response.output_item.done", "response.completed"}
			if strings.Join(types, ",") != strings.Join(want, ",") {
				t.Errorf("event sequence\n got %v\nwant %v", types, want)
			}
			if text.String() != prompt || textDone != prompt {
				t.Errorf("output text deltas or done event differ from the original:\n deltas %q\n done   %q", text.String(), textDone)
			}
			checkEchoTool(t, []byte(args.String()))
			checkEchoTool(t, []byte(argsDone))
			if completed == nil {
				t.Fatal("no response.completed")
			}
			checkResponse(t, completed)
			checkOpenAIUpstream(t, p, g)
		})
	}
}
