// Package client is the gateway side of the coordinator (DESIGN §8): it
// registers the gateway with a join key, keeps the newest snapshot of
// keys, orgs and policy that Sync streams (in memory and in the data dir,
// so a restarted gateway can serve under fail_open), reports health, and
// ships audit events with acknowledgement so that none is lost or stored
// twice across reconnects.
//
// # Files (Options.DataDir, each 0600, written atomically)
//
//   - gateway.json: the gateway id and credential from Register, so a
//     gateway registers once per data dir. It is a secret; a copy that
//     group or others may read is refused (ErrFileMode).
//   - snapshot.pb: the last good snapshot as one full coordv1.Snapshot.
//     It holds key hashes, never keys. Its modification time is when the
//     client last knew it to be current (moved forward while in sync).
//   - audit.seq: the audit sequence high-water mark, reserved in blocks
//     of 10,000 ahead, so a restart never reuses a sequence number.
//
// # Fail modes
//
// Keys().Authenticate answers from the current snapshot and never says
// yes without a key match. Under fail_closed (the default) it fails with
// ErrNotReady, which is not a keys.AuthError (the ext_proc server answers
// 503), while there has never been a snapshot, or while the client is not
// in sync and the last time it was (for a snapshot.pb loaded at start, the
// file's modification time) is older than Grace. Under fail_open it
// serves on the last snapshot, loaded from snapshot.pb at New, whatever
// its age. Neither mode touches tokenization.
//
// # Reconnects
//
// The Sync and ShipAudit streams are reopened with exponential backoff and
// full jitter (MinBackoff … MaxBackoff); a failed health report waits for
// the next tick. A join key the coordinator refuses (unknown, revoked,
// malformed) is not tried again sooner than MaxBackoff, with an error log
// each time, so a fleet with a revoked key does not storm Register. A
// credential the coordinator no longer knows, or one whose join key was
// revoked, sends the client back to Register.
//
// # Audit
//
// Audit never waits on the network: events wait in a bounded buffer (AuditBuffer; when
// full, the new event is dropped and counted by Dropped) until the
// coordinator acknowledges them, and are resent on a new stream after a
// reconnect; the coordinator stores each (gateway, seq) once. The buffer is
// memory only: when Run ends it waits up to DrainTimeout for the last
// acknowledgement, and what a crash leaves unacknowledged is lost.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/keys"
)

// Fail modes (TAKUMO_FAIL_MODE).
const (
	FailClosed = "fail_closed"
	FailOpen   = "fail_open"
)

// Defaults of Options.
const (
	DefaultGrace        = 10 * time.Minute
	DefaultAuditBuffer  = 100_000
	DefaultAuditBatch   = 500
	DefaultDrainTimeout = 5 * time.Second
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	// seqBlock is how far ahead of use the audit sequence is reserved on
	// disk.
	seqBlock = 10_000
	// maxRecv is the largest snapshot message accepted (the coordinator's
	// send limit and some room).
	maxRecv = 64<<20 + 1<<10
)

