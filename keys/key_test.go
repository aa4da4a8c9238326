package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// Fabricated keys of the right shape (not real credentials).
const (
	liveKey = "tk_live_3f9a1c0e7b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"
	testKey = "tk_test_0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    error
		msgHas  string
		mode    Mode
		wantErr bool
	}{
		{name: "live", in: liveKey, mode: ModeLive},
		{name: "test", in: testKey, mode: ModeTest},
		{name: "empty", in: "", want: ErrMissing, msgHas: "missing API key", wantErr: true},
		{name: "provider key", in: "sk-ant-api03-" + strings.Repeat("x", 40), want: ErrMalformed, msgHas: "not a Takumo API key", wantErr: true},
		{name: "unknown mode prefix", in: "tk_prod_" + liveKey[8:], want: ErrMalformed, msgHas: "tk_live_ or tk_test_", wantErr: true},
		{name: "upper prefix", in: "TK_LIVE_" + liveKey[8:], want: ErrMalformed, msgHas: "prefix must be lower case", wantErr: true},
		{name: "short", in: liveKey[:40], want: ErrMalformed, msgHas: "got 32 characters", wantErr: true},
		{name: "long", in: liveKey + "ab", want: ErrMalformed, msgHas: "got 66 characters", wantErr: true},
		{name: "non hex", in: liveKey[:70] + "zz", want: ErrMalformed, msgHas: "only lowercase hex", wantErr: true},
		{name: "upper hex", in: "tk_live_" + strings.ToUpper(liveKey[8:]), want: ErrMalformed, msgHas: "must be lower case", wantErr: true},
		{name: "trailing newline", in: liveKey + "\n", want: ErrMalformed, msgHas: "trailing whitespace", wantErr: true},
		{name: "trailing space", in: liveKey + " ", want: ErrMalformed, msgHas: "trailing whitespace", wantErr: true},
		{name: "leading space", in: " " + liveKey, want: ErrMalformed, msgHas: "leading whitespace", wantErr: true},
		{name: "two keys", in: liveKey + "," + testKey, want: ErrMalformed, msgHas: "more than one value", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Parse(tc.in)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if k.Reveal() != tc.in || k.Mode() != tc.mode {
					t.Fatalf("Parse = %v mode %s", k, k.Mode())
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Parse error = %v, want %v", err, tc.want)
			}
			msg := ClientMessage(err)
			if !strings.Contains(msg, tc.msgHas) {
				t.Errorf("message %q lacks %q", msg, tc.msgHas)
			}
			if tc.in != "" && (strings.Contains(err.Error(), strings.TrimSpace(tc.in)) || strings.Contains(msg, liveKey[8:40])) {
				t.Errorf("error echoes the key: %v", err)
			}
		})
	}
}

func TestFromHeaders(t *testing.T) {
	tests := []struct {
		name       string
		auth, xKey string
		want       string
		wantErr    error
		msgHas     string
	}{
		{name: "bearer", auth: "Bearer " + liveKey, want: liveKey},
		{name: "bearer lower case scheme", auth: "bearer " + liveKey, want: liveKey},
		{name: "x-api-key", xKey: liveKey, want: liveKey},
		{name: "both equal", auth: "Bearer " + liveKey, xKey: liveKey, want: liveKey},
		{name: "both different", auth: "Bearer " + liveKey, xKey: testKey, wantErr: ErrMalformed, msgHas: "two different API keys"},
		{name: "missing bearer", auth: liveKey, wantErr: ErrMalformed, msgHas: `missing "Bearer "`},
		{name: "basic scheme", auth: "Basic dXNlcjpwYXNz", wantErr: ErrMalformed, msgHas: `scheme "Basic"`},
		{name: "bearer without key", auth: "Bearer ", wantErr: ErrMissing, msgHas: "no key after it"},
		{name: "none", wantErr: ErrMissing, msgHas: "missing API key"},
		{name: "two keys in authorization", auth: "Bearer " + liveKey + ", Bearer " + testKey, wantErr: ErrMalformed, msgHas: "two API keys in the Authorization header"},
		{name: "two keys after one bearer", auth: "Bearer " + liveKey + " " + testKey, wantErr: ErrMalformed, msgHas: "two API keys in the Authorization header"},
		{name: "two keys in x-api-key", xKey: liveKey + ", " + testKey, wantErr: ErrMalformed, msgHas: "two API keys in the x-api-key header"},
		// Trailing whitespace is found by the header step and named by Parse.
		{name: "trailing whitespace passes through", auth: "Bearer " + liveKey + "\n", want: liveKey + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromHeaders(tc.auth, tc.xKey)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("FromHeaders = %q, %v; want the key", got, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("FromHeaders error = %v, want %v", err, tc.wantErr)
			}
			if msg := ClientMessage(err); !strings.Contains(msg, tc.msgHas) {
				t.Errorf("message %q lacks %q", msg, tc.msgHas)
			}
			for _, k := range []string{liveKey, testKey, liveKey[8:], testKey[8:], "dXNlcjpwYXNz"} {
				if strings.Contains(err.Error(), k) {
					t.Errorf("error echoes a credential: %v", err)
				}
			}
		})
	}
	// The trailing-whitespace case ends in Parse with a message that names it.
	raw, _ := FromHeaders("Bearer "+liveKey+"\n", "")
	if _, err := Parse(raw); !strings.Contains(ClientMessage(err), "trailing whitespace") {
		t.Errorf("Parse after FromHeaders: %v", err)
	}
}

func TestKeyFormatsRedacted(t *testing.T) {
	k, err := Parse(liveKey)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("created", "key", k, "ptr", &k)
	js, err := json.Marshal(struct{ K Key }{k})
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v %+v", &k, struct{ K Key }{k}), logBuf.String(), string(js), k.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, liveKey[8:]) || strings.Contains(o, liveKey[8:24]) {
			t.Errorf("key printed: %s", o)
		}
	}
	if !strings.Contains(k.String(), "tk_live_") {
		t.Errorf("String = %q, want the mode shown", k.String())
	}
}

// repeatReader yields one byte over and over.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy gone") }

func TestGenerate(t *testing.T) {
	for _, m := range []Mode{ModeLive, ModeTest} {
		k, err := Generate(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(k.Reveal()) != Len || k.Mode() != m {
			t.Fatalf("Generate(%s) has length %d, mode %s", m, len(k.Reveal()), k.Mode())
		}
		if _, err := Parse(k.Reveal()); err != nil {
			t.Fatalf("generated key does not parse: %v", err)
		}
		k2, _ := Generate(m, nil)
		if k2.Reveal() == k.Reveal() {
			t.Fatal("two generated keys are equal")
		}
	}
	k, err := Generate(ModeTest, repeatReader(0xab))
	if err != nil || k.Reveal() != "tk_test_"+strings.Repeat("ab", 32) {
		t.Fatalf("Generate with fixed randomness = %v, %v", k.Reveal(), err)
	}
	if _, err := Generate(ModeLive, failingReader{}); err == nil {
		t.Error("Generate with a failing random source succeeded")
	}
	if _, err := Generate("prod", nil); err == nil {
		t.Error("Generate with an unknown mode succeeded")
	}
}
