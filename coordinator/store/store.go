// Package store is the coordinator's storage (DESIGN §8): join keys,
// gateways and their health, API keys, orgs, the policy, audit events and
// usage. One Store type runs on two engines, SQLite (pure Go, the default,
// a file in the data directory) and PostgreSQL (TAKUMO_DATABASE_URL), with
// the same SQL apart from a placeholder rewrite, the same versioned
// migrations (goose, run at Open) and the same test suite.
//
// Versions: the store keeps one counter. Every change to an API key, an
// org or the policy increments it in the same transaction and stamps the
// changed row with the new value, so Changes(since) is "rows stamped after
// since" and every delta can be computed from the tables alone, whatever
// its age. Revoked keys and deleted orgs stay as rows (state "revoked",
// Deleted), so a delta can tell a gateway to refuse them.
//
// Secrets: join keys, API keys and gateway credentials are stored as their
// SHA-256 only. Audit events hold no values (rule, category, action and
// line of each detection). Errors never quote a stored hash.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go)
)

// Engine names the database behind a Store.
type Engine string

// The two engines.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Errors callers branch on; they are wrapped with the operation and id.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrRevoked  = errors.New("revoked")
)

//go:embed migrations
var migrations embed.FS

// Store is the coordinator's storage. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	engine Engine
}

// Open connects to the database named by url and runs the migrations. A
// url that starts with postgres:// or postgresql:// is PostgreSQL (pooled
// by database/sql with pgx); anything else is a SQLite file path, created
// with mode 0600 in a directory made 0700 when missing.
func Open(ctx context.Context, url string) (*Store, error) {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return openPostgres(ctx, url)
	}
	return openSQLite(ctx, url)
}

func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %s", redactDSN(err.Error(), dsn))
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, engine: Postgres}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: postgres: %s", redactDSN(err.Error(), dsn))
	}
	if err := s.ensureID(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: postgres: %s", redactDSN(err.Error(), dsn))
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: no database path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	_ = f.Close()
	// WAL lets readers run beside the one writer; immediate transactions
	// take the write lock at BEGIN, so two writers queue on busy_timeout
	// instead of failing when one upgrades a read lock.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	db.SetMaxOpenConns(4)
	s := &Store{db: db, engine: SQLite}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	if err := s.ensureID(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	dir, dialect := "migrations/sqlite", goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.engine == Postgres {
		dir, dialect = "migrations/postgres", goose.DialectPostgres
		// Several coordinators may start at once on one database.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, s.db, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// redactDSN removes the password of dsn from msg (driver errors may quote
// the connection string).
func redactDSN(msg, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return msg
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}

// ensureID gives a new database its random id (kept in meta), once.
func (s *Store) ensureID(ctx context.Context) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	id := int64(binary.BigEndian.Uint64(b[:]) >> 1)
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO meta (name, value) VALUES ('store_id', ?) ON CONFLICT (name) DO NOTHING`), id)
	if err != nil {
		return fmt.Errorf("store id: %w", err)
	}
	return nil
}

// ID identifies the database: made at its first Open, it changes only
// with a new (or another) database, so a gateway can tell that versions it
// holds mean nothing here.
func (s *Store) ID(ctx context.Context) (string, error) {
	var v int64
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'store_id'`).Scan(&v); err != nil {
		return "", fmt.Errorf("store: id: %w", err)
	}
	return fmt.Sprintf("st_%016x", v), nil
}

// Engine reports which database the store runs on.
func (s *Store) Engine() Engine { return s.engine }

// Ping checks that the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// q rewrites the ? placeholders of query for the engine.
func (s *Store) q(query string) string {
	if s.engine != Postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// tx runs fn in a transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(t); err != nil {
		_ = t.Rollback()
		return err
	}
	return t.Commit()
}

// bump increments the store version inside t and returns the new value.
func (s *Store) bump(ctx context.Context, t *sql.Tx) (uint64, error) {
	var v int64
	err := t.QueryRowContext(ctx, s.q(`UPDATE meta SET value = value + 1 WHERE name = 'version' RETURNING value`)).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("version: %w", err)
	}
	return uint64(v), nil //nolint:gosec // G115: the counter starts at 0 and only grows
}

// Version is the current store version.
func (s *Store) Version(ctx context.Context) (uint64, error) {
	var v int64
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'version'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: version: %w", err)
	}
	return uint64(v), nil //nolint:gosec // G115: never negative
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func hash32(b []byte) ([32]byte, error) {
	var h [32]byte
	if len(b) != len(h) {
		return h, fmt.Errorf("stored hash has %d bytes, want 32", len(b))
	}
	copy(h[:], b)
	return h, nil
}
