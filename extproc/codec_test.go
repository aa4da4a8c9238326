package extproc

import (
	"bytes"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

func TestBufferPoolSizes(t *testing.T) {
	p := newBufferPool()
	for _, tc := range []struct {
		size, wantCap int
	}{
		{1, 4 << 10},
		{4 << 10, 4 << 10},
		{4<<10 + 1, 8 << 10},
		{66 << 10, 128 << 10},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 1}, // past the largest tier: exact, unpooled
	} {
		b := p.Get(tc.size)
		if len(*b) != tc.size || cap(*b) != tc.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tc.size, len(*b), cap(*b), tc.size, tc.wantCap)
		}
		p.Put(b)
	}
	odd := make([]byte, 5000)
	p.Put(&odd) // not a power of two: dropped, never handed out
	if b := p.Get(5000); cap(*b) != 8<<10 {
		t.Errorf("Get after a foreign Put: cap %d, want %d", cap(*b), 8<<10)
	}
}

func TestProtoCodecRoundTrip(t *testing.T) {
	c := protoCodec{pool: newBufferPool()}
	for _, size := range []int{0, 10, 64 << 10, 1 << 20} {
		body := bytes.Repeat([]byte("a\x00b"), size/3+1)[:size]
		in := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}}
		data, err := c.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := proto.Marshal(in)
		if got := data.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("size %d: wire bytes differ from proto.Marshal", size)
		}
		// Split as the transport does (16 KiB frames) and as one buffer.
		for _, split := range []bool{false, true} {
			var bs mem.BufferSlice
			if split {
				for rest := want; len(rest) > 0; {
					n := min(len(rest), 16<<10)
					bs = append(bs, mem.SliceBuffer(rest[:n]))
					rest = rest[n:]
				}
			} else {
				bs = mem.BufferSlice{mem.SliceBuffer(want)}
			}
			out := &extprocv3.ProcessingRequest{}
			if err := c.Unmarshal(bs, out); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(in, out) {
				t.Fatalf("size %d split %v: round trip differs", size, split)
			}
		}
		data.Free()
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Error("Marshal of a non-message: no error")
	}
	if err := c.Unmarshal(nil, "not a message"); err == nil {
		t.Error("Unmarshal into a non-message: no error")
	}
}
func TestAttrSetsCache(t *testing.T) {
	var c attrSets
	entries := func() int {
		n := 0
		c.m.Range(func(any, any) bool { n++; return true })
		return n
	}
	for _, tc := range []struct {
		kv   []string
		want int // entries after the get
	}{
		{[]string{"status", "200", "provider", "anthropic"}, 1},
		{[]string{"status", "200", "provider", "anthropic"}, 1}, // cached
		{[]string{"status", "20", "provider", "0anthropic"}, 2}, // no collision across labels
		{[]string{"kind", "reset"}, 3},
	} {
		o := c.get(tc.kv...)
		if n := entries(); n != tc.want {
			t.Errorf("after get(%q): %d entries, want %d", tc.kv, n, tc.want)
		}
		cfg := metric.NewAddConfig([]metric.AddOption{o})
		set := cfg.Attributes()
		for i := 0; i < len(tc.kv); i += 2 {
			if v, ok := set.Value(attribute.Key(tc.kv[i])); !ok || v.AsString() != tc.kv[i+1] {
				t.Errorf("get(%q): %s = %v, want %s", tc.kv, tc.kv[i], v.AsString(), tc.kv[i+1])
			}
		}
	}
}
