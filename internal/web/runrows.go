package web

import (
	"html/template"
	"strconv"
	"strings"
	"time"
)

// runRowsHTML writes the run table's rows (home and project pages). Like
// jobRows it escapes each value in one pass instead of through
// html/template's reflective calls, which were a sixth of the dashboard's
// CPU under load; the test compares it with the "runrow" template byte for
// byte, hostile values included.
func runRowsHTML(rows []runRow) template.HTML {
	now := time.Now()
	var b strings.Builder
	b.Grow(len(rows) * 600)
	for _, row := range rows {
		r := row.Run
		id := strconv.FormatInt(r.ID, 10)
		b.WriteString("<tr>\n<td><a href=\"/runs/")
		b.WriteString(id)
		b.WriteString(`">#`)
		b.WriteString(id)
		b.WriteString("</a></td>\n<td><a href=\"")
		writeURLStart(&b, projectURL(r))
		b.WriteString(`">`)
		b.WriteString(markupEscaper.Replace(r.ProjectPath))
		b.WriteString("</a></td>\n<td>")
		b.WriteString(markupEscaper.Replace(r.Trigger))
		b.WriteString("</td>\n<td>")
		if r.MRIID != 0 {
			iid := strconv.FormatInt(r.MRIID, 10)
			b.WriteString(`<a href="`)
			writeURLStart(&b, r.Instance)
			b.WriteString("/")
			writeURLPart(&b, r.ProjectPath)
			b.WriteString("/-/merge_requests/")
			b.WriteString(iid)
			b.WriteString(`" rel="noreferrer">!`)
			b.WriteString(iid)
			b.WriteString("</a> ")
			b.WriteString(markupEscaper.Replace(r.Title))
		} else {
			b.WriteString(markupEscaper.Replace(r.Ref))
		}
		b.WriteString("</td>\n<td><code>")
		b.WriteString(markupEscaper.Replace(shortSHA12(r.SHA)))
		b.WriteString("</code></td>\n<td><span class=\"state ")
		b.WriteString(markupEscaper.Replace(row.Glance.Class))
		b.WriteString(`">`)
		b.WriteString(markupEscaper.Replace(row.Glance.Class))
		b.WriteString(`</span> <span class="muted">`)
		b.WriteString(markupEscaper.Replace(row.Glance.Detail))
		b.WriteString("</span></td>\n<td title=\"")
		b.WriteString(markupEscaper.Replace(when(r.CreatedAt)))
		b.WriteString(`">`)
		b.WriteString(markupEscaper.Replace(age(now.Sub(r.CreatedAt))))
		b.WriteString("</td>\n</tr>")
	}
	return template.HTML(b.String()) //nolint:gosec // every value above is escaped
}

// writeURLStart writes a value that begins a URL attribute as
// html/template does: a scheme other than http, https or mailto becomes
// "#ZgotmplZ", then the value is normalised and escaped like any part.
func writeURLStart(b *strings.Builder, s string) {
	if scheme, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(scheme, "/") &&
		!strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") && !strings.EqualFold(scheme, "mailto") {
		s = "#ZgotmplZ"
	}
	writeURLPart(b, s)
}

// writeURLPart writes a value inside a quoted URL attribute as
// html/template does: bytes outside RFC 3986's unreserved and reserved
// sets (and ' ( ), which it also encodes) are percent-encoded, valid
// existing escapes are kept, and what is left is HTML-escaped.
func writeURLPart(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	var norm strings.Builder
	norm.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("!#$&*+,/:;=?@[]-._~", c) >= 0,
			c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			norm.WriteByte(c)
		default:
			norm.WriteByte('%')
			norm.WriteByte(hex[c>>4])
			norm.WriteByte(hex[c&15])
		}
	}
	b.WriteString(markupEscaper.Replace(norm.String()))
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// shortSHA12 is the "short" template function: the first 12 characters.
func shortSHA12(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
