package llm

import (
	"bytes"
	"mime"
	"strings"

	"github.com/takumo/aegis/token"
)

// NewResponseRewriter returns the rewriter that puts the values of v back
// into a response body of the given status and content type:
//
//   - text/event-stream: events are framed across chunk boundaries and each
//     content stream (an Anthropic content block, an OpenAI choice's content
//     or tool call, a Responses output part, a Gemini candidate's text) is
//     rehydrated by its own token.StreamRehydrator, spliced into the
//     event's raw bytes; see the sseRewriter for the details per provider.
//   - JSON (application/json, …+json), error bodies included: buffered to
//     the end, then every string rehydrated in place (tool-call arguments,
//     which hold JSON text, as JSON fragments). A body without a token
//     prefix is returned untouched.
//   - JSON lines (application/x-ndjson): streamed through one
//     token.StreamRehydrator in JSONString mode.
//   - anything else: streamed through one token.StreamRehydrator in Raw
//     mode.
//
// Unknown tokens are left as they are and counted in Stats.
func NewResponseRewriter(route Route, info RequestInfo, status int, contentType string, v *token.Vault) ResponseRewriter {
	_ = status // every status gets the same treatment: error bodies carry tokens too
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	provider := info.Provider
	if provider == "" {
		provider = route.Provider
	}
	switch {
	case mt == "text/event-stream":
		return newSSERewriter(route, provider, v)
	case StreamedJSON(route, status, contentType):
		return newGeminiArrayRewriter(route, provider, v)
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return &jsonRewriter{v: v, fragments: usesArgumentStrings(provider)}
	case mt == "application/x-ndjson" || mt == "application/jsonl" || mt == "application/json-seq":
		// Streamed JSON lines: tokens sit inside strings, so values go
		// back JSON-escaped, as the lines arrive.
		return &rawRewriter{sr: token.NewStreamRehydrator(v, token.JSONString)}
	default:
		return &rawRewriter{sr: token.NewStreamRehydrator(v, token.Raw)}
	}
}

// StreamedJSON reports whether a response is a JSON body the provider
// streams element by element (Gemini's streamGenerateContent without
// alt=sse: one JSON array written as the model goes), which the data
// plane must pass on in STREAMED mode like an event stream.
func StreamedJSON(route Route, status int, contentType string) bool {
	if route.Provider != Gemini || route.Operation != OpStreamGenerateContent || status < 200 || status > 299 {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	return mt == "application/json"
}

// usesArgumentStrings reports whether a provider's tool-call arguments are
// JSON text inside a string (OpenAI's and Mistral's are; Anthropic's and
// Gemini's are objects).
func usesArgumentStrings(p Provider) bool {
	return p != Anthropic && p != Gemini
}

// rawRewriter streams a body of unknown type through one rehydrator.
type rawRewriter struct {
	sr   *token.StreamRehydrator
	done bool
}

func (r *rawRewriter) Write(chunk []byte, eos bool) ([]byte, error) {
	if r.done {
		return nil, nil
	}
	out := r.sr.AppendWrite(nil, chunk)
	if eos {
		r.done = true
		out = r.sr.AppendFlush(out)
	}
	return out, nil
}

func (r *rawRewriter) Stats() token.Stats { return r.sr.Stats() }

// jsonRewriter buffers a JSON body and rehydrates it whole at the end.
type jsonRewriter struct {
	v         *token.Vault
	fragments bool
	buf       []byte
	stats     token.Stats
	done      bool
}

func (r *jsonRewriter) Write(chunk []byte, eos bool) ([]byte, error) {
	if r.done {
		return nil, nil
	}
	if !eos {
		r.buf = append(r.buf, chunk...)
		return nil, nil
	}
	r.done = true
	body := chunk
	if len(r.buf) > 0 {
		body = append(r.buf, chunk...)
	}
	r.buf = nil
	if !hasTokenAnchor(body) {
		return body, nil // untouched (the caller's own chunk if nothing was buffered)
	}
	return rehydrateJSON(nil, r.v, body, r.fragments, &r.stats), nil
}

func (r *jsonRewriter) Stats() token.Stats { return r.stats }

// anchor is the part of a token that every written form of it (canonical
// or Markdown-escaped, at any JSON depth) contains.
var anchor = []byte("TAKUMO")

func hasTokenAnchor(b []byte) bool { return bytes.Contains(b, anchor) }

// rehydrateJSON appends body, a JSON text, to dst with every token put
// back: JSON-escaped in strings, escaped twice in strings that hold JSON
// text (the string values of "arguments" members that start with { or [,
// when fragments is set). Text that is not JSON is treated the same way:
// tokens only ever sit in strings.
func rehydrateJSON(dst []byte, v *token.Vault, body []byte, fragments bool, st *token.Stats) []byte {
	if !hasTokenAnchor(body) {
		return append(dst, body...)
	}
	prev := 0
	if fragments {
		forEachArgumentString(body, func(s, e int) {
			var s1, s2 token.Stats
			dst, s1 = token.AppendRehydrate(dst, v, body[prev:s], token.JSONString)
			dst, s2 = token.AppendRehydrate(dst, v, body[s:e], token.JSONFragment)
			addStats(st, s1)
			addStats(st, s2)
			prev = e
		})
	}
	var s3 token.Stats
	dst, s3 = token.AppendRehydrate(dst, v, body[prev:], token.JSONString)
	addStats(st, s3)
	return dst
}

// forEachArgumentString calls f with the body span of every string value
// of a member named "arguments" whose text starts with { or [, in order.
func forEachArgumentString(b []byte, f func(s, e int)) {
	for i := 0; i < len(b); {
		if b[i] != '"' {
			i++
			continue
		}
		end := skipString(b, i)
		if end < 0 {
			return
		}
		if end-i == len(`"arguments"`) && string(b[i+1:end-1]) == "arguments" {
			j := skipWS(b, end)
			if j < len(b) && b[j] == ':' {
				k := skipWS(b, j+1)
				if k < len(b) && b[k] == '"' {
					e := skipString(b, k)
					if e < 0 {
						return
					}
					if looksLikeJSON(b[k+1 : e-1]) {
						f(k+1, e-1)
					}
					i = e
					continue
				}
			}
		}
		i = end
	}
}

// looksLikeJSON reports whether a raw string body starts (after
// whitespace, possibly escaped) with { or [.
func looksLikeJSON(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case ' ':
			continue
		case '\\':
			if i+1 < len(raw) && (raw[i+1] == 'n' || raw[i+1] == 't' || raw[i+1] == 'r') {
				i++
				continue
			}
			return false
		case '{', '[':
			return true
		default:
			return false
		}
	}
	return false
}

// addStats adds s to st, keeping at most 100 distinct unknown tokens.
func addStats(st *token.Stats, s token.Stats) {
	st.Replaced += s.Replaced
	st.Unknown += s.Unknown
	for _, u := range s.UnknownTokens {
		if len(st.UnknownTokens) >= 100 {
			break
		}
		dup := false
		for _, have := range st.UnknownTokens {
			if have == u {
				dup = true
				break
			}
		}
		if !dup {
			st.UnknownTokens = append(st.UnknownTokens, u)
		}
	}
}
