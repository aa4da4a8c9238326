package token

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

// tricky is a fabricated password with everything JSON must escape.
const tricky = "p\"a\\s/s\n\t\x01é€😀"

func TestRehydrate(t *testing.T) {
	v := testVault(t, Limits{})
	awsTok := mustToken(t, v, detect.KEY, awsKey)
	trTok := mustToken(t, v, detect.SECRET, tricky)
	unknown := "__TAKUMO_v1_KEY_deadbeef__"
	md := func(tok string, esc string) string { return strings.ReplaceAll(tok, "_", esc+"_") }
	tests := []struct {
		name string
		esc  Escaping
		in   string
		out  string
		st   Stats
	}{
		{"no tokens", Raw, "hello", "hello", Stats{}},
		{"raw", Raw, "k=" + awsTok + ".", "k=" + awsKey + ".", Stats{Replaced: 1}},
		{"raw repeat", Raw, awsTok + awsTok, awsKey + awsKey, Stats{Replaced: 2}},
		{"raw tricky", Raw, trTok, tricky, Stats{Replaced: 1}},
		{"unknown stays", Raw, unknown + " " + awsTok + " " + unknown, unknown + " " + awsKey + " " + unknown,
			Stats{Replaced: 1, Unknown: 2, UnknownTokens: []string{unknown}}},
		{"markdown", Raw, "use " + md(awsTok, `\`) + " now", "use " + awsKey + " now", Stats{Replaced: 1}},
		{"markdown outer", Raw, `\_\_` + awsTok[2:len(awsTok)-2] + `\_\_`, awsKey, Stats{Replaced: 1}},
		{"markdown unknown stays as written", Raw, md(unknown, `\`), md(unknown, `\`), Stats{Unknown: 1, UnknownTokens: []string{unknown}}},
		{"json", JSONString, `{"k":"` + trTok + `"}`, `{"k":"p\"a\\s/s\n\t\u0001é€😀"}`, Stats{Replaced: 1}},
		{"json markdown", JSONString, `"` + md(awsTok, `\\`) + `"`, `"` + awsKey + `"`, Stats{Replaced: 1}},
		{"fragment", JSONFragment, `"{\"k\":\"` + trTok + `\"}"`, `"{\"k\":\"p\\\"a\\\\s/s\\n\\t\\u0001é€😀\"}"`, Stats{Replaced: 1}},
		{"fragment markdown", JSONFragment, md(awsTok, `\\\\`), awsKey, Stats{Replaced: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, st := Rehydrate(v, []byte(tc.in), tc.esc)
			if string(out) != tc.out {
				t.Errorf("out = %q\nwant  %q", out, tc.out)
			}
			if !reflect.DeepEqual(st, tc.st) {
				t.Errorf("stats = %+v, want %+v", st, tc.st)
			}
		})
	}
}

func TestRehydrateNilVault(t *testing.T) {
	tok := "__TAKUMO_v1_KEY_8f3a2b1c__"
	out, st := Rehydrate(nil, []byte(tok), Raw)
	if string(out) != tok || st.Unknown != 1 {
		t.Errorf("nil vault: %q %+v", out, st)
	}
}

func TestRehydrateOtherSessionKnowsNothing(t *testing.T) {
	v := testVault(t, Limits{})
	in := "x " + mustToken(t, v, detect.KEY, awsKey)
	other, err := NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewVault(other, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	mustToken(t, w, detect.KEY, awsKey2)
	out, st := Rehydrate(w, []byte(in), Raw)
	if string(out) != in || st.Unknown != 1 || st.Replaced != 0 {
		t.Errorf("other session: %q %+v", out, st)
	}
}

func TestUnknownTokensBounded(t *testing.T) {
	var b strings.Builder
	for i := range 150 {
		fmt.Fprintf(&b, "__TAKUMO_v1_KEY_%08x__ ", i)
	}
	_, st := Rehydrate(testVault(t, Limits{}), []byte(b.String()), Raw)
	if st.Unknown != 150 || len(st.UnknownTokens) != maxUnknownListed {
		t.Errorf("Unknown = %d, listed %d", st.Unknown, len(st.UnknownTokens))
	}
}

func TestAppendJSONEscaped(t *testing.T) {
	tests := []struct {
		in, one, two string
	}{
		{"plain", "plain", "plain"},
		{`"`, `\"`, `\\\"`},
		{`\`, `\\`, `\\\\`},
		{"\n\r\t\b\f", `\n\r\t\b\f`, `\\n\\r\\t\\b\\f`},
		{"\x00\x1f", `\u0000\u001f`, `\\u0000\\u001f`},
		{"\x7f/<>&", "\x7f/<>&", "\x7f/<>&"},
		{"é😀", "é😀", "é😀"},
		{"\xff", "\xff", "\xff"}, // invalid UTF-8 passes through, documented
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := string(appendJSONEscaped(nil, []byte(tc.in), 1)); got != tc.one {
				t.Errorf("once = %q, want %q", got, tc.one)
			}
			if got := string(appendJSONEscaped(nil, []byte(tc.in), 2)); got != tc.two {
				t.Errorf("twice = %q, want %q", got, tc.two)
			}
		})
	}
}

// checkJSONRoundTrip rehydrates value into a JSON string and a JSON
// fragment carried in a JSON string and checks encoding/json gets value
// back. value must be valid UTF-8.
func checkJSONRoundTrip(t *testing.T, value string) {
	t.Helper()
	v := testVault(t, Limits{})
	tok := mustToken(t, v, detect.SECRET, value)

	body, _ := Rehydrate(v, []byte(`{"text":"a `+tok+` b"}`), JSONString)
	var doc struct{ Text string }
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("JSONString output does not parse: %v", err)
	}
	if doc.Text != "a "+value+" b" {
		t.Fatalf("JSONString: got %q, want %q", doc.Text, "a "+value+" b")
	}

	outer, _ := Rehydrate(v, []byte(`{"arguments":"{\"k\":\"`+tok+`\",\"n\":1}"}`), JSONFragment)
	var call struct{ Arguments string }
	if err := json.Unmarshal(outer, &call); err != nil {
		t.Fatalf("JSONFragment outer does not parse: %v", err)
	}
	var args struct{ K string }
	if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil {
		t.Fatalf("JSONFragment inner does not parse: %v", err)
	}
	if args.K != value {
		t.Fatalf("JSONFragment: got %q, want %q", args.K, value)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, value := range []string{password, tricky, `\u0041`, `"}]`, "\u2028\u2029", "a\x00b", awsKey} {
		t.Run(value, func(t *testing.T) { checkJSONRoundTrip(t, value) })
	}
}
