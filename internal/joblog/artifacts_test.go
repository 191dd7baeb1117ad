package joblog_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/blob"
	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// eachBlobStore runs fn with each blob store, on a fresh database of each engine.
func eachBlobStore(t *testing.T, fn func(t *testing.T, st *store.Store, blobs blob.Store)) {
	t.Run("fs", func(t *testing.T) {
		testdb.Each(t, func(t *testing.T, dbURL string) {
			fn(t, openStore(t, dbURL), blob.FS{Root: filepath.Join(t.TempDir(), "artifacts")})
		})
	})
	t.Run("db", func(t *testing.T) {
		testdb.Each(t, func(t *testing.T, dbURL string) {
			st := openStore(t, dbURL)
			fn(t, st, blob.DB{Store: st, ChunkSize: 4096})
		})
	})
}

type artifactList struct {
	Artifacts []joblog.ArtifactJSON `json:"artifacts"`
}

func TestArtifactsListAndDownload(t *testing.T) {
	eachBlobStore(t, func(t *testing.T, st *store.Store, blobs blob.Store) {
		ctx := context.Background()
		srv := server(t, st, joblog.NewLogs(st, joblog.Options{}), blobs)
		arts := joblog.NewArtifacts(st, blobs)
		job := newJob(t, st, "public")
		files := map[string][]byte{
			"hello-1.0-1.src.rpm": bytes.Repeat([]byte{0xed, 0xab, 0xee, 0xdb, 0}, 3000),
			"build log ü.txt":     []byte("<script>alert(1)</script>"),
		}
		for name, content := range files {
			if _, err := arts.Save(ctx, job, name, bytes.NewReader(content)); err != nil {
				t.Fatal(err)
			}
		}
		resp, body := get(t, fmt.Sprintf("%s/api/v1/jobs/%d/artifacts", srv.URL, job), "")
		var list artifactList
		if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != 200 {
			t.Fatalf("list: %d %s %v", resp.StatusCode, body, err)
		}
		if len(list.Artifacts) != 2 || list.Artifacts[0].Name != "build log ü.txt" || list.Artifacts[1].Name != "hello-1.0-1.src.rpm" {
			t.Fatalf("list: %s", body)
		}
		for _, a := range list.Artifacts {
			want := files[a.Name]
			sum := sha256.Sum256(want)
			if a.Size != int64(len(want)) || a.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("listed %+v, want %d bytes with sha256 %x", a, len(want), sum)
			}
			resp, got := get(t, srv.URL+a.URL, "")
			h := resp.Header
			if resp.StatusCode != 200 || got != string(want) || h.Get("Content-Type") != "application/octet-stream" ||
				h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") {
				t.Fatalf("download %s: %d %v, %d bytes", a.URL, resp.StatusCode, h, len(got))
			}
		}
		if resp, _ := get(t, fmt.Sprintf("%s/api/v1/jobs/%d/artifacts/..%%2F..%%2Fetc%%2Fpasswd", srv.URL, job), ""); resp.StatusCode != 404 {
			t.Fatalf("download of a traversal name: %d", resp.StatusCode)
		}
		if resp, _ := get(t, fmt.Sprintf("%s/api/v1/jobs/%d/artifacts/missing.rpm", srv.URL, job), ""); resp.StatusCode != 404 {
			t.Fatalf("download of a missing artifact: %d", resp.StatusCode)
		}
	})
}

func TestHostileArtifactNamesAreRefused(t *testing.T) {
	eachBlobStore(t, func(t *testing.T, st *store.Store, blobs blob.Store) {
		ctx := context.Background()
		arts := joblog.NewArtifacts(st, blobs)
		job := newJob(t, st, "public")
		for _, name := range []string{"", ".", "..", "../../etc/passwd", "/etc/passwd", "a/b", "..\\x", "a\x00b", "a\nb",
			".hidden", "\xff.rpm", strings.Repeat("n", 300)} {
			if _, err := arts.Save(ctx, job, name, strings.NewReader("x")); !errors.Is(err, blob.ErrBadKey) {
				t.Errorf("save %q: %v, want ErrBadKey", name, err)
			}
		}
		if list, err := arts.List(ctx, job); err != nil || len(list) != 0 {
			t.Fatalf("hostile names recorded: %+v %v", list, err)
		}
		if stored, err := blobs.List(ctx, ""); err != nil || len(stored) != 0 {
			t.Fatalf("hostile names stored: %+v %v", stored, err)
		}
	})
}

