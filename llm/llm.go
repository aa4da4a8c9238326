// Package llm knows the AI providers' HTTP APIs: which paths exist, which
// strings of a request body are prose to tokenize, which are JSON fragments
// (tool-call arguments), which must not be touched (base64 images and
// documents, ids, model names, thinking-block signatures), and how responses
// are framed (JSON bodies, server-sent events) so that tokens can be put back
// in them, streamed or not.
//
// It imports token and detect and nothing else of ours. It holds no state
// between requests: a Request and a ResponseRewriter belong to one exchange
// and are not safe for concurrent use.
//
// Supported operations (Resolve):
//
//	Anthropic  POST /v1/messages, /v1/messages/count_tokens (also under /v1/v1/…, ?beta=true)
//	OpenAI     POST /v1/chat/completions, /v1/responses; other /v1/… JSON: generic
//	Mistral    POST /v1/chat/completions with a Mistral model, /v1/fim/completions, /v1/agents/completions
//	Gemini     POST /v1beta/models/{model}:generateContent, :streamGenerateContent?alt=sse, :countTokens
//
// A path may carry an explicit provider prefix (/anthropic/v1/messages,
// /openai/v1/…, /mistral/v1/…, /gemini/v1beta/…), which wins over guessing.
//
// # Requests
//
// ParseRequest validates a body in one hand-written pass over its bytes (no
// encoding/json, no tree) and records where the strings to tokenize are;
// Request.Tokenize then runs detection on each string's decoded value and
// splices tokens into the raw bytes, leaving every other byte as it was.
// Which strings are prose is a table per provider (nodes.go): message
// text, system prompts, tool results, tool inputs and call arguments,
// thinking text, tool and schema descriptions are; ids, model names, types,
// roles, signatures, redacted thinking, and base64 image, audio and document
// data are not. Whatever the table does not name is tokenized unless it is
// an id, a type, a role or a base64 blob, member names of free-form data
// (tool inputs, unknown members) included: a token the provider only echoes
// comes back rehydrated, a secret sent cannot be recalled.
//
// Credentials meant for the provider itself to use are tokenized too:
// Anthropic mcp_servers[].authorization_token and the headers of an OpenAI
// Responses MCP tool. The provider never sees a secret — that invariant
// wins over convenience — so a provider-side MCP connector receives a token
// and its server refuses it. Teams that need provider-hosted MCP servers
// give them credentials that are not secrets to us (scoped, revocable, and
// listed in the policy's allow list, which then lets them through).
//
// # Responses
//
// NewResponseRewriter picks the codec from the content type: JSON bodies are
// rehydrated whole at the end, event streams event by event, anything else as
// a raw stream.
//
// # Event streams
//
// Events are framed across chunk boundaries (an event may be split
// anywhere; \n, \r\n and \r line ends). The text a client accumulates from
// many events is rehydrated by one token.StreamRehydrator per content stream,
// so a token split across events comes back whole:
//
//	Anthropic  per content block: text_delta, thinking_delta (JSON string),
//	           input_json_delta partial_json (JSON fragment); signature_delta untouched
//	OpenAI     per choice: content, refusal, reasoning(_content); per choice and tool
//	           call: function.arguments (fragment); Mistral's typed content chunks
//	Responses  per output item and part: ….delta events; function-call and MCP
//	           arguments as fragments
//	Gemini     per candidate: parts' text (thoughts apart)
//
// The rehydrated bytes are spliced into the event's raw bytes in place of the
// delta string; every other byte stays as it was. Other events (message_start,
// ….done, response.completed, usage chunks, errors) are rehydrated whole.
//
// Bytes held back because they may begin a token are emitted before the
// stream ends: in its final event when that carries content for the stream
// (OpenAI, Gemini), otherwise in one extra delta event of the stream's own
// shape just before its end event (Anthropic content_block_stop, Responses
// ….done of the part, OpenAI the chunk with finish_reason or [DONE], Gemini
// the chunk with finishReason). The extra event repeats the stream's last
// delta event with the held text in it (Anthropic, Responses: same index, ids
// and sequence_number) or is built from the stream's ids (OpenAI: id,
// object, created, model; Gemini: candidate index, responseId,
// modelVersion).
//
// Gemini's streamGenerateContent without alt=sse streams one JSON array
// instead of events (StreamedJSON): each element is rewritten as soon as it
// is complete, exactly as the same object in an event would be, extra
// elements included; separators pass through (geminiarray.go).
//
// A stream cut before its end (end of body, no stop event): each content
// stream's held bytes go out, rehydrated if they form a whole token and as
// they were otherwise, in one final extra delta event; an unterminated last
// event is passed on as it came (a client discards it). Nothing else is
// invented, and no half-rehydrated token is ever emitted.
package llm

