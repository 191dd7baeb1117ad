package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenIssueListRevokeAndKeyRotation(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"UPBUILD_DATA_DIR":   filepath.Join(dir, "data"),
		"UPBUILD_INSTANCES":  "https://gitlab.gnome.org",
		"UPBUILD_PUBLIC_URL": "https://ci.example.org",
		"UPBUILD_LOG_FORMAT": "json",
	}
	ctx := context.Background()
	out, _, err := runUpbuild(t, ctx, env, "token", "issue", "--signing", "https://gitlab.gnome.org/GNOME/gtk")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"URL:           https://ci.example.org/api/webhooks/gitlab", "Secret token:  upb1_",
		"Signing token: whsec_", "Trigger:       Push events, Tag push events, Comments, Merge request events, Releases events",
		"https://gitlab.gnome.org/GNOME/gtk/-/hooks"} {
		if !strings.Contains(out, want) {
			t.Errorf("token issue output lacks %q:\n%s", want, out)
		}
	}
	var secret string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Secret token:"); ok {
			secret = strings.TrimSpace(v)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "data"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "data", "service.keys")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v; want 0600", fi, err)
	}

	out, _, err = runUpbuild(t, ctx, env, "token", "issue", "--group", "https://gitlab.gnome.org/GNOME")
	if err != nil || !strings.Contains(out, "group GNOME and every subgroup") {
		t.Fatalf("group token: %v\n%s", err, out)
	}
	list, _, err := runUpbuild(t, ctx, env, "token", "list")
	if err != nil {
		t.Fatal(err)
	}
	wantLinesInOrder(t, list, "ID INSTANCE SCOPE PATH SIGNED KEY ISSUED STATE PROJECT IDS")
	flat := strings.Join(normalizedLines(list), "\n")
	if !strings.Contains(flat, "project GNOME/gtk true") || !strings.Contains(flat, "group GNOME false") {
		t.Fatalf("token list:\n%s", list)
	}
	if strings.Contains(list, secret) || strings.Contains(list, "whsec_") {
		t.Fatalf("token list shows a secret:\n%s", list)
	}
	out, _, err = runUpbuild(t, ctx, env, "token", "revoke", "https://gitlab.gnome.org/GNOME/gtk")
	if err != nil || !strings.Contains(out, "revoked 1 token(s) for GNOME/gtk on https://gitlab.gnome.org") {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	list, _, _ = runUpbuild(t, ctx, env, "token", "list")
	if !strings.Contains(list, "revoked ") {
		t.Fatalf("list after revoke:\n%s", list)
	}
	// An instance that is not configured is refused with a clear error.
	if _, _, err := runUpbuild(t, ctx, env, "token", "issue", "https://gitlab.com/foo/bar"); err == nil ||
		!strings.Contains(err.Error(), "not served") {
		t.Fatalf("unconfigured instance: %v", err)
	}
	out, _, err = runUpbuild(t, ctx, env, "key", "rotate")
	if err != nil || !strings.Contains(out, "new primary key") {
		t.Fatalf("key rotate: %v\n%s", err, out)
	}
	keys, err := os.ReadFile(filepath.Join(dir, "data", "service.keys"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(keys), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("after rotation the key file holds %d keys, want the new primary and the previous one", n)
	}
	out, _, err = runUpbuild(t, ctx, env, "version")
	if err != nil || !strings.HasPrefix(out, "upbuild ") {
		t.Fatalf("version: %v %q", err, out)
	}
	out, _, err = runUpbuild(t, ctx, env, "migrate")
	if err != nil || !strings.Contains(out, "is up to date") {
		t.Fatalf("migrate: %v %q", err, out)
	}
}
