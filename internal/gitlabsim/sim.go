// Package gitlabsim is an in-memory GitLab that speaks the subset of the
// /api/v4 REST API, git-over-HTTP and project webhooks that upbuild uses, with
// GitLab's own semantics: commit-status transition rules and error texts,
// external pipelines, visibility and inherited membership, note rate limits,
// webhook headers, signatures and auto-disabling. Tests and the demo drive it
// through its Go API (which fires webhooks the way GitLab does) and talk to it
// over HTTP with the real GitLab client.
//
// Choices made where GitLab's behaviour depends on context:
//   - Authentication: a PRIVATE-TOKEN or "Authorization: Bearer" header. A
//     wrong token is 401; no token is an anonymous caller who may read public
//     projects, as on GitLab; writes and GET /user need a user (401).
//   - Hidden projects are "404 Project Not Found". Code (files, tree, git
//     clone) of a private project needs Reporter; merge requests of a private
//     project are hidden from Guests.
//   - Commit statuses: see statuses.go for the pipeline and job rules.
//   - Throttled API calls (APIRequestsPerMinute) answer 429 "Retry later"
//     with Retry-After and RateLimit-* headers, which appear only on
//     throttled answers; the note limit answers GitLab's application-limit
//     body with Retry-After and RateLimit-Reset only.
//   - Webhooks go out one queue per hook, in order. A delivery to a disabled
//     hook is recorded as Skipped and not sent. ResendDelivery ignores
//     disabling, like the "Resend Request" button.
//   - FaultDown closes the connection without answering (the client sees a
//     connection reset/EOF), which is what a restarting GitLab looks like
//     behind a proxy.
//   - Git over HTTP is read-only: pushes go through PushCommits so that the
//     right webhooks fire.
package gitlabsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Errors returned by the Go API.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid argument")
	ErrConflict = errors.New("already exists")
)

// Clock tells the simulator the time. Tests inject one they can move to
// check time-based rules (webhook back-off, rate-limit windows).
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// AccessLevel is a GitLab role as a number.
type AccessLevel int

// GitLab's access levels.
const (
	NoAccess   AccessLevel = 0
	Guest      AccessLevel = 10
	Reporter   AccessLevel = 20
	Developer  AccessLevel = 30
	Maintainer AccessLevel = 40
	Owner      AccessLevel = 50
)

// Visibility of a project.
type Visibility string

// Project visibilities, with GitLab's numeric visibility_level in webhooks.
const (
	Private  Visibility = "private"
	Internal Visibility = "internal"
	Public   Visibility = "public"
)

func (v Visibility) level() int {
	switch v {
	case Public:
		return 20
	case Internal:
		return 10
	default:
		return 0
	}
}

