package rules

// families lists the per-provider rule sets; each lives in its own file.
var families = []func() []Rule{
	generic}

// Builtin returns a fresh copy of the built-in catalog.
func Builtin() []Rule {
	var out []Rule
	for _, f := range families {
		out = append(out, f()...)
	}
	return out
}
