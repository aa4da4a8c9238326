package charttest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfile reads the Dockerfile line by line (there is no Docker engine here): a
// Go build stage, a static build with the Makefile's flags, a final distroless or
// scratch stage that runs as nobody.
func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var froms, runs []string
	var lastUser, entrypoint string
	sc := bufio.NewScanner(f)
	var cont strings.Builder
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		// Join continuation lines into one instruction.
		if strings.HasSuffix(line, `\`) {
			cont.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cont.WriteString(line)
		instr := cont.String()
		cont.Reset()
		word, rest, _ := strings.Cut(instr, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			froms = append(froms, rest)
			lastUser = ""
		case "RUN":
			runs = append(runs, rest)
		case "USER":
			lastUser = rest
		case "ENTRYPOINT":
			entrypoint = rest
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM %v", froms)
	}
	if !strings.HasPrefix(froms[0], "golang:1.26") || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("first stage %q: want FROM golang:1.26… AS build", froms[0])
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage %q: want distroless static or scratch (no shell, no libc)", final)
	}
	if lastUser != "65534:65534" {
		t.Errorf("final stage runs as %q, want USER 65534:65534", lastUser)
	}
	build := strings.Join(runs, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "-s -w -X github.com/takumo/aegis/cli.Version=", "./cmd/takumo-aegis"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build does not use %q (the Makefile's build)", want)
		}
	}
	if !strings.Contains(entrypoint, "takumo-aegis") {
		t.Errorf("ENTRYPOINT %q", entrypoint)
	}
}

// TestDockerignoreKeepsBuildInputs: nothing the binary is built from (packages and
// their embedded files) is left out of the build context by .dockerignore.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var ignored []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			ignored = append(ignored, l)
		}
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", `{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`, "./cmd/takumo-aegis")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		rel, err := filepath.Rel(root, fields[0])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a dependency outside the repository
		}
		for _, name := range fields[1:] {
			p := filepath.ToSlash(filepath.Join(rel, name))
			checked++
			for _, pat := range ignored {
				if dockerignoreMatches(pat, p) {
					t.Errorf("%s is a build input but .dockerignore %q leaves it out", p, pat)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("go list found no files of ours")
	}
}

// dockerignoreMatches is the subset of .dockerignore matching our file uses: a path or
// glob matching the file or one of its parent directories, and a leading **/.
func dockerignoreMatches(pat, path string) bool {
	parts := strings.Split(path, "/")
	for i := 1; i <= len(parts); i++ {
		prefix := strings.Join(parts[:i], "/")
		if ok, _ := filepath.Match(pat, prefix); ok {
			return true
		}
		if rest, ok := strings.CutPrefix(pat, "**/"); ok {
			for j := 0; j < i; j++ {
				if ok, _ := filepath.Match(rest, strings.Join(parts[j:i], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}
