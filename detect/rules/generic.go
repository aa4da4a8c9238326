package rules

import (
	"bytes"
	"slices"
	"strings"
)

// Generic detection: values assigned to suspicious names, in every common
// syntax (DESIGN §5). It is written in Go rather than as a regular
// expression because the keywords it hangs on ("pass", "token", "secret")
// are everywhere in source code: each hit must be accepted or rejected in a
// few dozen nanoseconds, without backtracking.
//
// For a keyword hit the finder
//  1. expands the hit to the whole name around it (identifier bytes plus
//     '.', '-' for dotted and kebab names; quotes are stripped) and splits it
//     into words (snake_case, kebab-case, camelCase, dotted);
//  2. classifies the name by its last word(s): `userPassword`, `DB_PASS`,
//     `client_secret`, `access_token`, `api-key`, `spring.datasource.password`
//     are suspicious; `password_file`, `token_type`, `max_tokens`,
//     `tokenizer`, `public_key`, `primary_key` are not;
//  3. parses an assignment after it: `=`, `:`, `:=`, `::=`, `?=`, `=>`, an
//     XML element `<password>v</password>`, an XML attribute, a JSON or YAML
//     key (quoted or not, also with `\"` escapes inside a JSON string), a
//     setter call with a quoted argument (`setPassword("v")`), a CLI flag
//     (`--password v`, `--password=v`), shell `export`, Dockerfile `ENV`,
//     and a type annotation in between (`apiKey: string = "v"`,
//     `var password string = "v"`);
//  4. rejects placeholders and references (see isPlaceholder), values too
//     weak for the name's tier, and bare identifiers where the context is
//     code rather than configuration.
//
// Tiers: a password-like name accepts any non-placeholder value of 4 bytes
// or more (passwords are often weak); secret/token/credential names need 8
// bytes that do not look like an identifier; a name that only ends in
// "key" with an unknown qualifier (STRIPE_KEY, signingKey) needs a value
// that looks random (16+ bytes, letters and digits, entropy ≥ 3).

// nameKind is the class of a suspicious name.
type nameKind uint8

const (
	kindNone      nameKind = iota
	kindPassword           // password, passwd, pwd, pass, passphrase
	kindSecret             // secret, client_secret, credentials
	kindToken              // token, access_token, auth_token
	kindAPIKey             // api key, access key, secret key, private key, …
	kindLooseKey           // *_key with a qualifier we do not know, *_salt, *_cookie
	kindStrictKey          // a key name that is usually not secret (primary_key): only very random values
	kindUser               // username, user, login in credential contexts
)

func genericFinder(want nameKind) func(text []byte, hs, he int) []Span {
	return func(text []byte, hs, he int) []Span {
		sp, ok := findAssignment(text, hs, he, want)
		if !ok {
			return nil
		}
		return []Span{sp}
	}
}

