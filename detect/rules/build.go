package rules

import "regexp"

// Building blocks shared by the rule files. They are constants and pure
// functions: the catalog holds no state between calls to Builtin.

// Regular-expression fragments.
const (
	// assignOp is what may stand between a credential's name and its value
	// in the syntaxes we meet: the rest of the name (aws_secret_access_key_id
	// → _id), a closing quote or bracket (JSON keys, os.environ["X"]), an
	// XML attribute pair (key="X" value="v"), an operator (=, :, :=, ::=,
	// ?=, =>, a comma in a setter call, > of an XML element), a Kubernetes
	// env entry (name: X, then value: on the next line) or blanks (ENV X v),
	// then an opening quote.
	assignOp = `[\w.-]{0,24}?["'\x60]?\]?(?:\s+value)?\s{0,4}(?:=>|:=|::=|\?=|=|:|,|>|["']?\s*\r?\n\s*value:|\s)\s{0,4}["'\x60]?`

	// endB64 ends a value drawn from the base64 alphabet.
	endB64 = `(?:[^A-Za-z0-9+/=]|$)`
	// endWord ends a value drawn from letters, digits, '_' and '-'.
	endWord = `(?:[^A-Za-z0-9_-]|$)`
	// endAlnum ends a value drawn from letters and digits.
	endAlnum = `(?:[^A-Za-z0-9]|$)`
	// startWord is a left boundary for values drawn from letters, digits,
	// '_' and '-' (a leading \b would accept a '-' before the value).
	startWord = `(?:^|[^A-Za-z0-9_-])`
)

// named builds the pattern of a name-based rule: a case-insensitive name,
// an assignment (assignOp) and the value, which becomes group 1; end is the
// boundary the value must be followed by.
func named(name, value, end string) string {
	return `(?i:` + name + `)` + assignOp + `(` + value + `)` + end
}

// Sample builders. Each embeds a value in a realistic piece of text of one
// syntax and records the value as the expected secret.

func envSample(name, v string) Sample {
	return Sample{Text: "# deploy settings\nNODE_ENV=production\n" + name + "=" + v + "\nLOG_LEVEL=info\n", Secret: v}
}

func jsonSample(name, v string) Sample {
	return Sample{Text: "{\n  \"region\": \"eu-west-1\",\n  \"" + name + "\": \"" + v + "\",\n  \"retries\": 3\n}\n", Secret: v}
}

func yamlSample(name, v string) Sample {
	return Sample{Text: "service:\n  name: billing\n  " + name + ": " + v + "\n  timeout: 30s\n", Secret: v}
}

func k8sEnvSample(name, v string) Sample {
	return Sample{Text: "    env:\n      - name: " + name + "\n        value: \"" + v + "\"\n      - name: PORT\n        value: \"8080\"\n", Secret: v}
}

func goShortSample(name, v string) Sample {
	return Sample{Text: "func newClient() *Client {\n\t" + name + " := \"" + v + "\"\n\treturn &Client{key: " + name + "}\n}\n", Secret: v}
}

func pySample(name, v string) Sample {
	return Sample{Text: "import os\n\n" + name + " = \"" + v + "\"\nclient = Client(timeout=30)\n", Secret: v}
}

func jsSample(name, v string) Sample {
	return Sample{Text: "import { Client } from './client.js';\n\nconst " + name + " = '" + v + "';\nexport default new Client();\n", Secret: v}
}

func shSample(name, v string) Sample {
	return Sample{Text: "#!/usr/bin/env bash\nset -euo pipefail\nexport " + name + "=\"" + v + "\"\n./scripts/deploy.sh\n", Secret: v}
}

func xmlSample(name, v string) Sample {
	return Sample{Text: "<settings>\n  <" + name + ">" + v + "</" + name + ">\n  <timeout>30</timeout>\n</settings>\n", Secret: v}
}

func tomlSample(name, v string) Sample {
	return Sample{Text: "[service]\nname = \"billing\"\n" + name + " = \"" + v + "\"\n", Secret: v}
}

// textSample embeds v between before and after verbatim.
func textSample(before, v, after string) Sample {
	return Sample{Text: before + v + after, Secret: v}
}

// prefixed builds the rule of a token recognised by a literal prefix (one of
// prefixes, matched case-sensitively) followed by body, as a whole word.
// maxLen bounds the token's length from the start of its prefix.
func prefixed(id, desc string, cat Category, prefixes []string, body string, maxLen int, pos []Sample, neg []string) Rule {
	alt := ""
	for i, p := range prefixes {
		if i > 0 {
			alt += "|"
		}
		alt += regexp.QuoteMeta(p)
	}
	return Rule{
		ID:            id,
		Description:   desc,
		Category:      cat,
		Keywords:      prefixes,
		CaseSensitive: true,
		Pattern:       startWord + `((?:` + alt + `)` + body + `)` + endWord,
		SecretGroup:   1,
		MaxLen:        maxLen + 1,
		Validate:      All(NotPlaceholder, MinEntropy(3)),
		Positives:     pos,
		Negatives:     neg,
	}
}
