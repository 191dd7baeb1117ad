package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

const settingsInstance = "https://gitlab.example"

func TestProjectSettingsSaveWithOptimisticConcurrency(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		if ps, found, err := s.ProjectSettings(ctx, settingsInstance, 7); err != nil || found || ps.Version != 0 {
			t.Fatalf("before any save: %+v %v %v", ps, found, err)
		}
		at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		saved, err := s.SaveProjectSettings(ctx, store.SettingsChange{Instance: settingsInstance, ProjectID: 7,
			Data: []byte(`{"format":1,"targets":["fedora-all"]}`), Actor: "alice", Detail: "targets: fedora-all", At: at})
		if err != nil {
			t.Fatal(err)
		}
		if saved.Version != 1 {
			t.Fatalf("first save is version %d", saved.Version)
		}
		// Bob rendered the form before Alice saved: his save is refused
		// and names her.
		_, err = s.SaveProjectSettings(ctx, store.SettingsChange{Instance: settingsInstance, ProjectID: 7,
			Data: []byte(`{"format":1,"approval_policy":"all"}`), Actor: "bob", Detail: "approval policy: all"})
		var conflict *store.SettingsConflictError
		if !errors.Is(err, store.ErrSettingsChanged) || !errors.As(err, &conflict) {
			t.Fatalf("stale first save: %v", err)
		}
		if !strings.Contains(err.Error(), "changed by alice meanwhile") || conflict.Current.Version != 1 {
			t.Fatalf("conflict says %q (%+v)", err, conflict.Current)
		}
		// A form rendered from version 1 saves.
		if saved, err = s.SaveProjectSettings(ctx, store.SettingsChange{Instance: settingsInstance, ProjectID: 7,
			Data: []byte(`{"format":1,"approval_policy":"all"}`), Actor: "bob", Detail: "approval policy: all", ExpectedVersion: 1}); err != nil {
			t.Fatal(err)
		}
		got, found, err := s.ProjectSettings(ctx, settingsInstance, 7)
		if err != nil || !found {
			t.Fatalf("after saves: %v %v", found, err)
		}
		if got.Version != 2 || got.UpdatedBy != "bob" || string(got.Data) != `{"format":1,"approval_policy":"all"}` || got.Version != saved.Version {
			t.Fatalf("stored %+v", got)
		}
		// Another stale form (version 1 again) writes nothing, not even an audit entry.
		if _, err := s.SaveProjectSettings(ctx, store.SettingsChange{Instance: settingsInstance, ProjectID: 7,
			Data: []byte(`{}`), Actor: "carol", Detail: "cleared", ExpectedVersion: 1}); !errors.Is(err, store.ErrSettingsChanged) {
			t.Fatalf("stale second save: %v", err)
		}
		log, err := s.AuditLog(ctx, settingsInstance, 7, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 2 || log[0].Actor != "bob" || log[1].Actor != "alice" || log[1].Action != "settings.change" ||
			log[1].Detail != "targets: fedora-all" || !log[1].At.Equal(at) {
			t.Fatalf("audit log %+v", log)
		}
		// Another project is untouched.
		if _, found, err := s.ProjectSettings(ctx, settingsInstance, 8); err != nil || found {
			t.Fatalf("project 8: %v %v", found, err)
		}
	})
}

func TestConcurrentSavesFromOneVersionSaveOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		const editors = 8
		var wg sync.WaitGroup
		errs := make([]error, editors)
		for i := range editors {
			wg.Go(func() {
				_, errs[i] = s.SaveProjectSettings(ctx, store.SettingsChange{Instance: settingsInstance, ProjectID: 9,
					Data: []byte(`{}`), Actor: "editor", Detail: "save"})
			})
		}
		wg.Wait()
		saved := 0
		for _, err := range errs {
			switch {
			case err == nil:
				saved++
			case !errors.Is(err, store.ErrSettingsChanged):
				t.Errorf("unexpected error: %v", err)
			}
		}
		if saved != 1 {
			t.Fatalf("%d saves from version 0 succeeded, want 1", saved)
		}
		log, err := s.AuditLog(ctx, settingsInstance, 9, 0, 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 1 {
			t.Fatalf("%d audit entries, want 1", len(log))
		}
	})
}

func TestProjectConfigKeepsTheLatest(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		if _, found, err := s.ProjectConfig(ctx, settingsInstance, 7); err != nil || found {
			t.Fatalf("before: %v %v", found, err)
		}
		for _, sha := range []string{"aaa", "bbb"} {
			if err := s.RecordProjectConfig(ctx, store.ProjectConfig{Instance: settingsInstance, ProjectID: 7, Ref: "main", SHA: sha,
				File: ".packit.yaml", Content: []byte("specfile_path: " + sha + ".spec\n"), RepoFiles: []string{".packit.yaml", sha + ".spec"}}); err != nil {
				t.Fatal(err)
			}
		}
		c, found, err := s.ProjectConfig(ctx, settingsInstance, 7)
		if err != nil || !found {
			t.Fatalf("after: %v %v", found, err)
		}
		if c.SHA != "bbb" || string(c.Content) != "specfile_path: bbb.spec\n" || len(c.RepoFiles) != 2 || c.RepoFiles[1] != "bbb.spec" || c.SeenAt.IsZero() {
			t.Fatalf("latest config %+v", c)
		}
	})
}
