package token

import (
	"reflect"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

// streamAll feeds chunks to a fresh stream rehydrator and returns the
// concatenated output, checking the hold-back bound after every chunk.
func streamAll(t testing.TB, v *Vault, esc Escaping, chunks [][]byte) ([]byte, Stats) {
	t.Helper()
	sr := NewStreamRehydrator(v, esc)
	limit := maxCanonLen + underscores*len(esc.underscoreEscape()) - 1
	var out []byte
	for _, c := range chunks {
		out = append(out, sr.Write(c)...)
		if sr.Held() > limit {
			t.Fatalf("holds %d bytes, more than %d", sr.Held(), limit)
		}
	}
	out = append(out, sr.Flush()...)
	if sr.Held() != 0 {
		t.Fatalf("holds %d bytes after Flush", sr.Held())
	}
	return out, sr.Stats()
}

// splitAt cuts s at the given offsets (ascending).
func splitAt(s string, cuts ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, c := range cuts {
		out = append(out, []byte(s[prev:c]))
		prev = c
	}
	return append(out, []byte(s[prev:]))
}

func TestStreamEverySplit(t *testing.T) {
	v := testVault(t, Limits{})
	awsTok := mustToken(t, v, detect.KEY, awsKey)
	trTok := mustToken(t, v, detect.SECRET, tricky)
	md := strings.ReplaceAll(awsTok, "_", `\_`)
	jmd := strings.ReplaceAll(awsTok, "_", `\\_`)
	tests := []struct {
		name string
		esc  Escaping
		in   string
	}{
		{"raw", Raw, "a " + awsTok + " b" + awsTok + "__TAKUMO_v1_KEY_deadbeef__ end_"},
		{"markdown", Raw, "x" + md + "y\\" + awsTok + "_"},
		{"json", JSONString, `{"t":"` + trTok + `\n` + jmd + `"}`},
		{"fragment", JSONFragment, `{\"k\":\"` + trTok + `\"}`},
		{"near misses", Raw, "__TAKUMO_v1_KEY_8f3a2b1__ __TAKUMO_v1_SECRE __TAK _"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, wantSt := Rehydrate(v, []byte(tc.in), tc.esc)
			for i := 0; i <= len(tc.in); i++ {
				for _, j := range []int{i, min(i+1, len(tc.in)), min(i+7, len(tc.in))} {
					got, st := streamAll(t, v, tc.esc, splitAt(tc.in, i, j))
					if string(got) != string(want) {
						t.Fatalf("split at %d,%d: %q\nwant %q", i, j, got, want)
					}
					if !reflect.DeepEqual(st, wantSt) {
						t.Fatalf("split at %d,%d: stats %+v, want %+v", i, j, st, wantSt)
					}
				}
			}
			// Byte by byte.
			var chunks [][]byte
			for i := range len(tc.in) {
				chunks = append(chunks, []byte(tc.in[i:i+1]))
			}
			if got, _ := streamAll(t, v, tc.esc, chunks); string(got) != string(want) {
				t.Fatalf("byte by byte: %q\nwant %q", got, want)
			}
		})
	}
}

func TestStreamEmitsPromptly(t *testing.T) {
	v := testVault(t, Limits{})
	awsTok := mustToken(t, v, detect.KEY, awsKey)
	tests := []struct {
		name string
		in   string
		out  string // what Write returns at once
		rest string // what Flush returns
	}{
		{"plain text", "hello world", "hello world", ""},
		{"complete token at the end", "k=" + awsTok, "k=" + awsKey, ""},
		{"partial token held", "k=__TAKUMO_v1_KEY_5c94", "k=", "__TAKUMO_v1_KEY_5c94"},
		{"underscore held", "snake_", "snake", "_"},
		{"not a token after all", "__TAKUMO_v1_NOPE", "__TAKUMO_v1_NOPE", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sr := NewStreamRehydrator(v, Raw)
			if got := string(sr.Write([]byte(tc.in))); got != tc.out {
				t.Errorf("Write = %q, want %q", got, tc.out)
			}
			if got := string(sr.Flush()); got != tc.rest {
				t.Errorf("Flush = %q", got)
			}
		})
	}
}

func TestStreamOwnsItsBuffers(t *testing.T) {
	v := testVault(t, Limits{})
	awsTok := mustToken(t, v, detect.KEY, awsKey)
	sr := NewStreamRehydrator(v, Raw)
	chunk := []byte("a " + awsTok[:10])
	first := sr.Write(chunk)
	copy(chunk, strings.Repeat("#", len(chunk))) // the caller reuses its buffer
	rest := sr.Write([]byte(awsTok[10:] + " z"))
	if got := string(first) + string(rest) + string(sr.Flush()); got != "a "+awsKey+" z" {
		t.Errorf("got %q", got)
	}
}
