// Package detect finds secrets in text. It owns the engine, the custom rules
// an operator adds through a policy file, and the import of gitleaks
// configurations. The built-in rule catalog lives in detect/rules.
//
// The engine works in three steps (DESIGN §5):
//
//  1. One pass of a case-folding multi-keyword filter (keywords.go): each
//     3-byte window of the input is tested against a bitmap of the trigrams
//     that begin a keyword, and a trie walk confirms the keywords at the rare
//     positions that pass. The input is never lower-cased or copied.
//  2. Each rule whose keywords occurred runs on small windows around its
//     hits only: its regular expression (with a leading boundary moved out of
//     the pattern so Go's regexp can skip between literal prefixes, see
//     prefix.go), anchored at the hit for Anchored rules, or its Go finder
//     (generic "name = value" detection). A match that reaches a window's
//     edge grows the window, so a long secret is never cut.
//  3. Validators (checksums, structure, entropy, placeholders) and the
//     policy's allow list drop candidates; overlaps resolve to the specific
//     rule over a generic one, then the longer span.
//
// Actions: every rule has a default (tokenize unless it says otherwise;
// HOST and USER findings default to monitor: internal names and user names
// are worth knowing about but are not credentials). A policy overrides
// actions per rule or per category; Off rules are not run at all.
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
