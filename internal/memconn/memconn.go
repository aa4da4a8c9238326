// Package memconn is an in-memory net.Listener for the gateway's
// in-process ext_proc connection.
//
// Each connection is a net.Pipe: a Write hands its bytes straight to the
// Read on the other end, one copy, with no buffer in between. grpc-go's
// bufconn, which the gateway used before, copies every byte twice (into
// its ring buffer and out again) under a mutex; a 64 KB body crosses the
// in-process connection twice per request, so that second copy was
// measurable (bench/README.md). grpc-go reads and writes through its own
// buffers, so the synchronous hand-off of net.Pipe costs it nothing.
package memconn

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrClosed is returned by Accept and Dial once the listener is closed.
var ErrClosed = errors.New("memconn: listener closed")

// Listener accepts the connections Dial makes.
type Listener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

var _ net.Listener = (*Listener)(nil)

// Listen returns a new Listener.
func Listen() *Listener {
	return &Listener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next Dial.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	}
}

// Close stops Accept and Dial. Connections already made stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr names the listener.
func (l *Listener) Addr() net.Addr { return addr{} }

// DialContext connects to the listener. It waits for Accept, ctx or Close.
func (l *Listener) DialContext(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
	case <-ctx.Done():
		_ = client.Close()
		_ = server.Close()
		return nil, ctx.Err()
	}
	_ = client.Close()
	_ = server.Close()
	return nil, ErrClosed
}

type addr struct{}

func (addr) Network() string { return "memconn" }
func (addr) String() string  { return "in-process" }
