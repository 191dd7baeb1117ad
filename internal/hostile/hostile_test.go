package hostile_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/testdb"
	"upbuild.dev/upbuild/internal/token"
)

// hostileInput is one thing an attacker (or a broken client) sends.
type hostileInput struct {
	name string
	send func(t *testing.T, e *env) answer
	// status is the answer expected; 0 with hangsUp: the server closes
	// the connection without one.
	status  int
	hangsUp bool
	// says is a phrase the answer's body must contain.
	says string
	// stored is how many deliveries the input legitimately adds (a
	// delivery that is valid, however unusual); storedOf overrides it
	// when the number depends on the answer.
	stored   int64
	storedOf func(answer) int64
	// runs is how many runs the input legitimately adds; jobs is how many
	// jobs, which is none except where a BUG comment says otherwise.
	runs, jobs int64
}

// edit decodes a JSON body, lets change alter it and encodes it again.
func edit(t *testing.T, body []byte, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// replaceOnce swaps the first occurrence of old in body, failing when
// there is none (the input would silently test nothing).
func replaceOnce(t *testing.T, body []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(body, []byte(old)) {
		t.Fatalf("body has no %q", old)
	}
	return bytes.Replace(body, []byte(old), []byte(new), 1)
}

func projectOf(m map[string]any) map[string]any { return m["project"].(map[string]any) }

func nested(depth int) []byte {
	return []byte(strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth))
}

func admin(h http.Header) http.Header {
	h.Set("Authorization", "Bearer "+adminToken)
	return h
}

