// Package config loads upbuild's configuration: one optional YAML file plus
// UPBUILD_* environment overrides. Secrets never live in the YAML: the bot
// tokens and the admin token are read from environment variables or files
// that the YAML names.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Instance is one GitLab instance upbuild serves.
type Instance struct {
	// URL is the instance's base URL, e.g. https://gitlab.gnome.org.
	URL string `yaml:"url"`
	// BotTokenEnv names the environment variable that holds the bot's
	// personal access token.
	BotTokenEnv string `yaml:"bot_token_env"`
	// BotTokenFile names a file that holds the bot token (first line).
	BotTokenFile string `yaml:"bot_token_file"`
	// RequestsPerMinute is upbuild's own budget of API calls to the
	// instance; 0 means 1,500, below gitlab.com's 2,000 a minute per user.
	// Raise it for a self-managed instance with higher limits.
	RequestsPerMinute int `yaml:"requests_per_minute"`
	// OAuthClientID is the application ID of the OAuth2 application
	// registered on the instance for dashboard sign-in (scope read_user,
	// redirect URI <public_url>/signin/callback). Empty: no sign-in with
	// this instance.
	OAuthClientID string `yaml:"oauth_client_id"`
	// OAuthClientSecretEnv and OAuthClientSecretFile say where the
	// application's secret is; one is required with OAuthClientID.
	OAuthClientSecretEnv  string `yaml:"oauth_client_secret_env"`
	OAuthClientSecretFile string `yaml:"oauth_client_secret_file"`
}

// BuildEnvironment is an operator-supplied place to build RPMs for targets.
type BuildEnvironment struct {
	// Targets is a target name or a glob, e.g. fedora-rawhide-x86_64 or fedora-*.
	Targets string `yaml:"targets"`
	// RootFS is a directory tree used as the sandbox's system directories,
	// e.g. a Fedora root with rpm-build installed.
	RootFS string `yaml:"rootfs"`
	// Arch is the environment's architecture (x86_64, aarch64 ...).
	Arch string `yaml:"arch"`
}

// Config is the whole configuration.
type Config struct {
	Listen    string `yaml:"listen"`
	PublicURL string `yaml:"public_url"`
	DataDir   string `yaml:"data_dir"`
	// DatabaseURL is a SQLite path (or sqlite:// URL) or a postgres:// URL.
	// Empty means <data_dir>/upbuild.db.
	DatabaseURL string     `yaml:"database_url"`
	Instances   []Instance `yaml:"instances"`
	// MaxBodyBytes caps a webhook body. GitLab sends at most 25 MB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// LogFormat is auto (text on a terminal, JSON otherwise), text or json.
	LogFormat string `yaml:"log_format"`
	LogLevel  string `yaml:"log_level"`
	// AdminTokenEnv and AdminTokenFile say where the admin API token is.
	AdminTokenEnv  string `yaml:"admin_token_env"`
	AdminTokenFile string `yaml:"admin_token_file"`
	// KeyFile holds the service signing keys. Empty means <data_dir>/service.keys.
	KeyFile string `yaml:"key_file"`
	// TokenCacheTTL bounds how long a revoked token may still be honoured by
	// a running server (revocation from the CLI is a database write).
	TokenCacheTTL time.Duration `yaml:"token_cache_ttl"`
	// SignatureTolerance is how old or how far in the future a signed
	// delivery's webhook-timestamp may be.
	SignatureTolerance time.Duration `yaml:"signature_tolerance"`
	// SessionTTL is how long a dashboard sign-in lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// AccessLevelTTL is how long a person's GitLab access level is trusted
	// before GitLab is asked again: a demoted member keeps the old level
	// at most this long.
	AccessLevelTTL time.Duration `yaml:"access_level_ttl"`

	// AllowedNamespaces limits which projects upbuild works for: entries
	// are an instance URL plus a namespace prefix (covering subgroups),
	// e.g. https://gitlab.gnome.org/GNOME. Empty allows every project that
	// has a token.
	AllowedNamespaces []string `yaml:"allowed_namespaces"`
	// ApprovalPolicy says which merge requests wait for a Developer's
	// "/packit approve": off, forks (MRs from forks by people without
	// Developer access) or all (every MR by someone without Developer access).
	ApprovalPolicy string `yaml:"approval_policy"`
	// CommandPrefixes start comment commands.
	CommandPrefixes []string `yaml:"command_prefixes"`
	// Workers is how many jobs `serve` runs at once in-process; 0 leaves
	// execution to `upbuild worker` processes on other machines.
	Workers int `yaml:"workers"`
	// WorkDir holds the job directories the sandbox binds; it and its
	// parents must be searchable by others (the jobs' own UIDs open them),
	// so it lives outside the 0700 data directory. Empty: <tmp>/upbuild-work.
	WorkDir string `yaml:"work_dir"`
	// ArtifactRetention is how long artifacts and logs of finished jobs are kept.
	ArtifactRetention time.Duration `yaml:"artifact_retention"`
	// RepoCacheBytes caps the per-worker repository cache.
	RepoCacheBytes int64 `yaml:"repo_cache_bytes"`
	// BuildEnvironments match targets to root filesystems. The host itself
	// is always the environment "host-<arch>" (e.g. host-x86_64).
	BuildEnvironments []BuildEnvironment `yaml:"build_environments"`
	// ConcurrencyPerProject and ConcurrencyPerNamespace cap the jobs one
	// project, or one namespace, runs at once (0: no cap); a busy project's
	// queued jobs wait while other projects' jobs run.
	ConcurrencyPerProject   int `yaml:"concurrency_per_project"`
	ConcurrencyPerNamespace int `yaml:"concurrency_per_namespace"`
	// ActionNetwork turns the network on for Packit actions (the SRPM
	// step: downloads in actions, remote sources) where listed: an instance
	// URL, or an instance URL plus a namespace or project path. Off
	// everywhere else. Builds and tests never get network.
	ActionNetwork []string `yaml:"action_network"`
	// TargetAliasesFile replaces the built-in table of target aliases
	// (fedora-all, epel-all ...), since Bodhi cannot be asked at run time.
	TargetAliasesFile string `yaml:"target_aliases_file"`
}

