package packitcfg

import (
	"errors"
	"fmt"
	"sort"
)

// Error is one problem in a config file, with the position of the key or
// value at fault. Line and Column are 1-based; 0 means unknown.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// ErrTooLarge is wrapped by the error Load returns for a file over the size limit.
var ErrTooLarge = errors.New("config file too large")

// Errors returns every *Error held in err, which may be a single *Error or
// the joined errors that Load returns.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ce, ok := e.(*Error); ok {
			out = append(out, ce)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
			return
		}
		if ce := new(Error); errors.As(e, &ce) {
			out = append(out, ce)
		}
	}
	walk(err)
	return out
}

// problems collects errors and warnings while a file is loaded.
type problems struct {
	file     string
	errs     []*Error
	seen     map[string]bool
	warnings []string
	warned   map[string]bool
}

func newProblems(file string) *problems {
	return &problems{file: file, seen: map[string]bool{}, warned: map[string]bool{}}
}

// errorf records an error at n. An inherited value is checked once per job
// that inherits it, so identical reports are kept only once.
func (p *problems) errorf(n *node, format string, args ...any) {
	e := &Error{File: p.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.line, n.column
	}
	key := e.Error()
	if p.seen[key] || len(p.errs) > maxErrors {
		return
	}
	p.seen[key] = true
	if len(p.errs) == maxErrors {
		e = &Error{File: p.file, Line: e.Line, Column: e.Column, Msg: "too many errors; stopping here"}
	}
	p.errs = append(p.errs, e)
}

// maxErrors caps the report: past it, one last error says the list stops.
const maxErrors = 50

func (p *problems) warnf(n *node, format string, args ...any) {
	e := &Error{File: p.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.line, n.column
	}
	w := e.Error()
	if p.warned[w] {
		return
	}
	p.warned[w] = true
	p.warnings = append(p.warnings, w)
}

// err returns the recorded errors in file order, joined, or nil.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	sort.SliceStable(p.errs, func(i, j int) bool {
		a, b := p.errs[i], p.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}
