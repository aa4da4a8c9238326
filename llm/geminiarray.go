package llm

import (
	"bytes"

	"github.com/takumo/aegis/token"
)

// geminiArrayRewriter rehydrates Gemini's streamGenerateContent answer
// without alt=sse: one JSON array whose elements (GenerateContentResponse
// objects) arrive as the model writes them. Each element is rewritten, as
// soon as it is complete, exactly as the same object in an SSE event would
// be (the SSE rewriter's Gemini handling: per-candidate text streams that
// hold back at most one partial token, and flush it in an extra element
// before the candidate's finishReason chunk or the end). Separators and
// whitespace between elements pass through as they came.
//
// A body that is not an array (an error object, say) is rewritten whole
// at the end, as a JSON body.
type geminiArrayRewriter struct {
	sse *sseRewriter

	buf      []byte // bytes not yet emitted
	scan     int    // where scanning resumes in buf
	opened   bool   // the '[' has gone out
	whole    bool   // not an array: buffer and rewrite at the end
	elem     int    // start of the current element in buf, -1 outside one
	depth    int
	inString bool
	escaped  bool
	emitted  bool // an element has gone out (the next needs a comma first)
	done     bool
	fallback jsonRewriter
}

func newGeminiArrayRewriter(route Route, provider Provider, v *token.Vault) *geminiArrayRewriter {
	return &geminiArrayRewriter{sse: newSSERewriter(route, provider, v), elem: -1,
		fallback: jsonRewriter{v: v, fragments: usesArgumentStrings(provider)}}
}

func (r *geminiArrayRewriter) Write(chunk []byte, eos bool) ([]byte, error) {
	if r.done {
		return nil, nil
	}
	if r.whole {
		return r.fallback.Write(chunk, eos)
	}
	r.buf = append(r.buf, chunk...)
	out := make([]byte, 0, len(chunk)+64)
	emit := 0 // buf[:emit] has been handled
	for i := r.scan; i < len(r.buf); i++ {
		c := r.buf[i]
		if !r.opened {
			switch c {
			case ' ', '\t', '\r', '\n':
				continue
			case '[':
				r.opened = true
				out = append(out, r.buf[emit:i+1]...)
				emit = i + 1
				continue
			default:
				// Not an array: the whole body is one JSON value.
				r.whole = true
				rest := append([]byte(nil), r.buf[emit:]...)
				r.buf = nil
				b, err := r.fallback.Write(rest, eos)
				return append(out, b...), err
			}
		}
		if r.elem < 0 {
			switch c {
			case '{':
				// Separators before the element go out with it.
				r.elem = i
				r.depth = 1
			case ']':
				out = append(out, r.flushExtras()...)
				out = append(out, r.buf[emit:]...)
				emit = len(r.buf)
				i = len(r.buf)
			}
			continue
		}
		switch {
		case r.inString:
			switch {
			case r.escaped:
				r.escaped = false
			case c == '\\':
				r.escaped = true
			case c == '"':
				r.inString = false
			}
		case c == '"':
			r.inString = true
		case c == '{' || c == '[':
			r.depth++
		case c == '}' || c == ']':
			r.depth--
			if r.depth == 0 {
				sep := r.buf[emit:r.elem]
				out = r.element(out, sep, r.buf[r.elem:i+1])
				emit = i + 1
				r.elem = -1
			}
		}
	}
	if r.elem >= 0 && r.elem < emit {
		r.elem = -1 // cannot happen: an open element is never emitted
	}
	// Keep what is not handled yet (an open element and the separators
	// before it).
	keep := emit
	if r.elem >= 0 {
		r.elem -= keep
	}
	r.buf = append(r.buf[:0], r.buf[keep:]...)
	r.scan = len(r.buf)
	if eos {
		r.done = true
		out = append(out, r.flushExtras()...)
		if len(r.buf) > 0 {
			// A cut element: pass it on rehydrated whole (a client cannot
			// parse it anyway).
			out = rehydrateJSON(out, r.sse.v, r.buf, false, &r.sse.stats)
		}
		r.buf = nil
	}
	return out, nil
}

// element appends sep and the rewritten element (preceded by the extra
// elements the SSE rewriter emits before it).
func (r *geminiArrayRewriter) element(out, sep, elem []byte) []byte {
	ev := make([]byte, 0, len(elem)+8)
	ev = append(ev, "data: "...)
	ev = append(ev, elem...)
	ev = append(ev, '\n', '\n')
	rewritten := r.sse.event(nil, ev)
	elems := sseElements(rewritten)
	out = append(out, sep...)
	for i, e := range elems {
		if i > 0 {
			out = append(out, ",\n"...)
		}
		out = append(out, e...)
	}
	r.emitted = r.emitted || len(elems) > 0
	return out
}

// flushExtras returns the extra elements for the bytes the open streams
// still hold, each preceded by a comma.
func (r *geminiArrayRewriter) flushExtras() []byte {
	var out []byte
	for _, e := range sseElements(r.sse.flushAll(nil)) {
		if r.emitted {
			out = append(out, ",\n"...)
		}
		out = append(out, e...)
		r.emitted = true
	}
	return out
}

// sseElements splits "data: {…}\n\n" events into their payloads.
func sseElements(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		end := bytes.Index(b, []byte("\n\n"))
		if end < 0 {
			end = len(b)
		}
		ev := bytes.TrimPrefix(b[:end], []byte("data: "))
		if len(ev) > 0 {
			out = append(out, ev)
		}
		b = b[min(len(b), end+2):]
	}
	return out
}

func (r *geminiArrayRewriter) Stats() token.Stats {
	if r.whole {
		return r.fallback.Stats()
	}
	return r.sse.Stats()
}
