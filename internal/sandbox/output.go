package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxLine is the longest piece delivered in one Write; longer lines are split.
const maxLine = 64 << 10

// TruncationMarker is the line written to Cmd.Output when the output limit
// is reached.
func TruncationMarker(limit int64) string {
	return fmt.Sprintf("[output truncated after %d bytes]", limit)
}

// outputResult is what pumpOutput saw.
type outputResult struct {
	truncated bool
	writeErr  error  // the first error from the caller's writer
	tail      []byte // the last bytes read, for setup error messages
	lastByte  byte   // to start markers on a fresh line
	written   int64  // bytes delivered
}

// pumpOutput copies r to w one line per Write, up to limit bytes. When the
// limit is reached it writes the truncation marker, calls exceeded and stops
// reading (the caller kills the tree). A failing writer does not stop the
// reading, so the command never blocks on a full pipe because of it.
func pumpOutput(r io.Reader, w io.Writer, limit int64, exceeded func()) outputResult {
	var res outputResult
	br := bufio.NewReaderSize(r, maxLine)
	deliver := func(p []byte) {
		if len(p) == 0 {
			return
		}
		res.written += int64(len(p))
		res.lastByte = p[len(p)-1]
		res.tail = append(res.tail, p...)
		if len(res.tail) > 1024 {
			res.tail = res.tail[len(res.tail)-1024:]
		}
		if res.writeErr != nil {
			return
		}
		if _, err := w.Write(p); err != nil {
			res.writeErr = err
		}
	}
	for {
		chunk, err := br.ReadSlice('\n')
		if room := limit - res.written; int64(len(chunk)) > room {
			deliver(chunk[:room])
			res.truncated = true
			writeMarker(w, &res, TruncationMarker(limit))
			exceeded()
			return res
		}
		deliver(chunk)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return res // EOF, or the read end closed after the run
		}
	}
}

// writeMarker writes an upbuild line into the command's output, on a line
// of its own.
func writeMarker(w io.Writer, res *outputResult, marker string) {
	if res.written > 0 && res.lastByte != '\n' {
		marker = "\n" + marker
	}
	if res.writeErr != nil {
		return
	}
	if _, err := io.WriteString(w, marker+"\n"); err != nil {
		res.writeErr = err
	}
	res.lastByte = '\n'
}
