package coordinator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/coordinator/store"
)

// Options configure a Server. Zero values take the defaults of the Takumo
// reference.
type Options struct {
	Store  Storage
	Logger *slog.Logger
	// Debounce is how long Sync waits after a change for more changes
	// before it sends one delta (TAKUMO_POLICY_DEBOUNCE_MS, default 500 ms).
	Debounce time.Duration
	// Poll is how often the server reads the store version and the join
	// keys, to see changes made by other coordinator replicas and
	// revocations (default 1 s). Changes made through this server are seen
	// at once.
	Poll time.Duration
	// HealthInterval is what Register tells gateways (default 30 s).
	HealthInterval time.Duration
	// AuditBatch and AuditFlush bound how long ShipAudit holds events
	// before it stores them (TAKUMO_TELEMETRY_BATCH_SIZE 500,
	// TAKUMO_TELEMETRY_FLUSH_INTERVAL_MS 5000).
	AuditBatch int
	AuditFlush time.Duration
	// MaxSnapshotBytes is the largest snapshot message Sync sends (default
	// 64 MiB, the gateways' receive limit); a larger one fails the stream
	// with RESOURCE_EXHAUSTED rather than being cut.
	MaxSnapshotBytes int
	Now              func() time.Time
	Rand             io.Reader
}

// Server is the coordinator's gRPC service. Run its background loop with
// Run; register it on a grpc.Server with Register (which also installs the
// credential check).
type Server struct {
	coordv1.UnimplementedCoordinatorServiceServer

	opt   Options
	log   *slog.Logger
	store Storage

	changes *broadcast
	streams *registry
	storeID string

	auditReceived atomic.Int64 // events taken off ShipAudit streams (tests wait on it)
}

// NewServer returns a Server on opt.Store.
func NewServer(opt Options) (*Server, error) {
	if opt.Store == nil {
		return nil, errors.New("coordinator: no store")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Debounce <= 0 {
		opt.Debounce = 500 * time.Millisecond
	}
	if opt.Poll <= 0 {
		opt.Poll = time.Second
	}
	if opt.HealthInterval <= 0 {
		opt.HealthInterval = 30 * time.Second
	}
	if opt.AuditBatch <= 0 {
		opt.AuditBatch = 500
	}
	if opt.AuditFlush <= 0 {
		opt.AuditFlush = 5 * time.Second
	}
	if opt.MaxSnapshotBytes <= 0 {
		opt.MaxSnapshotBytes = 64 << 20
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	s := &Server{opt: opt, log: opt.Logger, store: opt.Store, changes: newBroadcast(), streams: newRegistry()}
	v, err := opt.Store.Version(context.Background())
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	s.changes.set(v)
	if s.storeID, err = opt.Store.ID(context.Background()); err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	return s, nil
}

// ServerOptions are the grpc.ServerOptions the coordinator needs: the
// credential check on every call but Register, and a send limit that fits
// the largest snapshot.
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
		grpc.MaxSendMsgSize(s.opt.MaxSnapshotBytes + 1<<10),
		grpc.MaxRecvMsgSize(16 << 20),
		// Gateways ping every 30 s to find half-open connections; allow
		// it (gRPC's default refuses pings more often than every 5 min
		// and would close their connections with too_many_pings), and
		// ping idle gateways ourselves so a vanished one's streams end.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
	}
}

// Attach registers the service on g (made with ServerOptions).
func (s *Server) Attach(g *grpc.Server) { coordv1.RegisterCoordinatorServiceServer(g, s) }

// Run reads the store version and the join keys every Poll until ctx
// ends: a change made elsewhere wakes the Sync streams, and the streams of
// gateways whose join key was revoked end.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.opt.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.poll(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("coordinator: poll", "err", err)
		}
	}
}

func (s *Server) poll(ctx context.Context) error {
	v, err := s.store.Version(ctx)
	if err != nil {
		return err
	}
	s.changes.set(v)
	jks, err := s.store.ListJoinKeys(ctx)
	if err != nil {
		return err
	}
	for _, jk := range jks {
		if jk.Revoked() {
			s.streams.endJoinKey(jk.ID, errJoinKeyRevoked)
		}
	}
	return nil
}

