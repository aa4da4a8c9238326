package llm

import (
	"strings"
)

// providerPrefixes are the explicit path prefixes a client may put before
// the provider's own path to say which provider it means.
var providerPrefixes = [...]struct {
	prefix string
	p      Provider
}{
	{"/anthropic/", Anthropic},
	{"/openai/", OpenAI},
	{"/mistral/", Mistral},
	{"/gemini/", Gemini},
}

// Resolve maps a request's method, path (with query) and headers to the
// provider and operation that will handle it, and to the path to send
// upstream. It returns ErrNoRoute for anything that is not an API we proxy.
//
// Normalisation: an explicit provider prefix is removed (and decides the
// provider), a doubled /v1/v1/ (tools that put /v1 in their base URL) becomes
// /v1/, and the query (?beta=true, ?alt=sse) is kept as it is.
//
// Without a prefix, /v1/messages… is Anthropic; /v1/fim/… and
// /v1/agents/… are Mistral; /v1beta/… (and /v1/models/{model}:{action}) is
// Gemini; GET /v1/models is Anthropic when the request carries an
// anthropic-version header and OpenAI otherwise; any other /v1/… path is
// OpenAI (generic). /v1/chat/completions is OpenAI here; the body's model can
// still make it Mistral (RequestInfo.Provider).
func Resolve(method, path string, h Header) (Route, error) {
	if path == "" || path[0] != '/' {
		return Route{}, ErrNoRoute
	}
	p, query, _ := strings.Cut(path, "?")
	var explicit Provider
	for _, pp := range providerPrefixes {
		if strings.HasPrefix(p, pp.prefix) {
			explicit = pp.p
			p = p[len(pp.prefix)-1:]
			break
		}
	}
	// Collapse the doubled version segment, as often as it is doubled.
	for strings.HasPrefix(p, "/v1/v1/") || p == "/v1/v1" {
		p = p[len("/v1"):]
	}
	if strings.Contains(p, "//") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return Route{}, ErrNoRoute
	}
	r := Route{Path: p}
	if query != "" {
		r.Path += "?" + query
	}
	method = strings.ToUpper(method)

	// Gemini: /v1beta/models/{model}:{action} and /v1/models/{model}:{action}.
	if model, action, ok := geminiModelAction(p); ok && (explicit == "" || explicit == Gemini) {
		r.Provider, r.Model, r.Operation, r.Explicit = Gemini, model, OpGeneric, explicit != ""
		if method == "POST" {
			switch action {
			case "generateContent":
				r.Operation = OpGenerateContent
			case "streamGenerateContent":
				r.Operation, r.Stream = OpStreamGenerateContent, true
			case "countTokens":
				r.Operation = OpCountTokens
			}
		}
		return r, nil
	}
	if strings.HasPrefix(p, "/v1beta/") || strings.HasPrefix(p, "/v1alpha/") {
		if explicit != "" && explicit != Gemini {
			return Route{}, ErrNoRoute
		}
		r.Provider, r.Operation, r.Explicit = Gemini, OpGeneric, explicit != ""
		return r, nil
	}
	if !strings.HasPrefix(p, "/v1/") {
		return Route{}, ErrNoRoute
	}
	r.Operation = OpGeneric
	switch {
	case p == "/v1/messages" || p == "/v1/messages/count_tokens":
		r.Provider = Anthropic
		if explicit != "" && explicit != Anthropic {
			return Route{}, ErrNoRoute
		}
		if method == "POST" {
			r.Operation = OpMessages
			if p == "/v1/messages/count_tokens" {
				r.Operation = OpCountTokens
			}
		}
	case strings.HasPrefix(p, "/v1/messages/") || strings.HasPrefix(p, "/v1/complete"):
		r.Provider = Anthropic
	case p == "/v1/fim/completions" || p == "/v1/agents/completions" || strings.HasPrefix(p, "/v1/fim/") || strings.HasPrefix(p, "/v1/agents"):
		r.Provider = Mistral
	case p == "/v1/chat/completions":
		r.Provider = OpenAI
		if method == "POST" {
			r.Operation = OpChatCompletions
		}
	case p == "/v1/responses":
		r.Provider = OpenAI
		if method == "POST" {
			r.Operation = OpResponses
		}
	case p == "/v1/models" || strings.HasPrefix(p, "/v1/models/"):
		r.Provider = OpenAI
		if h != nil && h.Get("anthropic-version") != "" {
			r.Provider = Anthropic
		}
	default:
		r.Provider = OpenAI
	}
	if explicit != "" {
		if explicit == Gemini {
			return Route{}, ErrNoRoute
		}
		r.Provider, r.Explicit = explicit, true
	}
	// Mistral's agents take OpenAI-shaped messages, so the chat codec reads
	// them best; FIM (prompt and suffix) is generic.
	if r.Provider == Mistral && method == "POST" && p == "/v1/agents/completions" {
		r.Operation = OpChatCompletions
	}
	return r, nil
}

// geminiModelAction splits /v1beta/models/{model}:{action} (or /v1/…).
func geminiModelAction(p string) (model, action string, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(p, "/v1beta/models/"):
		rest = p[len("/v1beta/models/"):]
	case strings.HasPrefix(p, "/v1/models/"):
		rest = p[len("/v1/models/"):]
	default:
		return "", "", false
	}
	model, action, ok = strings.Cut(rest, ":")
	if !ok || model == "" || action == "" || strings.Contains(model, "/") || strings.Contains(action, "/") {
		return "", "", false
	}
	return model, action, true
}
