package specedit

import (
	"regexp"
	"strconv"
	"strings"
)

// Header is the main package's Name, Epoch, Version and Release as
// `rpmspec -q --srpm --define 'dist %{nil}'` prints them, Epoch "" when
// the spec has none.
type Header struct {
	Name, Epoch, Version, Release string
}

// LiteralHeader reads the main package's Name, Epoch, Version and Release
// from the spec's text when rpm's answer cannot depend on anything but that
// text, and reports false otherwise. Asking rpmspec costs a sandbox and an
// rpm start (about 15 ms a job); most specs state these four tags plainly.
//
// The rule is strict, so that for a spec rpm accepts a true answer is
// always rpmspec's answer with an empty dist (a spec rpm rejects is not
// always refused here; rpmbuild then reports it):
//   - no line of the main preamble starts with '%' (no %global, %define,
//     %if or %include that could define a macro or hide a tag);
//   - every '%' in the preamble starts one of a few macros without side
//     effects: %{name}, %{version}, %{release}, %{epoch}, %{url},
//     %{summary}, %{?dist} (empty here), or "%%";
//   - Name, Version and Release appear once each, Epoch at most once, none
//     with a qualifier, and no obsolete Serial tag;
//   - they start their line, and their values are plain rpm words: no
//     macro but %{?dist}, no space, no "..", an Epoch that is a number
//     (given back as rpm prints it: "02" is 2).
//
// Anything else, including a Windows line ending or a line continuation,
// is left to rpmspec.
func LiteralHeader(text string) (Header, bool) {
	s := parse(text)
	found := map[string]string{}
	for i, l := range s.lines {
		if s.sections[i] != preambleSection {
			break
		}
		if l.cr || strings.HasSuffix(l.text, `\`) || strings.HasPrefix(strings.TrimLeft(l.text, " \t"), "%") {
			return Header{}, false
		}
		if !harmlessMacros(l.text) {
			return Header{}, false
		}
		m := tagLine.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		name := strings.ToLower(m[2])
		switch name {
		case "name", "epoch", "version", "release", "serial":
		default:
			continue
		}
		if _, twice := found[name]; twice || name == "serial" || strings.Contains(m[1], "(") || m[1][0] == ' ' || m[1][0] == '\t' {
			return Header{}, false
		}
		found[name] = m[3]
	}
	h := Header{
		Name:    found["name"],
		Epoch:   found["epoch"],
		Version: found["version"],
		Release: strings.ReplaceAll(found["release"], optionalDist, ""),
	}
	if !rpmName.MatchString(h.Name) || !rpmWord.MatchString(h.Version) || !rpmWord.MatchString(h.Release) ||
		strings.Contains(h.Name+h.Version+h.Release, "..") {
		return Header{}, false
	}
	if hasTag(found, "epoch") {
		if !epochNumber.MatchString(h.Epoch) {
			return Header{}, false
		}
		n, err := strconv.ParseUint(h.Epoch, 10, 32)
		if err != nil {
			return Header{}, false
		}
		h.Epoch = strconv.FormatUint(n, 10)
	}
	return h, true
}

func hasTag(found map[string]string, name string) bool {
	_, ok := found[name]
	return ok
}

var (
	rpmName     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)
	rpmWord     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+~^]*$`)
	epochNumber = regexp.MustCompile(`^[0-9]+$`)
)

// harmlessMacroNames are the macros a preamble line may use without making
// LiteralHeader refuse: they expand to other tags' values, or to nothing.
var harmlessMacroNames = []string{
	"%{name}", "%{version}", "%{release}", "%{epoch}", "%{url}", "%{summary}", optionalDist,
	"%name", "%version", "%release",
}

// harmlessMacros reports whether every '%' in the line starts "%%" or one
// of harmlessMacroNames (a bare name not followed by more of a name).
func harmlessMacros(text string) bool {
	for i := 0; i < len(text); i++ {
		if text[i] != '%' {
			continue
		}
		if strings.HasPrefix(text[i:], "%%") {
			i++
			continue
		}
		ok := false
		for _, m := range harmlessMacroNames {
			if !strings.HasPrefix(text[i:], m) {
				continue
			}
			end := i + len(m)
			if !strings.HasSuffix(m, "}") && end < len(text) && macroNameChar(text[end]) {
				continue // %versionfoo is another macro
			}
			ok = true
			i = end - 1
			break
		}
		if !ok {
			return false
		}
	}
	return true
}

func macroNameChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
