package command

import "strings"

// markdown tracks, line by line, whether a comment is inside Markdown that
// must not trigger a command: a fenced code block or a GitLab >>> quote.
type markdown struct {
	fenceChar byte // '`' or '~' while inside a fenced code block
	fenceLen  int  // length of the opening fence; 0 outside a block
	inQuote   bool // inside a >>> ... >>> multi-line quote
}

// skip takes the next line, trimmed, and reports whether it is code, a fence,
// or inside a >>> quote. A fence that is never closed runs to the end of the
// comment, as in CommonMark. A one-line quote needs no rule: its first word
// starts with ">", so it is never a prefix.
func (m *markdown) skip(line string) bool {
	switch {
	case m.fenceLen > 0:
		if closesFence(line, m.fenceChar, m.fenceLen) {
			m.fenceLen = 0
		}
		return true
	case m.inQuote:
		if line == ">>>" {
			m.inQuote = false
		}
		return true
	}
	if char, n, ok := opensFence(line); ok {
		m.fenceChar, m.fenceLen = char, n
		return true
	}
	if line == ">>>" {
		m.inQuote = true
		return true
	}
	return false
}

// opensFence reports whether line opens a fenced code block: three or more
// backticks or tildes, then an info string, which after backticks may not
// hold a backtick (```a``` is inline code, not a fence).
func opensFence(line string) (char byte, n int, ok bool) {
	if line == "" || (line[0] != '`' && line[0] != '~') {
		return 0, 0, false
	}
	char = line[0]
	n = runLength(line, char)
	if n < 3 || (char == '`' && strings.IndexByte(line[n:], '`') >= 0) {
		return 0, 0, false
	}
	return char, n, true
}

// closesFence reports whether line closes a block opened by n chars: the same
// character, at least as many times, and nothing else.
func closesFence(line string, char byte, n int) bool {
	run := runLength(line, char)
	return run >= n && run == len(line)
}

func runLength(s string, c byte) int {
	n := 0
	for n < len(s) && s[n] == c {
		n++
	}
	return n
}
