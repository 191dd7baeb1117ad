package gitlabsim

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ServeHTTP serves /api/v4 and git over HTTP, after any injected fault.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.applyFault(w, r) {
		return
	}
	path := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(path, "/api/v4/"):
		s.serveAPI(w, r, strings.TrimPrefix(path, "/api/v4/"))
	case strings.HasPrefix(path, "/oauth/") || path == "/users/sign_in":
		s.serveOAuth(w, r)
	case strings.Contains(path, ".git/"):
		s.serveGit(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	}
}

func apiTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func apiTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return apiTime(*t)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"message":"500 Internal Server Error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// apiError is an error answer with GitLab's body.
type apiError struct {
	status int
	body   any
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %v", e.status, e.body) }

func notFound(what string) *apiError {
	return &apiError{http.StatusNotFound, map[string]string{"message": "404 " + what + " Not Found"}}
}

var (
	errUnauthorized = &apiError{http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"}}
	errForbidden    = &apiError{http.StatusForbidden, map[string]string{"message": "403 Forbidden"}}
	errNoRoute      = &apiError{http.StatusNotFound, map[string]string{"error": "404 Not Found"}}
	errNoMethod     = &apiError{http.StatusMethodNotAllowed, map[string]string{"error": "405 Method Not Allowed"}}
)

// badParam is grape's validation answer.
func badParam(msg string) *apiError {
	return &apiError{http.StatusBadRequest, map[string]string{"error": msg}}
}

func badRequest(msg any) *apiError {
	return &apiError{http.StatusBadRequest, map[string]any{"message": msg}}
}

// request is one API call being served.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	user   *User
	params map[string]any
}

func (q *request) str(key string) (string, bool) {
	v, ok := q.params[key]
	if !ok || v == nil {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(t), true
	case []any:
		parts := make([]string, 0, len(t))
		for _, p := range t {
			parts = append(parts, fmt.Sprint(p))
		}
		return strings.Join(parts, ","), true
	default:
		return fmt.Sprint(t), true
	}
}

func (q *request) boolean(key string) bool {
	v, _ := q.str(key)
	b, _ := strconv.ParseBool(v)
	return b
}

func (q *request) int64(key string) (int64, bool, *apiError) {
	v, ok := q.str(key)
	if !ok || v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, badParam(key + " is invalid")
	}
	return n, true, nil
}

func readParams(r *http.Request) (map[string]any, error) {
	params := map[string]any{}
	for k, vs := range r.URL.Query() {
		if len(vs) > 0 {
			params[strings.TrimSuffix(k, "[]")] = vs[len(vs)-1]
		}
	}
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return params, nil
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	switch {
	case len(strings.TrimSpace(string(body))) == 0:
	case mediaType == "application/json":
		var fromJSON map[string]any
		if err := json.Unmarshal(body, &fromJSON); err != nil {
			return nil, fmt.Errorf("parse JSON body: %w", err)
		}
		for k, v := range fromJSON {
			params[k] = v
		}
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("parse form body: %w", err)
		}
		for k, vs := range form {
			if len(vs) > 0 {
				params[strings.TrimSuffix(k, "[]")] = vs[len(vs)-1]
			}
		}
	}
	return params, nil
}

func requestToken(r *http.Request) string {
	if t := r.Header.Get("PRIVATE-TOKEN"); t != "" {
		return t
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		if t, ok := strings.CutPrefix(auth, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	if t := r.URL.Query().Get("private_token"); t != "" {
		return t
	}
	return r.URL.Query().Get("access_token")
}

func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request, path string) {
	q := &request{w: w, r: r}
	if token := requestToken(r); token != "" {
		s.mu.Lock()
		user, scopeErr := s.apiUserLocked(token, r.Method, strings.Split(strings.Trim(path, "/"), "/"))
		s.mu.Unlock()
		if scopeErr != nil {
			writeJSON(w, scopeErr.status, scopeErr.body)
			return
		}
		if q.user = user; q.user == nil {
			writeJSON(w, errUnauthorized.status, errUnauthorized.body)
			return
		}
	}
	if q.user != nil && s.opts.APIRequestsPerMinute > 0 && !s.opts.DisableRateLimits {
		now := s.now()
		v := s.limits.take("api", q.user.ID, s.opts.APIRequestsPerMinute, now)
		if !v.allowed {
			v.writeThrottleHeaders(w.Header(), now, true)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte("Retry later\n"))
			return
		}
	}
	params, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "The request body could not be parsed"})
		return
	}
	q.params = params
	raw := strings.Split(strings.Trim(path, "/"), "/")
	segs := make([]string, len(raw))
	for i, seg := range raw {
		unescaped, err := url.PathUnescape(seg)
		if err != nil {
			writeJSON(w, errNoRoute.status, errNoRoute.body)
			return
		}
		segs[i] = unescaped
	}
	if err := s.route(q, segs); err != nil {
		writeJSON(w, err.status, err.body)
	}
}

