package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
)

// auditBuffer holds audit events from Audit until the coordinator
// acknowledges them. Sequence numbers are reserved on disk (audit.seq) a
// block ahead of use, so a restart starts past every number the previous
// run could have used.
type auditBuffer struct {
	// immutable after construction
	dir string
	max int
	log *slog.Logger

	mu       sync.Mutex
	pending  []*coordv1.AuditEvent // unacknowledged, seq ascending; guarded by mu
	next     uint64                // the next seq to assign; guarded by mu
	reserved uint64                // highest seq reserved on disk; guarded by mu
	asking   bool                  // a reservation is wanted or under way; guarded by mu

	wake    chan struct{} // cap 1: events were added
	reserve chan struct{} // cap 1: the reservation is running low
	dropped atomic.Uint64
}

func newAuditBuffer(opt Options, highWater uint64) (*auditBuffer, error) {
	b := &auditBuffer{dir: opt.DataDir, max: opt.AuditBuffer, log: opt.Logger, next: highWater + 1,
		wake: make(chan struct{}, 1), reserve: make(chan struct{}, 1)}
	// Every number up to highWater may have been used by an earlier run.
	if err := writeSeq(b.dir, highWater+seqBlock); err != nil {
		return nil, err
	}
	b.reserved = highWater + seqBlock
	return b, nil
}

// Audit queues e for the coordinator and returns at once: it sets e's Seq
// (strictly increasing, never reused across restarts) and takes ownership
// of e (the caller must not change it afterwards). When AuditBuffer events
// are waiting already, e is dropped and counted (Dropped): the buffered
// events are kept, since the oldest may be in flight and are the nearest
// to being stored.
//
// Audit touches the disk only when the sequence reservation runs out
// before Run's background writer extends it (Run not running, or more
// than 5,000 events in the time one small file takes to write).
func (c *Client) Audit(e *coordv1.AuditEvent) {
	b := c.audit
	b.mu.Lock()
	if len(b.pending) >= b.max {
		b.mu.Unlock()
		b.dropped.Add(1)
		return
	}
	if b.next > b.reserved {
		if err := b.extend(); err != nil {
			b.mu.Unlock()
			b.dropped.Add(1)
			b.log.Error("coordinator client: cannot reserve audit sequence numbers; event dropped", "err", err)
			return
		}
	}
	e.Seq = b.next
	b.next++
	b.pending = append(b.pending, e)
	low := b.reserved-b.next < seqBlock/2 && !b.asking
	if low {
		b.asking = true
	}
	b.mu.Unlock()
	if low {
		signal(b.reserve)
	}
	signal(b.wake)
}

// Buffered is how many audit events wait for the coordinator's
// acknowledgement.
func (c *Client) Buffered() int {
	c.audit.mu.Lock()
	defer c.audit.mu.Unlock()
	return len(c.audit.pending)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// extend reserves the next block. Call with mu held.
func (b *auditBuffer) extend() error {
	to := b.next - 1 + seqBlock
	if err := writeSeq(b.dir, to); err != nil {
		return err
	}
	b.reserved = to
	return nil
}

// reserveLoop extends the reservation in the background when Audit says it
// runs low.
func (b *auditBuffer) reserveLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.reserve:
		}
		b.mu.Lock()
		var err error
		if b.reserved-b.next < seqBlock/2 {
			err = b.extend()
		}
		b.asking = false
		b.mu.Unlock()
		if err != nil {
			b.log.Error("coordinator client: cannot reserve audit sequence numbers", "err", err)
		}
	}
}

// after returns up to n pending events with seq > seq.
func (b *auditBuffer) after(seq uint64, n int) []*coordv1.AuditEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := sort.Search(len(b.pending), func(i int) bool { return b.pending[i].GetSeq() > seq })
	j := min(i+n, len(b.pending))
	if i == j {
		return nil
	}
	return append([]*coordv1.AuditEvent(nil), b.pending[i:j]...)
}

// ack drops the events with seq <= through: the coordinator stored them.
func (b *auditBuffer) ack(through uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := sort.Search(len(b.pending), func(i int) bool { return b.pending[i].GetSeq() > through })
	clear(b.pending[:i])
	b.pending = b.pending[i:]
	if len(b.pending) == 0 {
		b.pending = nil
	}
}

// auditLoop ships buffered events over ShipAudit until ctx ends, opening a
// new stream after a failure and resending from the oldest event not
// acknowledged.
func (c *Client) auditLoop(ctx context.Context, api coordv1.CoordinatorServiceClient, fail func(error)) {
	bo := c.newBackoff()
	for ctx.Err() == nil {
		err := c.shipOnce(ctx, api, bo)
		switch {
		case ctx.Err() != nil:
			return
		case refused(err):
			fail(err)
			return
		}
		wait := bo.next()
		c.log.Warn("coordinator client: audit stream ended; reconnecting", "err", err,
			"retry_in", wait.Round(time.Millisecond).String(), "buffered", c.Buffered())
		if !sleep(ctx, wait) {
			return
		}
	}
}

// shipOnce runs one ShipAudit stream. When ctx ends it closes its side and
// waits up to Options.DrainTimeout for the coordinator's last acknowledgement.
func (c *Client) shipOnce(ctx context.Context, api coordv1.CoordinatorServiceClient, bo *backoffState) error {
	b := c.audit
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stream, err := api.ShipAudit(sctx)
	if err != nil {
		return err
	}
	acked := make(chan struct{}, 1)
	ended := make(chan error, 1)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				ended <- err
				return
			}
			b.ack(r.GetAckedThrough())
			signal(acked)
		}
	}()
	var sent uint64 // highest seq sent on this stream
	for {
		batch := b.after(sent, c.opt.AuditBatch)
		if len(batch) > 0 {
			if err := stream.Send(&coordv1.ShipAuditRequest{Events: batch}); err != nil {
				// The stream broke; Recv has the reason.
				t := time.AfterFunc(c.opt.DrainTimeout, cancel)
				err := <-ended
				t.Stop()
				return streamErr(err)
			}
			sent = batch[len(batch)-1].GetSeq()
			continue
		}
		select {
		case <-b.wake:
		case <-acked:
			bo.reset()
		case err := <-ended:
			return streamErr(err)
		case <-ctx.Done():
			_ = stream.CloseSend()
			t := time.AfterFunc(c.opt.DrainTimeout, cancel)
			err := <-ended
			t.Stop()
			if !errors.Is(err, io.EOF) {
				c.log.Warn("coordinator client: audit events not acknowledged at shutdown", "buffered", c.Buffered())
			}
			return nil
		}
	}
}

// streamErr turns the coordinator closing its side into an error worth a
// reconnect.
func streamErr(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("the coordinator closed the audit stream")
	}
	return err
}
