package detect

import (
	"errors"
	"fmt"
)

// keywordMatcher is an Aho–Corasick automaton compiled to a dense DFA over
// byte classes, with ASCII case folding built into the class map so the input
// is never lower-cased or copied. Matching costs two table loads per input
// byte, one of which (the class) does not depend on the previous step.
//
// Layout: trans[state+class] holds the next state already multiplied by the
// number of classes, with acceptBit set when the next state ends at least one
// keyword; outputs of such states are listed in out.
type keywordMatcher struct {
	classes  [256]uint8
	nclasses int
	trans    []uint32
	out      map[uint32][]int32 // state offset → keyword ids ending there
	lens     []int              // keyword id → length
}

const acceptBit = 1 << 31

func foldByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// newKeywordMatcher builds the automaton. Keywords are matched
// ASCII-case-insensitively; keyword i reports id i.
func newKeywordMatcher(keywords []string) (*keywordMatcher, error) {
	if len(keywords) == 0 {
		return nil, errors.New("no keywords")
	}
	m := &keywordMatcher{lens: make([]int, len(keywords))}

	// Byte classes: every folded byte used by a keyword gets its own class;
	// all other bytes share class 0.
	var used [256]bool
	for i, kw := range keywords {
		if kw == "" {
			return nil, fmt.Errorf("keyword %d is empty", i)
		}
		m.lens[i] = len(kw)
		for j := 0; j < len(kw); j++ {
			used[foldByte(kw[j])] = true
		}
	}
	n := 1
	var classOf [256]uint8
	for b := 0; b < 256; b++ {
		if used[b] {
			if n == 255 {
				return nil, errors.New("too many distinct keyword bytes")
			}
			classOf[b] = uint8(n)
			n++
		}
	}
	for b := 0; b < 256; b++ {
		m.classes[b] = classOf[foldByte(byte(b))]
	}
	m.nclasses = n

	// Trie over classes.
	type node struct {
		next map[uint8]int
		fail int
		out  []int32
	}
	nodes := []node{{next: map[uint8]int{}}}
	for id, kw := range keywords {
		cur := 0
		for j := 0; j < len(kw); j++ {
			c := m.classes[kw[j]]
			nx, ok := nodes[cur].next[c]
			if !ok {
				nodes = append(nodes, node{next: map[uint8]int{}})
				nx = len(nodes) - 1
				nodes[cur].next[c] = nx
			}
			cur = nx
		}
		nodes[cur].out = append(nodes[cur].out, int32(id))
	}
	if len(nodes)*n >= acceptBit {
		return nil, errors.New("keyword automaton too large")
	}

	// Breadth-first: failure links, merged outputs, dense transitions.
	delta := make([]int, len(nodes)*n) // unscaled next state
	queue := make([]int, 0, len(nodes))
	for c := 0; c < n; c++ {
		if nx, ok := nodes[0].next[uint8(c)]; ok {
			nodes[nx].fail = 0
			delta[c] = nx
			queue = append(queue, nx)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if f := nodes[s].fail; len(nodes[f].out) > 0 {
			nodes[s].out = append(nodes[s].out, nodes[f].out...)
		}
		for c := 0; c < n; c++ {
			if nx, ok := nodes[s].next[uint8(c)]; ok {
				nodes[nx].fail = delta[nodes[s].fail*n+c]
				delta[s*n+c] = nx
				queue = append(queue, nx)
			} else {
				delta[s*n+c] = delta[nodes[s].fail*n+c]
			}
		}
	}

	m.trans = make([]uint32, len(delta))
	m.out = make(map[uint32][]int32)
	for s := range nodes {
		if len(nodes[s].out) > 0 {
			m.out[uint32(s*n)] = nodes[s].out
		}
	}
	for i, t := range delta {
		v := uint32(t * n)
		if len(nodes[t].out) > 0 {
			v |= acceptBit
		}
		m.trans[i] = v
	}
	return m, nil
}

// hit is a keyword occurrence: keyword id and the offset just past its end.
type hit struct {
	kw  int32
	end int
}

// scan appends every keyword occurrence in input to hits.
func (m *keywordMatcher) scan(input []byte, hits []hit) []hit {
	trans, classes := m.trans, &m.classes
	var s uint32
	for i := 0; i < len(input); i++ {
		v := trans[s+uint32(classes[input[i]])]
		s = v &^ acceptBit
		if v&acceptBit != 0 {
			for _, id := range m.out[s] {
				hits = append(hits, hit{kw: id, end: i + 1})
			}
		}
	}
	return hits
}
