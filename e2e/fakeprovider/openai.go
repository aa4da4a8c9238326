package fakeprovider

// ChatReply is an OpenAI Chat Completions answer: text content and an
// optional function tool call.
type ChatReply struct {
	ID, Model string
	Text      string
	Tool      *ToolCall
	// DeltaSize is the size of the content and arguments deltas (default 7).
	DeltaSize        int
	PromptTokens     int
	CompletionTokens int
}

func (c ChatReply) defaults() ChatReply {
	if c.ID == "" {
		c.ID = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
	}
	if c.Model == "" {
		c.Model = "gpt-4o-2024-08-06"
	}
	if c.DeltaSize == 0 {
		c.DeltaSize = 7
	}
	if c.PromptTokens == 0 {
		c.PromptTokens = 356
	}
	if c.CompletionTokens == 0 {
		c.CompletionTokens = 142
	}
	return c
}

func (c ChatReply) finish() string {
	if c.Tool != nil {
		return "tool_calls"
	}
	return "stop"
}

func (c ChatReply) usage() obj {
	return obj{"prompt_tokens": c.PromptTokens, "completion_tokens": c.CompletionTokens,
		"total_tokens": c.PromptTokens + c.CompletionTokens}
}

// JSON is the non-streamed body.
func (c ChatReply) JSON() []byte {
	c = c.defaults()
	msg := obj{"role": "assistant", "content": c.Text, "refusal": nil}
	if c.Tool != nil {
		msg["tool_calls"] = []obj{{"id": c.Tool.ID, "type": "function",
			"function": obj{"name": c.Tool.Name, "arguments": string(c.Tool.Input)}}}
	}
	return mustJSON(obj{
		"id": c.ID, "object": "chat.completion", "created": 1764300000, "model": c.Model,
		"choices":            []obj{{"index": 0, "message": msg, "logprobs": nil, "finish_reason": c.finish()}},
		"usage":              c.usage(),
		"system_fingerprint": "fp_f33640a400",
	})
}

// Events is the streamed form: a role chunk, content deltas, the tool call
// (id and name first, then arguments deltas), the finish chunk, a usage
// chunk with no choices, and [DONE].
func (c ChatReply) Events() []Event {
	c = c.defaults()
	chunk := func(choices []obj, usage any) Event {
		return Event{Data: mustJSON(obj{
			"id": c.ID, "object": "chat.completion.chunk", "created": 1764300000, "model": c.Model,
			"system_fingerprint": "fp_f33640a400", "choices": choices, "usage": usage,
		})}
	}
	delta := func(d obj, finish any) []obj {
		return []obj{{"index": 0, "delta": d, "logprobs": nil, "finish_reason": finish}}
	}
	out := []Event{chunk(delta(obj{"role": "assistant", "content": "", "refusal": nil}, nil), nil)}
	for _, p := range Pieces(c.Text, c.DeltaSize) {
		out = append(out, chunk(delta(obj{"content": p}, nil), nil))
	}
	if c.Tool != nil {
		out = append(out, chunk(delta(obj{"tool_calls": []obj{{"index": 0, "id": c.Tool.ID, "type": "function",
			"function": obj{"name": c.Tool.Name, "arguments": ""}}}}, nil), nil))
		for _, p := range Pieces(string(c.Tool.Input), c.DeltaSize) {
			out = append(out, chunk(delta(obj{"tool_calls": []obj{{"index": 0,
				"function": obj{"arguments": p}}}}, nil), nil))
		}
	}
	out = append(out,
		chunk(delta(obj{}, c.finish()), nil),
		chunk([]obj{}, c.usage()),
		Event{Data: []byte("[DONE]")},
	)
	return out
}

// OpenAIError is an OpenAI error body.
func OpenAIError(typ, code, msg string) []byte {
	return mustJSON(obj{"error": obj{"message": msg, "type": typ, "param": nil, "code": code}})
}

// ResponsesReply is an OpenAI Responses answer: a message with one
// output_text part and an optional function call.
type ResponsesReply struct {
	ID, Model string
	Text      string
	Tool      *ToolCall
	DeltaSize int
}

func (r ResponsesReply) defaults() ResponsesReply {
	if r.ID == "" {
		r.ID = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
	}
	if r.Model == "" {
		r.Model = "gpt-4.1-2025-04-14"
	}
	if r.DeltaSize == 0 {
		r.DeltaSize = 7
	}
	return r
}

