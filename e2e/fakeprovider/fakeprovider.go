// Package fakeprovider is an AI provider for end-to-end tests: a real HTTP
// server on 127.0.0.1 that records every request it receives (method, path,
// headers, body) and answers with whatever the test's Handler chooses.
//
// The response builders (AnthropicReply, ChatReply, ResponsesReply and the
// error bodies) produce what the real APIs send, JSON and server-sent
// events, so that the official SDKs parse them. A Handler typically reads the
// tokens out of the recorded request (Tokens) and echoes them back inside
// text and tool arguments, since the gateway must put the real values back
// into exactly those places. ResponseWriter writes a body in chosen chunks
// with a flush after each, cuts the connection mid-body or hangs, to play
// the faults a provider can have.
package fakeprovider

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"unicode/utf8"

	"github.com/takumo/aegis/token"
)

// Request is one request as the provider received it.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// Handler answers one request.
type Handler func(w *ResponseWriter, r *Request)

// Server is the fake provider. It is safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []*Request // guarded by mu
	handler Handler    // guarded by mu
}

// New starts a fake provider that answers with h (nil: 500 for every
// request until SetHandler).
func New(h Handler) *Server {
	s := &Server{handler: h}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the base URL, http://127.0.0.1:port.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server, cutting connections still open.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetHandler replaces the handler for the requests that follow.
func (s *Server) SetHandler(h Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.reqs...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rec := &Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	h := s.handler
	s.mu.Unlock()
	if err != nil || h == nil {
		http.Error(w, "fakeprovider: no handler or unreadable body", http.StatusInternalServerError)
		return
	}
	h(&ResponseWriter{w: w, ctx: r.Context()}, rec)
}

// ResponseWriter writes one response.
type ResponseWriter struct {
	w   http.ResponseWriter
	ctx context.Context
}

// Header is the response header map, to fill before writing.
func (w *ResponseWriter) Header() http.Header { return w.w.Header() }

// JSON writes a complete JSON body with its content-length.
func (w *ResponseWriter) JSON(status int, body []byte) {
	w.w.Header().Set("Content-Type", "application/json")
	w.w.WriteHeader(status)
	_, _ = w.w.Write(body)
}

// Raw writes a complete body of the given content type.
func (w *ResponseWriter) Raw(status int, contentType string, body []byte) {
	w.w.Header().Set("Content-Type", contentType)
	w.w.WriteHeader(status)
	_, _ = w.w.Write(body)
}

// Stream writes an event stream in the given chunks, flushing after each.
// It stops early if the client went away.
func (w *ResponseWriter) Stream(chunks [][]byte) {
	w.streamHeaders()
	f := w.w.(http.Flusher)
	f.Flush()
	for _, c := range chunks {
		if _, err := w.w.Write(c); err != nil {
			return
		}
		f.Flush()
	}
}

// StreamThenCut writes the first n chunks of an event stream, then cuts the
// connection (TCP reset), as a provider that dies mid-answer.
func (w *ResponseWriter) StreamThenCut(chunks [][]byte, n int) {
	w.Stream(chunks[:min(n, len(chunks))])
	conn, _, err := http.NewResponseController(w.w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = conn.Close()
}

// StreamThenHang writes the chunks, then holds the stream open until the
// client goes away (a provider that stops mid-answer).
func (w *ResponseWriter) StreamThenHang(chunks [][]byte) {
	w.Stream(chunks)
	<-w.ctx.Done()
}

// Hang sends nothing until the client goes away.
func (w *ResponseWriter) Hang() { <-w.ctx.Done() }

// Done is closed when the client went away.
func (w *ResponseWriter) Done() <-chan struct{} { return w.ctx.Done() }

func (w *ResponseWriter) streamHeaders() {
	h := w.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.w.WriteHeader(http.StatusOK)
}

// Event is one server-sent event. Name "" writes no event: line.
type Event struct {
	Name string
	Data []byte
}

// Encode frames events as SSE and returns the bytes and the offset just
// after each event (event boundaries).
func Encode(events []Event) (data []byte, boundaries []int) {
	var b bytes.Buffer
	for _, e := range events {
		if e.Name != "" {
			b.WriteString("event: ")
			b.WriteString(e.Name)
			b.WriteByte('\n')
		}
		b.WriteString("data: ")
		b.Write(e.Data)
		b.WriteString("\n\n")
		boundaries = append(boundaries, b.Len())
	}
	return b.Bytes(), boundaries
}

// SplitAt cuts data at the given increasing offsets.
func SplitAt(data []byte, offsets ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, o := range offsets {
		if o <= prev || o >= len(data) {
			continue
		}
		out = append(out, data[prev:o])
		prev = o
	}
	return append(out, data[prev:])
}

// SplitEvery cuts data into chunks of n bytes (n=1: every byte its own
// chunk), regardless of events, lines or UTF-8.
func SplitEvery(data []byte, n int) [][]byte {
	var out [][]byte
	for len(data) > n {
		out = append(out, data[:n])
		data = data[n:]
	}
	return append(out, data)
}

// Pieces cuts s into pieces of about n bytes on rune boundaries, as a model's
// deltas are (each delta is a valid JSON string).
func Pieces(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		i := min(n, len(s))
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// Tokens returns the canonical Takumo tokens in b, in order of appearance,
// each once.
func Tokens(b []byte) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range token.Find(b, token.Raw) {
		if !seen[m.Token] {
			seen[m.Token] = true
			out = append(out, m.Token)
		}
	}
	return out
}
