package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

func TestProjectInstancesNamesEveryInstanceWithThatID(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		none, err := s.ProjectInstances(ctx, 7)
		if err != nil || len(none) != 0 {
			t.Fatalf("an empty database: %v %v", none, err)
		}
		for i, r := range []struct {
			instance string
			project  int64
		}{
			{"https://gitlab.b.example", 7}, {"https://gitlab.a.example", 8}, {"https://gitlab.c.example", 7},
			{"https://gitlab.b.example", 7}, {"http://gitlab.d.example", 9}, {"https://gitlab.a.example", 7},
		} {
			p := samplePlan(fmt.Sprint("run-", i), 0)
			p.Run.Instance, p.Run.ProjectID, p.Run.SourceProjectID = r.instance, r.project, r.project
			if _, err := s.ApplyPlan(ctx, p, nil); err != nil {
				t.Fatal(err)
			}
		}
		for id, want := range map[int64][]string{
			7:  {"https://gitlab.a.example", "https://gitlab.b.example", "https://gitlab.c.example"},
			8:  {"https://gitlab.a.example"},
			9:  {"http://gitlab.d.example"},
			10: nil,
		} {
			got, err := s.ProjectInstances(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("instances of project %d = %q, want %q", id, got, want)
			}
		}
	})
}

func TestProjectRejectionsAreTheProjectsAndItsGroups(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		var counters []store.Rejection
		for i, scope := range []string{"Team/Sub/Pkg", "team", "team/sub", "team/sub/pkg-other", "teamwork", ""} {
			counters = append(counters, store.Rejection{Instance: "https://gitlab.example", ScopePath: scope, Count: 1,
				FirstAt: at, LastAt: at.Add(time.Duration(i) * time.Minute), LastReason: "wrong token for " + scope})
		}
		counters = append(counters, store.Rejection{Instance: "https://gitlab.other", ScopePath: "team", Count: 1,
			FirstAt: at, LastAt: at, LastReason: "other instance"})
		if err := s.AddRejections(ctx, counters); err != nil {
			t.Fatal(err)
		}
		got, err := s.ProjectRejections(ctx, store.ProjectRef{Instance: "https://gitlab.example", ProjectID: 7, Path: "team/sub/pkg"})
		if err != nil {
			t.Fatal(err)
		}
		var scopes []string
		for _, r := range got {
			scopes = append(scopes, r.ScopePath)
		}
		if want := []string{"team/sub", "team", "Team/Sub/Pkg"}; !slices.Equal(scopes, want) {
			t.Fatalf("rejections of team/sub/pkg = %q, want %q (most recent first)", scopes, want)
		}
	})
}
