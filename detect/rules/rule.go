// Package rules is the built-in detection catalog: one file per provider
// family, each rule carrying the samples it must and must not match.
//
// A rule is plain data. The detection engine (package detect) compiles it:
// its keywords go into one case-folding multi-keyword automaton, and its
// pattern runs only on a small window that starts at a keyword hit. That
// shape dictates how a rule is written:
//
//   - Keywords are literals (3 bytes or more) that every match contains; the
//     engine runs Pattern only where a keyword occurs. A distinctive prefix
//     ("ghp_", "AKIA", "sk-ant-") makes the best keyword.
//   - The window given to Pattern starts Before bytes ahead of the keyword
//     (default 0, so the match may start at the keyword itself) and reaches
//     MaxLen bytes past the keyword's start. Pattern should begin with the
//     keyword or something just before it: the engine never runs it over
//     the whole input.
//   - SecretGroup names the capture group holding the secret; 0 means the
//     whole match. Offsets reported are those of the secret only.
//   - Validate (checksums, structure) and MinEntropy run after the pattern
//     matched; a candidate that fails them is dropped.
//
// Samples are checked by a test in package detect: every Positive must yield
// a finding of this rule whose secret is Sample.Secret (when set), and no
// Negative may yield a finding of this rule.
//
// Sample values are fabricated: they have the shape (and, where there is one,
// a valid checksum) of real credentials but were never issued by anyone.
package rules

// Category is the kind of value a rule finds; it is part of the token that
// replaces the value (DESIGN §4).
type Category string

// The categories of DESIGN §4.
const (
	KEY    Category = "KEY"    // API and access keys
	SECRET Category = "SECRET" // passwords, client secrets, signing secrets
	CONN   Category = "CONN"   // connection strings that carry credentials
	HOST   Category = "HOST"   // internal hostnames and private addresses
	TOKEN  Category = "TOKEN"  // bearer tokens, JWTs, personal access tokens
	USER   Category = "USER"   // usernames in credential contexts
	PKEY   Category = "PKEY"   // private key material (PEM, PGP, age)
)

// Categories lists every category in a stable order.
var Categories = []Category{KEY, SECRET, CONN, HOST, TOKEN, USER, PKEY}

// Valid reports whether c is one of the known categories.
func (c Category) Valid() bool {
	for _, k := range Categories {
		if c == k {
			return true
		}
	}
	return false
}

// Action says what happens to a finding (DESIGN §5). The policy may override
// a rule's default per rule or per category.
type Action string

// The actions of DESIGN §5.
const (
	Tokenize Action = "tokenize" // replace with a token, put back in the response
	Block    Action = "block"    // reject the request, listing the detection without its value
	Monitor  Action = "monitor"  // record only; the value is forwarded unchanged
	Off      Action = "off"      // ignore
)

// Valid reports whether a is one of the known actions.
func (a Action) Valid() bool {
	switch a {
	case Tokenize, Block, Monitor, Off:
		return true
	}
	return false
}

// Sample is a piece of text a rule is tested on. Secret, when set, is the
// exact value the rule must report for a positive sample.
type Sample struct {
	Text   string
	Secret string
}

// Span is a half-open byte range [Start, End) of a text.
type Span struct{ Start, End int }

// Rule is one detection rule. See the package documentation for how the
// engine uses each field.
type Rule struct {
	ID          string
	Description string
	Category    Category
	// Action is the default action; empty means Tokenize.
	Action Action

	// Keywords trigger the rule; at least one, each 3 bytes or longer.
	// They are matched ASCII-case-insensitively unless CaseSensitive is set.
	Keywords      []string
	CaseSensitive bool

	// Pattern is an RE2 expression run on the window around a keyword hit.
	Pattern     string
	SecretGroup int
	// Before is how many bytes before the keyword a match may start.
	Before int
	// MaxLen bounds how far past the keyword's start a match may reach.
	// 0 means 256.
	MaxLen int
	// Anchored says that every match (after a leading boundary, if the
	// pattern has one) starts exactly where a keyword starts. The engine
	// then tries the pattern once per hit, anchored there, instead of
	// searching the window: for patterns whose keywords are many short
	// prefixes that begin with a character class ([MNO]…), the difference
	// is tenfold.
	Anchored bool

	// Find, when set, replaces Pattern: the engine calls it for each
	// keyword hit with the whole text and the hit's span, and it returns
	// the secret spans it confirms (for detectors easier to write in Go
	// than as a regular expression, such as generic assignments).
	Find func(text []byte, hitStart, hitEnd int) []Span

	// MinEntropy, when positive, drops secrets whose Shannon entropy (bits
	// per byte) is below it.
	MinEntropy float64
	// Validate, when set, must accept the secret.
	Validate func(secret []byte) bool
	// Generic marks rules that guess from context (names, structure) rather
	// than a provider's format; when a specific rule reports an overlapping
	// span the generic finding is dropped.
	Generic bool

	Positives []Sample
	Negatives []string
}
