// Package testdb gives tests a fresh database on each engine upbuild
// supports: a SQLite file in a temporary directory, and a new PostgreSQL
// database on the server named by UPBUILD_TEST_POSTGRES_URL (the test
// command starts one on 127.0.0.1). Without that variable PostgreSQL
// variants fail loudly rather than pass silently.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// EnvPostgresURL names the variable with the test PostgreSQL server's URL.
const EnvPostgresURL = "UPBUILD_TEST_POSTGRES_URL"

// Each runs fn once per engine, as subtests named "sqlite" and "postgres",
// each with the URL of a fresh, empty database.
func Each(t *testing.T, fn func(t *testing.T, dbURL string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns the path of a new SQLite database file.
func SQLite(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "upbuild.db")
}

// Postgres creates a new database on the test server and returns its URL.
// The database is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresURL)
	if base == "" {
		t.Fatalf("%s is not set: run the README's test command (scripts/test), which starts PostgreSQL", EnvPostgresURL)
	}
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgresURL, err)
	}
	admin := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "upbuild_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(admin, name) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgresURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

func dropDatabase(admin *sql.DB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// WITH (FORCE) ends connections a test left open (PostgreSQL 13+).
	_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}