// Options configure a Client. Zero values take the documented defaults;
// Addr, JoinKey, Mode and DataDir are required.
type Options struct {
	// Addr is the coordinator's gRPC address (host:port or a gRPC target).
	Addr string
	// JoinKey is "jk_" + 64 hex. It is a secret; it is sent to Register
	// only and kept on disk as its SHA-256 only.
	JoinKey string
	// Name (hostname or pod) and Version (the build) are shown to
	// operators.
	Name, Version string
	// Mode is the key mode the gateway serves: keys of the other mode are
	// refused.
	Mode keys.Mode
	// DataDir holds gateway.json, snapshot.pb and audit.seq; made 0700 when
	// missing.
	DataDir string
	// FailMode is FailClosed (empty: the default) or FailOpen.
	FailMode string
	// Grace is how long, under fail_closed, the last snapshot serves while
	// the client is out of sync with the coordinator (default 10 min): a
	// key revoked meanwhile stays usable for at most that long. It also
	// bounds how old a snapshot.pb loaded at start may be.
	Grace time.Duration
	// DialOptions are added to the client's own (insecure transport
	// unless the caller gives credentials, a reconnect backoff matching
	// MinBackoff/MaxBackoff, a 64 MiB receive limit); TLS is the caller's.
	DialOptions []grpc.DialOption
	// Logger receives the client's logs (none when nil). Nothing secret
	// is logged.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// AuditBuffer is how many audit events the client holds until the
	// coordinator acknowledges them (default 100,000). An event that finds
	// the buffer full is dropped and counted by Dropped.
	AuditBuffer int
	// AuditBatch is the most events sent in one ShipAudit message (default
	// 500).
	AuditBatch int
	// DrainTimeout is how long Run, when its context ends, waits for the
	// coordinator to store and acknowledge the audit events already sent
	// (default 5 s); what is not acknowledged by then is lost.
	DrainTimeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect backoff (defaults
	// 100 ms and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// HealthInterval overrides the interval Register returns (tests).
	HealthInterval time.Duration
	// Stats supplies the health report's figures (active sessions,
	// requests, errors, p99); nil reports zeros. Memory comes from
	// runtime/metrics.
	Stats func() Stats
	// OnSnapshot is called, from the sync goroutine, after each snapshot
	// is applied, with its version (to reload policy data, say). It must
	// not block for long.
	OnSnapshot func(version uint64)
}

// Stats are the figures of a health report that the caller knows.
type Stats struct {
	ActiveSessions int64
	// Requests and Errors count since the previous report.
	Requests, Errors uint64
	LatencyP99Ms     float64
}

// Client is a gateway's connection to the coordinator. Make one with New,
// run it with Run; Keys, Audit, Ready and the accessors are safe for
// concurrent use at any time, also before and after Run.
type Client struct {
	// immutable after New
	opt        Options
	log        *slog.Logger
	failClosed bool

	cur       atomic.Pointer[state]
	inSync    atomic.Bool  // a Sync stream is up and its first snapshot applied
	syncedAt  atomic.Int64 // unix ns: when the client last knew it held the newest snapshot
	usage     *keys.MemStore
	pending   pendingUsage // usage not yet reported to the coordinator
	fleet     fleetUsage   // the fleet's totals from the last health report
	keysStore *Keys

	audit *auditBuffer

	idMu sync.Mutex
	id   *identity // guarded by idMu; nil: register first

	registerCalls atomic.Int64 // for logs: how many Register calls this process made
}

// ErrNotReady is returned by Keys().Authenticate under fail_closed when
// there is no usable snapshot. It is not a keys.AuthError: the request
// fails with 503, never with 401, and never passes.
var ErrNotReady = errors.New("coordinator client: no current snapshot of keys (fail_closed)")

// New checks opt, makes DataDir, reads gateway.json, audit.seq and
// snapshot.pb (refusing any that group or others may read) and reserves
// the next block of audit sequence numbers. It does not connect.
func New(opt Options) (*Client, error) {
	var errs []error
	if opt.Addr == "" {
		errs = append(errs, errors.New("no coordinator address"))
	}
	if !strings.HasPrefix(opt.JoinKey, "jk_") {
		errs = append(errs, errors.New("the join key does not start with \"jk_\""))
	}
	if !opt.Mode.Valid() {
		errs = append(errs, fmt.Errorf("mode %q: want live or test", opt.Mode))
	}
	if opt.DataDir == "" {
		errs = append(errs, errors.New("no data dir"))
	}
	switch opt.FailMode {
	case "":
		opt.FailMode = FailClosed
	case FailClosed, FailOpen:
	default:
		errs = append(errs, fmt.Errorf("fail mode %q: want %s or %s", opt.FailMode, FailClosed, FailOpen))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("coordinator client: %w", err)
	}
	if opt.Grace <= 0 {
		opt.Grace = DefaultGrace
	}
	if opt.AuditBuffer <= 0 {
		opt.AuditBuffer = DefaultAuditBuffer
	}
	if opt.AuditBatch <= 0 {
		opt.AuditBatch = DefaultAuditBatch
	}
	if opt.DrainTimeout <= 0 {
		opt.DrainTimeout = DefaultDrainTimeout
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = DefaultMinBackoff
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = DefaultMaxBackoff
	}
	opt.MaxBackoff = max(opt.MaxBackoff, opt.MinBackoff)
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := os.MkdirAll(opt.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("coordinator client: %w", err)
	}
	c := &Client{opt: opt, log: opt.Logger, failClosed: opt.FailMode == FailClosed,
		usage: keys.NewMemStore(keys.Options{Mode: opt.Mode, Clock: opt.Now})}
	c.keysStore = &Keys{c: c}

	id, err := readIdentity(opt.DataDir)
	if err != nil {
		return nil, err
	}
	if id != nil && id.JoinKeySHA256 != joinKeyHash(opt.JoinKey) {
		c.log.Info("coordinator client: the join key changed since registration; registering again", "old", id.String())
		id = nil
	}
	c.id = id

	seq, err := readSeq(opt.DataDir)
	if err != nil {
		return nil, err
	}
	if c.audit, err = newAuditBuffer(opt, seq); err != nil {
		return nil, err
	}

	sn, mtime, err := loadSnapshot(opt.DataDir)
	if err != nil {
		return nil, err
	}
	if sn != nil {
		st, err := apply(nil, sn, opt.Mode, c.log)
		if err != nil {
			return nil, fmt.Errorf("coordinator client: cached snapshot: %w", err)
		}
		c.cur.Store(st)
		c.syncedAt.Store(mtime.UnixNano())
		c.log.Info("coordinator client: loaded the cached snapshot", "version", st.version, "keys", len(st.keys),
			"current_as_of", mtime.UTC().Format(time.RFC3339), "fail_mode", opt.FailMode, "ready", c.Ready())
	}
	return c, nil
}

// Keys returns the key store backed by the snapshot (extproc.KeyStore).
func (c *Client) Keys() *Keys { return c.keysStore }

// Version is the version of the snapshot held (0: none).
func (c *Client) Version() uint64 {
	if st := c.cur.Load(); st != nil {
		return st.version
	}
	return 0
}

// Ready reports whether Authenticate can answer from a snapshot under the
// fail mode (the readiness probe).
func (c *Client) Ready() bool { return c.usable() == nil }

// usable returns nil when the snapshot may serve, ErrNotReady (wrapped
// with the reason) when not.
func (c *Client) usable() error {
	if c.cur.Load() == nil {
		return fmt.Errorf("%w: none received yet", ErrNotReady)
	}
	if !c.failClosed || c.inSync.Load() {
		return nil
	}
	age := c.opt.Now().Sub(time.Unix(0, c.syncedAt.Load()))
	if age > c.opt.Grace {
		return fmt.Errorf("%w: out of sync with the coordinator for %v, longer than the %v grace", ErrNotReady,
			age.Round(time.Second), c.opt.Grace)
	}
	return nil
}

// Orgs returns the orgs of the snapshot, by id.
func (c *Client) Orgs() []Org { return orgsOf(c.cur.Load()) }

// Policy returns the snapshot's policy; ok is false when the snapshot
// carries none (or there is no snapshot).
func (c *Client) Policy() (p Policy, ok bool) {
	st := c.cur.Load()
	if st == nil || st.policy == nil {
		return Policy{}, false
	}
	return Policy{Revision: st.policy.GetRevision(), DataJSON: append([]byte(nil), st.policy.GetDataJson()...),
		Bundle: append([]byte(nil), st.policy.GetBundle()...)}, true
}

// Dropped is how many audit events were dropped because the buffer was
// full (a counter for the caller's metrics).
func (c *Client) Dropped() uint64 { return c.audit.dropped.Load() }

// Run registers when gateway.json holds no identity for the join key,
// then syncs, reports health and ships audit events until ctx ends. It
// returns nil when ctx ends, an error only for a problem retrying cannot
// fix (the data dir cannot be written). Call it once.
func (c *Client) Run(ctx context.Context) error {
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: c.opt.MinBackoff, Multiplier: 1.6,
			Jitter: 0.2, MaxDelay: c.opt.MaxBackoff}, MinConnectTimeout: 5 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv)),
		// A half-open connection (a node gone, a NAT entry dropped) is
		// noticed within about 40 s rather than at the next health report;
		// the coordinator permits pings this often (ServerOptions).
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second,
			PermitWithoutStream: true}),
	}, c.opt.DialOptions...)
	conn, err := grpc.NewClient(c.opt.Addr, dial...)
	if err != nil {
		return fmt.Errorf("coordinator client: %w", err)
	}
	defer func() { _ = conn.Close() }()
	api := coordv1.NewCoordinatorServiceClient(conn)

	var bg sync.WaitGroup
	defer bg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bg.Go(func() { c.audit.reserveLoop(ctx) })
	// Sessions refused one after another (a coordinator that registers a
	// gateway and then refuses it) back off too.
	refusals := c.newBackoff()
	for ctx.Err() == nil {
		id, err := c.identity(ctx, api)
		if err != nil {
			if ctx.Err() != nil {
				return nil //nolint:nilerr // ctx ended while registering
			}
			return err
		}
		began := time.Now()
		err = c.session(ctx, api, id)
		if err == nil || ctx.Err() != nil {
			continue
		}
		c.log.Warn("coordinator client: the coordinator refused the gateway credential; registering again",
			"gateway_id", id.GatewayID, "err", err)
		c.forget(id)
		if time.Since(began) > c.opt.MaxBackoff {
			refusals.reset()
		}
		if !sleep(ctx, refusals.next()) {
			return nil
		}
	}
	return nil
}

