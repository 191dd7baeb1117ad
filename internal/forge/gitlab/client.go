package gitlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
	"golang.org/x/time/rate"

	"upbuild.dev/upbuild/internal/forge"
)

// Defaults of Options.
const (
	// DefaultRequestsPerMinute stays below gitlab.com's 2,000 authenticated
	// requests a minute per user, so upbuild never trips the limit itself.
	DefaultRequestsPerMinute = 1500
	DefaultRequestTimeout    = 30 * time.Second
	DefaultMaxAttempts       = 3
	DefaultMaxRetryWait      = 30 * time.Second
	DefaultMaxFileSize       = 10 << 20
)

// Options configure a Client.
type Options struct {
	// BaseURL is the GitLab instance, e.g. https://gitlab.com (with or
	// without /api/v4). Required.
	BaseURL string
	// Token is the bot's personal, project or group access token. Required.
	Token string
	// RequestsPerMinute is the client-side request budget; 0 means
	// DefaultRequestsPerMinute. Calls wait for budget.
	RequestsPerMinute int
	// Burst is how many requests may go out back to back after a quiet
	// spell; 0 means one second's worth of the budget.
	Burst int
	// HTTPClient defaults to a client with connection, TLS and header
	// timeouts. Redirects to another host are refused either way, so the
	// token never leaves the instance.
	HTTPClient *http.Client
	// RequestTimeout bounds each HTTP exchange; 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxAttempts bounds the tries of a call that is safe to repeat; 0
	// means DefaultMaxAttempts, 1 turns retrying off.
	MaxAttempts int
	// MaxRetryWait is the longest back-off or Retry-After the client waits
	// out by itself; a longer one is handed to the caller as a
	// *forge.RateLimitedError. 0 means DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// MaxFileSize bounds what FileAt reads; 0 means DefaultMaxFileSize.
	MaxFileSize int64
	// Logger gets retries and failures at debug and warn level; it
	// defaults to discarding.
	Logger *slog.Logger
}

// Client talks to one GitLab instance as the bot. It implements forge.Forge
// and is safe for concurrent use; make one per instance and share it, so
// that all calls share one connection pool and one request budget.
type Client struct {
	api          *gl.Client
	token        string
	budget       *rate.Limiter
	timeout      time.Duration
	maxAttempts  int
	maxRetryWait time.Duration
	maxFileSize  int64
	log          *slog.Logger

	userMu sync.Mutex
	user   *forge.User
}

var _ forge.Forge = (*Client)(nil)

