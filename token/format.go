package token

import (
	"bytes"
	"errors"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/detect/rules"
)

// Parts of the token grammar.
const (
	prefix    = "__TAKUMO_v1_" // up to and including the underscore before the category
	anchor    = "TAKUMO"       // what the scanner searches for
	suffix    = "__"
	hashShort = 8 // hex characters of a token's hash unless it collides

	// maxCanonLen is the length of the longest canonical token:
	// prefix + "SECRET" + "_" + 64 hex + suffix.
	maxCanonLen = len(prefix) + 6 + 1 + 64 + len(suffix)
	// underscores is how many underscores a token has; each may carry a
	// Markdown escape.
	underscores = 7
)

// hashLens are the hash lengths a token may have, shortest first.
var hashLens = [...]int{8, 16, 32, 64}

// ErrNotToken is returned by Parse for text that is not a canonical token.
var ErrNotToken = errors.New("token: not a canonical token")

// Token is a parsed token: its category and hash (lowercase hex).
type Token struct {
	Category detect.Category
	Hash     string
}

// String returns the canonical form __TAKUMO_v1_<CAT>_<hash>__.
func (t Token) String() string {
	return prefix + string(t.Category) + "_" + t.Hash + suffix
}

// Parse parses a canonical token (no Markdown escapes, nothing around it).
// The error never repeats s, which may be arbitrary text.
func Parse(s string) (Token, error) {
	var c canon
	n, st := parseToken([]byte(s), "", &c)
	if st != parseDone || n != len(s) {
		return Token{}, ErrNotToken
	}
	return Token{Category: c.cat, Hash: string(c.hash())}, nil
}

// Match is one token found in text: the byte range it occupies (escapes
// included) and its canonical form.
type Match struct {
	Start, End int
	Token      string
}

// Find returns the tokens in text, written canonically or with the Markdown
// escapes that esc recognises (see Escaping).
func Find(text []byte, esc Escaping) []Match {
	var out []Match
	sc := scanner{text: text, esc: esc.underscoreEscape()}
	for {
		m, ok := sc.next()
		if !ok {
			return out
		}
		out = append(out, Match{Start: m.start, End: m.end, Token: string(m.tok.bytes())})
	}
}

// canon accumulates the canonical form of a token while it is parsed, so
// that a Markdown-escaped token can be looked up without allocating.
type canon struct {
	buf     [maxCanonLen]byte
	n       int
	cat     detect.Category
	hashOff int
}

func (c *canon) bytes() []byte { return c.buf[:c.n] }
func (c *canon) hash() []byte  { return c.buf[c.hashOff : c.n-len(suffix)] }
func (c *canon) add(s string)  { c.n += copy(c.buf[c.n:], s) }

type parseState int

const (
	parseFail    parseState = iota // not a token
	parsePartial                   // a proper prefix of a token: more input could complete it
	parseDone                      // a complete token
)

// unitForm is how one underscore of a token is written.
type unitForm int

const (
	formAny     unitForm = iota // either form is acceptable
	formBare                    // "_"
	formEscaped                 // esc + "_"
)

// parseToken parses a token at the start of b, where esc is the byte string
// that may precede any underscore (a Markdown escape as it appears in b; ""
// for none). The two leading underscores are written alike, as are the two
// trailing ones; each of the three inner underscores may be escaped or not.
// It returns the token's length in b when done.
func parseToken(b []byte, esc string, c *canon) (int, parseState) {
	c.n = 0
	i := 0
	var st parseState
	var lead unitForm
	if lead, i, st = unit(b, i, esc, formAny); st != parseDone {
		return 0, st
	}
	if _, i, st = unit(b, i, esc, lead); st != parseDone {
		return 0, st
	}
	if i, st = literal(b, i, anchor); st != parseDone {
		return 0, st
	}
	if _, i, st = unit(b, i, esc, formAny); st != parseDone {
		return 0, st
	}
	if i, st = literal(b, i, "v1"); st != parseDone {
		return 0, st
	}
	if _, i, st = unit(b, i, esc, formAny); st != parseDone {
		return 0, st
	}
	c.add(prefix)
	partial := false
	c.cat = ""
	for _, cat := range rules.Categories {
		j, st := literal(b, i, string(cat))
		if st == parseDone {
			c.cat, i = cat, j
			break
		}
		partial = partial || st == parsePartial
	}
	if c.cat == "" {
		if partial {
			return 0, parsePartial
		}
		return 0, parseFail
	}
	c.add(string(c.cat))
	if _, i, st = unit(b, i, esc, formAny); st != parseDone {
		return 0, st
	}
	c.add("_")
	c.hashOff = c.n
	h := 0
	for i+h < len(b) && h <= 64 && isLowerHex(b[i+h]) {
		h++
	}
	switch {
	case h > 64:
		return 0, parseFail
	case i+h == len(b):
		return 0, parsePartial
	case h != 8 && h != 16 && h != 32 && h != 64:
		return 0, parseFail
	}
	c.n += copy(c.buf[c.n:], b[i:i+h])
	i += h
	var trail unitForm
	if trail, i, st = unit(b, i, esc, formAny); st != parseDone {
		return 0, st
	}
	if _, i, st = unit(b, i, esc, trail); st != parseDone {
		return 0, st
	}
	c.add(suffix)
	return i, parseDone
}