// Options configure a Simulator.
type Options struct {
	// Dir holds the bare repositories (<Dir>/<namespace>/<project>.git). Required.
	Dir string
	// BaseURL is the URL the simulator is reachable at; Start sets it, and
	// with httptest call SetBaseURL.
	BaseURL string
	// Clock defaults to the system clock.
	Clock Clock
	// Version is the GitLab version shown in the webhook User-Agent.
	Version string
	// NotesPerMinute is the per-user note creation limit; 0 means
	// gitlab.com's 60.
	NotesPerMinute int
	// APIRequestsPerMinute is a per-user limit on all API requests; 0 means off.
	APIRequestsPerMinute int
	// DisableRateLimits switches both limits off (benchmarks).
	DisableRateLimits bool
	// WebhookTimeout defaults to GitLab's 10 seconds.
	WebhookTimeout time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// User is a GitLab account. Token is its personal access token.
type User struct {
	ID       int64
	Username string
	Name     string
	Email    string
	Token    string
	Admin    bool
	Bot      bool
}

// Group is a GitLab group; ParentID is 0 for a top-level group.
type Group struct {
	ID       int64
	Name     string
	Path     string
	FullPath string
	ParentID int64
}

// Project is a GitLab project with a bare repository in RepoDir.
type Project struct {
	ID                int64
	Name              string
	Path              string
	PathWithNamespace string
	Description       string
	DefaultBranch     string
	Visibility        Visibility
	NamespaceID       int64  // a group ID, or the owner's user ID for a personal project
	NamespaceKind     string // "group" or "user"
	ForkedFromID      int64
	WebURL            string
	HTTPURLToRepo     string
	RepoDir           string
	CreatedAt         time.Time
}

type memberKey struct {
	kind   string // "project" or "group"
	id     int64
	userID int64
}

type member struct {
	level     AccessLevel
	createdAt time.Time
}

// Simulator is the in-memory GitLab. It is an http.Handler.
type Simulator struct {
	opts   Options
	clock  Clock
	log    *slog.Logger
	client *http.Client

	mu         sync.Mutex
	baseURL    string
	seq        map[string]int64
	users      map[int64]*User
	groups     map[int64]*Group
	projects   map[int64]*Project
	repos      map[int64]repo
	members    map[memberKey]member
	mrs        map[int64]*MergeRequest // by global ID
	notes      map[int64]*Note
	emoji      map[int64]*AwardEmoji
	issues     map[int64]*Issue
	pipelines  map[int64]*Pipeline
	statuses   []*CommitStatus // ordered by ID
	trans      []StatusTransition
	hooks      map[int64]*Hook
	labels     map[string]int64 // label IDs by "projectID/title"
	releases   []*Release
	deliveries []*Delivery
	faults     []*activeFault
	limits     *rateLimiter
	webhooks   *hookSender
	oauth      oauthState // the OAuth2 provider (oauth.go)
}

// New makes a simulator with no users or projects.
func New(opts Options) *Simulator {
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.Version == "" {
		opts.Version = "18.2.1"
	}
	if opts.NotesPerMinute == 0 {
		opts.NotesPerMinute = 60
	}
	if opts.WebhookTimeout == 0 {
		opts.WebhookTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Simulator{
		opts:      opts,
		clock:     opts.Clock,
		log:       opts.Logger,
		client:    &http.Client{Timeout: opts.WebhookTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		baseURL:   strings.TrimRight(opts.BaseURL, "/"),
		seq:       map[string]int64{},
		users:     map[int64]*User{},
		groups:    map[int64]*Group{},
		projects:  map[int64]*Project{},
		repos:     map[int64]repo{},
		members:   map[memberKey]member{},
		mrs:       map[int64]*MergeRequest{},
		notes:     map[int64]*Note{},
		emoji:     map[int64]*AwardEmoji{},
		issues:    map[int64]*Issue{},
		pipelines: map[int64]*Pipeline{},
		hooks:     map[int64]*Hook{},
		labels:    map[string]int64{},
		limits:    newRateLimiter(),
	}
	if s.baseURL == "" {
		s.baseURL = "http://gitlab.invalid"
	}
	s.webhooks = newHookSender(s)
	return s
}

// SetBaseURL tells the simulator where it is reachable (for web_url,
// http_url_to_repo, webhook payloads and X-Gitlab-Instance).
func (s *Simulator) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimRight(u, "/")
}

// BaseURL is where the simulator says it is reachable.
func (s *Simulator) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Start serves the simulator on addr (e.g. "127.0.0.1:0") until ctx ends and
// returns its base URL.
func (s *Simulator) Start(ctx context.Context, addr string) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	base := "http://" + ln.Addr().String()
	s.SetBaseURL(base)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			s.log.Warn("gitlabsim shutdown", "err", err)
		}
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("gitlabsim serve", "err", err)
		}
	}()
	return base, nil
}

func (s *Simulator) nextIDLocked(kind string) int64 {
	s.seq[kind]++
	return s.seq[kind]
}

func (s *Simulator) now() time.Time { return s.clock.Now().UTC() }

var pathSegment = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

func newToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on Linux; a panic here is a broken machine.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "glpat-" + hex.EncodeToString(b)
}

// UserSpec describes a new user.
type UserSpec struct {
	Username string
	Name     string
	Email    string
	Admin    bool
	Bot      bool
	// Token, when set, is used instead of a generated personal access token.
	Token string
}