func (s *Simulator) route(q *request, segs []string) *apiError {
	method := q.r.Method
	switch {
	case len(segs) == 1 && segs[0] == "user":
		if method != http.MethodGet {
			return errNoMethod
		}
		return s.getCurrentUser(q)
	case len(segs) == 1 && segs[0] == "users":
		if method != http.MethodGet {
			return errNoMethod
		}
		return s.listUsers(q)
	case len(segs) >= 2 && segs[0] == "projects":
		return s.routeProject(q, segs[1], segs[2:])
	}
	return errNoRoute
}

// findProject resolves a numeric ID or a full path; hidden projects are
// "404 Project Not Found" as in GitLab.
func (s *Simulator) findProjectLocked(u *User, id string) (*Project, *apiError) {
	var p *Project
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		p = s.projects[n]
	} else {
		p = s.projectByPathLocked(id)
	}
	if p == nil || !s.canSeeLocked(u, p) {
		return nil, notFound("Project")
	}
	return p, nil
}

func (s *Simulator) routeProject(q *request, id string, rest []string) *apiError {
	s.mu.Lock()
	p, apiErr := s.findProjectLocked(q.user, id)
	s.mu.Unlock()
	if apiErr != nil {
		return apiErr
	}
	method := q.r.Method
	at := func(parts ...string) bool {
		if len(rest) != len(parts) {
			return false
		}
		for i, part := range parts {
			if part != "*" && rest[i] != part {
				return false
			}
		}
		return true
	}
	switch {
	case len(rest) == 0 && method == http.MethodGet:
		return s.getProject(q, p)
	case len(rest) >= 3 && rest[0] == "repository" && rest[1] == "files" && method == http.MethodGet:
		filePath := strings.Join(rest[2:], "/")
		if len(rest) > 3 && rest[len(rest)-1] == "raw" {
			return s.getFile(q, p, strings.Join(rest[2:len(rest)-1], "/"), true)
		}
		return s.getFile(q, p, filePath, false)
	case at("repository", "tree") && method == http.MethodGet:
		return s.getTree(q, p)
	case at("repository", "commits", "*") && method == http.MethodGet:
		return s.getCommit(q, p, rest[2])
	case at("repository", "commits", "*", "statuses") && method == http.MethodGet:
		return s.listStatuses(q, p, rest[2])
	case at("repository", "commits", "*", "comments") && method == http.MethodPost:
		return s.postCommitComment(q, p, rest[2])
	case at("statuses", "*") && method == http.MethodPost:
		return s.postStatus(q, p, rest[1])
	case at("pipelines", "*") && method == http.MethodGet:
		return s.getPipeline(q, p, rest[1])
	case at("merge_requests", "*") && method == http.MethodGet:
		return s.getMergeRequest(q, p, rest[1])
	case at("merge_requests", "*", "commits") && method == http.MethodGet:
		return s.listMRCommits(q, p, rest[1])
	case at("merge_requests", "*", "notes") && method == http.MethodGet:
		return s.listNotes(q, p, rest[1])
	case at("merge_requests", "*", "notes") && method == http.MethodPost:
		return s.postNote(q, p, rest[1])
	case at("merge_requests", "*", "notes", "*") && method == http.MethodGet:
		return s.getNote(q, p, rest[1], rest[3])
	case at("merge_requests", "*", "notes", "*") && method == http.MethodPut:
		return s.putNote(q, p, rest[1], rest[3])
	case at("merge_requests", "*", "notes", "*", "award_emoji") && method == http.MethodGet:
		return s.listNoteEmoji(q, p, rest[1], rest[3])
	case at("merge_requests", "*", "notes", "*", "award_emoji") && method == http.MethodPost:
		return s.postNoteEmoji(q, p, rest[1], rest[3])
	case at("issues") && method == http.MethodGet:
		return s.listIssues(q, p)
	case at("issues") && method == http.MethodPost:
		return s.postIssue(q, p)
	case at("members", "all", "*") && method == http.MethodGet:
		return s.getMemberAll(q, p, rest[2])
	case at("hooks") && method == http.MethodGet:
		return s.listHooks(q, p)
	case at("hooks") && method == http.MethodPost:
		return s.postHook(q, p)
	}
	return errNoRoute
}

// paginate applies page/per_page to n items, writes GitLab's pagination
// headers and returns the slice bounds.
func paginate(q *request, n int) (int, int) {
	page, perPage := 1, 20
	if v, err := strconv.Atoi(q.r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	if v, err := strconv.Atoi(q.r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	totalPages := max(1, (n+perPage-1)/perPage)
	h := q.w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Total", strconv.Itoa(n))
	h.Set("X-Total-Pages", strconv.Itoa(totalPages))
	h.Set("X-Next-Page", "")
	h.Set("X-Prev-Page", "")
	if page < totalPages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
	}
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
	}
	var links []string
	link := func(rel string, to int) {
		u := *q.r.URL
		values := u.Query()
		values.Set("page", strconv.Itoa(to))
		values.Set("per_page", strconv.Itoa(perPage))
		u.RawQuery = values.Encode()
		links = append(links, fmt.Sprintf("<%s>; rel=%q", u.String(), rel))
	}
	if page > 1 {
		link("prev", page-1)
	}
	if page < totalPages {
		link("next", page+1)
	}
	link("first", 1)
	link("last", totalPages)
	h.Set("Link", strings.Join(links, ", "))
	start := min((page-1)*perPage, n)
	return start, min(start+perPage, n)
}

