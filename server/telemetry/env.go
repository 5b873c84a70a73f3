package telemetry

import (
	"fmt"
	"strings"
)

// Protocols of the OTLP exporters.
const (
	GRPC         = "grpc"
	HTTPProtobuf = "http/protobuf"
)

// Config says which signals are exported and how.
type Config struct {
	// Traces and Metrics report whether each signal is exported.
	Traces, Metrics bool
	// TracesProtocol and MetricsProtocol are GRPC or HTTPProtobuf.
	TracesProtocol, MetricsProtocol string
}

// Enabled reports whether anything is exported.
func (c Config) Enabled() bool { return c.Traces || c.Metrics }

// Parse reads the OTEL_* variables through getenv (os.Getenv in the
// server). It follows the OpenTelemetry specification, except that an
// exporter is only on when asked for, so that a server without OTEL_*
// variables exports nothing:
//
//   - OTEL_SDK_DISABLED=true turns everything off.
//   - OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER are "otlp" or "none";
//     unset, a signal is exported when OTEL_EXPORTER_OTLP_ENDPOINT or its
//     signal's OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT is set.
//   - OTEL_EXPORTER_OTLP_PROTOCOL (or the per-signal
//     OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL) is "grpc" or
//     "http/protobuf" (the default, as the specification says).
//
// The exporters themselves read the rest (endpoint, headers, timeout,
// compression, certificates, OTEL_METRIC_EXPORT_INTERVAL,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES...). A value Parse does not
// support is an error naming the variable.
func Parse(getenv func(string) string) (Config, error) {
	var c Config
	switch v := strings.ToLower(strings.TrimSpace(getenv("OTEL_SDK_DISABLED"))); v {
	case "true":
		return c, nil
	case "", "false":
	default:
		return c, fmt.Errorf("OTEL_SDK_DISABLED: want true or false (got %q)", v)
	}
	var err error
	if c.Traces, c.TracesProtocol, err = signal(getenv, "TRACES"); err != nil {
		return Config{}, err
	}
	if c.Metrics, c.MetricsProtocol, err = signal(getenv, "METRICS"); err != nil {
		return Config{}, err
	}
	return c, nil
}

func signal(getenv func(string) string, name string) (on bool, protocol string, err error) {
	exp := "OTEL_" + name + "_EXPORTER"
	switch v := strings.TrimSpace(getenv(exp)); v {
	case "none":
		return false, "", nil
	case "otlp":
		on = true
	case "":
		on = getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_"+name+"_ENDPOINT") != ""
	default:
		return false, "", fmt.Errorf("%s: want otlp or none (got %q)", exp, v)
	}
	if !on {
		return false, "", nil
	}
	pv := "OTEL_EXPORTER_OTLP_" + name + "_PROTOCOL"
	p := strings.TrimSpace(getenv(pv))
	if p == "" {
		pv = "OTEL_EXPORTER_OTLP_PROTOCOL"
		p = strings.TrimSpace(getenv(pv))
	}
	switch p {
	case "":
		return true, HTTPProtobuf, nil
	case GRPC, HTTPProtobuf:
		return true, p, nil
	}
	return false, "", fmt.Errorf("%s: want grpc or http/protobuf (got %q)", pv, p)
}
