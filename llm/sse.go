package llm

import (
	"bytes"

	"github.com/takumo/aegis/token"
)

// sseRewriter rehydrates a server-sent event stream; the package doc
// ("Event streams") says what it does with each provider's events.
type sseRewriter struct {
	v         *token.Vault
	fragments bool // whole events: "arguments" strings are JSON text

	buf     []byte // the incomplete event
	scan    int    // where the line scan of buf resumes
	line    int    // start of the current line in buf
	streams []*deltaStream
	stats   token.Stats // of whole events and closed streams
	eol     string      // line ending of the last event
	splices []splice    // scratch
	top     topFields   // scratch
	done    bool

	// OpenAI Responses events are numbered (sequence_number). Each extra
	// delta event this rewriter inserts takes the number of the event it
	// precedes, and every later event moves up by one: seqShift is how
	// many were inserted, curSeq the original number of the event being
	// rewritten (-1: none), lastSeq the last number sent, ownStart where
	// the current event's own bytes begin in the output.
	seqShift, curSeq, lastSeq, ownStart int
}

func newSSERewriter(route Route, provider Provider, v *token.Vault) *sseRewriter {
	_ = route
	return &sseRewriter{v: v, fragments: usesArgumentStrings(provider), eol: "\n", curSeq: -1, lastSeq: -1}
}

// streamKey identifies one content stream of a response.
type streamKey struct {
	kind   uint8 // which shape builds its extra events
	a      int   // block index / choice index / output_index / candidate
	b      int   // field / content_index / thought
	c      int   // tool call index / summary_index
	itemID string
}

const (
	kindTemplate uint8 = iota // Anthropic and Responses: repeat the last delta event
	kindChat
	kindGemini
)

// Chat delta fields.
const (
	chatContent = iota
	chatRefusal
	chatReasoningContent
	chatReasoning
	chatTool
	chatThinking // Mistral: content chunks of type thinking
)

var chatFieldNames = [...]string{"content", "refusal", "reasoning_content", "reasoning"}

// deltaStream is one content stream.
type deltaStream struct {
	key       streamKey
	sr        *token.StreamRehydrator
	pendingBS bool // a lone backslash kept back from the last emission

	// kindTemplate: the last delta event and the span of its delta string,
	// and its original sequence_number (-1: none).
	tmpl    []byte
	ts, te  int
	tmplSeq int
	// kindChat, kindGemini: the envelope members copied from the last event.
	env []byte
}

func (d *deltaStream) held() bool { return d.pendingBS || d.sr.Held() > 0 }

// write appends the rehydrated form of raw (a JSON string body) to dst.
// The emitted text goes into a JSON string of its own, so it must not end
// inside an escape: token.StreamRehydrator holds back whole escape pairs
// today, and should a cut ever fall between the two bytes of one, the lone
// backslash waits here for the next emission instead of breaking the
// event's JSON.
func (d *deltaStream) write(dst, raw []byte) []byte {
	start := len(dst)
	if d.pendingBS {
		dst = append(dst, '\\')
		d.pendingBS = false
	}
	dst = d.sr.AppendWrite(dst, raw)
	if endsInEscape(dst[start:]) {
		dst = dst[:len(dst)-1]
		d.pendingBS = true
	}
	return dst
}

func (d *deltaStream) flush(dst []byte) []byte {
	if d.pendingBS {
		dst = append(dst, '\\')
		d.pendingBS = false
	}
	return d.sr.AppendFlush(dst)
}

// endsInEscape reports whether b, JSON string content that starts outside
// an escape, ends with a backslash that begins an escape.
func endsInEscape(b []byte) bool {
	i := 0
	for {
		k := bytes.IndexByte(b[i:], '\\')
		if k < 0 {
			return false
		}
		i += k + 2
		if i > len(b) {
			return true
		}
	}
}

