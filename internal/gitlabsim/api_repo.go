package gitlabsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
)

// codeRepo returns the project's repository when the caller may read code.
func (s *Simulator) codeRepo(q *request, p *Project) (repo, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.canReadCodeLocked(q.user, p) {
		return repo{}, errForbidden
	}
	return s.repos[p.ID], nil
}

func (s *Simulator) getFile(q *request, p *Project, filePath string, raw bool) *apiError {
	r, apiErr := s.codeRepo(q, p)
	if apiErr != nil {
		return apiErr
	}
	ref, ok := q.str("ref")
	if !ok || ref == "" {
		if !raw {
			return badParam("ref is missing")
		}
		ref = p.DefaultBranch
	}
	ctx := q.r.Context()
	commit, err := r.resolveCommit(ctx, ref)
	if err != nil {
		return notFound("Commit")
	}
	entry, err := r.fileEntry(ctx, commit, filePath)
	if err != nil {
		return notFound("File")
	}
	content, err := r.blob(ctx, entry.ID)
	if err != nil {
		return notFound("File")
	}
	if raw {
		q.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		q.w.Header().Set("X-Gitlab-Blob-Id", entry.ID)
		q.w.Header().Set("X-Gitlab-Commit-Id", commit)
		q.w.WriteHeader(http.StatusOK)
		_, _ = q.w.Write(content)
		return nil
	}
	last, err := r.lastCommitFor(ctx, commit, filePath)
	if err != nil {
		return notFound("File")
	}
	sum := sha256.Sum256(content)
	writeJSON(q.w, http.StatusOK, map[string]any{
		"file_name": path.Base(filePath), "file_path": filePath, "size": len(content), "encoding": "base64",
		"content_sha256": hex.EncodeToString(sum[:]), "ref": ref, "blob_id": entry.ID, "commit_id": commit,
		"last_commit_id": last, "execute_filemode": entry.Mode == "100755",
		"content": base64.StdEncoding.EncodeToString(content),
	})
	return nil
}

func (s *Simulator) getTree(q *request, p *Project) *apiError {
	r, apiErr := s.codeRepo(q, p)
	if apiErr != nil {
		return apiErr
	}
	ref, _ := q.str("ref")
	if ref == "" {
		ref = p.DefaultBranch
	}
	ctx := q.r.Context()
	commit, err := r.resolveCommit(ctx, ref)
	if err != nil {
		return notFound("Tree")
	}
	dir, _ := q.str("path")
	recursive := q.boolean("recursive")
	entries, err := r.lsTree(ctx, commit, dir, recursive)
	if err != nil || (dir != "" && len(entries) == 0) {
		return notFound("Tree")
	}
	if !recursive {
		// GitLab lists folders, then files, then submodules.
		rank := map[string]int{"tree": 0, "blob": 1, "commit": 2}
		slices.SortStableFunc(entries, func(a, b treeEntry) int { return rank[a.Type] - rank[b.Type] })
	}
	start, end := paginate(q, len(entries))
	out := []map[string]any{}
	for _, e := range entries[start:end] {
		out = append(out, map[string]any{"id": e.ID, "name": path.Base(e.Path), "type": e.Type, "path": e.Path, "mode": e.Mode})
	}
	writeJSON(q.w, http.StatusOK, out)
	return nil
}

func (s *Simulator) commitJSON(p Project, c commitInfo) map[string]any {
	return map[string]any{
		"id": c.ID, "short_id": c.ID[:8], "title": c.Title(), "message": c.Message,
		"author_name": c.AuthorName, "author_email": c.AuthorEmail, "authored_date": apiTime(c.AuthoredAt),
		"committer_name": c.CommitterName, "committer_email": c.CommitterEmail, "committed_date": apiTime(c.CommittedAt),
		"created_at": apiTime(c.CommittedAt), "parent_ids": nonNil(c.ParentIDs), "web_url": p.WebURL + "/-/commit/" + c.ID,
	}
}

