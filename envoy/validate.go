package envoy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// Kind says what a YAML file holds.
type Kind int

// The kinds of file Validate knows.
const (
	// Bootstrap is an Envoy bootstrap (envoy -c file.yaml).
	Bootstrap Kind = iota + 1
	// EnvoyFilter is one or more Istio networking.istio.io/v1alpha3
	// EnvoyFilter objects (YAML documents separated by ---).
	EnvoyFilter
)

func (k Kind) String() string {
	switch k {
	case Bootstrap:
		return "bootstrap"
	case EnvoyFilter:
		return "EnvoyFilter"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Problem is one thing wrong with a file: the field path it concerns (proto
// field names, list indexes and map keys in brackets, e.g.
// static_resources.clusters[2].connect_timeout) and what is wrong.
type Problem struct {
	Path    string
	Message string
}

// Error implements error, so that a caller can errors.Join problems.
func (p Problem) Error() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Validate checks a file of the given kind and returns every problem found
// (nil when there are none). It decodes strictly (unknown fields, unknown
// enum values and unresolvable type URLs are problems, each reported at its
// field), then runs the API's validation rules on the whole tree, every
// typed_config included, then this project's rules (lint.go's doc in
// doc.go). Structural problems stop the later stages: rules run only on a
// file that decodes.
func Validate(kind Kind, data []byte) []Problem {
	switch kind {
	case Bootstrap:
		return validateBootstrap(data)
	case EnvoyFilter:
		return validateEnvoyFilters(data)
	}
	return []Problem{{Message: fmt.Sprintf("unknown kind %v", kind)}}
}

func validateBootstrap(data []byte) []Problem {
	docs, err := yamlDocuments(data)
	if err != nil {
		return []Problem{{Message: err.Error()}}
	}
	if len(docs) != 1 {
		return []Problem{{Message: fmt.Sprintf("a bootstrap is one YAML document, found %d", len(docs))}}
	}
	b := &bootstrapv3.Bootstrap{}
	if ps := decode("", docs[0], b); len(ps) > 0 {
		return ps
	}
	ps := checkTree("", b)
	ps = append(ps, lint(lintInput{roots: []rooted{{"", b}}, routesLocal: true})...)
	return ps
}

// yamlDocuments splits data into its YAML documents, each converted to
// plain Go values (maps with string keys, slices, scalars). Duplicate keys
// are errors.
func yamlDocuments(data []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("YAML: %w", err)
		}
		v, err := plain(&n)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		docs = append(docs, v)
	}
	if len(docs) == 0 {
		return nil, errors.New("no YAML document")
	}
	return docs, nil
}

// plain decodes a YAML node into JSON-compatible values.
func plain(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	return normalize(v)
}

func normalize(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("YAML: map key %v is not a string", k)
			}
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			m[ks] = n
		}
		return m, nil
	case []any:
		for i, e := range t {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	}
	return v, nil
}

