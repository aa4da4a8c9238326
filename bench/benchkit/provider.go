package benchkit

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Headers the bench client sends and the gateway forwards to the provider.
const (
	// HeaderPath is "direct" or "gateway": which way the request came.
	HeaderPath = "X-Bench-Path"
	// HeaderStream asks for an event stream of about this many bytes.
	HeaderStream = "X-Bench-Stream"
	// HeaderDelay holds the answer back (a Go duration), to keep requests in
	// flight together.
	HeaderDelay = "X-Bench-Delay"
)

// Provider is a fake Anthropic Messages endpoint. It answers with a short
// message naming every credential-looking string it received: tokens when
// the request came through the gateway, the planted values when it came
// directly. It counts requests that came through the gateway and still
// held a planted value (Leaks, which must stay 0).
type Provider struct {
	Requests atomic.Int64
	Leaks    atomic.Int64
	Tokens   atomic.Int64

	secrets [][]byte
	bufs    sync.Pool
}

// NewProvider returns a Provider that watches for Secrets().
func NewProvider() *Provider {
	p := &Provider{}
	for _, s := range Secrets() {
		p.secrets = append(p.secrets, []byte(s))
	}
	p.bufs.New = func() any { return new(bytes.Buffer) }
	return p
}

const tokenPrefix = "__TAKUMO_v1_" //nolint:gosec // G101: the token format's prefix, not a credential

// found returns the tokens (or, directly, the planted values) in body, in
// order, without duplicates.
func (p *Provider) found(body []byte, viaGateway bool) []string {
	var out []string
	if !viaGateway {
		for _, s := range p.secrets {
			if bytes.Contains(body, s) {
				out = append(out, string(s))
			}
		}
		return out
	}
	for _, s := range p.secrets {
		if bytes.Contains(body, s) {
			p.Leaks.Add(1)
			break
		}
	}
	seen := map[string]bool{}
	for rest := body; ; {
		i := bytes.Index(rest, []byte(tokenPrefix))
		if i < 0 {
			break
		}
		rest = rest[i:]
		j := bytes.Index(rest[len(tokenPrefix):], []byte("__"))
		if j < 0 {
			break
		}
		tok := string(rest[:len(tokenPrefix)+j+2])
		rest = rest[len(tok):]
		if !seen[tok] {
			seen[tok] = true
			out = append(out, tok)
		}
	}
	p.Tokens.Add(int64(len(out)))
	return out
}

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.Requests.Add(1)
	buf, _ := p.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer p.bufs.Put(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
		return
	}
	found := p.found(buf.Bytes(), r.Header.Get(HeaderPath) == "gateway")
	if d, err := time.ParseDuration(r.Header.Get(HeaderDelay)); err == nil && d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if n, err := strconv.Atoi(r.Header.Get(HeaderStream)); err == nil && n > 0 {
		p.stream(w, found, n)
		return
	}
	text := "Rotate these:"
	for _, f := range found {
		text += " " + f
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_bench")
	_, _ = io.WriteString(w, `{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-5",`+
		`"content":[{"type":"text","text":"`+text+`"}],"stop_reason":"end_turn","stop_sequence":null,`+
		`"usage":{"input_tokens":16000,"output_tokens":40}}`)
}

// filler is prose for the streamed deltas (JSON-safe).
const filler = "Here is the revised handler with the credential moved to the environment and the query bounded by a context deadline. "

// stream writes an Anthropic event stream of about n bytes whose text
// deltas mention the found strings in turn.
func (p *Provider) stream(w http.ResponseWriter, found []string, n int) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	var b bytes.Buffer
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":16000,\"output_tokens\":1}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	written := 0
	for i := 0; written < n; i++ {
		b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"")
		b.WriteString(filler)
		b.WriteString(filler)
		b.WriteString(filler)
		if len(found) > 0 {
			b.WriteString(found[i%len(found)])
		}
		b.WriteString(" \"}}\n\n")
		if b.Len() >= 16<<10 {
			written += b.Len()
			if _, err := w.Write(b.Bytes()); err != nil {
				return
			}
			b.Reset()
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":4000}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	_, _ = w.Write(b.Bytes())
}
