// Package detect finds secrets in text. It owns the engine (one pass of a
// case-folding multi-keyword automaton, then anchored regular expressions on
// small windows around each keyword hit, then validators), the custom rules
// an operator adds through a policy file, and the import of gitleaks
// configurations. The built-in rule catalog lives in detect/rules.
//
// An Engine is immutable after New and safe for concurrent use. It never
// copies secret values: a Finding carries offsets into the caller's input,
// so nothing in this package can leak a value into a log line by accident.
package detect

import (
	"github.com/takumo/aegis/detect/rules"
)

// Aliases so that callers need not import detect/rules for the common types.
type (
	Category = rules.Category
	Action   = rules.Action
	Rule     = rules.Rule
)

// Re-exported categories and actions.
const (
	KEY    = rules.KEY
	SECRET = rules.SECRET
	CONN   = rules.CONN
	HOST   = rules.HOST
	TOKEN  = rules.TOKEN
	USER   = rules.USER
	PKEY   = rules.PKEY

	Tokenize = rules.Tokenize
	Block    = rules.Block
	Monitor  = rules.Monitor
	Off      = rules.Off
)

// Finding is one detected secret: the rule that found it and the half-open
// byte range [Start, End) of the secret value in the input given to Detect.
// It holds no copy of the value.
type Finding struct {
	RuleID   string
	Category Category
	Action   Action
	Start    int
	End      int
}

// Len is the length of the secret in bytes.
func (f Finding) Len() int { return f.End - f.Start }

// LineCol returns the 1-based line and the 1-based byte column of offset off
// in input. Lines end at '\n'; a '\r' before it belongs to the line.
func LineCol(input []byte, off int) (line, col int) {
	if off > len(input) {
		off = len(input)
	}
	line = 1
	last := -1
	for i := 0; i < off; i++ {
		if input[i] == '\n' {
			line++
			last = i
		}
	}
	return line, off - last
}
