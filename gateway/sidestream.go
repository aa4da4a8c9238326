package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
)

// Outcomes of the side stream that end ext_proc processing. Each maps to
// one row of the failure matrix (extproc-anchors §1.7).
var (
	// errOKClose: the server ended Process with OK before answering
	// everything. Envoy then carries on without ext_proc (fail-open).
	errOKClose = errors.New("ext_proc closed the stream with OK before the exchange was complete")
	// errMessageTimeout: no reply within message_timeout (504).
	errMessageTimeout = errors.New("ext_proc message timeout")
	// errSpurious: a reply that answers nothing we sent (500).
	errSpurious = errors.New("ext_proc sent a spurious reply")
)

// recvResult is one result of stream.Recv.
type recvResult struct {
	resp *extprocv3.ProcessingResponse
	err  error
}

// maxInFlight bounds the STREAMED chunks sent to ext_proc and not yet
// answered (Envoy's watermark). It must stay below the replies buffer so
// the receive goroutine never blocks while the sender waits on flow
// control.
const maxInFlight = 16

// sideStream is the client end of one ext_proc Process stream. It is owned
// by the request's goroutine.
//
// Replies are received on the request's goroutine itself while the
// exchange is one message and one reply at a time (headers, BUFFERED
// bodies): a receive goroutine in between would add a goroutine hand-off
// to every round trip, and on a machine with idle cores each hand-off can
// wait for a core to wake up (the added latency of one 64 KB request fell
// by about a tenth without it, bench/README.md). A message timeout then
// cancels the stream, which ends the blocked Recv; the stream is failed
// either way. A STREAMED body, whose chunks are sent without waiting for
// the earlier replies, starts the receive goroutine (background), and
// every later reply comes through it.
type sideStream struct {
	stream       extprocv3.ExternalProcessor_ProcessClient
	cancel       context.CancelFunc // ends the stream (a message timeout)
	ctx          context.Context    // the stream's
	wg           *sync.WaitGroup
	replies      chan recvResult // nil until background
	timeout      time.Duration
	maxTimeout   time.Duration
	protocol     *extprocv3.ProtocolConfiguration // sent once, in the first message
	overrideUsed bool                             // override_message_timeout used in this state
}

// openSideStream starts the stream. It ends when ctx is cancelled; a
// receive goroutine, once started, ends with it (wg tracks it).
func openSideStream(ctx context.Context, cc grpc.ClientConnInterface, wg *sync.WaitGroup, timeout, maxTimeout time.Duration, protocol *extprocv3.ProtocolConfiguration) (*sideStream, error) {
	sctx, cancel := context.WithCancel(ctx)
	st, err := extprocv3.NewExternalProcessorClient(cc).Process(sctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ext_proc stream: %w", err)
	}
	return &sideStream{
		stream:     st,
		cancel:     cancel,
		ctx:        sctx,
		wg:         wg,
		timeout:    timeout,
		maxTimeout: maxTimeout,
		protocol:   protocol,
	}, nil
}

