package token

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

func TestParse(t *testing.T) {
	h8, h16 := "8f3a2b1c", "8f3a2b1c00112233"
	h32, h64 := h16+h16, h16+h16+h16+h16
	tests := []struct {
		in   string
		want Token // zero means ErrNotToken
	}{
		{"__TAKUMO_v1_KEY_" + h8 + "__", Token{detect.KEY, h8}},
		{"__TAKUMO_v1_SECRET_" + h16 + "__", Token{detect.SECRET, h16}},
		{"__TAKUMO_v1_CONN_" + h32 + "__", Token{detect.CONN, h32}},
		{"__TAKUMO_v1_PKEY_" + h64 + "__", Token{detect.PKEY, h64}},
		{"__TAKUMO_v1_HOST_" + h8 + "__", Token{detect.HOST, h8}},
		{"__TAKUMO_v1_TOKEN_" + h8 + "__", Token{detect.TOKEN, h8}},
		{"__TAKUMO_v1_USER_" + h8 + "__", Token{detect.USER, h8}},
		{"__TAKUMO_v1_KEY_8F3A2B1C__", Token{}},        // upper-case hex
		{"__TAKUMO_v1_KEY_8f3a2b1c0011__", Token{}},    // 12 hex
		{"__TAKUMO_v1_KEY_8f3a2b1__", Token{}},         // 7 hex
		{"__TAKUMO_v1_URL_8f3a2b1c__", Token{}},        // unknown category
		{"__TAKUMO_v1_key_8f3a2b1c__", Token{}},        // lower-case category
		{"__TAKUMO_v2_KEY_8f3a2b1c__", Token{}},        // other version
		{"__TAKUMO_v1_KEY_8f3a2b1c_", Token{}},         // short suffix
		{"__TAKUMO_v1_KEY_8f3a2b1c___", Token{}},       // trailing byte
		{" __TAKUMO_v1_KEY_8f3a2b1c__", Token{}},       // leading byte
		{"__TAKUMO_v1_KEY_g7h8i9j0__", Token{}},        // not hex
		{`\_\_TAKUMO\_v1\_KEY\_8f3a2b1c\_\_`, Token{}}, // escaped: Find, not Parse
		{"__TAKUMO_v1_KEY_" + h64 + "00__", Token{}},   // 66 hex
		{"", Token{}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.want == (Token{}) {
				if !errors.Is(err, ErrNotToken) {
					t.Fatalf("Parse = %v, %v; want ErrNotToken", got, err)
				}
				if err != nil && strings.Contains(err.Error(), "8f3a") {
					t.Errorf("error repeats its input: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse = %v, %v; want %v", got, err, tc.want)
			}
			if got.String() != tc.in {
				t.Errorf("String = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestFind(t *testing.T) {
	const tok = "__TAKUMO_v1_KEY_8f3a2b1c__"
	tests := []struct {
		name string
		esc  Escaping
		in   string
		want []Match
	}{
		{"canonical", Raw, "a " + tok + " b", []Match{{2, 2 + len(tok), tok}}},
		{"none", Raw, "no tokens TAKUMO here __TAKUMO_", nil},
		{"markdown", Raw, `x\_\_TAKUMO\_v1\_KEY\_8f3a2b1c\_\_y`, []Match{{1, 34, tok}}},
		{"markdown outer pairs only", Raw, `\_\_TAKUMO_v1_KEY_8f3a2b1c\_\_`, []Match{{0, 30, tok}}},
		{"backslash before bare token stays", Raw, `\` + tok, []Match{{1, 1 + len(tok), tok}}},
		{"mixed leading pair is not escaped", Raw, `_\_TAKUMO_v1_KEY_8f3a2b1c__`, nil},
		{"third underscore before", Raw, "___TAKUMO_v1_KEY_8f3a2b1c__", []Match{{1, 27, tok}}},
		{"third underscore after", Raw, tok + "_", []Match{{0, len(tok), tok}}},
		{"shared underscores", Raw, "__TAKUMO_v1_KEY_8f3a2b1c__TAKUMO_v1_KEY_8f3a2b1c__", []Match{{0, len(tok), tok}}},
		{"adjacent", Raw, tok + tok, []Match{{0, len(tok), tok}, {len(tok), 2 * len(tok), tok}}},
		{"raw ignores json escape", Raw, `\\_\\_TAKUMO\\_v1\\_KEY\\_8f3a2b1c\\_\\_`, nil},
		{"json canonical", JSONString, `"` + tok + `"`, []Match{{1, 1 + len(tok), tok}}},
		{"json markdown", JSONString, `"\\_\\_TAKUMO\\_v1\\_KEY\\_8f3a2b1c\\_\\_"`, []Match{{1, 41, tok}}},
		{"json ignores raw escape", JSONString, `\_\_TAKUMO\_v1\_KEY\_8f3a2b1c\_\_`, nil},
		{"fragment canonical", JSONFragment, `{\"k\":\"` + tok + `\"}`, []Match{{9, 9 + len(tok), tok}}},
		{"fragment markdown", JSONFragment, `\\\\_\\\\_TAKUMO\\\\_v1\\\\_KEY\\\\_8f3a2b1c\\\\_\\\\_`, []Match{{0, 54, tok}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Find([]byte(tc.in), tc.esc)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Find(%q, %v) = %v, want %v", tc.in, tc.esc, got, tc.want)
			}
		})
	}
}

func TestHoldFrom(t *testing.T) {
	tests := []struct {
		name string
		esc  Escaping
		in   string
		want int
	}{
		{"plain text", Raw, "hello world", 11},
		{"underscore", Raw, "a_", 1},
		{"two underscores", Raw, "a__", 1},
		{"anchor cut", Raw, "ab__TAK", 2},
		{"before hash", Raw, "ab__TAKUMO_v1_SECRET_", 2},
		{"in hash", Raw, "ab__TAKUMO_v1_SECRET_0123", 2},
		{"category cut", Raw, "ab__TAKUMO_v1_SEC", 2},
		{"eight hex, suffix missing", Raw, "ab__TAKUMO_v1_KEY_8f3a2b1c", 2},
		{"not a category", Raw, "ab__TAKUMO_v1_SECX", 18},
		{"not the anchor", Raw, "ab__TAKE", 8},
		{"complete token", Raw, "ab__TAKUMO_v1_KEY_8f3a2b1c__", 28},
		{"too much hex", Raw, "__TAKUMO_v1_KEY_" + strings.Repeat("a", 65), 81},
		{"escape", Raw, `a\`, 1},
		{"escaped pair", Raw, `a\_\_TAKU`, 1},
		{"json escape half", JSONString, `a\`, 1},
		{"json escape", JSONString, `a\\`, 1},
		{"json raw escape is no token", JSONString, `a\_x`, 4},
		{"fragment escape", JSONFragment, `a\\\`, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from := 0 // as the stream rehydrator does: after the last token
			if ms := Find([]byte(tc.in), tc.esc); len(ms) > 0 {
				from = ms[len(ms)-1].End
			}
			if got := holdFrom([]byte(tc.in), from, tc.esc.underscoreEscape()); got != tc.want {
				t.Fatalf("holdFrom(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}
