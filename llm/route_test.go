package llm

import (
	"errors"
	"testing"
)

func TestResolve(t *testing.T) {
	anthropicHdr := mapHeader{"anthropic-version": "2023-06-01"}
	tests := []struct {
		method, path string
		h            Header
		want         Route
		err          error
	}{
		{"POST", "/v1/messages", nil, Route{Provider: Anthropic, Operation: OpMessages, Path: "/v1/messages"}, nil},
		{"POST", "/v1/messages?beta=true", nil, Route{Provider: Anthropic, Operation: OpMessages, Path: "/v1/messages?beta=true"}, nil},
		{"POST", "/v1/v1/messages?beta=true", nil, Route{Provider: Anthropic, Operation: OpMessages, Path: "/v1/messages?beta=true"}, nil},
		{"POST", "/v1/messages/count_tokens?beta=true", nil, Route{Provider: Anthropic, Operation: OpCountTokens, Path: "/v1/messages/count_tokens?beta=true"}, nil},
		{"POST", "/v1/v1/messages/count_tokens", nil, Route{Provider: Anthropic, Operation: OpCountTokens, Path: "/v1/messages/count_tokens"}, nil},
		{"POST", "/anthropic/v1/messages", nil, Route{Provider: Anthropic, Operation: OpMessages, Path: "/v1/messages", Explicit: true}, nil},
		{"POST", "/anthropic/v1/v1/messages", nil, Route{Provider: Anthropic, Operation: OpMessages, Path: "/v1/messages", Explicit: true}, nil},
		{"GET", "/v1/models", anthropicHdr, Route{Provider: Anthropic, Operation: OpGeneric, Path: "/v1/models"}, nil},
		{"GET", "/v1/models", mapHeader{}, Route{Provider: OpenAI, Operation: OpGeneric, Path: "/v1/models"}, nil},
		{"GET", "/v1/models", nil, Route{Provider: OpenAI, Operation: OpGeneric, Path: "/v1/models"}, nil},
		{"POST", "/v1/chat/completions", nil, Route{Provider: OpenAI, Operation: OpChatCompletions, Path: "/v1/chat/completions"}, nil},
		{"POST", "/openai/v1/chat/completions", nil, Route{Provider: OpenAI, Operation: OpChatCompletions, Path: "/v1/chat/completions", Explicit: true}, nil},
		{"POST", "/mistral/v1/chat/completions", nil, Route{Provider: Mistral, Operation: OpChatCompletions, Path: "/v1/chat/completions", Explicit: true}, nil},
		{"POST", "/v1/responses", nil, Route{Provider: OpenAI, Operation: OpResponses, Path: "/v1/responses"}, nil},
		{"GET", "/v1/responses/resp_123", nil, Route{Provider: OpenAI, Operation: OpGeneric, Path: "/v1/responses/resp_123"}, nil},
		{"POST", "/v1/embeddings", nil, Route{Provider: OpenAI, Operation: OpGeneric, Path: "/v1/embeddings"}, nil},
		{"POST", "/v1/fim/completions", nil, Route{Provider: Mistral, Operation: OpGeneric, Path: "/v1/fim/completions"}, nil},
		{"POST", "/v1/agents/completions", nil, Route{Provider: Mistral, Operation: OpChatCompletions, Path: "/v1/agents/completions"}, nil},
		{"POST", "/v1beta/models/gemini-2.5-pro:generateContent", nil,
			Route{Provider: Gemini, Operation: OpGenerateContent, Path: "/v1beta/models/gemini-2.5-pro:generateContent", Model: "gemini-2.5-pro"}, nil},
		{"POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", nil,
			Route{Provider: Gemini, Operation: OpStreamGenerateContent, Path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", Model: "gemini-2.5-flash", Stream: true}, nil},
		{"POST", "/gemini/v1beta/models/gemini-2.5-flash:countTokens", nil,
			Route{Provider: Gemini, Operation: OpCountTokens, Path: "/v1beta/models/gemini-2.5-flash:countTokens", Model: "gemini-2.5-flash", Explicit: true}, nil},
		{"GET", "/v1beta/models", nil, Route{Provider: Gemini, Operation: OpGeneric, Path: "/v1beta/models"}, nil},
		{"POST", "/v1/models/gemini-2.5-pro:generateContent", nil,
			Route{Provider: Gemini, Operation: OpGenerateContent, Path: "/v1/models/gemini-2.5-pro:generateContent", Model: "gemini-2.5-pro"}, nil},
		{"POST", "/", nil, Route{}, ErrNoRoute},
		{"POST", "", nil, Route{}, ErrNoRoute},
		{"POST", "/v2/messages", nil, Route{}, ErrNoRoute},
		{"POST", "/admin", nil, Route{}, ErrNoRoute},
		{"POST", "/v1/../admin", nil, Route{}, ErrNoRoute},
		{"POST", "/v1//messages", nil, Route{}, ErrNoRoute},
		{"POST", "/openai/v1/messages", nil, Route{}, ErrNoRoute},
		{"POST", "/gemini/v1/chat/completions", nil, Route{}, ErrNoRoute},
		{"POST", "/anthropic/v1beta/models/x:generateContent", nil, Route{}, ErrNoRoute},
		{"POST", "messages", nil, Route{}, ErrNoRoute},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			got, err := Resolve(tt.method, tt.path, tt.h)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
