package benchkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

// Simulator is the GitLab simulator, seeded (group "demo", maintainer,
// bot) and served on its own 127.0.0.1 listener with its rate limits off.
type Simulator struct {
	*gitlabsim.Simulator
	// URL is the simulator's base URL, the GitLab instance upbuild talks to.
	URL string
	// Seeded is what the seeding created: the bot's token is upbuild's.
	Seeded gitlabsim.Seeded
	server *http.Server
	served chan error
}

// StartSimulator starts the simulator with its repositories in reposDir.
// front, when not nil, wraps the simulator's handler, to watch the API
// calls that reach it.
func StartSimulator(ctx context.Context, reposDir string, front func(http.Handler) http.Handler) (*Simulator, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("simulator: listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	sim := gitlabsim.New(gitlabsim.Options{Dir: reposDir, BaseURL: base, DisableRateLimits: true})
	var handler http.Handler = sim
	if front != nil {
		handler = front(sim)
	}
	s := &Simulator{Simulator: sim, URL: base,
		server: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}, served: make(chan error, 1)}
	go func() { s.served <- s.server.Serve(ln) }()
	if s.Seeded, err = gitlabsim.Seed(ctx, sim); err != nil {
		return nil, errors.Join(fmt.Errorf("simulator: %w", err), s.Stop())
	}
	return s, nil
}

// Stop closes the simulator's listener and connections. Call it after
// upbuild has stopped: it closes rather than shuts down, which would wait
// for idle keep-alive connections.
func (s *Simulator) Stop() error {
	err := s.server.Close()
	if serr := <-s.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("stop the simulator: %w", err)
	}
	return nil
}

// HelloFiles are the files of a tiny noarch package, hello, with
// packitYAML as its .packit.yaml: what a benchmark's projects hold. They
// are the simulator's seed package (gitlabsim.HelloFiles).
func HelloFiles(packitYAML string) map[string]string {
	return gitlabsim.HelloFiles(packitYAML)
}
