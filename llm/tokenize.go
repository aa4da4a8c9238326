package llm

import (
	"bytes"
	"fmt"
	"slices"

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
// the caller rejects the request for a Block. On error nothing is returned
// but the error: a body is never forwarded half tokenized.
func (r *Request) Tokenize(tk token.Tokenizer, v *token.Vault, dst []byte) ([]byte, []Detection, error) {
	if tk.Engine == nil {
		return nil, nil, fmt.Errorf("llm: tokenizer has no engine")
	}
	if v == nil {
		return nil, nil, fmt.Errorf("llm: nil vault")
	}
	t := tokenizeState{tk: tk, v: v, req: r}
	body := r.body
	out := slices.Grow(dst, len(body)+len(body)/16)
	last := 0
	var err error
	for i := range r.strs {
		s := &r.strs[i]
		out = append(out, body[last:s.start]...)
		raw := body[s.start:s.end]
		if s.mode == modeFragment {
			out, err = t.fragment(out, raw, s.esc, s.path)
		} else {
			out, err = t.prose(out, raw, s.esc, s.path)
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
	dec  []byte // decoded string
	idx  []int  // decoded offset → raw offset
	tmp  []byte // tokenizer output for escaped strings
	// Fragment scratch.
	dec2 []byte
	idx2 []int
	reps []replacement
}

type replacement struct {
	start, end int
	tok        string
}

// prose appends the tokenized form of the raw string body raw.
func (t *tokenizeState) prose(out, raw []byte, esc bool, path int32) ([]byte, error) {
	if !esc {
		// The raw bytes are the value: tokenize straight into out.
		res, err := t.tk.AppendTokenize(out, t.v, raw)
		if err != nil {
			return nil, t.wrap(err, path)
		}
		t.addDets(res.Detections, raw, path)
		return res.Text, nil
	}
	t.dec, t.idx = appendDecoded(t.dec[:0], t.idx[:0], raw, true)
	res, err := t.tk.AppendTokenize(t.tmp[:0], t.v, t.dec)
	if err != nil {
		return nil, t.wrap(err, path)
	}
	t.tmp = res.Text
	t.addDets(res.Detections, t.dec, path)
	prev := 0
	for _, d := range res.Detections {
		if d.Token == "" {
			continue
		}
		rs, re := t.idx[d.Start], t.idx[d.End]
		rs = max(rs, prev)
		out = append(out, raw[prev:rs]...)
		out = append(out, d.Token...)
		prev = max(re, rs)
	}
	return append(out, raw[prev:]...), nil
}

// fragment appends the tokenized form of the raw string body raw whose
// decoded value is JSON text.
func (t *tokenizeState) fragment(out, raw []byte, esc bool, path int32) ([]byte, error) {
	// Outer value and its map to raw offsets (identity without escapes).
	outer := raw
	var oidx []int
	if esc {
		t.dec, t.idx = appendDecoded(t.dec[:0], t.idx[:0], raw, true)
		outer, oidx = t.dec, t.idx
	}
	p := parser{src: outer}
	if err := p.document(nAll, false); err != nil {
		// Not JSON (a model's half-written arguments, say): text it is.
		return t.prose(out, raw, esc, path)
	}
	t.reps = t.reps[:0]
	for _, s := range p.strs {
		ival := outer[s.start:s.end]
		var dec []byte
		var iidx []int
		if s.esc {
			t.dec2, t.idx2 = appendDecoded(t.dec2[:0], t.idx2[:0], ival, true)
			dec, iidx = t.dec2, t.idx2
		} else {
			dec = ival
		}
		res, err := t.tk.AppendTokenize(t.tmp[:0], t.v, dec)
		if err != nil {
			return nil, t.wrap(err, path)
		}
		t.tmp = res.Text
		t.addDets(res.Detections, dec, path)
		for _, d := range res.Detections {
			if d.Token == "" {
				continue
			}
			is, ie := d.Start, d.End
			if iidx != nil {
				is, ie = iidx[is], iidx[ie]
			}
			is, ie = s.start+is, s.start+ie // offsets in outer
			if oidx != nil {
				is, ie = oidx[is], oidx[ie]
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
	return fmt.Errorf("llm: tokenize %s: %w", fieldPath(t.req.paths, path), err)
}

// addDets records the detections made in the decoded value dec.
func (t *tokenizeState) addDets(ds []token.Detection, dec []byte, path int32) {
	if len(ds) == 0 {
		return
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
