package token

import (
	"slices"
	"strconv"
)

// Escaping says where the text being rehydrated sits, and so how a value is
// written back and how a Markdown-escaped token looks in that text.
//
// Pick by what the bytes handed to the rehydrator are:
//
//   - Raw: plain text, already decoded (a string value the caller decoded
//     and will encode again itself, a file, a terminal transcript). Values
//     go back as they are. A Markdown-escaped underscore is `\_`.
//   - JSONString: the raw bytes between the quotes of a JSON string literal,
//     escapes intact (a JSON response body rehydrated in place, an SSE
//     `text_delta` payload worked on without decoding), or a whole JSON
//     document whose tokens sit inside string literals. Values are
//     JSON-escaped. A Markdown-escaped underscore is `\\_` (the model wrote
//     `\_`, JSON escaped the backslash).
//   - JSONFragment: the raw bytes of an outer JSON string whose decoded
//     content is itself JSON text (Anthropic `input_json_delta.partial_json`,
//     OpenAI `function.arguments` and its deltas) when the codec works on the
//     outer raw bytes. Values are escaped for the inner string, then that
//     result again for the outer one. A Markdown-escaped underscore is
//     `\\\\_`.
//
// Each mode recognises the Markdown escape of its own depth only: Raw does
// not take `\\_` for an escaped underscore (in Markdown that is an escaped
// backslash and a bare underscore), and a caller holding raw
// JSON bytes picks JSONString, never Raw, so that values are escaped too.
//
// A codec that decodes the outer string first and rehydrates the inner JSON
// text uses JSONString on it. Whichever mode: after the caller parses the
// JSON, the value comes out byte for byte.
//
// JSON escaping writes `"` and `\` escaped, the control characters below
// 0x20 as \b \f \n \r \t or \u00XX, and every other byte as it is, so
// non-ASCII UTF-8 stays readable. A value that is not valid UTF-8 cannot be
// carried exactly by a JSON string at all; its bytes are written unchanged
// and a JSON decoder will replace the invalid ones with U+FFFD.
type Escaping int

// The escaping modes; see Escaping.
const (
	Raw Escaping = iota
	JSONString
	JSONFragment
)

// String names the mode.
func (e Escaping) String() string {
	switch e {
	case Raw:
		return "raw"
	case JSONString:
		return "json-string"
	case JSONFragment:
		return "json-fragment"
	}
	return "escaping(" + strconv.Itoa(int(e)) + ")"
}

// underscoreEscape is what precedes a Markdown-escaped underscore in text
// of this mode. Unknown modes behave as Raw.
func (e Escaping) underscoreEscape() string {
	switch e {
	case JSONString:
		return `\\`
	case JSONFragment:
		return `\\\\`
	}
	return `\`
}

// appendValue appends value to dst escaped for mode e.
func (e Escaping) appendValue(dst, value []byte) []byte {
	switch e {
	case JSONString:
		return appendJSONEscaped(dst, value, 1)
	case JSONFragment:
		return appendJSONEscaped(dst, value, 2)
	}
	return append(dst, value...)
}

// appendJSONEscaped JSON-escapes value depth times (2 = escape for an inner
// string, then escape the result for the outer one) without a temporary.
func appendJSONEscaped(dst, value []byte, depth int) []byte {
	const hexDigits = "0123456789abcdef"
	var seq [6]byte
	for _, c := range value {
		var s []byte
		switch {
		case c == '"' || c == '\\':
			seq[0], seq[1] = '\\', c
			s = seq[:2]
		case c >= 0x20:
			dst = append(dst, c)
			continue
		case c == '\n':
			seq[0], seq[1] = '\\', 'n'
			s = seq[:2]
		case c == '\r':
			seq[0], seq[1] = '\\', 'r'
			s = seq[:2]
		case c == '\t':
			seq[0], seq[1] = '\\', 't'
			s = seq[:2]
		case c == '\b':
			seq[0], seq[1] = '\\', 'b'
			s = seq[:2]
		case c == '\f':
			seq[0], seq[1] = '\\', 'f'
			s = seq[:2]
		default:
			seq = [6]byte{'\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]}
			s = seq[:6]
		}
		if depth == 1 {
			dst = append(dst, s...)
			continue
		}
		// The inner escape sequence is ASCII without control characters;
		// only its backslash (and an escaped quote) need the outer escape.
		for _, b := range s {
			if b == '\\' || b == '"' {
				dst = append(dst, '\\')
			}
			dst = append(dst, b)
		}
	}
	return dst
}

// maxUnknownListed bounds Stats.UnknownTokens; Stats.Unknown counts all.
const maxUnknownListed = 100

// Stats reports what a rehydration did.
type Stats struct {
	// Replaced counts tokens put back, repeats included.
	Replaced int
	// Unknown counts tokens the vault does not hold, left as written.
	Unknown int
	// UnknownTokens lists the distinct unknown tokens (canonical form) in
	// order of first appearance, at most 100 of them.
	UnknownTokens []string
}

func (s *Stats) unknown(tok []byte) {
	s.Unknown++
	if len(s.UnknownTokens) >= maxUnknownListed {
		return
	}
	if slices.Contains(s.UnknownTokens, string(tok)) {
		return
	}
	s.UnknownTokens = append(s.UnknownTokens, string(tok))
}

// Rehydrate returns text with every token v knows replaced by its value,
// escaped for esc. Tokens v does not know stay as they are and are counted.
// Markdown-escaped tokens are recognised as described for esc.
func Rehydrate(v *Vault, text []byte, esc Escaping) ([]byte, Stats) {
	return AppendRehydrate(nil, v, text, esc)
}

// AppendRehydrate is Rehydrate appending to dst.
func AppendRehydrate(dst []byte, v *Vault, text []byte, esc Escaping) ([]byte, Stats) {
	var st Stats
	dst, end := appendMatches(dst, v, text, esc, &st)
	return append(dst, text[end:]...), st
}

// appendMatches appends text up to the end of its last token to dst, with
// the tokens v knows replaced, and returns where it stopped. A nil vault
// knows no token.
func appendMatches(dst []byte, v *Vault, text []byte, esc Escaping, st *Stats) ([]byte, int) {
	sc := scanner{text: text, esc: esc.underscoreEscape()}
	m, ok := sc.next()
	if !ok {
		return dst, 0
	}
	dst = slices.Grow(dst, len(text))
	if v != nil {
		v.mu.RLock()
		defer v.mu.RUnlock()
	}
	prev := 0
	for ; ok; m, ok = sc.next() {
		dst = append(dst, text[prev:m.start]...)
		var e *entry
		if v != nil {
			e = v.byToken[string(m.tok.bytes())]
		}
		if e == nil {
			st.unknown(m.tok.bytes())
			dst = append(dst, text[m.start:m.end]...)
		} else {
			st.Replaced++
			dst = esc.appendValue(dst, e.value)
		}
		prev = m.end
	}
	return dst, prev
}
