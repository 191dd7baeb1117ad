package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

func open(t *testing.T, dbURL string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// A second migration is a no-op, as on every restart.
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	return s
}

func TestCommitsAreDurable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		got, err := s.Durability(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := map[store.Dialect]string{store.SQLite: "FULL", store.Postgres: "on"}[s.Dialect()]
		if got != want {
			t.Fatalf("durability setting = %q, want %q", got, want)
		}
		if s.Dialect() == store.SQLite {
			mode, err := s.JournalMode(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if mode != "wal" {
				t.Fatalf("journal mode = %q, want wal", mode)
			}
		}
	})
}

func delivery(key string, n int) store.Delivery {
	return store.Delivery{
		Instance:    "https://gitlab.example.org",
		ProjectID:   42,
		ProjectPath: "group/project",
		EventHeader: "Merge Request Hook",
		EventKind:   "merge_request",
		DedupKey:    store.DedupKey("https://gitlab.example.org", 42, "group/project", "Merge Request Hook", key),
		Headers:     map[string]string{"X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": key},
		Body:        []byte(fmt.Sprintf(`{"n":%d}`, n)),
		Outcome:     store.OutcomeAccepted,
		Event:       []byte(`{"kind":"merge_request"}`),
		TokenID:     1,
		ReceivedAt:  time.Now(),
	}
}

func TestConcurrentSavesGroupAndDeduplicate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		c := s.NewCommitter(64)
		defer c.Close()
		ctx := context.Background()
		const unique, copies = 200, 3
		var mu sync.Mutex
		firstIDs := map[string]int64{}
		dups := 0
		var wg sync.WaitGroup
		for i := range unique * copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("key-%d", i%unique)
				res, err := c.Save(ctx, delivery(key, i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if res.Duplicate {
					dups++
				}
				if id, ok := firstIDs[key]; ok && id != res.ID {
					t.Errorf("key %s answered with IDs %d and %d", key, id, res.ID)
				}
				firstIDs[key] = res.ID
			}()
		}
		wg.Wait()
		n, err := s.CountDeliveries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != unique {
			t.Fatalf("stored %d deliveries, want %d", n, unique)
		}
		if dups != unique*(copies-1) {
			t.Fatalf("%d saves reported duplicate, want %d", dups, unique*(copies-1))
		}
		list, err := s.Deliveries(ctx, store.DeliveryFilter{ProjectPath: "GROUP/Project", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != unique {
			t.Fatalf("listed %d deliveries, want %d", len(list), unique)
		}
		for i, d := range list {
			if d.RepeatCount != copies-1 {
				t.Fatalf("delivery %d repeat count = %d, want %d", d.ID, d.RepeatCount, copies-1)
			}
			if i > 0 && list[i-1].ID <= d.ID {
				t.Fatalf("deliveries not newest first: %d before %d", list[i-1].ID, d.ID)
			}
		}
	})
}

func TestSameKeyOtherEventKindIsNotADuplicate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		c := s.NewCommitter(8)
		defer c.Close()
		ctx := context.Background()
		push := delivery("uuid-1", 1)
		push.EventHeader, push.EventKind = "Push Hook", "push"
		push.DedupKey = store.DedupKey(push.Instance, push.ProjectID, push.ProjectPath, push.EventHeader, "uuid-1")
		tag := push
		tag.EventHeader, tag.EventKind = "Tag Push Hook", "tag_push"
		tag.DedupKey = store.DedupKey(tag.Instance, tag.ProjectID, tag.ProjectPath, tag.EventHeader, "uuid-1")
		for _, d := range []store.Delivery{push, tag} {
			res, err := c.Save(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if res.Duplicate {
				t.Fatalf("%s with a shared Event-UUID was taken as a duplicate", d.EventHeader)
			}
		}
		// Without any key there is no deduplication at all.
		for range 2 {
			d := delivery("", 1)
			d.DedupKey = ""
			if res, err := c.Save(ctx, d); err != nil || res.Duplicate {
				t.Fatalf("keyless delivery: %+v, %v", res, err)
			}
		}
		if n, _ := s.CountDeliveries(ctx); n != 4 {
			t.Fatalf("stored %d, want 4", n)
		}
	})
}

