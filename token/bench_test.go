package token

import (
	"fmt"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

// benchSource is about 100 KB of Go-like source with a few secrets in it.
func benchSource() []byte {
	var b strings.Builder
	for i := 0; b.Len() < 100<<10; i++ {
		fmt.Fprintf(&b, "func handler%d(w http.ResponseWriter, r *http.Request) {\n", i)
		fmt.Fprintf(&b, "\tlog.Printf(\"request %%s took %%v\", r.URL.Path, time.Since(start%d))\n", i)
		switch i % 400 {
		case 100:
			fmt.Fprintf(&b, "\tcfg := aws.Config{AccessKeyID: %q}\n", awsKey)
		case 200:
			fmt.Fprintf(&b, "\t// password=%s\n", password)
		case 300:
			fmt.Fprintf(&b, "\tclient := github.NewClient(%q)\n", ghToken)
		}
		b.WriteString("\treturn nil\n}\n\n")
	}
	return []byte(b.String())
}

func BenchmarkTokenize100KB(b *testing.B) {
	src := benchSource()
	builtin, err := detect.New(detect.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, eng := range []struct {
		name string
		e    *detect.Engine
	}{{"test-rules", testEngine(b)}, {"builtin", builtin}} {
		b.Run(eng.name, func(b *testing.B) {
			tz := Tokenizer{Engine: eng.e}
			v := testVault(b, Limits{})
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tz.Tokenize(v, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchTokenized is benchSource tokenized with the test rules, and its vault.
func benchTokenized(b *testing.B) ([]byte, *Vault) {
	v := testVault(b, Limits{})
	res, err := Tokenizer{Engine: testEngine(b)}.Tokenize(v, benchSource())
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Detections) == 0 {
		b.Fatal("no secrets in the bench source")
	}
	return res.Text, v
}

func BenchmarkRehydrate100KB(b *testing.B) {
	text, v := benchTokenized(b)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		Rehydrate(v, text, JSONString)
	}
}

func BenchmarkStreamRehydrate64B(b *testing.B) {
	text, v := benchTokenized(b)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		sr := NewStreamRehydrator(v, JSONString)
		for rest := text; len(rest) > 0; {
			n := min(64, len(rest))
			out = sr.AppendWrite(out[:0], rest[:n])
			rest = rest[n:]
		}
		out = sr.AppendFlush(out[:0])
	}
}

// BenchmarkCopy100KB is the floor the others compare with: one copy of
// the same bytes.
func BenchmarkCopy100KB(b *testing.B) {
	src := benchSource()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		_ = append([]byte(nil), src...)
	}
}
