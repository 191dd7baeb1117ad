package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// recordedResponse is one response upbuild sent over HTTP.
type recordedResponse struct {
	method, path string
	status       int
	body         []byte
}

// responseRecorder keeps a copy of every response body upbuild's handler
// writes, whoever asked: GitLab's deliveries or the test.
type responseRecorder struct {
	mu   sync.Mutex
	seen []recordedResponse
}

// serve has upbuild's handler (next) answer r, and records the answer.
func (rr *responseRecorder) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	cw := &copyingWriter{ResponseWriter: w, status: http.StatusOK}
	next.ServeHTTP(cw, r)
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.seen = append(rr.seen, recordedResponse{method: r.Method, path: r.URL.Path, status: cw.status, body: cw.body.Bytes()})
}

func (rr *responseRecorder) responses() []recordedResponse {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]recordedResponse(nil), rr.seen...)
}

// copyingWriter tees the body into a buffer.
type copyingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *copyingWriter) WriteHeader(status int) {
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *copyingWriter) Write(p []byte) (int, error) {
	c.body.Write(p)
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the real writer (flushes, deadlines).
func (c *copyingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// recordResponses puts a recorder in front of upbuild, for this run and
// any restart.
func (e *env) recordResponses() *responseRecorder {
	e.t.Helper()
	rr := &responseRecorder{}
	e.Intercept(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rr.serve(next, w, r) })
	})
	return rr
}

// projectScope is the token scope of one simulator project.
func (e *env) projectScope(p gitlabsim.Project) token.Scope {
	return token.Scope{Kind: token.ScopeProject, Instance: e.Instance, Path: p.PathWithNamespace}
}

// hookIssued is e.hook that hands back what was issued, and can ask for a
// signing token, which the simulator's hook then signs deliveries with.
func (e *env) hookIssued(p gitlabsim.Project, signing bool) hooktoken.Issued {
	e.t.Helper()
	issued, err := e.Tokens().Issue(e.Context(), e.projectScope(p), signing, "e2e")
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.Sim.AddHook(p.ID, gitlabsim.HookSpec{URL: issued.WebhookURL, Token: issued.Token, SigningToken: issued.SigningSecret,
		TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true}); err != nil {
		e.t.Fatal(err)
	}
	return issued
}

// namedSecret is a secret the scan looks for, under a name safe to print.
type namedSecret struct {
	name  string
	value []byte
}

// secretForm is one encoding of a secret as it could leak.
type secretForm struct {
	secret, form string
	needle       []byte
}

// encodedForms lists each secret plain, in base64 (standard and URL
// alphabets, padded and not), URL-encoded (query and path) and hex (lower
// and upper case), without repeats.
func encodedForms(secrets []namedSecret) []secretForm {
	var out []secretForm
	for _, s := range secrets {
		str := string(s.value)
		forms := []struct {
			name string
			text string
		}{
			{"plain", str},
			{"base64", base64.StdEncoding.EncodeToString(s.value)},
			{"base64 unpadded", base64.RawStdEncoding.EncodeToString(s.value)},
			{"base64url", base64.URLEncoding.EncodeToString(s.value)},
			{"base64url unpadded", base64.RawURLEncoding.EncodeToString(s.value)},
			{"query-escaped", url.QueryEscape(str)},
			{"path-escaped", url.PathEscape(str)},
			{"hex", hex.EncodeToString(s.value)},
			{"HEX", strings.ToUpper(hex.EncodeToString(s.value))},
		}
		seen := map[string]bool{}
		for _, f := range forms {
			if seen[f.text] {
				continue
			}
			seen[f.text] = true
			out = append(out, secretForm{secret: s.name, form: f.name, needle: []byte(f.text)})
		}
	}
	return out
}

// haystack is one thing upbuild wrote, named by where it is.
type haystack struct {
	where string
	data  []byte
}

// findSecrets returns one line per secret form found, naming the place and
// the offset but never the secret itself.
func findSecrets(forms []secretForm, stacks []haystack) []string {
	var found []string
	for _, h := range stacks {
		for _, f := range forms {
			if i := bytes.Index(h.data, f.needle); i >= 0 {
				found = append(found, fmt.Sprintf("%s (%s) in %s at byte %d of %d", f.secret, f.form, h.where, i, len(h.data)))
			}
		}
	}
	return found
}

// serviceKeys reads the key file: "<id> <base64 secret>" lines, '#' comments.
func serviceKeys(path string) ([]namedSecret, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	var out []namedSecret
	for n, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("key file line %d: %d fields", n+1, len(fields))
		}
		raw, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil {
			return nil, fmt.Errorf("key file line %d: %w", n+1, err)
		}
		out = append(out, namedSecret{"service key " + fields[0] + " (bytes)", raw},
			namedSecret{"service key " + fields[0] + " (base64 text)", []byte(fields[1])})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("key file %s holds no keys", path)
	}
	return out, nil
}

// databaseRows reads every row of every table of the store's database, one
// haystack per cell, and counts the rows of each table.
func databaseRows(ctx context.Context, st *store.Store) ([]haystack, map[string]int, error) {
	db := st.ReadDB()
	list := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if st.Dialect() == store.Postgres {
		list = `SELECT table_schema || '.' || table_name FROM information_schema.tables
			WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`
	}
	tables, err := queryStrings(ctx, db, list)
	if err != nil {
		return nil, nil, fmt.Errorf("list tables: %w", err)
	}
	sort.Strings(tables)
	var out []haystack
	counts := map[string]int{}
	for _, table := range tables {
		cells, rowCount, err := tableRows(ctx, db, table)
		if err != nil {
			return nil, nil, err
		}
		counts[table] = rowCount
		out = append(out, cells...)
	}
	return out, counts, nil
}

func queryStrings(ctx context.Context, db *sql.DB, query string) ([]string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func quoteTable(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

func tableRows(ctx context.Context, db *sql.DB, table string) (cells []haystack, rowCount int, err error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+quoteTable(table))
	if err != nil {
		return nil, 0, fmt.Errorf("read table %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, 0, fmt.Errorf("read table %s: %w", table, err)
	}
	for n := 1; rows.Next(); n++ {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, 0, fmt.Errorf("read table %s: %w", table, err)
		}
		for i, v := range vals {
			cells = append(cells, haystack{where: fmt.Sprintf("table %s row %d column %s", table, n, cols[i]), data: cellBytes(v)})
		}
		rowCount++
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read table %s: %w", table, err)
	}
	return cells, rowCount, nil
}

// cellBytes renders a column value as the bytes a leak would show in.
func cellBytes(v any) []byte {
	switch v := v.(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	case time.Time:
		return []byte(v.Format(time.RFC3339Nano))
	case nil:
		return nil
	default:
		return []byte(fmt.Sprint(v))
	}
}
