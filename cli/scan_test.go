package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/takumo/aegis/detect"
)

// fixtureTree is the tree the golden tests scan. Line and column of each
// secret are checked against the JSON report in TestScanJSONOffsets.
var fixtureTree = map[string]string{
	".gitignore": "ignored/\n*.log\n",
	"config/app.env": "# service settings\n" +
		"AWS_ACCESS_KEY_ID=" + awsKey1 + "\n" +
		"DB_HOST=" + host1 + "\n",
	"src/main.go":      "package main\n\nconst token = \"" + ghToken1 + "\"\n\nfunc main() {}\n",
	"src/clean.go":     "package main\n\n// Nothing to see here: AKIA alone is not a key.\n",
	"src/.gitignore":   "!keep.log\n",
	"src/keep.log":     "deploy with " + awsKey2 + "\n",
	"debug.log":        "token " + ghToken2 + "\n",
	"ignored/leak.txt": awsKey3 + "\n",
	"crlf.txt":         "\uFEFFline one\r\nline two\r\nkey=" + awsKey2 + "\r\n",
	"utf8/ünïcode.txt": "naïve café: " + ghToken3 + " ✓\n",
}

// newFixture writes fixtureTree into a temp dir, plus what cannot live in
// a map of text files: a binary file and a .git directory, both holding
// secrets that must not be reported.
func newFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir, fixtureTree)
	writeTree(t, dir, map[string]string{
		"bin/blob.dat":  "\x7fELF\x00\x01" + awsKey3,
		".git/config":   "[core]\n",
		".git/ORIG_KEY": awsKey3 + "\n",
	})
	return dir
}

func TestScanGolden(t *testing.T) {
	gd := goldenDir(t)
	dir := newFixture(t)
	t.Chdir(filepath.Dir(dir)) // paths in the output start at the argument
	const arg = "tree"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"scan.text.golden", []string{"scan", arg}},
		{"scan.show-monitor.text.golden", []string{"scan", "--show-monitor", arg}},
		{"scan.json.golden", []string{"scan", "--format", "json", arg}},
		{"scan.sarif.golden", []string{"scan", arg, "--format=sarif"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", tc.args...)
			if r.code != ExitFindings {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", r.code, ExitFindings, r.stderr)
			}
			if r.stderr != "" {
				t.Errorf("unexpected stderr:\n%s", r.stderr)
			}
			golden(t, gd, tc.name, r.stdout)
		})
	}
}

// TestScanJSONOffsets checks every reported offset against the file: the
// bytes at [start, end) are the secret, and line and column agree with
// detect.LineCol.
func TestScanJSONOffsets(t *testing.T) {
	dir := newFixture(t)
	r := run(t, "", "scan", "--format", "json", dir)
	var rep jsonReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, r.stdout)
	}
	want := map[string]string{ // path → secret
		"config/app.env":   awsKey1,
		"src/main.go":      ghToken1,
		"src/keep.log":     awsKey2,
		"crlf.txt":         awsKey2,
		"utf8/ünïcode.txt": ghToken3,
	}
	got := map[string]string{}
	for _, f := range rep.Findings {
		rel, err := filepath.Rel(dir, f.Path)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		value := string(data[f.Start:f.End])
		line, col := detect.LineCol(data, int(f.Start))
		if line != f.Line || col != f.Column {
			t.Errorf("%s: line:col %d:%d, detect.LineCol says %d:%d", rel, f.Line, f.Column, line, col)
		}
		if f.Action == string(detect.Monitor) {
			if value != host1 || f.Category != "HOST" {
				t.Errorf("%s: monitor finding %q/%s, want the host", rel, value, f.Category)
			}
			continue
		}
		got[filepath.ToSlash(rel)] = value
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("findings by file:\n got %v\nwant %v", got, want)
	}
	if rep.FilesScanned != 8 || rep.FilesSkipped != 1 {
		t.Errorf("files scanned/skipped = %d/%d, want 8/1 (.gitignore files are text too)", rep.FilesScanned, rep.FilesSkipped)
	}
	var total int64
	for name, c := range fixtureTree {
		if name == "debug.log" || strings.HasPrefix(name, "ignored/") {
			continue
		}
		total += int64(len(c))
	}
	if rep.BytesScanned != total {
		t.Errorf("bytes_scanned = %d, want %d", rep.BytesScanned, total)
	}
}

