package benchkit

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
)

// CommandLine is the command that repeats a run: program followed by every
// flag of fs spelled out, so a report says exactly what was measured. The
// flags named in urlFlags hold URLs whose passwords are hidden. A string
// flag left at an empty default is left out.
func CommandLine(fs *flag.FlagSet, program string, urlFlags ...string) string {
	parts := []string{program}
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if v == "" && f.DefValue == "" {
			return
		}
		for _, name := range urlFlags {
			if f.Name == name && v != "" {
				v = RedactURL(v)
			}
		}
		if v == "" || strings.ContainsAny(v, " ?&'\"$") {
			v = "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
		}
		parts = append(parts, "-"+f.Name+"="+v)
	})
	return strings.Join(parts, " ")
}

// RedactURL hides the password of a database URL.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// TempDir makes a temporary directory for one run's data and logs; remove
// deletes it with all it holds.
func TempDir(prefix string) (dir string, remove func() error, err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, fmt.Errorf("temporary directory: %w", err)
	}
	return dir, func() error {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		return nil
	}, nil
}

// LoadAverage is the machine's one-minute load average, or "?" where it
// cannot be read. Reports print it because other work on a shared machine
// skews latencies.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if fields := strings.Fields(string(b)); len(fields) > 0 {
		return fields[0]
	}
	return "?"
}

// StartCPUProfile profiles this process's CPU into the file at path until
// stop is called. An empty path profiles nothing.
func StartCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("cpu profile: %w", err), f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