// decode checks v against m's schema (every problem, with its path), then
// unmarshals it into m with strict protojson.
func decode(path string, v any, m proto.Message) []Problem {
	var s schemaWalker
	s.message(path, m.ProtoReflect().Descriptor(), v)
	if len(s.problems) > 0 {
		return s.problems
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []Problem{{Path: path, Message: err.Error()}}
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(b, m); err != nil {
		// The schema walk should have found it; report it anyway.
		return []Problem{{Path: path, Message: cleanProtoErr(err)}}
	}
	return nil
}

// schemaWalker walks decoded JSON values alongside message descriptors and
// records every field the schema does not allow, so that a file with three
// mistakes gets three problems, each with its path (protojson stops at the
// first and names no path).
type schemaWalker struct {
	problems []Problem
}

func (s *schemaWalker) add(path, format string, args ...any) {
	s.problems = append(s.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// wellKnownJSON are the message types protojson gives a JSON form of their
// own; their values are checked by protojson itself.
var wellKnownJSON = map[protoreflect.FullName]bool{
	"google.protobuf.Duration":    true,
	"google.protobuf.Timestamp":   true,
	"google.protobuf.FieldMask":   true,
	"google.protobuf.Struct":      true,
	"google.protobuf.Value":       true,
	"google.protobuf.ListValue":   true,
	"google.protobuf.Empty":       true,
	"google.protobuf.BoolValue":   true,
	"google.protobuf.BytesValue":  true,
	"google.protobuf.StringValue": true,
	"google.protobuf.DoubleValue": true,
	"google.protobuf.FloatValue":  true,
	"google.protobuf.Int32Value":  true,
	"google.protobuf.Int64Value":  true,
	"google.protobuf.UInt32Value": true,
	"google.protobuf.UInt64Value": true,
}

func (s *schemaWalker) message(path string, md protoreflect.MessageDescriptor, v any) {
	if wellKnownJSON[md.FullName()] {
		s.wellKnown(path, md, v)
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		s.add(path, "want an object (%s), got %s", md.FullName(), jsonKind(v))
		return
	}
	if md.FullName() == "google.protobuf.Any" {
		s.any(path, obj)
		return
	}
	seenOneof := map[protoreflect.FullName]string{}
	for _, k := range sortedKeys(obj) {
		fd := fieldByName(md, k)
		if fd == nil {
			s.add(join(path, k), "unknown field %q in %s", k, md.FullName())
			continue
		}
		fp := join(path, string(fd.Name()))
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && obj[k] != nil {
			if other, dup := seenOneof[od.FullName()]; dup {
				s.add(fp, "only one of %s and %s may be set (oneof %s)", other, fd.Name(), od.Name())
			}
			seenOneof[od.FullName()] = string(fd.Name())
		}
		s.field(fp, md, k, fd, obj[k])
	}
}

func (s *schemaWalker) field(fp string, md protoreflect.MessageDescriptor, key string, fd protoreflect.FieldDescriptor, v any) {
	if v == nil {
		return // JSON null: the field is unset
	}
	switch {
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			s.add(fp, "want a map (object), got %s", jsonKind(v))
			return
		}
		if fd.MapValue().Kind() == protoreflect.MessageKind {
			for _, mk := range sortedKeys(obj) {
				if obj[mk] != nil {
					s.message(fp+"["+mk+"]", fd.MapValue().Message(), obj[mk])
				}
			}
			return
		}
		s.scalar(fp, md, key, v)
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			s.add(fp, "want a list, got %s", jsonKind(v))
			return
		}
		if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
			for i, e := range list {
				s.message(fmt.Sprintf("%s[%d]", fp, i), fd.Message(), e)
			}
			return
		}
		s.scalar(fp, md, key, v)
	case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
		s.message(fp, fd.Message(), v)
	default:
		s.scalar(fp, md, key, v)
	}
}

// any checks a google.protobuf.Any: its @type must resolve, and the rest
// of the object is the named message.
func (s *schemaWalker) any(path string, obj map[string]any) {
	url, ok := obj["@type"].(string)
	if !ok {
		s.add(join(path, "@type"), "missing @type (a typed_config needs the type URL of its message)")
		return
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
	if err != nil {
		s.add(join(path, "@type"), "unknown type URL %q: a typo, or an extension this validator does not register", url)
		return
	}
	rest := make(map[string]any, len(obj)-1)
	for k, v := range obj {
		if k != "@type" {
			rest[k] = v
		}
	}
	if wellKnownJSON[mt.Descriptor().FullName()] {
		s.wellKnown(path, mt.Descriptor(), rest["value"])
		return
	}
	s.message(path, mt.Descriptor(), rest)
}

// wellKnown checks a value of a type with a special JSON form by letting
// protojson parse it.
func (s *schemaWalker) wellKnown(path string, md protoreflect.MessageDescriptor, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.add(path, "%v", err)
		return
	}
	if err := protojson.Unmarshal(b, dynamicpb.NewMessage(md)); err != nil {
		s.add(path, "%s: %s", md.FullName(), cleanProtoErr(err))
	}
}