// Changed tells the server that the store changed through this process
// (the admin API calls it), so streams need not wait for the next poll.
func (s *Server) Changed(version uint64) { s.changes.set(version) }

// RevokeJoinKey revokes a join key and ends, at once, every stream of the
// gateways that registered with it; their later calls are refused.
func (s *Server) RevokeJoinKey(ctx context.Context, id string) error {
	if err := s.store.RevokeJoinKey(ctx, id, s.opt.Now()); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	s.streams.endJoinKey(id, errJoinKeyRevoked)
	return nil
}

// CreateJoinKey makes a join key and returns it; the raw key is shown
// once and only its hash is stored.
func (s *Server) CreateJoinKey(ctx context.Context, name, environment, org string) (string, store.JoinKey, error) {
	raw, err := newSecret(s.opt.Rand, JoinKeyPrefix)
	if err != nil {
		return "", store.JoinKey{}, fmt.Errorf("coordinator: join key: %w", err)
	}
	id, err := newID(s.opt.Rand, "jkid_")
	if err != nil {
		return "", store.JoinKey{}, fmt.Errorf("coordinator: join key: %w", err)
	}
	h, _ := parseSecret(raw, JoinKeyPrefix, "join key")
	jk := store.JoinKey{ID: id, Hash: h, Name: name, Environment: environment, Org: org, CreatedAt: s.opt.Now().UTC()}
	if err := s.store.CreateJoinKey(ctx, jk); err != nil {
		return "", store.JoinKey{}, fmt.Errorf("coordinator: %w", err)
	}
	return raw, jk, nil
}

var (
	errJoinKeyRevoked = errors.New("the join key this gateway registered with was revoked")
	errShuttingDown   = errors.New("coordinator shutting down")
)

// Register implements CoordinatorService.Register.
func (s *Server) Register(ctx context.Context, req *coordv1.RegisterRequest) (*coordv1.RegisterResponse, error) {
	h, err := parseSecret(req.GetJoinKey(), JoinKeyPrefix, "join key")
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if m := req.GetMode(); m != "live" && m != "test" {
		return nil, status.Errorf(codes.InvalidArgument, "mode %q: want live or test", m)
	}
	jk, err := s.store.JoinKeyByHash(ctx, h)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, status.Error(codes.Unauthenticated, "unknown join key")
	case err != nil:
		return nil, s.internal("register", err)
	case jk.Revoked():
		return nil, status.Error(codes.Unauthenticated, "join key revoked")
	}
	cred, err := newSecret(s.opt.Rand, CredentialPrefix)
	if err != nil {
		return nil, s.internal("register", err)
	}
	id, err := newID(s.opt.Rand, gatewayIDPrefix)
	if err != nil {
		return nil, s.internal("register", err)
	}
	ch, _ := parseSecret(cred, CredentialPrefix, "credential")
	g := store.Gateway{ID: id, CredentialHash: ch, JoinKeyID: jk.ID, Org: jk.Org, Name: clip(req.GetName(), 253),
		Version: clip(req.GetVersion(), 64), Mode: req.GetMode(), RegisteredAt: s.opt.Now().UTC()}
	if err := s.store.CreateGateway(ctx, g); err != nil {
		return nil, s.internal("register", err)
	}
	s.log.Info("coordinator: gateway registered", "gateway_id", id, "join_key_id", jk.ID, "name", g.Name, "mode", g.Mode)
	return &coordv1.RegisterResponse{GatewayId: id, Credential: cred, Org: jk.Org,
		HealthIntervalSeconds: int32(s.opt.HealthInterval / time.Second)}, nil //nolint:gosec // G115: seconds of a sane interval
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// internal logs err (which never holds a secret) and returns the status
// the gateway sees: UNAVAILABLE, since storage errors are worth a retry.
func (s *Server) internal(op string, err error) error {
	s.log.Error("coordinator: "+op, "err", err)
	return status.Errorf(codes.Unavailable, "coordinator storage unavailable (%s)", op)
}

