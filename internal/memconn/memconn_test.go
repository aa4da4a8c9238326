package memconn

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

func TestDialAcceptCopies(t *testing.T) {
	l := Listen()
	defer func() { _ = l.Close() }()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := l.DialContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 200<<10)
	for i := range msg {
		msg[i] = byte(i)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	msg[0] ^= 0xff // the reader has its own copy once Write returned
	_ = c.Close()
	b := <-got
	if len(b) != len(msg) || b[0] != 0 || b[len(b)-1] != msg[len(msg)-1] {
		t.Fatalf("read %d bytes, first %d; want %d bytes, first 0", len(b), b[0], len(msg))
	}
	if l.Addr().Network() != "memconn" || l.Addr().String() != "in-process" {
		t.Errorf("Addr = %v", l.Addr())
	}
}

func TestClosedListener(t *testing.T) {
	l := Listen()
	_ = l.Close()
	_ = l.Close() // twice is fine
	if _, err := l.Accept(); !errors.Is(err, ErrClosed) {
		t.Errorf("Accept after Close: %v, want ErrClosed", err)
	}
	if _, err := l.DialContext(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial after Close: %v, want ErrClosed", err)
	}
}

func TestDialHonoursContext(t *testing.T) {
	l := Listen() // nobody accepts
	defer func() { _ = l.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.DialContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial with no Accept: %v, want the context's error", err)
	}
}