func TestScanJSONEmptyFindings(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.txt": "nothing here\n"})
	r := run(t, "", "scan", "--format", "json", dir)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `"findings": []`) {
		t.Errorf("findings should be [] when empty:\n%s", r.stdout)
	}
}

func TestScanExitCodes(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"clean/a.txt":   "hello\n",
		"leak/a.txt":    "k=" + awsKey1 + "\n",
		"monitor/a.txt": "host " + host1 + "\n",
		"empty/":        "",
	})
	p := func(s string) string { return filepath.Join(dir, s) }
	for _, tc := range []struct {
		name   string
		args   []string
		want   int
		stderr string // substring
	}{
		{"clean", []string{"scan", p("clean")}, ExitOK, ""},
		{"secret", []string{"scan", p("leak")}, ExitFindings, ""},
		{"monitor only", []string{"scan", p("monitor")}, ExitOK, ""},
		{"monitor shown still 0", []string{"scan", "--show-monitor", p("monitor")}, ExitOK, ""},
		{"empty dir", []string{"scan", p("empty")}, ExitOK, ""},
		{"missing path", []string{"scan", p("nope")}, ExitError, `no such file or directory "` + p("nope") + `" (check the path)`},
		{"missing among good", []string{"scan", p("clean"), p("nope")}, ExitError, "check the path"},
		{"no args", []string{"scan"}, ExitError, "no path given"},
		{"bad format", []string{"scan", "--format", "xml", p("clean")}, ExitError, `unknown --format "xml"`},
		{"unknown flag", []string{"scan", "--colour", p("clean")}, ExitError, "unknown flag"},
		{"stdin twice", []string{"scan", "-", "-"}, ExitError, "more than once"},
		{"bad size", []string{"scan", "--max-file-size", "lots", p("clean")}, ExitError, "not a size"},
		{"tiny size", []string{"scan", "--max-file-size", "10", p("clean")}, ExitError, "too small"},
		{"bad glob", []string{"scan", "--ignore", "[a-", p("clean")}, ExitError, "malformed pattern"},
		{"unknown command", []string{"scna"}, ExitError, `unknown command "scna"`},
		{"policy missing", []string{"scan", "--policy", p("nope.yaml"), p("clean")}, ExitError, "nope.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", tc.args...)
			if r.code != tc.want {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.want, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
			if tc.want == ExitError && r.stderr == "" {
				t.Error("an error exit must say why on stderr")
			}
		})
	}
}

