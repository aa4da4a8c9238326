package fakeprovider

import (
	"encoding/json"
	"fmt"
)

// ToolCall is a tool call a reply makes; Input is its JSON arguments.
type ToolCall struct {
	ID, Name string
	Input    json.RawMessage
}

// AnthropicReply is an Anthropic Messages answer: an optional thinking block
// (with its signature), a text block and an optional tool_use block.
type AnthropicReply struct {
	ID, Model string
	Thinking  string
	Signature string
	Text      string
	Tool      *ToolCall
	// DeltaSize is the size of the text, thinking and partial_json deltas
	// of the streamed form (default 7 bytes, so tokens span several).
	DeltaSize    int
	InputTokens  int
	OutputTokens int
}

func (a AnthropicReply) defaults() AnthropicReply {
	if a.ID == "" {
		a.ID = "msg_01XFDUDYJgAACzvnptvVoYEL"
	}
	if a.Model == "" {
		a.Model = "claude-sonnet-4-5-20250929"
	}
	if a.DeltaSize == 0 {
		a.DeltaSize = 7
	}
	if a.InputTokens == 0 {
		a.InputTokens = 412
	}
	if a.OutputTokens == 0 {
		a.OutputTokens = 187
	}
	return a
}

func (a AnthropicReply) stopReason() string {
	if a.Tool != nil {
		return "tool_use"
	}
	return "end_turn"
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeprovider: %v", err))
	}
	return b
}

type obj = map[string]any

func (a AnthropicReply) blocks() []obj {
	var content []obj
	if a.Thinking != "" {
		content = append(content, obj{"type": "thinking", "thinking": a.Thinking, "signature": a.Signature})
	}
	content = append(content, obj{"type": "text", "text": a.Text})
	if a.Tool != nil {
		content = append(content, obj{"type": "tool_use", "id": a.Tool.ID, "name": a.Tool.Name, "input": a.Tool.Input})
	}
	return content
}

// JSON is the non-streamed body.
func (a AnthropicReply) JSON() []byte {
	a = a.defaults()
	return mustJSON(obj{
		"id": a.ID, "type": "message", "role": "assistant", "model": a.Model,
		"content": a.blocks(), "stop_reason": a.stopReason(), "stop_sequence": nil,
		"usage": obj{"input_tokens": a.InputTokens, "output_tokens": a.OutputTokens},
	})
}

// Events is the streamed form: message_start, ping, per block
// content_block_start, its deltas (thinking_delta then signature_delta,
// text_delta, input_json_delta) and content_block_stop, then message_delta
// with usage and message_stop.
func (a AnthropicReply) Events() []Event {
	a = a.defaults()
	ev := func(name string, v obj) Event {
		v["type"] = name
		return Event{Name: name, Data: mustJSON(v)}
	}
	out := []Event{
		ev("message_start", obj{"message": obj{
			"id": a.ID, "type": "message", "role": "assistant", "model": a.Model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil,
			"usage": obj{"input_tokens": a.InputTokens, "output_tokens": 1},
		}}),
		ev("ping", obj{}),
	}
	idx := 0
	block := func(start obj, deltas []obj) {
		out = append(out, ev("content_block_start", obj{"index": idx, "content_block": start}))
		for _, d := range deltas {
			out = append(out, ev("content_block_delta", obj{"index": idx, "delta": d}))
		}
		out = append(out, ev("content_block_stop", obj{"index": idx}))
		idx++
	}
	if a.Thinking != "" {
		var ds []obj
		for _, p := range Pieces(a.Thinking, a.DeltaSize) {
			ds = append(ds, obj{"type": "thinking_delta", "thinking": p})
		}
		ds = append(ds, obj{"type": "signature_delta", "signature": a.Signature})
		block(obj{"type": "thinking", "thinking": "", "signature": ""}, ds)
	}
	var ds []obj
	for _, p := range Pieces(a.Text, a.DeltaSize) {
		ds = append(ds, obj{"type": "text_delta", "text": p})
	}
	block(obj{"type": "text", "text": ""}, ds)
	if a.Tool != nil {
		var ds []obj
		for _, p := range Pieces(string(a.Tool.Input), a.DeltaSize) {
			ds = append(ds, obj{"type": "input_json_delta", "partial_json": p})
		}
		block(obj{"type": "tool_use", "id": a.Tool.ID, "name": a.Tool.Name, "input": obj{}}, ds)
	}
	out = append(out,
		ev("ping", obj{}),
		ev("message_delta", obj{
			"delta": obj{"stop_reason": a.stopReason(), "stop_sequence": nil},
			"usage": obj{"output_tokens": a.OutputTokens},
		}),
		ev("message_stop", obj{}),
	)
	return out
}

// AnthropicError is an Anthropic error body, e.g. ("overloaded_error",
// "Overloaded") for a 529 or ("rate_limit_error", …) for a 429.
func AnthropicError(typ, msg string) []byte {
	return mustJSON(obj{"type": "error", "error": obj{"type": typ, "message": msg},
		"request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
}
