// Package demo runs the GitLab simulator and upbuild side by side on this
// machine, connects the simulator's sample project to upbuild with a webhook,
// opens a merge request on it and narrates what upbuild shows on GitLab:
// each commit status as it is set and the bot's comments.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/config"
	upexec "upbuild.dev/upbuild/internal/exec"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/token"
)

// Options configure a demo run.
type Options struct {
	// SimAddr and Addr are where the simulator and upbuild listen;
	// empty means a free port on 127.0.0.1.
	SimAddr string
	Addr    string
	// DataDir holds upbuild's database and keys; empty means a temporary
	// directory removed at the end.
	DataDir string
	// Timeout bounds the wait for every status to be final; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Keep leaves both servers running after the summary until ctx ends.
	Keep bool
	// Out receives the narration. Required.
	Out io.Writer
	// Logger receives upbuild's own log; nil discards it.
	Logger *slog.Logger
}

// DefaultTimeout is how long the demo waits for the statuses by default.
const DefaultTimeout = 2 * time.Minute

// Errors a demo run can end with besides set-up failures.
var (
	// ErrTimedOut means some status of the merge request was not final in time.
	ErrTimedOut = errors.New("the merge request's statuses were not all final in time")
	// ErrInterrupted means ctx ended before the statuses were final.
	ErrInterrupted = errors.New("interrupted before the merge request's statuses were final")
)

// demoBranch is the branch the demo pushes and opens its merge request from.
const demoBranch = "demo-change"

// nameWidth is the column width of status names, enough for
// "rpm-build:fedora-rawhide-x86_64".
const nameWidth = 32

// Run runs the demo until every status of the merge request's head commit
// is final (then, with Keep, until ctx ends), and stops both servers.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Out == nil {
		return errors.New("demo: no output writer")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := exec.LookPath("git"); err != nil {
		return errors.New("demo: the GitLab simulator needs git; install it (apt-get install git) and try again")
	}
	tmp, err := os.MkdirTemp("", "upbuild-demo-")
	if err != nil {
		return fmt.Errorf("demo: temporary directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("demo: remove %s: %w", tmp, rerr))
		}
	}()
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = filepath.Join(tmp, "data")
	}
	d := &demo{opts: opts, out: opts.Out, start: time.Now()}
	stopSim, err := d.startSimulator(ctx, filepath.Join(tmp, "repos"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopSim()) }()
	stopUpbuild, err := d.startUpbuild(ctx, dataDir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopUpbuild()) }()
	return d.run(ctx)
}

// demo is one run's state.
type demo struct {
	opts  Options
	out   io.Writer
	start time.Time

	sim        *gitlabsim.Simulator
	simURL     string
	seed       gitlabsim.Seeded
	watch      *watcher
	srv        *server.Server
	upURL      string
	adminToken string
	dataDir    string
	serveErr   chan error
	mr         gitlabsim.MergeRequest
	// shownState is the last state shown per status name; a name's
	// first appearance also links its job page.
	shownState map[string]string
	// shown counts the watcher's events already printed.
	shown    int
	comments int
}

// startSimulator serves the simulator behind the watcher and seeds it.
func (d *demo) startSimulator(ctx context.Context, reposDir string) (stop func() error, err error) {
	addr := d.opts.SimAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: simulator: listen on %s: %w", addr, err)
	}
	d.simURL = "http://" + ln.Addr().String()
	d.sim = gitlabsim.New(gitlabsim.Options{Dir: reposDir, BaseURL: d.simURL})
	d.watch = newWatcher(d.sim)
	hs := &http.Server{Handler: d.watch, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	stop = func() error {
		// upbuild has stopped by now, so no request in flight matters.
		// Close rather than Shutdown: Shutdown waits up to 5 s for a
		// connection a client opened but never used.
		err := hs.Close()
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if err != nil {
			return fmt.Errorf("demo: stop the simulator: %w", err)
		}
		return nil
	}
	if d.seed, err = gitlabsim.Seed(ctx, d.sim); err != nil {
		return nil, errors.Join(fmt.Errorf("demo: %w", err), stop())
	}
	// Besides Fedora (which this machine has no build environment for),
	// the sample project also builds on this machine itself, so the demo
	// shows a real SRPM and RPM build in the sandbox.
	if _, err := d.sim.CommitFiles(ctx, d.seed.Project.ID, "main", "Build on this machine too", []gitlabsim.FileChange{
		{Path: ".packit.yaml", Content: demoPackit},
		{Path: "hello.spec", Content: gitlabsim.HelloArchiveSpec("1.0")},
	}, d.seed.Maintainer.Username); err != nil {
		return nil, errors.Join(fmt.Errorf("demo: %w", err), stop())
	}
	return stop, nil
}