func TestScanStdin(t *testing.T) {
	r := run(t, "first line\nexport AWS_ACCESS_KEY_ID="+awsKey1+"\n", "scan", "--format", "json", "-")
	if r.code != ExitFindings {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	want := []jsonFinding{{Path: "-", Line: 2, Column: 26, Start: 36, End: 56, Rule: "aws-access-key-id", Category: "KEY", Action: "tokenize"}}
	if fmt.Sprint(rep.Findings) != fmt.Sprint(want) {
		t.Errorf("findings %+v, want %+v", rep.Findings, want)
	}
	if rep.FilesScanned != 1 {
		t.Errorf("files_scanned %d, want 1", rep.FilesScanned)
	}
}

// scanPaths runs scan --format json and returns the paths with findings,
// relative to dir, sorted.
func scanPaths(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	r := run(t, "", append([]string{"scan", "--format", "json"}, args...)...)
	if r.code == ExitError {
		t.Fatalf("exit 2: %s", r.stderr)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range rep.Findings {
		rel, err := filepath.Rel(dir, f.Path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, filepath.ToSlash(rel))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestScanGitignore(t *testing.T) {
	leak := "k=" + awsKey1 + "\n"
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".git/HEAD":          "ref: refs/heads/main\n",
		".gitignore":         "*.log\nbuild/\n/rooted.txt\n",
		"a.log":              leak,
		"rooted.txt":         leak,
		"build/out.txt":      leak,
		"src/rooted.txt":     leak, // "/rooted.txt" is anchored to the top
		"src/app.txt":        leak,
		"src/.gitignore":     "!keep.log\nsecret-*\n",
		"src/keep.log":       leak,
		"src/secret-1.txt":   leak,
		"src/deep/x.log":     leak,
		"src/deep/keep.log":  leak, // "!keep.log" has no slash: any depth below src
		"other/secret-1.txt": leak, // src/.gitignore does not reach here
	})
	all := []string{"src/app.txt", "src/deep/keep.log", "src/keep.log", "src/rooted.txt", "other/secret-1.txt"}
	slices.Sort(all)

	t.Run("from the top", func(t *testing.T) {
		got := scanPaths(t, dir, dir)
		if fmt.Sprint(got) != fmt.Sprint(all) {
			t.Errorf("got %v\nwant %v", got, all)
		}
	})
	t.Run("parent .gitignore applies to a subdirectory argument", func(t *testing.T) {
		got := scanPaths(t, dir, filepath.Join(dir, "src"))
		want := []string{"src/app.txt", "src/deep/keep.log", "src/keep.log", "src/rooted.txt"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %v\nwant %v", got, want)
		}
	})
	t.Run("no-gitignore", func(t *testing.T) {
		got := scanPaths(t, dir, "--no-gitignore", dir)
		if len(got) != 10 {
			t.Errorf("got %d files %v, want all 10", len(got), got)
		}
	})
	t.Run("explicit file argument is scanned even if ignored", func(t *testing.T) {
		got := scanPaths(t, dir, filepath.Join(dir, "a.log"))
		if fmt.Sprint(got) != "[a.log]" {
			t.Errorf("got %v", got)
		}
	})
}

func TestScanIgnoreFlag(t *testing.T) {
	leak := "k=" + awsKey1 + "\n"
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"app.min.js":          leak,
		"app.js":              leak,
		"vendor/lib/x.go":     leak,
		"src/vendor/y.go":     leak,
		"testdata/a/b.txt":    leak,
		"src/testdata/c.txt":  leak,
		"docs/readme.md":      leak,
		"docs/deep/readme.md": leak,
	})
	for _, tc := range []struct {
		globs []string
		want  []string
	}{
		{nil, []string{"app.js", "app.min.js", "docs/deep/readme.md", "docs/readme.md", "src/testdata/c.txt", "src/vendor/y.go", "testdata/a/b.txt", "vendor/lib/x.go"}},
		{[]string{"*.min.js"}, []string{"app.js", "docs/deep/readme.md", "docs/readme.md", "src/testdata/c.txt", "src/vendor/y.go", "testdata/a/b.txt", "vendor/lib/x.go"}},
		// a base name matches at any depth
		{[]string{"vendor"}, []string{"app.js", "app.min.js", "docs/deep/readme.md", "docs/readme.md", "src/testdata/c.txt", "testdata/a/b.txt"}},
		// with a slash: relative to the argument
		{[]string{"testdata/**"}, []string{"app.js", "app.min.js", "docs/deep/readme.md", "docs/readme.md", "src/testdata/c.txt", "src/vendor/y.go", "vendor/lib/x.go"}},
		{[]string{"docs/*.md", "*.js"}, []string{"docs/deep/readme.md", "src/testdata/c.txt", "src/vendor/y.go", "testdata/a/b.txt", "vendor/lib/x.go"}},
		{[]string{"**/readme.md"}, []string{"app.js", "app.min.js", "src/testdata/c.txt", "src/vendor/y.go", "testdata/a/b.txt", "vendor/lib/x.go"}},
	} {
		t.Run(strings.Join(tc.globs, ","), func(t *testing.T) {
			args := []string{}
			for _, g := range tc.globs {
				args = append(args, "--ignore", g)
			}
			got := scanPaths(t, dir, append(args, dir)...)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestScanNoRecursive(t *testing.T) {
	leak := "k=" + awsKey1 + "\n"
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"top.txt": leak, "sub/deep.txt": leak})
	if got := scanPaths(t, dir, "--no-recursive", dir); fmt.Sprint(got) != "[top.txt]" {
		t.Errorf("--no-recursive: got %v", got)
	}
	if got := scanPaths(t, dir, dir); fmt.Sprint(got) != "[sub/deep.txt top.txt]" {
		t.Errorf("recursive: got %v", got)
	}
}

func TestScanSkipsAndWarnings(t *testing.T) {
	leak := "k=" + awsKey1 + "\n"
	dir := t.TempDir()
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"linked/secret.txt": leak})
	writeTree(t, dir, map[string]string{
		"binary.bin":      "GIF89a\x00\x00" + leak,                     // NUL early: binary
		"late-nul.txt":    strings.Repeat("x", 9000) + "\x00\n" + leak, // NUL after 8 KB: text
		".git/objects/aa": leak,                                        // .git skipped
		"sub/.git":        "gitdir: ../.git/worktrees/sub\n" + leak,    // .git file (worktree) skipped
		"real.txt":        leak,
	})
	mustSymlink(t, filepath.Join(outside, "linked"), filepath.Join(dir, "dirlink"))    // not followed
	mustSymlink(t, filepath.Join(dir, "real.txt"), filepath.Join(dir, "filelink.txt")) // followed
	mustSymlink(t, filepath.Join(dir, "gone.txt"), filepath.Join(dir, "broken.txt"))   // warning
	mustSymlink(t, filepath.Join(dir, "loop.txt"), filepath.Join(dir, "loop.txt"))     // warning: too many links
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked.txt")
	writeTree(t, dir, map[string]string{"locked.txt": leak})
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}

	r := run(t, "", "scan", "--format", "json", dir)
	if r.code != ExitFindings {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, filepath.Base(f.Path))
	}
	want := []string{"filelink.txt", "late-nul.txt", "real.txt"}
	if os.Geteuid() == 0 {
		// root reads a mode-000 file; that case is asserted for other users
		// below, and the loop and FIFO warnings cover "unreadable" here.
		want = []string{"filelink.txt", "late-nul.txt", "locked.txt", "real.txt"}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("findings in %v, want %v", got, want)
	}
	if rep.FilesSkipped != 1 {
		t.Errorf("files_skipped = %d, want 1 (binary.bin)", rep.FilesSkipped)
	}
	for _, w := range []string{
		filepath.Join(dir, "broken.txt") + ": broken symlink, skipped",
		filepath.Join(dir, "loop.txt") + ": too many levels of symbolic links, skipped",
		filepath.Join(dir, "fifo") + ": not a regular file (named pipe), skipped",
	} {
		if !strings.Contains(r.stderr, "warning: "+w+"\n") {
			t.Errorf("stderr lacks warning %q:\n%s", w, r.stderr)
		}
	}
	if os.Geteuid() != 0 && !strings.Contains(r.stderr, "warning: "+locked+": permission denied") {
		t.Errorf("stderr lacks the permission warning:\n%s", r.stderr)
	}
}