// ReportHealth implements CoordinatorService.ReportHealth.
func (s *Server) ReportHealth(ctx context.Context, req *coordv1.ReportHealthRequest) (*coordv1.ReportHealthResponse, error) {
	gw := gatewayFrom(ctx)
	now := s.opt.Now().UTC()
	var skew time.Duration
	if req.GetSentAt().IsValid() {
		skew = req.GetSentAt().AsTime().Sub(now)
	}
	err := s.store.ReportHealth(ctx, gw.ID, store.Health{LastSeen: now, SnapshotVersion: req.GetSnapshotVersion(),
		ActiveSessions: req.GetActiveSessions(), MemoryBytes: req.GetMemoryBytes(), Skew: skew,
		GatewayVersion: clip(req.GetVersion(), 64)})
	if err != nil {
		return nil, s.internal("health", err)
	}
	if len(req.GetUsage()) > 0 {
		deltas := make([]store.UsageDelta, 0, len(req.GetUsage()))
		for _, u := range req.GetUsage() {
			if u.GetRequests() < 0 || u.GetCredits() < 0 {
				return nil, status.Error(codes.InvalidArgument, "negative usage")
			}
			if gw.Org != "" && u.GetOrg() != gw.Org {
				return nil, status.Errorf(codes.PermissionDenied, "usage for org %q from a gateway of org %q", clip(u.GetOrg(), 128), gw.Org)
			}
			deltas = append(deltas, store.UsageDelta{Org: clip(u.GetOrg(), 128), KeyID: clip(u.GetKeyId(), 128),
				Month: u.GetMonth().AsTime(), Mode: clip(u.GetMode(), 8), Requests: u.GetRequests(), Credits: u.GetCredits()})
		}
		if err := s.store.AddUsage(ctx, deltas); err != nil {
			return nil, s.internal("usage", err)
		}
	}
	orgs := map[string]bool{}
	if gw.Org != "" {
		orgs[gw.Org] = true
	}
	for _, u := range req.GetUsage() {
		orgs[clip(u.GetOrg(), 128)] = true
	}
	for i, o := range req.GetUsageOrgs() {
		if i >= 1000 {
			break // a bound on the work one report can ask for
		}
		if gw.Org == "" || o == gw.Org {
			orgs[clip(o, 128)] = true
		}
	}
	var orgUsage []*coordv1.UsageDelta
	for org := range orgs {
		rows, err := s.store.Usage(ctx, org, now)
		if err != nil {
			return nil, s.internal("usage", err)
		}
		total := &coordv1.UsageDelta{Org: org, Month: timestamppb.New(now), Mode: "live"}
		for _, r := range rows {
			if r.Mode == "live" {
				total.Requests += r.Requests
				total.Credits += r.Credits
			}
		}
		orgUsage = append(orgUsage, total)
	}
	if skew > time.Minute || skew < -time.Minute {
		s.log.Warn("coordinator: gateway clock skew", "gateway_id", gw.ID, "skew", skew.Round(time.Millisecond).String())
	}
	return &coordv1.ReportHealthResponse{ServerTime: timestamppb.New(now), LatestVersion: s.changes.get(), OrgUsage: orgUsage}, nil
}

// Sync implements CoordinatorService.Sync.
func (s *Server) Sync(req *coordv1.SyncRequest, stream grpc.ServerStreamingServer[coordv1.SyncResponse]) error {
	gw := gatewayFrom(stream.Context())
	ctx, done := s.streams.add(stream.Context(), gw)
	defer done()
	known := req.GetKnownVersion()
	if id := req.GetKnownStoreId(); id != "" && id != s.storeID {
		// Versions of another database: only a full snapshot is right.
		known = 0
	}
	send := func() error {
		c, err := s.store.Changes(ctx, known)
		if err != nil {
			return s.internal("sync", err)
		}
		base := known
		if known == 0 || known > c.Version {
			base = 0
		}
		resp := &coordv1.SyncResponse{Snapshot: snapshotProto(c, base, s.opt.Now())}
		resp.Snapshot.StoreId = s.storeID
		if n := proto.Size(resp); n > s.opt.MaxSnapshotBytes {
			s.log.Error("coordinator: snapshot too large", "gateway_id", gw.ID, "bytes", n, "limit", s.opt.MaxSnapshotBytes)
			return status.Errorf(codes.ResourceExhausted, "snapshot of %d bytes exceeds the %d-byte limit", n, s.opt.MaxSnapshotBytes)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		known = c.Version
		return nil
	}
	if err := send(); err != nil {
		return err
	}
	for {
		wake := s.changes.after(known)
		select {
		case <-ctx.Done():
			return streamEnd(ctx)
		case <-wake:
		}
		// Debounce: one delta for a burst of changes.
		t := time.NewTimer(s.opt.Debounce)
		select {
		case <-ctx.Done():
			t.Stop()
			return streamEnd(ctx)
		case <-t.C:
		}
		if err := send(); err != nil {
			return err
		}
	}
}

// streamEnd is the status a stream ends with when its context ends.
func streamEnd(ctx context.Context) error {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errJoinKeyRevoked):
		return status.Error(codes.Unauthenticated, cause.Error())
	case errors.Is(cause, errShuttingDown):
		return status.Error(codes.Unavailable, cause.Error())
	default:
		return status.FromContextError(ctx.Err()).Err()
	}
}