// startUpbuild configures upbuild for the simulator, connects the sample
// project with a fresh webhook token and starts serving.
func (d *demo) startUpbuild(ctx context.Context, dataDir string) (stop func() error, err error) {
	addr := d.opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: upbuild: listen on %s: %w", addr, err)
	}
	closeLn := func() error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("demo: close upbuild's listener: %w", err)
		}
		return nil
	}
	d.upURL = "http://" + ln.Addr().String()
	d.dataDir = dataDir
	if d.adminToken, err = newAdminToken(); err != nil {
		return nil, errors.Join(err, closeLn())
	}
	// The demo's configuration lives only in this environment: none of
	// the caller's UPBUILD_* variables or config file applies, so the demo
	// never touches a real database or instance.
	env := map[string]string{
		"UPBUILD_LISTEN":                 ln.Addr().String(),
		"UPBUILD_PUBLIC_URL":             d.upURL,
		"UPBUILD_DATA_DIR":               dataDir,
		"UPBUILD_INSTANCES":              d.simURL,
		config.BotTokenEnvName(d.simURL): d.seed.Bot.Token,
		config.Defaults().AdminTokenEnv:  d.adminToken,
	}
	// The simulator is the OAuth provider too, so the dashboard's
	// "Sign in" works in the demo (as any simulator user, no password).
	clientID, secret := d.sim.AddOAuthApp(d.upURL+"/signin/callback", "read_user")
	idEnv, secretEnv := config.OAuthEnvNames(d.simURL)
	env[idEnv], env[secretEnv] = clientID, secret
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load("", getenv)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("demo: %w", err), closeLn())
	}
	d.srv, err = server.New(ctx, cfg, d.opts.Logger, getenv)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("demo: %w", err), closeLn())
	}
	if err := d.connectProject(ctx, cfg); err != nil {
		return nil, errors.Join(err, d.srv.Close(), closeLn())
	}
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.serveErr = make(chan error, 1)
	go func() { d.serveErr <- d.srv.Serve(serveCtx, ln) }()
	return func() error {
		cancel()
		if err := <-d.serveErr; err != nil {
			return fmt.Errorf("demo: upbuild: %w", err)
		}
		return nil
	}, nil
}

// connectProject issues a webhook token for the sample project and adds
// the webhook in the simulator, as a maintainer would in GitLab.
func (d *demo) connectProject(ctx context.Context, cfg config.Config) error {
	ring, err := server.LoadKeyring(cfg, d.opts.Logger)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	var instances []string
	for _, u := range server.InstanceURLs(cfg) {
		n, err := token.NormalizeInstanceURL(u)
		if err != nil {
			return fmt.Errorf("demo: instance %s: %w", u, err)
		}
		instances = append(instances, n)
	}
	m := &hooktoken.Manager{Store: d.srv.Store(), Keyring: ring, PublicURL: cfg.PublicURL, Instances: instances}
	scope, err := m.Scope(d.seed.Project.WebURL, false)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	issued, err := m.Issue(ctx, scope, false, "demo")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := d.sim.AddHook(d.seed.Project.ID, gitlabsim.HookSpec{URL: issued.WebhookURL, Token: issued.Token,
		TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true}); err != nil {
		return fmt.Errorf("demo: add the webhook: %w", err)
	}
	return nil
}

func newAdminToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("demo: admin token: %w", err)
	}
	return "demo-admin-" + hex.EncodeToString(b), nil
}