func isNameByte(b byte) bool {
	return b == '_' || b == '-' || b == '.' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// classify splits name into words and decides its kind from the last one
// or two words.
func classify(name []byte) nameKind {
	// Collect up to the last three words, lower-cased, without allocating.
	var words [3][]byte
	var buf [3][40]byte
	n := 0
	end := len(name)
	for end > 0 && n < 3 {
		// skip separators
		for end > 0 && (name[end-1] == '_' || name[end-1] == '-' || name[end-1] == '.') {
			end--
		}
		if end == 0 {
			break
		}
		start := end - 1
		if isDigit(name[start]) {
			for start > 0 && isDigit(name[start-1]) {
				start--
			}
		} else {
			for start > 0 {
				c, p := name[start], name[start-1]
				if p == '_' || p == '-' || p == '.' || isDigit(p) {
					break
				}
				// camelCase boundary: lower→Upper (userPassword), or
				// Upper→Upper followed by lower (APIKey: "Key").
				if isUpper(c) && isLower(p) {
					break
				}
				if isUpper(p) && isUpper(c) && start+1 < end && isLower(name[start+1]) {
					break
				}
				start--
			}
		}
		w := name[start:end]
		if len(w) > len(buf[n]) {
			w = w[len(w)-len(buf[n]):]
		}
		for i := range w {
			buf[n][i] = lower(w[i])
		}
		words[n] = buf[n][:len(w)]
		n++
		end = start
	}
	if n == 0 {
		return kindNone
	}
	if n >= 2 && fillerWord(words[0]) {
		return classifyWords(words[1], words[2])
	}
	return classifyWords(words[0], words[1])
}

// classifyWords decides a name's kind from its last word and the one before
// (both lower-case). The string conversions in the switches do not allocate.
func classifyWords(lastB, prevB []byte) nameKind {
	last, prev := string(lastB), string(prevB)
	switch last {
	case "password", "passwd", "pwd", "passphrase", "pass", "passwort", "contrasena", "motdepasse",
		"requirepass", "masterauth", "masterpass", "rootpw", "passw":
		switch prev {
		case "no", "hash", "hashed", "forgot", "reset",
			"proxy", "fastcgi", "uwsgi", "scgi", "grpc", "memcached": // nginx's *_pass directives
			return kindNone
		}
		return kindPassword
	case "secret", "secrets", "credential", "credentials", "creds", "apisecret", "clientsecret":
		if prev == "no" || prev == "public" || prev == "has" || prev == "is" {
			return kindNone
		}
		return kindSecret
	case "token", "accesstoken", "authtoken", "apitoken", "bearertoken", "pat":
		switch prev {
		case "next", "page", "continuation", "cancellation", "cancel", "csrf", "xsrf", "sync", "resume",
			"max", "num", "total", "start", "end", "eos", "bos", "pad", "unk", "sep", "cls", "mask", "stop",
			"id", "secure", "has", "last", "first", "special", "new", "invalid", "reset", "verification":
			return kindNone
		}
		if last == "pat" && prev == "" {
			return kindNone
		}
		return kindToken
	case "apikey", "accesskey", "privatekey", "signingkey", "masterkey", "authkey", "encryptionkey", "secretkey":
		return kindAPIKey
	case "key":
		switch prev {
		case "api", "access", "secret", "private", "signing", "master", "auth", "encryption", "client",
			"app", "account", "admin", "license", "service", "subscription", "webhook", "session", "hmac",
			"jwt", "crypto", "decryption", "storage", "shared", "consumer", "root", "validation", "integration",
			"ingest", "ingestion", "write", "read", "server", "deploy", "deployment", "developer", "dev", "prod":
			return kindAPIKey
		case "public", "pub", "ssh", "gpg", "pgp", "host", "kms", "translation", "i18n", "publishable",
			"keyboard", "on", "ctrl", "alt", "shift", "meta", "up", "down", "foreign", "":
			return kindNone
		case "primary", "sort", "partition", "cache", "map", "dict", "hash", "unique", "composite",
			"idempotency", "object", "lookup", "row", "range", "index", "group", "s3", "bucket", "field",
			"column", "table", "message", "label", "redis", "state", "query", "env", "registry", "react",
			"item", "list", "dedup", "dedupe", "shard", "cluster", "order", "search", "entry", "record",
			"data", "config", "hot", "short", "long", "request", "response", "storage_key", "file", "path":
			return kindStrictKey
		}
		return kindLooseKey
	case "salt", "cookie", "pepper", "nonce":
		if prev == "" || last == "nonce" && prev != "auth" && prev != "secure" {
			return kindNone
		}
		return kindLooseKey
	case "user", "username", "usr", "login", "userid", "uid":
		switch prev {
		case "db", "database", "mysql", "postgres", "pg", "admin", "root", "smtp", "mail", "ftp", "sftp",
			"ldap", "redis", "mongo", "mongodb", "rabbitmq", "amqp", "proxy", "auth", "basic", "registry",
			"docker", "sql", "jdbc", "datasource", "connection", "ssh", "service":
			return kindUser
		}
		if last == "username" || last == "login" {
			return kindUser
		}
		return kindNone
	}
	// Concatenated names: PGPASSWORD, dbpassword, ADMINTOKEN.
	for _, suf := range [...]struct {
		s string
		k nameKind
	}{{"password", kindPassword}, {"passwd", kindPassword}, {"secret", kindSecret}, {"apikey", kindAPIKey}, {"token", kindToken}} {
		if len(last) > len(suf.s)+1 && strings.HasSuffix(last, suf.s) && !strings.HasSuffix(last, "detoken") {
			return suf.k
		}
	}
	return kindNone
}

// fillerWords end a name without changing what it holds: secret_key_base,
// password_value, api_key_b64.
func fillerWord(w []byte) bool {
	switch string(w) {
	case "base", "value", "val", "string", "str", "b64", "base64", "hex", "raw", "plain", "plaintext",
		"literal", "bytes", "enc", "encoded", "override", "default":
		return true
	}
	return false
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }
func isUpper(b byte) bool { return 'A' <= b && b <= 'Z' }
func isLower(b byte) bool { return 'a' <= b && b <= 'z' }

// findAssignment is steps 1–4 of the package comment for one keyword hit.
func findAssignment(text []byte, hs, he int, want nameKind) (Span, bool) {
	// 1. The name around the hit.
	ns := hs
	for ns > 0 && isNameByte(text[ns-1]) && hs-ns < 96 {
		ns--
	}
	ne := he
	for ne < len(text) && isNameByte(text[ne]) && ne-he < 96 {
		ne++
	}
	flag := false
	outer := ns // where the name starts, dashes included
	if ns+1 < ne && text[ns] == '-' {
		// --password / -password: a command-line flag.
		for ns < ne && text[ns] == '-' {
			ns++
		}
		flag = true
	}
	for ne > ns && (text[ne-1] == '.' || text[ne-1] == '-') {
		ne--
	}
	name := text[ns:ne]
	if len(name) == 0 {
		return Span{}, false
	}
	k := classify(name)
	if k != want && !(want == kindLooseKey && (k == kindStrictKey || k == kindAPIKey)) {
		// The loose rule hangs on the case-sensitive "Key" of camelCase
		// names, so it also takes the key names the api-key rule knows.
		return Span{}, false
	}

	if isReferenceName(text, ns, name) {
		return Span{}, false
	}

	// A name that is itself the value of a name field, paired with a value
	// field: Kubernetes env (- name: DB_PASSWORD / value: …), ECS and
	// CloudFormation parameters ({"name": "DB_PASSWORD", "value": "…"}).
	if nameFieldBefore(text, outer) {
		if sp, ok := pairedValue(text, ne, k); ok {
			return sp, true
		}
	}

	// 2. What precedes the name tells the syntax.
	quote := byte(0)
	escQuote := false
	xmlElem := false
	if outer > 0 {
		switch c := text[outer-1]; c {
		case '"', '\'', '`':
			quote = c
			if outer > 1 && text[outer-2] == '\\' {
				escQuote = true
			}
		case '<':
			xmlElem = true
		}
	}
	i := ne
	attrValue := false // the name was itself an attribute value: name="db.password"
	if quote != 0 {
		if escQuote {
			if !hasPrefix(text, i, "\\"+string(quote)) {
				return Span{}, false
			}
			i += 2
		} else {
			if i >= len(text) || text[i] != quote {
				return Span{}, false
			}
			i++
			attrValue = outer >= 2 && text[outer-2] == '='
		}
		if i < len(text) && text[i] == ']' {
			i++
		}
	}

	// 3. The operator.
	if xmlElem || attrValue && i < len(text) && text[i] == '>' {
		// <password>v</password>, <property name="x.password">v</property>
		if i >= len(text) || text[i] != '>' {
			return Span{}, false
		}
		i++
		vs := i
		for i < len(text) && text[i] != '<' && text[i] != '\n' && i-vs < 512 {
			i++
		}
		if i >= len(text) || text[i] != '<' {
			return Span{}, false
		}
		vs, ve := trimSpace(text, vs, i)
		return accept(text, vs, ve, k, true)
	}
	if attrValue {
		// <add key="DbPassword" value="v"/>
		j := skipBlanks(text, i)
		if hasPrefix(text, j, "value=") || hasPrefix(text, j, "content=") {
			j += bytes.IndexByte(text[j:], '=') + 1
			if vs, ve, ok := quotedValue(text, j); ok {
				return accept(text, vs, ve, k, true)
			}
		}
		return Span{}, false
	}
	i0 := i
	i = skipBlanks(text, i)
	configLine := lineStartsAt(text, ns)
	codeish := false
	switch {
	case i >= len(text):
		return Span{}, false
	case hasPrefix(text, i, "::="):
		i += 3
	case hasPrefix(text, i, ":="), hasPrefix(text, i, "=>"):
		codeish = true
		i += 2
	case hasPrefix(text, i, "?="):
		i += 2
	case text[i] == '=':
		if hasPrefix(text, i, "==") {
			return Span{}, false
		}
		i++
	case text[i] == ':':
		if hasPrefix(text, i, "::") {
			return Span{}, false
		}
		i++
		// TypeScript or Kotlin annotation: `apiKey: string = "v"`.
		if quote == 0 {
			if j := skipTypeThenEquals(text, i); j > 0 {
				i = j
				codeish = true
			}
		}
	case text[i] == '(':
		// setPassword("v")
		vs, ve, ok := quotedValue(text, skipBlanks(text, i+1))
		if !ok {
			return Span{}, false
		}
		return accept(text, vs, ve, k, true)
	case text[i] == ',' && (quote != 0 || flag):
		// ('DB_PASSWORD', 'v'), ["--password", "v"]: only a literal that
		// does not read as another name.
		vs, ve, ok := quotedValue(text, skipBlanks(text, i+1))
		if !ok || isIdentifierish(text[vs:ve]) {
			return Span{}, false
		}
		return accept(text, vs, ve, k, true)
	case i > i0 && flag:
		// --password value
	case quote == 0 && skipTypeThenEquals(text, i) > 0:
		// Go: `var password string = "v"`.
		i = skipTypeThenEquals(text, i)
		codeish = true
	case i > i0 && k == kindPassword && !bytes.EqualFold(name, []byte("pass")):
		// Directive or SQL style: `requirepass v`, `PASSWORD 'v'`. Not for
		// the bare word "pass", an English verb ("Pass `x: y` to …"), and
		// not for a backtick span, which is Markdown inline code.
		if text[i] == '"' || text[i] == '\'' {
			if vs, ve, ok := quotedValue(text, i); ok {
				return accept(text, vs, ve, k, true)
			}
		}
		if !configLine {
			return Span{}, false
		}
		vs, ve := i, i
		for ve < len(text) && !isSpace(text[ve]) {
			ve++
		}
		if ve == vs || !restIsComment(text, ve) || isIdentifierish(text[vs:ve]) && !hasLetterAndDigit(text[vs:ve]) {
			return Span{}, false
		}
		return accept(text, vs, ve, k, false)
	default:
		return Span{}, false
	}
	i = skipBlanks(text, i)
	if i >= len(text) {
		return Span{}, false
	}

	// 4. The value.
	if vs, ve, ok := quotedValue(text, i); ok {
		return accept(text, vs, ve, k, true)
	}
	if text[i] == '"' || text[i] == '\'' || text[i] == '`' {
		return Span{}, false // an unterminated or multi-line literal
	}
	// A literal behind a wrapper: []byte("v"), ConvertTo-SecureString "v".
	for _, w := range wrappers {
		if hasPrefix(text, i, w) {
			j := i + len(w)
			if j < len(text) && text[j] == '(' {
				j++
			}
			if qs, qe, ok := quotedValue(text, skipBlanks(text, j)); ok {
				return accept(text, qs, qe, k, true)
			}
		}
	}
	// Unquoted. On a configuration line (.env, YAML, properties, INI) the
	// value runs to the next blank; elsewhere punctuation of the surrounding
	// syntax (URL query, argument list, statement) ends it too.
	vs := i
	j := vs
	for j < len(text) && j-vs < 512 {
		b := text[j]
		if isSpace(b) {
			break
		}
		if !configLine && (b == '"' || b == '\'' || b == '`' || b == ',' || b == ';' || b == ')' ||
			b == ']' || b == '}' || b == '<' || b == '&') {
			break
		}
		j++
	}
	if j == vs {
		return Span{}, false
	}
	v := text[vs:j]
	if codeish {
		// In code an unquoted value is an expression, not a literal.
		return Span{}, false
	}
	if isCallLike(v) || isDottedReference(v) {
		return Span{}, false
	}
	// A bare identifier is a literal only on a configuration line where
	// nothing but a comment follows, or as a flag's argument.
	// A random-looking one (Q4Zh6HsEj2t2Zccul7Lf) is no identifier anyone wrote.
	if !flag && isIdentifierish(v) && (!configLine || !restIsComment(text, j)) && !looksRandom(v) {
		return Span{}, false
	}
	return accept(text, vs, j, k, false)
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// quotedValue parses a string literal starting at i: '…', "…", `…`,
// """…""", \"…\" (inside a JSON string), or one with a b/r/u/f/@ prefix. It
// returns the span of the contents.
func quotedValue(text []byte, i int) (int, int, bool) {
	if i >= len(text) {
		return 0, 0, false
	}
	switch text[i] {
	case 'b', 'r', 'u', 'f', 'B', 'R', 'U', 'F', '@':
		if i+1 < len(text) && (text[i+1] == '"' || text[i+1] == '\'') && (i == 0 || !isNameByte(text[i-1])) {
			i++
		}
	}
	if i >= len(text) {
		return 0, 0, false
	}
	c := text[i]
	if c == '\\' && i+1 < len(text) && (text[i+1] == '"' || text[i+1] == '\'') {
		q := text[i+1]
		vs := i + 2
		j := vs
		for j+1 < len(text) && !(text[j] == '\\' && text[j+1] == q) && text[j] != '\n' && j-vs < 512 {
			j++
		}
		if j+1 >= len(text) || text[j] != '\\' || text[j+1] != q {
			return 0, 0, false
		}
		return vs, j, true
	}
	if c != '"' && c != '\'' && c != '`' {
		return 0, 0, false
	}
	if hasPrefix(text, i, string([]byte{c, c, c})) {
		vs := i + 3
		e := bytes.Index(text[vs:min(len(text), vs+512)], []byte{c, c, c})
		if e <= 0 {
			return 0, 0, false
		}
		return vs, vs + e, true
	}
	vs := i + 1
	j := vs
	for j < len(text) && text[j] != c && text[j] != '\n' && j-vs < 512 {
		if text[j] == '\\' && c != '`' {
			j++
		}
		j++
	}
	if j >= len(text) || text[j] != c {
		return 0, 0, false
	}
	return vs, j, true
}

// isReferenceName reports names that are themselves a reference to a
// variable, not an assignment target: ${DB_PASSWORD}, %DB_PASSWORD%,
// process.env.API_KEY, os.environ["X"] style lookups.
func isReferenceName(text []byte, ns int, name []byte) bool {
	if ns >= 2 && text[ns-2] == '$' && (text[ns-1] == '{' || text[ns-1] == '(') {
		return true
	}
	if ns >= 1 && text[ns-1] == '%' {
		return true
	}
	for _, p := range [...]string{"process.env.", "env.", "import.meta.env.", "os.environ", "ENV.", "secrets.", "vars.", "var.", "local.", "values."} {
		if len(name) > len(p) && bytes.EqualFold(name[:len(p)], []byte(p)) {
			return true
		}
	}
	return false
}

// wrappers are calls and commands that wrap a literal secret.
var wrappers = [...]string{
	"[]byte", "bytes", "String", "new String", "str", "SecretStr", "SecretString", "Secret",
	"Buffer.from", "ConvertTo-SecureString", "SecureString", "Sensitive", "sensitive",
}

// isCallLike reports values shaped like `name(…` or `a.b(…`.
func isCallLike(v []byte) bool {
	p := bytes.IndexByte(v, '(')
	if p <= 0 {
		return false
	}
	c := v[p-1]
	return isNameByte(c) || c == '>' || c == ':' // also a->b( and env::var(
}

// isDottedReference reports identifier chains such as var.db_password,
// settings.SECRET, Rails.configuration.stripe[:secret_key].
func isDottedReference(v []byte) bool {
	end := len(v)
	if p := bytes.IndexAny(v, "[("); p > 0 {
		end = p
	}
	head := v[:end]
	return bytes.IndexByte(head, '.') > 0 && isIdentifierish(head) && !isDigit(head[0]) &&
		!bytes.HasSuffix(head, []byte(".")) && head[len(head)-1] != '.'
}

// accept applies the value checks for kind k to text[vs:ve].
func accept(text []byte, vs, ve int, k nameKind, quoted bool) (Span, bool) {
	v := text[vs:ve]
	if isPlaceholder(v, quoted) || isEnvName(v) {
		return Span{}, false
	}
	spaces := bytes.Count(v, []byte(" "))
	switch k {
	case kindPassword:
		if len(v) < 4 || len(v) > 128 || spaces > 2 || isNameValuePair(v) {
			return Span{}, false
		}
	case kindUser:
		if len(v) < 2 || len(v) > 64 || bytes.ContainsAny(v, " /\\") {
			return Span{}, false
		}
	case kindSecret, kindToken, kindAPIKey:
		if len(v) < 8 || looksLikeName(v) || spaces > 1 || spaces == 1 && Entropy(v) < 3.5 {
			return Span{}, false
		}
	case kindLooseKey:
		// Random keys may hold a space (WordPress salts) when they are long
		// and clearly random.
		if len(v) < 16 || !hasLetterAndDigit(v) || Entropy(v) < 3 || spaces > 0 && (len(v) < 32 || Entropy(v) < 4.5) {
			return Span{}, false
		}
	case kindStrictKey:
		if len(v) < 20 || spaces > 0 || !hasClasses(v) || Entropy(v) < 4 {
			return Span{}, false
		}
	}
	return Span{vs, ve}, true
}

// isEnvName reports values that name an environment variable rather than
// hold a secret: JWT_SECRET, DB_PASSWORD.
func isEnvName(v []byte) bool {
	if len(v) < 4 || bytes.IndexByte(v, '_') < 0 {
		return false
	}
	for _, b := range v {
		if !(isUpper(b) || isDigit(b) || b == '_') {
			return false
		}
	}
	return true
}

// hasClasses reports a value with upper-case, lower-case letters and digits.
func hasClasses(v []byte) bool {
	u, l, d := false, false, false
	for _, b := range v {
		switch {
		case isUpper(b):
			u = true
		case isLower(b):
			l = true
		case isDigit(b):
			d = true
		}
	}
	return u && l && d
}

func hasPrefix(text []byte, i int, p string) bool {
	return len(text)-i >= len(p) && string(text[i:i+len(p)]) == p
}

func skipBlanks(text []byte, i int) int {
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	return i
}

func trimSpace(text []byte, s, e int) (int, int) {
	for s < e && (text[s] == ' ' || text[s] == '\t' || text[s] == '\r') {
		s++
	}
	for e > s && (text[e-1] == ' ' || text[e-1] == '\t' || text[e-1] == '\r') {
		e--
	}
	return s, e
}

// skipTypeThenEquals matches ` Type =` (a type annotation, possibly
// qualified or generic-free) starting at i and returns the index after '=',
// or 0.
func skipTypeThenEquals(text []byte, i int) int {
	j := skipBlanks(text, i)
	s := j
	for j < len(text) && (isNameByte(text[j]) || text[j] == '?' || text[j] == '*' || text[j] == '[' || text[j] == ']') && j-s < 40 {
		j++
	}
	if j == s {
		return 0
	}
	j = skipBlanks(text, j)
	if j < len(text) && text[j] == '=' && !hasPrefix(text, j, "==") && !hasPrefix(text, j, "=>") {
		return j + 1
	}
	return 0
}

// lineStartsAt reports whether only indentation, a list dash, `export ` or
// `ENV ` (or `set `) stand between the start of the line and position p.
func lineStartsAt(text []byte, p int) bool {
	ls := p
	for ls > 0 && text[ls-1] != '\n' {
		ls--
	}
	pre := bytes.TrimLeft(text[ls:p], " \t")
	pre = bytes.TrimPrefix(pre, []byte("- "))
	switch string(bytes.TrimRight(pre, " \t\"'")) {
	case "", "export", "ENV", "env", "set", "SET", "setx", "declare", "declare -x", "ARG", "readonly", "local":
		return true
	}
	return false
}

// restIsComment reports whether only blanks or a comment follow position i
// on its line.
func restIsComment(text []byte, i int) bool {
	i = skipBlanks(text, i)
	if i >= len(text) || text[i] == '\n' || text[i] == '\r' {
		return true
	}
	return text[i] == '#' || hasPrefix(text, i, "//") || hasPrefix(text, i, ";")
}

func isIdentifierish(v []byte) bool {
	if len(v) == 0 || !(isLower(v[0]) || isUpper(v[0]) || v[0] == '_') {
		return false
	}
	for _, b := range v {
		if !(isLower(b) || isUpper(b) || isDigit(b) || b == '_' || b == '.') {
			return false
		}
	}
	// A dotted chain or a call is an expression.
	return true
}

// looksLikeName reports values that read as a name rather than a random
// string: lower-case words joined by _ - . or / with no digits
// (`token_type`, `refresh-token`, `my.secret.name`).
func looksLikeName(v []byte) bool {
	for _, b := range v {
		if !(isLower(b) || b == '_' || b == '-' || b == '.' || b == '/' || b == ':') {
			return false
		}
	}
	return true
}

// looksRandom reports long values mixing letters and digits with the
// entropy of generated strings.
func looksRandom(v []byte) bool {
	return len(v) >= 16 && hasLetterAndDigit(v) && Entropy(v) >= 3.5
}

func hasLetterAndDigit(v []byte) bool {
	l, d := false, false
	for _, b := range v {
		switch {
		case isDigit(b):
			d = true
		case isLower(b) || isUpper(b):
			l = true
		}
	}
	return l && d
}

// placeholderWords are values (compared lower-case, whole) that stand for
// a secret without being one.
var placeholderWords = map[string]bool{
	"changeme": true, "change_me": true, "change-me": true, "changeit": true, "password": true,
	"passwd": true, "secret": true, "token": true, "apikey": true, "api_key": true, "none": true,
	"null": true, "nil": true, "undefined": true, "true": true, "false": true, "required": true,
	"optional": true, "string": true, "str": true, "empty": true, "redacted": true, "hidden": true,
	"masked": true, "todo": true, "tbd": true, "fixme": true, "dummy": true, "placeholder": true,
	"example": true, "sample": true, "test": true, "testing": true, "default": true, "value": true,
	"secret_value": true, "your_password": true, "yourpassword": true, "mypassword": true,
	"my_password": true, "notasecret": true, "insert_here": true, "env": true, "bearer": true,
	"basic": true, "disabled": true, "enabled": true, "no": true, "yes": true, "on": true, "off": true,
	"xxx": true, "abc123": true, "admin": false, "number": true, "integer": true, "int": true,
	"boolean": true, "bool": true, "object": true, "array": true, "text": true, "varchar": true,
	"uuid": true, "binary": true, "bytes": true, "char": true, "secretstr": true,
}

// isPlaceholder reports template references, environment references,
// masked values and stand-in words (DESIGN §5).
func isPlaceholder(v []byte, quoted bool) bool {
	if len(v) == 0 {
		return true
	}
	switch v[0] {
	case '$', '<', '{', '[', '?':
		// ${VAR} $VAR <YOUR_TOKEN> {{ .Values.x }} [secret]
		return true
	case '@':
		// @Microsoft.KeyVault(SecretUri=…), @Value(…): a reference.
		if isCallLike(v[1:]) {
			return true
		}
	case '\\':
		if len(v) > 1 && v[1] == '$' { // \${VAR} escaped in a shell string
			return true
		}
	case '%':
		// %s %(name)s %{x} %SMTP_PASSWORD%
		if len(v) > 1 && (v[1] == '(' || v[1] == '{' || isLower(v[1]) && len(v) == 2 || v[len(v)-1] == '%') {
			return true
		}
	case '!':
		// YAML tags: !vault, !Ref, !Sub, !GetAtt
		if len(v) > 1 && isLower(lower(v[1])) && (len(v) < 3 || isLower(v[2])) {
			return true
		}
	case '&', '*', '|', '>', '#':
		// YAML anchors, aliases, block scalars and comments
		if !quoted {
			return true
		}
	}
	for _, open := range [...]string{"{{", "${", "#{"} {
		if p := bytes.Index(v, []byte(open)); p >= 0 && bytes.IndexByte(v[p:], '}') > 0 {
			return true
		}
	}
	if len(v) <= 40 {
		var lb [40]byte
		l := lb[:len(v)]
		for i, b := range v {
			l[i] = lower(b)
		}
		if placeholderWords[string(l)] {
			return true
		}
		s := string(l)
		for _, p := range placeholderParts {
			if strings.Contains(s, p) {
				return true
			}
		}
		for _, p := range referencePrefixes {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
	} else {
		for _, p := range referencePrefixes {
			if len(v) >= len(p) && strings.EqualFold(string(v[:len(p)]), p) {
				return true
			}
		}
	}
	// Masks: xxxx, ****, ...., ----, or one character repeated.
	run := 1
	for i := 1; i < len(v); i++ {
		if v[i] == v[i-1] && (v[i] == 'x' || v[i] == 'X' || v[i] == '*' || v[i] == '.' || v[i] == '-' || v[i] == '#' || v[i] == '0') {
			run++
			if run >= 4 {
				return true
			}
		} else {
			run = 1
		}
	}
	return false
}

// placeholderParts mark a value as a stand-in wherever they occur.
var placeholderParts = []string{
	"your_", "your-", "yourapi", "your ", "-here", "_here", "here>", "changeme", "change_me", "replace_me",
	"replace-me", "replaceme", "insert_", "insert-", "put_your", "enter_your", "enter-your", "example",
	"placeholder", "redacted", "dummy", "fake_", "fake-", "sample_", "foobar", "lorem", "required|",
	"|required", "nullable|", "|string", "|min:", "|max:", "<your", "<insert", "<replace", "<secret", "<password",
	"<token", "<api", "...",
}

// referencePrefixes mark a value that reads a secret from elsewhere.
var referencePrefixes = []string{
	"process.env", "os.environ", "os.getenv", "getenv(", "env(", "env.", "env[", "system.getenv",
	"secrets.", "vault:", "ref+", "arn:aws:secretsmanager", "arn:aws:ssm", "projects/", "sm://",
	"this.", "self.", "config.", "settings.", "conf.", "cfg.", "props.", "params.", "args.", "options.",
	"opts.", "request.", "req.", "input(", "getpass", "keyring.", "file://", "/run/secrets/", "/var/run/secrets/",
	"/etc/", "./", "../", "~/", "c:\\", "sha256:", "bcrypt:", "$2a$", "$2b$", "$2y$", "$argon2",
}

func generic() []Rule {
	return append(genericAssignments(), genericExtra()...)
}

func genericAssignments() []Rule {
	pw := []string{"pass", "pwd", "masterauth", "rootpw"}
	return []Rule{
		{
			ID: "generic-password", Description: "A value assigned to a password-like name",
			Category: SECRET, Generic: true, Keywords: pw, Find: genericFinder(kindPassword),
			Positives: []Sample{
				{`DB_PASSWORD=Tr0ub4dor&3`, `Tr0ub4dor&3`},
				{`export SMTP_PASS="s3cr3t-Pa55!"`, `s3cr3t-Pa55!`},
				{`  password: hunter22`, `hunter22`},
				{`spring.datasource.password=Zx9!qLm2`, `Zx9!qLm2`},
				{`{"user": "svc", "password": "correct-horse-battery"}`, `correct-horse-battery`},
				{`<add key="Password" value="x"/><password>Wint3r!2024</password>`, `Wint3r!2024`},
				{`<connection user="app" password="Pl@tinum77"/>`, `Pl@tinum77`},
				{`const dbPassword = "kR8#vT2w";`, `kR8#vT2w`},
				{`userPassword := "Sup3rS3cret"`, `Sup3rS3cret`},
				{`var adminPwd string = "Adm1nPwd!"`, `Adm1nPwd!`},
				{`conn.setPassword("Qw3rty!!9");`, `Qw3rty!!9`},
				{`mysqldump --password=Rk29slv0 db`, `Rk29slv0`},
				{`pg_dump --password 'N0tTh1s0ne' prod`, `N0tTh1s0ne`},
				{`ENV REDIS_PASSWORD=ch4ng3dPa55`, `ch4ng3dPa55`},
				{`"{\"password\": \"in5ide-json\"}"`, `in5ide-json`},
				{`$config['db_password'] = 'phpS3cret';`, `phpS3cret`},
				{`:password => 'RubyP4ss'`, `RubyP4ss`},
				{`let passwd: string = "ts-Pa55wd";`, `ts-Pa55wd`},
				{"env:\n  - name: SMTP_PASSWORD\n    value: St4ging-Smtp!pw#3\n", `St4ging-Smtp!pw#3`},
				{`{"name": "DB_PASSWORD", "value": "Ecs-Task!Pw77"}`, `Ecs-Task!Pw77`},
			},
			Negatives: []string{
				`password = "changeme"`,
				`password: ${DB_PASSWORD}`,
				`DB_PASSWORD=`,
				`password = os.environ["DB_PASSWORD"]`,
				`password := req.Password`,
				`const password = process.env.DB_PASSWORD;`,
				`password: "{{ .Values.db.password }}"`,
				`password_file: /run/secrets/db`,
				`password_min_length: 12`,
				`password: null`,
				`password: ""`,
				`passwordField.setText(input)`,
				`if password == "hunter2" {`,
				`bypass = true`,
				`password: <YOUR_PASSWORD>`,
				`password=********`,
				`user.password = hashPassword(raw)`,
				`password: xxxxxxxx`,
				`login(user, password)`,
				`password_hash = "$2b$12$KIXQJ3wX"`,
				`"password": "your-password-here"`,
				"Pass `run_in_background: false` to wait for the result.",
				`fork a copy (pass ` + "`" + `subagent_type: "fork"` + "`" + `) when needed`,
				"env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef: {name: db, key: password}\n",
				"- name: DB_PASSWORD\n- name: LOG_LEVEL\n  value: debug\n",
			},
		},
		{
			ID: "generic-secret", Description: "A value assigned to a secret-like name",
			Category: SECRET, Generic: true, Keywords: []string{"secret", "credential", "creds"}, Find: genericFinder(kindSecret),
			Positives: []Sample{
				{`CLIENT_SECRET=9f8e7d6c5b4a3f2e1d0c`, `9f8e7d6c5b4a3f2e1d0c`},
				{`jwt_secret: "q7Zr!v9LmP2#xK4w"`, `q7Zr!v9LmP2#xK4w`},
				{`"client_secret": "Yq3mN8pL2vR7tW1z"`, `Yq3mN8pL2vR7tW1z`},
				{`app.config['SECRET'] = 'f1a9c3e7b2d84e6a'`, `f1a9c3e7b2d84e6a`},
				{`clientSecret: "Kx8PqM3wL9zT2vN7"`, `Kx8PqM3wL9zT2vN7`},
			},
			Negatives: []string{
				`secret: my_secret_name`,
				`client_secret = settings.CLIENT_SECRET`,
				`secret_id: 1234`,
				`secretary = "Jane Office Manager"`,
				`kind: Secret`,
				`secret: "short"`,
				`CLIENT_SECRET="${CLIENT_SECRET}"`,
			},
		},
		{
			ID: "generic-token", Description: "A value assigned to a token-like name",
			Category: TOKEN, Generic: true, Keywords: []string{"token"}, Find: genericFinder(kindToken),
			Positives: []Sample{
				{`ACCESS_TOKEN=4f9a8b7c6d5e4f3a2b1c0d9e`, `4f9a8b7c6d5e4f3a2b1c0d9e`},
				{`auth_token: "Zm9vYmFyYmF6cXV4MTIz"`, `Zm9vYmFyYmF6cXV4MTIz`},
				{`refreshToken = 'rT-88d7f6e5d4c3b2a1'`, `rT-88d7f6e5d4c3b2a1`},
				{`api.token=Q8w7E6r5T4y3U2i1`, `Q8w7E6r5T4y3U2i1`},
			},
			Negatives: []string{
				`token_type: bearer`,
				`max_tokens: 4096`,
				`next_token = response["NextToken"]`,
				`tokenizer = AutoTokenizer.from_pretrained("gpt2")`,
				`token := tok.Next()`,
				`token: refresh-token`,
				`csrf_token = "a8f5f167f44f4964e6c998dee827110c"`,
				`"token": "<TOKEN>"`,
			},
		},
		{
			ID: "generic-api-key", Description: "A value assigned to an API-key-like name",
			Category: KEY, Generic: true, Keywords: []string{"_key", "-key", ".key", "apikey", "accesskey", "privatekey", "signingkey", "masterkey", "authkey", "encryptionkey", "secretkey"},
			Find: genericFinder(kindAPIKey),
			Positives: []Sample{
				{`API_KEY=a1b2c3d4e5f6a7b8c9d0`, `a1b2c3d4e5f6a7b8c9d0`},
				{`apiKey: "Zx81Qm0LpT7vR2sN"`, `Zx81Qm0LpT7vR2sN`},
				{`encryption_key = "b64:Q2hhbmdlVGhpc0tleQ=="`, `b64:Q2hhbmdlVGhpc0tleQ==`},
				{`"x-api-key": "k3y-77a8b9c0d1e2f3"`, `k3y-77a8b9c0d1e2f3`},
				{`SECRET_KEY = 'django-insecure-8f#k2!mz0q'`, `django-insecure-8f#k2!mz0q`},
			},
			Negatives: []string{
				`primary_key = "id"`,
				`api_key = os.getenv("API_KEY")`,
				`public_key: "ssh-ed25519"`,
				`apiKey: string;`,
				`API_KEY=<your-api-key>`,
				`cache_key = "user:1234:profile"`,
				`api_key: api-key-name`,
			},
		},
		{
			ID: "generic-loose-key", Description: "A random-looking value assigned to a name ending in key",
			Category: KEY, Generic: true, Keywords: []string{"_key", "-key", "Key", "salt", "cookie", "pepper", "nonce"}, Find: genericFinder(kindLooseKey),
			Positives: []Sample{
				{`STRIPE_KEY=q8W3e9R2t7Y1u6I4o0P5`, `q8W3e9R2t7Y1u6I4o0P5`},
				{`maps_key: "Ab12Cd34Ef56Gh78Ij90"`, `Ab12Cd34Ef56Gh78Ij90`},
			},
			Negatives: []string{
				`sort_key = "created_at"`,
				`OPENAI_KEY=${OPENAI_KEY}`,
				`partition_key: "tenant-id-2024"`,
				`react_key = "item-1"`,
			},
		},
		{
			ID: "generic-username", Description: "A username assigned in a credential context",
			Category: USER, Action: Monitor, Generic: true, Keywords: []string{"user", "login"}, Find: genericFinder(kindUser),
			Positives: []Sample{
				{`DB_USER=app_rw`, `app_rw`},
				{`smtp_username: "mailer@acme.io"`, `mailer@acme.io`},
			},
			Negatives: []string{
				`user = get_user(request)`,
				`username: ${DB_USER}`,
				`current_user = "x"`,
			},
		},
	}
}

// credentialCalls maps calls that take credentials positionally to the
// index of the string argument that is the password.
var credentialCalls = map[string]int{
	"networkcredential(":           1, // new NetworkCredential("user", "pass")
	"getconnection(":               2, // DriverManager.getConnection(url, "user", "pass")
	"passwordauthentication(":      1, // new PasswordAuthentication("user", "pass".toCharArray())
	"usernamepasswordcredentials(": 1,
	"setbasicauth(":                1, // req.SetBasicAuth("user", "pass")
	"httpbasicauth(":               1, // requests HTTPBasicAuth("user", "pass")
	"basicauth(":                   1,
	"auth=(":                       1, // requests.get(url, auth=("user", "pass"))
	"auth = (":                     1,
	".login(":                      1, // smtp.login("user", "pass")
}

// findCredentialCall finds the password argument of a credential call:
// the n-th argument, counted over string literals and other expressions,
// which must itself be a string literal.
func findCredentialCall(text []byte, hs, he int) []Span {
	kw := make([]byte, he-hs)
	for i := range kw {
		kw[i] = lower(text[hs+i])
	}
	n, ok := credentialCalls[string(kw)]
	if !ok {
		return nil
	}
	i := he
	for arg := 0; i < len(text) && i-he < 400; arg++ {
		i = skipBlanks(text, i)
		if vs, ve, ok := quotedValue(text, i); ok {
			if arg == n {
				if sp, ok := accept(text, vs, ve, kindPassword, true); ok {
					return []Span{sp}
				}
				return nil
			}
			i = ve + 1
		} else {
			if arg == n {
				return nil
			}
			// skip an expression up to the next top-level comma
			depth := 0
			for i < len(text) && text[i] != '\n' {
				c := text[i]
				if c == '(' || c == '[' || c == '{' {
					depth++
				} else if c == ')' || c == ']' || c == '}' {
					if depth == 0 {
						return nil
					}
					depth--
				} else if c == ',' && depth == 0 {
					break
				}
				i++
			}
		}
		i = skipBlanks(text, i)
		if i >= len(text) || text[i] != ',' {
			return nil
		}
		i++
	}
	return nil
}

// findPasswordFlag finds `-p 'secret'` (docker login, mysql) and mysql's
// attached form `-psecret`.
func findPasswordFlag(text []byte, hs, he int) []Span {
	if he >= len(text) || text[hs+2] != 'p' {
		return nil // -P is a port
	}
	if text[he] == ' ' {
		vs, ve, ok := quotedValue(text, he+1)
		if !ok {
			return nil
		}
		v := text[vs:ve]
		if bytes.IndexByte(v, ' ') >= 0 || isIdentifierish(v) {
			return nil // a prompt (read -p "Password: ") or a name
		}
		if sp, ok := accept(text, vs, ve, kindPassword, true); ok {
			return []Span{sp}
		}
		return nil
	}
	// -pSECRET: only on a mysql command line.
	ls := hs
	for ls > 0 && text[ls-1] != '\n' && hs-ls < 200 {
		ls--
	}
	if !bytes.Contains(bytes.ToLower(text[ls:hs]), []byte("mysql")) {
		return nil
	}
	vs, ve, ok := quotedValue(text, he)
	quoted := ok
	if !ok {
		vs, ve = he, he
		for ve < len(text) && !isSpace(text[ve]) {
			ve++
		}
	}
	if sp, ok := accept(text, vs, ve, kindPassword, quoted); ok && hasLetterAndDigit(text[vs:ve]) {
		return []Span{sp}
	}
	return nil
}

// findIdentifiedBy finds SQL's `IDENTIFIED BY 'secret'`.
func findIdentifiedBy(text []byte, hs, he int) []Span {
	i := skipBlanks(text, he)
	if !hasPrefix(text, i, "BY") && !hasPrefix(text, i, "by") {
		return nil
	}
	vs, ve, ok := quotedValue(text, skipBlanks(text, i+2))
	if !ok {
		return nil
	}
	if sp, ok := accept(text, vs, ve, kindPassword, true); ok {
		return []Span{sp}
	}
	return nil
}

// findPgpass finds the password field of a .pgpass line
// (host:port:database:user:password) around a ":5432:" or ":*:" hit.
func findPgpass(text []byte, hs, he int) []Span {
	ls := hs
	for ls > 0 && text[ls-1] != '\n' && hs-ls < 256 {
		ls--
	}
	le := he
	for le < len(text) && text[le] != '\n' && text[le] != '\r' && le-he < 512 {
		le++
	}
	line := text[ls:le]
	if bytes.ContainsAny(line, " \t\"'=") || bytes.Count(line, []byte(":")) < 4 {
		return nil
	}
	// The password is everything after the fourth unescaped colon.
	colons, i := 0, 0
	for ; i < len(line) && colons < 4; i++ {
		if line[i] == '\\' {
			i++
			continue
		}
		if line[i] == ':' {
			colons++
		}
	}
	if colons < 4 || i >= len(line) {
		return nil
	}
	if sp, ok := accept(text, ls+i, le, kindPassword, false); ok {
		return []Span{sp}
	}
	return nil
}

func genericExtra() []Rule {
	var callKeywords []string
	for k := range credentialCalls {
		callKeywords = append(callKeywords, k)
	}
	slices.Sort(callKeywords)
	return []Rule{
		{
			ID: "credential-call-password", Description: "A password passed positionally to a credential API",
			Category: SECRET, Generic: true, Keywords: callKeywords, Find: findCredentialCall,
			Positives: []Sample{
				{`var c = new NetworkCredential("orders-relay", "Relay!Orders-4471-kX");`, `Relay!Orders-4471-kX`},
				{`Connection c = DriverManager.getConnection(REPORT_URL, "reporter", "Rp!2024-winter-Q4x");`, `Rp!2024-winter-Q4x`},
				{`req.SetBasicAuth("admin", "B4sic!Auth9")`, `B4sic!Auth9`},
				{`r = requests.get(url, auth=("svc", "Req-Pa55!x"))`, `Req-Pa55!x`},
				{`server.login("alerts@acme.io", "Smtp!Login77")`, `Smtp!Login77`},
			},
			Negatives: []string{
				`new NetworkCredential(user, password)`,
				`DriverManager.getConnection(url, props)`,
				`req.SetBasicAuth(user, os.Getenv("PASS"))`,
				`server.login(user, "changeme")`,
			},
		},
		{
			ID: "password-flag", Description: "A password given to a command with -p",
			Category: SECRET, Generic: true, Keywords: []string{" -p"}, Find: findPasswordFlag,
			Positives: []Sample{
				{`docker login "${DOCKER_REGISTRY}" -u deploy-bot -p 'Dock3r!Deploy#991'`, `Dock3r!Deploy#991`},
				{`mysql -u root -pS3cretRoot9 shop`, `S3cretRoot9`},
			},
			Negatives: []string{
				`docker run -p 8080:80 nginx`,
				`mysql -u root -P 3306 -p shop`,
				`mkdir -p /var/lib/app`,
				`docker login -u bot -p "$REGISTRY_PASSWORD"`,
			},
		},
		{
			ID: "sql-identified-by", Description: "A password in SQL's IDENTIFIED BY clause",
			Category: SECRET, Generic: true, Keywords: []string{"identified"}, Find: findIdentifiedBy,
			Positives: []Sample{
				{`CREATE USER 'grafana'@'%' IDENTIFIED BY 'Gr4fana-My!sql77';`, `Gr4fana-My!sql77`},
				{`alter user app identified by "0racle-App!1"`, `0racle-App!1`},
			},
			Negatives: []string{
				`CREATE USER 'x'@'%' IDENTIFIED BY '${PASSWORD}';`,
				`-- users are identified by their email`,
			},
		},
		{
			ID: "pgpass-password", Description: "The password field of a .pgpass line",
			Category: SECRET, Generic: true, Keywords: []string{":5432:", ":*:"}, Find: findPgpass,
			Positives: []Sample{
				{"pg-primary.internal:5432:billing:backup:pgp4ss-B4ckup!Bill\n", `pgp4ss-B4ckup!Bill`},
				{"*:*:*:replicator:Repl1cate!Now", `Repl1cate!Now`},
			},
			Negatives: []string{
				"localhost:5432:app:app:changeme",
				"DATABASE_URL=postgres://localhost:5432:x",
			},
		},
		{
			ID: "terraform-variable-default", Description: "A default value of a Terraform variable named like a secret",
			Category: SECRET, Generic: true, Keywords: []string{"variable"}, MaxLen: 700,
			Pattern:     `variable\s+"[^"\n]*(?i:password|passwd|secret|token|api_key|apikey|private_key|access_key)"\s*\{[^}]{0,500}?\bdefault\s*=\s*"([^"$\n]{4,})"`,
			SecretGroup: 1, Validate: NotPlaceholder,
			Positives: []Sample{
				{"variable \"grafana_admin_password\" {\n  type        = string\n  sensitive   = true\n  default     = \"Graf4na-Init!Adm#77\"\n}\n", `Graf4na-Init!Adm#77`},
				{"variable \"api_token\" {\n  default = \"tf-T0ken-8812aa\"\n}", `tf-T0ken-8812aa`},
			},
			Negatives: []string{
				"variable \"db_password\" {\n  type = string\n  sensitive = true\n}",
				"variable \"api_key_header\" {\n  default = \"X-Api-Key\"\n}",
				"variable \"region\" {\n  default = \"eu-west-1\"\n}",
				"variable \"db_password\" {\n  default = \"${var.x}\"\n}",
			},
		},
	}
}

// nameFieldBefore reports whether the name starting at p is the value of a
// field called name, key or similar: `name: X`, `"name": "X"`, `Name=X`.
func nameFieldBefore(text []byte, p int) bool {
	i := p
	if i > 0 && (text[i-1] == '"' || text[i-1] == '\'') {
		i--
	}
	for i > 0 && (text[i-1] == ' ' || text[i-1] == '\t') {
		i--
	}
	if i == 0 || (text[i-1] != ':' && text[i-1] != '=') {
		return false
	}
	i--
	for i > 0 && (text[i-1] == ' ' || text[i-1] == '\t') {
		i--
	}
	if i > 0 && (text[i-1] == '"' || text[i-1] == '\'') {
		i--
	}
	e := i
	for i > 0 && isNameByte(text[i-1]) && e-i < 16 {
		i--
	}
	switch string(bytes.ToLower(text[i:e])) {
	case "name", "key", "parameterkey", "variable", "envname", "secretname", "optionname":
		return true
	}
	return false
}

// pairedValue finds the value field that follows a name field within the
// same item: the next `value:` / "value": / ParameterValue within a few
// lines, before another name field starts.
func pairedValue(text []byte, from int, k nameKind) (Span, bool) {
	end := min(len(text), from+300)
	win := text[from:end]
	lw := bytes.ToLower(win)
	i := bytes.Index(lw, []byte("value"))
	if i < 0 {
		return Span{}, false
	}
	if n := bytes.Index(lw, []byte("name")); n >= 0 && n < i {
		return Span{}, false // the next item began first
	}
	j := from + i + len("value")
	if j < len(text) && (text[j] == '"' || text[j] == '\'') {
		j++
	}
	j = skipBlanks(text, j)
	if j >= len(text) || (text[j] != ':' && text[j] != '=') {
		return Span{}, false
	}
	j = skipBlanks(text, j+1)
	if vs, ve, ok := quotedValue(text, j); ok {
		return accept(text, vs, ve, k, true)
	}
	ve := j
	for ve < len(text) && !isSpace(text[ve]) && text[ve] != ',' && text[ve] != '}' {
		ve++
	}
	if ve == j || isIdentifierish(text[j:ve]) && !looksRandom(text[j:ve]) && k != kindPassword {
		return Span{}, false
	}
	return accept(text, j, ve, k, false)
}

// isNameValuePair reports values that read as `name: value` or `name=value`
// themselves (`run_in_background: false`): configuration quoted in prose,
// not a password.
func isNameValuePair(v []byte) bool {
	i := 0
	for i < len(v) && (isLower(v[i]) || isUpper(v[i]) || isDigit(v[i]) || v[i] == '_') {
		i++
	}
	if i == 0 || i+1 >= len(v) {
		return false
	}
	return v[i] == ':' && v[i+1] == ' '
}
