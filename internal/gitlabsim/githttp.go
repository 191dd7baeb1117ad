package gitlabsim

import (
	"net/http"
	"net/http/cgi"
	"strings"
)

// gitHTTPBackend is git's own smart-HTTP server, run as CGI.
const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// serveGit serves <base>/<path_with_namespace>.git/... for clone and fetch.
// Private projects need HTTP Basic auth with a personal access token as the
// password (any username), like GitLab; pushing over HTTP is refused because
// the simulator's pushes go through its Go API, which fires the webhooks.
func (s *Simulator) serveGit(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	idx := strings.Index(path, ".git/")
	projectPath := strings.Trim(path[:idx], "/")
	if r.URL.Query().Get("service") == "git-receive-pack" || strings.HasSuffix(path, "/git-receive-pack") {
		http.Error(w, "You are not allowed to push code to this project.", http.StatusForbidden)
		return
	}
	_, password, hasAuth := r.BasicAuth()
	s.mu.Lock()
	p := s.projectByPathLocked(projectPath)
	var u *User
	if hasAuth {
		u = s.userByTokenLocked(password)
	}
	var canRead bool
	var repoDir, fullPath string
	if p != nil {
		canRead = s.canReadCodeLocked(u, p)
		repoDir, fullPath = s.repos[p.ID].dir, p.PathWithNamespace
	}
	s.mu.Unlock()
	if hasAuth && u == nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
		http.Error(w, "HTTP Basic: Access denied.", http.StatusUnauthorized)
		return
	}
	if p == nil || !canRead {
		if u == nil {
			// Anonymous callers are asked to log in before learning whether
			// the project exists.
			w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
			http.Error(w, "HTTP Basic: Access denied.", http.StatusUnauthorized)
			return
		}
		http.Error(w, "The project you were looking for could not be found or you don't have permission to view it.", http.StatusNotFound)
		return
	}
	root := strings.TrimSuffix(repoDir, fullPath+".git")
	handler := &cgi.Handler{
		Path: gitHTTPBackend,
		Root: "/",
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"PATH_INFO=/" + fullPath + ".git" + path[idx+len(".git"):],
		},
	}
	handler.ServeHTTP(w, r)
}