// splice is a delta string of an event to replace.
type splice struct {
	s, e  int // body of the string in the event
	st    *deltaStream
	flush bool // the stream ends with this event
}

func (r *sseRewriter) Write(chunk []byte, eos bool) ([]byte, error) {
	if r.done {
		return nil, nil
	}
	out := make([]byte, 0, len(chunk)+len(chunk)/8)
	r.buf = append(r.buf, chunk...)
	off := 0
	for {
		n := r.eventEnd(off, eos)
		if n < 0 {
			break
		}
		out = r.event(out, r.buf[off:n])
		off = n
		r.scan, r.line = n, n
	}
	if off > 0 {
		r.buf = append(r.buf[:0], r.buf[off:]...)
		r.scan -= off
		r.line -= off
	}
	if eos {
		r.done = true
		// Extra events at a cut stream follow the last event sent.
		r.curSeq, r.seqShift = -1, 0
		if r.lastSeq >= 0 {
			r.curSeq = r.lastSeq + 1
		}
		out = r.flushAll(out)
		if len(r.buf) > 0 {
			out = rehydrateJSON(out, r.v, r.buf, false, &r.stats)
		}
		r.buf = nil
	}
	return out, nil
}

// eventEnd returns the end (just past the blank line) of the event that
// starts at r.buf[off], or -1 if it is not complete yet.
func (r *sseRewriter) eventEnd(off int, eos bool) int {
	b := r.buf
	i := max(r.scan, off)
	line := max(r.line, off)
	for i < len(b) {
		k := indexEOL(b[i:])
		if k < 0 {
			i = len(b)
			break
		}
		i += k
		empty := i == line
		if b[i] == '\r' {
			if i+1 >= len(b) {
				if !eos {
					break // \r\n or \r? wait for the next byte
				}
			} else if b[i+1] == '\n' {
				i++
			}
		}
		i++
		if empty {
			return i
		}
		line = i
	}
	r.scan, r.line = i, line
	return -1
}

// event appends the rewritten form of one complete event, with its
// sequence_number moved up by the extra events inserted before it.
func (r *sseRewriter) event(out, ev []byte) []byte {
	r.curSeq, r.ownStart = -1, len(out)
	out = r.rewriteEvent(out, ev)
	if r.curSeq >= 0 {
		n := r.curSeq + r.seqShift
		if r.seqShift > 0 {
			out = renumber(out, r.ownStart, r.curSeq, n)
		}
		r.lastSeq = n
	}
	return out
}

// rewriteEvent appends the rewritten form of one complete event.
func (r *sseRewriter) rewriteEvent(out, ev []byte) []byte {
	if bytes.Contains(ev, []byte("\r\n")) {
		r.eol = "\r\n"
	} else {
		r.eol = "\n"
	}
	ds, de, ok := dataSpan(ev)
	if !ok {
		return rehydrateJSON(out, r.v, ev, false, &r.stats)
	}
	data := ev[ds:de]
	if string(data) == "[DONE]" {
		out = r.flushAll(out)
		return append(out, ev...)
	}
	top := &r.top
	if !top.read(data) {
		return rehydrateJSON(out, r.v, ev, r.fragments, &r.stats)
	}
	top.shift(ds)
	if top.seq >= 0 {
		r.curSeq = top.seq
	}
	typ := top.typ
	switch {
	case string(typ) == "content_block_delta":
		return r.anthropicDelta(out, ev, top)
	case string(typ) == "content_block_stop":
		out = r.flushWhere(out, func(k streamKey) bool { return k.kind == kindTemplate && k.itemID == "" && k.a == top.index })
		return rehydrateJSON(out, r.v, ev, false, &r.stats)
	case string(typ) == "message_stop" || string(typ) == "response.completed" || string(typ) == "response.failed" ||
		string(typ) == "response.incomplete" || string(typ) == "error":
		out = r.flushAll(out)
		return rehydrateJSON(out, r.v, ev, r.fragments, &r.stats)
	case bytes.HasPrefix(top.typ, []byte("response.")):
		return r.responsesEvent(out, ev, top)
	case top.choices >= 0:
		return r.chatChunk(out, ev, top)
	case top.candidates >= 0:
		return r.geminiChunk(out, ev, top)
	}
	return rehydrateJSON(out, r.v, ev, r.fragments, &r.stats)
}