import (
	"errors"

	"github.com/takumo/aegis/token"
)

// Provider names an upstream AI provider.
type Provider string

// The providers we route to.
const (
	Anthropic Provider = "anthropic"
	OpenAI    Provider = "openai"
	Mistral   Provider = "mistral"
	Gemini    Provider = "gemini"
)

// Operation names an API operation; it selects the request and response
// codec.
type Operation string

// The operations with their own codecs; OpGeneric tokenizes every string of
// a JSON body and rehydrates every string of the response.
const (
	OpMessages              Operation = "messages"
	OpCountTokens           Operation = "count_tokens"
	OpChatCompletions       Operation = "chat_completions"
	OpResponses             Operation = "responses"
	OpGenerateContent       Operation = "generate_content"
	OpStreamGenerateContent Operation = "stream_generate_content"
	OpGeneric               Operation = "generic"
)

// Route is what a request path says.
type Route struct {
	Provider  Provider
	Operation Operation
	// Path is the path (with query) to send upstream: /v1/v1/messages and
	// provider prefixes normalised away.
	Path string
	// Model and Stream come from the path where the path carries them
	// (Gemini); otherwise the request body decides (RequestInfo).
	Model  string
	Stream bool
	// Explicit is set when the path named the provider (/openai/v1/…): the
	// body's model then does not change it.
	Explicit bool
}

// Header is the read side of a header map (http.Header, or ext_proc's).
type Header interface {
	Get(name string) string
}

// ErrNoRoute means the path is not an API we proxy (404).
var ErrNoRoute = errors.New("llm: no such route")

// RequestError is a request body we cannot accept (400). Msg is safe to
// show to the client: it never contains body content.
type RequestError struct {
	Msg string
}

func (e *RequestError) Error() string { return "llm: " + e.Msg }

// RequestInfo is what the body of a request says about it.
type RequestInfo struct {
	// Provider is the route's provider, refined by the model where a path is
	// shared (a mistral-… model on /v1/chat/completions is Mistral).
	Provider Provider
	Model    string
	Stream   bool
	// Session is a session id found in the body (Anthropic metadata.user_id
	// session part, OpenAI prompt_cache_key or user), "" if none.
	Session string
	// PreviousResponseID is OpenAI Responses' previous_response_id.
	PreviousResponseID string
}

// Detection is a token.Detection placed in the request: Field is the JSON
// path of the string it was found in (messages[2].content[0].text), Line
// the 1-based line within that string's decoded value. Offsets are within
// the decoded value. It never holds the value.
type Detection struct {
	token.Detection
	Field string
	Line  int
}

// ResponseRewriter puts values back into one response body.
type ResponseRewriter interface {
	// Write takes the next chunk of the response body (content-encoding
	// identity) and returns the bytes to send downstream now; eos marks the
	// last chunk, after which everything held back has been returned and
	// further writes return nothing. The result may be chunk itself (a
	// body with nothing to put back), so the caller must send it before it
	// reuses chunk's memory. The errors are reserved; none is returned
	// today.
	Write(chunk []byte, eos bool) ([]byte, error)
	// Stats counts tokens replaced and unknown tokens left.
	Stats() token.Stats
}
