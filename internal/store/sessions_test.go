package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

func TestOAuthLoginWorksOnceAndExpires(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		for _, l := range []store.OAuthLogin{
			{StateHash: "fresh", Instance: "https://gitlab.example", Verifier: "v1", ReturnTo: "/p/x", CreatedAt: now},
			{StateHash: "stale", Instance: "https://gitlab.example", Verifier: "v2", ReturnTo: "/", CreatedAt: now.Add(-11 * time.Minute)},
		} {
			if err := s.CreateOAuthLogin(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		notBefore := now.Add(-10 * time.Minute)
		got, err := s.TakeOAuthLogin(ctx, "fresh", notBefore)
		if err != nil {
			t.Fatal(err)
		}
		if got.Instance != "https://gitlab.example" || got.Verifier != "v1" || got.ReturnTo != "/p/x" || !got.CreatedAt.Equal(now) {
			t.Fatalf("taken sign-in = %+v", got)
		}
		if _, err := s.TakeOAuthLogin(ctx, "fresh", notBefore); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second take = %v, want ErrNotFound", err)
		}
		if _, err := s.TakeOAuthLogin(ctx, "stale", notBefore); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired take = %v, want ErrNotFound", err)
		}
	})
}

func TestWebSessionsExpireAndEnd(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		ws := store.WebSession{IDHash: "h1", Instance: "https://gitlab.example", UserID: 7, Username: "alice",
			DisplayName: "Alice", CSRFToken: "c1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateWebSession(ctx, ws); err != nil {
			t.Fatal(err)
		}
		got, err := s.WebSession(ctx, "h1", now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got != ws {
			t.Fatalf("session = %+v, want %+v", got, ws)
		}
		if _, err := s.WebSession(ctx, "h1", now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session at expiry = %v, want ErrNotFound", err)
		}
		n, err := s.PruneSignIns(ctx, now.Add(2*time.Hour), now)
		if err != nil || n != 1 {
			t.Fatalf("prune = %d, %v; want 1 row", n, err)
		}
		if err := s.CreateWebSession(ctx, store.WebSession{IDHash: "h2", Instance: "i", Username: "bob", CSRFToken: "c",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteWebSession(ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WebSession(ctx, "h2", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted session = %v, want ErrNotFound", err)
		}
	})
}