// identity returns the gateway's identity, registering when there is none.
// Refusals of the join key wait MaxBackoff between attempts.
func (c *Client) identity(ctx context.Context, api coordv1.CoordinatorServiceClient) (identity, error) {
	c.idMu.Lock()
	id := c.id
	c.idMu.Unlock()
	if id != nil {
		return *id, nil
	}
	bo := c.newBackoff()
	for {
		n := c.registerCalls.Add(1)
		resp, err := api.Register(ctx, &coordv1.RegisterRequest{JoinKey: c.opt.JoinKey, Name: c.opt.Name,
			Version: c.opt.Version, Mode: string(c.opt.Mode)})
		if err == nil {
			nid := identity{GatewayID: resp.GetGatewayId(), Credential: resp.GetCredential(), Org: resp.GetOrg(),
				HealthIntervalSeconds: resp.GetHealthIntervalSeconds(), JoinKeySHA256: joinKeyHash(c.opt.JoinKey)}
			if err := writeIdentity(c.opt.DataDir, nid); err != nil {
				return identity{}, err
			}
			c.idMu.Lock()
			c.id = &nid
			c.idMu.Unlock()
			c.log.Info("coordinator client: registered", "gateway_id", nid.GatewayID, "org", nid.Org)
			return nid, nil
		}
		if ctx.Err() != nil {
			return identity{}, ctx.Err()
		}
		var wait time.Duration
		switch status.Code(err) {
		case codes.Unauthenticated, codes.InvalidArgument, codes.PermissionDenied:
			// Retrying soon cannot help: the operator must give a new join
			// key (or fix the mode). Try again now and then, in case the
			// refusal was a coordinator mistake that gets fixed.
			wait = c.opt.MaxBackoff
			c.log.Error("coordinator client: the coordinator refused the join key; configure a new one (TAKUMO_JOIN_KEY)",
				"reason", status.Convert(err).Message(), "retry_in", wait.String(), "register_calls", n)
		default:
			wait = bo.next()
			c.log.Warn("coordinator client: register failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond).String())
		}
		if !sleep(ctx, wait) {
			return identity{}, ctx.Err()
		}
	}
}

// forget drops id (the coordinator no longer accepts it) so that the next
// session registers again.
func (c *Client) forget(id identity) {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	if c.id != nil && c.id.GatewayID == id.GatewayID {
		c.id = nil
	}
}

// errCredential ends a session: the coordinator refused the credential.
type errCredential struct{ err error }

func (e errCredential) Error() string { return e.err.Error() }
func (e errCredential) Unwrap() error { return e.err }

// session runs sync, health and audit with id until ctx ends (nil) or the
// coordinator refuses the credential (errCredential).
func (c *Client) session(ctx context.Context, api coordv1.CoordinatorServiceClient, id identity) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	actx := metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+id.Credential)
	fail := func(err error) { cancel(errCredential{err}) }
	var wg sync.WaitGroup
	wg.Go(func() { c.syncLoop(actx, api, fail) })
	wg.Go(func() { c.healthLoop(actx, api, id, fail) })
	wg.Go(func() { c.auditLoop(actx, api, fail) })
	wg.Wait()
	var ec errCredential
	if errors.As(context.Cause(sctx), &ec) {
		return ec
	}
	return nil
}