// Shutdown ends every open stream with UNAVAILABLE, so gateways reconnect
// (to another replica or after the restart).
func (s *Server) Shutdown() { s.streams.endAll(errShuttingDown) }

func snapshotProto(c store.Changes, base uint64, now time.Time) *coordv1.Snapshot {
	sn := &coordv1.Snapshot{Version: c.Version, BaseVersion: base, CreatedAt: timestamppb.New(now)}
	for _, k := range c.Keys {
		sn.Keys = append(sn.Keys, &coordv1.ApiKey{Id: k.ID, Hash: k.Hash[:], Org: k.Org, Name: k.Name, Mode: k.Mode,
			Scopes: k.Scopes, State: k.State, CreatedAt: timestamppb.New(k.CreatedAt)})
	}
	for _, o := range c.Orgs {
		if o.Deleted {
			sn.RemovedOrgIds = append(sn.RemovedOrgIds, o.ID)
			continue
		}
		sn.Orgs = append(sn.Orgs, &coordv1.Org{Id: o.ID, Plan: o.Plan, Seats: int32(o.Seats)}) //nolint:gosec // G115: seat counts
	}
	if c.Policy != nil {
		sn.Policy = &coordv1.Policy{Revision: c.Policy.Revision, DataJson: c.Policy.DataJSON, Bundle: c.Policy.Bundle}
	}
	return sn
}

