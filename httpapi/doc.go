// Package httpapi is the broker's HTTP side: liveness (/healthz), readiness
// (/readyz), Prometheus metrics (/metrics) and the Go profiler
// (/debug/pprof/), on a mux and a metrics registry of its own — never
// http.DefaultServeMux or prometheus.DefaultRegisterer, so that two servers
// in one process (tests) do not collide.
//
// Readiness is a check the caller installs once the broker is started and
// removes when shutdown begins; with no check installed /readyz answers 503.
// Liveness answers 200 for as long as the process serves HTTP at all.
//
// Other packages add their metrics through Registerer; the registry already
// holds the Go runtime and process collectors.
package httpapi
