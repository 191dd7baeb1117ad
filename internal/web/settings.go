package web

import "net/http"

// registerSettings adds the per-project settings page.
func (p *Pages) registerSettings(mux *http.ServeMux) {}
