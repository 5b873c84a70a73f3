// Package telemetry exports the weir server's decisions over OpenTelemetry
// (OTLP): a span per store call and two metrics, beside the Prometheus
// endpoint. It is configured by the standard OTEL_* environment variables
// and is off unless they ask for it (see Parse), in which case the server
// wires a *Telemetry to service.Service.SetObserver.
package telemetry
