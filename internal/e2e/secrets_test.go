package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/exec"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
	"upbuild.dev/upbuild/internal/token"
)

// envDumpingTests adds a test step that prints everything a job could hand
// on: the sandbox's environment and any git configuration.
const envDumpingTests = "tests:\n" +
	"  - name: installed files\n    run: ls $UPBUILD_RPMS_DIR/noarch/hello-1.0-*.noarch.rpm && sh hello.sh\n" +
	"  - name: environment\n    run: env; git config --list; cat .git/config; true\n"

// TestNoSecretLeaksAfterAFullScenario runs most of what upbuild does in one
// instance, then looks for every secret it holds in everything it wrote: log
// lines, HTTP responses, what it sent to GitLab, job logs, database rows and
// files under its data directory. Tokens are issued in-process (as the CLI
// does), so no HTTP response is allowed to show one.
func TestNoSecretLeaksAfterAFullScenario(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		adminToken := randomText(t)
		e := newEnvWith(t, dbURL, stacktest.Options{Configure: allowDemo, AdminToken: adminToken})
		rec := e.recordResponses()
		var issued []hooktoken.Issued
		type mrRef struct{ projectID, iid int64 }
		var mrs []mrRef
		var projects []int64
		addProject := func(path string, files map[string]string) gitlabsim.Project {
			p, err := e.Sim.AddProject(e.Context(), gitlabsim.ProjectSpec{Namespace: "demo", Path: path, Visibility: gitlabsim.Public,
				DefaultBranch: "main", Files: files})
			if err != nil {
				t.Fatal(err)
			}
			projects = append(projects, p.ID)
			return p
		}
		dave := e.User("dave", gitlabsim.Developer)
		gus := e.User("gus", gitlabsim.Guest)
		e.User("mallory", 0)

		// A real build whose tests print the sandbox's environment.
		files := helloFiles(helloSpec)
		files[".upbuild.yaml"] = envDumpingTests
		greeter := addProject("greeter", files)
		issued = append(issued, e.hookIssued(greeter, false))
		if _, err := e.Sim.CreateTag(e.Context(), greeter.ID, "alice", "v1.0", "main", "release 1.0"); err != nil {
			t.Fatal(err)
		}
		build := e.openMR(greeter, "alice", "feature")
		mrs = append(mrs, mrRef{greeter.ID, build.IID})
		host := "host-" + exec.HostArch()
		if got := e.allFinal(greeter.ID, build.HeadSHA, 3); got["rpm-build:"+host] != "success" || got["testing-farm:"+host] != "success" {
			t.Fatalf("the real build: statuses %v", got)
		}

		// Deliveries signed with a signing token.
		signed := addProject("signed", projectFiles)
		issued = append(issued, e.hookIssued(signed, true))
		signedMR := e.openMR(signed, "alice", "feature")
		mrs = append(mrs, mrRef{signed.ID, signedMR.IID})
		e.allFinal(signed.ID, signedMR.HeadSHA, 2)

		// A fork MR held for approval, comment commands, a refusal, a typo.
		pkg := addProject("pkg", projectFiles)
		issued = append(issued, e.hookIssued(pkg, false))
		fork, forkMR := e.forkMR(pkg, "mallory")
		projects = append(projects, fork.ID)
		mrs = append(mrs, mrRef{pkg.ID, forkMR.IID})
		if err := e.Sim.AddProjectMember(fork.ID, e.Seed.Bot.ID, gitlabsim.Developer); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the fork's jobs held for approval", func() (bool, string) {
			st := e.statuses(fork.ID, forkMR.HeadSHA)
			return len(st) == 2 && st["rpm-build:fedora-rawhide-x86_64"] == "pending" &&
				contains(e.notesBy(pkg.ID, forkMR.IID, e.Seed.Bot.ID), "/packit approve"), fmt.Sprint(st)
		})
		if _, err := e.Sim.AddNote(e.Context(), pkg.ID, forkMR.IID, dave.Username, "/packit approve"); err != nil {
			t.Fatal(err)
		}
		e.allFinal(fork.ID, forkMR.HeadSHA, 2)
		for _, c := range []struct{ who, body, answer string }{
			{dave.Username, "/packit build", ""},
			{gus.Username, "/packit test", "Sorry @gus"},
			{dave.Username, "/packit biuld", `did you mean "build"`},
			{gus.Username, "/packit help", "retest-failed"},
		} {
			if _, err := e.Sim.AddNote(e.Context(), pkg.ID, forkMR.IID, c.who, c.body); err != nil {
				t.Fatal(err)
			}
			if c.answer != "" {
				e.Eventually("an answer to "+c.body, func() (bool, string) {
					notes := e.notesBy(pkg.ID, forkMR.IID, e.Seed.Bot.ID)
					return contains(notes, c.answer), fmt.Sprint(notes)
				})
			}
		}

		// A hook without a token in an allow-listed namespace: a setup issue.
		newcomer := addProject("newcomer", projectFiles)
		if _, err := e.Sim.AddHook(newcomer.ID, gitlabsim.HookSpec{URL: e.URL + "/api/webhooks/gitlab", MergeRequestsEvents: true}); err != nil {
			t.Fatal(err)
		}
		e.openMR(newcomer, "alice", "one")
		e.Eventually("a setup issue", func() (bool, string) {
			is := e.Sim.Issues(newcomer.ID)
			return len(is) == 1, fmt.Sprint(is)
		})

		// A revoked token: its deliveries are refused.
		revoked := addProject("revoked", projectFiles)
		issued = append(issued, e.hookIssued(revoked, true))
		if n, err := e.Tokens().Revoke(e.Context(), e.projectScope(revoked)); err != nil || n != 1 {
			t.Fatalf("revoke: %d tokens, %v", n, err)
		}
		revokedMR := e.openMR(revoked, "alice", "feature")
		mrs = append(mrs, mrRef{revoked.ID, revokedMR.IID})
		if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
			t.Fatal(err)
		}
		for _, d := range e.Sim.Deliveries() {
			if d.ProjectID == revoked.ID && d.StatusCode != http.StatusUnauthorized {
				t.Errorf("a delivery with a revoked token got %d, want 401", d.StatusCode)
			}
		}

		// Read back what a user and an operator can see over HTTP; the
		// recorder keeps each response.
		jobLogs := 0
		var jobIDs []int64
		for _, pid := range projects {
			for _, r := range e.Runs(pid) {
				js, err := e.Server.Store().RunJobs(e.Context(), r.ID)
				if err != nil {
					t.Fatal(err)
				}
				for _, j := range js {
					jobIDs = append(jobIDs, j.ID)
				}
			}
		}
		sawEnv := false
		for _, id := range jobIDs {
			base := fmt.Sprintf("%s/api/v1/jobs/%d", e.URL, id)
			e.get(t, fmt.Sprintf("%s/jobs/%d", e.URL, id))
			if code, log := e.get(t, base+"/log"); code == http.StatusOK {
				jobLogs++
				sawEnv = sawEnv || strings.Contains(log, "UPBUILD_RPMS_DIR=")
			}
			_, arts := e.jobArtifacts(t, strconv.FormatInt(id, 10))
			for _, a := range arts {
				e.get(t, e.URL+a.URL)
			}
		}
		if !sawEnv {
			t.Fatal("no job log shows the sandbox's environment; the scan of job logs would prove nothing")
		}
		for _, path := range []string{"/api/v1/deliveries?limit=500", "/api/v1/rejections", "/metrics", "/healthz", "/readyz"} {
			e.getAs(t, e.URL+path, adminToken)
			e.get(t, e.URL+path)
		}

		// The secrets.
		secrets := []namedSecret{{"bot token", []byte(e.Seed.Bot.Token)}, {"admin token", []byte(adminToken)}}
		keys, err := serviceKeys(e.Config.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, keys...)
		signing := 0
		for i, is := range issued {
			secrets = append(secrets, namedSecret{fmt.Sprintf("webhook token #%d (%s)", i+1, is.Record.ScopePath), []byte(is.Token)})
			if is.SigningSecret == "" {
				continue
			}
			signing++
			key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(is.SigningSecret, token.SigningSecretPrefix))
			if err != nil {
				t.Fatalf("signing secret of %s: %v", is.Record.ScopePath, err)
			}
			secrets = append(secrets,
				namedSecret{fmt.Sprintf("signing secret #%d (%s)", i+1, is.Record.ScopePath), []byte(is.SigningSecret)},
				namedSecret{fmt.Sprintf("signing key #%d (%s)", i+1, is.Record.ScopePath), key})
		}
		forms := encodedForms(secrets)
		// The scan itself must see encoded secrets where they would hide.
		canaries := []haystack{
			{"canary log line", []byte(`{"msg":"fetch","url":"http://x/?private_token=` + url.QueryEscape(e.Seed.Bot.Token) + `"}`)},
			{"canary row", []byte(strings.ToUpper(hex.EncodeToString(keys[0].value)))},
			{"canary body", []byte("Basic " + base64.RawURLEncoding.EncodeToString([]byte(issued[0].Token)))},
		}
		if caught := findSecrets(forms, canaries); len(caught) < len(canaries) {
			t.Fatalf("the scan missed planted secrets, caught only %v", caught)
		}

		// Everything upbuild wrote. The database is read after a graceful
		// stop, so nothing is still on its way in.
		var stacks []haystack
		responses := rec.responses()
		for i, r := range responses {
			stacks = append(stacks, haystack{fmt.Sprintf("response #%d %s %s (%d)", i+1, r.method, r.path, r.status), r.body})
		}
		gitlabTexts := 0
		addText := func(where, text string) {
			gitlabTexts++
			stacks = append(stacks, haystack{where, []byte(text)})
		}
		for _, m := range mrs {
			for _, n := range e.Sim.Notes(m.projectID, m.iid) {
				addText(fmt.Sprintf("note %d on !%d of project %d", n.ID, m.iid, m.projectID), n.Body)
			}
		}
		for _, pid := range projects {
			for _, is := range e.Sim.Issues(pid) {
				addText(fmt.Sprintf("issue #%d of project %d", is.IID, pid), is.Title+"\n"+is.Description)
			}
		}
		commits := map[string]bool{}
		for _, tr := range e.Sim.StatusTransitions() {
			key := fmt.Sprintf("project %d commit %s", tr.ProjectID, tr.SHA[:8])
			if commits[key] {
				continue
			}
			commits[key] = true
			for _, st := range e.Sim.Statuses(tr.ProjectID, tr.SHA) {
				addText(fmt.Sprintf("status %s on %s", st.Name, key), st.Name+"\n"+st.Description+"\n"+st.TargetURL)
			}
			for _, n := range e.Sim.CommitNotes(tr.ProjectID, tr.SHA) {
				addText(fmt.Sprintf("commit note %d on %s", n.ID, key), n.Body)
			}
		}
		e.Stop()
		logLines := strings.Split(e.Logs(), "\n")
		for i, line := range logLines {
			stacks = append(stacks, haystack{fmt.Sprintf("log line %d", i+1), []byte(line)})
		}
		st, err := store.Open(e.Context(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
		cells, rowCounts, err := databaseRows(e.Context(), st)
		if err != nil {
			t.Fatal(err)
		}
		stacks = append(stacks, cells...)
		dataFiles := dataDirFiles(t, e.Config.DataDir, e.Config.KeyFile)
		stacks = append(stacks, dataFiles...)

		rows := 0
		var tables []string
		for table, n := range rowCounts {
			rows += n
			tables = append(tables, fmt.Sprintf("%s:%d", table, n))
		}
		sort.Strings(tables)
		t.Logf("scanned for %d secrets (%d webhook tokens, %d with signing secrets, %d service keys) in %d forms",
			len(secrets), len(issued), signing, len(keys)/2, len(forms))
		t.Logf("scanned %d HTTP responses (none exempt: tokens are issued in-process), %d job logs among them, %d log lines, "+
			"%d texts upbuild sent to GitLab, %d rows in %d tables (%d cells), %d files under the data directory",
			len(responses), jobLogs, len(logLines), gitlabTexts, rows, len(rowCounts), len(cells), len(dataFiles))
		t.Logf("rows per table: %s", strings.Join(tables, " "))
		if jobLogs == 0 || len(cells) == 0 || gitlabTexts == 0 || len(logLines) < 2 {
			t.Fatal("something the scan should cover is empty")
		}
		for _, leak := range findSecrets(forms, stacks) {
			t.Errorf("secret leaked: %s", leak)
		}
	})
}

// getAs is e.get with the admin token.
func (e *env) getAs(t *testing.T, url, adminToken string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(e.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// dataDirFiles reads every file upbuild keeps under its data directory but
// the key file, whose whole point is to hold the keys.
func dataDirFiles(t *testing.T, dir, keyFile string) []haystack {
	t.Helper()
	var out []haystack
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || path == keyFile {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, haystack{"file " + strings.TrimPrefix(path, dir), data})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func randomText(t *testing.T) string {
	t.Helper()
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
