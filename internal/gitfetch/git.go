package gitfetch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// gitConfig is one configuration entry handed to git through the
// GIT_CONFIG_COUNT/GIT_CONFIG_KEY_n/GIT_CONFIG_VALUE_n environment, which
// git reads like `-c key=value` but which, unlike argv, ps does not show.
type gitConfig struct{ key, value string }

// transport says which git transports a command may use.
type transport int

const (
	// noTransport is for commands that must only read local objects: in a
	// partial clone, a missing object would otherwise be fetched lazily.
	noTransport transport = iota
	// forgeTransport allows http and https, for fetches from the forge.
	forgeTransport
)

// baseConfig applies to every git command upbuild runs: no hooks, no
// background maintenance that could outlive the repository lock, no
// templates (sample hooks) in new repositories, and stalled transfers
// abort instead of hanging.
func baseConfig() []gitConfig {
	return []gitConfig{
		{"core.hooksPath", "/dev/null"},
		{"core.fsmonitor", "false"},
		{"gc.auto", "0"},
		{"maintenance.auto", "false"},
		{"init.templateDir", ""},
		{"advice.detachedHead", "false"},
		{"protocol.allow", "never"},
	}
}

// transportConfig returns the protocol allow-list for t.
func transportConfig(t transport) []gitConfig {
	switch t {
	case forgeTransport:
		return []gitConfig{
			{"protocol.http.allow", "always"},
			{"protocol.https.allow", "always"},
			// A redirect could send the Authorization header to another
			// host; GitLab serves git at the project's own URL.
			{"http.followRedirects", "false"},
			{"http.lowSpeedLimit", "1024"},
			{"http.lowSpeedTime", "60"},
		}
	default:
		return nil
	}
}

// credential is the bot token for one fetch, and the forms of it that
// must never leave the git process.
type credential struct {
	repoURL string
	token   string
}

// header is the Authorization header git sends with every request to the
// repository URL: Basic auth with the token as password, as GitLab expects.
func (c credential) header() string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("oauth2:"+c.token))
}

// config scopes the header to the repository's URL, so no other URL a
// command might contact receives it.
func (c credential) config() []gitConfig {
	if c.token == "" {
		return nil
	}
	return []gitConfig{{"http." + c.repoURL + ".extraHeader", c.header()}}
}

// redact replaces every form of the token that could appear in git's
// output. git does not print the header, but an error message is no place
// to find out otherwise.
func (c credential) redact(s string) string {
	if c.token == "" {
		return s
	}
	for _, secret := range []string{
		base64.StdEncoding.EncodeToString([]byte("oauth2:" + c.token)),
		base64.StdEncoding.EncodeToString([]byte(c.token)),
		c.token,
	} {
		s = strings.ReplaceAll(s, secret, "[REDACTED]")
	}
	return s
}

// gitCmd is one git invocation.
type gitCmd struct {
	dir       string
	transport transport
	cred      credential
	stdin     io.Reader
	config    []gitConfig
	args      []string
}

// gitError is a git command that failed.
type gitError struct {
	args     []string
	exitCode int
	stderr   string
	err      error
}

func (e *gitError) Error() string {
	msg := fmt.Sprintf("git %s: %v", strings.Join(e.args, " "), e.err)
	if e.stderr != "" {
		msg += ": " + e.stderr
	}
	return msg
}

func (e *gitError) Unwrap() error { return e.err }

// stderrTailBytes bounds how much of git's stderr an error carries.
const stderrTailBytes = 2000

// commandWaitDelay is how long git's pipes may stay open after it was
// killed (a helper it started may still hold them).
const commandWaitDelay = 5 * time.Second

// run runs git with a minimal environment: an empty HOME, no system or
// global configuration, no terminal prompts, and the configuration of c.
// The token reaches git only through this process's environment. It
// returns git's standard output, also when git fails.
func (f *Fetcher) run(ctx context.Context, c gitCmd) (string, error) {
	if f.commandTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.commandTimeout)
		defer cancel()
	}
	cmd := f.command(ctx, c)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	gerr := &gitError{args: c.args, exitCode: -1, stderr: c.cred.redact(tail(stderr.String())), err: err}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		gerr.exitCode = exit.ExitCode()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		gerr.err = ctxErr
	}
	// Some commands say what went wrong on stdout (merge-tree lists the
	// conflicting files there).
	return stdout.String(), gerr
}

// command is c as an exec.Cmd: the environment, the configuration, and a
// cancel that stops git and every helper it started.
func (f *Fetcher) command(ctx context.Context, c gitCmd) *exec.Cmd {
	cmd := exec.CommandContext(ctx, f.gitPath, c.args...)
	cmd.Dir = c.dir
	cmd.Stdin = c.stdin
	config := append(append(append(baseConfig(), transportConfig(c.transport)...), c.config...), c.cred.config()...)
	cmd.Env = append(f.baseEnv(), "GIT_CONFIG_COUNT="+strconv.Itoa(len(config)))
	for i, kv := range config {
		n := strconv.Itoa(i)
		cmd.Env = append(cmd.Env, "GIT_CONFIG_KEY_"+n+"="+kv.key, "GIT_CONFIG_VALUE_"+n+"="+kv.value)
	}
	// git starts helpers (git-remote-http, upload-pack); stop them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = commandWaitDelay
	return cmd
}

// stream runs git and hands each NUL-terminated record of its standard
// output to each, as git writes them; when each returns an error, git is
// stopped and that error returned. It is for output too large to keep.
func (f *Fetcher) stream(ctx context.Context, c gitCmd, each func(record string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.commandTimeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, f.commandTimeout)
		defer stop()
	}
	cmd := f.command(ctx, c)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("git %s: %w", c.args[0], err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git %s: %w", c.args[0], err)
	}
	r := bufio.NewReaderSize(out, 64<<10)
	var eachErr error
	for {
		record, err := r.ReadString(0)
		if err != nil {
			break // EOF, or git stopped
		}
		if eachErr = each(strings.TrimSuffix(record, "\x00")); eachErr != nil {
			cancel()
			break
		}
	}
	waitErr := cmd.Wait()
	if eachErr != nil {
		return eachErr
	}
	if waitErr != nil {
		return &gitError{args: c.args, exitCode: cmd.ProcessState.ExitCode(), stderr: c.cred.redact(tail(stderr.String())), err: waitErr}
	}
	return nil
}

// baseEnv is the environment of every git command; nothing is inherited
// from the worker's own environment but PATH.
func (f *Fetcher) baseEnv() []string {
	return []string{
		"PATH=" + f.path,
		"HOME=" + f.homeDir,
		"XDG_CONFIG_HOME=" + f.homeDir,
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_NO_REPLACE_OBJECTS=1",
	}
}

// tail keeps the end of git's stderr, where the reason for a failure is.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > stderrTailBytes {
		s = "..." + s[len(s)-stderrTailBytes:]
	}
	return s
}

// exitCode is the exit status of a failed git command, or -1.
func exitCode(err error) int {
	var gerr *gitError
	if errors.As(err, &gerr) {
		return gerr.exitCode
	}
	return -1
}

// accessDenied tells whether git's failure means the forge refused the
// credentials or does not show the project to them.
func accessDenied(err error) bool {
	var gerr *gitError
	if !errors.As(err, &gerr) {
		return false
	}
	for _, sign := range []string{"Authentication failed", "could not read Username", "terminal prompts disabled", "returned error: 401", "returned error: 403", "returned error: 404"} {
		if strings.Contains(gerr.stderr, sign) {
			return true
		}
	}
	return false
}