// dataSpan finds the payload of the only data line of an event. ok is
// false when there is none or more than one.
func dataSpan(ev []byte) (s, e int, ok bool) {
	n := 0
	for i := 0; i < len(ev); {
		end := indexEOL(ev[i:])
		if end < 0 {
			end = len(ev)
		} else {
			end += i
		}
		ln := ev[i:end]
		if bytes.HasPrefix(ln, []byte("data:")) {
			n++
			s, e = i+5, end
			if s < e && ev[s] == ' ' {
				s++
			}
		}
		i = end + 1
		if end < len(ev) && ev[end] == '\r' && end+1 < len(ev) && ev[end+1] == '\n' {
			i++
		}
	}
	return s, e, n == 1 && s < e
}

// topFields are the members of an event's data object that decide what it
// is; spans are offsets in the data (then, after shift, in the event).
type topFields struct {
	typ        []byte
	index      int
	delta      [2]int
	choices    int // start of the choices array, -1 if absent
	candidates int // start of the candidates array, -1 if absent
	itemID     []byte
	outIndex   int
	contIndex  int
	sumIndex   int
	seq        int // sequence_number (OpenAI Responses), -1 if absent
	hasCont    bool
	hasSum     bool
	envChat    []byte // "id":…,"object":…,"created":…,"model":…,
	envGemini  []byte // ,"responseId":…,"modelVersion":…
	data       []byte
	base       int
}

func (t *topFields) read(data []byte) bool {
	*t = topFields{choices: -1, candidates: -1, index: -1, outIndex: -1, seq: -1, delta: [2]int{-1, -1}, data: data,
		envChat: t.envChat[:0], envGemini: t.envGemini[:0]}
	return members(data, 0, func(key []byte, vs, ve int) bool {
		switch string(key) {
		case "type":
			if data[vs] == '"' {
				t.typ = data[vs+1 : ve-1]
			}
		case "index":
			t.index = atoi(data[vs:ve])
		case "delta":
			t.delta = [2]int{vs, ve}
		case "choices":
			t.choices = vs
		case "candidates":
			t.candidates = vs
		case "item_id":
			if data[vs] == '"' {
				t.itemID = data[vs+1 : ve-1]
			}
		case "output_index":
			t.outIndex = atoi(data[vs:ve])
		case "content_index":
			t.contIndex, t.hasCont = atoi(data[vs:ve]), true
		case "summary_index":
			t.sumIndex, t.hasSum = atoi(data[vs:ve]), true
		case "sequence_number":
			t.seq = atoi(data[vs:ve])
		case "id", "object", "created", "model", "system_fingerprint":
			t.envChat = append(append(append(append(t.envChat, '"'), key...), `":`...), data[vs:ve]...)
			t.envChat = append(t.envChat, ',')
		case "responseId", "modelVersion":
			t.envGemini = append(append(append(append(t.envGemini, ',', '"'), key...), `":`...), data[vs:ve]...)
		}
		return true
	})
}

// shift moves the spans from data offsets to event offsets.
func (t *topFields) shift(base int) {
	t.base = base
	if t.delta[0] >= 0 {
		t.delta[0] += base
		t.delta[1] += base
	}
	if t.choices >= 0 {
		t.choices += base
	}
	if t.candidates >= 0 {
		t.candidates += base
	}
}

