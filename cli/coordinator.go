package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/takumo/aegis/coordinator"
	"github.com/takumo/aegis/coordinator/store"
)

// coordinatorFlags are the coordinator's settings. Each has a flag and an
// environment variable (the flag wins); the database URL is a secret
// (it may hold a password) and has no flag.
type coordinatorFlags struct {
	listen, adminListen, dataDir     string
	tlsCert, tlsKey, tlsClientCA     string
	debounceMS, staleSecs, batchSize int
	flushMS                          int
	logFormat                        string
}

func (a *app) coordinatorCommand() *cobra.Command {
	var f coordinatorFlags
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run the coordinator: join keys, key and policy sync, fleet health, audit",
		Long: `Run the gateway coordinator (DESIGN §8). Gateways register on the gRPC port
with a join key, receive keys, orgs and policy as they change, report health
and ship audit metadata. Operators use the admin HTTP API (the keys,
join-keys, orgs, fleet, audit, usage and policies commands) with the admin
token: TAKUMO_ADMIN_TOKEN, or the one generated at first start into
admin.token in --data-dir.

Storage is SQLite in --data-dir unless TAKUMO_DATABASE_URL is a postgres://
URL. gRPC uses TLS when --tls-cert and --tls-key are set, and mTLS when
--tls-client-ca is set too.

Every flag can be set from the environment: TAKUMO_COORDINATOR_LISTEN,
TAKUMO_ADMIN_LISTEN, TAKUMO_DATA_DIR, TAKUMO_TLS_CERT, TAKUMO_TLS_KEY,
TAKUMO_TLS_CLIENT_CA, TAKUMO_POLICY_DEBOUNCE_MS, TAKUMO_HEALTH_STALE_SECS,
TAKUMO_TELEMETRY_BATCH_SIZE, TAKUMO_TELEMETRY_FLUSH_INTERVAL_MS,
TAKUMO_LOG_FORMAT. A flag wins over its variable.`,
		Example: `  takumo-aegis coordinator --data-dir /var/lib/takumo
  TAKUMO_DATABASE_URL=postgres://aegis@db/aegis takumo-aegis coordinator`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if err := f.fromEnv(cmd, os.LookupEnv); err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			return a.runCoordinator(cmd.Context(), f, os.Getenv("TAKUMO_DATABASE_URL"), os.Getenv("TAKUMO_ADMIN_TOKEN"))
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", ":50051", "gRPC `address` for gateways")
	fl.StringVar(&f.adminListen, "admin-listen", ":8081", "admin HTTP API `address`")
	fl.StringVar(&f.dataDir, "data-dir", "data", "`directory` for the SQLite database and the admin token")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate `file` for gRPC TLS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `file` for gRPC TLS")
	fl.StringVar(&f.tlsClientCA, "tls-client-ca", "", "PEM CA `file`: require gateway client certificates signed by it (mTLS)")
	fl.IntVar(&f.debounceMS, "policy-debounce-ms", 500, "wait this many `ms` after a change before pushing it")
	fl.IntVar(&f.staleSecs, "health-stale-secs", 120, "a gateway without a health report for this many `seconds` is stale")
	fl.IntVar(&f.batchSize, "telemetry-batch-size", 500, "audit events per database write")
	fl.IntVar(&f.flushMS, "telemetry-flush-interval-ms", 5000, "most `ms` between audit writes")
	fl.StringVar(&f.logFormat, "log-format", "json", "log `format`: json or text")
	return cmd
}