// AddUser creates a user with a personal access token.
func (s *Simulator) AddUser(spec UserSpec) (User, error) {
	if !pathSegment.MatchString(spec.Username) {
		return User{}, fmt.Errorf("username %q: %w", spec.Username, ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userByUsernameLocked(spec.Username) != nil || s.groupByPathLocked(spec.Username) != nil {
		return User{}, fmt.Errorf("username %q: %w", spec.Username, ErrConflict)
	}
	u := &User{
		ID: s.nextIDLocked("user"), Username: spec.Username, Name: spec.Name, Email: spec.Email,
		Token: spec.Token, Admin: spec.Admin, Bot: spec.Bot,
	}
	if u.Name == "" {
		u.Name = spec.Username
	}
	if u.Email == "" {
		u.Email = spec.Username + "@example.com"
	}
	if u.Token == "" {
		u.Token = newToken()
	}
	s.users[u.ID] = u
	return *u, nil
}

func (s *Simulator) userByUsernameLocked(name string) *User {
	for _, u := range s.users {
		if strings.EqualFold(u.Username, name) {
			return u
		}
	}
	return nil
}

func (s *Simulator) userByTokenLocked(token string) *User {
	if token == "" {
		return nil
	}
	for _, u := range s.users {
		if u.Token == token {
			return u
		}
	}
	return nil
}

func (s *Simulator) groupByPathLocked(fullPath string) *Group {
	for _, g := range s.groups {
		if strings.EqualFold(g.FullPath, fullPath) {
			return g
		}
	}
	return nil
}

func (s *Simulator) projectByPathLocked(fullPath string) *Project {
	for _, p := range s.projects {
		if strings.EqualFold(p.PathWithNamespace, fullPath) {
			return p
		}
	}
	return nil
}

// GroupSpec describes a new group; Parent is the full path of the parent
// group, empty for a top-level group.
type GroupSpec struct {
	Path   string
	Name   string
	Parent string
}

// AddGroup creates a group or subgroup.
func (s *Simulator) AddGroup(spec GroupSpec) (Group, error) {
	if !pathSegment.MatchString(spec.Path) {
		return Group{}, fmt.Errorf("group path %q: %w", spec.Path, ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &Group{Path: spec.Path, Name: spec.Name, FullPath: spec.Path}
	if g.Name == "" {
		g.Name = spec.Path
	}
	if spec.Parent != "" {
		parent := s.groupByPathLocked(spec.Parent)
		if parent == nil {
			return Group{}, fmt.Errorf("parent group %q: %w", spec.Parent, ErrNotFound)
		}
		g.ParentID = parent.ID
		g.FullPath = parent.FullPath + "/" + spec.Path
	} else if s.userByUsernameLocked(spec.Path) != nil {
		return Group{}, fmt.Errorf("namespace %q: %w", spec.Path, ErrConflict)
	}
	if s.groupByPathLocked(g.FullPath) != nil {
		return Group{}, fmt.Errorf("group %q: %w", g.FullPath, ErrConflict)
	}
	g.ID = s.nextIDLocked("group")
	s.groups[g.ID] = g
	return *g, nil
}

// ProjectSpec describes a new project. Namespace is a group's full path or a
// username. Files, when given, become the first commit on DefaultBranch.
type ProjectSpec struct {
	Namespace     string
	Path          string
	Name          string
	Description   string
	Visibility    Visibility
	DefaultBranch string
	Files         map[string]string
}

// AddProject creates a project with a bare repository on disk.
func (s *Simulator) AddProject(ctx context.Context, spec ProjectSpec) (Project, error) {
	if !pathSegment.MatchString(spec.Path) || strings.HasSuffix(spec.Path, ".git") {
		return Project{}, fmt.Errorf("project path %q: %w", spec.Path, ErrInvalid)
	}
	if spec.Visibility == "" {
		spec.Visibility = Private
	}
	if spec.DefaultBranch == "" {
		spec.DefaultBranch = "main"
	}
	s.mu.Lock()
	p := &Project{
		Path: spec.Path, Name: spec.Name, Description: spec.Description,
		Visibility: spec.Visibility, DefaultBranch: spec.DefaultBranch, CreatedAt: s.now(),
	}
	if p.Name == "" {
		p.Name = spec.Path
	}
	var owner *User
	if g := s.groupByPathLocked(spec.Namespace); g != nil {
		p.NamespaceID, p.NamespaceKind = g.ID, "group"
		p.PathWithNamespace = g.FullPath + "/" + spec.Path
	} else if u := s.userByUsernameLocked(spec.Namespace); u != nil {
		owner = u
		p.NamespaceID, p.NamespaceKind = u.ID, "user"
		p.PathWithNamespace = u.Username + "/" + spec.Path
	} else {
		s.mu.Unlock()
		return Project{}, fmt.Errorf("namespace %q: %w", spec.Namespace, ErrNotFound)
	}
	if s.projectByPathLocked(p.PathWithNamespace) != nil {
		s.mu.Unlock()
		return Project{}, fmt.Errorf("project %q: %w", p.PathWithNamespace, ErrConflict)
	}
	p.ID = s.nextIDLocked("project")
	p.RepoDir = filepath.Join(s.opts.Dir, filepath.FromSlash(p.PathWithNamespace)+".git")
	s.projects[p.ID] = p
	s.mu.Unlock()

	r, err := initBareRepo(ctx, p.RepoDir, p.DefaultBranch)
	if err != nil {
		s.dropProject(p.ID)
		return Project{}, err
	}
	s.mu.Lock()
	s.repos[p.ID] = r
	if owner != nil {
		s.members[memberKey{"project", p.ID, owner.ID}] = member{Owner, s.now()}
	}
	s.mu.Unlock()
	if len(spec.Files) > 0 {
		if _, err := s.CommitFiles(ctx, p.ID, p.DefaultBranch, "Initial commit", filesToChanges(spec.Files), ""); err != nil {
			return Project{}, err
		}
	}
	return s.Project(p.ID)
}

func (s *Simulator) dropProject(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.projects, id)
	delete(s.repos, id)
}

func filesToChanges(files map[string]string) []FileChange {
	changes := make([]FileChange, 0, len(files))
	for path, content := range files {
		changes = append(changes, FileChange{Path: path, Content: content})
	}
	return changes
}

// ForkProject forks a project into namespace (a group path or a username),
// copying its branches and tags; the forking user becomes the fork's owner
// when the namespace is theirs.
func (s *Simulator) ForkProject(ctx context.Context, projectID int64, namespace string) (Project, error) {
	s.mu.Lock()
	src, ok := s.projects[projectID]
	if !ok {
		s.mu.Unlock()
		return Project{}, fmt.Errorf("project %d: %w", projectID, ErrNotFound)
	}
	srcCopy := *src
	srcRepo := s.repos[projectID]
	s.mu.Unlock()

	fork, err := s.AddProject(ctx, ProjectSpec{
		Namespace: namespace, Path: srcCopy.Path, Name: srcCopy.Name, Description: srcCopy.Description,
		Visibility: srcCopy.Visibility, DefaultBranch: srcCopy.DefaultBranch,
	})
	if err != nil {
		return Project{}, err
	}
	s.mu.Lock()
	forkRepo := s.repos[fork.ID]
	s.mu.Unlock()
	if _, err := forkRepo.run(ctx, nil, nil, "fetch", "--quiet", srcRepo.dir, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"); err != nil {
		return Project{}, fmt.Errorf("copy repository into fork: %w", err)
	}
	s.mu.Lock()
	s.projects[fork.ID].ForkedFromID = projectID
	s.mu.Unlock()
	return s.Project(fork.ID)
}

// Project returns a project by ID.
func (s *Simulator) Project(id int64) (Project, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[id]
	if !ok {
		return Project{}, fmt.Errorf("project %d: %w", id, ErrNotFound)
	}
	return s.projectCopyLocked(p), nil
}

// SetProjectVisibility changes a project's visibility, as a Maintainer
// does in its settings. GitLab sends no webhook for it.
func (s *Simulator) SetProjectVisibility(id int64, v Visibility) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[id]
	if !ok {
		return fmt.Errorf("project %d: %w", id, ErrNotFound)
	}
	p.Visibility = v
	return nil
}

func (s *Simulator) projectCopyLocked(p *Project) Project {
	c := *p
	c.WebURL = s.baseURL + "/" + p.PathWithNamespace
	c.HTTPURLToRepo = c.WebURL + ".git"
	return c
}

// AddProjectMember gives a user a direct role on a project.
func (s *Simulator) AddProjectMember(projectID, userID int64, level AccessLevel) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.projects[projectID]; !ok {
		return fmt.Errorf("project %d: %w", projectID, ErrNotFound)
	}
	if _, ok := s.users[userID]; !ok {
		return fmt.Errorf("user %d: %w", userID, ErrNotFound)
	}
	s.members[memberKey{"project", projectID, userID}] = member{level, s.now()}
	return nil
}

// AddGroupMember gives a user a role on a group, inherited by its subgroups
// and projects.
func (s *Simulator) AddGroupMember(groupID, userID int64, level AccessLevel) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[groupID]; !ok {
		return fmt.Errorf("group %d: %w", groupID, ErrNotFound)
	}
	if _, ok := s.users[userID]; !ok {
		return fmt.Errorf("user %d: %w", userID, ErrNotFound)
	}
	s.members[memberKey{"group", groupID, userID}] = member{level, s.now()}
	return nil
}

