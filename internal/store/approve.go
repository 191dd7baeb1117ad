package store

import (
	"context"
	"fmt"
)

// ApproveCommit records a Developer's approval of a merge request's commit,
// releases the jobs held for it (they become queued, described as approved
// by the actor) and writes run.approve to the project's audit log. how
// says where it came from ("with /packit approve", "on the run page"). It
// returns the released jobs, for the caller to enqueue.
func (s *Store) ApproveCommit(ctx context.Context, mr MRRef, sha, actor, how string) ([]int64, error) {
	if err := s.Approve(ctx, mr, sha, actor); err != nil {
		return nil, err
	}
	released, err := s.ReleaseHeldJobs(ctx, mr, sha, "Waiting for a worker (approved by @"+actor+")")
	if err != nil {
		return nil, err
	}
	if _, err := s.AppendAudit(ctx, AuditEntry{Instance: mr.Instance, ProjectID: mr.ProjectID, Actor: actor, Action: "run.approve",
		Detail: fmt.Sprintf("approved commit %.12s of !%d %s (%d jobs released)", sha, mr.IID, how, len(released))}); err != nil {
		return nil, err
	}
	return released, nil
}