// ShipAudit implements CoordinatorService.ShipAudit: events are stored in
// batches of AuditBatch or every AuditFlush, and each store is
// acknowledged with the highest sequence number stored. A gateway sends
// its events in increasing seq order, so acked_through covers every event
// it sent before. A storage failure ends the stream with UNAVAILABLE and
// acknowledges nothing more: the gateway resends, and (gateway, seq)
// deduplicates.
func (s *Server) ShipAudit(stream grpc.BidiStreamingServer[coordv1.ShipAuditRequest, coordv1.ShipAuditResponse]) error {
	gw := gatewayFrom(stream.Context())
	ctx, done := s.streams.add(stream.Context(), gw)
	defer done()

	type recv struct {
		req *coordv1.ShipAuditRequest
		err error
	}
	in := make(chan recv)
	go func() {
		for {
			req, err := stream.Recv()
			select {
			case in <- recv{req, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	var (
		pending []store.AuditEvent
		maxSeq  uint64
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if _, err := s.store.AppendAudit(ctx, pending); err != nil {
			return s.internal("audit", err)
		}
		pending = pending[:0]
		return stream.Send(&coordv1.ShipAuditResponse{AckedThrough: maxSeq})
	}
	t := time.NewTicker(s.opt.AuditFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errShuttingDown) && len(pending) > 0 {
				// Store and acknowledge what arrived before the shutdown,
				// so the gateway need not send it again elsewhere.
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				if _, err := s.store.AppendAudit(fctx, pending); err == nil {
					_ = stream.Send(&coordv1.ShipAuditResponse{AckedThrough: maxSeq})
				}
				cancel()
			}
			return streamEnd(ctx)
		case <-t.C:
			if err := flush(); err != nil {
				return err
			}
		case r := <-in:
			if errors.Is(r.err, io.EOF) {
				return flush()
			}
			if r.err != nil {
				return r.err
			}
			for _, e := range r.req.GetEvents() {
				if e.GetSeq() == 0 {
					return status.Error(codes.InvalidArgument, "audit event without a sequence number")
				}
				pending = append(pending, auditEvent(gw.ID, e))
				maxSeq = max(maxSeq, e.GetSeq())
				s.auditReceived.Add(1)
			}
			if len(pending) >= s.opt.AuditBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
}

func auditEvent(gatewayID string, e *coordv1.AuditEvent) store.AuditEvent {
	ev := store.AuditEvent{GatewayID: gatewayID, Seq: e.GetSeq(), RequestID: clip(e.GetRequestId(), 64),
		Time: e.GetTime().AsTime(), Org: clip(e.GetOrg(), 128), KeyID: clip(e.GetKeyId(), 128),
		Provider: clip(e.GetProvider(), 32), Model: clip(e.GetModel(), 128), Mode: clip(e.GetMode(), 8),
		Status: int(e.GetStatus()), Code: clip(e.GetCode(), 64), Duration: time.Duration(e.GetDurationUs()) * time.Microsecond}
	for _, d := range e.GetDetections() {
		ev.Detections = append(ev.Detections, store.Detection{Rule: clip(d.GetRule(), 128), Category: clip(d.GetCategory(), 32),
			Action: clip(d.GetAction(), 16), Line: int(d.GetLine())})
	}
	return ev
}

// ---------------------------------------------------------------- auth

type gatewayKey struct{}

func gatewayFrom(ctx context.Context) store.Gateway {
	g, _ := ctx.Value(gatewayKey{}).(store.Gateway)
	return g
}

// authenticate finds the gateway of the credential in the call's metadata.
// The gateway id comes from the credential alone; its join key must still
// be valid.
func (s *Server) authenticate(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return nil, status.Error(codes.Unauthenticated, "no gateway credential (authorization: Bearer gwc_…); register first")
	}
	raw, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "the authorization metadata is not \"Bearer <credential>\"")
	}
	h, err := parseSecret(raw, CredentialPrefix, "gateway credential")
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	g, err := s.store.GatewayByCredential(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Error(codes.Unauthenticated, "unknown gateway credential; register again")
	}
	if err != nil {
		return nil, s.internal("auth", err)
	}
	jk, err := s.store.JoinKey(ctx, g.JoinKeyID)
	if err != nil {
		return nil, s.internal("auth", err)
	}
	if jk.Revoked() {
		return nil, status.Error(codes.Unauthenticated, errJoinKeyRevoked.Error())
	}
	return context.WithValue(ctx, gatewayKey{}, g), nil
}

const registerMethod = "/takumo.coordinator.v1.CoordinatorService/Register"

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if info.FullMethod == registerMethod {
		return h(ctx, req)
	}
	ctx, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context //nolint:containedctx // the stream's context with the gateway attached
}

func (a authedStream) Context() context.Context { return a.ctx }

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := s.authenticate(ss.Context())
	if err != nil {
		return err
	}
	return h(srv, authedStream{ServerStream: ss, ctx: ctx})
}

// ---------------------------------------------------------------- plumbing

// broadcast holds the newest store version and wakes waiters when it
// grows.
type broadcast struct {
	mu sync.Mutex
	v  uint64
	ch chan struct{} // closed and replaced when v grows
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) set(v uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if v <= b.v {
		return
	}
	b.v = v
	close(b.ch)
	b.ch = make(chan struct{})
}

func (b *broadcast) get() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.v
}

// after returns a channel that is closed once the version exceeds v.
func (b *broadcast) after(v uint64) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.v > v {
		c := make(chan struct{})
		close(c)
		return c
	}
	return b.ch
}

// registry tracks open streams, so that revoking a join key or shutting
// down can end them.
type registry struct {
	mu      sync.Mutex
	next    int
	streams map[int]stream
}

type stream struct {
	gateway, joinKey string
	cancel           context.CancelCauseFunc
}

func newRegistry() *registry { return &registry{streams: map[int]stream{}} }

func (r *registry) add(parent context.Context, g store.Gateway) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	r.mu.Lock()
	id := r.next
	r.next++
	r.streams[id] = stream{gateway: g.ID, joinKey: g.JoinKeyID, cancel: cancel}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.streams, id)
		r.mu.Unlock()
		cancel(nil)
	}
}

func (r *registry) endJoinKey(joinKeyID string, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.streams {
		if st.joinKey == joinKeyID {
			st.cancel(cause)
		}
	}
}

func (r *registry) endAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.streams {
		st.cancel(cause)
	}
}