// refused reports whether err is the coordinator refusing the credential.
func refused(err error) bool { return status.Code(err) == codes.Unauthenticated }

// syncLoop keeps a Sync stream open and applies what it brings.
func (c *Client) syncLoop(ctx context.Context, api coordv1.CoordinatorServiceClient, fail func(error)) {
	bo := c.newBackoff()
	full := false // ask for a full snapshot (after a delta that did not apply)
	for ctx.Err() == nil {
		known := c.Version()
		if full {
			known = 0
		}
		err := c.syncOnce(ctx, api, known, bo)
		c.outOfSync()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errBaseMismatch):
			c.log.Warn("coordinator client: a delta did not apply to the snapshot held; asking for a full snapshot",
				"version", c.Version())
			full = true
			continue
		case refused(err):
			fail(err)
			return
		}
		full = false
		wait := bo.next()
		c.log.Warn("coordinator client: sync stream ended; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond).String(),
			"version", c.Version(), "ready", c.Ready())
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (c *Client) syncOnce(ctx context.Context, api coordv1.CoordinatorServiceClient, known uint64, bo *backoffState) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var storeID string
	if cur := c.cur.Load(); cur != nil && known != 0 {
		storeID = cur.storeID
	}
	stream, err := api.Sync(sctx, &coordv1.SyncRequest{KnownVersion: known, KnownStoreId: storeID})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if err := c.applySnapshot(resp.GetSnapshot()); err != nil {
			return err
		}
		bo.reset()
	}
}

