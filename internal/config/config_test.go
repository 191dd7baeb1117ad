package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsNeedNoFile(t *testing.T) {
	cfg, err := config.Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "./upbuild-data" || cfg.DatabaseURL != filepath.Join("upbuild-data", "upbuild.db") ||
		cfg.KeyFile != filepath.Join("upbuild-data", "service.keys") || cfg.Listen != "127.0.0.1:8080" {
		t.Fatalf("defaults = %+v", cfg)
	}
	if len(cfg.Instances) != 1 || cfg.Instances[0].URL != "https://gitlab.com" {
		t.Fatalf("default instances = %+v", cfg.Instances)
	}
}

func TestExampleFileLoadsToTheDefaults(t *testing.T) {
	cfg, err := config.Load("../../upbuild.example.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	def, _ := config.Load("", env(nil))
	if cfg.Listen != def.Listen || cfg.MaxBodyBytes != def.MaxBodyBytes || cfg.TokenCacheTTL != def.TokenCacheTTL ||
		cfg.SignatureTolerance != def.SignatureTolerance || len(cfg.Instances) != 1 {
		t.Fatalf("example file = %+v, defaults = %+v", cfg, def)
	}
}

func TestFileAndEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "upbuild.yaml")
	err := os.WriteFile(path, []byte(`
listen: 0.0.0.0:9000
public_url: https://ci.example.org/
data_dir: /var/lib/upbuild
instances:
  - url: https://gitlab.gnome.org/
    bot_token_file: /etc/upbuild/gnome.token
token_cache_ttl: 5s
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, env(map[string]string{
		"UPBUILD_DATABASE_URL": "postgres://u@db/upbuild", "UPBUILD_LOG_FORMAT": "json", "UPBUILD_MAX_BODY_BYTES": "1000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9000" || cfg.PublicURL != "https://ci.example.org" || cfg.DatabaseURL != "postgres://u@db/upbuild" ||
		cfg.LogFormat != "json" || cfg.MaxBodyBytes != 1000 || cfg.TokenCacheTTL != 5*time.Second ||
		cfg.Instances[0].URL != "https://gitlab.gnome.org" || cfg.KeyFile != "/var/lib/upbuild/service.keys" {
		t.Fatalf("cfg = %+v", cfg)
	}
	cfg, err = config.Load(path, env(map[string]string{"UPBUILD_INSTANCES": "https://gitlab.freedesktop.org, https://salsa.debian.org"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Instances) != 2 || cfg.Instances[1].BotTokenEnv != "UPBUILD_BOT_TOKEN_SALSA_DEBIAN_ORG" {
		t.Fatalf("instances from env = %+v", cfg.Instances)
	}
}

func TestSecretsComeFromEnvOrFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("glpat-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := config.Instance{URL: "https://gitlab.com", BotTokenEnv: "BOT", BotTokenFile: file}
	if got, _ := in.BotToken(env(map[string]string{"BOT": "glpat-from-env"})); got != "glpat-from-env" {
		t.Fatalf("env token = %q", got)
	}
	if got, _ := in.BotToken(env(nil)); got != "glpat-from-file" {
		t.Fatalf("file token = %q", got)
	}
}

func TestBadConfigIsRefusedClearly(t *testing.T) {
	cases := map[string]string{
		"unknown key":        "listn: 1\n",
		"bad log format":     "log_format: xml\n",
		"relative instance":  "instances: [{url: gitlab.com}]\n",
		"duplicate instance": "instances: [{url: https://a.org}, {url: https://a.org/}]\n",
		"bad public url":     "public_url: ci.example.org\n",
		"secret in yaml":     "instances: [{url: https://a.org, bot_token: glpat-xyz}]\n",
	}
	for name, body := range cases {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path, env(nil))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "glpat-xyz") {
			t.Errorf("%s: error echoes a secret: %v", name, err)
		}
	}
	if _, err := config.Load("", env(map[string]string{"UPBUILD_MAX_BODY_BYTES": "lots"})); err == nil {
		t.Error("a non-numeric UPBUILD_MAX_BODY_BYTES was accepted")
	}
}

func TestOAuthApplicationPerInstance(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "gnome.oauth")
	if err := os.WriteFile(secretFile, []byte("gloas-file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "upbuild.yaml")
	err := os.WriteFile(path, []byte(`
public_url: https://ci.example.org
session_ttl: 12h
access_level_ttl: 30s
instances:
  - url: https://gitlab.gnome.org
    oauth_client_id: app-gnome
    oauth_client_secret_file: `+secretFile+`
  - url: https://gitlab.com
    oauth_client_id: app-com
    oauth_client_secret_env: COM_OAUTH_SECRET
  - url: https://gitlab.example
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"COM_OAUTH_SECRET": "gloas-env-secret"})
	cfg, err := config.Load(path, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SessionTTL != 12*time.Hour || cfg.AccessLevelTTL != 30*time.Second {
		t.Fatalf("session_ttl, access_level_ttl = %s, %s", cfg.SessionTTL, cfg.AccessLevelTTL)
	}
	for i, want := range []struct {
		id, secret string
		ok         bool
	}{{"app-gnome", "gloas-file-secret", true}, {"app-com", "gloas-env-secret", true}, {"", "", false}} {
		id, secret, ok, err := cfg.Instances[i].OAuthApp(getenv)
		if err != nil || id != want.id || secret != want.secret || ok != want.ok {
			t.Errorf("instance %s: OAuthApp = %q, %q, %v, %v; want %q, %q, %v", cfg.Instances[i].URL, id, secret, ok, err, want.id, want.secret, want.ok)
		}
	}
	// A configured application whose secret is missing is an error, and the
	// message does not quote any secret.
	if _, _, _, err := cfg.Instances[1].OAuthApp(env(nil)); err == nil || !strings.Contains(err.Error(), "COM_OAUTH_SECRET") {
		t.Fatalf("missing secret: %v, want an error naming the variable", err)
	}

	// An application ID without any place for the secret is refused at load.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("instances:\n  - url: https://gitlab.com\n    oauth_client_id: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(bad, env(nil)); err == nil || !strings.Contains(err.Error(), "oauth_client_secret") {
		t.Fatalf("oauth_client_id alone: %v, want an error", err)
	}

	// UPBUILD_INSTANCES takes sign-in from per-host variables.
	cfg, err = config.Load("", env(map[string]string{"UPBUILD_INSTANCES": "https://gitlab.gnome.org",
		"UPBUILD_OAUTH_CLIENT_ID_GITLAB_GNOME_ORG": "app-env", "UPBUILD_OAUTH_CLIENT_SECRET_GITLAB_GNOME_ORG": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	id, secret, ok, err := cfg.Instances[0].OAuthApp(env(map[string]string{"UPBUILD_OAUTH_CLIENT_SECRET_GITLAB_GNOME_ORG": "s"}))
	if err != nil || id != "app-env" || secret != "s" || !ok {
		t.Fatalf("instance from UPBUILD_INSTANCES: OAuthApp = %q, %q, %v, %v", id, secret, ok, err)
	}
}
