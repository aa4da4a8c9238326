package detect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The accuracy corpus (testdata/corpus) is a tree of realistic source and
// configuration files with planted, fabricated secrets and many hard
// negatives. labels.json lists, per file, the planted values and the rule
// family each belongs to. A labelled value is located by searching the file
// for it; every occurrence counts.
//
// Scoring: a counted finding is a true positive when its span overlaps a
// labelled occurrence; a labelled occurrence is found when a counted finding
// overlaps it. Findings in the HOST and USER categories and findings whose
// action is monitor or off are informational and not counted.
//
// Nothing here prints a secret value: misses and false positives are listed
// as file:line with the family or rule id only.

const (
	corpusDir       = "../testdata/corpus"
	corpusLabelFile = "labels.json"
	corpusMinFiles  = 120

	minRecall    = 0.97
	minPrecision = 0.97
)

type corpusLabel struct {
	Value  string `json:"value"`
	Family string `json:"family"`
}

type corpusFile struct {
	name   string
	data   []byte
	labels []corpusLabel
}

// occurrence is one place where a labelled value appears in a file.
type occurrence struct {
	start, end int
	family     string
	found      bool
}

func loadCorpus(tb testing.TB) []corpusFile {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(corpusDir, corpusLabelFile))
	if err != nil {
		tb.Fatalf("read labels: %v", err)
	}
	var lf struct {
		Files map[string][]corpusLabel `json:"files"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lf); err != nil {
		tb.Fatalf("parse labels: %v", err)
	}

	var files []corpusFile
	seen := map[string]bool{}
	err = filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(corpusDir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == corpusLabelFile {
			return nil
		}
		labels, ok := lf.Files[rel]
		if !ok {
			tb.Errorf("%s: not listed in %s (list it, with [] if it plants nothing)", rel, corpusLabelFile)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		seen[rel] = true
		files = append(files, corpusFile{name: rel, data: data, labels: labels})
		return nil
	})
	if err != nil {
		tb.Fatalf("walk corpus: %v", err)
	}
	for name := range lf.Files {
		if !seen[name] {
			tb.Errorf("%s: listed in %s but missing on disk", name, corpusLabelFile)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files
}

// occurrences locates every labelled value of f. It reports labels that are
// empty, lack a family, or do not occur in the file.
func occurrences(tb testing.TB, f corpusFile) []occurrence {
	tb.Helper()
	var occ []occurrence
	for i, l := range f.labels {
		if l.Value == "" || l.Family == "" {
			tb.Errorf("%s: label %d has an empty value or family", f.name, i)
			continue
		}
		v := []byte(l.Value)
		n := 0
		for off := 0; ; {
			j := bytes.Index(f.data[off:], v)
			if j < 0 {
				break
			}
			s := off + j
			occ = append(occ, occurrence{start: s, end: s + len(v), family: l.Family})
			off = s + len(v)
			n++
		}
		if n == 0 {
			tb.Errorf("%s: label %d (family %s) does not occur in the file", f.name, i, l.Family)
		}
	}
	sort.Slice(occ, func(i, j int) bool { return occ[i].start < occ[j].start })
	return occ
}

func counted(fd Finding) bool {
	if fd.Category == HOST || fd.Category == USER {
		return false
	}
	return fd.Action != Monitor && fd.Action != Off
}

func overlaps(s1, e1, s2, e2 int) bool { return s1 < e2 && s2 < e1 }

// TestCorpusIntegrity checks the corpus itself, independent of the rules:
// every file is labelled, every label occurs, labelled occurrences do not
// overlap one another, and the corpus is big enough to mean something.
func TestCorpusIntegrity(t *testing.T) {
	files := loadCorpus(t)
	if len(files) < corpusMinFiles {
		t.Errorf("corpus has %d files, want at least %d", len(files), corpusMinFiles)
	}
	var labelled, negatives int
	families := map[string]int{}
	for _, f := range files {
		occ := occurrences(t, f)
		for i := 1; i < len(occ); i++ {
			if occ[i].start < occ[i-1].end {
				line, _ := LineCol(f.data, occ[i].start)
				t.Errorf("%s:%d: labelled values of families %s and %s overlap", f.name, line, occ[i-1].family, occ[i].family)
			}
		}
		if len(f.labels) == 0 {
			negatives++
		}
		for _, o := range occ {
			families[o.family]++
		}
		labelled += len(occ)
	}
	if negatives == 0 || labelled == 0 {
		t.Errorf("corpus needs both negative-only files (%d) and labelled values (%d)", negatives, labelled)
	}
	t.Logf("corpus: %d files (%d negative-only), %d labelled occurrences in %d families", len(files), negatives, labelled, len(families))
}

type familyScore struct {
	labelled, found int
}

type location struct {
	file string
	line int
	what string // family for misses, rule id for false positives
}

func (l location) String() string { return fmt.Sprintf("%s:%d %s", l.file, l.line, l.what) }

func sortLocations(ls []location) {
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].file != ls[j].file {
			return ls[i].file < ls[j].file
		}
		if ls[i].line != ls[j].line {
			return ls[i].line < ls[j].line
		}
		return ls[i].what < ls[j].what
	})
}

// TestAccuracy runs the full built-in catalog over the corpus and holds
// recall and precision to their floors. Run with -v to see the per-family
// table even when it passes.
func TestAccuracy(t *testing.T) {
	files := loadCorpus(t)
	e, err := New(Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	fams := map[string]*familyScore{}
	fpByRule := map[string]int{}
	var misses, fps []location
	var tp, total, labelled, found int

	for _, f := range files {
		occ := occurrences(t, f)
		for _, fd := range e.Detect(f.data) {
			if fd.Start < 0 || fd.End > len(f.data) || fd.Start >= fd.End {
				t.Errorf("%s: rule %s reported an invalid span [%d,%d)", f.name, fd.RuleID, fd.Start, fd.End)
				continue
			}
			if !counted(fd) {
				continue
			}
			total++
			hit := false
			for i := range occ {
				if overlaps(fd.Start, fd.End, occ[i].start, occ[i].end) {
					occ[i].found = true
					hit = true
				}
			}
			if hit {
				tp++
				continue
			}
			line, _ := LineCol(f.data, fd.Start)
			fps = append(fps, location{file: f.name, line: line, what: fd.RuleID})
			fpByRule[fd.RuleID]++
		}
		for _, o := range occ {
			s := fams[o.family]
			if s == nil {
				s = &familyScore{}
				fams[o.family] = s
			}
			s.labelled++
			labelled++
			if o.found {
				s.found++
				found++
				continue
			}
			line, _ := LineCol(f.data, o.start)
			misses = append(misses, location{file: f.name, line: line, what: o.family})
		}
	}

	recall := ratio(found, labelled)
	precision := 1.0 // no counted finding: nothing false was reported
	if total > 0 {
		precision = ratio(tp, total)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-14s %8s %6s %7s\n", "family", "labelled", "found", "recall")
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := fams[n]
		fmt.Fprintf(&b, "%-14s %8d %6d %7.3f\n", n, s.labelled, s.found, ratio(s.found, s.labelled))
	}
	fmt.Fprintf(&b, "%-14s %8d %6d %7.3f\n", "TOTAL", labelled, found, recall)
	fmt.Fprintf(&b, "\nfindings counted: %d, true positives: %d, false positives: %d, precision %.3f\n", total, tp, total-tp, precision)
	if len(fpByRule) > 0 {
		rules := make([]string, 0, len(fpByRule))
		for r := range fpByRule {
			rules = append(rules, r)
		}
		sort.Slice(rules, func(i, j int) bool {
			if fpByRule[rules[i]] != fpByRule[rules[j]] {
				return fpByRule[rules[i]] > fpByRule[rules[j]]
			}
			return rules[i] < rules[j]
		})
		fmt.Fprintf(&b, "\nfalse positives by rule:\n")
		for _, r := range rules {
			fmt.Fprintf(&b, "  %-40s %d\n", r, fpByRule[r])
		}
	}
	sortLocations(misses)
	sortLocations(fps)
	if len(misses) > 0 {
		fmt.Fprintf(&b, "\nmisses (file:line family):\n")
		for _, m := range misses {
			fmt.Fprintf(&b, "  %s\n", m)
		}
	}
	if len(fps) > 0 {
		fmt.Fprintf(&b, "\nfalse positives (file:line rule):\n")
		for _, fp := range fps {
			fmt.Fprintf(&b, "  %s\n", fp)
		}
	}
	t.Log(b.String())

	if recall < minRecall {
		t.Errorf("recall %.3f (%d/%d) is below %.2f", recall, found, labelled, minRecall)
	}
	if precision < minPrecision {
		t.Errorf("precision %.3f (%d/%d) is below %.2f", precision, tp, total, minPrecision)
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// TestScoringOverlap pins the scoring rules on a tiny hand-made case so a
// change to them cannot pass unnoticed.
func TestScoringOverlap(t *testing.T) {
	tests := []struct {
		name           string
		s1, e1, s2, e2 int
		want           bool
	}{
		{name: "inside", s1: 2, e1: 4, s2: 0, e2: 10, want: true},
		{name: "partial_left", s1: 0, e1: 3, s2: 2, e2: 8, want: true},
		{name: "touching", s1: 0, e1: 2, s2: 2, e2: 4, want: false},
		{name: "disjoint", s1: 0, e1: 1, s2: 5, e2: 6, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overlaps(tt.s1, tt.e1, tt.s2, tt.e2); got != tt.want {
				t.Fatalf("overlaps = %v, want %v", got, tt.want)
			}
		})
	}
	countTests := []struct {
		name string
		fd   Finding
		want bool
	}{
		{name: "key_tokenize", fd: Finding{Category: KEY, Action: Tokenize}, want: true},
		{name: "secret_block", fd: Finding{Category: SECRET, Action: Block}, want: true},
		{name: "host", fd: Finding{Category: HOST, Action: Tokenize}, want: false},
		{name: "user", fd: Finding{Category: USER, Action: Tokenize}, want: false},
		{name: "monitor", fd: Finding{Category: KEY, Action: Monitor}, want: false},
		{name: "off", fd: Finding{Category: CONN, Action: Off}, want: false},
	}
	for _, tt := range countTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := counted(tt.fd); got != tt.want {
				t.Fatalf("counted = %v, want %v", got, tt.want)
			}
		})
	}
}
