// Package store is upbuild's durable state on SQLite (the embedded default)
// or PostgreSQL, with the same migrations' meaning and the same behaviour.
//
// Durability is never traded for speed: SQLite runs with synchronous=FULL in
// WAL mode and PostgreSQL with synchronous_commit=on. Throughput comes from
// grouping many deliveries into one commit (see Committer).
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names the database engine behind a Store.
type Dialect string

// The supported engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

//go:embed migrations
var migrations embed.FS

// Store is the handle on the database. It is safe for concurrent use.
type Store struct {
	dialect Dialect
	// write is the connection pool for writes. On SQLite it has exactly one
	// connection, because SQLite has one writer at a time anyway and a
	// single connection avoids SQLITE_BUSY storms.
	write *sql.DB
	// read serves queries. On SQLite, WAL lets readers run beside the writer.
	read *sql.DB
	// location is the file path (SQLite) or the URL without password (PostgreSQL),
	// for messages.
	location string
	// stopCheckpoints ends the SQLite checkpoint loop; checkpointsDone says it ended.
	stopCheckpoints, checkpointsDone chan struct{}
}

// checkpointInterval is how often the SQLite WAL is folded back into the
// database file.
const checkpointInterval = time.Second

// checkpointLoop checkpoints the SQLite WAL in the background. PASSIVE
// never waits for the writer, and a checkpoint only moves committed pages:
// durability is the WAL's job (synchronous=FULL) and is unchanged.
func (s *Store) checkpointLoop() {
	defer close(s.checkpointsDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCheckpoints:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, _ = s.read.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			cancel()
		}
	}
}

// IsPostgresURL reports whether a database URL selects PostgreSQL.
func IsPostgresURL(dbURL string) bool {
	return strings.HasPrefix(dbURL, "postgres://") || strings.HasPrefix(dbURL, "postgresql://")
}

// Open connects to the database that dbURL names: a postgres:// URL, or a
// SQLite file path (optionally as sqlite://path). It does not migrate.
func Open(ctx context.Context, dbURL string) (*Store, error) {
	if IsPostgresURL(dbURL) {
		return openPostgres(ctx, dbURL)
	}
	return openSQLite(ctx, strings.TrimPrefix(dbURL, "sqlite://"))
}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
	}
	q := url.Values{}
	for _, p := range []string{"page_size(16384)", "journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	writeQ := url.Values{}
	for k, v := range q {
		writeQ[k] = v
	}
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction never
	// fails half-way with SQLITE_BUSY when it first writes.
	writeQ.Set("_txlock", "immediate")
	// Checkpoints run in the background (see checkpointLoop), not inside
	// whichever commit happens to cross the WAL threshold: that commit, and
	// every delivery waiting on it, would otherwise pay for copying the WAL.
	writeQ.Add("_pragma", "wal_autocheckpoint(0)")
	write, err := sql.Open("sqlite", "file:"+path+"?"+writeQ.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	read.SetMaxOpenConns(8)
	s := &Store{dialect: SQLite, write: write, read: read, location: path, stopCheckpoints: make(chan struct{}), checkpointsDone: make(chan struct{})}
	if err := s.ping(ctx); err != nil {
		close(s.checkpointsDone)
		s.Close()
		return nil, err
	}
	go s.checkpointLoop()
	// The database file holds webhook bodies: keep it private.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
	}
	return s, nil
}

func openPostgres(ctx context.Context, dbURL string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: bad database URL: %w", err)
	}
	// Durable commits, whatever the server's default says.
	cfg.RuntimeParams["synchronous_commit"] = "on"
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	loc := cfg.Host + ":" + strconv.Itoa(int(cfg.Port)) + "/" + cfg.Database
	s := &Store{dialect: Postgres, write: db, read: db, location: loc}
	if err := s.ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("open %s database at %s: %w", s.dialect, s.location, err)
	}
	return nil
}

// Close releases the connections.
func (s *Store) Close() error {
	if s.stopCheckpoints != nil {
		select {
		case <-s.stopCheckpoints:
		default:
			close(s.stopCheckpoints)
		}
		<-s.checkpointsDone
	}
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// Dialect says which engine this store runs on.
func (s *Store) Dialect() Dialect { return s.dialect }

// Location is a printable description of where the data lives (no password).
func (s *Store) Location() string { return s.location }

// WriteDB is the pool for writes, for components that share the database
// such as the job queue.
func (s *Store) WriteDB() *sql.DB { return s.write }

// Migrate brings the schema up to date. It is safe to run concurrently from
// several processes on PostgreSQL (goose takes a lock) and idempotent.
func (s *Store) Migrate(ctx context.Context) error {
	dialect := goose.DialectSQLite3
	if s.dialect == Postgres {
		dialect = goose.DialectPostgres
	}
	sub, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(dialect, s.write, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Durability reports the setting that makes a commit durable, as the
// database itself reports it: SQLite's PRAGMA synchronous (2 = FULL) on the
// write connection, or PostgreSQL's synchronous_commit.
func (s *Store) Durability(ctx context.Context) (string, error) {
	var v string
	var err error
	if s.dialect == Postgres {
		err = s.write.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&v)
	} else {
		var n int
		err = s.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&n)
		v = map[int]string{0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[n]
	}
	if err != nil {
		return "", fmt.Errorf("read durability setting: %w", err)
	}
	return v, nil
}

// JournalMode reports SQLite's journal mode ("wal"), or "" on PostgreSQL.
func (s *Store) JournalMode(ctx context.Context) (string, error) {
	if s.dialect != SQLite {
		return "", nil
	}
	var v string
	if err := s.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&v); err != nil {
		return "", fmt.Errorf("read journal mode: %w", err)
	}
	return v, nil
}

// q rewrites a query written with ? placeholders for the store's dialect.
// Queries in this package never contain a literal question mark.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// micros converts a time to the stored form.
func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

// fromMicros converts the stored form back.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// ErrNotFound is returned when a requested row does not exist.
var ErrNotFound = errors.New("not found")
