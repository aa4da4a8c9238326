package gateway

import (
	"errors"
	"net/http"
	"reflect"
	"testing"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestApplyHeaderMutation(t *testing.T) {
	base := func() headerMap {
		return headerMap{
			{":method", "POST"}, {":path", "/v1/messages"}, {":authority", "gw.local"}, {":scheme", "http"},
			{"host", "gw.local"}, {"content-length", "10"}, {"accept", "a"}, {"accept", "b"}, {"x-envoy-original-path", "/x"},
		}
	}
	appendOpt := func(k, v string) *corev3.HeaderValueOption {
		o := setHeader(k, v)
		o.Append = wrapperspb.Bool(true) //nolint:staticcheck // SA1019: the only append ext_proc honours
		return o
	}
	for _, tc := range []struct {
		name    string
		mut     *extprocv3.HeaderMutation
		policy  mutationPolicy
		want    headerMap // nil: base unchanged
		ignored int
		wantErr bool
	}{
		{name: "nil mutation", mut: nil},
		{
			name: "set overwrites every value",
			mut:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("accept", "c")}},
			want: headerMap{{":method", "POST"}, {":path", "/v1/messages"}, {":authority", "gw.local"}, {":scheme", "http"}, {"host", "gw.local"}, {"content-length", "10"}, {"accept", "c"}, {"x-envoy-original-path", "/x"}},
		},
		{
			name: "append adds to an existing header",
			mut:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{appendOpt("accept", "c")}},
			want: append(base(), header{"accept", "c"}),
		},
		{
			name: "append_action is ignored: overwrite",
			mut: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{
				Header:       &corev3.HeaderValue{Key: "content-length", RawValue: []byte("7")},
				AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
			}}},
			want: headerMap{{":method", "POST"}, {":path", "/v1/messages"}, {":authority", "gw.local"}, {":scheme", "http"}, {"host", "gw.local"}, {"content-length", "7"}, {"accept", "a"}, {"accept", "b"}, {"x-envoy-original-path", "/x"}},
		},
		{
			name: "keys are lower-cased, value from value when raw_value is empty",
			mut:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "X-New", Value: "v"}}}},
			want: append(base(), header{"x-new", "v"}),
		},
		{
			name:    "value and raw_value both set is an error",
			mut:     &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-new", Value: "v", RawValue: []byte("w")}}}},
			wantErr: true,
		},
		{
			name:    "invalid value is an error",
			mut:     &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-new", "a\nb")}},
			wantErr: true,
		},
		{
			name:    "invalid name is an error",
			mut:     &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("bad name", "v")}},
			wantErr: true,
		},
		{
			name:    "routing headers and x-envoy are ignored",
			mut:     &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("host", "evil"), setHeader(":authority", "evil"), setHeader(":scheme", "https"), setHeader(":method", "GET"), setHeader("x-envoy-original-path", "/y")}},
			ignored: 5,
		},
		{
			name:    "pseudo-headers and host cannot be removed",
			mut:     &extprocv3.HeaderMutation{RemoveHeaders: []string{":path", ":method", "host", "Host"}},
			ignored: 4,
		},
		{
			name: ":path may change",
			mut:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":path", "/v1/other")}},
			want: headerMap{{":method", "POST"}, {":path", "/v1/other"}, {":authority", "gw.local"}, {":scheme", "http"}, {"host", "gw.local"}, {"content-length", "10"}, {"accept", "a"}, {"accept", "b"}, {"x-envoy-original-path", "/x"}},
		},
		{
			name:   ":method may change with CONTINUE_AND_REPLACE",
			mut:    &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":method", "PUT")}},
			policy: mutationPolicy{replacing: true},
			want:   headerMap{{":method", "PUT"}, {":path", "/v1/messages"}, {":authority", "gw.local"}, {":scheme", "http"}, {"host", "gw.local"}, {"content-length", "10"}, {"accept", "a"}, {"accept", "b"}, {"x-envoy-original-path", "/x"}},
		},
		{
			name: "removals come before sets",
			mut: &extprocv3.HeaderMutation{
				RemoveHeaders: []string{"Accept"},
				SetHeaders:    []*corev3.HeaderValueOption{appendOpt("accept", "z")},
			},
			want: headerMap{{":method", "POST"}, {":path", "/v1/messages"}, {":authority", "gw.local"}, {":scheme", "http"}, {"host", "gw.local"}, {"content-length", "10"}, {"x-envoy-original-path", "/x"}, {"accept", "z"}},
		},
		{
			name:    "content-length set is skipped in STREAMED",
			mut:     &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("content-length", "99")}},
			policy:  mutationPolicy{dropContentLength: true},
			ignored: 1,
		},
		{
			name:    "disallow_is_error turns a refusal into an error",
			mut:     &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":authority", "evil")}},
			policy:  mutationPolicy{rules: &mutationrulesv3.HeaderMutationRules{DisallowIsError: wrapperspb.Bool(true)}},
			wantErr: true,
		},
		{
			name:   "allow_all_routing lets :authority change",
			mut:    &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":authority", "other")}},
			policy: mutationPolicy{rules: &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)}},
			want:   headerMap{{":method", "POST"}, {":path", "/v1/messages"}, {":authority", "other"}, {":scheme", "http"}, {"host", "gw.local"}, {"content-length", "10"}, {"accept", "a"}, {"accept", "b"}, {"x-envoy-original-path", "/x"}},
		},
		{
			name:    "disallow_all ignores everything",
			mut:     &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-a", "1")}, RemoveHeaders: []string{"accept"}},
			policy:  mutationPolicy{rules: &mutationrulesv3.HeaderMutationRules{DisallowAll: wrapperspb.Bool(true)}},
			ignored: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ignored, err := applyHeaderMutation(base(), tc.mut, tc.policy)
			if tc.wantErr {
				if !errors.Is(err, errMutation) {
					t.Fatalf("err = %v, want errMutation", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == nil {
				want = base()
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
			if ignored != tc.ignored {
				t.Errorf("ignored %d, want %d", ignored, tc.ignored)
			}
		})
	}
}

func TestApplyHeaderMutationBlockLimits(t *testing.T) {
	var sets []*corev3.HeaderValueOption
	for i := range maxHeaderCount + 1 {
		sets = append(sets, setHeader("x-h"+itoa(i), "v"))
	}
	if _, _, err := applyHeaderMutation(nil, &extprocv3.HeaderMutation{SetHeaders: sets}, mutationPolicy{}); !errors.Is(err, errMutation) {
		t.Errorf("more than %d headers: err = %v", maxHeaderCount, err)
	}
}

func TestHeaderMapFromHTTPDropsHopByHop(t *testing.T) {
	h := http.Header{"Connection": {"keep-alive, X-Drop"}, "X-Drop": {"1"}, "Keep-Alive": {"5"}, "Accept": {"a"}}
	got := headerMap{}.appendHTTP(h)
	if !reflect.DeepEqual(got, headerMap{{"accept", "a"}}) {
		t.Errorf("got %v", got)
	}
}