// applySnapshot applies sn, publishes the result, saves it and marks the
// client in sync.
func (c *Client) applySnapshot(sn *coordv1.Snapshot) error {
	if sn == nil {
		return errors.New("sync message without a snapshot")
	}
	cur := c.cur.Load()
	unchanged := cur != nil && sn.GetBaseVersion() == cur.version && sn.GetVersion() == cur.version &&
		len(sn.GetKeys())+len(sn.GetRemovedKeyIds())+len(sn.GetOrgs())+len(sn.GetRemovedOrgIds()) == 0 && sn.GetPolicy() == nil
	if !unchanged {
		next, err := apply(cur, sn, c.opt.Mode, c.log)
		if err != nil {
			return err
		}
		c.cur.Store(next)
		if err := saveSnapshot(c.opt.DataDir, next); err != nil {
			// Serving goes on from memory; a restart would use an older file.
			c.log.Error("coordinator client: cannot save the snapshot", "err", err)
		}
		c.log.Debug("coordinator client: snapshot applied", "version", next.version, "base", sn.GetBaseVersion(),
			"keys", len(next.keys))
	}
	now := c.opt.Now()
	c.syncedAt.Store(now.UnixNano())
	if unchanged { // else the file was just written: its mtime is now
		if err := touchSnapshot(c.opt.DataDir, now); err != nil {
			c.log.Warn("coordinator client: cannot mark the snapshot current", "err", err)
		}
	}
	if !c.inSync.Swap(true) {
		c.log.Info("coordinator client: in sync", "version", c.Version())
	}
	if c.opt.OnSnapshot != nil && !unchanged {
		c.opt.OnSnapshot(sn.GetVersion())
	}
	return nil
}

// outOfSync marks the end of a Sync stream: the snapshot was current until
// now, and ages from here.
func (c *Client) outOfSync() {
	if c.inSync.Swap(false) {
		c.syncedAt.Store(c.opt.Now().UnixNano())
	}
}

// ---------------------------------------------------------------- backoff

// backoffState is exponential backoff with full jitter: the n-th wait is
// uniform in [0, min(max, min·2ⁿ)].
type backoffState struct {
	min, max time.Duration
	n        int
}

func (c *Client) newBackoff() *backoffState {
	return &backoffState{min: c.opt.MinBackoff, max: c.opt.MaxBackoff}
}

func (b *backoffState) next() time.Duration {
	ceil := b.min << min(b.n, 30)
	if ceil <= 0 || ceil > b.max {
		ceil = b.max
	}
	b.n++
	return rand.N(ceil + 1) //nolint:gosec // G404: jitter, not a secret
}

func (b *backoffState) reset() { b.n = 0 }

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