func TestScanNothingReadable(t *testing.T) {
	dir := t.TempDir()
	mustSymlink(t, filepath.Join(dir, "gone"), filepath.Join(dir, "broken.txt"))
	r := run(t, "", "scan", dir)
	if r.code != ExitError {
		t.Errorf("exit %d, want 2 when nothing could be scanned; stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "nothing could be scanned") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestScanDeterministicOrder(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for i := range 60 {
		files[fmt.Sprintf("d%d/f%02d.txt", i%4, i)] = fmt.Sprintf("a %s\nb %s\n", awsKey1, ghToken1)
	}
	writeTree(t, dir, files)
	first := run(t, "", "scan", dir)
	for range 3 {
		again := run(t, "", "scan", dir)
		if again.stdout != first.stdout {
			t.Fatal("output order changed between runs")
		}
	}
	lines := strings.Split(strings.TrimSpace(first.stdout), "\n")
	lines = lines[:len(lines)-1] // summary
	if len(lines) != 120 || !slices.IsSorted(lines) {
		t.Errorf("want 120 findings sorted by path then offset, got %d:\n%s", len(lines), first.stdout)
	}
}

func TestScanEncodings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prefix    string
		line, col int
	}{
		{"invalid UTF-8", "\xff\xfe\xfd bad \xc3\x28 bytes\n\x80", 2, 2},
		{"CRLF and BOM", "\uFEFFone\r\ntwo\r\nx=", 3, 3},
		{"NUL after the sniffed prefix", strings.Repeat("y", binarySniffLen) + "\x00\n", 2, 1},
		{"no newline at all", strings.Repeat("z", 1000), 1, 1001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			content := tc.prefix + awsKey1 + "\r\n"
			writeTree(t, dir, map[string]string{"f.txt": content})
			r := run(t, "", "scan", "--format", "json", dir)
			var rep jsonReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) != 1 {
				t.Fatalf("want 1 finding, got %+v", rep.Findings)
			}
			f := rep.Findings[0]
			if f.Start != int64(len(tc.prefix)) || f.End != f.Start+int64(len(awsKey1)) {
				t.Errorf("range [%d,%d), want [%d,%d)", f.Start, f.End, len(tc.prefix), len(tc.prefix)+len(awsKey1))
			}
			if f.Line != tc.line || f.Column != tc.col {
				t.Errorf("at %d:%d, want %d:%d", f.Line, f.Column, tc.line, tc.col)
			}
			text := run(t, "", "scan", dir)
			if !strings.Contains(text.stdout, ": aws-access-key-id (KEY) AKIA…\n") {
				t.Errorf("text output:\n%s", text.stdout)
			}
		})
	}
}

