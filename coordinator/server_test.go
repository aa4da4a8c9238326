package coordinator

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/coordinator/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rig struct {
	srv    *Server
	st     *store.Store
	client coordv1.CoordinatorServiceClient
}

// newRig serves a coordinator on SQLite over real gRPC on loopback TCP.
func newRig(t *testing.T, mod func(*Options)) *rig {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Store: st, Debounce: 50 * time.Millisecond, Poll: 50 * time.Millisecond, AuditFlush: time.Hour}
	if mod != nil {
		mod(&opt)
	}
	srv, err := NewServer(opt)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Attach(g)
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	ran := make(chan struct{})
	go func() { defer close(served); _ = g.Serve(lis) }()
	go func() { defer close(ran); _ = srv.Run(runCtx) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		stop()
		<-ran
		srv.Shutdown()
		g.Stop()
		<-served
		_ = st.Close()
	})
	return &rig{srv: srv, st: st, client: coordv1.NewCoordinatorServiceClient(conn)}
}

func (r *rig) joinKey(t *testing.T, org string) (string, store.JoinKey) {
	t.Helper()
	raw, jk, err := r.srv.CreateJoinKey(context.Background(), "edge", "prod", org)
	if err != nil {
		t.Fatal(err)
	}
	return raw, jk
}

// register returns a context carrying the new gateway's credential.
func (r *rig) register(t *testing.T, joinKey string) (context.Context, *coordv1.RegisterResponse) {
	t.Helper()
	resp, err := r.client.Register(context.Background(), &coordv1.RegisterRequest{JoinKey: joinKey, Name: "pod-1", Version: "v1", Mode: "live"})
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+resp.GetCredential()), resp
}

func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("got %v, want %v containing %q", err, code, msg)
	}
}

