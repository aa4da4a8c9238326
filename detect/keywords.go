package detect

import (
	"errors"
	"fmt"
	"math"
)

// keywordMatcher finds every occurrence of a set of keywords, ASCII
// case-insensitively, without lower-casing or copying the input.
//
// A classic Aho–Corasick DFA walks one dependent table load per byte, which
// on this hardware costs about 3 ns/byte: most of our budget. Instead the
// matcher slides a 3-byte window over the input, turns it into an 18-bit
// index (6 bits per byte, from a class map with case folding baked in) and
// tests one bit in a 32 KiB table of the trigrams that begin a keyword. The
// index is a shift and an or per byte, so consecutive positions overlap in
// the CPU; only at the rare positions whose trigram begins some keyword does
// a plain trie walk confirm which keywords start there. Keywords shorter than
// three bytes set every trigram they begin, so nothing is missed.
type keywordMatcher struct {
	classes  [256]uint8 // folded byte → class; 0 for bytes no keyword uses
	code     [256]uint8 // byte → 6-bit code (the class when there are ≤ 64)
	nclasses int
	bits     []uint64  // trigram bitmap, 1<<18 bits
	trie     []int32   // state*nclasses+class → next state*nclasses (| trieOut when it ends keywords), or -1
	out      [][]int32 // state → ids of the keywords ending there
	lens     []int     // keyword id → length
}

const trigramBits = 18

func foldByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// newKeywordMatcher builds the matcher. Keyword i reports id i. Keywords
// whose caseSensitive entry is true (the slice may be nil) still report
// case-insensitive occurrences (the caller checks the exact bytes), but the
// trigram filter lets only their exact case through, so a case-sensitive
// "ODE" does not stop the scan at every "code" and "node".
func newKeywordMatcher(keywords []string, caseSensitive []bool) (*keywordMatcher, error) {
	if len(keywords) == 0 {
		return nil, errors.New("no keywords")
	}
	m := &keywordMatcher{lens: make([]int, len(keywords))}

	var used [256]bool
	total := 0 // keyword bytes: the trie has at most total+1 states
	for i, kw := range keywords {
		if kw == "" {
			return nil, fmt.Errorf("keyword %d is empty", i)
		}
		m.lens[i] = len(kw)
		total += len(kw)
		for j := 0; j < len(kw); j++ {
			used[foldByte(kw[j])] = true
		}
	}
	n := 1
	var classOf [256]uint8
	for b := 0; b < 256; b++ {
		if used[b] {
			if n == 256 {
				return nil, errors.New("too many distinct keyword bytes")
			}
			classOf[b] = uint8(n)
			n++
		}
	}
	m.nclasses = n
	if total+1 > math.MaxInt32/n {
		return nil, errors.New("keywords too long for the trie's int32 states")
	}
	for b := 0; b < 256; b++ {
		m.classes[b] = classOf[foldByte(byte(b))]
	}

	// Trigram codes: one per folded keyword byte, plus one per upper-case
	// letter that begins a case-sensitive keyword, so that the filter can
	// tell "ODE" from "ode". More than 63 codes share by modulo, which only
	// costs false candidates.
	var distinct [256]bool // upper-case letters with a code of their own
	for i, kw := range keywords {
		if i < len(caseSensitive) && caseSensitive[i] {
			for j := 0; j < len(kw) && j < 3; j++ {
				if 'A' <= kw[j] && kw[j] <= 'Z' {
					distinct[kw[j]] = true
				}
			}
		}
	}
	var codeOf [256]int
	nc := 1
	for b := 0; b < 256; b++ {
		switch {
		case distinct[b]:
			codeOf[b] = nc
			nc++
		case used[foldByte(byte(b))] && foldByte(byte(b)) == byte(b):
			codeOf[b] = nc
			nc++
		}
	}
	for b := 0; b < 256; b++ {
		c := codeOf[b]
		if c == 0 && !distinct[b] {
			c = codeOf[foldByte(byte(b))]
		}
		if c > 63 {
			c = (c-1)%63 + 1
		}
		m.code[b] = uint8(c) //nolint:gosec // G115: at most 63 here
	}

	// Trie over classes; state numbers are premultiplied by n.
	m.trie = make([]int32, n)
	for i := range m.trie {
		m.trie[i] = -1
	}
	m.out = [][]int32{nil}
	for id, kw := range keywords {
		cur := 0
		for j := 0; j < len(kw); j++ {
			c := int(m.classes[kw[j]])
			nx := m.trie[cur*n+c]
			if nx < 0 {
				nx = int32(len(m.out) * n) //nolint:gosec // G115: at most (total+1)*n, checked above
				m.trie[cur*n+c] = nx
				for range n {
					m.trie = append(m.trie, -1)
				}
				m.out = append(m.out, nil)
			}
			cur = int(nx) / n
		}
		m.out[cur] = append(m.out[cur], int32(id))
	}
	if len(m.trie) >= trieOut {
		return nil, errors.New("keyword trie too large")
	}
	for i, t := range m.trie {
		if t >= 0 && len(m.out[int(t)/n]) > 0 {
			m.trie[i] = t | trieOut
		}
	}

	// Trigram bitmap.
	m.bits = make([]uint64, 1<<trigramBits/64)
	const all = 64
	for i, kw := range keywords {
		cs := i < len(caseSensitive) && caseSensitive[i]
		var codes [3][]uint8
		for j := 0; j < 3; j++ {
			if j < len(kw) {
				b := kw[j]
				if cs {
					codes[j] = []uint8{m.code[b]}
					continue
				}
				// Either case of a letter must pass for a case-insensitive
				// keyword.
				lo, up := foldByte(b), b
				if 'a' <= lo && lo <= 'z' {
					up = lo - 'a' + 'A'
				}
				codes[j] = []uint8{m.code[lo]}
				if m.code[up] != m.code[lo] {
					codes[j] = append(codes[j], m.code[up])
				}
				continue
			}
			for c := 0; c < all; c++ {
				codes[j] = append(codes[j], uint8(c))
			}
		}
		for _, a := range codes[0] {
			for _, b := range codes[1] {
				for _, c := range codes[2] {
					idx := uint32(a)<<12 | uint32(b)<<6 | uint32(c)
					m.bits[idx>>6] |= 1 << (idx & 63)
				}
			}
		}
	}
	return m, nil
}

