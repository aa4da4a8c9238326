package token

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

func TestTokenize(t *testing.T) {
	tz := Tokenizer{Engine: testEngine(t)}
	// Tokens under the test key, computed by the vault itself once the
	// golden test has pinned the hash.
	tv := testVault(t, Limits{})
	awsTok := mustToken(t, tv, detect.KEY, awsKey)
	ghTok := mustToken(t, tv, detect.TOKEN, ghToken)
	pwTok := mustToken(t, tv, detect.SECRET, password)
	xTok := mustToken(t, tv, detect.SECRET, "x")
	spanTok := mustToken(t, tv, detect.SECRET, "x "+awsTok)
	host := "db-7.internal.example.com"

	type det struct {
		rule   string
		action detect.Action
		start  int
		token  string
	}
	tests := []struct {
		name string
		in   string
		out  string
		dets []det
	}{
		{"nothing", "plain text, no secrets", "plain text, no secrets", nil},
		{"empty", "", "", nil},
		{"aws", "id=" + awsKey + ";", "id=" + awsTok + ";", []det{{"aws", detect.Tokenize, 3, awsTok}}},
		{"repeat", awsKey + " " + awsKey, awsTok + " " + awsTok, []det{{"aws", detect.Tokenize, 0, awsTok}, {"aws", detect.Tokenize, 21, awsTok}}},
		{"several", "gh=" + ghToken + "\npassword=" + password + "\n", "gh=" + ghTok + "\npassword=" + pwTok + "\n",
			[]det{{"github", detect.Tokenize, 3, ghTok}, {"password", detect.Tokenize, 53, pwTok}}},
		{"block stays", pemHeader + "\nid=" + awsKey, pemHeader + "\nid=" + awsTok,
			[]det{{"pem", detect.Block, 0, ""}, {"aws", detect.Tokenize, 35, awsTok}}},
		{"monitor stays", "host " + host, "host " + host, []det{{"host", detect.Monitor, 5, ""}}},
		{"token stays", "password=" + pwTok, "password=" + pwTok, nil},
		{"escaped token stays", `password=\_\_TAKUMO\_v1\_SECRET\_89500dca\_\_`, `password=\_\_TAKUMO\_v1\_SECRET\_89500dca\_\_`, nil},
		{"value before a token", "password=x" + awsTok, "password=" + xTok + awsTok, []det{{"password", detect.Tokenize, 9, xTok}}},
		{"token is no part of a value", "password=" + awsTok + "0", "password=" + awsTok + "0", nil},
		{"secret after a token", "password=" + awsTok + ghToken, "password=" + awsTok + ghTok, []det{{"github", detect.Tokenize, 35, ghTok}}},
		{"value around a token is tokenized whole", `secret="x ` + awsTok + `"`, `secret="` + spanTok + `"`, []det{{"quoted", detect.Tokenize, 8, spanTok}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := testVault(t, Limits{})
			res, err := tz.Tokenize(v, []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Text) != tc.out {
				t.Errorf("Text = %q\nwant   %q", res.Text, tc.out)
			}
			var got []det
			for _, d := range res.Detections {
				got = append(got, det{d.RuleID, d.Action, d.Start, d.Token})
				if d.End <= d.Start || d.End > len(tc.in) {
					t.Errorf("bad range %+v", d)
				}
			}
			if !reflect.DeepEqual(got, tc.dets) {
				t.Errorf("Detections = %+v\nwant %+v", got, tc.dets)
			}
			if res.Blocked() != strings.Contains(tc.in, pemHeader) {
				t.Errorf("Blocked = %v", res.Blocked())
			}
			// Stable: tokenizing the output changes nothing.
			again, err := tz.Tokenize(v, res.Text)
			if err != nil {
				t.Fatal(err)
			}
			if string(again.Text) != string(res.Text) {
				t.Errorf("second pass changed the text: %q", again.Text)
			}
			// And rehydration gives the input back.
			if back, _ := Rehydrate(v, res.Text, Raw); string(back) != tc.in {
				t.Errorf("round trip = %q", back)
			}
		})
	}
}

func TestTokenizeDoesNotAlias(t *testing.T) {
	tz := Tokenizer{Engine: testEngine(t)}
	in := []byte("nothing to see")
	res, err := tz.Tokenize(testVault(t, Limits{}), in)
	if err != nil {
		t.Fatal(err)
	}
	res.Text[0] = 'N'
	if in[0] != 'n' {
		t.Error("Result.Text aliases the input")
	}
	dst := []byte("prefix:")
	res, err = tz.AppendTokenize(dst, testVault(t, Limits{}), []byte(awsKey))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(res.Text), "prefix:__TAKUMO_v1_KEY_") {
		t.Errorf("AppendTokenize = %q", res.Text)
	}
}