func TestRegister(t *testing.T) {
	r := newRig(t, nil)
	raw, jk := r.joinKey(t, "org_a")
	revokedRaw, revoked := r.joinKey(t, "org_a")
	if err := r.srv.RevokeJoinKey(context.Background(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, key, mode string
		code            codes.Code
		msg             string
	}{
		{"no key", "", "live", codes.Unauthenticated, "no join key"},
		{"wrong prefix", "tk_live_" + strings.Repeat("a", 64), "live", codes.Unauthenticated, `does not start with "jk_"`},
		{"short", "jk_abc", "live", codes.Unauthenticated, "has 6 characters, want 67"},
		{"upper hex", "jk_" + strings.Repeat("A", 64), "live", codes.Unauthenticated, "not lowercase hex"},
		{"unknown", "jk_" + strings.Repeat("0", 64), "live", codes.Unauthenticated, "unknown join key"},
		{"revoked", revokedRaw, "live", codes.Unauthenticated, "join key revoked"},
		{"bad mode", raw, "staging", codes.InvalidArgument, `mode "staging"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.client.Register(context.Background(), &coordv1.RegisterRequest{JoinKey: tc.key, Mode: tc.mode})
			wantCode(t, err, tc.code, tc.msg)
			if tc.key != "" && strings.Contains(err.Error(), tc.key) {
				t.Fatalf("the error quotes the join key: %v", err)
			}
		})
	}
	_, resp := r.register(t, raw)
	if !strings.HasPrefix(resp.GetGatewayId(), "gw_") || len(resp.GetCredential()) != len(CredentialPrefix)+64 ||
		resp.GetOrg() != "org_a" || resp.GetHealthIntervalSeconds() != 30 {
		t.Fatalf("register: %+v", resp)
	}
	// A second registration with the same join key is a second gateway.
	_, resp2 := r.register(t, raw)
	if resp2.GetGatewayId() == resp.GetGatewayId() || resp2.GetCredential() == resp.GetCredential() {
		t.Fatal("two registrations got the same identity")
	}
	g, err := r.st.GatewayByCredential(context.Background(), sha256.Sum256([]byte(resp.GetCredential())))
	if err != nil || g.ID != resp.GetGatewayId() || g.JoinKeyID != jk.ID {
		t.Fatalf("stored gateway: %+v %v", g, err)
	}
}

func TestCredentialRequired(t *testing.T) {
	r := newRig(t, nil)
	cases := []struct {
		name string
		md   []string
		msg  string
	}{
		{"none", nil, "no gateway credential"},
		{"not bearer", []string{"authorization", "gwc_" + strings.Repeat("a", 64)}, "not \"Bearer <credential>\""},
		{"join key as credential", []string{"authorization", "Bearer jk_" + strings.Repeat("a", 64)}, `does not start with "gwc_"`},
		{"unknown", []string{"authorization", "Bearer gwc_" + strings.Repeat("a", 64)}, "unknown gateway credential"},
		{"two", []string{"authorization", "Bearer a", "authorization", "Bearer b"}, "no gateway credential"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, tc.md...)
			}
			_, err := r.client.ReportHealth(ctx, &coordv1.ReportHealthRequest{})
			wantCode(t, err, codes.Unauthenticated, tc.msg)
			s, err := r.client.Sync(ctx, &coordv1.SyncRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			wantCode(t, err, codes.Unauthenticated, tc.msg)
		})
	}
}

func recvSnapshot(t *testing.T, s grpc.ServerStreamingClient[coordv1.SyncResponse]) *coordv1.Snapshot {
	t.Helper()
	resp, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetSnapshot()
}

func TestSync(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	raw, _ := r.joinKey(t, "")
	for i := range 3 {
		if _, err := r.st.CreateKey(ctx, store.APIKey{ID: fmt.Sprintf("key_%d", i), Hash: sha256.Sum256([]byte{byte(i)}),
			Org: "org_a", Mode: "live", Scopes: []string{"shield:write"}, State: store.StateActive, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.st.PutOrg(ctx, store.Org{ID: "org_a", Plan: "pro", Seats: 3}); err != nil {
		t.Fatal(err)
	}
	v, err := r.st.SetPolicy(ctx, store.Policy{Revision: "rev-1", DataJSON: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	r.srv.Changed(v)
	gctx, _ := r.register(t, raw)
	sctx, cancel := context.WithCancel(gctx)
	defer cancel()
	s, err := r.client.Sync(sctx, &coordv1.SyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	full := recvSnapshot(t, s)
	if full.GetBaseVersion() != 0 || full.GetVersion() != v || len(full.GetKeys()) != 3 || len(full.GetOrgs()) != 1 ||
		full.GetPolicy().GetRevision() != "rev-1" || len(full.GetKeys()[0].GetHash()) != 32 {
		t.Fatalf("full snapshot: %v", full)
	}

	// A burst of changes inside the debounce window is one delta.
	var last uint64
	for i := range 3 {
		state := store.StateDisabled
		if i == 2 {
			state = store.StateRevoked
		}
		if last, err = r.st.SetKeyState(ctx, fmt.Sprintf("key_%d", i), state); err != nil {
			t.Fatal(err)
		}
		r.srv.Changed(last)
	}
	delta := recvSnapshot(t, s)
	if delta.GetBaseVersion() != v || delta.GetVersion() != last || len(delta.GetKeys()) != 3 || delta.GetPolicy() != nil {
		t.Fatalf("delta: %v", delta)
	}

	// A change made elsewhere (another replica) arrives through the poll.
	v2, err := r.st.DeleteOrg(ctx, "org_a")
	if err != nil {
		t.Fatal(err)
	}
	delta = recvSnapshot(t, s)
	if delta.GetBaseVersion() != last || delta.GetVersion() != v2 || len(delta.GetRemovedOrgIds()) != 1 {
		t.Fatalf("delta from the poll: %v", delta)
	}
	cancel()

	// Reconnecting at the current version: an empty delta. Ahead of the
	// store: a full snapshot.
	// Another database's store id (a restored or new one): a full snapshot
	// even at a version this store has.
	storeID, err := r.st.ID(ctx)
	if err != nil || !strings.HasPrefix(storeID, "st_") {
		t.Fatalf("store id %q %v", storeID, err)
	}
	if full.GetStoreId() != storeID {
		t.Fatalf("snapshot store id %q, want %q", full.GetStoreId(), storeID)
	}
	for _, tc := range []struct {
		known, base uint64
		storeID     string
		keys        int
	}{{v2, v2, storeID, 0}, {v2, v2, "", 0}, {v2 + 50, 0, storeID, 3}, {v2, 0, "st_0000000000000001", 3}} {
		s2, err := r.client.Sync(gctx, &coordv1.SyncRequest{KnownVersion: tc.known, KnownStoreId: tc.storeID})
		if err != nil {
			t.Fatal(err)
		}
		sn := recvSnapshot(t, s2)
		if sn.GetBaseVersion() != tc.base || sn.GetVersion() != v2 || len(sn.GetKeys()) != tc.keys {
			t.Fatalf("known %d: %v", tc.known, sn)
		}
	}
}

func TestSnapshotTooLarge(t *testing.T) {
	r := newRig(t, func(o *Options) { o.MaxSnapshotBytes = 2000 })
	ctx := context.Background()
	for i := range 50 {
		if _, err := r.st.CreateKey(ctx, store.APIKey{ID: fmt.Sprintf("key_%02d", i), Hash: sha256.Sum256([]byte{byte(i)}),
			Org: "org_a", Mode: "live", State: store.StateActive}); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := r.joinKey(t, "")
	gctx, _ := r.register(t, raw)
	s, err := r.client.Sync(gctx, &coordv1.SyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	wantCode(t, err, codes.ResourceExhausted, "exceeds the 2000-byte limit")
}

func TestRevokedJoinKeyEndsStreams(t *testing.T) {
	for _, via := range []string{"server", "store (another replica)"} {
		t.Run(via, func(t *testing.T) {
			r := newRig(t, nil)
			raw, jk := r.joinKey(t, "")
			otherRaw, _ := r.joinKey(t, "")
			gctx, _ := r.register(t, raw)
			octx, _ := r.register(t, otherRaw)
			s, err := r.client.Sync(gctx, &coordv1.SyncRequest{})
			if err != nil {
				t.Fatal(err)
			}
			recvSnapshot(t, s)
			other, err := r.client.Sync(octx, &coordv1.SyncRequest{})
			if err != nil {
				t.Fatal(err)
			}
			recvSnapshot(t, other)
			audit, err := r.client.ShipAudit(gctx)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if via == "server" {
				err = r.srv.RevokeJoinKey(context.Background(), jk.ID)
			} else {
				err = r.st.RevokeJoinKey(context.Background(), jk.ID, time.Now())
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Recv()
			wantCode(t, err, codes.Unauthenticated, "revoked")
			_, err = audit.Recv()
			wantCode(t, err, codes.Unauthenticated, "revoked")
			t.Logf("streams ended %v after the revocation", time.Since(start).Round(time.Millisecond))
			_, err = r.client.ReportHealth(gctx, &coordv1.ReportHealthRequest{})
			wantCode(t, err, codes.Unauthenticated, "revoked")
			// The other join key's gateway is untouched.
			if _, err := r.client.ReportHealth(octx, &coordv1.ReportHealthRequest{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReportHealth(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r := newRig(t, func(o *Options) { o.Now = func() time.Time { return now } })
	raw, _ := r.joinKey(t, "")
	gctx, reg := r.register(t, raw)
	usage := []*coordv1.UsageDelta{{Org: "org_a", KeyId: "key_1", Month: timestamppb.New(now), Mode: "live", Requests: 3, Credits: 12}}
	resp, err := r.client.ReportHealth(gctx, &coordv1.ReportHealthRequest{Version: "v2", SnapshotVersion: 4, ActiveSessions: 7,
		MemoryBytes: 1 << 20, SentAt: timestamppb.New(now.Add(-90 * time.Second)), Usage: usage})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetServerTime().AsTime().Equal(now) {
		t.Fatalf("server time %v", resp.GetServerTime().AsTime())
	}
	gws, err := r.st.ListGateways(context.Background())
	if err != nil || len(gws) != 1 {
		t.Fatal(gws, err)
	}
	g := gws[0]
	if g.ID != reg.GetGatewayId() || g.Skew != -90*time.Second || g.SnapshotVersion != 4 || g.ActiveSessions != 7 ||
		g.Version != "v2" || !g.LastSeen.Equal(now) {
		t.Fatalf("stored health: %+v", g)
	}
	if _, err := r.client.ReportHealth(gctx, &coordv1.ReportHealthRequest{Usage: usage}); err != nil {
		t.Fatal(err)
	}
	rows, err := r.st.Usage(context.Background(), "org_a", now)
	if err != nil || len(rows) != 1 || rows[0].Requests != 6 || rows[0].Credits != 24 {
		t.Fatalf("usage from two reports: %+v %v", rows, err)
	}
	// A gateway of one org cannot report usage for another.
	orgRaw, _ := r.joinKey(t, "org_b")
	octx, _ := r.register(t, orgRaw)
	_, err = r.client.ReportHealth(octx, &coordv1.ReportHealthRequest{Usage: usage})
	wantCode(t, err, codes.PermissionDenied, `usage for org "org_a" from a gateway of org "org_b"`)
	_, err = r.client.ReportHealth(gctx, &coordv1.ReportHealthRequest{Usage: []*coordv1.UsageDelta{{Org: "org_a", Requests: -1}}})
	wantCode(t, err, codes.InvalidArgument, "negative usage")
}

func auditBatch(from, n int) *coordv1.ShipAuditRequest {
	req := &coordv1.ShipAuditRequest{}
	for i := range n {
		req.Events = append(req.Events, &coordv1.AuditEvent{Seq: uint64(from + i), RequestId: fmt.Sprintf("req_%d", from+i),
			Time: timestamppb.Now(), Org: "org_a", KeyId: "key_1", Provider: "anthropic", Status: 200, DurationUs: 900,
			Detections: []*coordv1.AuditDetection{{Rule: "github-pat", Category: "TOKEN", Action: "tokenize", Line: 2}}})
	}
	return req
}

func TestShipAudit(t *testing.T) {
	r := newRig(t, func(o *Options) { o.AuditBatch = 500 })
	raw, _ := r.joinKey(t, "")
	gctx, reg := r.register(t, raw)
	s, err := r.client.ShipAudit(gctx)
	if err != nil {
		t.Fatal(err)
	}
	// 12 batches of 100: stored and acknowledged at 500 and 1,000; the
	// rest when the gateway closes its side.
	for b := range 12 {
		if err := s.Send(auditBatch(1+b*100, 100)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []uint64{500, 1000} {
		ack, err := s.Recv()
		if err != nil || ack.GetAckedThrough() != want {
			t.Fatalf("ack %v %v, want %d", ack, err, want)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	ack, err := s.Recv()
	if err != nil || ack.GetAckedThrough() != 1200 {
		t.Fatalf("final ack %v %v", ack, err)
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the final ack: %v", err)
	}
	// The gateway did not see the last ack (say it restarted) and resends
	// from 1,001: nothing is stored twice.
	s2, err := r.client.ShipAudit(gctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Send(auditBatch(1001, 300)); err != nil {
		t.Fatal(err)
	}
	_ = s2.CloseSend()
	if ack, err := s2.Recv(); err != nil || ack.GetAckedThrough() != 1300 {
		t.Fatalf("resend ack %v %v", ack, err)
	}
	n, err := r.st.AuditCount(context.Background(), reg.GetGatewayId())
	if err != nil || n != 1300 {
		t.Fatalf("stored %d %v, want 1300", n, err)
	}
	// A gateway id comes from the credential, never from the events.
	evs, err := r.st.Audit(context.Background(), store.AuditQuery{Limit: 1})
	if err != nil || evs[0].GatewayID != reg.GetGatewayId() || evs[0].Detections[0].Rule != "github-pat" {
		t.Fatalf("stored event: %+v %v", evs, err)
	}
}

func TestShipAuditFlushTimer(t *testing.T) {
	r := newRig(t, func(o *Options) { o.AuditFlush = 30 * time.Millisecond })
	raw, _ := r.joinKey(t, "")
	gctx, _ := r.register(t, raw)
	s, err := r.client.ShipAudit(gctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(auditBatch(1, 3)); err != nil {
		t.Fatal(err)
	}
	if ack, err := s.Recv(); err != nil || ack.GetAckedThrough() != 3 {
		t.Fatalf("timer ack %v %v", ack, err)
	}
	if err := s.Send(&coordv1.ShipAuditRequest{Events: []*coordv1.AuditEvent{{RequestId: "no seq"}}}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	wantCode(t, err, codes.InvalidArgument, "without a sequence number")
}

func TestShutdownEndsStreams(t *testing.T) {
	r := newRig(t, nil)
	raw, _ := r.joinKey(t, "")
	gctx, _ := r.register(t, raw)
	s, err := r.client.Sync(gctx, &coordv1.SyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recvSnapshot(t, s)
	r.srv.Shutdown()
	_, err = s.Recv()
	wantCode(t, err, codes.Unavailable, "shutting down")
}

// flakyStorage fails AppendAudit while fail is set.
type flakyStorage struct {
	Storage
	fail atomic.Bool
}

func (f *flakyStorage) AppendAudit(ctx context.Context, evs []store.AuditEvent) (int, error) {
	if f.fail.Load() {
		return 0, errors.New("disk full")
	}
	return f.Storage.AppendAudit(ctx, evs)
}

// A storage failure while shipping audit acknowledges nothing and ends the
// stream with UNAVAILABLE; the gateway's resend then stores every event
// exactly once.
func TestShipAuditStorageFailure(t *testing.T) {
	var flaky *flakyStorage
	r := newRig(t, func(o *Options) {
		flaky = &flakyStorage{Storage: o.Store}
		o.Store = flaky
		o.AuditBatch = 10
	})
	raw, _ := r.joinKey(t, "")
	gctx, reg := r.register(t, raw)
	flaky.fail.Store(true)
	s, err := r.client.ShipAudit(gctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(auditBatch(1, 10)); err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	wantCode(t, err, codes.Unavailable, "storage unavailable")
	flaky.fail.Store(false)
	s2, err := r.client.ShipAudit(gctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Send(auditBatch(1, 10)); err != nil {
		t.Fatal(err)
	}
	if ack, err := s2.Recv(); err != nil || ack.GetAckedThrough() != 10 {
		t.Fatalf("ack after recovery: %v %v", ack, err)
	}
	if n, err := r.st.AuditCount(context.Background(), reg.GetGatewayId()); err != nil || n != 10 {
		t.Fatalf("stored %d (%v), want 10", n, err)
	}
}

// On shutdown, events received but not yet stored are stored and
// acknowledged before the stream ends with UNAVAILABLE.
func TestShipAuditShutdownFlushes(t *testing.T) {
	r := newRig(t, func(o *Options) { o.AuditBatch = 1000 }) // AuditFlush is an hour in the rig
	raw, _ := r.joinKey(t, "")
	gctx, reg := r.register(t, raw)
	s, err := r.client.ShipAudit(gctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(auditBatch(1, 7)); err != nil {
		t.Fatal(err)
	}
	// Wait until the server holds them; nothing is stored yet.
	deadline := time.Now().Add(10 * time.Second)
	for r.srv.auditReceived.Load() < 7 {
		if time.Now().After(deadline) {
			t.Fatal("the server did not receive the events")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, _ := r.st.AuditCount(context.Background(), reg.GetGatewayId()); n != 0 {
		t.Fatalf("stored %d before the batch filled", n)
	}
	r.srv.Shutdown()
	ack, err := s.Recv()
	if err != nil || ack.GetAckedThrough() != 7 {
		t.Fatalf("ack on shutdown: %v %v", ack, err)
	}
	_, err = s.Recv()
	wantCode(t, err, codes.Unavailable, "shutting down")
	if n, err := r.st.AuditCount(context.Background(), reg.GetGatewayId()); err != nil || n != 7 {
		t.Fatalf("stored %d (%v), want 7", n, err)
	}
}
