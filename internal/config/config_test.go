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
