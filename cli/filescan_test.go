package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

func testEngine(t testing.TB) *detect.Engine {
	t.Helper()
	e, err := detect.New(detect.Options{Rules: testRules()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func scanBytes(t testing.TB, e *detect.Engine, chunk int, data []byte) []finding {
	t.Helper()
	res, err := (&fileScanner{engine: e, chunk: chunk}).scan(context.Background(), bytes.NewReader(data), -1, "f")
	if err != nil {
		t.Fatal(err)
	}
	return res.findings
}

// TestChunkEdges puts a secret at every offset around the edges of the
// first chunks and checks it is found once, at the right place, with the
// right line and column.
func TestChunkEdges(t *testing.T) {
	e := testEngine(t)
	const chunk = 1024 // margin 256: edges of reporting at 768, 1280+…
	filler := []byte(strings.Repeat("abc def\n", 400))
	for off := 700; off < 1400; off++ {
		data := append(append(append([]byte(nil), filler[:off]...), awsKey1...), filler[off:]...)
		got := scanBytes(t, e, chunk, data)
		if len(got) != 1 {
			t.Fatalf("secret at %d: %d findings %+v", off, len(got), got)
		}
		f := got[0]
		line, col := detect.LineCol(data, off)
		if f.Start != int64(off) || f.End != int64(off+len(awsKey1)) || f.Line != line || f.Column != col {
			t.Fatalf("secret at %d: got [%d,%d) %d:%d, want [%d,%d) %d:%d",
				off, f.Start, f.End, f.Line, f.Column, off, off+len(awsKey1), line, col)
		}
	}
}

func TestChunkedEqualsWhole(t *testing.T) {
	e := testEngine(t)
	var b strings.Builder
	for i := range 300 {
		fmt.Fprintf(&b, "line %d ünï ", i)
		switch i % 7 {
		case 0:
			b.WriteString("key=" + awsKey1)
		case 3:
			b.WriteString("tok " + ghToken1 + " host " + host1)
		}
		b.WriteString("\r\n")
	}
	data := []byte(b.String())
	whole := scanBytes(t, e, len(data)+1, data)
	if len(whole) != 3*43 {
		t.Fatalf("whole scan found %d, want 129", len(whole))
	}
	for _, chunk := range []int{1024, 1500, 4096, 5000} {
		got := scanBytes(t, e, chunk, data)
		if fmt.Sprint(got) != fmt.Sprint(whole) {
			t.Errorf("chunk %d: findings differ from the whole-file scan (%d vs %d)", chunk, len(got), len(whole))
		}
	}
}

// FuzzChunkedScan checks that any content and chunk size give the findings
// of one whole read.
func FuzzChunkedScan(f *testing.F) {
	f.Add([]byte("x "+awsKey1+"\n"), uint16(0), uint16(100))
	f.Add([]byte(ghToken1+" "+host1), uint16(3000), uint16(900))
	f.Add([]byte("\xff\xfe\r\n"+awsKey2), uint16(1100), uint16(10))
	e := testEngine(f)
	f.Fuzz(func(t *testing.T, seed []byte, chunkExtra, reps uint16) {
		// Repeat the seed so the content crosses chunk edges.
		data := bytes.Repeat(append(seed, ' '), int(reps%200)+1)
		if bytes.IndexByte(data[:min(len(data), binarySniffLen)], 0) >= 0 {
			return // binary: skipped either way
		}
		chunk := minChunk + int(chunkExtra)
		whole := scanBytes(t, e, len(data)+1, data)
		got := scanBytes(t, e, chunk, data)
		if fmt.Sprint(got) != fmt.Sprint(whole) {
			t.Errorf("chunk %d, %d bytes: chunked %v\nwhole %v", chunk, len(data), got, whole)
		}
	})
}

func TestMaskPreview(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "…"},
		{"abc", "…"},
		{"abcdefg", "a…"},
		{"abcdefghijklmnop", "abcd…"},
		{awsKey1, "AKIA…"},
		{"ééééé", "é…"}, // 10 bytes: 2 allowed, one character
		{"\x00\x01\x02\x03\x04\x05\x06\x07", "??…"},
		{"a\xffbcdefgh", "a?…"},
	} {
		got := maskPreview([]byte(tc.in))
		if got != tc.want {
			t.Errorf("maskPreview(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if shown := strings.TrimSuffix(got, "…"); len(shown) > len(tc.in)/4 && tc.in != "" {
			t.Errorf("maskPreview(%q) shows %d bytes, more than a quarter", tc.in, len(shown))
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1024", 1024, true},
		{"64MiB", 64 << 20, true},
		{"64M", 64 << 20, true},
		{"2k", 2048, true},
		{"1 GB", 1 << 30, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-5", 0, false},
		{"12parsecs", 0, false},
		{"99999999999G", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