// hit is a keyword occurrence: keyword id and the offset just past its end.
type hit struct {
	kw  int32
	end int
}

// scan appends every keyword occurrence in input to hits, ordered by start
// offset.
func (m *keywordMatcher) scan(input []byte, hits []hit) []hit {
	n := len(input)
	if n >= 3 {
		// Written so that the compiler drops every bounds check: the
		// index is masked to the bitmap's size and the input is ranged.
		bits := (*[1 << trigramBits / 64]uint64)(m.bits)
		code := &m.code
		x, y := uint32(code[input[0]]), uint32(code[input[1]])
		for i, ch := range input[2:] {
			z := uint32(code[ch])
			idx := (x<<12 | y<<6 | z) & (1<<trigramBits - 1)
			x, y = y, z
			if bits[idx>>6]&(1<<(idx&63)) != 0 {
				hits = m.walk(input, i, hits)
			}
		}
	}
	for start := max(0, n-2); start < n; start++ {
		hits = m.walk(input, start, hits)
	}
	return hits
}

// trieOut marks a trie transition into a state that ends keywords, so walk
// divides by the class count only there.
const trieOut = 1 << 30

// walk appends the keywords that start at input[start].
func (m *keywordMatcher) walk(input []byte, start int, hits []hit) []hit {
	s := int32(0)
	for j := start; j < len(input); j++ {
		s = m.trie[s+int32(m.classes[input[j]])]
		if s < 0 {
			break
		}
		if s&trieOut != 0 {
			s &^= trieOut
			for _, id := range m.out[int(s)/m.nclasses] {
				hits = append(hits, hit{kw: id, end: j + 1})
			}
		}
	}
	return hits
}