func hostileInputs() []hostileInput {
	webhook := func(event string, body func(t *testing.T, e *env) []byte, change func(e *env, h http.Header)) func(t *testing.T, e *env) answer {
		return func(t *testing.T, e *env) answer {
			return e.deliver(event, body(t, e), func(h http.Header) {
				if change != nil {
					change(e, h)
				}
			})
		}
	}
	mr := func(change func(m map[string]any)) func(t *testing.T, e *env) []byte {
		return func(t *testing.T, e *env) []byte { return edit(t, e.mrBody, change) }
	}
	literal := func(s string) func(t *testing.T, e *env) []byte {
		return func(*testing.T, *env) []byte { return []byte(s) }
	}
	get := func(path string, authorised bool) func(t *testing.T, e *env) answer {
		return func(t *testing.T, e *env) answer {
			h := http.Header{}
			if authorised {
				admin(h)
			}
			return e.request(http.MethodGet, strings.ReplaceAll(path, "{job}", fmt.Sprint(e.jobID)), nil, h)
		}
	}
	push := func(t *testing.T, e *env) []byte { return e.pushBody }
	const mrHook = "Merge Request Hook"
	// A NUL in the project path is refused before it reaches the store
	// (PostgreSQL cannot keep a NUL in text), the same on both engines.
	nulPath := hostileInput{status: http.StatusBadRequest, says: "NUL character"}
	// An artifact name with a NUL names no artifact.
	nulArtifact := hostileInput{status: http.StatusNotFound, says: "no artifact"}

	return []hostileInput{
		// Bodies.
		{name: "body over the limit", send: webhook(mrHook, func(t *testing.T, e *env) []byte {
			return append(bytes.Repeat([]byte(" "), maxBodyBytes), e.mrBody...)
		}, nil), status: http.StatusRequestEntityTooLarge, says: "larger than"},
		{name: "truncated JSON", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody[:len(e.mrBody)/2] }, nil),
			status: http.StatusBadRequest, says: "JSON"},
		{name: "empty body", send: webhook(mrHook, literal(""), nil), status: http.StatusBadRequest, says: "body is empty"},
		{name: "JSON array", send: webhook(mrHook, literal(`[{"object_kind":"merge_request"}]`), nil), status: http.StatusBadRequest, says: "JSON"},
		{name: "JSON null", send: webhook(mrHook, literal("null"), nil), status: http.StatusBadRequest, says: "not an object"},
		{name: "JSON string", send: webhook(mrHook, literal(`"merge_request"`), nil), status: http.StatusBadRequest, says: "JSON"},
		{name: "project.id as a string", send: webhook(mrHook, mr(func(m map[string]any) { projectOf(m)["id"] = "12" }), nil),
			status: http.StatusBadRequest, says: "must be an integer"},
		{name: "object_attributes as an array", send: webhook(mrHook, mr(func(m map[string]any) { m["object_attributes"] = []any{1, 2} }), nil),
			status: http.StatusBadRequest, says: "must be an object"},
		{name: "project as a number", send: webhook(mrHook, mr(func(m map[string]any) { m["project"] = 7 }), nil),
			status: http.StatusBadRequest, says: "project must be an object"},
		{name: "10,000-deep nesting", send: webhook(mrHook, literal(string(nested(10_000))), nil), status: http.StatusBadRequest, says: "malformed webhook payload"},
		// An unknown field nested 100,000 deep (past encoding/json's limit
		// of 10,000) is refused rather than stored undecodable.
		{name: "100,000-deep nesting inside the payload", send: webhook("Push Hook", func(t *testing.T, e *env) []byte {
			return replaceOnce(t, e.pushBody, `"object_kind":`, `"deep":`+string(nested(100_000))+`,"object_kind":`)
		}, nil), status: http.StatusBadRequest, says: "nested deeper than"},
		// A token bound to the project's ID keeps working after a rename, so
		// a mangled path is recorded as an ignored delivery with its reason.
		{name: "invalid UTF-8 in the project path", send: webhook(mrHook, func(t *testing.T, e *env) []byte {
			return replaceOnce(t, e.mrBody, `"path_with_namespace":"demo/pkg"`, "\"path_with_namespace\":\"demo/pkg\xff\xfe\"")
		}, nil), status: http.StatusAccepted, says: "not the hook's project path", stored: 1},
		{name: "NUL byte between tokens", send: webhook(mrHook, func(t *testing.T, e *env) []byte {
			return append([]byte{'{', 0}, e.mrBody[1:]...)
		}, nil), status: http.StatusBadRequest, says: "JSON"},
		{name: "raw NUL byte inside a string", send: webhook(mrHook, func(t *testing.T, e *env) []byte {
			return replaceOnce(t, e.mrBody, `"path_with_namespace":"demo/pkg"`, "\"path_with_namespace\":\"demo/pkg\x00\"")
		}, nil), status: http.StatusBadRequest, says: "JSON"},
		{name: "escaped NUL in the project path", send: webhook(mrHook, func(t *testing.T, e *env) []byte {
			return replaceOnce(t, e.mrBody, `"path_with_namespace":"demo/pkg"`, `"path_with_namespace":"demo/pkg\u0000"`)
		}, nil), status: nulPath.status, says: nulPath.says, stored: nulPath.stored},
		{name: "project.id 1e400", send: webhook(mrHook, func(t *testing.T, e *env) []byte {
			return replaceOnce(t, e.mrBody, fmt.Sprintf(`"project":{"id":%d`, e.project.ID), `"project":{"id":1e400`)
		}, nil), status: http.StatusBadRequest, says: "must be an integer"},
		{name: "project.id 2^80", send: webhook(mrHook, func(t *testing.T, e *env) []byte {
			return replaceOnce(t, e.mrBody, fmt.Sprintf(`"project":{"id":%d`, e.project.ID), `"project":{"id":1208925819614629174706176`)
		}, nil), status: http.StatusBadRequest, says: "must be an integer"},
		{name: "negative project.id", send: webhook(mrHook, mr(func(m map[string]any) { projectOf(m)["id"] = -5 }), nil),
			status: http.StatusUnauthorized, says: "another project"},
		{name: "project on another host", send: webhook(mrHook, mr(func(m map[string]any) {
			projectOf(m)["web_url"] = "https://evil.example.com/demo/pkg"
		}), nil), status: http.StatusUnauthorized, says: "not on the token's GitLab instance"},

		// Headers.
		{name: "X-Gitlab-Event with a bare CR", send: func(t *testing.T, e *env) answer {
			return e.raw(e.rawDelivery("Merge Request Hook\rX-Injected: yes", "", e.mrBody))
		}, status: http.StatusBadRequest},
		// A bare LF ends a header line and an indented line continues one
		// (RFC 9112 lets a server read them so): the delivery is valid.
		{name: "X-Gitlab-Event with a bare LF", send: func(t *testing.T, e *env) answer {
			return e.raw(e.rawDelivery("Push Hook\nX-Injected: yes", "", e.pushBody))
		}, status: http.StatusAccepted, says: "accepted", stored: 1},
		{name: "X-Gitlab-Event folded onto a second line", send: func(t *testing.T, e *env) answer {
			return e.raw(e.rawDelivery("Push\r\n Hook", "", e.pushBody))
		}, status: http.StatusAccepted, says: "accepted", stored: 1},
		{name: "two conflicting Content-Lengths", send: func(t *testing.T, e *env) answer {
			return e.raw(e.rawDelivery(mrHook, "Content-Length: 3\r\n", e.mrBody))
		}, status: http.StatusBadRequest},
		{name: "duplicate X-Gitlab-Token, the first one wrong", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody },
			func(e *env, h http.Header) { h["X-Gitlab-Token"] = []string{"wrong", e.token} }),
			status: http.StatusUnauthorized, says: "invalid webhook token"},
		{name: "gigantic header", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody },
			func(e *env, h http.Header) { h.Set("X-Padding", strings.Repeat("a", 128<<10)) }),
			status: http.StatusRequestHeaderFieldsTooLarge},
		// Events GitLab may add later are recorded as ignored, not refused.
		{name: "unknown event header", send: webhook("Rootkit Hook", push, nil),
			status: http.StatusAccepted, says: "is not known", stored: 1},
		{name: "wrong method GET", send: get("/api/webhooks/gitlab", false), status: http.StatusMethodNotAllowed},
		{name: "wrong method PUT", send: func(t *testing.T, e *env) answer {
			return e.request(http.MethodPut, "/api/webhooks/gitlab", e.mrBody, e.deliveryHeader(mrHook))
		}, status: http.StatusMethodNotAllowed},

		// Tokens and instances.
		{name: "missing token", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody },
			func(e *env, h http.Header) { h.Del("X-Gitlab-Token") }), status: http.StatusUnauthorized, says: "missing X-Gitlab-Token"},
		{name: "invalid token", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody },
			func(e *env, h http.Header) { h.Set("X-Gitlab-Token", "glpat-not-an-upbuild-token") }),
			status: http.StatusUnauthorized, says: "invalid webhook token"},
		{name: "token with one character changed", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody },
			func(e *env, h http.Header) {
				b := []byte(e.token)
				b[len(b)-2] ^= 1
				h.Set("X-Gitlab-Token", string(b))
			}), status: http.StatusUnauthorized, says: "invalid webhook token"},
		{name: "overlong token", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody },
			func(e *env, h http.Header) { h.Set("X-Gitlab-Token", e.token+strings.Repeat("A", 32<<10)) }),
			status: http.StatusUnauthorized, says: "invalid webhook token"},
		{name: "token for an instance this upbuild does not serve", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody },
			func(e *env, h http.Header) {
				other := e.issue(token.Scope{Kind: token.ScopeProject, Instance: otherInst, Path: e.project.PathWithNamespace})
				h.Set("X-Gitlab-Token", other.Token)
				h.Del("X-Gitlab-Instance")
			}), status: http.StatusUnauthorized, says: "does not serve the GitLab instance"},
		{name: "unknown X-Gitlab-Instance", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody },
			func(e *env, h http.Header) { h.Set("X-Gitlab-Instance", "https://evil.example.com") }),
			status: http.StatusUnauthorized, says: "another GitLab instance"},
		{name: "token of another project", send: webhook(mrHook, func(t *testing.T, e *env) []byte { return e.mrBody },
			func(e *env, h http.Header) {
				other := e.issue(token.Scope{Kind: token.ScopeProject, Instance: e.Instance, Path: "demo/someone-else"})
				h.Set("X-Gitlab-Token", other.Token)
			}), status: http.StatusUnauthorized, says: "another project"},

		// Valid deliveries with unusual but legal content: stored once.
		{name: "wrong Content-Type on a valid delivery", send: webhook("Push Hook", push,
			func(e *env, h http.Header) { h.Set("Content-Type", "text/plain") }), status: http.StatusAccepted, says: "accepted", stored: 1},
		{name: "invalid UTF-8 and an escaped NUL in a commit message", send: webhook("Push Hook", func(t *testing.T, e *env) []byte {
			return replaceOnce(t, e.pushBody, `"message":"change`, "\"message\":\"\xff\xfe\\u0000 \u202e change")
		}, nil), status: http.StatusAccepted, says: "accepted", stored: 1},

		// The admin API.
		{name: "deliveries without the admin token", send: get("/api/v1/deliveries", false), status: http.StatusUnauthorized, says: "admin token"},
		{name: "deliveries with a wrong admin token", send: func(t *testing.T, e *env) answer {
			return e.request(http.MethodGet, "/api/v1/deliveries", nil, http.Header{"Authorization": {"Bearer " + adminToken + "x"}})
		}, status: http.StatusUnauthorized, says: "admin token"},
		{name: "deliveries with a negative limit and a word for before", send: get("/api/v1/deliveries?limit=-5&before=x", true),
			status: http.StatusBadRequest},
		{name: "deliveries with a huge limit", send: get("/api/v1/deliveries?limit=99999999999999999999999", true),
			status: http.StatusBadRequest, says: "limit"},
		{name: "deliveries with project_id 1e400", send: get("/api/v1/deliveries?project_id=1e400", true),
			status: http.StatusBadRequest, says: "project_id"},

		// The job log and artifact API.
		{name: "artifact name with encoded path traversal", send: get("/api/v1/jobs/{job}/artifacts/..%2f..%2fetc%2fpasswd", false),
			status: http.StatusNotFound, says: "no artifact"},
		{name: "artifact name with an encoded NUL", send: get("/api/v1/jobs/{job}/artifacts/x%00.rpm", false),
			status: nulArtifact.status, says: nulArtifact.says},
		{name: "artifact name of dots", send: get("/api/v1/jobs/{job}/artifacts/..%2f..", false),
			status: http.StatusNotFound, says: "no artifact"},
		{name: "artifacts of job -1", send: get("/api/v1/jobs/-1/artifacts/x", false), status: http.StatusNotFound, says: "no such job"},
		{name: "log of job abc", send: get("/api/v1/jobs/abc/log", false), status: http.StatusNotFound, says: "no such job"},
		{name: "log of a job ID past int64", send: get("/api/v1/jobs/99999999999999999999/log", false), status: http.StatusNotFound, says: "no such job"},

		// The job page.
		{name: "job page -1", send: get("/jobs/-1", false), status: http.StatusNotFound, says: "job"},
		{name: "job page abc", send: get("/jobs/abc", false), status: http.StatusNotFound, says: "job"},
		{name: "job page with an encoded NUL", send: get("/jobs/1%00", false), status: http.StatusNotFound, says: "job"},

		// Slow and many clients.
		{name: "slowloris", send: slowloris, hangsUp: true},

		// The planner's reading of a project's config.
		// The push and the merge request are valid deliveries; the run
		// records the refusal, has no job, and the MR gets the comment.
		{name: "YAML alias bomb in .packit.yaml", send: configOf(aliasBomb), status: http.StatusAccepted,
			says: "could not use `.packit.yaml`", stored: 2, runs: 1},
		// A specfile_path that leaves the repository is refused at planning,
		// with a comment on the MR, and no job is planned.
		{name: "specfile_path outside the repository", send: configOf(strings.Replace(packitYAML,
			"specfile_path: pkg.spec", "specfile_path: ../../etc/passwd", 1)), status: http.StatusAccepted,
			says: "points outside the repository", stored: 2, runs: 1},
		{name: "1,000 parallel connections", send: thousandDeliveries, status: http.StatusAccepted,
			storedOf: func(a answer) int64 { return a.accepted }},
	}
}

