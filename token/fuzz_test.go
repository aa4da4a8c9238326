package token

import (
	"bytes"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

// tokenizeSeeds are the inputs of the tokenizer's table cases and a few
// that sit secrets next to token syntax.
func tokenizeSeeds() []string {
	awsTok := "__TAKUMO_v1_KEY_5c940c53__" // awsKey under the test key
	return []string{
		"", "plain text, no secrets",
		"id=" + awsKey + ";", awsKey + " " + awsKey,
		"gh=" + ghToken + "\npassword=" + password + "\n",
		pemHeader + "\nid=" + awsKey, "host db-7.internal.example.com",
		"password=" + awsTok, `password=\_\_TAKUMO\_v1\_SECRET\_89500dca\_\_`,
		"password=x" + awsTok, `\` + awsKey, `\_` + awsKey, "__" + awsKey + "__",
		"__TAKUMO_v1_KEY_" + awsKey, "password=" + awsKey + awsTok,
		`{"password":"` + password + `","id":"` + awsKey + `"}`,
	}
}

func FuzzTokenizeRoundTrip(f *testing.F) {
	for _, s := range tokenizeSeeds() {
		f.Add(s)
	}
	tz := Tokenizer{Engine: testEngine(f)}
	key := testKey(f)
	f.Fuzz(func(t *testing.T, in string) {
		v, err := NewVault(key, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := tz.Tokenize(v, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		// The output is the input with exactly the Tokenize spans replaced.
		var want []byte
		var residual [][]byte // input outside the replaced spans
		prev := 0
		for i, d := range res.Detections {
			if d.Start < prev || d.End <= d.Start || d.End > len(in) {
				t.Fatalf("detection %d out of order or range: %+v", i, d)
			}
			if (d.Action == detect.Tokenize) != (d.Token != "") {
				t.Fatalf("detection %d: action %s with token %q", i, d.Action, d.Token)
			}
			if d.Token == "" {
				continue
			}
			want = append(want, in[prev:d.Start]...)
			want = append(want, d.Token...)
			residual = append(residual, []byte(in[prev:d.Start]))
			prev = d.End
		}
		want = append(want, in[prev:]...)
		residual = append(residual, []byte(in[prev:]))
		if !bytes.Equal(res.Text, want) {
			t.Fatalf("Text = %q\nwant   %q", res.Text, want)
		}
		// Round trip, byte-exact. A token already in the input that the
		// vault now knows (a seed builds one on purpose) is rehydrated like
		// any other, so then the reference is rehydrate(x) itself, unless a
		// replaced span swallowed that token.
		back, st := Rehydrate(v, res.Text, Raw)
		ref := []byte(in)
		if known, swallowed := knownTokens(v, in, res.Detections); known && !swallowed {
			ref, _ = Rehydrate(v, ref, Raw)
		}
		if !bytes.Equal(back, ref) {
			t.Fatalf("rehydrate(tokenize(x)) = %q\nwant %q", back, ref)
		}
		if n := countTokens(res.Detections); st.Replaced < n {
			t.Fatalf("replaced %d of %d tokens", st.Replaced, n)
		}
		// A format-rule secret (its alphabet cannot overlap a token's
		// edges) is gone from the output unless the input also had it
		// outside every replaced span.
		for _, d := range res.Detections {
			if d.Token == "" || (d.RuleID != "aws" && d.RuleID != "github") {
				continue
			}
			val := []byte(in[d.Start:d.End])
			if bytes.Contains(res.Text, val) && !containsAny(residual, val) {
				t.Fatalf("value of %s still in the output: %q", d.RuleID, res.Text)
			}
		}
		// Stable: a second pass changes nothing.
		again, err := tz.Tokenize(v, res.Text)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Text, res.Text) {
			t.Fatalf("second pass: %q\nfirst: %q", again.Text, res.Text)
		}
	})
}

// knownTokens reports whether in holds tokens v knows, and whether one of
// them lies in a replaced span.
func knownTokens(v *Vault, in string, ds []Detection) (known, swallowed bool) {
	for _, m := range Find([]byte(in), Raw) {
		if _, ok := v.Value(m.Token); !ok {
			continue
		}
		known = true
		for _, d := range ds {
			if d.Token != "" && d.Start < m.End && m.Start < d.End {
				swallowed = true
			}
		}
	}
	return known, swallowed
}

func countTokens(ds []Detection) int {
	n := 0
	for _, d := range ds {
		if d.Token != "" {
			n++
		}
	}
	return n
}

func containsAny(pieces [][]byte, v []byte) bool {
	for _, p := range pieces {
		if bytes.Contains(p, v) {
			return true
		}
	}
	return false
}

// streamVault holds the tokens the stream seeds use.
func streamVault(t testing.TB) (*Vault, []string) {
	v := testVault(t, Limits{})
	return v, []string{
		mustToken(t, v, detect.KEY, awsKey),
		mustToken(t, v, detect.SECRET, tricky),
		mustToken(t, v, detect.TOKEN, ghToken),
	}
}

func FuzzStreamChunking(f *testing.F) {
	v, toks := streamVault(f)
	md := func(tok, esc string) string { return strings.ReplaceAll(tok, "_", esc+"_") }
	seeds := []string{
		"a " + toks[0] + " b" + toks[1] + "__TAKUMO_v1_KEY_deadbeef__ end_",
		"x" + md(toks[0], `\`) + "y\\" + toks[2] + "_",
		`{"t":"` + toks[1] + `\n` + md(toks[0], `\\`) + `"}`,
		`{\"k\":\"` + toks[1] + `\"}` + md(toks[2], `\\\\`),
		"__TAKUMO_v1_KEY_8f3a2b1__ __TAKUMO_v1_SECRE __TAK _",
		`\_\_` + toks[0][2:len(toks[0])-2] + `\_\_` + toks[0],
	}
	for i, s := range seeds {
		f.Add([]byte(s), []byte{1, 7, 30, 2}, uint8(i))
	}
	f.Fuzz(func(t *testing.T, text, sizes []byte, mode uint8) {
		esc := Escaping(mode % 3)
		want, wantSt := Rehydrate(v, text, esc)
		var chunks [][]byte
		for i, rest := 0, text; len(rest) > 0; i++ {
			n := len(rest)
			if len(sizes) > 0 {
				n = min(n, int(sizes[i%len(sizes)])%100+1)
			}
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		got, st := streamAll(t, v, esc, chunks)
		if !bytes.Equal(got, want) {
			t.Fatalf("%v, chunks %q:\n got %q\nwant %q", esc, chunks, got, want)
		}
		if st.Replaced != wantSt.Replaced || st.Unknown != wantSt.Unknown {
			t.Fatalf("stats %+v, want %+v", st, wantSt)
		}
	})
}

func FuzzJSONEscaping(f *testing.F) {
	for _, s := range []string{password, tricky, `\u0041`, `"}]`, "\u2028\u2029", "a\x00b", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		// JSON strings carry UTF-8 only (see Escaping); a token stands for
		// a non-empty value.
		checkJSONRoundTrip(t, "v"+strings.ToValidUTF8(value, "\uFFFD"))
	})
}