func TestPrivateProjectsNeedTheAdminToken(t *testing.T) {
	eachBlobStore(t, func(t *testing.T, st *store.Store, blobs blob.Store) {
		ctx := context.Background()
		logs := joblog.NewLogs(st, joblog.Options{})
		srv := server(t, st, logs, blobs)
		for _, visibility := range []string{"private", "internal", "", "public"} {
			job := newJob(t, st, visibility)
			w := logs.Writer(ctx, job)
			if _, err := io.WriteString(w, "secret build output\n"); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := joblog.NewArtifacts(st, blobs).Save(ctx, job, "a.rpm", strings.NewReader("rpm")); err != nil {
				t.Fatal(err)
			}
			setState(t, st, job, store.JobSuccess)
			base := fmt.Sprintf("%s/api/v1/jobs/%d", srv.URL, job)
			for _, path := range []string{"/log", "/log/stream", "/artifacts", "/artifacts/a.rpm"} {
				anon, anonBody := get(t, base+path, "")
				wrong, _ := get(t, base+path, "not-"+adminToken)
				admin, _ := get(t, base+path, adminToken)
				if admin.StatusCode != 200 {
					t.Errorf("%s %s with the admin token: %d", visibility, path, admin.StatusCode)
				}
				wantAnon := 404
				if visibility == "public" {
					wantAnon = 200
				}
				if anon.StatusCode != wantAnon || wrong.StatusCode != wantAnon {
					t.Errorf("%q project %s: %d without a token and %d with a wrong one, want %d", visibility, path,
						anon.StatusCode, wrong.StatusCode, wantAnon)
				}
				if wantAnon == 404 && (strings.Contains(anonBody, "secret") || strings.Contains(anonBody, "rpm")) {
					t.Errorf("%s %s: refusal shows content: %s", visibility, path, anonBody)
				}
			}
		}
		if resp, _ := get(t, srv.URL+"/api/v1/jobs/999999/log", adminToken); resp.StatusCode != 404 {
			t.Fatalf("a job that does not exist: %d", resp.StatusCode)
		}
	})
}

func TestPruneDeletesOnlyOldJobsArtifactsAndLogs(t *testing.T) {
	eachBlobStore(t, func(t *testing.T, st *store.Store, blobs blob.Store) {
		ctx := context.Background()
		logs := joblog.NewLogs(st, joblog.Options{})
		arts := joblog.NewArtifacts(st, blobs)
		jobs := map[string]int64{}
		for _, which := range []string{"old", "recent", "running"} {
			job := newJob(t, st, "public")
			jobs[which] = job
			w := logs.Writer(ctx, job)
			if _, err := io.WriteString(w, which+" log\n"); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"a.rpm", "b.rpm"} {
				if _, err := arts.Save(ctx, job, name, strings.NewReader(which)); err != nil {
					t.Fatal(err)
				}
			}
		}
		setState(t, st, jobs["old"], store.JobSuccess)
		setState(t, st, jobs["running"], store.JobRunning)
		// The retention boundary falls between the two finishes.
		time.Sleep(100 * time.Millisecond)
		boundary := time.Now()
		time.Sleep(100 * time.Millisecond)
		setState(t, st, jobs["recent"], store.JobFailed)

		n, err := arts.Prune(ctx, time.Since(boundary))
		if err != nil || n != 2 {
			t.Fatalf("prune artifacts: %d %v, want the old job's 2", n, err)
		}
		n, err = logs.Prune(ctx, time.Since(boundary))
		if err != nil || n != 1 {
			t.Fatalf("prune logs: %d %v, want the old job's", n, err)
		}
		for which, job := range jobs {
			list, err := arts.List(ctx, job)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := logs.Lines(ctx, job, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			_, _, openErr := arts.Open(ctx, job, "a.rpm")
			if which == "old" {
				if len(list) != 0 || len(lines) != 0 || !errors.Is(openErr, joblog.ErrNotFound) {
					t.Fatalf("old job after prune: %d artifacts, %d lines, open: %v", len(list), len(lines), openErr)
				}
				continue
			}
			if len(list) != 2 || len(lines) != 1 || openErr != nil {
				t.Fatalf("%s job after prune: %d artifacts, %d lines, open: %v", which, len(list), len(lines), openErr)
			}
		}
		if stored, err := blobs.List(ctx, fmt.Sprintf("jobs/%d/", jobs["old"])); err != nil || len(stored) != 0 {
			t.Fatalf("old job's blobs after prune: %+v %v", stored, err)
		}
	})
}
