package benchkit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"upbuild.dev/upbuild/internal/store"
)

// ErrNotPostgres means a server URL given for a benchmark's database is not
// a postgres:// URL.
var ErrNotPostgres = errors.New("want a postgres:// URL")

// Database is where upbuild keeps its state for one benchmark run.
type Database struct {
	// URL is what UPBUILD_DATABASE_URL is set to.
	URL string
	// Engine is "sqlite" or "postgres".
	Engine string
	// Where says in words where the data lives, for the report.
	Where string
	// serverURL and name are set for a database this package created on a
	// PostgreSQL server, so that Drop can remove it.
	serverURL, name string
}

// PrepareDatabase picks a SQLite file in dataDir when serverURL is empty,
// and otherwise creates a fresh database named namePrefix plus a random
// suffix on the PostgreSQL server that serverURL names. Drop removes it.
func PrepareDatabase(ctx context.Context, serverURL, dataDir, namePrefix string) (*Database, error) {
	if serverURL == "" {
		return &Database{URL: filepath.Join(dataDir, "upbuild.db"), Engine: "sqlite", Where: "a file in a temporary data dir"}, nil
	}
	if !store.IsPostgresURL(serverURL) {
		return nil, fmt.Errorf("%w, got %s", ErrNotPostgres, RedactURL(serverURL))
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL URL: %w", err)
	}
	name := namePrefix + randomHex(6)
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", u.Host, err)
	}
	defer func() { _ = admin.Close(context.WithoutCancel(ctx)) }()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return &Database{URL: u.String(), Engine: "postgres",
		Where:     fmt.Sprintf("fresh database %s on %s, dropped after", name, u.Host),
		serverURL: serverURL, name: name}, nil
}

// Drop removes a database PrepareDatabase created on PostgreSQL, ending
// any connection still open to it; for SQLite it does nothing (the file
// goes with the run's temporary directory). It runs even when ctx has been
// canceled, as an interrupted run must still clean up, for at most a minute.
func (d *Database) Drop(ctx context.Context) error {
	if d.name == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.serverURL)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	return nil
}
