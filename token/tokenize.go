package token

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/takumo/aegis/detect"
)

// Detection is one finding as the tokenizer handled it: the rule, its
// category and action, the byte range [Start, End) of the secret in the
// input, and the token that replaced it (empty unless Action is Tokenize).
// It never holds the value, so it can be logged, audited and returned to a
// client as it is.
type Detection struct {
	RuleID   string
	Category detect.Category
	Action   detect.Action
	Start    int
	End      int
	Token    string
}

// Result is the outcome of Tokenize.
type Result struct {
	// Text is the input with every Tokenize finding replaced by its token.
	Text []byte
	// Detections lists every finding handled, in input order, with offsets
	// in the input.
	Detections []Detection
}

// Blocked reports whether a finding with the Block action was made; the
// caller must then reject the request.
func (r Result) Blocked() bool {
	return slices.ContainsFunc(r.Detections, func(d Detection) bool { return d.Action == detect.Block })
}

// Tokenizer detects secrets with Engine and replaces them with tokens.
// It holds no state of its own and is safe for concurrent use.
type Tokenizer struct {
	Engine *detect.Engine
}

// Tokenize returns text with every finding whose action is Tokenize
// replaced by the vault's token for it. Block and Monitor findings are
// reported and left in place: the caller rejects the request for a Block.
//
// Tokens already in text stay as they are, so tokenizing tokenized text
// changes nothing: the engine runs on a copy of text in which every token
// (either form, see Find with Raw) is blanked out with spaces, so a rule
// never mistakes a token, or a token plus what follows it, for a secret;
// and a finding within a token is dropped. A finding that still spans a
// token and more is tokenized whole, token included: rehydration then
// gives back the original bytes, and nothing is forwarded unexamined.
// Overlapping findings (which the engine does not report) are merged; the
// merged span takes the strongest action (Block, then Tokenize, then
// Monitor) and that finding's rule and category. A finding whose category
// is unknown is tokenized as SECRET.
//
// On error (ErrVaultFull above all) the Result is empty and the caller must
// fail the request; text is never returned unprocessed.
func (t Tokenizer) Tokenize(v *Vault, text []byte) (Result, error) {
	return t.AppendTokenize(nil, v, text)
}

// AppendTokenize is Tokenize appending the output text to dst; Result.Text
// is the extended slice.
func (t Tokenizer) AppendTokenize(dst []byte, v *Vault, text []byte) (Result, error) {
	dets, size, err := t.spans(v, text)
	if err != nil {
		return Result{}, err
	}
	if len(dets) == 0 {
		return Result{Text: append(dst, text...), Detections: dets}, nil
	}
	dst = slices.Grow(dst, size)
	prev := 0
	for _, d := range dets {
		if d.Token == "" {
			continue
		}
		dst = append(dst, text[prev:d.Start]...)
		dst = append(dst, d.Token...)
		prev = d.End
	}
	dst = append(dst, text[prev:]...)
	return Result{Text: dst, Detections: dets}, nil
}

// TokenizeSpans is Tokenize without the output text: it stores each
// secret of text in v and returns the detections, with their tokens, for a
// caller that splices the tokens into its own form of the text (the escaped
// bytes of a JSON string, say). The detections, the vault's contents and
// the errors are those of Tokenize.
func (t Tokenizer) TokenizeSpans(v *Vault, text []byte) ([]Detection, error) {
	dets, _, err := t.spans(v, text)
	return dets, err
}

// spans detects the secrets of text, stores those to tokenize in v, and
// returns the detections and the length of the tokenized text.
func (t Tokenizer) spans(v *Vault, text []byte) ([]Detection, int, error) {
	if t.Engine == nil {
		return nil, 0, errors.New("token: tokenizer has no engine")
	}
	if v == nil {
		return nil, 0, errors.New("token: nil vault")
	}
	toks := Find(text, Raw) // nil, after one bytes.Index, for most text
	scan := text
	if len(toks) > 0 {
		masked := bytes.Clone(text)
		defer clear(masked)
		for _, m := range toks {
			for i := m.Start; i < m.End; i++ {
				masked[i] = ' '
			}
		}
		scan = masked
	}
	findings := t.Engine.Detect(scan)
	if len(findings) == 0 {
		return nil, len(text), nil
	}
	dets, err := detections(findings, len(text), toks)
	if err != nil {
		return nil, 0, err
	}
	size := len(text)
	for i := range dets {
		d := &dets[i]
		if d.Action != detect.Tokenize {
			continue
		}
		cat := d.Category
		if !cat.Valid() {
			cat = detect.SECRET
		}
		tok, err := v.Token(cat, text[d.Start:d.End])
		if err != nil {
			return nil, 0, fmt.Errorf("tokenize %s finding: %w", d.RuleID, err)
		}
		d.Token = tok
		size += len(tok) - (d.End - d.Start)
	}
	return dets, size, nil
}

// detections turns findings in a text of n bytes into sorted,
// non-overlapping detections, minus those inside the tokens toks (sorted)
// and those switched off.
func detections(findings []detect.Finding, n int, toks []Match) ([]Detection, error) {
	for _, f := range findings {
		if f.Start < 0 || f.End > n || f.Start > f.End {
			return nil, fmt.Errorf("token: finding of rule %s out of range [%d,%d) of %d bytes", f.RuleID, f.Start, f.End, n)
		}
	}
	if !slices.IsSortedFunc(findings, byStart) {
		findings = slices.Clone(findings)
		slices.SortFunc(findings, byStart)
	}
	dets := make([]Detection, 0, len(findings))
	for _, f := range findings {
		if f.Action == detect.Off || f.Start == f.End || insideToken(toks, f.Start, f.End) {
			continue
		}
		a := f.Action
		if a == "" {
			a = detect.Tokenize
		}
		d := Detection{RuleID: f.RuleID, Category: f.Category, Action: a, Start: f.Start, End: f.End}
		if n := len(dets); n > 0 && dets[n-1].End > d.Start {
			last := &dets[n-1]
			end := max(last.End, d.End)
			if strength(d.Action) > strength(last.Action) {
				last.RuleID, last.Category, last.Action = d.RuleID, d.Category, d.Action
			}
			last.End = end
			continue
		}
		dets = append(dets, d)
	}
	return dets, nil
}

func byStart(a, b detect.Finding) int {
	if c := cmp.Compare(a.Start, b.Start); c != 0 {
		return c
	}
	return cmp.Compare(b.End, a.End)
}

// strength orders actions for merging overlapping findings.
func strength(a detect.Action) int {
	switch a {
	case detect.Block:
		return 3
	case detect.Tokenize:
		return 2
	case detect.Monitor:
		return 1
	}
	return 0
}

// insideToken reports whether [start, end) lies within one of toks.
func insideToken(toks []Match, start, end int) bool {
	i, _ := slices.BinarySearchFunc(toks, start, func(m Match, s int) int {
		if m.End <= s {
			return -1
		}
		return 1
	})
	return i < len(toks) && toks[i].Start <= start && end <= toks[i].End
}
