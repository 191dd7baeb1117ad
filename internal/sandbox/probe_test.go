package sandbox_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The test binary doubles as the escape probe: with probeEnv=1 in its
// environment, TestMain runs a probe instead of the tests. Each probe exits 0
// when the escape worked and 1 when it did not.
const probeEnv = "UPBUILD_SANDBOX_PROBE"

func runProbe(args []string) int {
	if len(args) == 0 {
		fmt.Println("probe: no mode")
		return 2
	}
	err := probe(args[0], args[1:])
	if err != nil {
		fmt.Println("probe failed:", err)
		return 1
	}
	fmt.Println("probe succeeded")
	return 0
}

func probe(mode string, args []string) error {
	switch mode {
	case "write": // write PATH
		return os.WriteFile(args[0], []byte("escaped\n"), 0o644)
	case "change": // change PATH: make the file writable and append to it
		if err := os.Chmod(args[0], 0o644); err != nil {
			return err
		}
		f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteString("escaped\n"); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case "read": // read PATH CANARY
		data, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), args[1]) {
			return errors.New("canary not in file")
		}
		return nil
	case "env": // env NAME CANARY: in our environment or any visible process's
		if os.Getenv(args[0]) == args[1] {
			return nil
		}
		environs, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, path := range environs {
			if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), args[1]) {
				return nil
			}
		}
		return errors.New("canary not in any visible environment")
	case "connect": // connect ADDR
		conn, err := net.DialTimeout("tcp", args[0], 2*time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	case "spawn": // spawn N: hold N sleeping children at once
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		var children []*exec.Cmd
		defer func() {
			for _, c := range children {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}()
		for len(children) < n {
			c := exec.Command("sleep", "60")
			if err := c.Start(); err != nil {
				return fmt.Errorf("after %d children: %w", len(children), err)
			}
			children = append(children, c)
		}
		return nil
	case "detach": // detach: start a sleeper in its own session, print its PID, sleep
		c := exec.Command("sleep", "300")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			return err
		}
		fmt.Println("child", c.Process.Pid)
		time.Sleep(300 * time.Second)
		return nil
	case "environ": // environ: print the environment, sorted
		for _, kv := range slices.Sorted(slices.Values(os.Environ())) {
			fmt.Println(kv)
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}