// renumber replaces the first "sequence_number":old in b[from:] with
// "sequence_number":n. The pattern cannot occur inside a JSON string (its
// quotes would be escaped there), and the events carry it at the top
// level only.
func renumber(b []byte, from, old, n int) []byte {
	pat := appendInt([]byte(`"sequence_number":`), old)
	i := bytes.Index(b[from:], pat)
	if i < 0 {
		return b
	}
	i += from
	end := i + len(pat)
	if end < len(b) && b[end] >= '0' && b[end] <= '9' {
		return b // a longer number that merely starts with old
	}
	repl := appendInt([]byte(`"sequence_number":`), n)
	out := make([]byte, 0, len(b)+len(repl)-len(pat))
	out = append(out, b[:i]...)
	out = append(out, repl...)
	return append(out, b[end:]...)
}

func atoi(b []byte) int {
	n := 0
	if len(b) == 0 {
		return -1
	}
	for _, c := range b {
		if c < '0' || c > '9' || n > 1<<30 {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// stream returns the open stream for k, creating it.
func (r *sseRewriter) stream(k streamKey, esc token.Escaping) *deltaStream {
	for _, s := range r.streams {
		if s.key == k {
			return s
		}
	}
	s := &deltaStream{key: k, sr: token.NewStreamRehydrator(r.v, esc)}
	r.streams = append(r.streams, s)
	return s
}

// emit appends ev with the splices applied (sorted by position), the
// bytes between them rehydrated as JSON text.
func (r *sseRewriter) emit(out, ev []byte, sp []splice) []byte {
	prev := 0
	for _, x := range sp {
		var st token.Stats
		out, st = token.AppendRehydrate(out, r.v, ev[prev:x.s], token.JSONString)
		addStats(&r.stats, st)
		out = x.st.write(out, ev[x.s:x.e])
		if x.flush {
			out = x.st.flush(out)
			r.close(x.st)
		}
		prev = x.e
	}
	var st token.Stats
	out, st = token.AppendRehydrate(out, r.v, ev[prev:], token.JSONString)
	addStats(&r.stats, st)
	return out
}

// close drops a stream, keeping its stats.
func (r *sseRewriter) close(s *deltaStream) {
	addStats(&r.stats, s.sr.Stats())
	for i, o := range r.streams {
		if o == s {
			r.streams = append(r.streams[:i], r.streams[i+1:]...)
			return
		}
	}
}

// flushAll ends every open stream, emitting extra delta events for what
// they hold.
func (r *sseRewriter) flushAll(out []byte) []byte {
	return r.flushWhere(out, func(streamKey) bool { return true })
}

// flushWhere ends the open streams whose key matches, emitting an extra
// delta event for each that holds bytes.
func (r *sseRewriter) flushWhere(out []byte, match func(streamKey) bool) []byte {
	for i := 0; i < len(r.streams); {
		s := r.streams[i]
		if !match(s.key) {
			i++
			continue
		}
		if s.held() {
			out = r.extraEvent(out, s)
		}
		r.close(s)
	}
	return out
}

// extraEvent appends one delta event carrying what s holds.
func (r *sseRewriter) extraEvent(out []byte, s *deltaStream) []byte {
	switch s.key.kind {
	case kindTemplate:
		if s.tmpl == nil {
			return s.flush(out) // cannot happen: a held stream has seen an event
		}
		start := len(out)
		out = append(out, s.tmpl[:s.ts]...)
		out = s.flush(out)
		out = append(out, s.tmpl[s.te:]...)
		if !bytes.HasSuffix(out, []byte("\n\n")) && !bytes.HasSuffix(out, []byte("\r\n\r\n")) && !bytes.HasSuffix(out, []byte("\r\r")) {
			// The template was an unterminated last event.
			out = append(out, r.eol+r.eol...)
		}
		if s.tmplSeq >= 0 && r.curSeq >= 0 {
			// A numbered event (Responses): it takes the number of the
			// event it precedes; that one and the rest move up.
			out = renumber(out, start, s.tmplSeq, r.curSeq+r.seqShift)
			r.lastSeq = r.curSeq + r.seqShift
			r.seqShift++
		}
		r.ownStart = len(out)
		return out
	case kindChat:
		out = append(out, "data: {"...)
		out = append(out, s.env...)
		out = append(out, `"choices":[{"index":`...)
		out = appendInt(out, s.key.a)
		switch s.key.b {
		case chatTool:
			out = append(out, `,"delta":{"tool_calls":[{"index":`...)
			out = appendInt(out, s.key.c)
			out = append(out, `,"function":{"arguments":"`...)
			out = s.flush(out)
			out = append(out, `"}}]},"finish_reason":null}]}`...)
		case chatThinking:
			out = append(out, `,"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"`...)
			out = s.flush(out)
			out = append(out, `"}]}]},"finish_reason":null}]}`...)
		default:
			out = append(out, `,"delta":{"`...)
			out = append(out, chatFieldNames[s.key.b]...)
			out = append(out, `":"`...)
			out = s.flush(out)
			out = append(out, `"},"finish_reason":null}]}`...)
		}
		return append(out, r.eol+r.eol...)
	default: // kindGemini
		out = append(out, `data: {"candidates":[{"content":{"parts":[{"text":"`...)
		out = s.flush(out)
		out = append(out, '"')
		if s.key.b == 1 {
			out = append(out, `,"thought":true`...)
		}
		out = append(out, `}],"role":"model"},"index":`...)
		out = appendInt(out, s.key.a)
		out = append(out, '}', ']')
		out = append(out, s.env...)
		out = append(out, '}')
		return append(out, r.eol+r.eol...)
	}
}

func appendInt(b []byte, n int) []byte {
	if n < 0 {
		n = 0
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// stringMember returns the body span of the string member name of the
// object at ev[i], or ok false.
func stringMember(ev []byte, i int, name string) (s, e int, ok bool) {
	members(ev, i, func(key []byte, vs, ve int) bool {
		if string(key) == name {
			if ev[vs] == '"' {
				s, e, ok = vs+1, ve-1, true
			}
			return false
		}
		return true
	})
	return s, e, ok
}

// anthropicDelta handles content_block_delta.
func (r *sseRewriter) anthropicDelta(out, ev []byte, top *topFields) []byte {
	if top.delta[0] < 0 || top.index < 0 {
		return rehydrateJSON(out, r.v, ev, false, &r.stats)
	}
	var dtype []byte
	field := [2]int{-1, -1}
	esc := token.JSONString
	members(ev, top.delta[0], func(key []byte, vs, ve int) bool {
		switch string(key) {
		case "type":
			if ev[vs] == '"' {
				dtype = ev[vs+1 : ve-1]
			}
		case "text", "thinking", "partial_json":
			if ev[vs] == '"' {
				field = [2]int{vs + 1, ve - 1}
			}
			if string(key) == "partial_json" {
				esc = token.JSONFragment
			}
		}
		return true
	})
	if field[0] < 0 || string(dtype) == "signature_delta" || string(dtype) == "citations_delta" {
		return rehydrateJSON(out, r.v, ev, false, &r.stats)
	}
	s := r.stream(streamKey{kind: kindTemplate, a: top.index}, esc)
	r.splices = append(r.splices[:0], splice{s: field[0], e: field[1], st: s})
	out = r.emit(out, ev, r.splices)
	if s.held() {
		s.tmpl = append(s.tmpl[:0], ev...)
		s.ts, s.te = field[0], field[1]
	}
	return out
}

// responsesEvent handles the response.* events of OpenAI Responses.
func (r *sseRewriter) responsesEvent(out, ev []byte, top *topFields) []byte {
	key := streamKey{kind: kindTemplate, itemID: "\x00" + string(top.itemID), a: top.outIndex, b: -1, c: -1}
	if top.hasCont {
		key.b = top.contIndex
	}
	if top.hasSum {
		key.c = top.sumIndex
	}
	switch {
	case bytes.HasSuffix(top.typ, []byte(".delta")) && top.delta[0] >= 0 && ev[top.delta[0]] == '"':
		esc := token.JSONString
		if bytes.Contains(top.typ, []byte("function_call_arguments")) || bytes.Contains(top.typ, []byte("mcp_call_arguments")) {
			esc = token.JSONFragment
		}
		s := r.stream(key, esc)
		fs, fe := top.delta[0]+1, top.delta[1]-1
		r.splices = append(r.splices[:0], splice{s: fs, e: fe, st: s})
		out = r.emit(out, ev, r.splices)
		if s.held() {
			s.tmpl = append(s.tmpl[:0], ev...)
			s.ts, s.te = fs, fe
			s.tmplSeq = top.seq
		}
		return out
	case bytes.HasSuffix(top.typ, []byte(".done")):
		out = r.flushWhere(out, func(k streamKey) bool {
			return k.kind == kindTemplate && k.itemID == key.itemID &&
				(!top.hasCont || k.b == key.b) && (!top.hasSum || k.c == key.c)
		})
	}
	return rehydrateJSON(out, r.v, ev, r.fragments, &r.stats)
}

// chatChunk handles an OpenAI (or Mistral) chat.completion.chunk.
func (r *sseRewriter) chatChunk(out, ev []byte, top *topFields) []byte {
	sp := r.splices[:0]
	var finishing []int // choice indexes whose finish_reason is set here
	elements(ev, top.choices, func(pos, cs, ce int) bool {
		choice := pos
		finished := false
		delta := -1
		members(ev, cs, func(key []byte, vs, ve int) bool {
			switch string(key) {
			case "index":
				if n := atoi(ev[vs:ve]); n >= 0 {
					choice = n
				}
			case "delta":
				delta = vs
			case "finish_reason":
				finished = ev[vs] == '"'
			}
			return true
		})
		if delta >= 0 {
			members(ev, delta, func(key []byte, vs, ve int) bool {
				f := -1
				switch string(key) {
				case "content":
					f = chatContent
					if ev[vs] == '[' {
						sp = r.mistralChunks(sp, ev, vs, choice, top)
					}
				case "refusal":
					f = chatRefusal
				case "reasoning_content":
					f = chatReasoningContent
				case "reasoning":
					f = chatReasoning
				case "tool_calls":
					elements(ev, vs, func(tpos, ts, _ int) bool {
						tool := tpos
						args := [2]int{-1, -1}
						members(ev, ts, func(k2 []byte, v2s, v2e int) bool {
							switch string(k2) {
							case "index":
								if n := atoi(ev[v2s:v2e]); n >= 0 {
									tool = n
								}
							case "function":
								if s, e, ok := stringMember(ev, v2s, "arguments"); ok {
									args = [2]int{s, e}
								}
							}
							return true
						})
						if args[0] >= 0 {
							st := r.stream(streamKey{kind: kindChat, a: choice, b: chatTool, c: tool}, token.JSONFragment)
							st.env = append(st.env[:0], top.envChat...)
							sp = append(sp, splice{s: args[0], e: args[1], st: st})
						}
						return true
					})
				}
				if f >= 0 && ev[vs] == '"' {
					st := r.stream(streamKey{kind: kindChat, a: choice, b: f}, token.JSONString)
					st.env = append(st.env[:0], top.envChat...)
					sp = append(sp, splice{s: vs + 1, e: ve - 1, st: st})
				}
				return true
			})
		}
		if finished {
			finishing = append(finishing, choice)
		}
		return true
	})
	// Streams of a finishing choice end here: inside this chunk when it
	// carries their content, else in an extra chunk before it.
	for _, c := range finishing {
		for i := len(sp) - 1; i >= 0; i-- {
			if sp[i].st.key.a == c && !spliceLater(sp[i+1:], sp[i].st) {
				sp[i].flush = true
			}
		}
		out = r.flushWhere(out, func(k streamKey) bool {
			return k.kind == kindChat && k.a == c && !inSplices(sp, k)
		})
	}
	r.splices = sp
	return r.emit(out, ev, sp)
}

// mistralChunks adds the splices of a Mistral content array: text chunks
// continue the choice's content, thinking chunks (whose text sits one level
// deeper) a thinking stream of their own.
func (r *sseRewriter) mistralChunks(sp []splice, ev []byte, at, choice int, top *topFields) []splice {
	add := func(f int, s, e int) {
		st := r.stream(streamKey{kind: kindChat, a: choice, b: f}, token.JSONString)
		st.env = append(st.env[:0], top.envChat...)
		sp = append(sp, splice{s: s, e: e, st: st})
	}
	elements(ev, at, func(_, cs, _ int) bool {
		members(ev, cs, func(key []byte, vs, ve int) bool {
			switch string(key) {
			case "text":
				if ev[vs] == '"' {
					add(chatContent, vs+1, ve-1)
				}
			case "thinking":
				elements(ev, vs, func(_, ts, _ int) bool {
					if s, e, ok := stringMember(ev, ts, "text"); ok {
						add(chatThinking, s, e)
					}
					return true
				})
			}
			return true
		})
		return true
	})
	return sp
}

func spliceLater(sp []splice, s *deltaStream) bool {
	for _, x := range sp {
		if x.st == s {
			return true
		}
	}
	return false
}

func inSplices(sp []splice, k streamKey) bool {
	for _, x := range sp {
		if x.st.key == k {
			return true
		}
	}
	return false
}

// geminiChunk handles a GenerateContentResponse of streamGenerateContent.
func (r *sseRewriter) geminiChunk(out, ev []byte, top *topFields) []byte {
	sp := r.splices[:0]
	var finishing []int
	elements(ev, top.candidates, func(pos, cs, _ int) bool {
		cand := pos
		content := -1
		finished := false
		members(ev, cs, func(key []byte, vs, ve int) bool {
			switch string(key) {
			case "index":
				if n := atoi(ev[vs:ve]); n >= 0 {
					cand = n
				}
			case "content":
				content = vs
			case "finishReason", "finish_reason":
				finished = ev[vs] == '"'
			}
			return true
		})
		if content >= 0 {
			members(ev, content, func(key []byte, vs, _ int) bool {
				if string(key) != "parts" {
					return true
				}
				elements(ev, vs, func(_, ps, _ int) bool {
					text := [2]int{-1, -1}
					thought := 0
					members(ev, ps, func(k2 []byte, v2s, v2e int) bool {
						switch string(k2) {
						case "text":
							if ev[v2s] == '"' {
								text = [2]int{v2s + 1, v2e - 1}
							}
						case "thought":
							if string(ev[v2s:v2e]) == "true" {
								thought = 1
							}
						}
						return true
					})
					if text[0] >= 0 {
						st := r.stream(streamKey{kind: kindGemini, a: cand, b: thought}, token.JSONString)
						st.env = append(st.env[:0], top.envGemini...)
						sp = append(sp, splice{s: text[0], e: text[1], st: st})
					}
					return true
				})
				return false
			})
		}
		if finished {
			finishing = append(finishing, cand)
		}
		return true
	})
	for _, c := range finishing {
		for i := len(sp) - 1; i >= 0; i-- {
			if sp[i].st.key.a == c && !spliceLater(sp[i+1:], sp[i].st) {
				sp[i].flush = true
			}
		}
		out = r.flushWhere(out, func(k streamKey) bool {
			return k.kind == kindGemini && k.a == c && !inSplices(sp, k)
		})
	}
	r.splices = sp
	return r.emit(out, ev, sp)
}

func (r *sseRewriter) Stats() token.Stats {
	st := token.Stats{}
	addStats(&st, r.stats)
	for _, s := range r.streams {
		addStats(&st, s.sr.Stats())
	}
	return st
}
