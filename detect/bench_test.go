package detect

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Speed benchmarks for DESIGN §12 (100 KB of source code well under 1 ms on
// one core). Inputs:
//
//   - source code: the Go standard library's net/http package, read from
//     GOROOT at benchmark time (present wherever Go is), with a corpus file
//     carrying planted secrets spliced in every 32 KB so the confirmation
//     and validation paths run too, as they would on a real prompt;
//   - prose: testdata/bench/prose.txt repeated (keyword-poor text).
//
// When GOROOT cannot be found the corpus itself stands in for source code,
// and the benchmark says so in its log.
//
// Run: go test ./detect -run '^$' -bench . -benchmem

const benchSpliceEvery = 32 << 10

var benchInputs struct {
	once   sync.Once
	source []byte // at least 1 MB of code with secrets spliced in
	prose  []byte // the prose sample, unrepeated
	origin string
	err    error
}

func loadBenchInputs(b *testing.B) (source, prose []byte) {
	b.Helper()
	benchInputs.once.Do(func() {
		prose, err := os.ReadFile("../testdata/bench/prose.txt")
		if err != nil {
			benchInputs.err = err
			return
		}
		benchInputs.prose = prose
		benchInputs.source, benchInputs.origin, benchInputs.err = buildSource(b.Context(), 1<<20)
	})
	if benchInputs.err != nil {
		b.Fatalf("bench inputs: %v", benchInputs.err)
	}
	b.Logf("source input: %s", benchInputs.origin)
	return benchInputs.source, benchInputs.prose
}

// buildSource returns at least n bytes of Go source with corpus files that
// carry secrets spliced in every benchSpliceEvery bytes.
func buildSource(ctx context.Context, n int) ([]byte, string, error) {
	secrets, err := corpusWithSecrets()
	if err != nil {
		return nil, "", err
	}
	code, origin := goSource(ctx)
	if len(code) == 0 {
		code, origin = bytes.Join(secrets, []byte("\n")), "testdata/corpus (GOROOT not found)"
	}
	out := make([]byte, 0, n+64<<10)
	next, si := benchSpliceEvery, 0
	for len(out) < n {
		for _, line := range bytes.SplitAfter(code, []byte("\n")) {
			out = append(out, line...)
			if len(out) >= next {
				out = append(out, secrets[si%len(secrets)]...)
				si++
				next = len(out) + benchSpliceEvery
			}
			if len(out) >= n {
				break
			}
		}
	}
	return out, origin, nil
}

// goSource concatenates GOROOT/src/net/http/*.go in name order.
func goSource(ctx context.Context) ([]byte, string) {
	root := os.Getenv("GOROOT")
	if root == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
		if err != nil {
			return nil, ""
		}
		root = strings.TrimSpace(string(out))
	}
	dir := filepath.Join(root, "src", "net", "http")
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(names) == 0 {
		return nil, ""
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, ""
		}
		buf.Write(data)
	}
	return buf.Bytes(), dir + "/*.go"
}

// corpusWithSecrets returns the contents of the corpus's source-code files
// (most of which carry planted secrets), in name order.
func corpusWithSecrets() ([][]byte, error) {
	var out [][]byte
	for _, dir := range []string{"go", "python", "js", "ts", "java", "rust"} {
		err := filepath.WalkDir(filepath.Join("../testdata/corpus", dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out = append(out, data)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, os.ErrNotExist
	}
	return out, nil
}

func repeatTo(sample []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		k := min(len(sample), n-len(out))
		out = append(out, sample[:k]...)
	}
	return out
}

func benchDetect(b *testing.B, input []byte) {
	b.Helper()
	e, err := New(Options{})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	dst := e.AppendDetect(nil, input) // warm up, and size the result slice
	found := len(dst)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = e.AppendDetect(dst[:0], input)
	}
	b.ReportMetric(float64(found), "findings/op")
}

// BenchmarkDetect100KB is the §12 budget case: 100 KB of source code.
func BenchmarkDetect100KB(b *testing.B) {
	src, _ := loadBenchInputs(b)
	benchDetect(b, src[:100<<10])
}

// BenchmarkDetect1MB shows that cost grows linearly with input size.
func BenchmarkDetect1MB(b *testing.B) {
	src, _ := loadBenchInputs(b)
	benchDetect(b, src[:1<<20])
}

// BenchmarkDetect100KBProse is keyword-poor text: the floor of the engine's cost.
func BenchmarkDetect100KBProse(b *testing.B) {
	_, prose := loadBenchInputs(b)
	benchDetect(b, repeatTo(prose, 100<<10))
}

// BenchmarkDetectCorpus runs over the whole accuracy corpus concatenated:
// configuration-heavy text dense with secrets and near-misses.
func BenchmarkDetectCorpus(b *testing.B) {
	var all []byte
	err := filepath.WalkDir("../testdata/corpus", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == corpusLabelFile {
			return err
		}
		data, err := os.ReadFile(path)
		all = append(all, data...)
		all = append(all, '\n')
		return err
	})
	if err != nil {
		b.Fatalf("read corpus: %v", err)
	}
	benchDetect(b, all)
}

// BenchmarkDetect100KBParallel measures throughput with every core busy,
// one shared engine (it is documented as safe for concurrent use).
func BenchmarkDetect100KBParallel(b *testing.B) {
	src, _ := loadBenchInputs(b)
	input := src[:100<<10]
	e, err := New(Options{})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var dst []Finding
		for pb.Next() {
			dst = e.AppendDetect(dst[:0], input)
		}
	})
}