// fromEnv fills every flag the command line did not set from its
// environment variable, and checks the values.
func (f *coordinatorFlags) fromEnv(cmd *cobra.Command, lookup func(string) (string, bool)) error {
	strs := map[string]*string{"listen": &f.listen, "admin-listen": &f.adminListen, "data-dir": &f.dataDir,
		"tls-cert": &f.tlsCert, "tls-key": &f.tlsKey, "tls-client-ca": &f.tlsClientCA, "log-format": &f.logFormat}
	envOf := map[string]string{"listen": "TAKUMO_COORDINATOR_LISTEN", "admin-listen": "TAKUMO_ADMIN_LISTEN"}
	env := func(flag string) string {
		if e, ok := envOf[flag]; ok {
			return e
		}
		return "TAKUMO_" + upperSnake(flag)
	}
	var errs []error
	for name, p := range strs {
		if v, ok := lookup(env(name)); ok && !cmd.Flags().Changed(name) {
			*p = v
		}
	}
	ints := map[string]*int{"policy-debounce-ms": &f.debounceMS, "health-stale-secs": &f.staleSecs,
		"telemetry-batch-size": &f.batchSize, "telemetry-flush-interval-ms": &f.flushMS}
	for name, p := range ints {
		if v, ok := lookup(env(name)); ok && !cmd.Flags().Changed(name) {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a whole number", env(name), v))
				continue
			}
			*p = n
		}
		if *p <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %d", name, *p))
		}
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if f.tlsClientCA != "" && f.tlsCert == "" {
		errs = append(errs, errors.New("--tls-client-ca needs --tls-cert and --tls-key"))
	}
	if f.logFormat != "json" && f.logFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q: want json or text", f.logFormat))
	}
	return errors.Join(errs...)
}

func upperSnake(flag string) string {
	b := []byte(flag)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func (a *app) runCoordinator(ctx context.Context, f coordinatorFlags, dbURL, adminEnv string) error {
	var h slog.Handler = slog.NewJSONHandler(a.stderr, nil)
	if f.logFormat == "text" {
		h = slog.NewTextHandler(a.stderr, nil)
	}
	logger := slog.New(h)
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("coordinator: data dir: %w", err)
	}
	if dbURL == "" {
		dbURL = filepath.Join(f.dataDir, "coordinator.db")
	}
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	token, created, err := coordinator.AdminToken(adminEnv, f.dataDir, nil)
	if err != nil {
		return err
	}
	if created {
		logger.Info("coordinator: admin token generated", "file", filepath.Join(f.dataDir, coordinator.AdminTokenFile))
	}
	srv, err := coordinator.NewServer(coordinator.Options{Store: st, Logger: logger,
		Debounce:   time.Duration(f.debounceMS) * time.Millisecond,
		AuditBatch: f.batchSize, AuditFlush: time.Duration(f.flushMS) * time.Millisecond})
	if err != nil {
		return err
	}
	admin := coordinator.NewAdmin(srv, token)
	admin.StaleAfter = time.Duration(f.staleSecs) * time.Second

	opts := srv.ServerOptions()
	if f.tlsCert != "" {
		tc, err := serverTLS(f.tlsCert, f.tlsKey, f.tlsClientCA)
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	g := grpc.NewServer(opts...)
	srv.Attach(g)
	lc := net.ListenConfig{}
	glis, err := lc.Listen(ctx, "tcp", f.listen)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	alis, err := lc.Listen(ctx, "tcp", f.adminListen)
	if err != nil {
		_ = glis.Close()
		return fmt.Errorf("coordinator: %w", err)
	}
	hs := &http.Server{Handler: admin.Handler(), ReadHeaderTimeout: 10 * time.Second}
	logger.Info("coordinator: serving", "grpc", glis.Addr().String(), "admin", alis.Addr().String(),
		"storage", string(st.Engine()), "tls", f.tlsCert != "", "mtls", f.tlsClientCA != "")

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 3)
	go func() { errc <- g.Serve(glis) }()
	go func() {
		if err := hs.Serve(alis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
			return
		}
		errc <- nil
	}()
	go func() { errc <- srv.Run(runCtx) }()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	logger.Info("coordinator: shutting down")
	stop()
	srv.Shutdown()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutCtx)
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-shutCtx.Done():
		g.Stop()
	}
	return runErr
}

func serverTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("coordinator: TLS: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("coordinator: TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("coordinator: TLS client CA %s holds no PEM certificate", clientCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
