package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Service is an upbuild process started from its binary.
type Service struct {
	Binary string
	Env    []string // UPBUILD_* settings, added to the current environment
	Listen string   // host:port
	Log    string   // file that receives the process's output
	cmd    *exec.Cmd
}

// FreeAddr returns a free loopback address.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *Service) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.Binary, args...)
	cmd.Env = append(append(os.Environ(), s.Env...), "UPBUILD_LISTEN="+s.Listen, "UPBUILD_LOG_FORMAT=json")
	return cmd
}

// Start runs `upbuild serve` and waits until /readyz answers.
func (s *Service) Start(ctx context.Context) error {
	cmd := s.command(context.WithoutCancel(ctx), "serve")
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("service log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start upbuild: %w", err)
	}
	logf.Close()
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			s.cmd = nil
			return fmt.Errorf("upbuild exited during start (%v); see %s", err, s.Log)
		default:
		}
		resp, err := http.Get("http://" + s.Listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// The goroutine above keeps waiting on the process, so it
				// is reaped as soon as it exits.
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("upbuild did not become ready within 60 s")
}

// Pid is the running process's ID.
func (s *Service) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill ends the process with SIGKILL, as a crash would.
func (s *Service) Kill() error {
	if s.cmd == nil {
		return nil
	}
	err := s.cmd.Process.Kill()
	s.waitGone()
	s.cmd = nil
	return err
}

// Stop asks the process to shut down gracefully (SIGTERM).
func (s *Service) Stop() error {
	if s.cmd == nil {
		return nil
	}
	err := s.cmd.Process.Signal(os.Interrupt)
	s.waitGone()
	s.cmd = nil
	return err
}

// waitGone waits until the process has exited and its port is free.
func (s *Service) waitGone() {
	pid := s.cmd.Process.Pid
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		// Signal 0 fails once the process is gone (it is reaped by the
		// goroutine that waits on it).
		if err := s.cmd.Process.Signal(syscallZero()); err != nil {
			break
		}
		if _, err := os.Stat(filepath.Join("/proc", fmt.Sprint(pid))); err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// IssueToken runs `upbuild token issue` and returns the secret token it printed.
func (s *Service) IssueToken(ctx context.Context, projectURL string) (string, error) {
	out, err := s.command(ctx, "token", "issue", projectURL).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("upbuild token issue: %w: %s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Secret token:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("upbuild token issue printed no token: %s", out)
}

// StandardMix builds the benchmark's fixed mix from GitLab's real payloads
// in fixtureDir: two merge request events, two pushes and one MR comment in
// every five deliveries. tokenFor returns a token for a project URL.
func StandardMix(fixtureDir string, tokenFor func(projectURL string) (string, error)) ([]Template, error) {
	load := func(name string) (map[string]any, error) {
		b, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(b, &m)
	}
	mr, err := load("merge_request.json")
	if err != nil {
		return nil, err
	}
	// GitLab's sample names a different target project than the hook's;
	// a real delivery names the hook's own project.
	oa := mr["object_attributes"].(map[string]any)
	oa["source_project_id"], oa["target_project_id"] = 1, 1
	for _, side := range []string{"source", "target"} {
		p := oa[side].(map[string]any)
		p["path_with_namespace"], p["web_url"] = "gitlabhq/gitlab-test", "http://example.com/gitlabhq/gitlab-test"
	}
	push, err := load("push.json")
	if err != nil {
		return nil, err
	}
	note, err := load("note_merge_request.json")
	if err != nil {
		return nil, err
	}
	var mix []Template
	for _, x := range []struct {
		event string
		body  map[string]any
		n     int
	}{{"Merge Request Hook", mr, 2}, {"Push Hook", push, 2}, {"Note Hook", note, 1}} {
		b, err := json.Marshal(x.body)
		if err != nil {
			return nil, err
		}
		tok, err := tokenFor(x.body["project"].(map[string]any)["web_url"].(string))
		if err != nil {
			return nil, err
		}
		for range x.n {
			mix = append(mix, Template{Event: x.event, Token: tok, Body: b})
		}
	}
	return mix, nil
}