// scalar checks a scalar, enum or scalar list/map field by letting
// protojson parse {key: v} into a message of type md.
func (s *schemaWalker) scalar(path string, md protoreflect.MessageDescriptor, key string, v any) {
	b, err := json.Marshal(map[string]any{key: v})
	if err != nil {
		s.add(path, "%v", err)
		return
	}
	if err := protojson.Unmarshal(b, dynamicpb.NewMessage(md)); err != nil {
		s.add(path, "%s", cleanProtoErr(err))
	}
}

func fieldByName(md protoreflect.MessageDescriptor, k string) protoreflect.FieldDescriptor {
	fs := md.Fields()
	if fd := fs.ByJSONName(k); fd != nil {
		return fd
	}
	if fd := fs.ByTextName(k); fd != nil {
		return fd
	}
	return fs.ByName(protoreflect.Name(k))
}

var protoErrPos = regexp.MustCompile(`^proto:\s*(\(line \d+:\d+\):\s*)?`)

// cleanProtoErr drops protojson's prefix and its position in the JSON
// text, which is not the user's file.
func cleanProtoErr(err error) string {
	return protoErrPos.ReplaceAllString(strings.ReplaceAll(err.Error(), "\u00a0", " "), "")
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// checkTree runs the API's validation rules (protoc-gen-validate's
// ValidateAll) on root and on the message inside every Any below it,
// which ValidateAll alone does not look into.
func checkTree(path string, root proto.Message) []Problem {
	var ps []Problem
	validateAll(path, root, &ps)
	walk(path, root.ProtoReflect(), func(p string, m protoreflect.Message) {
		a, ok := m.Interface().(*anypb.Any)
		if !ok {
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			ps = append(ps, Problem{Path: p, Message: fmt.Sprintf("cannot unpack %q: %v", a.GetTypeUrl(), err)})
			return
		}
		validateAll(p, inner, &ps)
	})
	return ps
}

// walk calls fn for every message below m (m included) with its path.
// The message inside an Any is visited at the Any's path, right after the
// Any itself.
func walk(path string, m protoreflect.Message, fn func(string, protoreflect.Message)) {
	fn(path, m)
	if a, ok := m.Interface().(*anypb.Any); ok {
		if inner, err := a.UnmarshalNew(); err == nil {
			walk(path, inner.ProtoReflect(), fn)
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		fp := join(path, string(fd.Name()))
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				return true
			}
			mp := v.Map()
			var keys []protoreflect.MapKey
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				walk(fp+"["+k.String()+"]", mp.Get(k).Message(), fn)
			}
		case fd.IsList():
			if fd.Kind() != protoreflect.MessageKind {
				return true
			}
			l := v.List()
			for i := range l.Len() {
				walk(fmt.Sprintf("%s[%d]", fp, i), l.Get(i).Message(), fn)
			}
		case fd.Kind() == protoreflect.MessageKind:
			walk(fp, v.Message(), fn)
		}
		return true
	})
}

// pgvError is the shape of a protoc-gen-validate field error.
type pgvError interface {
	Field() string
	Reason() string
	Cause() error
}

func validateAll(path string, m proto.Message, ps *[]Problem) {
	v, ok := m.(interface{ ValidateAll() error })
	if !ok {
		return
	}
	if err := v.ValidateAll(); err != nil {
		flattenPGV(path, err, ps)
	}
}

// flattenPGV turns protoc-gen-validate's nested errors into one problem
// per violated rule, each with the full path of its field.
func flattenPGV(path string, err error, ps *[]Problem) {
	if multi, ok := err.(interface{ AllErrors() []error }); ok {
		for _, e := range multi.AllErrors() {
			flattenPGV(path, e, ps)
		}
		return
	}
	var fe pgvError
	if !errors.As(err, &fe) {
		*ps = append(*ps, Problem{Path: path, Message: err.Error()})
		return
	}
	fp := join(path, pgvField(fe.Field()))
	if c := fe.Cause(); c != nil {
		var inner pgvError
		_, isMulti := c.(interface{ AllErrors() []error })
		if isMulti || errors.As(c, &inner) {
			flattenPGV(fp, c, ps)
			return
		}
		*ps = append(*ps, Problem{Path: fp, Message: fe.Reason() + ": " + c.Error()})
		return
	}
	*ps = append(*ps, Problem{Path: fp, Message: fe.Reason()})
}

