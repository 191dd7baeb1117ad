package forge_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/forge"
)

func TestRateLimitedErrorIsTransient(t *testing.T) {
	tests := []struct {
		err  *forge.RateLimitedError
		text string
	}{
		{&forge.RateLimitedError{RetryAfter: 90 * time.Second}, "rate limited by the forge, retry after 1m30s"},
		{&forge.RateLimitedError{}, "rate limited by the forge"},
	}
	for _, tt := range tests {
		wrapped := fmt.Errorf("set status: %w", tt.err)
		if !errors.Is(wrapped, forge.ErrTransient) || errors.Is(wrapped, forge.ErrPermanent) {
			t.Errorf("%v: want ErrTransient only", wrapped)
		}
		var limited *forge.RateLimitedError
		if !errors.As(wrapped, &limited) || limited.RetryAfter != tt.err.RetryAfter {
			t.Errorf("errors.As(%v) = %+v", wrapped, limited)
		}
		if got := tt.err.Error(); got != tt.text {
			t.Errorf("Error() = %q, want %q", got, tt.text)
		}
	}
}

func TestStatusStateValid(t *testing.T) {
	for _, s := range []forge.StatusState{forge.StatusPending, forge.StatusRunning, forge.StatusSuccess, forge.StatusFailed, forge.StatusCanceled, forge.StatusSkipped} {
		if !s.Valid() {
			t.Errorf("%q is not valid", s)
		}
	}
	for _, s := range []forge.StatusState{"", "error", "created", "Success"} {
		if s.Valid() {
			t.Errorf("%q is valid", s)
		}
	}
}
