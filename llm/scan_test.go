package llm

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestScanStringDecode checks the decoding pass against encoding/json on
// strings full of escapes, and rawCursor against the escapes' positions.
func TestScanStringDecode(t *testing.T) {
	pieces := []string{`a`, `é`, `中`, `😀`, `\n`, `\"`, `\\`, `\/`, `\t`, `\u0041`, `\u00e9`, `\ud83d\ude00`, `\ud83d`, `\ude00`, `\u2028`, ` `, `xyz0123456789`, `\b\f\r`}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		var raw []byte
		for range r.IntN(30) {
			raw = append(raw, pieces[r.IntN(len(pieces))]...)
		}
		lit := append(append([]byte{'"'}, raw...), '"')
		var want string
		if err := json.Unmarshal(lit, &want); err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		end, esc, dec, err := scanString(lit, 0, nil, true)
		if err != nil || end != len(lit)-1 {
			t.Fatalf("%s: end %d, err %v", lit, end, err)
		}
		if !esc {
			dec = raw
		}
		if string(dec) != want {
			t.Fatalf("%s: decoded %q, want %q", lit, dec, want)
		}
		if got := appendDecoded(nil, raw); string(got) != want {
			t.Fatalf("%s: appendDecoded %q, want %q", lit, got, want)
		}
		// Every decoded offset maps to a raw offset from which the rest
		// decodes to the rest of the value (at rune boundaries).
		cur := rawCursor{raw: raw}
		for d := 0; d <= len(dec); d++ {
			ro := cur.at(d)
			if d < len(dec) && (dec[d]&0xC0 == 0x80) {
				continue // inside a rune
			}
			if rest := appendDecoded(nil, raw[ro:]); string(rest) != string(dec[d:]) {
				t.Fatalf("%s: offset %d maps to %d, which decodes to %q, want %q", lit, d, ro, rest, dec[d:])
			}
		}
	}
}

func TestSpecial(t *testing.T) {
	for c := range 256 {
		var b [8]byte
		for i := range b {
			b[i] = 'a'
		}
		for pos := range 8 {
			b2 := b
			b2[pos] = byte(c)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(b2[i])
			}
			if !plain[c] && !special(x) {
				t.Fatalf("byte %#x at %d not flagged", c, pos)
			}
		}
	}
}
