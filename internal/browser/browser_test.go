package browser_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which scripts/test installs.
const chromiumPath = "/usr/bin/chromium"

// stepTimeout bounds each browser step, so a page that never renders fails
// the test instead of hanging it.
const stepTimeout = 20 * time.Second

// browser is one headless Chromium with one tab, closed when the test ends.
type browser struct {
	t   *testing.T
	tab context.Context

	mu      sync.Mutex
	dialogs []string // messages of JavaScript dialogs the pages opened
}

// newBrowser starts Chromium for t, with a fresh profile.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser tests need Debian's chromium at %s (%v): run scripts/test, which installs it", chromiumPath, err)
	}
	// The flags are the ones known to work here as root (docs: ci-notes):
	// no sandbox for root, and no background traffic to the internet.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
	}
	// The browser is closed by the cleanup below, before the servers the
	// test started stop (cleanups run last-registered first).
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	dialogsDone := make(chan struct{})
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		<-dialogsDone
	})
	b := &browser{t: t, tab: tab}
	// Start the browser now, so that a Chromium that cannot start fails
	// here with its reason. This first action runs on the tab's own
	// context: the browser lives as long as the context of the first run.
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		close(dialogsDone)
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	// Dialogs (alert, confirm) are recorded and dismissed, so that a page
	// that opens one does not block the test.
	dialogs := chromedp.Events(tab, page.JavascriptDialogOpening)
	go func() {
		defer close(dialogsDone)
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, string(ev.Type)+": "+ev.Message)
			b.mu.Unlock()
			if _, err := chromedp.Call(tab, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false}); err != nil && tab.Err() == nil {
				t.Errorf("dismiss a %s dialog: %v", ev.Type, err)
			}
		}
	}()
	return b
}

// do runs actions in the tab, each within stepTimeout.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.tab, stepTimeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// open navigates to url and waits until sel is visible.
func (b *browser) open(url, sel string) {
	b.t.Helper()
	if err := b.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("open %s and wait for %s: %v", url, sel, err)
	}
}

// run runs one action that returns a value, within stepTimeout.
func run[T any](b *browser, action chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.tab, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, action)
}

// text is the text content of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := run(b, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := run(b, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// openedDialogs lists the JavaScript dialogs the pages opened so far.
func (b *browser) openedDialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// screenshot saves a full-page PNG of the current page as
// <test name>-<name>.png in the screenshot directory and logs its path.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := run(b, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := screenshotDir(b.t)
	file := filepath.Join(dir, fileName(b.t.Name()+"-"+name)+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatalf("save screenshot: %v", err)
	}
	b.t.Logf("screenshot: %s", file)
}

// screenshotDir is $UPBUILD_TEST_ARTIFACTS, or else test-artifacts/screenshots,
// created if needed. Relative paths are from the repository's root, where
// scripts/test runs, not from the package directory go test runs in.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("UPBUILD_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("test-artifacts", "screenshots")
	}
	if !filepath.IsAbs(dir) {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("find where to save screenshots: %v", err)
		}
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot directory: %v", err)
	}
	return dir
}

// repoRoot is the nearest directory above the working directory (the
// package's, under go test) that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// fileName turns a test name like TestPages/sqlite into TestPages-sqlite.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, s)
}
