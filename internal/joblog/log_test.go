package joblog_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/testdb"
)

// writeInChunks writes data in pieces of random sizes up to maxChunk, so
// that lines are split at arbitrary places across writes.
func writeInChunks(t *testing.T, w io.Writer, data string, maxChunk int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	for len(data) > 0 {
		n := min(1+rng.IntN(maxChunk), len(data))
		if _, err := w.Write([]byte(data[:n])); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

func allLines(t *testing.T, logs *joblog.Logs, jobID int64) []string {
	t.Helper()
	var out []string
	var after int64
	for {
		lines, err := logs.Lines(context.Background(), jobID, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range lines {
			if ln.Seq != after+1 {
				t.Fatalf("line after %d has seq %d", after, ln.Seq)
			}
			after = ln.Seq
			out = append(out, ln.Text)
		}
		if len(lines) < 100 {
			return out
		}
	}
}

func TestLinesSplitAcrossWritesComeBackExactlyInOrder(t *testing.T) {
	var want []string
	for i := range 300 {
		switch i % 5 {
		case 0:
			want = append(want, "")
		case 1:
			want = append(want, fmt.Sprintf("line %d: Übersetzung 构建 ✓", i))
		default:
			want = append(want, fmt.Sprintf("+ rpmbuild -bs step %d %s", i, strings.Repeat("x", i)))
		}
	}
	want = append(want, "last line without a newline")
	input := strings.Join(want, "\n")
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := openStore(t, dbURL)
		logs := joblog.NewLogs(st, joblog.Options{})
		srv := server(t, st, logs, nil)
		for i, maxChunk := range []int{1, 7, 100, 5000} {
			job := newJob(t, st, "public")
			w := logs.Writer(context.Background(), job)
			writeInChunks(t, w, input, maxChunk, uint64(i))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := allLines(t, logs, job)
			if strings.Join(got, "\n") != input {
				t.Fatalf("chunks up to %d bytes: %d lines came back, want %d; first difference at %d",
					maxChunk, len(got), len(want), firstDifference(got, want))
			}
			resp, body := get(t, fmt.Sprintf("%s/api/v1/jobs/%d/log", srv.URL, job), "")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || body != input+"\n" {
				t.Fatalf("GET log: %d %s, body of %d bytes, want %d", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(input)+1)
			}
		}
	})
}

func firstDifference(got, want []string) int {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return i
		}
	}
	return min(len(got), len(want))
}

func TestLinesAreCleanedAndCapped(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := openStore(t, dbURL)
		logs := joblog.NewLogs(st, joblog.Options{MaxLineBytes: 20})
		job := newJob(t, st, "public")
		w := logs.Writer(context.Background(), job)
		input := "bad \xff\xfe bytes\r\n" + "nul\x00byte\n" + strings.Repeat("long", 20) + "\n" + "after\n"
		writeInChunks(t, w, input, 3, 1)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want := []string{"bad \uFFFD bytes", "nul\uFFFDbyte", strings.Repeat("long", 5) + joblog.LineTruncatedSuffix, "after"}
		if got := allLines(t, logs, job); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("stored %q, want %q", got, want)
		}
	})
}

// TestTerminalControlsAreShownNotObeyed covers output meant for the
// terminal of whoever reads the log with curl: an OSC 52 clipboard write,
// a screen clear and a C1 CSI come back as visible pictures, while tabs and
// a carriage return inside a line (progress output) stay.
func TestTerminalControlsAreShownNotObeyed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := openStore(t, dbURL)
		logs := joblog.NewLogs(st, joblog.Options{})
		job := newJob(t, st, "public")
		w := logs.Writer(context.Background(), job)
		if _, err := io.WriteString(w, "\x1b]52;c;ZXZpbA==\x07copied\x1b[2J\x7f\u009b1m\tcol\r50%\n"); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want := "\u241b]52;c;ZXZpbA==\u2407copied\u241b[2J\u2421\uFFFD1m\tcol\r50%"
		if got := allLines(t, logs, job); len(got) != 1 || got[0] != want {
			t.Fatalf("stored %q, want %q", got, want)
		}
	})
}

func TestLogStopsAtTheCapWithOneMarker(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := openStore(t, dbURL)
		const maxBytes = 1000
		logs := joblog.NewLogs(st, joblog.Options{MaxBytes: maxBytes, FlushLines: 8})
		job := newJob(t, st, "public")
		line := "0123456789 abcdefghijklmnopqrstuvwxyz\n"
		w := logs.Writer(context.Background(), job)
		writeInChunks(t, w, strings.Repeat(line, 2*maxBytes/len(line)+1), 50, 2)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// A second writer (a retried job) adds nothing past the cap either.
		again := logs.Writer(context.Background(), job)
		if _, err := io.WriteString(again, "more\nand more\n"); err != nil {
			t.Fatal(err)
		}
		if err := again.Close(); err != nil {
			t.Fatal(err)
		}
		got := allLines(t, logs, job)
		marker := joblog.TruncatedMarker(maxBytes)
		if len(got) == 0 || got[len(got)-1] != marker {
			t.Fatalf("last stored line %q, want the marker %q", got[len(got)-1:], marker)
		}
		stored := 0
		for _, ln := range got[:len(got)-1] {
			if ln+"\n" != line {
				t.Fatalf("stored line %q is not one that was written", ln)
			}
			stored += len(ln) + 1
		}
		if stored > maxBytes || stored+len(line) <= maxBytes {
			t.Fatalf("stored %d bytes before the marker, want the most whole lines within %d", stored, maxBytes)
		}
		if strings.Count(strings.Join(got, "\n"), "[log truncated") != 1 {
			t.Fatalf("the marker appears more than once: %q", got)
		}
	})
}