// slowloris sends a delivery's headers one byte a second and reports
// whether the server hung up before they were complete.
func slowloris(t *testing.T, e *env) answer {
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type closing struct {
		said string
		err  error
	}
	closed := make(chan closing, 1)
	go func() {
		// Reads end when the server closes; the deadline only bounds a hang.
		if err := conn.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
			closed <- closing{err: err}
			return
		}
		got, err := io.ReadAll(conn)
		closed <- closing{said: string(got), err: err}
	}()
	headers := e.rawDelivery("Merge Request Hook", strings.Repeat("X-Slow: a\r\n", 10), nil)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := range len(headers) - 2 { // never the final CRLF
		select {
		case c := <-closed:
			// A reset is a hang-up too; only our own deadline means it hung.
			if ne := net.Error(nil); errors.As(c.err, &ne) && ne.Timeout() {
				t.Fatalf("the connection did not end: %v", c.err)
			}
			a := answer{closed: true, body: c.said}
			if resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(c.said)), nil); err == nil {
				a.code = resp.StatusCode
				_ = resp.Body.Close() // read from a string
			}
			return a
		case <-tick.C:
		}
		if _, err := conn.Write([]byte{headers[i]}); err != nil {
			return answer{closed: true} // the server hung up between bytes
		}
	}
	t.Fatalf("the server still listened after %d bytes of headers, one a second", len(headers)-2)
	return answer{}
}

