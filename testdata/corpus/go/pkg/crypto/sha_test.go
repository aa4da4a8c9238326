package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// Known-answer tests. Inputs and digests are published test vectors.
var digestTests = []struct {
	in   string
	want string
}{
	{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
}

func TestSHA256(t *testing.T) {
	for _, tt := range digestTests {
		sum := sha256.Sum256([]byte(tt.in))
		if got := hex.EncodeToString(sum[:]); got != tt.want {
			t.Errorf("sha256(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestHMACVector(t *testing.T) {
	// RFC 4231 test case 1
	key, _ := hex.DecodeString("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")
	data := []byte("Hi There")
	want := "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
	m := hmac.New(sha256.New, key)
	m.Write(data)
	if got := hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("hmac = %s, want %s", got, want)
	}
}

func TestContentAddress(t *testing.T) {
	const blob = "e34226a66f327f4932cfe21d0e0440142ddafb95cc4d1aad22cce926b0439e75"
	const commit = "34051ec9eaa69123736dda6eb39e1c79904f1468"
	if len(blob) != 64 || len(commit) != 40 {
		t.Fatal("bad fixture")
	}
}