// Defaults returns the embedded defaults: everything a newcomer needs to run
// the service with no file at all.
func Defaults() Config {
	return Config{
		Listen:                  "127.0.0.1:8080",
		PublicURL:               "http://127.0.0.1:8080",
		DataDir:                 "./upbuild-data",
		Instances:               []Instance{{URL: "https://gitlab.com", BotTokenEnv: "UPBUILD_GITLAB_COM_TOKEN"}},
		MaxBodyBytes:            25 << 20,
		LogFormat:               "auto",
		LogLevel:                "info",
		AdminTokenEnv:           "UPBUILD_ADMIN_TOKEN",
		TokenCacheTTL:           2 * time.Second,
		SignatureTolerance:      5 * time.Minute,
		SessionTTL:              7 * 24 * time.Hour,
		AccessLevelTTL:          time.Minute,
		ApprovalPolicy:          "forks",
		Workers:                 4,
		ConcurrencyPerProject:   2,
		ConcurrencyPerNamespace: 3,
		ArtifactRetention:       30 * 24 * time.Hour,
		RepoCacheBytes:          10 << 30,
		CommandPrefixes:         []string{"/packit"},
	}
}

// Load reads the YAML file at path (none when path is empty), applies the
// environment overrides from getenv and validates the result.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Defaults()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		// An empty file is io.EOF: all defaults.
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return Config{}, err
	}
	if err := cfg.finish(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func applyEnv(cfg *Config, getenv func(string) string) error {
	str := map[string]*string{
		"UPBUILD_LISTEN":           &cfg.Listen,
		"UPBUILD_PUBLIC_URL":       &cfg.PublicURL,
		"UPBUILD_DATA_DIR":         &cfg.DataDir,
		"UPBUILD_DATABASE_URL":     &cfg.DatabaseURL,
		"UPBUILD_LOG_FORMAT":       &cfg.LogFormat,
		"UPBUILD_LOG_LEVEL":        &cfg.LogLevel,
		"UPBUILD_ADMIN_TOKEN_FILE": &cfg.AdminTokenFile,
		"UPBUILD_KEY_FILE":         &cfg.KeyFile,
	}
	for name, dst := range str {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("UPBUILD_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("UPBUILD_WORKERS: want a number, got %q", v)
		}
		cfg.Workers = n
	}
	if v := getenv("UPBUILD_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("UPBUILD_MAX_BODY_BYTES: want a positive number of bytes, got %q", v)
		}
		cfg.MaxBodyBytes = n
	}
	// UPBUILD_INSTANCES replaces the instance list: comma-separated base
	// URLs; each bot token then comes from UPBUILD_BOT_TOKEN_<HOST>, with
	// the host upper-cased and non-alphanumerics turned into underscores,
	// and sign-in from UPBUILD_OAUTH_CLIENT_ID_<HOST> and
	// UPBUILD_OAUTH_CLIENT_SECRET_<HOST>.
	if v := getenv("UPBUILD_INSTANCES"); v != "" {
		cfg.Instances = nil
		for _, raw := range strings.Split(v, ",") {
			raw = strings.TrimSpace(raw)
			if raw == "" {
				continue
			}
			idEnv, secretEnv := OAuthEnvNames(raw)
			in := Instance{URL: raw, BotTokenEnv: BotTokenEnvName(raw), OAuthClientID: getenv(idEnv)}
			if in.OAuthClientID != "" {
				in.OAuthClientSecretEnv = secretEnv
			}
			cfg.Instances = append(cfg.Instances, in)
		}
	}
	return nil
}

// BotTokenEnvName is the default environment variable for an instance's bot token.
func BotTokenEnvName(instanceURL string) string {
	return hostEnvName("UPBUILD_BOT_TOKEN_", instanceURL)
}

// OAuthEnvNames are the environment variables that give an instance's
// OAuth application for sign-in when instances come from UPBUILD_INSTANCES.
func OAuthEnvNames(instanceURL string) (clientID, clientSecret string) {
	return hostEnvName("UPBUILD_OAUTH_CLIENT_ID_", instanceURL), hostEnvName("UPBUILD_OAUTH_CLIENT_SECRET_", instanceURL)
}

