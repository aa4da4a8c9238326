package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"go.uber.org/goleak"

	"github.com/takumo/aegis/cli"
	"github.com/takumo/aegis/e2e/fakeprovider"
)

// okProvider answers every Messages request with the echo reply.
func okProvider(t *testing.T) *fakeprovider.Server {
	return fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
}

func messagesBody(t *testing.T, text string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"model": "claude-sonnet-4-5", "max_tokens": 1024,
		"messages": []any{map[string]any{"role": "user", "content": text}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadInput: what a client gets for requests the gateway refuses, and
// that none of them reaches the provider.
func TestBadInput(t *testing.T) {
	t.Parallel()
	p := okProvider(t)
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{yaml: "max_body_bytes: 1MiB\n"})
	good := messagesBody(t, prompt)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"model": "claude-sonnet-4-5", "messages": [`)) // cut short
	_ = zw.Close()

	cases := []struct {
		name        string
		path, ctype string
		body        []byte
		hdr         map[string]string
		status      int
		code        string
		msgHas      string
	}{
		{"malformed JSON", "/v1/messages", "application/json", []byte(`{"model": "claude-sonnet-4-5", "messages": [`), nil, 400, "BAD_REQUEST", ""},
		{"malformed JSON inside gzip", "/v1/messages", "application/json", gz.Bytes(), map[string]string{"Content-Encoding": "gzip"}, 400, "BAD_REQUEST", ""},
		{"unsupported content type", "/v1/messages", "text/plain", good, nil, 400, "BAD_REQUEST", ""},
		{"unsupported content encoding", "/v1/messages", "application/json", good, map[string]string{"Content-Encoding": "br"}, 400, "BAD_REQUEST", ""},
		{"body over the limit", "/v1/messages", "application/json", messagesBody(t, prompt+strings.Repeat("x", 1<<20)), nil, 413, "PAYLOAD_TOO_LARGE", ""},
		{"unknown path", "/api/v2/complete", "application/json", good, nil, 404, "NOT_FOUND", ""},
		{"no key", "/v1/messages", "application/json", good, map[string]string{"x-api-key": ""}, 401, "UNAUTHORIZED", "key"},
		{"provider key instead of a Takumo key", "/v1/messages", "application/json", good, map[string]string{"x-api-key": anthropicProviderKey}, 401, "UNAUTHORIZED", "tk_"},
		{"unknown Takumo key", "/v1/messages", "application/json", good,
			map[string]string{"x-api-key": "tk_test_0000000000000000000000000000000000000000000000000000000000000000"}, 401, "UNAUTHORIZED", ""},
		{"live key on a test gateway", "/v1/messages", "application/json", good,
			map[string]string{"x-api-key": "tk_live_9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"}, 401, "UNAUTHORIZED", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := g.post(t, c.path, c.ctype, c.body, c.hdr)
			e := wantError(t, r, c.status, c.code)
			if c.msgHas != "" && !strings.Contains(e.Error.Message, c.msgHas) {
				t.Errorf("message %q does not say what is wrong (want it to mention %q)", e.Error.Message, c.msgHas)
			}
			if strings.Contains(string(r.body), g.key) || strings.Contains(string(r.body), anthropicProviderKey) {
				t.Error("an error body repeats a key")
			}
		})
	}
	if n := len(p.Requests()); n != 0 {
		t.Errorf("the provider received %d of the refused requests", n)
	}
}

// TestInvalidUTF8InJSONStrings: a JSON string with bytes that are not
// UTF-8 around a secret. The request is refused with 400 before anything
// is sent: a secret next to broken bytes must not slip through a lenient
// parse.
func TestInvalidUTF8InJSONStrings(t *testing.T) {
	t.Parallel()
	p := okProvider(t)
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})
	body := messagesBody(t, "AWS_ACCESS_KEY_ID=PLACEHOLDER \xff\xfe ok")
	body = bytes.Replace(body, []byte("PLACEHOLDER"), []byte(awsKeyID), 1)
	body = bytes.Replace(body, []byte(`\ufffd\ufffd`), []byte("\xff\xfe"), 1)
	if !bytes.Contains(body, []byte("\xff\xfe")) {
		t.Fatal("test body lost its invalid bytes")
	}
	wantError(t, g.post(t, "/v1/messages", "application/json", body, nil), 400, "BAD_REQUEST")
	if n := len(p.Requests()); n != 0 {
		t.Errorf("the provider received %d requests", n)
	}
	assertProviderSawNoSecret(t, p, append(neverUpstream(g), awsKeyID))
}

// TestGzipBombIs413WithBoundedMemory sends 1 GiB of zeros gzipped into
// about 1 MB (repeated gzip members) to a gateway with a 4 MiB limit. Not
// parallel: it measures the heap of the whole process.
func TestGzipBombIs413WithBoundedMemory(t *testing.T) {
	p := okProvider(t)
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{yaml: "max_body_bytes: 4MiB\n"})

	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	_, _ = zw.Write(make([]byte, 1<<20))
	_ = zw.Close()
	bomb := bytes.Repeat(member.Bytes(), 1024) // 1 GiB inflated
	if len(bomb) > 4<<20 {
		t.Fatalf("the bomb itself is %d bytes, over the limit", len(bomb))
	}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := g.post(t, "/v1/messages", "application/json", bomb, map[string]string{"Content-Encoding": "gzip"})
	runtime.ReadMemStats(&after)
	wantError(t, r, 413, "PAYLOAD_TOO_LARGE")
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("gzip bomb: %d compressed bytes, %d bytes allocated while refusing it", len(bomb), allocated)
	// Inflating it would allocate 1 GiB; decoding to the limit, a few
	// times the limit.
	if allocated > 64<<20 {
		t.Errorf("allocated %d MiB while refusing a bomb with a 4 MiB limit", allocated>>20)
	}
	if n := len(p.Requests()); n != 0 {
		t.Errorf("the provider received %d requests", n)
	}
}

// TestProviderErrors: answers of a provider the tool cannot use become our
// DESIGN §6 errors.
func TestProviderErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		yaml    string
		handler fakeprovider.Handler
		status  int
		code    string
	}{
		{"HTML 502 from the provider", "", func(w *fakeprovider.ResponseWriter, _ *fakeprovider.Request) {
			w.Raw(http.StatusBadGateway, "text/html", []byte("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>\n"))
		}, 502, "BAD_GATEWAY"},
		{"provider hangs", "upstream_timeout: 300ms\n", func(w *fakeprovider.ResponseWriter, _ *fakeprovider.Request) {
			w.Hang()
		}, 504, "GATEWAY_TIMEOUT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := fakeprovider.New(c.handler)
			defer p.Close()
			g := startGateway(t, p, gatewayOpts{yaml: c.yaml})
			r := g.post(t, "/v1/messages", "application/json", messagesBody(t, prompt), nil)
			wantError(t, r, c.status, c.code)
			if strings.Contains(string(r.body), "<html>") && c.status == 502 {
				// The HTML is not JSON: it must not be passed as the upstream body.
				var e errorBody
				_ = json.Unmarshal(r.body, &e)
				if len(e.Error.Upstream) > 0 && string(e.Error.Upstream) != "null" {
					t.Errorf("upstream HTML passed through as %s", e.Error.Upstream)
				}
			}
			assertProviderSawNoSecret(t, p, neverUpstream(g))
		})
	}
}

// TestProviderResetMidStream: the provider dies in the middle of a text
// block. The SDK sees a broken stream, and what it received before holds no
// token and no half of one: it is a prefix of the real text.
func TestProviderResetMidStream(t *testing.T) {
	t.Parallel()
	// Cut in the thinking block, the text block and the tool_use block.
	for _, quarter := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("after ", quarter, "/4 of the events"), func(t *testing.T) {
			t.Parallel()
			p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
				data, b := fakeprovider.Encode(anthropicEcho(t, r).Events())
				cutAfter := len(b) * quarter / 4
				// Cut inside an event, so a partial line is pending too.
				w.StreamThenCut(fakeprovider.SplitAt(data, b[cutAfter]+11), 1)
			})
			defer p.Close()
			g := startGateway(t, p, gatewayOpts{})
			stream := anthropicClient(g).Messages.NewStreaming(context.Background(), anthropicParams(prompt))
			// The stream is cut on purpose: its Close error says nothing new.
			defer func() { _ = stream.Close() }()
			var all strings.Builder
			var text strings.Builder
			for stream.Next() {
				ev := stream.Current()
				all.WriteString(ev.RawJSON())
				if ev.Type == "content_block_delta" && ev.Delta.Type == "text_delta" {
					text.WriteString(ev.Delta.Text)
				}
				if ev.Type == "message_stop" {
					t.Error("the client saw message_stop on a stream the provider cut")
				}
			}
			if stream.Err() == nil {
				t.Error("the SDK saw a complete stream; want an error")
			}
			if strings.Contains(all.String(), "TAKUMO") || strings.Contains(all.String(), "__TAK") {
				t.Errorf("the client received (part of) a token: %q", all.String())
			}
			if !strings.HasPrefix(prompt, text.String()) {
				t.Errorf("text received is not a prefix of the original:\n%q", text.String())
			}
			assertProviderSawNoSecret(t, p, neverUpstream(g))
		})
	}
}

// forwarder is a TCP proxy between the gateway and a remote ext_proc
// server that counts the bytes it carried and can be cut.
type forwarder struct {
	ln       net.Listener
	target   string
	toServer atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

// The forwarder dials the target with t's context: once the test is over
// it carries nothing new.
func newForwarder(t *testing.T, target string) *forwarder {
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, target: target}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var d net.Dialer
			s, err := d.DialContext(t.Context(), "tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, s)
			f.mu.Unlock()
			f.wg.Add(2)
			go func() { defer f.wg.Done(); _, _ = io.Copy(countingWriter{s, &f.toServer}, c); _ = s.Close() }()
			go func() { defer f.wg.Done(); _, _ = io.Copy(c, s); _ = c.Close() }()
		}
	}()
	return f
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// cut closes the listener and every connection (the process is gone).
func (f *forwarder) cut() {
	_ = f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// startExtProc runs `takumo-aegis extproc --listen 127.0.0.1:0` and returns
// its address.
func startExtProc(t *testing.T, p *fakeprovider.Server, key string) (addr string, stop func() int, stderr *syncBuffer) {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "extproc.yaml")
	cfg := fmt.Sprintf("api_keys: [%s]\nanthropic_api_key: %q\nopenai_api_key: %q\nlog_format: json\nshutdown_timeout: 1ms\n",
		key, anthropicProviderKey, openAIProviderKey)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr = &syncBuffer{}
	stop = runMain(t, []string{"extproc", "--listen", "127.0.0.1:0", "--config", cfgPath}, &syncBuffer{}, stderr)
	waitFor(t, "extproc to listen", func() bool { return strings.Contains(stderr.String(), `"extproc listening"`) }, stderr)
	for _, line := range strings.Split(stderr.String(), "\n") {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "extproc listening" {
			return rec.Addr, stop, stderr
		}
	}
	t.Fatalf("no listening address in:\n%s", stderr)
	return "", nil, nil
}

// TestExtProcDiesMidRequest runs the gateway against a separate ext_proc
// server (--extproc-addr), sends the request headers and half the body,
// stops the ext_proc server and cuts its connections, then sends the rest:
// the client gets a 5xx and the provider gets nothing.
func TestExtProcDiesMidRequest(t *testing.T) {
	t.Parallel()
	p := okProvider(t)
	defer p.Close()
	const key = "tk_test_5d2f8a1c9e7b3f6a0d4c8e2b7f1a5c9d3e6b0f4a8c2d7e1b5f9a3c6d0e4b8f2a"
	addr, stopExtProc, _ := startExtProc(t, p, key)
	fw := newForwarder(t, addr)

	gwOut, gwErr := &syncBuffer{}, &syncBuffer{}
	cfg := writeConfig(t, p, "api_keys: ["+key+"]\n")
	stopGW := runMain(t, []string{"gateway", "--listen", "127.0.0.1:0", "--config", cfg, "--extproc-addr", fw.ln.Addr().String()}, gwOut, gwErr)
	defer stopGW()
	var base string
	waitFor(t, "the gateway to listen", func() bool {
		for _, line := range strings.Split(gwErr.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "gateway listening" {
				base = "http://" + rec.Addr
				return true
			}
		}
		return false
	}, gwErr)

	body := messagesBody(t, prompt)
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/messages", pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", key)
	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		// Read to the end below (or cut): closing cannot lose anything we check.
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: b}
	}()
	sentBefore := fw.toServer.Load()
	if _, err := pw.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	// The gateway opens the ext_proc stream with the request headers
	// before it has the body, as Envoy does.
	waitFor(t, "the request headers to reach ext_proc", func() bool { return fw.toServer.Load() > sentBefore }, gwErr)

	if code := stopExtProc(); code != cli.ExitOK {
		t.Errorf("extproc exited with %d", code)
	}
	fw.cut()
	_, _ = pw.Write(body[len(body)/2:])
	_ = pw.Close()

	r := <-done
	if r.err != nil {
		t.Fatalf("client: %v", r.err)
	}
	if r.status < 500 {
		t.Errorf("client got %d, want a 5xx: %s", r.status, r.body)
	}
	t.Logf("ext_proc died mid-request: client got %d %s", r.status, r.body)
	if n := len(p.Requests()); n != 0 {
		t.Errorf("the provider received %d requests after ext_proc died", n)
	}
}

// TestClientDisconnectMidStream: a client that goes away in the middle of
// a stream leaves no goroutine behind once the gateway has stopped. Not
// parallel: it compares the goroutines of the whole process.
func TestClientDisconnectMidStream(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		data, b := fakeprovider.Encode(anthropicEcho(t, r).Events())
		// Half the stream, then nothing until the client is gone.
		w.StreamThenHang(fakeprovider.SplitAt(data, b...)[:len(b)/2])
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})

	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		c := anthropic.NewClient(option.WithBaseURL(g.base), option.WithAPIKey(g.key), option.WithMaxRetries(0), option.WithHTTPClient(hc))
		stream := c.Messages.NewStreaming(ctx, anthropicParams(prompt))
		got := 0
		for got < 4 && stream.Next() {
			got++
		}
		if got < 4 {
			t.Fatalf("run %d: stream ended after %d events: %v", i, got, stream.Err())
		}
		cancel() // the user pressed Ctrl-C
		for stream.Next() {
		}
		if err := stream.Err(); err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceled") {
			t.Logf("run %d: stream ended with %v", i, err)
		}
		_ = stream.Close()
	}
	g.stop()
	p.Close()
	transport.CloseIdleConnections()
	assertProviderSawNoSecret(t, p, neverUpstream(g))
	// goleak.VerifyNone (deferred) retries for a while, so goroutines that
	// are still winding down are not counted as leaks.
}
