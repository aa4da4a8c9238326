package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/takumo/aegis/coordinator"
	"github.com/takumo/aegis/coordinator/store"
	"github.com/takumo/aegis/extproc"
)

// embeddedCoordinator is the coordinator a standalone gateway runs inside
// itself (DESIGN §8): SQLite in the data directory, reached by the
// gateway's own coordinator client over an in-memory gRPC connection, and
// its admin API on admin_listen, so that every admin command (keys,
// join-keys, usage, audit, …) works against a single gateway too. The keys
// of TAKUMO_API_KEYS and the dev key are put into its store at start;
// a key revoked with `takumo-aegis keys revoke` stays revoked across
// restarts, since revocation is final.
type embeddedCoordinator struct {
	st     *store.Store
	srv    *coordinator.Server
	g      *grpc.Server
	lis    *bufconn.Listener
	hs     *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// embeddedJoinKeyName names the join keys the embedded coordinator makes
// for its own gateway (a new one each start; older ones are revoked).
const embeddedJoinKeyName = "embedded-gateway"

func startEmbeddedCoordinator(ctx context.Context, cfg *serverConfig, devKey string, logger *slog.Logger) (*embeddedCoordinator, *fleetConn, error) {
	dir := filepath.Join(cfg.DataDir, "coordinator")
	st, err := store.Open(ctx, filepath.Join(dir, "coordinator.db"))
	if err != nil {
		return nil, nil, fmt.Errorf("embedded coordinator: %w", err)
	}
	e := &embeddedCoordinator{st: st}
	fail := func(err error) (*embeddedCoordinator, *fleetConn, error) {
		e.stop()
		return nil, nil, fmt.Errorf("embedded coordinator: %w", err)
	}
	if err := seedStandalone(ctx, st, cfg, devKey); err != nil {
		return fail(err)
	}
	srv, err := coordinator.NewServer(coordinator.Options{Store: st, Logger: logger, Debounce: 50 * time.Millisecond,
		AuditFlush: time.Second})
	if err != nil {
		return fail(err)
	}
	e.srv = srv
	// A fresh join key for this start; the previous ones are revoked, so a
	// stale gateway.json re-registers.
	jks, err := st.ListJoinKeys(ctx)
	if err != nil {
		return fail(err)
	}
	for _, jk := range jks {
		if jk.Name == embeddedJoinKeyName && !jk.Revoked() {
			if err := srv.RevokeJoinKey(ctx, jk.ID); err != nil {
				return fail(err)
			}
		}
	}
	joinKey, _, err := srv.CreateJoinKey(ctx, embeddedJoinKeyName, "standalone", "")
	if err != nil {
		return fail(err)
	}

	e.lis = bufconn.Listen(1 << 20)
	e.g = grpc.NewServer(srv.ServerOptions()...)
	srv.Attach(e.g)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.wg.Go(func() { _ = e.g.Serve(e.lis) })
	e.wg.Go(func() { _ = srv.Run(runCtx) })

	if cfg.AdminListen != "off" {
		token, created, err := coordinator.AdminToken(os.Getenv("TAKUMO_ADMIN_TOKEN"), dir, nil)
		if err != nil {
			return fail(err)
		}
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.AdminListen)
		if err != nil {
			// The gateway's job is the proxy: it runs without the admin API
			// rather than not at all.
			logger.Warn("embedded coordinator: admin API not started", "addr", cfg.AdminListen, "err", err)
		} else {
			e.hs = &http.Server{Handler: coordinator.NewAdmin(srv, token).Handler(), ReadHeaderTimeout: 10 * time.Second}
			e.wg.Go(func() { _ = e.hs.Serve(ln) })
			logger.Info("admin API listening", "addr", ln.Addr().String(), "token_file", filepath.Join(dir, coordinator.AdminTokenFile),
				"token_generated", created)
		}
	}
	return e, &fleetConn{
		addr:    "passthrough:///embedded-coordinator",
		joinKey: joinKey,
		dataDir: filepath.Join(cfg.DataDir, "gateway"),
		health:  2 * time.Second,
		dial: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return e.lis.DialContext(ctx) })},
	}, nil
}

// seedStandalone puts the standalone org, the configured keys and the dev
// key into the store. A key already there (by hash) keeps its state: one
// an operator revoked stays revoked. The dev keys of earlier runs are
// revoked, so only this run's works.
func seedStandalone(ctx context.Context, st *store.Store, cfg *serverConfig, devKey string) error {
	plan := cfg.Plan
	if plan == "" {
		plan = extproc.DefaultPlan
	}
	orgs, err := st.ListOrgs(ctx)
	if err != nil {
		return err
	}
	have := false
	for _, o := range orgs {
		have = have || (o.ID == standaloneOrg && o.Plan == plan)
	}
	if !have {
		if _, err := st.PutOrg(ctx, store.Org{ID: standaloneOrg, Plan: plan, Seats: 1}); err != nil {
			return err
		}
	}
	devID := ""
	add := func(k, name string) error {
		h := sha256.Sum256([]byte(k))
		// The id is derived from the hash: stable across restarts, and a
		// changed TAKUMO_API_KEYS never reuses an id.
		id := "key_" + hex.EncodeToString(h[:6])
		if name == devKeyName {
			devID = id
		}
		_, err := st.CreateKey(ctx, store.APIKey{ID: id, Hash: h, Org: standaloneOrg,
			Name: name, Mode: cfg.Mode, Scopes: []string{extproc.ScopeShieldWrite}, State: store.StateActive,
			CreatedAt: time.Now().UTC()})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
		return nil
	}
	for _, k := range cfg.APIKeys {
		if err := add(k, "configured"); err != nil {
			return err
		}
	}
	if devKey != "" {
		if err := add(devKey, devKeyName); err != nil {
			return err
		}
	}
	all, err := st.ListKeys(ctx, standaloneOrg)
	if err != nil {
		return err
	}
	for _, k := range all {
		if k.Name == devKeyName && k.ID != devID && k.State != store.StateRevoked {
			if _, err := st.SetKeyState(ctx, k.ID, store.StateRevoked); err != nil {
				return err
			}
		}
	}
	return nil
}

// devKeyName names the dev key of gateway --dev in the embedded store.
const devKeyName = "dev"

// stop stops the embedded coordinator (after the gateway and its client).
func (e *embeddedCoordinator) stop() {
	if e.hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = e.hs.Shutdown(ctx)
		cancel()
	}
	if e.cancel != nil {
		e.cancel()
	}
	if e.srv != nil {
		e.srv.Shutdown()
	}
	if e.g != nil {
		e.g.Stop()
	}
	e.wg.Wait()
	_ = e.st.Close()
}
