package e2e

import (
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/stacktest"
)

// env is a simulator and an upbuild server wired together like a real
// setup (a stacktest stack), with what the scenarios here share.
type env struct {
	*stacktest.Stack
	t *testing.T
}

// newEnv starts the simulator and upbuild with the default configuration.
func newEnv(t *testing.T, dbURL string) *env {
	t.Helper()
	return newEnvWith(t, dbURL, stacktest.Options{})
}

// newEnvWith starts the simulator and upbuild with opts.
func newEnvWith(t *testing.T, dbURL string, opts stacktest.Options) *env {
	t.Helper()
	return &env{Stack: stacktest.Start(t, dbURL, opts), t: t}
}

// allowDemo lets only the simulator's demo group use upbuild.
func allowDemo(cfg *config.Config) {
	cfg.AllowedNamespaces = []string{cfg.Instances[0].URL + "/demo"}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// statuses returns name → state of a commit's statuses on the simulator.
func (e *env) statuses(projectID int64, sha string) map[string]string {
	out := map[string]string{}
	for name, st := range e.Statuses(projectID, sha) {
		out[name] = st.Status
	}
	return out
}

// notesBy returns the bodies of an MR's notes written by a user.
func (e *env) notesBy(projectID, iid, userID int64) []string {
	var out []string
	for _, n := range e.Sim.Notes(projectID, iid) {
		if n.AuthorID == userID && !n.System {
			out = append(out, n.Body)
		}
	}
	return out
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