// effectiveMemberLocked is the user's role on the project: the highest of the
// direct membership and memberships of the namespace's group chain.
func (s *Simulator) effectiveMemberLocked(userID int64, p *Project) (member, bool) {
	best, found := s.members[memberKey{"project", p.ID, userID}]
	if p.NamespaceKind == "group" {
		for gid := p.NamespaceID; gid != 0; {
			if m, ok := s.members[memberKey{"group", gid, userID}]; ok && (!found || m.level > best.level) {
				best, found = m, true
			}
			g, ok := s.groups[gid]
			if !ok {
				break
			}
			gid = g.ParentID
		}
	}
	return best, found
}

func (s *Simulator) accessLocked(u *User, p *Project) AccessLevel {
	if u == nil {
		return NoAccess
	}
	if u.Admin {
		return Owner
	}
	m, ok := s.effectiveMemberLocked(u.ID, p)
	if !ok {
		return NoAccess
	}
	return m.level
}

// canSeeLocked says whether the project exists for u (nil: anonymous).
func (s *Simulator) canSeeLocked(u *User, p *Project) bool {
	switch p.Visibility {
	case Public:
		return true
	case Internal:
		return u != nil
	default:
		return s.accessLocked(u, p) >= Guest
	}
}

// canReadCodeLocked: in private projects guests see issues but not code.
func (s *Simulator) canReadCodeLocked(u *User, p *Project) bool {
	if p.Visibility == Private {
		return s.accessLocked(u, p) >= Reporter
	}
	return s.canSeeLocked(u, p)
}

