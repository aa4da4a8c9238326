package token

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/takumo/aegis/detect"
)

// TestCorpusRoundTrip is the round-trip property of the detection issue over
// every file of the labelled corpus, with the full built-in catalog:
// rehydrate(tokenize(x)) == x byte for byte, and no value that was
// tokenized survives in the tokenized text.
func TestCorpusRoundTrip(t *testing.T) {
	eng, err := detect.New(detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tk := Tokenizer{Engine: eng}
	root := filepath.Join("..", "testdata", "corpus")
	files, tokenized := 0, 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "labels.json" {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(root, path)
		v := testVault(t, Limits{})
		res, err := tk.Tokenize(v, src)
		if err != nil {
			t.Errorf("%s: tokenize: %v", rel, err)
			return nil
		}
		for _, d := range res.Detections {
			if d.Action != detect.Tokenize {
				continue
			}
			tokenized++
			if val := src[d.Start:d.End]; len(val) >= 6 && bytes.Contains(res.Text, val) {
				t.Errorf("%s:%d: %s value (len %d) still present after tokenization", rel, lineOf(src, d.Start), d.RuleID, len(val))
			}
		}
		back, st := Rehydrate(v, res.Text, Raw)
		if !bytes.Equal(back, src) {
			t.Errorf("%s: rehydrate(tokenize(x)) != x", rel)
		}
		if st.Unknown != 0 {
			t.Errorf("%s: %d unknown tokens after a round trip", rel, st.Unknown)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 || tokenized < 250 {
		t.Fatalf("corpus too small to mean anything: %d files, %d values tokenized", files, tokenized)
	}
	t.Logf("%d files, %d values tokenized, every file restored byte for byte", files, tokenized)
}

func lineOf(b []byte, off int) int { return bytes.Count(b[:off], []byte("\n")) + 1 }
