package benchkit_test

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/benchkit"
)

func TestWriteTableIsMarkdown(t *testing.T) {
	columns := []benchkit.Column{{Heading: "page"}, {Heading: "requests", Numeric: true}, {Heading: "p95 ms", Numeric: true}, {Heading: "verdict"}}
	rows := [][]string{
		{"home", "20", "19.0", "yes"},
		{"a|b", "1", "150.0"},
	}
	var out strings.Builder
	if err := benchkit.WriteTable(&out, columns, rows); err != nil {
		t.Fatal(err)
	}
	want := "| page | requests | p95 ms | verdict |\n" +
		"|---|--:|--:|---|\n" +
		"| home | 20 | 19.0 | yes |\n" +
		`| a\|b | 1 | 150.0 |  |` + "\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestWriteTableRefusesAnOverlongRow(t *testing.T) {
	var out strings.Builder
	err := benchkit.WriteTable(&out, []benchkit.Column{{Heading: "page"}}, [][]string{{"home", "20"}})
	if err == nil || !strings.Contains(err.Error(), "2 cells for 1 columns") {
		t.Errorf("err = %v, want a complaint about 2 cells for 1 column", err)
	}
	if out.Len() != 0 {
		t.Errorf("wrote %q before refusing", out.String())
	}
}

func TestCommandLineRepeatsTheRunWithoutPasswords(t *testing.T) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Duration("duration", 0, "")
	fs.String("database", "", "")
	fs.String("cpuprofile", "", "")
	fs.String("fixtures", "testdata/hooks", "")
	if err := fs.Parse([]string{"-duration=5s", "-database=postgres://bench:s3cret@127.0.0.1:5432/postgres?sslmode=disable", "-fixtures="}); err != nil {
		t.Fatal(err)
	}
	got := benchkit.CommandLine(fs, "go run ./bench/x", "database")
	want := "go run ./bench/x -database='postgres://bench:xxxxx@127.0.0.1:5432/postgres?sslmode=disable' -duration=5s -fixtures=''"
	if got != want {
		t.Errorf("CommandLine =\n%s\nwant\n%s", got, want)
	}
}

func TestTempDirIsRemovedWithItsFiles(t *testing.T) {
	dir, remove, err := benchkit.TempDir("benchkit-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "upbuild.log"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still there after remove (stat: %v)", dir, err)
	}
}