// TestScanLargeOneLineFile scans a 50 MB file that is one line, with the
// secret at its very end.
func TestScanLargeOneLineFile(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 50 MB file")
	}
	dir := t.TempDir()
	const size = 50 << 20
	pad := strings.Repeat("0123456789abcdef", (size-len(awsKey1))/16)
	path := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(path, []byte(pad+"-"+awsKey1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, maxSize := range []string{"64MiB", "3MiB"} { // whole, then in chunks
		t.Run(maxSize, func(t *testing.T) {
			r := run(t, "", "scan", "--format", "json", "--max-file-size", maxSize, path)
			var rep jsonReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatal(err)
			}
			start := int64(len(pad) + 1)
			want := []jsonFinding{{Path: path, Line: 1, Column: int(start) + 1, Start: start, End: start + 20, Rule: "aws-access-key-id", Category: "KEY", Action: "tokenize"}}
			if fmt.Sprint(rep.Findings) != fmt.Sprint(want) {
				t.Errorf("got %+v\nwant %+v", rep.Findings, want)
			}
			if rep.BytesScanned != start+20 {
				t.Errorf("bytes_scanned %d, want %d", rep.BytesScanned, start+20)
			}
		})
	}
}

// TestScanDeeplyNestedJSON: scanning never parses JSON, so nesting depth
// costs nothing; a secret 200,000 levels deep is found at its exact offset.
func TestScanDeeplyNestedJSON(t *testing.T) {
	const depth = 200_000
	open := strings.Repeat(`{"a":[`, depth)
	body := open + `{"aws_access_key_id": "` + awsKey1 + `"}` + strings.Repeat("]}", depth) + "\n"
	path := filepath.Join(t.TempDir(), "nested.json")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "scan", "--format", "json", path)
	if r.code != ExitFindings {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	start := strings.Index(body, awsKey1)
	if len(rep.Findings) != 1 || rep.Findings[0].Start != int64(start) || rep.Findings[0].End != int64(start+len(awsKey1)) {
		t.Fatalf("findings %+v, want one at %d", rep.Findings, start)
	}
}
