package detect

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrBadJSONString is returned for a JSON string body with an invalid escape.
var ErrBadJSONString = errors.New("invalid JSON string escape")

// DetectJSONString detects secrets in the value of a JSON string literal.
// raw is the literal's body, the bytes between its quotes, still escaped.
// Detection runs on the decoded value (so `\n` inside a PEM block, `\"`
// around a password and `\u0041` all read as what they mean), and the
// offsets of each Finding are mapped back to raw: input[Start:End] of the
// result is the escaped form of the secret in raw.
func (e *Engine) DetectJSONString(raw []byte) ([]Finding, error) {
	dec, idx, err := decodeJSONString(raw)
	if err != nil {
		return nil, err
	}
	fs := e.Detect(dec)
	for i := range fs {
		fs[i].Start = idx[fs[i].Start]
		fs[i].End = idx[fs[i].End]
	}
	return fs, nil
}

// decodeJSONString decodes a JSON string body. idx[i] is the offset in raw
// of the escape or byte that produced decoded byte i; idx[len(dec)] is
// len(raw).
func decodeJSONString(raw []byte) (dec []byte, idx []int, err error) {
	dec = make([]byte, 0, len(raw))
	idx = make([]int, 0, len(raw)+1)
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			if c < 0x20 {
				return nil, nil, fmt.Errorf("%w: control byte 0x%02x at %d", ErrBadJSONString, c, i)
			}
			dec = append(dec, c)
			idx = append(idx, i)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return nil, nil, fmt.Errorf("%w: dangling backslash at %d", ErrBadJSONString, i)
		}
		start := i
		var r rune
		switch raw[i+1] {
		case '"', '\\', '/':
			r = rune(raw[i+1])
			i += 2
		case 'b':
			r, i = '\b', i+2
		case 'f':
			r, i = '\f', i+2
		case 'n':
			r, i = '\n', i+2
		case 'r':
			r, i = '\r', i+2
		case 't':
			r, i = '\t', i+2
		case 'u':
			u, ok := hex4(raw, i+2)
			if !ok {
				return nil, nil, fmt.Errorf("%w: bad \\u escape at %d", ErrBadJSONString, i)
			}
			i += 6
			r = rune(u)
			if utf16.IsSurrogate(r) {
				if u2, ok := hex4(raw, i+2); ok && i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if d := utf16.DecodeRune(r, rune(u2)); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
		default:
			return nil, nil, fmt.Errorf("%w: \\%c at %d", ErrBadJSONString, raw[i+1], i)
		}
		n := len(dec)
		dec = utf8.AppendRune(dec, r)
		for range len(dec) - n {
			idx = append(idx, start)
		}
	}
	idx = append(idx, len(raw))
	return dec, idx, nil
}

func hex4(b []byte, i int) (uint16, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var v uint16
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}
