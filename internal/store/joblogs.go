package store

import "database/sql"

// ReadDB is the pool for reads, for components that keep their own tables
// next to the store's (job logs, artifacts, blobs). On SQLite it runs beside
// the single write connection instead of queueing behind it.
func (s *Store) ReadDB() *sql.DB { return s.read }

// Rebind rewrites a query written with ? placeholders for the store's
// dialect, for those same components. The query must not contain a literal
// question mark.
func (s *Store) Rebind(query string) string { return s.q(query) }
