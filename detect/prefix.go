package detect

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
)

// Go's regexp finds candidate match starts with a fast substring search
// only when a pattern begins with a literal. Token rules usually begin with
// a boundary instead, `(?:^|[^A-Za-z0-9])ghp_…` or `\bAKIA…`, which makes
// the engine try every position of the window. compilePattern moves such a
// leading boundary out of the pattern: the rest ("ghp_…") has a literal
// prefix again, and the boundary is checked in Go on the byte before the
// match, against the whole input (so a window cut mid-word cannot fake it).

// boundary is a condition on the byte before a match start.
type boundary struct {
	kind  uint8 // 0 none, 1 word boundary (\b), 2 start of text or a byte not in class
	class []rune
}

const (
	boundaryNone = iota
	boundaryWord
	boundaryClass
)

// ok reports whether a match starting at pos in input satisfies b.
func (b *boundary) ok(input []byte, pos int) bool {
	switch b.kind {
	case boundaryWord:
		before := pos > 0 && isWordByte(input[pos-1])
		after := pos < len(input) && isWordByte(input[pos])
		return before != after
	case boundaryClass:
		if pos == 0 {
			return true
		}
		return inClass(b.class, rune(input[pos-1]))
	}
	return true
}

func inClass(ranges []rune, r rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= r && r <= ranges[i+1] {
			return true
		}
	}
	return false
}

// compilePattern compiles pattern, splitting off a leading boundary when
// that gives the rest a literal prefix.
func compilePattern(pattern string) (*regexp.Regexp, boundary, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, boundary{}, err
	}
	if p, _ := re.LiteralPrefix(); p != "" {
		return re, boundary{}, nil
	}
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return re, boundary{}, nil
	}
	b := leadingBoundary(tree)
	if b.kind == boundaryNone {
		return re, boundary{}, nil
	}
	// Cut the boundary off the source text rather than printing the rest of
	// the tree: syntax.Regexp.String is slow enough on large classes to
	// dominate start-up.
	rest, ok := cutLeadingGroup(pattern)
	if !ok {
		return re, boundary{}, nil
	}
	re2, err := regexp.Compile(rest)
	if err != nil || re2.NumSubexp() != re.NumSubexp() {
		return re, boundary{}, nil
	}
	if p, _ := re2.LiteralPrefix(); p == "" {
		return re, boundary{}, nil
	}
	return re2, b, nil
}

// leadingBoundary recognises `\b…` and `(?:^|[class])…` at the start of a
// concatenation.
func leadingBoundary(t *syntax.Regexp) boundary {
	if t.Op != syntax.OpConcat || len(t.Sub) < 2 {
		return boundary{}
	}
	first := t.Sub[0]
	switch first.Op {
	case syntax.OpWordBoundary:
		return boundary{kind: boundaryWord}
	case syntax.OpAlternate:
		if len(first.Sub) != 2 {
			return boundary{}
		}
		x, y := first.Sub[0], first.Sub[1]
		if y.Op == syntax.OpBeginText || y.Op == syntax.OpBeginLine {
			x, y = y, x
		}
		if x.Op != syntax.OpBeginText || y.Op != syntax.OpCharClass {
			return boundary{}
		}
		// The class is usually negated ([^A-Za-z0-9]) and so spans runes
		// above ASCII: any non-ASCII byte before the match then passes,
		// which is what the original pattern did for a multi-byte rune.
		return boundary{kind: boundaryClass, class: appendHighBytes(append([]rune(nil), y.Rune...))}
	}
	return boundary{}
}

// cutLeadingGroup removes a leading `\b` or a leading parenthesised group
// from pattern, honouring escapes and character classes.
func cutLeadingGroup(pattern string) (string, bool) {
	if strings.HasPrefix(pattern, `\b`) {
		return pattern[2:], true
	}
	if !strings.HasPrefix(pattern, "(") {
		return "", false
	}
	depth, inClass := 0, false
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if i+1 < len(pattern) && pattern[i+1] == '^' {
				i++
			}
			if i+1 < len(pattern) && pattern[i+1] == ']' {
				i++ // a literal ] first in a class
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return pattern[i+1:], true
			}
		}
	}
	return "", false
}

// appendHighBytes makes a class that contains every rune from 0x80 up also
// accept the bytes 0x80–0xFF, as they start or continue such runes.
func appendHighBytes(ranges []rune) []rune {
	if inClass(ranges, 0x80) && inClass(ranges, unicode.MaxRune) {
		return append(ranges, 0x80, 0xFF)
	}
	return ranges
}

// leadingBoundaryOf parses pattern and returns its leading boundary, if any.
func leadingBoundaryOf(pattern string) boundary {
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return boundary{}
	}
	return leadingBoundary(tree)
}
