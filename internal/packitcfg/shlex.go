package packitcfg

import (
	"errors"
	"strings"
)

var (
	errNoClosingQuote = errors.New("no closing quotation")
	errNoEscapedChar  = errors.New("no escaped character")
)

// shellSplit splits a command line like Python's shlex.split (POSIX mode,
// no comments), which is how Packit turns a string action into an argv:
// whitespace separates words, single quotes keep everything literally,
// double quotes allow backslash escapes of `"` and `\` only, and outside
// quotes a backslash escapes any character.
func shellSplit(s string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	const (
		plainState = iota
		singleState
		doubleState
	)
	state := plainState
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		c := runes[i]
		switch state {
		case plainState:
			switch {
			case c == ' ' || c == '\t' || c == '\n' || c == '\r':
				if inWord {
					words = append(words, word.String())
					word.Reset()
					inWord = false
				}
			case c == '\'':
				state, inWord = singleState, true
			case c == '"':
				state, inWord = doubleState, true
			case c == '\\':
				if i+1 >= len(runes) {
					return nil, errNoEscapedChar
				}
				i++
				word.WriteRune(runes[i])
				inWord = true
			default:
				word.WriteRune(c)
				inWord = true
			}
		case singleState:
			if c == '\'' {
				state = plainState
			} else {
				word.WriteRune(c)
			}
		case doubleState:
			switch {
			case c == '"':
				state = plainState
			case c == '\\' && i+1 < len(runes) && (runes[i+1] == '"' || runes[i+1] == '\\'):
				i++
				word.WriteRune(runes[i])
			default:
				word.WriteRune(c)
			}
		}
	}
	if state != plainState {
		return nil, errNoClosingQuote
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