// hostEnvName is prefix plus the instance's host, upper-cased, with
// non-alphanumerics turned into underscores.
func hostEnvName(prefix, instanceURL string) string {
	host := instanceURL
	if u, err := url.Parse(instanceURL); err == nil && u.Host != "" {
		host = u.Host
	}
	var b strings.Builder
	b.WriteString(prefix)
	for _, r := range strings.ToUpper(host) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (c *Config) finish() error {
	if c.DataDir == "" {
		return errors.New("config: data_dir must not be empty")
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = filepath.Join(c.DataDir, "upbuild.db")
	}
	if c.WorkDir == "" {
		c.WorkDir = filepath.Join(os.TempDir(), "upbuild-work")
	}
	for i, env := range c.BuildEnvironments {
		if env.Targets == "" || env.RootFS == "" || env.Arch == "" {
			return fmt.Errorf("config: build_environments[%d] needs targets, rootfs and arch", i)
		}
	}
	if c.KeyFile == "" {
		c.KeyFile = filepath.Join(c.DataDir, "service.keys")
	}
	if c.MaxBodyBytes <= 0 {
		return errors.New("config: max_body_bytes must be positive")
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		return fmt.Errorf("config: log_format %q: want auto, text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.TokenCacheTTL < 0 || c.SignatureTolerance <= 0 {
		return errors.New("config: token_cache_ttl must be >= 0 and signature_tolerance > 0")
	}
	if c.SessionTTL <= 0 || c.AccessLevelTTL <= 0 {
		return errors.New("config: session_ttl and access_level_ttl must be positive")
	}
	switch c.ApprovalPolicy {
	case "off", "forks", "all":
	default:
		return fmt.Errorf("config: approval_policy %q: want off, forks or all", c.ApprovalPolicy)
	}
	if c.Workers < 0 {
		return errors.New("config: workers must be 0 or more")
	}
	if len(c.CommandPrefixes) == 0 {
		return errors.New("config: command_prefixes must not be empty")
	}
	for i, ns := range c.AllowedNamespaces {
		u, err := url.Parse(ns)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: allowed_namespaces[%d] %q must be an instance URL with a namespace path", i, ns)
		}
		c.AllowedNamespaces[i] = strings.TrimRight(ns, "/")
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("config: public_url %q must be an absolute http(s) URL", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	seen := map[string]bool{}
	for i, in := range c.Instances {
		if in.RequestsPerMinute < 0 {
			return fmt.Errorf("config: instances[%d].requests_per_minute must not be negative", i)
		}
		u, err := url.Parse(in.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: instances[%d].url %q must be an absolute http(s) URL", i, in.URL)
		}
		if in.OAuthClientID != "" && in.OAuthClientSecretEnv == "" && in.OAuthClientSecretFile == "" {
			return fmt.Errorf("config: instances[%d] has an oauth_client_id but no oauth_client_secret_env or oauth_client_secret_file", i)
		}
		c.Instances[i].URL = strings.TrimRight(in.URL, "/")
		if seen[c.Instances[i].URL] {
			return fmt.Errorf("config: instance %s is listed twice", in.URL)
		}
		seen[c.Instances[i].URL] = true
	}
	return nil
}

// AdminToken returns the admin API token, or "" when none is configured
// (the admin API then refuses every request).
func (c Config) AdminToken(getenv func(string) string) (string, error) {
	return secretFrom("admin token", c.AdminTokenEnv, c.AdminTokenFile, getenv)
}

// BotToken returns the bot token of an instance, or "" when none is set.
func (in Instance) BotToken(getenv func(string) string) (string, error) {
	return secretFrom("bot token for "+in.URL, in.BotTokenEnv, in.BotTokenFile, getenv)
}

// OAuthApp returns the instance's OAuth2 application for sign-in; ok is
// false when none is configured.
func (in Instance) OAuthApp(getenv func(string) string) (clientID, secret string, ok bool, err error) {
	if in.OAuthClientID == "" {
		return "", "", false, nil
	}
	secret, err = secretFrom("OAuth application secret for "+in.URL, in.OAuthClientSecretEnv, in.OAuthClientSecretFile, getenv)
	if err != nil {
		return "", "", false, err
	}
	if secret == "" {
		return "", "", false, fmt.Errorf("config: the OAuth application secret for %s is empty (oauth_client_secret_env %q, oauth_client_secret_file %q)",
			in.URL, in.OAuthClientSecretEnv, in.OAuthClientSecretFile)
	}
	return in.OAuthClientID, secret, true, nil
}

func secretFrom(what, envName, file string, getenv func(string) string) (string, error) {
	if envName != "" {
		if v := strings.TrimSpace(getenv(envName)); v != "" {
			return v, nil
		}
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read %s file: %w", what, err)
		}
		line, _, _ := strings.Cut(string(data), "\n")
		return strings.TrimSpace(line), nil
	}
	return "", nil
}