const (
	respMsgID  = "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b"
	respFuncID = "fc_67ccd3acc8d48190a77525dc6de64b550bb6a6b452d3795b"
)

func (r ResponsesReply) messageItem(status, text string) obj {
	content := []obj{}
	if status == "completed" {
		content = []obj{{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}}
	}
	return obj{"id": respMsgID, "type": "message", "status": status, "role": "assistant", "content": content}
}

func (r ResponsesReply) funcItem(status, args string) obj {
	return obj{"id": respFuncID, "type": "function_call", "status": status, "call_id": r.Tool.ID,
		"name": r.Tool.Name, "arguments": args}
}

func (r ResponsesReply) response(status string, output []obj, usage any) obj {
	return obj{
		"id": r.ID, "object": "response", "created_at": 1764300000, "status": status,
		"model": r.Model, "output": output, "parallel_tool_calls": true, "tool_choice": "auto",
		"tools": []any{}, "temperature": 1.0, "top_p": 1.0, "text": obj{"format": obj{"type": "text"}},
		"error": nil, "incomplete_details": nil, "instructions": nil, "metadata": obj{},
		"usage": usage,
	}
}

// JSON is the non-streamed body.
func (r ResponsesReply) JSON() []byte {
	r = r.defaults()
	output := []obj{r.messageItem("completed", r.Text)}
	if r.Tool != nil {
		output = append(output, r.funcItem("completed", string(r.Tool.Input)))
	}
	return mustJSON(r.response("completed", output, r.usage()))
}

func (r ResponsesReply) usage() obj {
	return obj{"input_tokens": 328, "input_tokens_details": obj{"cached_tokens": 0},
		"output_tokens": 96, "output_tokens_details": obj{"reasoning_tokens": 0}, "total_tokens": 424}
}

// Events is the streamed form, from response.created to response.completed,
// with the .done events and the completed response repeating the whole
// text and arguments.
func (r ResponsesReply) Events() []Event {
	r = r.defaults()
	seq := 0
	ev := func(typ string, v obj) Event {
		v["type"] = typ
		v["sequence_number"] = seq
		seq++
		return Event{Name: typ, Data: mustJSON(v)}
	}
	out := []Event{
		ev("response.created", obj{"response": r.response("in_progress", []obj{}, nil)}),
		ev("response.in_progress", obj{"response": r.response("in_progress", []obj{}, nil)}),
		ev("response.output_item.added", obj{"output_index": 0, "item": r.messageItem("in_progress", "")}),
		ev("response.content_part.added", obj{"item_id": respMsgID, "output_index": 0, "content_index": 0,
			"part": obj{"type": "output_text", "text": "", "annotations": []any{}}}),
	}
	for _, p := range Pieces(r.Text, r.DeltaSize) {
		out = append(out, ev("response.output_text.delta", obj{"item_id": respMsgID, "output_index": 0,
			"content_index": 0, "delta": p, "logprobs": []any{}}))
	}
	out = append(out,
		ev("response.output_text.done", obj{"item_id": respMsgID, "output_index": 0, "content_index": 0,
			"text": r.Text, "logprobs": []any{}}),
		ev("response.content_part.done", obj{"item_id": respMsgID, "output_index": 0, "content_index": 0,
			"part": obj{"type": "output_text", "text": r.Text, "annotations": []any{}}}),
		ev("response.output_item.done", obj{"output_index": 0, "item": r.messageItem("completed", r.Text)}),
	)
	output := []obj{r.messageItem("completed", r.Text)}
	if r.Tool != nil {
		args := string(r.Tool.Input)
		out = append(out, ev("response.output_item.added", obj{"output_index": 1, "item": r.funcItem("in_progress", "")}))
		for _, p := range Pieces(args, r.DeltaSize) {
			out = append(out, ev("response.function_call_arguments.delta", obj{"item_id": respFuncID,
				"output_index": 1, "delta": p}))
		}
		out = append(out,
			ev("response.function_call_arguments.done", obj{"item_id": respFuncID, "output_index": 1,
				"arguments": args}),
			ev("response.output_item.done", obj{"output_index": 1, "item": r.funcItem("completed", args)}),
		)
		output = append(output, r.funcItem("completed", args))
	}
	out = append(out, ev("response.completed", obj{"response": r.response("completed", output, r.usage())}))
	return out
}