// pgvField turns protoc-gen-validate's Go field name ("TypedConfig",
// "Listeners[0]", "TypedPerFilterConfig[name]") into the proto name.
func pgvField(f string) string {
	name, index, _ := strings.Cut(f, "[")
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r - 'A' + 'a')
			continue
		}
		b.WriteRune(r)
	}
	if index != "" {
		b.WriteString("[" + index)
	}
	return b.String()
}

// envoyFilterObject is the part of an Istio EnvoyFilter this project
// writes; anything else in a file is an error (strict decoding).
type envoyFilterObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		WorkloadSelector *struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"workloadSelector"`
		Priority      int32         `yaml:"priority"`
		ConfigPatches []configPatch `yaml:"configPatches"`
	} `yaml:"spec"`
}

type configPatch struct {
	ApplyTo string `yaml:"applyTo"`
	Match   *struct {
		Context string `yaml:"context"`
		Proxy   *struct {
			ProxyVersion string            `yaml:"proxyVersion"`
			Metadata     map[string]string `yaml:"metadata"`
		} `yaml:"proxy"`
		Listener *struct {
			PortNumber  uint32 `yaml:"portNumber"`
			Name        string `yaml:"name"`
			FilterChain *struct {
				Name                string `yaml:"name"`
				Sni                 string `yaml:"sni"`
				TransportProtocol   string `yaml:"transportProtocol"`
				ApplicationProtocol string `yaml:"applicationProtocols"`
				DestinationPort     uint32 `yaml:"destinationPort"`
				Filter              *struct {
					Name      string `yaml:"name"`
					SubFilter *struct {
						Name string `yaml:"name"`
					} `yaml:"subFilter"`
				} `yaml:"filter"`
			} `yaml:"filterChain"`
		} `yaml:"listener"`
		RouteConfiguration *struct {
			PortNumber uint32 `yaml:"portNumber"`
			PortName   string `yaml:"portName"`
			Gateway    string `yaml:"gateway"`
			Name       string `yaml:"name"`
			Vhost      *struct {
				Name       string `yaml:"name"`
				DomainName string `yaml:"domainName"`
				Route      *struct {
					Name   string `yaml:"name"`
					Action string `yaml:"action"`
				} `yaml:"route"`
			} `yaml:"vhost"`
		} `yaml:"routeConfiguration"`
		Cluster *struct {
			PortNumber uint32 `yaml:"portNumber"`
			Service    string `yaml:"service"`
			Subset     string `yaml:"subset"`
			Name       string `yaml:"name"`
		} `yaml:"cluster"`
	} `yaml:"match"`
	Patch struct {
		Operation   string    `yaml:"operation"`
		FilterClass string    `yaml:"filterClass"`
		Value       yaml.Node `yaml:"value"`
	} `yaml:"patch"`
}

// patchTypes maps applyTo to the Envoy message its patch value is.
var patchTypes = map[string]func() proto.Message{
	"HTTP_FILTER":         func() proto.Message { return &hcmv3.HttpFilter{} },
	"CLUSTER":             func() proto.Message { return &clusterv3.Cluster{} },
	"LISTENER":            func() proto.Message { return &listenerv3.Listener{} },
	"FILTER_CHAIN":        func() proto.Message { return &listenerv3.FilterChain{} },
	"NETWORK_FILTER":      func() proto.Message { return &listenerv3.Filter{} },
	"ROUTE_CONFIGURATION": func() proto.Message { return &routev3.RouteConfiguration{} },
	"VIRTUAL_HOST":        func() proto.Message { return &routev3.VirtualHost{} },
	"HTTP_ROUTE":          func() proto.Message { return &routev3.Route{} },
}

// yamlStructErr matches go-yaml's report of an unknown field, whose Go
// type dump means nothing to the reader.
var yamlStructErr = regexp.MustCompile(`line (\d+): field (\S+) not found in type [^\n]*`)

var (
	patchOperations = []string{"MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"}
	patchContexts   = []string{"", "ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"}
)

func validateEnvoyFilters(data []byte) []Problem {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var objs []envoyFilterObject
	for {
		var o envoyFilterObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return []Problem{{Message: "EnvoyFilter: " + yamlStructErr.ReplaceAllString(err.Error(), `line $1: unknown field "$2"`)}}
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		return []Problem{{Message: "no YAML document"}}
	}
	var ps []Problem
	for i, o := range objs {
		// Each object patches its own proxies: its clusters are its own.
		in := lintInput{}
		decoded := true
		prefix := ""
		if len(objs) > 1 {
			prefix = fmt.Sprintf("[%d].", i)
		}
		if o.APIVersion != "networking.istio.io/v1alpha3" {
			ps = append(ps, Problem{Path: prefix + "apiVersion", Message: fmt.Sprintf("want networking.istio.io/v1alpha3, got %q", o.APIVersion)})
		}
		if o.Kind != "EnvoyFilter" {
			ps = append(ps, Problem{Path: prefix + "kind", Message: fmt.Sprintf("want EnvoyFilter, got %q", o.Kind)})
		}
		if o.Metadata.Name == "" {
			ps = append(ps, Problem{Path: prefix + "metadata.name", Message: "missing"})
		}
		if len(o.Spec.ConfigPatches) == 0 {
			ps = append(ps, Problem{Path: prefix + "spec.configPatches", Message: "no patches"})
		}
		for j, cp := range o.Spec.ConfigPatches {
			path := fmt.Sprintf("%sspec.configPatches[%d]", prefix, j)
			newMsg, ok := patchTypes[cp.ApplyTo]
			if !ok {
				ps = append(ps, Problem{Path: path + ".applyTo", Message: fmt.Sprintf("%q is not one of %s", cp.ApplyTo, strings.Join(sortedKeys(patchTypes), ", "))})
				continue
			}
			if cp.Match != nil && !slices.Contains(patchContexts, cp.Match.Context) {
				ps = append(ps, Problem{Path: path + ".match.context", Message: fmt.Sprintf("%q is not one of %s", cp.Match.Context, strings.Join(patchContexts[1:], ", "))})
			}
			if !slices.Contains(patchOperations, cp.Patch.Operation) {
				ps = append(ps, Problem{Path: path + ".patch.operation", Message: fmt.Sprintf("%q is not one of %s", cp.Patch.Operation, strings.Join(patchOperations, ", "))})
				continue
			}
			if cp.Patch.Operation == "REMOVE" {
				if cp.Patch.Value.Kind != 0 {
					ps = append(ps, Problem{Path: path + ".patch.value", Message: "REMOVE takes no value"})
				}
				continue
			}
			if cp.Patch.Value.Kind == 0 {
				ps = append(ps, Problem{Path: path + ".patch.value", Message: "missing"})
				continue
			}
			v, err := plain(&cp.Patch.Value)
			if err != nil {
				ps = append(ps, Problem{Path: path + ".patch.value", Message: err.Error()})
				continue
			}
			m := newMsg()
			vp := path + ".patch.value"
			if dps := decode(vp, v, m); len(dps) > 0 {
				ps = append(ps, dps...)
				decoded = false
				continue
			}
			if cp.Patch.Operation == "MERGE" {
				// A partial message: required fields may be absent, so
				// only the typed configs inside are checked in full.
				ps = append(ps, checkAnys(vp, m)...)
			} else {
				ps = append(ps, checkTree(vp, m)...)
			}
			in.roots = append(in.roots, rooted{vp, m})
		}
		if decoded {
			// Cross-references mean something only when every patch decoded.
			ps = append(ps, lint(in)...)
		}
	}
	return ps
}

// checkAnys is checkTree without the validation of the root message.
func checkAnys(path string, root proto.Message) []Problem {
	var ps []Problem
	walk(path, root.ProtoReflect(), func(p string, m protoreflect.Message) {
		a, ok := m.Interface().(*anypb.Any)
		if !ok {
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			ps = append(ps, Problem{Path: p, Message: fmt.Sprintf("cannot unpack %q: %v", a.GetTypeUrl(), err)})
			return
		}
		validateAll(p, inner, &ps)
	})
	return ps
}