// unit parses one underscore at b[i:], written as want says.
func unit(b []byte, i int, esc string, want unitForm) (unitForm, int, parseState) {
	if i >= len(b) {
		return 0, i, parsePartial
	}
	if b[i] == '_' {
		if want == formEscaped {
			return 0, i, parseFail
		}
		return formBare, i + 1, parseDone
	}
	if esc == "" || want == formBare {
		return 0, i, parseFail
	}
	// esc followed by '_', possibly cut short by the end of b.
	for k := 0; k <= len(esc); k++ {
		if i+k >= len(b) {
			return 0, i, parsePartial
		}
		want := byte('_')
		if k < len(esc) {
			want = esc[k]
		}
		if b[i+k] != want {
			return 0, i, parseFail
		}
	}
	return formEscaped, i + len(esc) + 1, parseDone
}

// literal matches lit at b[i:].
func literal(b []byte, i int, lit string) (int, parseState) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return i, parsePartial
		}
		if b[i+k] != lit[k] {
			return i, parseFail
		}
	}
	return i + len(lit), parseDone
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// tokenMatch is a token the scanner found.
type tokenMatch struct {
	start, end int
	tok        canon
}

// scanner finds tokens left to right without overlaps. It searches for the
// anchor "TAKUMO" (so text without tokens costs one bytes.Index), then
// reads the two leading underscores backwards and the rest forwards.
type scanner struct {
	text    []byte
	esc     string
	pos     int // where the next anchor search starts
	lastEnd int // no match may start before this
}

func (s *scanner) next() (tokenMatch, bool) {
	var m tokenMatch
	for {
		k := bytes.Index(s.text[s.pos:], []byte(anchor))
		if k < 0 {
			s.pos = len(s.text)
			return m, false
		}
		p := s.pos + k
		s.pos = p + 1
		for _, start := range s.leadStarts(p) {
			if start < 0 {
				continue
			}
			n, st := parseToken(s.text[start:], s.esc, &m.tok)
			if st == parseDone {
				m.start, m.end = start, start+n
				s.pos, s.lastEnd = m.end, m.end
				return m, true
			}
		}
	}
}

// leadStarts returns where a token whose anchor is at p could start: with
// escaped leading underscores first (the longer reading), then bare ones;
// -1 for a reading that does not fit.
func (s *scanner) leadStarts(p int) [2]int {
	out := [2]int{-1, -1}
	t, lo, e := s.text, s.lastEnd, s.esc
	if e != "" {
		u2 := p - 1 - len(e) // start of the escaped second underscore
		u1 := u2 - 1 - len(e)
		if u1 >= lo && string(t[u2:p]) == e+"_" && string(t[u1:u2]) == e+"_" {
			out[0] = u1
		}
	}
	if p-2 >= lo && t[p-2] == '_' && t[p-1] == '_' {
		out[1] = p - 2
	}
	return out
}

// holdFrom returns where the suffix of text that could still grow into a
// token starts (len(text) when there is none). Only positions at or after
// from are considered, and only within the longest escaped token length.
func holdFrom(text []byte, from int, esc string) int {
	lo := max(from, len(text)-(maxCanonLen+underscores*len(esc))+1)
	var c canon
	for i := lo; i < len(text); i++ {
		if b := text[i]; b != '_' && (esc == "" || b != esc[0]) {
			continue
		}
		if _, st := parseToken(text[i:], esc, &c); st == parsePartial {
			return i
		}
	}
	return len(text)
}