func (s *Simulator) getCommit(q *request, p *Project, sha string) *apiError {
	r, apiErr := s.codeRepo(q, p)
	if apiErr != nil {
		return apiErr
	}
	full, err := r.resolveCommit(q.r.Context(), sha)
	if err != nil {
		return notFound("Commit")
	}
	info, err := r.commit(q.r.Context(), full)
	if err != nil {
		return notFound("Commit")
	}
	writeJSON(q.w, http.StatusOK, s.commitJSON(s.mustProject(p.ID), info))
	return nil
}

func (s *Simulator) listMRCommits(q *request, p *Project, iidText string) *apiError {
	mr, apiErr := s.visibleMR(q, p, iidText)
	if apiErr != nil {
		return apiErr
	}
	r, apiErr := s.codeRepo(q, p)
	if apiErr != nil {
		return apiErr
	}
	ctx := q.r.Context()
	base := r.refSHA(ctx, "refs/heads/"+mr.TargetBranch)
	out, err := r.run(ctx, nil, nil, "rev-list", mr.HeadSHA, "^"+base)
	if err != nil {
		return notFound("Merge Request")
	}
	shas := strings.Fields(string(out))
	start, end := paginate(q, len(shas))
	list := []map[string]any{}
	project := s.mustProject(p.ID)
	for _, sha := range shas[start:end] {
		info, err := r.commit(ctx, sha)
		if err != nil {
			return notFound("Commit")
		}
		list = append(list, s.commitJSON(project, info))
	}
	writeJSON(q.w, http.StatusOK, list)
	return nil
}

// statusJSONLocked is a commit status as the API shows it.
func (s *Simulator) statusJSONLocked(st *CommitStatus) map[string]any {
	var author any
	if u, ok := s.users[st.AuthorID]; ok {
		author = s.userJSONLocked(u)
	}
	var coverage any
	if st.Coverage != nil {
		coverage = *st.Coverage
	}
	nullable := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	return map[string]any{
		"id": st.ID, "sha": st.SHA, "ref": st.Ref, "status": st.Status, "name": st.Name,
		"target_url": nullable(st.TargetURL), "description": nullable(st.Description),
		"created_at": apiTime(st.CreatedAt), "started_at": apiTimePtr(st.StartedAt),
		"finished_at": apiTimePtr(st.FinishedAt), "allow_failure": false, "coverage": coverage,
		"pipeline_id": st.PipelineID, "author": author,
	}
}

var statusStates = []string{"pending", "running", "success", "failed", "canceled", "skipped"}