// New makes a client; it does not contact GitLab.
func New(opts Options) (*Client, error) {
	if opts.Token == "" {
		return nil, errors.New("gitlab client: a token is required")
	}
	base, err := url.Parse(opts.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.User != nil {
		// The URL is not quoted: a mistyped one might hold a secret.
		return nil, errors.New("gitlab client: BaseURL must be an absolute http(s) URL without credentials")
	}
	c := &Client{
		token:        opts.Token,
		timeout:      orDefault(opts.RequestTimeout, DefaultRequestTimeout),
		maxAttempts:  orDefault(opts.MaxAttempts, DefaultMaxAttempts),
		maxRetryWait: orDefault(opts.MaxRetryWait, DefaultMaxRetryWait),
		maxFileSize:  orDefault(opts.MaxFileSize, DefaultMaxFileSize),
		log:          opts.Logger,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	perMinute := orDefault(opts.RequestsPerMinute, DefaultRequestsPerMinute)
	burst := opts.Burst
	if burst <= 0 {
		burst = max(1, perMinute/60)
	}
	c.budget = rate.NewLimiter(rate.Limit(float64(perMinute)/60), burst)

	c.api, err = gl.NewClient(opts.Token,
		gl.WithBaseURL(base.String()),
		gl.WithHTTPClient(httpClient(opts.HTTPClient, base.Host, c.timeout)),
		// Retries are decided here, per call: client-go would repeat POSTs.
		gl.WithoutRetries(),
		// The budget is ours too; an unlimited limiter also stops client-go
		// from configuring its own from response headers.
		gl.WithCustomLimiter(rate.NewLimiter(rate.Inf, 0)),
		gl.WithUserAgent("upbuild"),
		gl.WithURLWarningLogger(c.log),
	)
	if err != nil {
		return nil, fmt.Errorf("gitlab client: %s", c.redact(err.Error()))
	}
	return c, nil
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// httpClient returns the client to use: the given one (copied, so the
// caller's stays untouched) or one with sane timeouts, refusing redirects
// to other hosts because the token travels in a header Go does not strip.
func httpClient(given *http.Client, host string, timeout time.Duration) *http.Client {
	var hc http.Client
	if given != nil {
		hc = *given
	} else {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		hc.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          32,
			MaxIdleConnsPerHost:   16,
		}
		hc.Timeout = timeout
	}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if req.URL.Host != host {
			return errors.New("refusing a redirect to another host")
		}
		return nil
	}
	return &hc
}

// retryPolicy says whether a call may be repeated automatically.
type retryPolicy int

const (
	// sendOnce: a repeat could duplicate a side effect (a second comment).
	sendOnce retryPolicy = iota
	// safeToRepeat: reads, idempotent writes, and writes whose repeat GitLab
	// answers with a recognisable "already done".
	safeToRepeat
)

// attemptFunc performs one HTTP exchange under ctx, reading any response
// body before it returns.
type attemptFunc func(ctx context.Context) (*gl.Response, error)

// call runs attempt within the request budget and the per-request timeout,
// repeating it when policy allows and the failure is transient. secrets are
// extra strings (besides the token) to keep out of errors and logs. The
// error it returns is classified (see forge.Forge) and redacted.
func (c *Client) call(ctx context.Context, op string, policy retryPolicy, attempt attemptFunc, secrets ...string) error {
	for try := 1; ; try++ {
		if err := c.waitForBudget(ctx); err != nil {
			return err
		}
		attemptCtx, cancel := context.WithTimeout(ctx, c.timeout)
		resp, err := attempt(attemptCtx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failure := c.classify(resp, err, secrets)
		if policy == sendOnce || try >= c.maxAttempts {
			c.log.Debug("gitlab call failed", "op", op, "attempt", try, "err", failure)
			return failure
		}
		wait, worthRetrying := c.backoff(failure, try)
		if !worthRetrying || wait > c.maxRetryWait || !fitsDeadline(ctx, wait) {
			c.log.Debug("gitlab call failed", "op", op, "attempt", try, "err", failure)
			return failure
		}
		c.log.Warn("gitlab call failed, retrying", "op", op, "attempt", try, "wait", wait, "err", failure)
		if err := sleep(ctx, wait); err != nil {
			return failure
		}
	}
}

// waitForBudget blocks until the request budget allows one more request.
func (c *Client) waitForBudget(ctx context.Context) error {
	if err := c.budget.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The limiter refuses up front when the wait would outlast ctx.
		return fmt.Errorf("gitlab request budget exhausted until after the deadline: %w", context.DeadlineExceeded)
	}
	return nil
}

// backoff is how long to wait before trying again after failure, with
// jitter so that many waiting callers do not return in step.
func (c *Client) backoff(failure error, try int) (time.Duration, bool) {
	var limited *forge.RateLimitedError
	if errors.As(failure, &limited) {
		if limited.RetryAfter > 0 {
			return limited.RetryAfter + rand.N(250*time.Millisecond), true
		}
	} else if !errors.Is(failure, forge.ErrTransient) {
		return 0, false
	}
	step := min(250*time.Millisecond<<(try-1), 4*time.Second)
	return step/2 + rand.N(step/2+1), true
}

func fitsDeadline(ctx context.Context, wait time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > wait
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apiError is a failed call: an HTTP status from GitLab (0 when no answer
// came) and a message already cleared of secrets.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string {
	switch {
	case e.status == 0:
		return "no answer from GitLab: " + e.message
	case e.message == "":
		return fmt.Sprintf("GitLab answered %d %s", e.status, http.StatusText(e.status))
	default:
		return fmt.Sprintf("GitLab answered %d: %s", e.status, e.message)
	}
}

// Is places the error in the forge's error classes.
func (e *apiError) Is(target error) bool {
	switch target {
	case forge.ErrNotFound:
		return e.status == http.StatusNotFound
	case forge.ErrForbidden:
		return e.status == http.StatusForbidden
	case forge.ErrTransient:
		return transientStatus(e.status)
	case forge.ErrPermanent:
		return !transientStatus(e.status)
	}
	return false
}

func transientStatus(status int) bool {
	return status == 0 || status >= 500 || status == http.StatusRequestTimeout
}

// classify turns what client-go returned into a forge error.
func (c *Client) classify(resp *gl.Response, err error, secrets []string) error {
	if errors.Is(err, forge.ErrPermanent) {
		// Raised by the attempt itself (e.g. a file over the size limit).
		return err
	}
	var errResp *gl.ErrorResponse
	if !errors.As(err, &errResp) {
		// No usable answer: a refused or dropped connection, a timeout, or a
		// body that is not what GitLab sends (a proxy's error page).
		return &apiError{message: c.redact(err.Error(), secrets...)}
	}
	header := http.Header{}
	if resp != nil && resp.Response != nil {
		header = resp.Header
	} else if errResp.Response != nil {
		header = errResp.Response.Header
	}
	if errResp.StatusCode == http.StatusTooManyRequests {
		return &forge.RateLimitedError{RetryAfter: retryAfter(header, time.Now())}
	}
	return &apiError{status: errResp.StatusCode, message: c.redact(errResp.Message, secrets...)}
}

// retryAfter reads how long GitLab asked a throttled client to wait:
// Retry-After (seconds or an HTTP date), else RateLimit-Reset (Unix time).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second
		}
		if at, err := http.ParseTime(v); err == nil {
			return max(0, at.Sub(now))
		}
	}
	if v := strings.TrimSpace(h.Get("RateLimit-Reset")); v != "" {
		if epoch, err := strconv.ParseInt(v, 10, 64); err == nil {
			return max(0, time.Unix(epoch, 0).Sub(now).Round(time.Second))
		}
	}
	return 0
}

// redact removes the token and any other secret from text that may end up
// in an error or a log line.
func (c *Client) redact(text string, secrets ...string) string {
	for _, secret := range append([]string{c.token}, secrets...) {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, "[redacted]")
		}
	}
	return text
}

// permanentError marks a failure found on our side that no repeat fixes.
func permanentError(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, forge.ErrPermanent)...)
}
