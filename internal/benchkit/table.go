package benchkit

import (
	"fmt"
	"io"
	"strings"
)

// Column is one column of a Markdown table.
type Column struct {
	Heading string
	// Numeric columns are right-aligned, so figures line up when rendered.
	Numeric bool
}

// WriteTable writes a Markdown table, ready to paste into
// docs/PERFORMANCE.md. A row with fewer cells than columns is padded with
// empty cells; a "|" in a cell is escaped so it cannot split the cell.
func WriteTable(w io.Writer, columns []Column, rows [][]string) error {
	var b strings.Builder
	writeRow := func(cells []string) {
		b.WriteString("|")
		for i := range columns {
			cell := ""
			if i < len(cells) {
				cell = strings.ReplaceAll(cells[i], "|", `\|`)
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	headings := make([]string, len(columns))
	for i, c := range columns {
		headings[i] = c.Heading
	}
	writeRow(headings)
	b.WriteString("|")
	for _, c := range columns {
		if c.Numeric {
			b.WriteString("--:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, row := range rows {
		if len(row) > len(columns) {
			return fmt.Errorf("table row %q has %d cells for %d columns", row[0], len(row), len(columns))
		}
		writeRow(row)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
