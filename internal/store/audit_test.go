package store_test

import (
	"context"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

func TestAuditLogIsPerProjectNewestFirst(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		for i, e := range []store.AuditEntry{
			{Instance: "https://gitlab.example", ProjectID: 7, Actor: "alice", Action: "token.issue", Detail: "webhook token #3"},
			{Instance: "https://gitlab.example", ProjectID: 8, Actor: "bob", Action: "settings.change", Detail: "other project"},
			{Instance: "https://gitlab.example", ProjectID: 7, Actor: "carol", Action: "job.rerun", Detail: "job 12"},
			{Instance: "https://gitlab.other", ProjectID: 7, Actor: "dave", Action: "job.cancel", Detail: "other instance"},
		} {
			e.At = base.Add(time.Duration(i) * time.Minute)
			if _, err := s.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.AuditLog(ctx, "https://gitlab.example", 7, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Actor != "carol" || got[1].Actor != "alice" {
			t.Fatalf("audit log of project 7 = %+v, want carol then alice", got)
		}
		if !got[1].At.Equal(base) || got[1].Action != "token.issue" || got[1].Detail != "webhook token #3" {
			t.Fatalf("first entry = %+v", got[1])
		}
		older, err := s.AuditLog(ctx, "https://gitlab.example", 7, got[0].ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(older) != 1 || older[0].Actor != "alice" {
			t.Fatalf("page below %d = %+v, want alice only", got[0].ID, older)
		}
	})
}
