package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// SCIM wraps the SCIM handler so that each answered request is counted in
// warden_scim_requests_total by method and status code. The client library
// keeps both bounded: a method outside the standard ones is "unknown" (the
// method is the client's choice, so this matters), and the code, which
// the server chooses, is one of 100 to 599. A nil *Metrics returns h unchanged.
func (m *Metrics) SCIM(h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return promhttp.InstrumentHandlerCounter(m.scim, h)
}
