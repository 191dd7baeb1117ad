package web

import (
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/store"
)

// Chart geometry, in SVG user units. Each day is one column.
const (
	chartDays   = 90
	dayWidth    = 6
	chartHeight = 80
	chartLeft   = 48 // room for the axis labels
	chartWidth  = chartLeft + chartDays*dayWidth
	maxJobCards = 12 // charts per project page; the rest are in the API
)

// bar is one rectangle of a chart.
type bar struct {
	X, Y, W, H int
	Class      string
	Title      string // shown on hover, as an SVG <title>
}

// chart is everything an SVG chart template draws.
type chart struct {
	Title  string
	Width  int
	Height int
	Left   int
	Top    string // label at the top of the y axis
	Bars   []bar
	// Line is a polyline's points ("x,y x,y"), for the pass rate.
	Line string
}

// Marks are the chart's bars and pass-rate line as SVG markup, for the
// "chart" template to write with {{.Marks}} instead of ranging over Bars.
// A project page draws up to 13 charts of 90 bars; html/template escapes
// every attribute of every bar through a reflective call, which made the
// charts most of the page's CPU time under load (see docs/PERFORMANCE.md).
// Here each value is escaped as html/template would, in one pass.
func (c chart) Marks() template.HTML {
	var b strings.Builder
	b.Grow(len(c.Bars) * 160)
	for _, r := range c.Bars {
		b.WriteString(`<rect class="`)
		b.WriteString(markupEscaper.Replace(r.Class))
		for _, a := range [...]struct {
			name string
			v    int
		}{{`" x="`, r.X}, {`" y="`, r.Y}, {`" width="`, r.W}, {`" height="`, r.H}} {
			b.WriteString(a.name)
			b.WriteString(strconv.Itoa(a.v))
		}
		b.WriteString(`"><title>`)
		b.WriteString(markupEscaper.Replace(r.Title))
		b.WriteString("</title></rect>\n")
	}
	if c.Line != "" {
		b.WriteString(`<polyline class="rate" points="`)
		b.WriteString(markupEscaper.Replace(c.Line))
		b.WriteString(`"/>`)
	}
	return template.HTML(b.String()) //nolint:gosec // every value above is escaped
}

// markupEscaper escapes text and quoted attribute values the way
// html/template does, so Marks writes what the template would.
var markupEscaper = strings.NewReplacer("\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;")

// dayIndex places a day in the chart window that ends today, or -1.
func dayIndex(first, day time.Time) int {
	i := int(day.Sub(first).Hours() / 24)
	if i < 0 || i >= chartDays {
		return -1
	}
	return i
}

// windowStart is midnight UTC of the first day shown.
func windowStart(now time.Time) time.Time {
	today := now.UTC().Truncate(24 * time.Hour)
	return today.AddDate(0, 0, -(chartDays - 1))
}

// jobCharts draws, per job name, its mean run time per day as bars and its
// pass rate per day as a line (0 at the bottom, 100 % at the top).
func jobCharts(days []store.JobDay, now time.Time) []chart {
	first := windowStart(now)
	byName := map[string][]store.JobDay{}
	var names []string
	for _, d := range days {
		if _, ok := byName[d.StatusName]; !ok {
			names = append(names, d.StatusName)
		}
		byName[d.StatusName] = append(byName[d.StatusName], d)
	}
	slices.Sort(names)
	if len(names) > maxJobCards {
		names = names[:maxJobCards]
	}
	out := make([]chart, 0, len(names))
	for _, name := range names {
		var longest time.Duration
		for _, d := range byName[name] {
			if d.Timed > 0 {
				longest = max(longest, d.TotalRun/time.Duration(d.Timed))
			}
		}
		c := chart{Title: name, Width: chartWidth, Height: chartHeight, Left: chartLeft, Top: roundDuration(longest)}
		var points []byte
		for _, d := range byName[name] {
			i := dayIndex(first, d.Day)
			if i < 0 {
				continue
			}
			x := chartLeft + i*dayWidth
			rate := 0
			if d.Finished > 0 {
				rate = 100 * d.Passed / d.Finished
			}
			title := fmt.Sprintf("%s: %d of %d passed", d.Day.Format("2006-01-02"), d.Passed, d.Finished)
			if d.Timed > 0 && longest > 0 {
				mean := d.TotalRun / time.Duration(d.Timed)
				h := max(1, int(int64(chartHeight)*int64(mean)/int64(longest)))
				title += ", mean run time " + roundDuration(mean)
				c.Bars = append(c.Bars, bar{X: x, Y: chartHeight - h, W: dayWidth - 1, H: h, Class: "duration", Title: title})
			} else {
				c.Bars = append(c.Bars, bar{X: x, Y: chartHeight - 1, W: dayWidth - 1, H: 1, Class: "duration", Title: title})
			}
			points = fmt.Appendf(points, "%d,%d ", x+dayWidth/2, chartHeight-chartHeight*rate/100)
		}
		c.Line = string(points)
		out = append(out, c)
	}
	return out
}

// deliveryChart draws stored deliveries per day, accepted ones stacked
// under ignored ones.
func deliveryChart(days []store.DeliveryDay, now time.Time) chart {
	first := windowStart(now)
	most := 0
	for _, d := range days {
		most = max(most, d.Accepted+d.Ignored)
	}
	c := chart{Title: "Webhook deliveries per day", Width: chartWidth, Height: chartHeight, Left: chartLeft,
		Top: fmt.Sprint(most)}
	if most == 0 {
		return c
	}
	for _, d := range days {
		i := dayIndex(first, d.Day)
		if i < 0 {
			continue
		}
		x := chartLeft + i*dayWidth
		title := fmt.Sprintf("%s: %d accepted, %d ignored", d.Day.Format("2006-01-02"), d.Accepted, d.Ignored)
		accepted := chartHeight * d.Accepted / most
		ignored := chartHeight * d.Ignored / most
		if accepted > 0 {
			c.Bars = append(c.Bars, bar{X: x, Y: chartHeight - accepted, W: dayWidth - 1, H: accepted, Class: "accepted", Title: title})
		}
		if ignored > 0 {
			c.Bars = append(c.Bars, bar{X: x, Y: chartHeight - accepted - ignored, W: dayWidth - 1, H: ignored, Class: "ignored", Title: title})
		}
	}
	return c
}

// roundDuration prints a duration to a sensible precision for a label.
func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}
