package joblog_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

type event struct {
	id, name, data string
}

// subscribe opens the log stream and delivers its events on a channel,
// which is closed when the stream ends.
func subscribe(t *testing.T, ctx context.Context, url string, header http.Header) <-chan event {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan event)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev event
		var data []string
		for sc.Scan() {
			field, value, _ := strings.Cut(sc.Text(), ": ")
			switch field {
			case "id":
				ev.id = value
			case "event":
				ev.name = value
			case "data":
				data = append(data, value)
			case "":
				if data != nil {
					ev.data = strings.Join(data, "\n")
					select {
					case events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev, data = event{}, nil
			}
		}
	}()
	return events
}

// next waits for the next event; ctx guards against a stream that hangs.
func next(t *testing.T, ctx context.Context, events <-chan event) event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended early")
		}
		return ev
	case <-ctx.Done():
		t.Fatal("no event before the test's deadline")
	}
	return event{}
}

func TestStreamSendsEarlyAndLaterLinesThenEnd(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st := openStore(t, dbURL)
		// The writer is a separate Logs, as on a worker in another process:
		// the stream must find its lines by polling the database.
		worker := joblog.NewLogs(st, joblog.Options{FlushInterval: 10 * time.Millisecond})
		srv := server(t, st, joblog.NewLogs(st, joblog.Options{}), nil)
		job := newJob(t, st, "public")
		setState(t, st, job, store.JobRunning)

		w := worker.Writer(ctx, job)
		if _, err := io.WriteString(w, "early 1\nearly 2\n"); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("%s/api/v1/jobs/%d/log/stream", srv.URL, job)
		events := subscribe(t, ctx, url, nil)
		for i, want := range []string{"early 1", "early 2"} {
			if ev := next(t, ctx, events); ev.data != want || ev.id != fmt.Sprint(i+1) || ev.name != "" {
				t.Fatalf("event %d: %+v, want line %q", i, ev, want)
			}
		}
		// Later lines arrive while the client stays connected; a CR inside a
		// line reaches the client as a line break.
		if _, err := io.WriteString(w, "later 3\n50%\r100%\n"); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, ctx, events); ev.data != "later 3" || ev.id != "3" {
			t.Fatalf("later event: %+v", ev)
		}
		if ev := next(t, ctx, events); ev.data != "50%\n100%" || ev.id != "4" {
			t.Fatalf("event with a CR: %+v", ev)
		}
		if _, err := io.WriteString(w, "last words"); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// What the job is doing reaches the page as it changes.
		if err := st.SetJobDescription(ctx, job, "Building on fedora-rawhide-x86_64"); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, ctx, events); ev.data != "last words" {
			t.Fatalf("last line: %+v", ev)
		}
		if ev := next(t, ctx, events); ev.name != "status" || ev.data != `{"state":"running","description":"Building on fedora-rawhide-x86_64"}` {
			t.Fatalf("after the description changed: %+v, want event status", ev)
		}
		setState(t, st, job, store.JobFailed)
		if ev := next(t, ctx, events); ev.name != "status" || ev.data != `{"state":"failed","description":"failed"}` {
			t.Fatalf("after the job went final: %+v, want event status", ev)
		}
		if ev := next(t, ctx, events); ev.name != "end" || ev.data != store.JobFailed {
			t.Fatalf("after the job went final: %+v, want event end", ev)
		}
		if ev, ok := <-events; ok {
			t.Fatalf("event after end: %+v", ev)
		}

		// A reconnecting EventSource resumes after the last ID it saw.
		resumed := subscribe(t, ctx, url, http.Header{"Last-Event-Id": {"3"}})
		var got []string
		for ev := range resumed {
			got = append(got, ev.name+":"+ev.data)
		}
		if want := []string{":50%\n100%", ":last words", "end:failed"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("resumed after 3: %q, want %q", got, want)
		}
	})
}