// thousandDeliveries opens 1,000 connections at once, each with a valid
// delivery of its own. Every one must be answered, with 202 or a clean 503.
func thousandDeliveries(t *testing.T, e *env) answer {
	const n = 1000
	ctx, cancel := context.WithTimeout(e.Context(), 2*time.Minute)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	start := make(chan struct{})
	var (
		mu       sync.Mutex
		accepted int64
		problems []string
		wg       sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/api/webhooks/gitlab", bytes.NewReader(e.pushBody))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header = e.deliveryHeader("Push Hook")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("parallel-%d", i))
			<-start
			resp, err := client.Do(req)
			if err != nil {
				mu.Lock()
				problems = append(problems, err.Error())
				mu.Unlock()
				return
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				problems = append(problems, "read: "+err.Error())
			case resp.StatusCode == http.StatusAccepted && strings.Contains(string(raw), `"accepted"`):
				accepted++
			case resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(raw), `"error"`):
			default:
				problems = append(problems, fmt.Sprintf("%d %s", resp.StatusCode, raw))
			}
		})
	}
	close(start)
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("%d of %d deliveries went wrong, first: %s", len(problems), n, problems[0])
	}
	if accepted == 0 {
		t.Fatalf("none of %d valid deliveries was accepted", n)
	}
	return answer{code: http.StatusAccepted, body: fmt.Sprintf(`{"status":"accepted","count":%d}`, accepted), accepted: accepted}
}