// run opens the merge request, narrates until its statuses are final and
// prints the summary.
func (d *demo) run(ctx context.Context) error {
	p := d.seed.Project
	api := fmt.Sprintf("%s/api/v4/projects/%d", d.simURL, p.ID)
	fmt.Fprintf(d.out, "upbuild demo: a GitLab simulator and upbuild, wired together on this machine.\n\n")
	fmt.Fprintf(d.out, "GitLab simulator  %s\n", d.simURL)
	fmt.Fprintf(d.out, "  project         %s  %s\n", p.PathWithNamespace, api)
	fmt.Fprintf(d.out, "  clone           git clone %s\n", p.HTTPURLToRepo)
	fmt.Fprintf(d.out, "upbuild           %s  (SQLite in %s)\n", d.upURL, d.dataDir)
	// The admin token is printed on purpose: it was made for this run of
	// a local demo, and the person who started it needs it for the API.
	fmt.Fprintf(d.out, "  deliveries      curl -H 'Authorization: Bearer %s' %s/api/v1/deliveries\n", d.adminToken, d.upURL)
	fmt.Fprintf(d.out, "  webhook         on %s, with a project token issued just now\n", p.PathWithNamespace)
	fmt.Fprintf(d.out, "  sign in         %s/ → \"Sign in with …\" as @%s (the project's Maintainer; the simulator asks no password)\n\n",
		d.upURL, d.seed.Maintainer.Username)

	author := d.seed.Maintainer.Username
	sha, err := d.sim.PushCommits(ctx, p.ID, demoBranch, author, gitlabsim.CommitSpec{
		Message: "Say hello louder",
		Changes: []gitlabsim.FileChange{{Path: "hello.sh", Content: "#!/bin/sh\necho HELLO\n"}},
	})
	if err != nil {
		return fmt.Errorf("demo: push %s: %w", demoBranch, err)
	}
	d.start = time.Now()
	d.mr, err = d.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{ProjectID: p.ID, SourceBranch: demoBranch,
		TargetBranch: p.DefaultBranch, Title: "Say hello louder", Author: author})
	if err != nil {
		return fmt.Errorf("demo: open the merge request: %w", err)
	}
	fmt.Fprintf(d.out, "%s pushed branch %s (%s) and opened merge request !%d %q\n", author, demoBranch, short(sha), d.mr.IID, d.mr.Title)
	fmt.Fprintf(d.out, "  merge request   %s/merge_requests/%d\n", api, d.mr.IID)
	fmt.Fprintf(d.out, "  statuses        %s/repository/commits/%s/statuses\n\n", api, d.mr.HeadSHA)
	fmt.Fprintf(d.out, "What upbuild sets on GitLab, as it happens (waiting at most %s):\n", d.opts.Timeout)

	waitErr := d.follow(ctx)
	if waitErr == nil || errors.Is(waitErr, ErrTimedOut) || errors.Is(waitErr, ErrInterrupted) {
		d.summary()
	}
	if waitErr != nil || !d.opts.Keep {
		return waitErr
	}
	fmt.Fprintf(d.out, "\nBoth servers keep running (--keep); press Ctrl-C to stop.\n")
	err = d.narrate(ctx, func() bool { return false })
	if errors.Is(err, ErrInterrupted) {
		fmt.Fprintf(d.out, "Stopping.\n")
		return nil // Ctrl-C is how --keep ends
	}
	return err
}

// follow narrates until every status of the merge request's head is final.
func (d *demo) follow(ctx context.Context) error {
	d.shownState = map[string]string{}
	deadline := time.Now().Add(d.opts.Timeout)
	err := d.narrate(ctx, func() bool {
		return d.allFinal() || time.Now().After(deadline)
	})
	if err != nil {
		return err
	}
	// A comment the reporter owes once the statuses are final is sent now
	// rather than after the demo stopped.
	flushCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.srv.Reporter().Flush(flushCtx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.showNew()
	if !d.allFinal() {
		return fmt.Errorf("%w (%s)", ErrTimedOut, d.opts.Timeout)
	}
	return nil
}

// narrate prints events as they come until done says so, ctx ends or
// upbuild stops.
func (d *demo) narrate(ctx context.Context, done func() bool) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		d.showNew()
		if done() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ErrInterrupted
		case err := <-d.serveErr:
			d.serveErr <- err // for the stop function
			return fmt.Errorf("demo: upbuild stopped early: %w", err)
		case <-d.watch.changed:
		case <-tick.C:
		}
	}
}

