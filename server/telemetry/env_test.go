package telemetry

import (
	"context"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const ep = "OTEL_EXPORTER_OTLP_ENDPOINT"
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Config
		err  string // a substring of the error; "" for none
	}{
		{"unset: off", nil, Config{}, ""},
		{"endpoint: both, http/protobuf", map[string]string{ep: "http://x:4318"}, Config{true, true, HTTPProtobuf, HTTPProtobuf}, ""},
		{"disabled wins", map[string]string{ep: "http://x", "OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, Config{}, ""},
		{"disabled false", map[string]string{ep: "http://x", "OTEL_SDK_DISABLED": "false"}, Config{true, true, HTTPProtobuf, HTTPProtobuf}, ""},
		{"traces endpoint only", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x"}, Config{Traces: true, TracesProtocol: HTTPProtobuf}, ""},
		{"metrics none", map[string]string{ep: "http://x", "OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, Config{Traces: true, TracesProtocol: GRPC}, ""},
		{"otlp without endpoint: the exporter's default", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, Config{Traces: true, TracesProtocol: HTTPProtobuf}, ""},
		{"per-signal protocol", map[string]string{ep: "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf"}, Config{true, true, GRPC, HTTPProtobuf}, ""},
		{"bad disabled", map[string]string{"OTEL_SDK_DISABLED": "yes"}, Config{}, "OTEL_SDK_DISABLED"},
		{"unsupported exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, Config{}, "OTEL_TRACES_EXPORTER"},
		{"unsupported protocol", map[string]string{ep: "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, Config{}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"unsupported signal protocol", map[string]string{ep: "http://x", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "udp"}, Config{}, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err+":") {
					t.Fatalf("error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}

// TestStartOff: a configuration that exports nothing starts nothing.
func TestStartOff(t *testing.T) {
	tel, err := Start(context.Background(), Config{}, "memory")
	if tel != nil || err != nil {
		t.Errorf("Start(off) = %v, %v; want nil, nil", tel, err)
	}
}
