package e2e

import (
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/takumo/aegis/e2e/fakeprovider"
)

// TestReplicasSharingATokenSecretAgree: two gateway processes configured
// with the same token_secret (TAKUMO_TOKEN_SECRET) give a session the same
// tokens, so a load balancer needs no sticky routing; with different
// secrets they do not (tokens are keyed, not bare hashes).
func TestReplicasSharingATokenSecretAgree(t *testing.T) {
	t.Parallel()
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		data, b := fakeprovider.Encode(anthropicEcho(t, r).Events())
		w.Stream(fakeprovider.SplitAt(data, b...))
	})
	defer p.Close()
	const secretA = "token_secret: 8f3a2b1c9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c\n"
	const secretB = "token_secret: 0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0\n"
	tokensVia := func(yaml string) []string {
		g := startGateway(t, p, gatewayOpts{yaml: yaml})
		before := len(p.Requests())
		streamAnthropic(t, anthropicClient(g), anthropicParams(prompt),
			option.WithHeader("X-Claude-Code-Session-Id", "2b1f6c0e-9a41-4d7e-8c35-51f0a9e2d6b4"))
		reqs := p.Requests()
		if len(reqs) != before+1 {
			t.Fatalf("provider got %d new requests, want 1", len(reqs)-before)
		}
		checkAnthropicUpstream(t, p, g)
		return fakeprovider.Tokens(reqs[len(reqs)-1].Body)
	}
	a1, a2, b := tokensVia(secretA), tokensVia(secretA), tokensVia(secretB)
	if len(a1) == 0 {
		t.Fatal("no tokens reached the provider: nothing was tokenized")
	}
	if strings.Join(a1, " ") != strings.Join(a2, " ") {
		t.Errorf("two replicas with one secret disagree:\n%v\n%v", a1, a2)
	}
	if strings.Join(a1, " ") == strings.Join(b, " ") {
		t.Errorf("replicas with different secrets gave the same tokens: %v", a1)
	}
}