func (s *Simulator) userJSONLocked(u *User) map[string]any {
	return map[string]any{
		"id": u.ID, "username": u.Username, "name": u.Name, "state": "active", "locked": false,
		"avatar_url": s.avatarURL(u), "web_url": s.baseURL + "/" + u.Username,
	}
}

func (s *Simulator) getCurrentUser(q *request) *apiError {
	if q.user == nil {
		return errUnauthorized
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.userJSONLocked(q.user)
	out["email"] = q.user.Email
	out["public_email"] = ""
	out["is_admin"] = q.user.Admin
	out["bot"] = q.user.Bot
	out["created_at"] = apiTime(time.Unix(0, 0))
	writeJSON(q.w, http.StatusOK, out)
	return nil
}

func (s *Simulator) listUsers(q *request) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	username, byName := q.str("username")
	for id := int64(1); id <= s.seq["user"]; id++ {
		u, ok := s.users[id]
		if !ok || (byName && !strings.EqualFold(u.Username, username)) {
			continue
		}
		out = append(out, s.userJSONLocked(u))
	}
	start, end := paginate(q, len(out))
	writeJSON(q.w, http.StatusOK, append([]map[string]any{}, out[start:end]...))
	return nil
}

func (s *Simulator) namespaceJSONLocked(p *Project) map[string]any {
	if p.NamespaceKind == "group" {
		g := s.groups[p.NamespaceID]
		var parent any
		if g.ParentID != 0 {
			parent = g.ParentID
		}
		return map[string]any{
			"id": g.ID, "name": g.Name, "path": g.Path, "kind": "group", "full_path": g.FullPath,
			"parent_id": parent, "avatar_url": nil, "web_url": s.baseURL + "/groups/" + g.FullPath,
		}
	}
	u := s.users[p.NamespaceID]
	return map[string]any{
		"id": u.ID, "name": u.Name, "path": u.Username, "kind": "user", "full_path": u.Username,
		"parent_id": nil, "avatar_url": s.avatarURL(u), "web_url": s.baseURL + "/" + u.Username,
	}
}

func (s *Simulator) getProject(q *request, p *Project) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.projectCopyLocked(p)
	ns := s.namespaceJSONLocked(p)
	forks := 0
	for _, other := range s.projects {
		if other.ForkedFromID == p.ID {
			forks++
		}
	}
	out := map[string]any{
		"id": p.ID, "description": p.Description, "name": p.Name,
		"name_with_namespace": fmt.Sprint(ns["name"]) + " / " + p.Name,
		"path":                p.Path, "path_with_namespace": p.PathWithNamespace,
		"created_at": apiTime(p.CreatedAt), "last_activity_at": apiTime(p.CreatedAt),
		"default_branch": p.DefaultBranch, "tag_list": []string{}, "topics": []string{},
		"ssh_url_to_repo": s.sshURLLocked(p), "http_url_to_repo": c.HTTPURLToRepo, "web_url": c.WebURL,
		"readme_url": nil, "avatar_url": nil, "forks_count": forks, "star_count": 0,
		"namespace": ns, "visibility": string(p.Visibility), "archived": false, "empty_repo": false,
		"issues_enabled": true, "merge_requests_enabled": true, "jobs_enabled": true,
	}
	if src, ok := s.projects[p.ForkedFromID]; ok && s.canSeeLocked(q.user, src) {
		sc := s.projectCopyLocked(src)
		out["forked_from_project"] = map[string]any{
			"id": src.ID, "name": src.Name, "name_with_namespace": fmt.Sprint(s.namespaceJSONLocked(src)["name"]) + " / " + src.Name,
			"path": src.Path, "path_with_namespace": src.PathWithNamespace,
			"http_url_to_repo": sc.HTTPURLToRepo, "web_url": sc.WebURL, "ssh_url_to_repo": s.sshURLLocked(src),
			"default_branch": src.DefaultBranch, "visibility": string(src.Visibility),
		}
	}
	if q.user != nil {
		var projectAccess, groupAccess any
		if m, ok := s.members[memberKey{"project", p.ID, q.user.ID}]; ok {
			projectAccess = map[string]any{"access_level": m.level, "notification_level": 3}
		}
		if p.NamespaceKind == "group" {
			if m, ok := s.members[memberKey{"group", p.NamespaceID, q.user.ID}]; ok {
				groupAccess = map[string]any{"access_level": m.level, "notification_level": 3}
			}
		}
		out["permissions"] = map[string]any{"project_access": projectAccess, "group_access": groupAccess}
	}
	writeJSON(q.w, http.StatusOK, out)
	return nil
}
