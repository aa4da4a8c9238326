// Package benchkit holds what the performance measurements share: the
// 64 KB coding-tool prompt with three fabricated secrets, a fake provider
// that records what it received, and an in-process gateway wired as
// `takumo-aegis gateway` wires it (real ext_proc server, built-in detection
// catalog, gRPC over an in-memory listener).
//
// Every secret here is fabricated: right prefix, length, charset and
// checksum, never issued to anyone.
package benchkit

import (
	"encoding/json"
	"hash/crc32"
	"strconv"
	"strings"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Fabricated values planted in every prompt.
const (
	// AWSKeyID is an AKIA key id whose encoded account id is in range.
	AWSKeyID = "AKIAQ3EGUQ7XNB5KZ4WD" //nolint:gosec // G101: fabricated, never issued
	// PostgresURL carries a password in its userinfo.
	PostgresURL = "postgres://svc_bench:Rk7vQ2mX9pL4wZ8tNc@db.internal.example:5432/app" //nolint:gosec // G101: fabricated
	// ghBody is the random part of the GitHub token (30 base62 characters).
	ghBody = "Bq8ZrT4wXy2Lm6Np0Vs3Kd7Hf1Jc9G"
	// Anthropic API key the gateway holds for the provider (fabricated).
	ProviderKey = "sk-ant-api03-Wb7Xc2Vn9Mq4Lk8Jh3Gf6Ds1Az5Sx0Dc7Fv2Gb9Hn4Jm8Kl3Pq6Rw1Te5Yu0Io7Pa2Sd9Fg4Hj8Kl3Zx6Cv1Bn5Mq0Wp7Er2Ty9Ui4Op8As-Dk3Lq5AA"
	// TakumoKey is the client key the bench authenticates with.
	TakumoKey = "tk_test_7c1e4b9a2f6d8e3c5a0b7f1d9e2c4a6b8d0f3e5c7a9b1d4f6e8c0a2b5d7f9e1c"
)

// GitHubToken is a classic ghp_ token with a valid CRC32 checksum.
func GitHubToken() string {
	n := crc32.ChecksumIEEE([]byte(ghBody))
	var sum [6]byte
	for i := 5; i >= 0; i-- {
		sum[i] = base62[n%62]
		n /= 62
	}
	return "ghp_" + ghBody + string(sum[:])
}

// Secrets lists the planted values; none may ever reach the provider
// through the gateway, and each must come back in the answer.
func Secrets() []string { return []string{AWSKeyID, GitHubToken(), PostgresURL} }

// Code returns about size bytes of Go source with the three secrets planted
// at fixed fractions of it.
func Code(size int) string {
	var b strings.Builder
	b.Grow(size + 256)
	b.WriteString("Please review this module and tell me which credentials to rotate.\n\n```go\npackage store\n\n")
	line := "func handler%d(w http.ResponseWriter, r *http.Request) { if err := db.QueryRowContext(r.Context(), \"SELECT 1\").Err(); err != nil { http.Error(w, err.Error(), 500) } }\n"
	planted := 0
	for i := 0; b.Len() < size-200; i++ {
		b.WriteString(strings.Replace(line, "%d", strconv.Itoa(i), 1))
		frac := float64(b.Len()) / float64(size)
		switch {
		case planted == 0 && frac > 0.1:
			b.WriteString("// aws_access_key_id = " + AWSKeyID + "\n")
			planted++
		case planted == 1 && frac > 0.45:
			b.WriteString("const githubToken = \"" + GitHubToken() + "\"\n")
			planted++
		case planted == 2 && frac > 0.8:
			b.WriteString("var dsn = \"" + PostgresURL + "\"\n")
			planted++
		}
	}
	b.WriteString("```\n")
	return b.String()
}

// Prompt returns an Anthropic Messages request of about size bytes (64 KB
// in the targets) whose one user message is source code with the three
// secrets. stream asks for an event stream.
func Prompt(size int, stream bool) []byte {
	text, _ := json.Marshal(Code(size - 200))
	s := ""
	if stream {
		s = `"stream":true,`
	}
	return []byte(`{"model":"claude-sonnet-4-5","max_tokens":4096,` + s + `"system":"You are a careful reviewer.",` +
		`"messages":[{"role":"user","content":[{"type":"text","text":` + string(text) + `}]}]}`)
}
