package llm

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/token"
)

// Tokenize appends to dst the request body with every secret found in its
// prose strings replaced by its token, and returns it with the findings.
//
// Detection runs on each string's decoded value; the vault receives the
// decoded secret; the body keeps every other byte as it was (the escaped span
// of a secret is replaced by its token, which is plain ASCII and needs no
// escaping). Tool-call arguments (JSON text inside a JSON string) are decoded,
// their own string values tokenized the same way, and the replacements
// mapped back to the outer string's bytes; arguments that are not JSON are
// tokenized as text.
//
// Findings whose action is Block or Monitor are returned and left in place;
// the caller rejects the request for a Block (see Blocked). On error nothing
// is returned but the error: a body is never forwarded half tokenized.
//
// dst must not overlap the body given to ParseRequest.
func (r *Request) Tokenize(tk token.Tokenizer, v *token.Vault, dst []byte) ([]byte, []Detection, error) {
	if tk.Engine == nil {
		return nil, nil, fmt.Errorf("llm: tokenizer has no engine")
	}
	if v == nil {
		return nil, nil, fmt.Errorf("llm: nil vault")
	}
	t := tokenizeState{tk: tk, v: v, req: r}
	defer t.release()
	body := r.body
	out := slices.Grow(dst, len(body)+len(body)/16)
	last := 0
	var err error
	for i := range r.strs {
		s := &r.strs[i]
		out = append(out, body[last:s.start]...)
		raw := body[s.start:s.end]
		dec := raw
		if s.esc {
			dec = t.decode(raw)
		}
		t.key = s.key
		if s.mode == modeFragment {
			out, err = t.fragment(out, raw, dec, s.esc, s.path)
		} else {
			out, err = t.prose(out, raw, dec, s.esc, s.path)
		}
		if err != nil {
			return nil, nil, err
		}
		last = s.end
	}
	out = append(out, body[last:]...)
	return out, t.dets, nil
}

// tokenizeState holds one Tokenize call's scratch buffers.
type tokenizeState struct {
	tk   token.Tokenizer
	v    *token.Vault
	req  *Request
	dets []Detection
	key  bool    // the string being tokenized is a member name
	dec  *[]byte // decoded value of the current escaped string (pooled)
	dec2 []byte  // decoded inner strings of a fragment
	reps []replacement
}

// decPool holds the buffers escaped strings are decoded into, so that a
// request does not allocate a copy of its largest string. Buffers return
// cleared (they held prompt text); those over maxPooledDec are dropped.
var decPool = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledDec = 1 << 20

// decode returns the decoded value of the escaped raw string body raw, in
// a buffer that holds it until the next call.
func (t *tokenizeState) decode(raw []byte) []byte {
	if t.dec == nil {
		t.dec = decPool.Get().(*[]byte) //nolint:forcetypeassert // the pool holds only *[]byte
	}
	*t.dec = appendDecoded((*t.dec)[:0], raw)
	return *t.dec
}

// release clears the decode buffer and returns it to the pool.
func (t *tokenizeState) release() {
	if t.dec == nil {
		return
	}
	b := *t.dec
	clear(b[:cap(b)])
	if cap(b) <= maxPooledDec {
		*t.dec = b[:0]
		decPool.Put(t.dec)
	}
	t.dec = nil
}

type replacement struct {
	start, end int
	tok        string
}

// prose appends the tokenized form of the raw string body raw, whose
// decoded value is dec.
func (t *tokenizeState) prose(out, raw, dec []byte, esc bool, path int32) ([]byte, error) {
	if !esc {
		// The raw bytes are the value: tokenize straight into out.
		res, err := t.tk.AppendTokenize(out, t.v, raw)
		if err != nil {
			return nil, t.wrap(err, path)
		}
		t.addDets(res.Detections, raw, path)
		return res.Text, nil
	}
	// Only the detections are needed: their tokens go into the escaped
	// bytes of raw.
	dets, err := t.tk.TokenizeSpans(t.v, dec)
	if err != nil {
		return nil, t.wrap(err, path)
	}
	t.addDets(dets, dec, path)
	prev := 0
	cur := rawCursor{raw: raw}
	for _, d := range dets {
		if d.Token == "" {
			continue
		}
		rs := cur.at(d.Start)
		re := cur.at(d.End)
		rs = max(rs, prev)
		out = append(out, raw[prev:rs]...)
		out = append(out, d.Token...)
		prev = max(re, rs)
	}
	return append(out, raw[prev:]...), nil
}

// fragment appends the tokenized form of the raw string body raw whose
// decoded value outer is JSON text.
func (t *tokenizeState) fragment(out, raw, outer []byte, esc bool, path int32) ([]byte, error) {
	ocur := rawCursor{raw: raw}
	p := parser{src: outer, dec: t.dec2[:0]}
	if err := p.document(nAll, false); err != nil {
		// Not JSON (a model's half-written arguments, say): text it is.
		return t.prose(out, raw, outer, esc, path)
	}
	t.dec2 = p.dec
	t.reps = t.reps[:0]
	for _, s := range p.strs {
		ival := outer[s.start:s.end]
		dec := ival
		if s.esc {
			dec = p.dec[s.ds:s.de]
		}
		icur := rawCursor{raw: ival}
		dets, err := t.tk.TokenizeSpans(t.v, dec)
		if err != nil {
			return nil, t.wrap(err, path)
		}
		t.addDets(dets, dec, path)
		for _, d := range dets {
			if d.Token == "" {
				continue
			}
			is := s.start + icur.at(d.Start) // offsets in outer
			ie := s.start + icur.at(d.End)
			if esc {
				is, ie = ocur.at(is), ocur.at(ie)
			}
			t.reps = append(t.reps, replacement{start: is, end: ie, tok: d.Token})
		}
	}
	prev := 0
	for _, rp := range t.reps {
		rs := max(rp.start, prev)
		out = append(out, raw[prev:rs]...)
		out = append(out, rp.tok...)
		prev = max(rp.end, rs)
	}
	return append(out, raw[prev:]...), nil
}

func (t *tokenizeState) wrap(err error, path int32) error {
	if t.key {
		t.req.paths[path].redact = true
	}
	return fmt.Errorf("llm: tokenize %s: %w", fieldPath(t.req.paths, path), err)
}

// addDets records the detections made in the decoded value dec.
func (t *tokenizeState) addDets(ds []token.Detection, dec []byte, path int32) {
	if len(ds) == 0 {
		return
	}
	if t.key {
		// A member name with a finding in it must not show in Field.
		t.req.paths[path].redact = true
	}
	field := fieldPath(t.req.paths, path)
	for _, d := range ds {
		t.dets = append(t.dets, Detection{
			Detection: d,
			Field:     field,
			Line:      1 + bytes.Count(dec[:d.Start], []byte{'\n'}),
		})
	}
}

// Blocked reports whether any detection has the Block action.
func Blocked(ds []Detection) bool {
	return slices.ContainsFunc(ds, func(d Detection) bool { return d.Action == detect.Block })
}
