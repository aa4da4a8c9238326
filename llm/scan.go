package llm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a request body.
const maxDepth = 256

// plain marks the ASCII bytes a JSON string may hold as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unescape maps the character after a backslash to the byte it stands for
// (two-byte escapes only).
var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// ws marks JSON whitespace.
var ws = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

func reqErr(format string, args ...any) *RequestError {
	return &RequestError{Msg: fmt.Sprintf(format, args...)}
}

const (
	ones = 0x0101010101010101
	high = 0x8080808080808080
)

// special reports whether any of the eight bytes in x may need a look: a
// quote, a backslash, a control byte or a non-ASCII byte (false positives
// are possible, false negatives are not).
func special(x uint64) bool {
	q := x ^ ('"' * ones)
	b := x ^ ('\\' * ones)
	return ((q-ones)&^q|(b-ones)&^b|(x-0x20*ones)&^x|x)&high != 0
}

// scanString validates the JSON string whose opening quote is at src[i]
// and returns the offset of its closing quote and whether its body holds
// escapes. With decode set and escapes present, it appends the decoded
// value to dec. Messages name offsets only, never content.
func scanString(src []byte, i int, dec []byte, decode bool) (end int, esc bool, _ []byte, err error) {
	i++ // opening quote
	n := len(src)
	run := i // start of the bytes not yet copied to dec
	for {
		for i+8 <= n && !special(binary.LittleEndian.Uint64(src[i:])) {
			i += 8
		}
		if i >= n {
			break
		}
		c := src[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			if esc && decode {
				dec = append(dec, src[run:i]...)
			}
			return i, esc, dec, nil
		case c == '\\':
			if i+1 >= n {
				return 0, false, dec, reqErr("unterminated string at byte offset %d", n)
			}
			l := 2
			switch src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+6 > n || !isHex(src[i+2]) || !isHex(src[i+3]) || !isHex(src[i+4]) || !isHex(src[i+5]) {
					return 0, false, dec, reqErr("invalid \\u escape in a JSON string at byte offset %d", i)
				}
				l = 6
			default:
				return 0, false, dec, reqErr("invalid escape in a JSON string at byte offset %d", i)
			}
			esc = true
			if decode {
				dec = append(dec, src[run:i]...)
				if l == 2 {
					dec = append(dec, unescape[src[i+1]])
				} else {
					r, m := decodeEscape(src[i:])
					dec = utf8.AppendRune(dec, r)
					l = m // a surrogate pair is decoded (and checked) whole
				}
			}
			i += l
			run = i
		case c < 0x20:
			return 0, false, dec, reqErr("control character in a JSON string at byte offset %d", i)
		default:
			// Multi-byte UTF-8: validate it.
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size <= 1 {
				return 0, false, dec, reqErr("invalid UTF-8 in a JSON string at byte offset %d", i)
			}
			i += size
		}
	}
	return 0, false, dec, reqErr("unterminated string at byte offset %d", n)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber validates the JSON number at src[i] and returns its end.
func scanNumber(src []byte, i int) (int, error) {
	start := i
	n := len(src)
	if i < n && src[i] == '-' {
		i++
	}
	switch {
	case i < n && src[i] == '0':
		i++
	case i < n && '1' <= src[i] && src[i] <= '9':
		for i < n && '0' <= src[i] && src[i] <= '9' {
			i++
		}
	default:
		return 0, reqErr("invalid value at byte offset %d", start)
	}
	if i < n && src[i] == '.' {
		i++
		d := i
		for i < n && '0' <= src[i] && src[i] <= '9' {
			i++
		}
		if i == d {
			return 0, reqErr("invalid number at byte offset %d", start)
		}
	}
	if i < n && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < n && (src[i] == '+' || src[i] == '-') {
			i++
		}
		d := i
		for i < n && '0' <= src[i] && src[i] <= '9' {
			i++
		}
		if i == d {
			return 0, reqErr("invalid number at byte offset %d", start)
		}
	}
	return i, nil
}

// scanLiteral checks for true, false or null at src[i].
func scanLiteral(src []byte, i int) (int, error) {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(src)-i >= len(lit) && string(src[i:i+len(lit)]) == lit {
			return i + len(lit), nil
		}
	}
	return 0, reqErr("invalid value at byte offset %d", i)
}

func skipWS(src []byte, i int) int {
	for i < len(src) && ws[src[i]] {
		i++
	}
	return i
}

// appendDecoded appends the decoded value of the (valid) JSON string body
// raw to dst.
func appendDecoded(dst, raw []byte) []byte {
	for {
		k := bytes.IndexByte(raw, '\\')
		if k < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:k]...)
		r, n := decodeEscape(raw[k:])
		dst = utf8.AppendRune(dst, r)
		raw = raw[k+n:]
	}
}