func TestTokenizeFailsClosed(t *testing.T) {
	tz := Tokenizer{Engine: testEngine(t)}
	v := testVault(t, Limits{MaxEntries: 1})
	res, err := tz.Tokenize(v, []byte(awsKey+" "+awsKey2))
	if !errors.Is(err, ErrVaultFull) {
		t.Fatalf("err = %v, want ErrVaultFull", err)
	}
	if res.Text != nil || res.Detections != nil {
		t.Errorf("a failed Tokenize returned %q", res.Text)
	}
	if strings.Contains(err.Error(), awsKey2) {
		t.Error("error carries the value")
	}
	if _, err := (Tokenizer{}).Tokenize(v, []byte("x")); err == nil {
		t.Error("nil engine accepted")
	}
	if _, err := tz.Tokenize(nil, []byte("x")); err == nil {
		t.Error("nil vault accepted")
	}
}

// detections is tested directly for what the engine never reports
// (overlaps, disorder, bad ranges) but the tokenizer must still survive.
func TestDetections(t *testing.T) {
	const tok = "__TAKUMO_v1_KEY_8f3a2b1c__"
	text := []byte("0123456789 " + tok + " abcdefghij")
	tokStart := 11
	f := func(rule string, a detect.Action, s, e int) detect.Finding {
		return detect.Finding{RuleID: rule, Category: detect.SECRET, Action: a, Start: s, End: e}
	}
	d := func(rule string, a detect.Action, s, e int) Detection {
		return Detection{RuleID: rule, Category: detect.SECRET, Action: a, Start: s, End: e}
	}
	tests := []struct {
		name string
		in   []detect.Finding
		want []Detection
	}{
		{"unsorted", []detect.Finding{f("b", detect.Tokenize, 5, 8), f("a", detect.Tokenize, 0, 3)},
			[]Detection{d("a", detect.Tokenize, 0, 3), d("b", detect.Tokenize, 5, 8)}},
		{"overlap merges, block wins", []detect.Finding{f("a", detect.Tokenize, 0, 5), f("b", detect.Block, 3, 8)},
			[]Detection{d("b", detect.Block, 0, 8)}},
		{"overlap merges, tokenize beats monitor", []detect.Finding{f("a", detect.Monitor, 0, 5), f("b", detect.Tokenize, 2, 4)},
			[]Detection{d("b", detect.Tokenize, 0, 5)}},
		{"off and empty dropped", []detect.Finding{f("a", detect.Off, 0, 5), f("b", detect.Tokenize, 6, 6)}, []Detection{}},
		{"empty action is tokenize", []detect.Finding{f("a", "", 0, 5)}, []Detection{d("a", detect.Tokenize, 0, 5)}},
		{"inside token dropped", []detect.Finding{f("a", detect.Tokenize, tokStart+2, tokStart+len(tok)-2)}, []Detection{}},
		{"whole token dropped", []detect.Finding{f("a", detect.Tokenize, tokStart, tokStart+len(tok))}, []Detection{}},
		{"straddling token kept", []detect.Finding{f("a", detect.Tokenize, tokStart-3, tokStart+5)},
			[]Detection{d("a", detect.Tokenize, tokStart-3, tokStart+5)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := detections(tc.in, len(text), Find(text, Raw))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	for _, bad := range []detect.Finding{f("a", detect.Tokenize, -1, 3), f("a", detect.Tokenize, 3, len(text)+1), f("a", detect.Tokenize, 5, 4)} {
		if _, err := detections([]detect.Finding{bad}, len(text), nil); err == nil {
			t.Errorf("out-of-range finding %+v accepted", bad)
		}
	}
}

func TestDetectionHasNoValue(t *testing.T) {
	tz := Tokenizer{Engine: testEngine(t)}
	res, err := tz.Tokenize(testVault(t, Limits{}), []byte("password="+password+" id="+awsKey))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Detections) != 2 {
		t.Fatalf("detections: %+v", res.Detections)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, res.Detections)
		if strings.Contains(out, password) || strings.Contains(out, awsKey) {
			t.Errorf("%s of detections shows a value: %s", verb, out)
		}
	}
	if out := string(mustJSON(res.Detections)); strings.Contains(out, password) || strings.Contains(out, awsKey) {
		t.Errorf("JSON of detections shows a value: %s", out)
	}
}