func TestDeliveryPagination(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		c := s.NewCommitter(8)
		defer c.Close()
		ctx := context.Background()
		for i := range 5 {
			d := delivery(fmt.Sprint(i), i)
			if i == 4 {
				d.ProjectID, d.ProjectPath = 7, "other/project"
				d.DedupKey = store.DedupKey(d.Instance, 7, d.ProjectPath, d.EventHeader, "4")
			}
			if _, err := c.Save(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		page1, err := s.Deliveries(ctx, store.DeliveryFilter{ProjectPath: "group/project", Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		page2, err := s.Deliveries(ctx, store.DeliveryFilter{ProjectPath: "group/project", Limit: 2, BeforeID: page1[1].ID})
		if err != nil {
			t.Fatal(err)
		}
		page3, err := s.Deliveries(ctx, store.DeliveryFilter{ProjectPath: "group/project", Limit: 2, BeforeID: page2[1].ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(page1) != 2 || len(page2) != 2 || len(page3) != 0 {
			t.Fatalf("pages of %d, %d, %d; want 2, 2, 0", len(page1), len(page2), len(page3))
		}
		if page1[0].Headers["Idempotency-Key"] != "3" || page2[1].Headers["Idempotency-Key"] != "0" {
			t.Fatalf("unexpected order: %v ... %v", page1[0].Headers, page2[1].Headers)
		}
		body, event, err := s.DeliveryBody(ctx, page2[1].ID)
		if err != nil || string(body) != `{"n":0}` || string(event) != `{"kind":"merge_request"}` {
			t.Fatalf("body %q event %q err %v", body, event, err)
		}
		if _, _, err := s.DeliveryBody(ctx, 9999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing delivery: %v", err)
		}
	})
}

func TestTokensAndBindings(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		now := time.Now()
		id, err := s.CreateToken(ctx, store.TokenRecord{Instance: "https://gitlab.gnome.org", ScopeKind: "project",
			ScopePath: "GNOME/gtk", KeyID: "k1", Signing: true, CreatedAt: now, CreatedBy: "cli"})
		if err != nil {
			t.Fatal(err)
		}
		c := s.NewCommitter(8)
		defer c.Close()
		d := delivery("bind", 1)
		d.TokenID, d.ProjectID, d.BindProject = id, 4242, true
		d.DedupKey = store.DedupKey(d.Instance, 4242, d.ProjectPath, d.EventHeader, "bind")
		if _, err := c.Save(ctx, d); err != nil {
			t.Fatal(err)
		}
		d.DedupKey = store.DedupKey(d.Instance, 4242, d.ProjectPath, d.EventHeader, "bind-2")
		if _, err := c.Save(ctx, d); err != nil {
			t.Fatalf("binding the same project twice: %v", err)
		}
		rec, err := s.Token(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Signing || rec.ScopePath != "GNOME/gtk" || len(rec.ProjectIDs) != 1 || rec.ProjectIDs[0] != 4242 || rec.RevokedAt != nil {
			t.Fatalf("token record = %+v", rec)
		}
		// The project moved to GNOME/gtk4: its token follows the ID, and
		// whoever takes the old path does not get it by ID.
		for _, c := range []struct {
			path string
			id   int64
			want int
		}{{"GNOME/gtk4", 4242, 1}, {"GNOME/gtk4", 0, 0}, {"gnome/GTK", 7, 1}, {"GNOME/other", 7, 0}} {
			list, err := s.ProjectTokens(ctx, "https://gitlab.gnome.org", c.path, c.id)
			if err != nil || len(list) != c.want {
				t.Errorf("tokens of %s (ID %d) = %+v %v, want %d", c.path, c.id, list, err, c.want)
			}
		}
		n, err := s.RevokeTokens(ctx, "https://gitlab.gnome.org", "gnome/GTK", now)
		if err != nil || n != 1 {
			t.Fatalf("revoked %d, %v; want 1", n, err)
		}
		rec, _ = s.Token(ctx, id)
		if rec.RevokedAt == nil {
			t.Fatal("token not revoked")
		}
		if _, err := s.Token(ctx, id+100); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing token: %v", err)
		}
	})
}

func TestRejectionCounters(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		t0 := time.Date(2026, 11, 25, 10, 42, 0, 0, time.UTC)
		if err := s.AddRejections(ctx, []store.Rejection{{Instance: "i", ScopePath: "a/b", Count: 2, FirstAt: t0, LastAt: t0, LastReason: "wrong token"}}); err != nil {
			t.Fatal(err)
		}
		t1 := t0.Add(time.Minute)
		if err := s.AddRejections(ctx, []store.Rejection{{Instance: "i", ScopePath: "a/b", Count: 3, FirstAt: t1, LastAt: t1, LastReason: "token revoked"}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Rejections(ctx, "i")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Count != 5 || got[0].LastReason != "token revoked" || !got[0].FirstAt.Equal(t0) || !got[0].LastAt.Equal(t1) {
			t.Fatalf("rejections = %+v", got)
		}
	})
}