// decodeEscape decodes the escape at the start of b (valid JSON) and
// returns the rune and the escape's length.
func decodeEscape(b []byte) (rune, int) {
	switch b[1] {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r := rune(hex4(b[2:]))
		if r >= 0xD800 && r < 0xDC00 && len(b) >= 12 && b[6] == '\\' && b[7] == 'u' &&
			isHex(b[8]) && isHex(b[9]) && isHex(b[10]) && isHex(b[11]) {
			if lo := rune(hex4(b[8:])); lo >= 0xDC00 && lo < 0xE000 {
				return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12
			}
		}
		if r >= 0xD800 && r < 0xE000 {
			return utf8.RuneError, 6
		}
		return r, 6
	default: // " \ /
		return rune(b[1]), 2
	}
}

// rawCursor maps offsets in the decoded value of a JSON string body to
// offsets in the body, for increasing offsets: a decoded offset maps to the
// start of the byte or escape that produced it, the decoded length to the
// body length.
type rawCursor struct {
	raw    []byte
	ri, di int // raw and decoded offsets of the next unit
}

func (c *rawCursor) at(d int) int {
	for c.di < d && c.ri < len(c.raw) {
		if c.raw[c.ri] != '\\' {
			// Jump over plain bytes up to the next escape or the target.
			k := bytes.IndexByte(c.raw[c.ri:], '\\')
			if k < 0 {
				k = len(c.raw) - c.ri
			}
			k = min(k, d-c.di)
			c.ri += k
			c.di += k
			continue
		}
		r, n := decodeEscape(c.raw[c.ri:])
		w := utf8.RuneLen(r)
		if w < 0 {
			w = 3
		}
		if c.di+w > d {
			return c.ri // d falls inside this escape's bytes
		}
		c.ri += n
		c.di += w
	}
	return c.ri
}

func hex4(b []byte) uint16 {
	var v uint16
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		v = v<<4 | uint16(c)
	}
	return v
}

// skipValue skips the JSON value at src[i] (after whitespace) without
// validating more than it needs to find its end; it returns -1 on anything
// malformed. It is for look-ahead in input already validated or in
// responses, where a failure only means "not found".
func skipValue(src []byte, i int) int {
	i = skipWS(src, i)
	if i >= len(src) {
		return -1
	}
	switch src[i] {
	case '"':
		return skipString(src, i)
	case '{', '[':
		depth := 0
		for i < len(src) {
			switch src[i] {
			case '"':
				i = skipString(src, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default:
		for i < len(src) {
			switch src[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the offset just past the string starting at src[i],
// -1 if it does not end.
func skipString(src []byte, i int) int {
	i++
	for {
		k := bytes.IndexByte(src[i:], '"')
		if k < 0 {
			return -1
		}
		q := i + k
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		bs := 0
		for j := q - 1; j >= i && src[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

// indexEOL returns the index of the first \r or \n in b, or -1.
func indexEOL(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	lim := b
	if n >= 0 {
		lim = b[:n]
	}
	if r := bytes.IndexByte(lim, '\r'); r >= 0 {
		return r
	}
	return n
}

// members calls f for each member of the object at src[i] with the raw key
// body and the span of the value, until f returns false. It returns false if
// the object is malformed.
func members(src []byte, i int, f func(key []byte, vs, ve int) bool) bool {
	i = skipWS(src, i)
	if i >= len(src) || src[i] != '{' {
		return false
	}
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == '}' {
		return true
	}
	for i < len(src) {
		if src[i] != '"' {
			return false
		}
		ke := skipString(src, i)
		if ke < 0 {
			return false
		}
		key := src[i+1 : ke-1]
		i = skipWS(src, ke)
		if i >= len(src) || src[i] != ':' {
			return false
		}
		vs := skipWS(src, i+1)
		ve := skipValue(src, vs)
		if ve < 0 {
			return false
		}
		if !f(key, vs, ve) {
			return true
		}
		i = skipWS(src, ve)
		if i >= len(src) {
			return false
		}
		if src[i] == '}' {
			return true
		}
		if src[i] != ',' {
			return false
		}
		i = skipWS(src, i+1)
	}
	return false
}

// elements calls f for each element of the array at src[i].
func elements(src []byte, i int, f func(k, vs, ve int) bool) bool {
	i = skipWS(src, i)
	if i >= len(src) || src[i] != '[' {
		return false
	}
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == ']' {
		return true
	}
	for k := 0; i < len(src); k++ {
		ve := skipValue(src, i)
		if ve < 0 {
			return false
		}
		if !f(k, i, ve) {
			return true
		}
		i = skipWS(src, ve)
		if i >= len(src) {
			return false
		}
		if src[i] == ']' {
			return true
		}
		if src[i] != ',' {
			return false
		}
		i = skipWS(src, i+1)
	}
	return false
}
