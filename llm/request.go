package llm

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// minKeyData is the length from which member names of free-form data are
// tokenized.
const minKeyData = 8

// Request is a parsed request body: its route, what it says about itself,
// and where its strings are and how each is to be treated. It refers to the
// body given to ParseRequest, which must not change while the Request is in
// use.
type Request struct {
	route Route
	body  []byte
	info  RequestInfo
	strs  []strSpan
	paths []pathNode
}

// strSpan is a string value of the body to tokenize: the body between its
// quotes, src[start:end].
type strSpan struct {
	start, end int
	ds, de     int   // decoded value in parser.dec, when esc and the parser decodes
	path       int32 // into Request.paths: where the string sits
	mode       uint8
	esc        bool // the body has backslash escapes
	key        bool // the string is a member name
}

// String modes.
const (
	modeProse    uint8 = iota // text: detect and tokenize
	modeFragment              // JSON text inside a JSON string
)

// pathNode is one step of the JSON path of a string: a key (raw body, a
// slice of the request body) or an array index, below parent (-1: root).
type pathNode struct {
	parent int32
	index  int32 // -1 for a key
	key    []byte
	redact bool // the key held a finding: render it as *
}

// ParseRequest validates body as the JSON object a route expects and finds
// the strings to tokenize, in one pass over its bytes. Every problem with
// the body is a *RequestError whose message names a byte offset, never body
// content: not JSON, not an object, nested deeper than 256, invalid UTF-8 or
// an invalid escape inside a string, trailing data.
//
// The Request refers to body, which the caller must keep unchanged until it
// is done with the Request.
func ParseRequest(route Route, body []byte) (*Request, error) {
	// The strings are only validated here; Tokenize decodes each escaped
	// one into a scratch buffer when it gets to it, so a Request holds no
	// second copy of the body.
	p := parser{src: body, recordInfo: true, lazy: true}
	root := rootNodeFor(route)
	if err := p.document(root, true); err != nil {
		return nil, err
	}
	info := p.info
	info.Provider = route.Provider
	if route.Model != "" && info.Model == "" {
		info.Model = route.Model
	}
	if route.Stream {
		info.Stream = true
	}
	if route.Provider == OpenAI && !route.Explicit && route.Operation == OpChatCompletions && isMistralModel(info.Model) {
		info.Provider = Mistral
	}
	return &Request{route: route, body: body, info: info, strs: p.strs, paths: p.paths}, nil
}

// Info returns what the body says about the request.
func (r *Request) Info() RequestInfo { return r.info }

// Route returns the route the request was parsed for.
func (r *Request) Route() Route { return r.route }