// CommitFiles writes one commit on a branch without firing any webhook: use
// it to set up a repository. A new branch starts from the default branch. author is a username; empty means the project's
// first user. It returns the new commit SHA.
func (s *Simulator) CommitFiles(ctx context.Context, projectID int64, branch, message string, changes []FileChange, author string) (string, error) {
	r, who, err := s.repoAndIdentity(projectID, author)
	if err != nil {
		return "", err
	}
	sha, _, err := r.commitFiles(ctx, branch, s.mustProject(projectID).DefaultBranch, message, changes, who)
	return sha, err
}

func (s *Simulator) repoAndIdentity(projectID int64, username string) (repo, gitIdentity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[projectID]
	if !ok {
		return repo{}, gitIdentity{}, fmt.Errorf("project %d: %w", projectID, ErrNotFound)
	}
	who := gitIdentity{Name: "GitLab Simulator", Email: "sim@example.com", When: s.now()}
	if username != "" {
		u := s.userByUsernameLocked(username)
		if u == nil {
			return repo{}, gitIdentity{}, fmt.Errorf("user %q: %w", username, ErrNotFound)
		}
		who.Name, who.Email = u.Name, u.Email
	}
	return r, who, nil
}

// BranchHead returns the commit a branch points at.
func (s *Simulator) BranchHead(ctx context.Context, projectID int64, branch string) (string, error) {
	s.mu.Lock()
	r, ok := s.repos[projectID]
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("project %d: %w", projectID, ErrNotFound)
	}
	sha := r.refSHA(ctx, "refs/heads/"+branch)
	if sha == "" {
		return "", fmt.Errorf("branch %q: %w", branch, ErrNotFound)
	}
	return sha, nil
}
