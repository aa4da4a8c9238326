// Package pbcodec is the gRPC codec and buffer pool of the ext_proc
// connection, on both of its ends: the gateway (the client, as Envoy) and
// the ext_proc server.
package pbcodec

import (
	"fmt"
	"math/bits"
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// gRPC's defaults cost a 64 KB body dearly: the default pool's tiers jump
// from 32 KiB to 1 MiB, and it zeroes the whole buffer on every Get, so
// each 64 KB message cleared 1 MiB on the way out and again on the way in.
// This pool has a tier for every power of two and hands buffers out
// without clearing them: every user overwrites what it reads (a marshal
// fills the buffer, a copy or a frame read fills it to its length). That
// changes nothing for what stays in memory: gRPC's pool clears on Get, not
// on Put, so a returned buffer kept its bytes until reused there too.

const (
	minPoolExp = 12 // 4 KiB; smaller buffers are not pooled
	// maxPoolExp: 1 MiB. Larger messages get exact, unpooled buffers: a
	// power-of-two tier would nearly double a body just over a power of
	// two, and at that size the copy costs more than the allocation
	// (peak RSS with 50 in-flight 1 MB bodies: 6.3 MiB per request
	// pooled up to 64 MiB, 5.1 MiB with this limit).
	maxPoolExp = 20
)

// Pool is a mem.BufferPool with one sync.Pool per power of two. Its
// buffers come back dirty: every user must overwrite what it reads.
type Pool struct {
	tiers [maxPoolExp - minPoolExp + 1]sync.Pool
}

var _ mem.BufferPool = (*Pool)(nil)

// NewPool returns an empty Pool.
func NewPool() *Pool { return &Pool{} }

// tier returns the tier index for a buffer of size bytes (rounding up),
// or -1 outside the pooled range.
func tierFor(size int) int {
	if size <= 0 || size > 1<<maxPoolExp {
		return -1
	}
	e := bits.Len(uint(size - 1))
	if e < minPoolExp {
		e = minPoolExp
	}
	return e - minPoolExp
}

// Get returns a buffer of length size, not cleared.
func (p *Pool) Get(size int) *[]byte {
	t := tierFor(size)
	if t < 0 {
		b := make([]byte, size)
		return &b
	}
	if b, ok := p.tiers[t].Get().(*[]byte); ok {
		*b = (*b)[:size]
		return b
	}
	b := make([]byte, size, 1<<(t+minPoolExp))
	return &b
}

// Put returns a buffer; one that Get cannot have made is dropped.
func (p *Pool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minPoolExp || c > 1<<maxPoolExp || c&(c-1) != 0 {
		return // not one of ours
	}
	p.tiers[bits.Len(uint(c))-1-minPoolExp].Put(b)
}

// Codec is gRPC's proto codec (same wire format, same name) drawing on a
// Pool, and reading a message held in one buffer in place.
type Codec struct {
	Pool *Pool
	// Errors prefixes the codec's errors ("ext_proc codec").
	Errors string
}

var _ encoding.CodecV2 = Codec{}

// Marshal encodes v into a pooled buffer.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%s: cannot marshal %T", c.Errors, v)
	}
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true} // Size just ran
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Errors, err)
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := c.Pool.Get(size)
	out, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil || len(out) != size {
		c.Pool.Put(buf)
		if err == nil {
			err = fmt.Errorf("size %d, marshalled %d bytes", size, len(out))
		}
		return nil, fmt.Errorf("%s: %w", c.Errors, err)
	}
	*buf = out
	return mem.BufferSlice{mem.NewBuffer(buf, c.Pool)}, nil
}

// Unmarshal decodes data into v, in place when data is one buffer.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("%s: cannot unmarshal into %T", c.Errors, v)
	}
	var err error
	if len(data) == 1 {
		err = proto.Unmarshal(data[0].ReadOnlyData(), m)
	} else {
		buf := data.MaterializeToBuffer(c.Pool)
		err = proto.Unmarshal(buf.ReadOnlyData(), m)
		buf.Free()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c.Errors, err)
	}
	return nil
}

// Name is "proto": the codec replaces gRPC's own.
func (Codec) Name() string { return "proto" }