func (s *Simulator) postStatus(q *request, p *Project, sha string) *apiError {
	if q.user == nil {
		return errUnauthorized
	}
	s.mu.Lock()
	level := s.accessLocked(q.user, p)
	r := s.repos[p.ID]
	s.mu.Unlock()
	if level < Developer {
		return errForbidden
	}
	state, ok := q.str("state")
	if !ok || state == "" {
		return badParam("state is missing")
	}
	if !slices.Contains(statusStates, state) {
		return badParam("state does not have a valid value")
	}
	req := statusRequest{state: state, name: "default"}
	if name, ok := q.str("name"); ok && name != "" {
		req.name = name
	} else if name, ok := q.str("context"); ok && name != "" {
		req.name = name
	}
	req.ref, _ = q.str("ref")
	req.refGiven = req.ref != ""
	req.targetURL, _ = q.str("target_url")
	req.description, _ = q.str("description")
	pipelineID, _, apiErr := q.int64("pipeline_id")
	if apiErr != nil {
		return apiErr
	}
	req.pipelineID = pipelineID
	if cov, ok := q.str("coverage"); ok && cov != "" {
		f, err := strconv.ParseFloat(cov, 64)
		if err != nil {
			return badParam("coverage is invalid")
		}
		req.coverage = &f
	}
	ctx := q.r.Context()
	full, err := r.resolveCommit(ctx, sha)
	if err != nil {
		return notFound("Commit")
	}
	req.sha = full
	if req.ref == "" {
		refs, err := r.refsContaining(ctx, full)
		if err != nil || len(refs) == 0 {
			return notFound("References for commit")
		}
		req.ref = refs[0]
	}
	tooLong := map[string][]string{}
	for field, value := range map[string]string{"name": req.name, "ref": req.ref, "target_url": req.targetURL, "description": req.description} {
		if len([]rune(value)) > 255 {
			tooLong[field] = []string{"is too long (maximum is 255 characters)"}
		}
	}
	if len(tooLong) > 0 {
		return badRequest(tooLong)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.setStatusLocked(p, q.user, req)
	if err != nil {
		return badRequest(err.Error())
	}
	writeJSON(q.w, http.StatusCreated, s.statusJSONLocked(st))
	return nil
}

func (s *Simulator) listStatuses(q *request, p *Project, sha string) *apiError {
	s.mu.Lock()
	canRead := s.canReadCodeLocked(q.user, p)
	r := s.repos[p.ID]
	s.mu.Unlock()
	if !canRead {
		return errForbidden
	}
	full, err := r.resolveCommit(q.r.Context(), sha)
	if err != nil {
		return notFound("Commit")
	}
	ref, _ := q.str("ref")
	name, _ := q.str("name")
	pipelineID, _, apiErr := q.int64("pipeline_id")
	if apiErr != nil {
		return apiErr
	}
	all := q.boolean("all")
	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []*CommitStatus
	for _, st := range s.statuses {
		if st.ProjectID != p.ID || st.SHA != full || (st.Retried && !all) ||
			(ref != "" && st.Ref != ref) || (name != "" && st.Name != name) ||
			(pipelineID != 0 && st.PipelineID != pipelineID) {
			continue
		}
		matched = append(matched, st)
	}
	start, end := paginate(q, len(matched))
	out := []map[string]any{}
	for _, st := range matched[start:end] {
		out = append(out, s.statusJSONLocked(st))
	}
	writeJSON(q.w, http.StatusOK, out)
	return nil
}

// pipelineStatusLocked derives a pipeline's status from its latest jobs the
// way GitLab's composite status does, for the states external jobs can have.
func (s *Simulator) pipelineStatusLocked(pl *Pipeline) string {
	counts := map[string]int{}
	total := 0
	for _, st := range s.statuses {
		if st.PipelineID == pl.ID && !st.Retried {
			counts[st.Status]++
			total++
		}
	}
	switch {
	case total == 0:
		return "created"
	case counts["running"] > 0:
		return "running"
	case counts["pending"] > 0:
		return "pending"
	case counts["created"] > 0:
		return "created"
	case counts["failed"] > 0:
		return "failed"
	case counts["canceled"] > 0:
		return "canceled"
	case counts["success"] > 0:
		return "success"
	default:
		return "skipped"
	}
}

func (s *Simulator) getPipeline(q *request, p *Project, idText string) *apiError {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return notFound("Pipeline")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.canReadCodeLocked(q.user, p) {
		return errForbidden
	}
	pl, ok := s.pipelines[id]
	if !ok || pl.ProjectID != p.ID {
		return notFound("Pipeline")
	}
	var user any
	if u, ok := s.users[pl.UserID]; ok {
		user = s.userJSONLocked(u)
	}
	writeJSON(q.w, http.StatusOK, map[string]any{
		"id": pl.ID, "iid": pl.IID, "project_id": pl.ProjectID, "sha": pl.SHA, "ref": pl.Ref,
		"status": s.pipelineStatusLocked(pl), "source": pl.Source, "created_at": apiTime(pl.CreatedAt),
		"updated_at": apiTime(pl.CreatedAt), "user": user,
		"web_url": s.projectCopyLocked(p).WebURL + "/-/pipelines/" + strconv.FormatInt(pl.ID, 10),
	})
	return nil
}
