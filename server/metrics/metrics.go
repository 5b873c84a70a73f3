// Package metrics defines the weir server's Prometheus metrics on a private
// registry. Labels are bounded by configuration (policy names, Envoy
// domains, API names, outcomes); no label ever carries a caller's key.
package metrics

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the server's set of collectors.
type Metrics struct {
	// Registry holds every collector below plus the Go and process
	// collectors.
	Registry *prometheus.Registry
	// Decisions counts decisions of the native APIs by policy and outcome
	// (allowed, limited, shadow_limited, error).
	Decisions *prometheus.CounterVec
	// EnvoyDescriptors counts Envoy descriptor decisions by configured
	// domain (or "unknown") and outcome (ok, over_limit, shadow_over_limit,
	// unlimited, no_limit).
	EnvoyDescriptors *prometheus.CounterVec
	// StoreDuration observes store calls by operation (take, refund,
	// reset) and result (ok, error).
	StoreDuration *prometheus.HistogramVec
	// FailOpen counts decisions admitted because the store failed.
	FailOpen *prometheus.CounterVec
	// FailClosed counts decisions denied because the store failed.
	FailClosed *prometheus.CounterVec
	// Fallback counts decisions made by the local fallback limiter.
	Fallback *prometheus.CounterVec
	// FallbackShare is what the fallback limiter divides limits by: the
	// instances sharing the store.
	FallbackShare prometheus.Gauge
	// Requests counts API requests by api (http, grpc, envoy), method and
	// code.
	Requests *prometheus.CounterVec
	// ConfigReloads counts configuration reloads by result (ok, error).
	ConfigReloads *prometheus.CounterVec
	// ConfigLastReload is the Unix time of the last successful load.
	ConfigLastReload prometheus.Gauge
	// Ready is 1 while the server is ready and 0 while draining.
	Ready prometheus.Gauge
	// StoreReady is 1 while the store answers pings and 0 while it does
	// not: what /readyz sees of the store, for alerts (weir_ready stays 1
	// while the store is down, since the server still answers).
	StoreReady prometheus.Gauge
}

// New returns the metrics registered on a new registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_decisions_total", Help: "Decisions of the native HTTP and gRPC APIs, by policy and outcome.",
		}, []string{"policy", "outcome"}),
		EnvoyDescriptors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_envoy_descriptors_total", Help: "Envoy rate-limit descriptor decisions, by domain and outcome.",
		}, []string{"domain", "outcome"}),
		StoreDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "weir_store_duration_seconds", Help: "Latency of store calls, by operation and result.",
			Buckets: []float64{.000005, .00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op", "result"}),
		FailOpen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_fail_open_total", Help: "Decisions admitted because the store failed (on_store_error: allow).",
		}, []string{"policy"}),
		FailClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_fail_closed_total", Help: "Decisions denied because the store failed (on_store_error: deny).",
		}, []string{"policy"}),
		Fallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_fallback_decisions_total", Help: "Decisions made by the local fallback limiter because the store failed.",
		}, []string{"policy"}),
		FallbackShare: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_fallback_share", Help: "What on_store_error: fallback divides limits by: the weir serve instances sharing the store.",
		}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_requests_total", Help: "API requests, by API, method and status code.",
		}, []string{"api", "method", "code"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_config_reloads_total", Help: "Configuration loads, by result.",
		}, []string{"result"}),
		ConfigLastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_config_last_reload_success_timestamp_seconds", Help: "Unix time of the last successful configuration load.",
		}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_ready", Help: "1 while the server accepts traffic, 0 while starting or draining.",
		}),
		StoreReady: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_store_ready", Help: "1 while the store answered its last ping (every second, and on each /readyz), 0 when it failed.",
		}),
	}
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "weir_build_info", Help: "Build information.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	info.Set(1)
	m.Registry.MustRegister(m.Decisions, m.EnvoyDescriptors, m.StoreDuration, m.FailOpen, m.FailClosed,
		m.Fallback, m.FallbackShare, m.Requests, m.ConfigReloads, m.ConfigLastReload, m.Ready, m.StoreReady, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WatchCertificate exports weir_tls_certificate_expiry_timestamp_seconds,
// the Unix time at which the served TLS certificate expires, read from
// notAfter at every scrape (so a rotated certificate shows at once): alert
// on it falling within a few days of time().
func (m *Metrics) WatchCertificate(notAfter func() time.Time) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "weir_tls_certificate_expiry_timestamp_seconds",
		Help: "Unix time at which the TLS certificate the listeners serve expires (its NotAfter).",
	}, func() float64 { return float64(notAfter().Unix()) }))
}
