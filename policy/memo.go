package policy

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The memo keeps recent decisions of one policy generation so that a
// request the policy has already decided is answered without evaluating
// Rego again (the evaluation allocates hundreds of small objects; a
// repeated decision allocates a handful).
//
// Why it never returns a stale decision:
//
//   - A memo belongs to one generation (one compiled policy over one
//     store), and SetData replaces the generation's memo after it has
//     written the store, so a decision computed from older data can only
//     be stored into a memo nobody reads any more.
//
//   - The key holds every input field the policy's modules read, found by
//     walking every reference to input in the compiled modules (a reference
//     that is not a fixed path, or input as a whole, makes every field part
//     of the key). Fields the policy never reads cannot change its result.
//
//   - A policy that calls a nondeterministic builtin (time.now_ns,
//     http.send, rand.intn, …: ast.Builtin.Nondeterministic) gets no memo:
//     its result may change with nothing in the input changing.
//
//   - The organization's monthly usage changes with nearly every request,
//     so keying on it would make the memo useless. A policy may instead
//     state, in its decision's optional usage_window, the inclusive ranges
//     of org.usage.requests and org.usage.credits within which the decision
//     is the same with every other input unchanged; the embedded policy
//     does (its only reads of the usage are the two limit comparisons). An
//     entry is used only while the usage lies in its window. Without a
//     window, the usage values themselves are part of the key.
//
//   - Detection lines differ in nearly every request (they are where the
//     secret sits in the prompt), so keying on them would make the memo
//     miss on almost all real traffic. A policy may state, with the
//     decision's detection_lines: "copied", that it reads the lines only
//     to copy each into detections[i].line; such a decision is stored
//     under a key without lines, and a hit gets the request's own lines
//     copied in. Only decisions with nothing blocked are stored so (a
//     block's message quotes lines). The embedded policy states it on the
//     allow path; TestMemoLinesCopied checks, over random lines, that a
//     hit equals a fresh evaluation.
//
// The decision id, the decision log record and the metrics are made per
// call as before; only the policy evaluation is skipped.
type memo struct {
	fields inputFields

	mu sync.RWMutex
	m  map[string]*memoEntry // guarded by mu
}

// memoMaxEntries bounds a memo; when it is full it starts over.
const memoMaxEntries = 1 << 14

type memoEntry struct {
	d      Decision // ID empty; never handed out without copying
	window usageWindow
}

// memoHints are what a policy stated about one decision: its usage window
// (nil: none) and whether it only copies the detection lines.
type memoHints struct {
	window      *usageWindow
	linesCopied bool
}

// usageWindow is the inclusive range of each usage counter within which a
// decision holds (math.MinInt64/MaxInt64 for an open end).
type usageWindow struct {
	reqMin, reqMax, credMin, credMax int64
}

var fullWindow = usageWindow{math.MinInt64, math.MaxInt64, math.MinInt64, math.MaxInt64}

func (w usageWindow) contains(u Usage) bool {
	return w.reqMin <= u.Requests && u.Requests <= w.reqMax && w.credMin <= u.Credits && u.Credits <= w.credMax
}

// inputFields is a bit set of the Input fields a policy reads.
type inputFields uint32

const (
	fKeyID inputFields = 1 << iota
	fKeyOrg
	fKeyMode
	fKeyScopes
	fKeyStatus
	fOrgID
	fOrgPlan
	fOrgUsageRequests
	fOrgUsageCredits
	fReqMethod
	fReqPath
	fReqProvider
	fReqModel
	fReqOperation
	fDetections

	fAll = fDetections<<1 - 1
)

// inputFieldPaths maps each path below input to the fields it covers.
var inputFieldPaths = map[string]inputFields{
	"key":                fKeyID | fKeyOrg | fKeyMode | fKeyScopes | fKeyStatus,
	"key.id":             fKeyID,
	"key.org":            fKeyOrg,
	"key.mode":           fKeyMode,
	"key.scopes":         fKeyScopes,
	"key.status":         fKeyStatus,
	"org":                fOrgID | fOrgPlan | fOrgUsageRequests | fOrgUsageCredits,
	"org.id":             fOrgID,
	"org.plan":           fOrgPlan,
	"org.usage":          fOrgUsageRequests | fOrgUsageCredits,
	"org.usage.requests": fOrgUsageRequests,
	"org.usage.credits":  fOrgUsageCredits,
	"request":            fReqMethod | fReqPath | fReqProvider | fReqModel | fReqOperation,
	"request.method":     fReqMethod,
	"request.path":       fReqPath,
	"request.provider":   fReqProvider,
	"request.model":      fReqModel,
	"request.operation":  fReqOperation,
	"detections":         fDetections,
}

// newMemo returns a memo for a policy made of mods, or nil when the policy
// must not be memoized (it calls a nondeterministic builtin).
func newMemo(mods map[string]*ast.Module) *memo {
	fields, ok := analyzePolicy(mods)
	if !ok {
		return nil
	}
	return &memo{fields: fields, m: make(map[string]*memoEntry)}
}

// fresh returns an empty memo for the same policy (after a data update).
func (mo *memo) fresh() *memo {
	if mo == nil {
		return nil
	}
	return &memo{fields: mo.fields, m: make(map[string]*memoEntry)}
}