// isMistralModel reports whether a model name is one of Mistral's, for the
// path OpenAI and Mistral share.
func isMistralModel(m string) bool {
	m = strings.ToLower(m)
	for _, p := range [...]string{"mistral", "codestral", "ministral", "pixtral", "magistral", "devstral", "voxtral", "open-mistral", "open-mixtral", "open-codestral"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// sessionFromUserID extracts the session id from Anthropic
// metadata.user_id: the part after "_session_" in
// user_<hash>_account_<uuid>_session_<uuid>, session_id in a JSON-encoded
// object, else the whole value.
func sessionFromUserID(u string) string {
	if i := strings.LastIndex(u, "_session_"); i >= 0 && i+len("_session_") < len(u) {
		return u[i+len("_session_"):]
	}
	if strings.HasPrefix(strings.TrimSpace(u), "{") {
		var v struct {
			SessionID string `json:"session_id"`
		}
		if json.Unmarshal([]byte(u), &v) == nil && v.SessionID != "" {
			return v.SessionID
		}
	}
	return u
}

// parser is the one pass over a request body (or over the JSON text inside
// a tool-call arguments string).
type parser struct {
	src        []byte
	recordInfo bool
	info       RequestInfo
	cacheKey   bool // prompt_cache_key seen: it wins over user
	strs       []strSpan
	paths      []pathNode
	stack      []frame
	dec        []byte // decoded values of escaped strings to tokenize
	lazy       bool   // validate strings only; leave dec empty
}

// frame is one open container on the way to the current value.
type frame struct {
	start   int    // offset of the container's opening bracket
	key     []byte // current member key (objects)
	index   int    // current element index (arrays), -1 in objects
	pathID  int32  // persisted path node of the current member, -1 if none yet
	typ     string // the object's "type" member, once looked up
	typDone bool
}

// document parses the whole of p.src as one JSON value with node n at the
// root; objectOnly demands an object there.
func (p *parser) document(n node, objectOnly bool) error {
	i := skipWS(p.src, 0)
	if i >= len(p.src) {
		return reqErr("empty body: a JSON object is expected")
	}
	if objectOnly && p.src[i] != '{' {
		return reqErr("the body must be a JSON object (found something else at byte offset %d)", i)
	}
	end, err := p.value(i, n, 0)
	if err != nil {
		return err
	}
	end = skipWS(p.src, end)
	if end != len(p.src) {
		return reqErr("unexpected data after the JSON value at byte offset %d", end)
	}
	return nil
}

// value parses the value at src[i] (no leading whitespace) under node n and
// returns the offset just past it.
func (p *parser) value(i int, n node, depth int) (int, error) {
	src := p.src
	if i >= len(src) {
		return 0, reqErr("unexpected end of JSON at byte offset %d", i)
	}
	switch c := src[i]; c {
	case '{':
		return p.object(i, n, depth+1)
	case '[':
		return p.array(i, n, depth+1)
	case '"':
		ds := len(p.dec)
		end, esc, dec, err := scanString(src, i, p.dec, n != nSkip && !p.lazy)
		if err != nil {
			return 0, err
		}
		p.dec = dec
		if !p.leaf(n, i+1, end, esc, ds) {
			p.dec = p.dec[:ds]
		}
		return end + 1, nil
	case 't', 'f', 'n':
		end, err := scanLiteral(src, i)
		if err != nil {
			return 0, err
		}
		if n == nStream && p.recordInfo && c == 't' {
			p.info.Stream = true
		}
		return end, nil
	default:
		return scanNumber(src, i)
	}
}

func (p *parser) object(i int, n node, depth int) (int, error) {
	if depth > maxDepth {
		return 0, reqErr("JSON nested deeper than %d levels at byte offset %d", maxDepth, i)
	}
	src := p.src
	p.stack = append(p.stack, frame{start: i, index: -1, pathID: -1})
	fi := len(p.stack) - 1
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == '}' {
		p.stack = p.stack[:fi]
		return i + 1, nil
	}
	for {
		if i >= len(src) {
			return 0, reqErr("unexpected end of JSON at byte offset %d", i)
		}
		if src[i] != '"' {
			return 0, reqErr("expected a member name at byte offset %d", i)
		}
		// In free-form data (tool inputs, unknown members) a member name
		// is data too, and may hold a secret: tokenize it like a value.
		// Names shorter than minKeyData bytes (role, type, content, …)
		// are the bulk of every body and too short to hold a secret a
		// rule finds; detection is not run on them.
		keyData := (n == nAll || n == nGeneric) && bytes.IndexByte(src[i+1:min(i+1+minKeyData, len(src))], '"') < 0
		ds := len(p.dec)
		ke, kesc, dec, err := scanString(src, i, p.dec, keyData && !p.lazy)
		if err != nil {
			return 0, err
		}
		p.dec = dec
		key := src[i+1 : ke]
		f := &p.stack[fi]
		f.key, f.pathID = key, -1
		if !keyData || isBlob(key) || !p.addString(i+1, ke, kesc, ds, modeProse) {
			p.dec = p.dec[:ds]
		} else {
			p.strs[len(p.strs)-1].key = true
		}
		i = skipWS(src, ke+1)
		if i >= len(src) || src[i] != ':' {
			return 0, reqErr("expected ':' at byte offset %d", i)
		}
		i = skipWS(src, i+1)
		child := p.child(n, key, fi)
		i, err = p.value(i, child, depth)
		if err != nil {
			return 0, err
		}
		i = skipWS(src, i)
		if i >= len(src) {
			return 0, reqErr("unexpected end of JSON at byte offset %d", i)
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case '}':
			p.stack = p.stack[:fi]
			return i + 1, nil
		default:
			return 0, reqErr("expected ',' or '}' at byte offset %d", i)
		}
	}
}

func (p *parser) array(i int, n node, depth int) (int, error) {
	if depth > maxDepth {
		return 0, reqErr("JSON nested deeper than %d levels at byte offset %d", maxDepth, i)
	}
	src := p.src
	p.stack = append(p.stack, frame{start: i, pathID: -1})
	fi := len(p.stack) - 1
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == ']' {
		p.stack = p.stack[:fi]
		return i + 1, nil
	}
	el := elem(n)
	for k := 0; ; k++ {
		f := &p.stack[fi]
		f.index, f.pathID = k, -1
		var err error
		i, err = p.value(i, el, depth)
		if err != nil {
			return 0, err
		}
		i = skipWS(src, i)
		if i >= len(src) {
			return 0, reqErr("unexpected end of JSON at byte offset %d", i)
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case ']':
			p.stack = p.stack[:fi]
			return i + 1, nil
		default:
			return 0, reqErr("expected ',' or ']' at byte offset %d", i)
		}
	}
}

// leaf handles the string src[start:end] (between its quotes) under n,
// whose decoded value (if it has escapes) is p.dec[ds:]. It reports whether
// the string is kept for tokenizing.
func (p *parser) leaf(n node, start, end int, esc bool, ds int) bool {
	switch n {
	case nSkip:
		return false
	case nModel, nUserID, nCacheKey, nUser, nPrevResp:
		if p.recordInfo {
			p.record(n, p.src[start:end], esc)
		}
		return false
	case nFragment:
		return p.addString(start, end, esc, ds, modeFragment)
	case nGeneric, nAll, nSchema:
		if isBlob(p.src[start:end]) {
			return false
		}
	}
	return p.addString(start, end, esc, ds, modeProse)
}

func (p *parser) record(n node, raw []byte, esc bool) {
	s := string(raw)
	if esc {
		d := appendDecoded(nil, raw)
		s = string(d)
	}
	switch n {
	case nModel:
		p.info.Model = s
	case nUserID:
		p.info.Session = sessionFromUserID(s)
	case nCacheKey:
		p.info.Session, p.cacheKey = s, true
	case nUser:
		if !p.cacheKey {
			p.info.Session = s
		}
	case nPrevResp:
		p.info.PreviousResponseID = s
	}
}

func (p *parser) addString(start, end int, esc bool, ds int, mode uint8) bool {
	if start == end {
		return false
	}
	sp := strSpan{start: start, end: end, esc: esc, mode: mode, path: p.persistPath()}
	if esc {
		sp.ds, sp.de = ds, len(p.dec)
	}
	p.strs = append(p.strs, sp)
	return true
}

// persistPath records the path of the current value in p.paths, reusing
// the nodes already recorded for its ancestors, and returns its id.
func (p *parser) persistPath() int32 {
	parent := int32(-1)
	for fi := range p.stack {
		f := &p.stack[fi]
		if f.pathID < 0 {
			pn := pathNode{parent: parent, index: -1}
			if f.index >= 0 {
				pn.index = int32(min(f.index, 1<<31-1))
			} else {
				pn.key = f.key
			}
			p.paths = append(p.paths, pn)
			f.pathID = int32(len(p.paths) - 1) //nolint:gosec // a path per string at most
		}
		parent = f.pathID
	}
	return parent
}

// objType returns the "type" member of the object whose frame is fi,
// looking ahead in the source if it has not been seen yet.
func (p *parser) objType(fi int) string {
	f := &p.stack[fi]
	if !f.typDone {
		f.typDone = true
		members(p.src, f.start, func(key []byte, vs, ve int) bool {
			if string(key) == "type" && p.src[vs] == '"' {
				f.typ = string(p.src[vs+1 : ve-1])
				return false
			}
			return true
		})
	}
	return f.typ
}

// fieldPath renders the JSON path of path node id: messages[2].content[0].text.
func fieldPath(paths []pathNode, id int32) string {
	var ids [32]int32
	chain := ids[:0]
	for ; id >= 0; id = paths[id].parent {
		chain = append(chain, id)
	}
	var b strings.Builder
	for k := len(chain) - 1; k >= 0; k-- {
		pn := paths[chain[k]]
		if pn.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(int(pn.index)))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if pn.redact {
			b.WriteByte('*') // a member name that holds a secret
			continue
		}
		b.Write(pn.key)
	}
	return b.String()
}

// isBlob reports whether a raw string body is binary data carried as text:
// a data: URI, or a long run of base64 without spaces. Such strings are not
// tokenized: detection would only find false positives in them, and
// changing them would corrupt the data.
func isBlob(raw []byte) bool {
	if len(raw) >= 5 && bytes.HasPrefix(raw, []byte("data:")) {
		return bytes.Contains(raw[:min(len(raw), 200)], []byte(";base64,"))
	}
	if len(raw) < 512 {
		return false
	}
	for _, c := range raw {
		if !b64[c] {
			return false
		}
	}
	return true
}

var b64 = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=\\") {
		t[c] = true
	}
	return t
}()
