package coordinator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/coordinator/store"
)

// benchServer serves a coordinator on st over loopback TCP.
func benchServer(b *testing.B, st *store.Store, mod func(*Options)) (*Server, string) {
	b.Helper()
	opt := Options{Store: st}
	if mod != nil {
		mod(&opt)
	}
	srv, err := NewServer(opt)
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Attach(g)
	lis, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = g.Serve(lis) })
	wg.Go(func() { _ = srv.Run(ctx) })
	b.Cleanup(func() { cancel(); srv.Shutdown(); g.Stop(); wg.Wait() })
	return srv, lis.Addr().String()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFleetSync200 connects 200 simulated gateways (each its own
// gRPC connection, registered with a join key, on a Sync stream) to one
// coordinator on SQLite holding 5,000 keys (1,000 orgs), then makes one key change per
// second (b.N changes) and waits until every gateway holds the new
// version. It reports the convergence time of the slowest gateway per
// change (p99 over changes, in ms; the debounce of 500 ms is part of it),
// the process CPU per change and the heap in use. The gateways run in the
// same process, so CPU and heap are upper bounds for the coordinator.
func BenchmarkFleetSync200(b *testing.B) {
	const gateways = 200
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir()+"/c.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	for i := range 5000 {
		if _, err := st.CreateKey(ctx, store.APIKey{ID: fmt.Sprintf("key_%05d", i), Hash: sha256.Sum256([]byte(fmt.Sprint(i))),
			Org: fmt.Sprintf("org_%03d", i%1000), Mode: "live", Scopes: []string{"shield:write"}, State: store.StateActive}); err != nil {
			b.Fatal(err)
		}
	}
	srv, addr := benchServer(b, st, nil)
	raw, _, err := srv.CreateJoinKey(ctx, "fleet", "bench", "")
	if err != nil {
		b.Fatal(err)
	}

	type gw struct {
		mu      sync.Mutex
		version uint64
		seen    map[uint64]time.Time
	}
	gws := make([]*gw, gateways)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	b.Cleanup(func() { stop(); wg.Wait() })
	for i := range gws {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		c := coordv1.NewCoordinatorServiceClient(conn)
		reg, err := c.Register(ctx, &coordv1.RegisterRequest{JoinKey: raw, Name: fmt.Sprint("gw-", i), Mode: "live"})
		if err != nil {
			b.Fatal(err)
		}
		sctx := metadata.AppendToOutgoingContext(runCtx, "authorization", "Bearer "+reg.GetCredential())
		s, err := c.Sync(sctx, &coordv1.SyncRequest{})
		if err != nil {
			b.Fatal(err)
		}
		g := &gw{seen: map[uint64]time.Time{}}
		gws[i] = g
		first, err := s.Recv()
		if err != nil {
			b.Fatal(err)
		}
		g.version = first.GetSnapshot().GetVersion()
		wg.Go(func() {
			for {
				resp, err := s.Recv()
				if err != nil {
					return
				}
				now := time.Now()
				g.mu.Lock()
				if resp.GetSnapshot().GetBaseVersion() != g.version {
					g.mu.Unlock()
					b.Errorf("gateway got a delta from %d while at %d", resp.GetSnapshot().GetBaseVersion(), g.version)
					return
				}
				g.version = resp.GetSnapshot().GetVersion()
				g.seen[g.version] = now
				g.mu.Unlock()
			}
		})
	}
	runtime.GC()
	var convergence []time.Duration
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		state := store.StateDisabled
		if i%2 == 1 {
			state = store.StateActive
		}
		start := time.Now()
		v, err := st.SetKeyState(ctx, "key_00042", state)
		if err != nil {
			b.Fatal(err)
		}
		srv.Changed(v)
		var slowest time.Duration
		for _, g := range gws {
			for {
				g.mu.Lock()
				at, ok := g.seen[v]
				g.mu.Unlock()
				if ok {
					slowest = max(slowest, at.Sub(start))
					break
				}
				if time.Since(start) > 10*time.Second {
					b.Fatalf("a gateway did not converge to version %d in 10 s", v)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		convergence = append(convergence, slowest)
		time.Sleep(time.Until(start.Add(time.Second))) // one change a second
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	slices.Sort(convergence)
	p99 := convergence[min(len(convergence)-1, len(convergence)*99/100)]
	b.ReportMetric(float64(p99.Milliseconds()), "p99-converge-ms")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(len(convergence)), "cpu-ms/change")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}

// BenchmarkAuditIngestPostgres streams audit events from 8 gateways at
// once into a coordinator on PostgreSQL (TAKUMO_TEST_DATABASE_URL) in
// batches of 500, and reports the events stored per second of wall time,
// counted in the database (issue 5: at least 20,000 events/s).
func BenchmarkAuditIngestPostgres(b *testing.B) {
	base := os.Getenv("TAKUMO_TEST_DATABASE_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			b.Fatal("TAKUMO_TEST_DATABASE_URL is not set")
		}
		b.Skip("TAKUMO_TEST_DATABASE_URL is not set")
	}
	ctx := context.Background()
	st := pgBenchStore(b, base)
	srv, addr := benchServer(b, st, func(o *Options) { o.AuditBatch = 500; o.AuditFlush = 100 * time.Millisecond })
	raw, _, err := srv.CreateJoinKey(ctx, "fleet", "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	const streams = 8
	type gateway struct {
		stream grpc.BidiStreamingClient[coordv1.ShipAuditRequest, coordv1.ShipAuditResponse]
		next   int
	}
	gws := make([]*gateway, streams)
	for i := range gws {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		c := coordv1.NewCoordinatorServiceClient(conn)
		reg, err := c.Register(ctx, &coordv1.RegisterRequest{JoinKey: raw, Mode: "live"})
		if err != nil {
			b.Fatal(err)
		}
		s, err := c.ShipAudit(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+reg.GetCredential()))
		if err != nil {
			b.Fatal(err)
		}
		gws[i] = &gateway{stream: s, next: 1}
	}
	const batch = 500
	start := time.Now()
	sent := 0
	for b.Loop() {
		var wg sync.WaitGroup
		for _, g := range gws {
			wg.Go(func() {
				if err := g.stream.Send(auditBatch(g.next, batch)); err != nil {
					b.Error(err)
					return
				}
				ack, err := g.stream.Recv()
				if err != nil || ack.GetAckedThrough() != uint64(g.next+batch-1) {
					b.Errorf("ack %v %v", ack, err)
				}
				g.next += batch
			})
		}
		wg.Wait()
		sent += streams * batch
	}
	elapsed := time.Since(start)
	n, err := st.AuditCount(ctx, "")
	if err != nil || n != int64(sent) {
		b.Fatalf("stored %d events, sent %d (%v)", n, sent, err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
}

func pgBenchStore(b *testing.B, base string) *store.Store {
	b.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "coord_bench_" + hex.EncodeToString(rnd[:])
	ctx := context.Background()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		_ = admin.Close()
	})
	sep := "?"
	if slices.Contains([]byte(base), '?') {
		sep = "&"
	}
	st, err := store.Open(ctx, base+sep+"search_path="+schema)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st
}