// allFinal says whether the merge request's head has statuses and every
// one is final, and the narration has shown each in that state (the
// simulator's state changes a moment before the watcher records the write).
func (d *demo) allFinal() bool {
	statuses := d.sim.Statuses(d.seed.Project.ID, d.mr.HeadSHA)
	for _, st := range statuses {
		if !final(st.Status) || d.shownState[st.Name] != st.Status {
			return false
		}
	}
	return len(statuses) > 0
}

func final(state string) bool {
	switch state {
	case "success", "failed", "canceled", "skipped":
		return true
	}
	return false
}

// showNew prints the events not shown yet.
func (d *demo) showNew() {
	events := d.watch.since(d.shown)
	d.shown += len(events)
	for _, ev := range events {
		at := fmt.Sprintf("[%6.2fs]", ev.at.Sub(d.start).Seconds())
		pad := strings.Repeat(" ", len(at))
		switch {
		case ev.code >= 300 && ev.kind == statusSet:
			fmt.Fprintf(d.out, "%s GitLab refused a status update (HTTP %d): %s\n", at, ev.code, ev.refusal)
		case ev.code >= 300:
			fmt.Fprintf(d.out, "%s GitLab refused a comment (HTTP %d): %s\n", at, ev.code, ev.refusal)
		case ev.kind == statusSet:
			st := ev.status
			fmt.Fprintf(d.out, "%s status  %-*s %-8s %s\n", at, nameWidth, st.Name, st.Status, st.Description)
			if _, seen := d.shownState[st.Name]; !seen && st.TargetURL != "" {
				fmt.Fprintf(d.out, "%s         %-*s job page: %s\n", pad, nameWidth, "", st.TargetURL)
			}
			d.shownState[st.Name] = st.Status
		default:
			what := "new"
			if ev.kind == commentEdited {
				what = "edited"
			} else {
				d.comments++
			}
			fmt.Fprintf(d.out, "%s comment by @%s on !%d (%s):\n", at, ev.note.Author.Username, ev.note.NoteableIID, what)
			for _, line := range strings.Split(strings.TrimRight(ev.note.Body, "\n"), "\n") {
				fmt.Fprintf(d.out, "%s   | %s\n", pad, line)
			}
		}
	}
}

// summary prints where the merge request's statuses ended up.
func (d *demo) summary() {
	statuses := d.sim.Statuses(d.seed.Project.ID, d.mr.HeadSHA)
	fmt.Fprintf(d.out, "\nSummary after %.1fs: merge request !%d, head %s\n", time.Since(d.start).Seconds(), d.mr.IID, short(d.mr.HeadSHA))
	counts := map[string]int{}
	for _, st := range statuses {
		counts[st.Status]++
		fmt.Fprintf(d.out, "  %-*s %-8s %s\n", nameWidth, st.Name, st.Status, st.TargetURL)
	}
	var states []string
	for s, n := range counts {
		states = append(states, fmt.Sprintf("%d %s", n, s))
	}
	sort.Strings(states)
	sent, accepted := 0, 0
	for _, dl := range d.sim.Deliveries() {
		if dl.Skipped {
			continue
		}
		sent++
		if dl.Succeeded() {
			accepted++
		}
	}
	verdict := "all final"
	if !d.allFinal() {
		verdict = "NOT all final"
	}
	fmt.Fprintf(d.out, "  %d commit statuses, %s (%s); %d comments by the bot; webhooks: %d sent, %d accepted by upbuild\n",
		len(statuses), verdict, strings.Join(states, ", "), d.comments, sent, accepted)
	if len(statuses) > 0 && counts["skipped"] == len(statuses) {
		fmt.Fprintf(d.out, "  Nothing was built or tested: every job was skipped, and its description above says why.\n")
	}
	if !d.opts.Keep {
		fmt.Fprintf(d.out, "  Run with --keep to leave both servers up and look around at the URLs above.\n")
	}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// demoPackit builds on Fedora (skipped here: no build environment) and on
// this machine's own target.
var demoPackit = `specfile_path: hello.spec
upstream_package_name: hello
downstream_package_name: hello
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-all, host-` + upexec.HostArch() + `]
`