// analyzePolicy returns the input fields the modules read and whether the
// policy is deterministic (its result depends on input and data only).
func analyzePolicy(mods map[string]*ast.Module) (inputFields, bool) {
	var fields inputFields
	deterministic := true
	var visit func(x any) bool
	visit = func(x any) bool {
		switch v := x.(type) {
		case ast.Ref:
			if b, ok := ast.BuiltinMap[v.String()]; ok && b.Nondeterministic {
				deterministic = false
			}
			if v.HasPrefix(ast.InputRootRef) {
				fields |= refFields(v)
			}
			// The head is the reference itself; look into the rest
			// (data.orgs[input.org.id]).
			for _, t := range v[1:] {
				ast.NewGenericVisitor(visit).Walk(t)
			}
			return true
		case ast.Var:
			// input outside a reference: the whole document.
			if v.Equal(ast.InputRootDocument.Value) {
				fields = fAll
			}
		}
		return false
	}
	for _, m := range mods {
		ast.NewGenericVisitor(visit).Walk(m)
	}
	return fields, deterministic
}

// refFields returns the fields covered by the constant prefix of an input
// reference: every field below the deepest fixed path element.
func refFields(r ast.Ref) inputFields {
	var parts []string
	for _, t := range r[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		parts = append(parts, string(s))
		if _, known := inputFieldPaths[strings.Join(parts, ".")]; !known {
			// A path below a leaf (or a field Input does not have): the
			// longest known prefix decides.
			parts = parts[:len(parts)-1]
			break
		}
	}
	if len(parts) == 0 {
		return fAll
	}
	return inputFieldPaths[strings.Join(parts, ".")]
}

// key appends the memo key of in to b: the fields the policy reads,
// length-prefixed. The usage is included only when withUsage is set, the
// detection lines only when withLines is.
func (mo *memo) key(b []byte, in *Input, withUsage, withLines bool) []byte {
	f := mo.fields
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(n int64) { b = binary.AppendVarint(b, n) }
	if f&fKeyID != 0 {
		str(in.Key.ID)
	}
	if f&fKeyOrg != 0 {
		str(in.Key.Org)
	}
	if f&fKeyMode != 0 {
		str(in.Key.Mode)
	}
	if f&fKeyScopes != 0 {
		num(int64(len(in.Key.Scopes)))
		for _, s := range in.Key.Scopes {
			str(s)
		}
	}
	if f&fKeyStatus != 0 {
		str(in.Key.Status)
	}
	if f&fOrgID != 0 {
		str(in.Org.ID)
	}
	if f&fOrgPlan != 0 {
		str(in.Org.Plan)
	}
	if withUsage && f&fOrgUsageRequests != 0 {
		num(in.Org.Usage.Requests)
	}
	if withUsage && f&fOrgUsageCredits != 0 {
		num(in.Org.Usage.Credits)
	}
	if f&fReqMethod != 0 {
		str(in.Request.Method)
	}
	if f&fReqPath != 0 {
		str(in.Request.Path)
	}
	if f&fReqProvider != 0 {
		str(in.Request.Provider)
	}
	if f&fReqModel != 0 {
		str(in.Request.Model)
	}
	if f&fReqOperation != 0 {
		str(in.Request.Operation)
	}
	if f&fDetections != 0 {
		num(int64(len(in.Detections)))
		for _, d := range in.Detections {
			str(d.Rule)
			str(d.Category)
			str(d.Action)
			if withLines {
				num(int64(d.Line))
			}
		}
	}
	return b
}

// The memo's key spaces: a key starts with one of these bytes, saying
// which of the usage and the lines it holds.
const (
	spaceWindowNoLines = 'W' // usage window, lines copied
	spaceWindow        = 'w' // usage window, lines in the key
	spaceUsageNoLines  = 'U' // exact usage, lines copied
	spaceUsage         = 'u' // exact usage, lines in the key
)

// lookup returns the memoized decision for in, if any.
func (mo *memo) lookup(in *Input) (Decision, bool) {
	var buf [256]byte
	mo.mu.RLock()
	defer mo.mu.RUnlock()
	for _, sp := range [...]byte{spaceWindowNoLines, spaceWindow, spaceUsageNoLines, spaceUsage} {
		withUsage := sp == spaceUsage || sp == spaceUsageNoLines
		withLines := sp == spaceWindow || sp == spaceUsage
		e := mo.m[string(mo.key(append(buf[:0], sp), in, withUsage, withLines))]
		if e == nil || (!withUsage && !e.window.contains(in.Org.Usage)) {
			continue
		}
		d := e.d.clone()
		if !withLines {
			for i := range d.Detections {
				d.Detections[i].Line = in.Detections[i].Line
			}
		}
		return d, true
	}
	return Decision{}, false
}

// store keeps d, decided for in, under the key space the policy's hints
// allow.
func (mo *memo) store(in *Input, d Decision, h memoHints) {
	var buf [256]byte
	e := &memoEntry{d: d.clone(), window: fullWindow}
	withLines := !h.linesCopied || len(d.Blocked) > 0 || len(d.Detections) != len(in.Detections)
	var sp byte
	switch {
	case h.window != nil && !withLines:
		sp = spaceWindowNoLines
	case h.window != nil:
		sp = spaceWindow
	case !withLines:
		sp = spaceUsageNoLines
	default:
		sp = spaceUsage
	}
	if h.window != nil {
		e.window = *h.window
	}
	k := string(mo.key(append(buf[:0], sp), in, h.window == nil, withLines))
	mo.mu.Lock()
	if len(mo.m) >= memoMaxEntries {
		clear(mo.m)
	}
	mo.m[k] = e
	mo.mu.Unlock()
}

// clone copies d so that neither the memo nor a caller sees the other's
// changes to the maps and slices.
func (d Decision) clone() Decision {
	d.Headers = maps.Clone(d.Headers)
	d.Detections = slices.Clone(d.Detections)
	d.Blocked = slices.Clone(d.Blocked)
	return d
}
