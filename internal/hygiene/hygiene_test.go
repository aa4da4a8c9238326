package hygiene

import (
	"bytes"
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// moduleRoot is the module's root relative to this package's directory,
// where go test runs.
const moduleRoot = "../.."

// generatedRE is the marker of generated Go files (go help generate).
var generatedRE = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

// todoOwnerRE matches a TODO attributed to someone, "TODO(" followed by a
// name, the Go convention for a person's handle. The project names no
// people; a TODO says what is left to do, not who is to do it. A TODO
// pointing at an issue, TODO(#12), is not attributed to anyone.
var todoOwnerRE = regexp.MustCompile(`TODO` + `\([A-Za-z][^)\n]*\)`)

// skipDir reports whether the walk leaves out the directory at p (a path
// relative to the module root): test data, hidden directories, the pinned
// tools module and any other nested module.
func skipDir(fsys fs.FS, p string) bool {
	if p == "." {
		return false
	}
	base := path.Base(p)
	if base == "testdata" || base == "vendor" || p == "tools" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") {
		return true
	}
	_, err := fs.Stat(fsys, path.Join(p, "go.mod"))
	return err == nil
}

// goFile is one .go file of the module.
type goFile struct {
	path string
	src  []byte
}

// goFiles returns the module's .go files in walk order.
func goFiles(fsys fs.FS) ([]goFile, error) {
	var files []goFile
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDir(fsys, p) {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, goFile{path: p, src: src})
		return nil
	})
	return files, err
}

// undocumented returns "dir (package name)" for every package whose
// non-test files carry no package doc comment, sorted.
func undocumented(files []goFile) ([]string, error) {
	documented := map[string]bool{} // "dir (name)" → has a doc comment
	var errs []error
	for _, f := range files {
		if strings.HasSuffix(f.path, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		af, err := parser.ParseFile(fset, f.path, f.src, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		key := path.Dir(f.path) + " (package " + af.Name.Name + ")"
		documented[key] = documented[key] || (af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "")
	}
	var missing []string
	for key, ok := range documented {
		if !ok {
			missing = append(missing, key)
		}
	}
	slices.Sort(missing)
	return missing, errors.Join(errs...)
}

// ownedTODOs returns "path:line: text" for every TODO attributed to
// someone in a file that is not generated.
func ownedTODOs(files []goFile) []string {
	var found []string
	for _, f := range files {
		if generatedRE.Match(f.src) {
			continue
		}
		for i, line := range bytes.Split(f.src, []byte("\n")) {
			if m := todoOwnerRE.Find(line); m != nil {
				found = append(found, f.path+":"+strconv.Itoa(i+1)+": "+string(m))
			}
		}
	}
	return found
}

func moduleFiles(t *testing.T) []goFile {
	t.Helper()
	fsys := os.DirFS(moduleRoot)
	mod, err := fs.ReadFile(fsys, "go.mod")
	if err != nil || !bytes.Contains(mod, []byte("module github.com/takumo/aegis\n")) {
		t.Fatalf("%s is not the module root (go.mod: %v)", moduleRoot, err)
	}
	files, err := goFiles(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(files, func(f goFile) bool { return f.path == "detect/engine.go" }) {
		t.Fatalf("the walk of %s missed detect/engine.go; is it the module root?", moduleRoot)
	}
	return files
}

func TestPackagesHaveDocComments(t *testing.T) {
	missing, err := undocumented(moduleFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Errorf("%s has no package doc comment (// Package name ... before the package clause of one non-test file)", m)
	}
}

func TestNoTODOsNamingSomeone(t *testing.T) {
	for _, f := range ownedTODOs(moduleFiles(t)) {
		t.Errorf("%s: a TODO names who, not what; drop the name", f)
	}
}

// TestChecksOnFakeTree shows that both checks can fail, on a tree made up
// for the purpose.
func TestChecksOnFakeTree(t *testing.T) {
	todo := "TODO" + "(" // split so this file does not match itself
	fsys := fstest.MapFS{
		"go.mod":             {Data: []byte("module example.test\n")},
		"good/a.go":          {Data: []byte("// Package good is documented.\npackage good\n")},
		"good/b.go":          {Data: []byte("package good\n")},
		"good/b_test.go":     {Data: []byte("package good\n\n// " + todo + "someone): not looked at: a test file\n")},
		"bare/a.go":          {Data: []byte("package bare\n\n// " + todo + "someone): finish\n")},
		"bare/a_test.go":     {Data: []byte("// Package bare is documented only in a test.\npackage bare\n")},
		"issue/a.go":         {Data: []byte("// Package issue is documented.\npackage issue\n\n// " + todo + "#12): an issue, not a person\n")},
		"gen/a.go":           {Data: []byte("// Code generated by hand. DO NOT EDIT.\n\n// Package gen is generated.\npackage gen\n\n// " + todo + "someone): generated\n")},
		"cmd/tool/main.go":   {Data: []byte("package main\n")},
		"good/testdata/x.go": {Data: []byte("package x\n")},
		"tools/tools.go":     {Data: []byte("package tools\n")},
		"nested/go.mod":      {Data: []byte("module example.test/nested\n")},
		"nested/a.go":        {Data: []byte("package nested\n")},
		".hidden/a.go":       {Data: []byte("package hidden\n")},
		"good/notes.txt":     {Data: []byte(todo + "someone): not Go\n")},
	}
	files, err := goFiles(fsys)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := undocumented(files)
	if err != nil {
		t.Fatal(err)
	}
	wantMissing := []string{"bare (package bare)", "cmd/tool (package main)"}
	if !slices.Equal(missing, wantMissing) {
		t.Errorf("undocumented = %q, want %q", missing, wantMissing)
	}
	owned := ownedTODOs(files)
	wantOwned := []string{"bare/a.go:3: " + todo + "someone)", "good/b_test.go:3: " + todo + "someone)"}
	if !slices.Equal(owned, wantOwned) {
		t.Errorf("ownedTODOs = %q, want %q", owned, wantOwned)
	}
}