// background starts the receive goroutine (once) and returns the channel
// that carries every reply from then on.
func (s *sideStream) background() chan recvResult {
	if s.replies != nil {
		return s.replies
	}
	s.replies = make(chan recvResult, 4*maxInFlight)
	st, ctx, replies := s.stream, s.ctx, s.replies
	s.wg.Go(func() {
		for {
			resp, err := st.Recv()
			select {
			case replies <- recvResult{resp, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})
	return s.replies
}

// send writes one message, adding protocol_config to the first. A send
// that fails because the stream is over reports the stream's real outcome.
func (s *sideStream) send(ctx context.Context, req *extprocv3.ProcessingRequest) error {
	if s.protocol != nil {
		req.ProtocolConfig = s.protocol
		s.protocol = nil
	}
	err := s.stream.Send(req)
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		// The stream is over; Recv tells how (at once: it has ended).
		var rr recvResult
		if s.replies == nil {
			rr.resp, rr.err = s.stream.Recv()
		} else {
			select {
			case rr = <-s.replies:
			case <-ctx.Done():
				return fmt.Errorf("ext_proc stream: %w", ctx.Err())
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("ext_proc stream: %w", ctx.Err())
		}
		if rr.err != nil {
			return classifyRecvErr(rr.err)
		}
		return errSpurious
	}
	return fmt.Errorf("ext_proc stream: %w", err)
}

// classifyRecvErr maps the end of a stream to our outcomes.
func classifyRecvErr(err error) error {
	if errors.Is(err, io.EOF) {
		return errOKClose
	}
	return fmt.Errorf("ext_proc stream: %w", err)
}

// newState resets per-state bookkeeping (one override_message_timeout per
// state).
func (s *sideStream) newState() { s.overrideUsed = false }

// overrideTimeout handles a ProcessingResponse carrying
// override_message_timeout: once per state, between 1 ms and
// max_message_timeout (0 disables it). It reports the new timeout and
// whether it applies; the reply is never an answer either way.
func (s *sideStream) overrideTimeout(resp *extprocv3.ProcessingResponse) (time.Duration, bool) {
	d := resp.GetOverrideMessageTimeout().AsDuration()
	if s.maxTimeout <= 0 || s.overrideUsed || d < time.Millisecond || d > s.maxTimeout {
		return 0, false
	}
	s.overrideUsed = true
	return d, true
}

// await waits for the reply to the message sent at sentAt, bounded by
// message_timeout (restarted by a valid override_message_timeout).
func (s *sideStream) await(ctx context.Context, sentAt time.Time) (*extprocv3.ProcessingResponse, error) {
	if s.replies == nil {
		return s.awaitHere(ctx, sentAt)
	}
	timer := time.NewTimer(time.Until(sentAt.Add(s.timeout)))
	defer timer.Stop()
	for {
		select {
		case rr := <-s.replies:
			if rr.err != nil {
				return nil, classifyRecvErr(rr.err)
			}
			if rr.resp.GetOverrideMessageTimeout() != nil {
				if d, ok := s.overrideTimeout(rr.resp); ok {
					timer.Reset(d)
				}
				continue
			}
			return rr.resp, nil
		case <-timer.C:
			return nil, errMessageTimeout
		case <-ctx.Done():
			return nil, fmt.Errorf("ext_proc stream: %w", ctx.Err())
		}
	}
}

// awaitHere is await on the request's goroutine: Recv itself, with the
// message timeout cancelling the stream.
func (s *sideStream) awaitHere(ctx context.Context, sentAt time.Time) (*extprocv3.ProcessingResponse, error) {
	deadline := sentAt.Add(s.timeout)
	timer := time.AfterFunc(time.Until(deadline), s.cancel)
	for {
		resp, err := s.stream.Recv()
		if !timer.Stop() {
			// The timeout fired (or is firing): the stream is cancelled,
			// whatever Recv returned.
			if ctx.Err() != nil {
				return nil, fmt.Errorf("ext_proc stream: %w", ctx.Err())
			}
			return nil, errMessageTimeout
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ext_proc stream: %w", ctx.Err())
		}
		if err != nil {
			return nil, classifyRecvErr(err)
		}
		if resp.GetOverrideMessageTimeout() != nil {
			if d, ok := s.overrideTimeout(resp); ok {
				deadline = time.Now().Add(d)
			}
			timer.Reset(time.Until(deadline))
			continue
		}
		return resp, nil
	}
}

// closeSend half-closes the stream: the exchange is complete.
func (s *sideStream) closeSend() {
	_ = s.stream.CloseSend() // the context cancel that follows ends it anyway
}

// failureKind names err for aegis_extproc_failures_total.
func failureKind(err error) string {
	switch {
	case errors.Is(err, errOKClose):
		return failOKClose
	case errors.Is(err, errMessageTimeout):
		return failTimeout
	case errors.Is(err, errSpurious):
		return failSpurious
	case errors.Is(err, errMutation):
		return failMutation
	case errors.Is(err, errLengthMismatch):
		return failLength
	default:
		return failStream
	}
}