func TestHostileInputsAreRefusedAndLeaveTheStoreAsItWas(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		inputs := hostileInputs()
		if len(inputs) < 40 {
			t.Fatalf("only %d hostile inputs; the issue asks for at least 40", len(inputs))
		}
		e := newEnv(t, dbURL)
		for _, in := range inputs {
			t.Run(in.name, func(t *testing.T) {
				before := e.counts()
				got := in.send(t, e)
				after := e.counts()

				if in.hangsUp {
					// Go's server may say 400 before it hangs up, or nothing.
					if !got.closed || (got.code != 0 && got.code != http.StatusBadRequest && got.code != http.StatusRequestTimeout) {
						t.Fatalf("answered %d %q (closed: %v); the server must hang up", got.code, got.body, got.closed)
					}
				} else if got.closed || got.code != in.status {
					t.Errorf("answered %d (closed: %v) %q, want %d", got.code, got.closed, got.body, in.status)
				}
				if !strings.Contains(got.body, in.says) {
					t.Errorf("answer %q does not say %q", got.body, in.says)
				}
				checkBody(t, e, got.body)

				stored := in.stored
				if in.storedOf != nil {
					stored = in.storedOf(got)
				}
				if d := after.deliveries - before.deliveries; d != stored {
					t.Errorf("%d deliveries stored, want %d", d, stored)
				}
				if d := after.runs - before.runs; d != in.runs {
					t.Errorf("%d runs created, want %d", d, in.runs)
				}
				if d := after.jobs - before.jobs; d != in.jobs {
					t.Errorf("%d jobs created, want %d", d, in.jobs)
				}
			})
		}
	})
}

// checkBody holds every answer to the same rules: short, no stack trace,
// no secret.
func checkBody(t *testing.T, e *env, body string) {
	t.Helper()
	if len(body) > 4<<10 {
		t.Errorf("answer of %d bytes; an error must be short", len(body))
	}
	for _, leak := range []string{"goroutine ", "panic", "runtime.", ".go:", e.token, adminToken, e.Seed.Bot.Token} {
		if strings.Contains(body, leak) {
			t.Errorf("answer %q contains %q", body, leak)
		}
	}
}

// aliasBomb is a billion-laughs .packit.yaml: nine levels of ten aliases.
var aliasBomb = func() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String() + packitYAML
}()

// configOf pushes a project with this .packit.yaml, opens a merge request
// and waits for upbuild's word on it; the answer is GitLab's view: the
// status upbuild gave the delivery and the bot's comments on the MR.
func configOf(packit string) func(t *testing.T, e *env) answer {
	return func(t *testing.T, e *env) answer {
		p, _ := e.hookedProject(fmt.Sprintf("cfg-%d", time.Now().UnixNano()),
			map[string]string{".packit.yaml": packit, "pkg.spec": "Name: pkg\nVersion: 1.0\n"})
		mr := e.openMR(p, "feature")
		var a answer
		for _, d := range e.Sim.Deliveries() {
			if d.ProjectID == p.ID && d.Event == "Merge Request Hook" {
				a.code = d.StatusCode
			}
		}
		eventually(t, e, "upbuild comments on the merge request or sets a final status", func() bool {
			var said []string
			for _, n := range e.Sim.Notes(p.ID, mr.IID) {
				if n.AuthorID == e.Seed.Bot.ID && !n.System {
					said = append(said, n.Body)
				}
			}
			for _, st := range e.Sim.Statuses(p.ID, mr.HeadSHA) {
				if st.Status != "pending" && st.Status != "running" {
					said = append(said, st.Name+": "+st.Status+": "+st.Description)
				}
			}
			a.body = strings.Join(said, "\n")
			return len(said) > 0
		})
		return a
	}
}
