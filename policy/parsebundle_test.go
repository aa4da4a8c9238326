package policy

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseBundleRefusals(t *testing.T) {
	for name, raw := range map[string][]byte{
		"not gzip":  []byte("not a bundle"),
		"too large": bytes.Repeat([]byte{0}, MaxBundleBytes+1),
		"empty":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseBundle(raw, "test"); !errors.Is(err, ErrPolicy) {
				t.Fatalf("got %v, want an ErrPolicy", err)
			}
		})
	}
}
