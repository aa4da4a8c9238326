package policy

import (
	"errors"
	"fmt"
	"math"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Decision is the policy's answer for one request.
type Decision struct {
	// ID identifies the decision in the decision log ("dec_" + 16 hex).
	ID string `json:"decision_id"`
	// Allow says whether the request may go on. When false, Status, Code
	// and Message are the DESIGN §6 error (401 UNAUTHORIZED, 403 FORBIDDEN,
	// 403 PLAN_LIMIT_REACHED); the message is safe to show the client.
	Allow   bool   `json:"allow"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Headers are added to the response to the client (x-aegis-plan,
	// x-aegis-overage).
	Headers map[string]string `json:"headers"`
	// Detections are the input detections in the same order, each with its
	// effective action after policy (tokenize, block, monitor, off).
	Detections []DetectionAction `json:"detections"`
	// Blocked lists the detections whose action is block (rule, category,
	// line; never a value). A non-empty list means Allow is false.
	Blocked []Blocked `json:"blocked"`
	// Credits is what to charge for the request (0 when denied).
	Credits int64 `json:"credits"`
	// Overage is true when a paid plan's monthly allowance is used up: the
	// request is allowed and its usage is billed as overage.
	Overage bool `json:"overage"`
	// Plan is the plan the decision used ("(none)" when none is known).
	Plan string `json:"plan"`
	// RateLimit is the plan's per-organization rate limits for the data
	// plane (0 when the plan is unknown).
	RateLimit RateLimit `json:"rate_limit"`
}

// DetectionAction is one detection with its effective action.
type DetectionAction struct {
	Rule     string `json:"rule"`
	Category string `json:"category"`
	Line     int    `json:"line"`
	Action   string `json:"action"`
}

// Blocked is one blocking detection as the client may see it.
type Blocked struct {
	Rule     string `json:"rule"`
	Category string `json:"category"`
	Line     int    `json:"line"`
}

// RateLimit is requests per minute and per hour (-1 = unlimited).
type RateLimit struct {
	PerMinute int64 `json:"per_minute"`
	PerHour   int64 `json:"per_hour"`
}

// ErrDecisionShape is wrapped when the policy's result is not the decision
// document this package expects (a field missing or of the wrong type).
var ErrDecisionShape = errors.New("policy: decision has the wrong shape")

// doc reads the decision document through typed getters that fail loudly
// on a missing field or a wrong type (the policy is operator-replaceable;
// a quiet zero would be a silent allow or deny).
type doc struct {
	obj  ast.Object
	path string
}

func shapeErr(path, key, want string, got ast.Value) error {
	name := "nothing"
	if got != nil {
		name = ast.ValueName(got)
	}
	return fmt.Errorf("%w: %s.%s: want %s, got %s", ErrDecisionShape, path, key, want, name)
}

func (d doc) get(key string) ast.Value {
	t := d.obj.Get(ast.InternedTerm(key))
	if t == nil {
		return nil
	}
	return t.Value
}

func (d doc) boolean(key string) (bool, error) {
	v, ok := d.get(key).(ast.Boolean)
	if !ok {
		return false, shapeErr(d.path, key, "boolean", d.get(key))
	}
	return bool(v), nil
}

func (d doc) str(key string) (string, error) {
	v, ok := d.get(key).(ast.String)
	if !ok {
		return "", shapeErr(d.path, key, "string", d.get(key))
	}
	return string(v), nil
}

func (d doc) integer(key string) (int64, error) {
	v, ok := d.get(key).(ast.Number)
	if !ok {
		return 0, shapeErr(d.path, key, "integer", d.get(key))
	}
	n, ok := v.Int64()
	if !ok {
		return 0, shapeErr(d.path, key, "integer", d.get(key))
	}
	return n, nil
}

func (d doc) object(key string) (doc, error) {
	v, ok := d.get(key).(ast.Object)
	if !ok {
		return doc{}, shapeErr(d.path, key, "object", d.get(key))
	}
	return doc{obj: v, path: d.path + "." + key}, nil
}

func (d doc) array(key string) (*ast.Array, error) {
	v, ok := d.get(key).(*ast.Array)
	if !ok {
		return nil, shapeErr(d.path, key, "array", d.get(key))
	}
	return v, nil
}

func (d doc) stringMap(key string) (map[string]string, error) {
	o, err := d.object(key)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, o.obj.Len())
	err = o.obj.Iter(func(k, v *ast.Term) error {
		ks, ok := k.Value.(ast.String)
		if !ok {
			return shapeErr(o.path, "<key>", "string", k.Value)
		}
		vs, ok := v.Value.(ast.String)
		if !ok {
			return shapeErr(o.path, string(ks), "string", v.Value)
		}
		out[string(ks)] = string(vs)
		return nil
	})
	return out, err
}

// elements returns the objects of the array at key.
func (d doc) elements(key string) ([]doc, error) {
	a, err := d.array(key)
	if err != nil {
		return nil, err
	}
	out := make([]doc, a.Len())
	for i := range a.Len() {
		o, ok := a.Elem(i).Value.(ast.Object)
		if !ok {
			return nil, shapeErr(d.path, fmt.Sprintf("%s[%d]", key, i), "object", a.Elem(i).Value)
		}
		out[i] = doc{obj: o, path: fmt.Sprintf("%s.%s[%d]", d.path, key, i)}
	}
	return out, nil
}

func (d doc) line(key string) (int, error) {
	n, err := d.integer(key)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > math.MaxInt32 {
		return 0, shapeErr(d.path, key, "a line number", d.get(key))
	}
	return int(n), nil
}

// validActions are the detection actions of DESIGN §5.
var validActions = map[string]bool{"tokenize": true, "block": true, "monitor": true, "off": true}

// readDecision turns the decision document into a Decision, checking every
// field. nDetections is the number of input detections, which the result
// must mirror.
func readDecision(v ast.Value, nDetections int) (Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("%w: decision: want object, got %s", ErrDecisionShape, ast.ValueName(v))
	}
	d := doc{obj: obj, path: "decision"}
	var out Decision
	var err error
	collect := func(e error) {
		if err == nil && e != nil {
			err = e
		}
	}
	var status int64
	out.Allow, err = d.boolean("allow")
	status, e := d.integer("status")
	collect(e)
	out.Status = int(status)
	out.Code, e = d.str("code")
	collect(e)
	out.Message, e = d.str("message")
	collect(e)
	out.Headers, e = d.stringMap("headers")
	collect(e)
	out.Credits, e = d.integer("credits")
	collect(e)
	out.Overage, e = d.boolean("overage")
	collect(e)
	out.Plan, e = d.str("plan")
	collect(e)
	rl, e := d.object("rate_limit")
	collect(e)
	if e == nil {
		out.RateLimit.PerMinute, e = rl.integer("per_minute")
		collect(e)
		out.RateLimit.PerHour, e = rl.integer("per_hour")
		collect(e)
	}
	dets, e := d.elements("detections")
	collect(e)
	if e == nil && len(dets) != nDetections {
		collect(fmt.Errorf("%w: decision.detections has %d entries for %d input detections", ErrDecisionShape, len(dets), nDetections))
	}
	if len(dets) > 0 {
		out.Detections = make([]DetectionAction, len(dets))
	}
	for i, x := range dets {
		var da DetectionAction
		da.Rule, e = x.str("rule")
		collect(e)
		da.Category, e = x.str("category")
		collect(e)
		da.Line, e = x.line("line")
		collect(e)
		da.Action, e = x.str("action")
		collect(e)
		if e == nil && !validActions[da.Action] {
			collect(fmt.Errorf("%w: %s.action: unknown action %q", ErrDecisionShape, x.path, da.Action))
		}
		out.Detections[i] = da
	}
	blocked, e := d.elements("blocked")
	collect(e)
	for _, x := range blocked {
		var b Blocked
		b.Rule, e = x.str("rule")
		collect(e)
		b.Category, e = x.str("category")
		collect(e)
		b.Line, e = x.line("line")
		collect(e)
		out.Blocked = append(out.Blocked, b)
	}
	if err != nil {
		return Decision{}, err
	}
	switch {
	case out.Allow && out.Status != 200:
		return Decision{}, fmt.Errorf("%w: decision allows with status %d", ErrDecisionShape, out.Status)
	case !out.Allow && (out.Status < 400 || out.Status > 599 || out.Code == "" || out.Message == ""):
		return Decision{}, fmt.Errorf("%w: a denial needs a 4xx/5xx status, a code and a message (got %d %q)", ErrDecisionShape, out.Status, out.Code)
	case out.Allow && len(out.Blocked) > 0:
		return Decision{}, fmt.Errorf("%w: decision allows a request with blocking detections", ErrDecisionShape)
	case out.Credits < 0:
		return Decision{}, fmt.Errorf("%w: negative credits", ErrDecisionShape)
	}
	return out, nil
}

// readLinesCopied reads the decision's optional detection_lines: "copied"
// states that the decision depends on the detections' lines only by
// copying each input line into detections[i].line (and blocked[j].line),
// so the same decision holds for any other lines, copied alike.
func readLinesCopied(v ast.Value) bool {
	obj, ok := v.(ast.Object)
	if !ok {
		return false
	}
	s, ok := doc{obj: obj, path: "decision"}.get("detection_lines").(ast.String)
	return ok && string(s) == "copied"
}

// readUsageWindow reads the decision's optional usage_window: {"requests":
// [min, max], "credits": [min, max]}, inclusive bounds of
// input.org.usage.requests and input.org.usage.credits within which the
// policy gives the same decision with every other input unchanged (null:
// no bound). It returns nil when the policy states none.
func readUsageWindow(v ast.Value) (*usageWindow, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, nil
	}
	d := doc{obj: obj, path: "decision"}
	if d.get("usage_window") == nil {
		return nil, nil
	}
	uw, err := d.object("usage_window")
	if err != nil {
		return nil, err
	}
	bounds := func(key string) (lo, hi int64, err error) {
		a, err := uw.array(key)
		if err != nil {
			return 0, 0, err
		}
		if a.Len() != 2 {
			return 0, 0, shapeErr(uw.path, key, "[min, max]", a)
		}
		get := func(i int, open int64) (int64, error) {
			switch x := a.Elem(i).Value.(type) {
			case ast.Null:
				return open, nil
			case ast.Number:
				if n, ok := x.Int64(); ok {
					return n, nil
				}
			}
			return 0, shapeErr(uw.path, fmt.Sprintf("%s[%d]", key, i), "integer or null", a.Elem(i).Value)
		}
		if lo, err = get(0, math.MinInt64); err != nil {
			return 0, 0, err
		}
		if hi, err = get(1, math.MaxInt64); err != nil {
			return 0, 0, err
		}
		return lo, hi, nil
	}
	var w usageWindow
	if w.reqMin, w.reqMax, err = bounds("requests"); err != nil {
		return nil, err
	}
	if w.credMin, w.credMax, err = bounds("credits"); err != nil {
		return nil, err
	}
	return &w, nil
}
