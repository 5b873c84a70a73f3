package telemetry

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/weir-go/weir/server/service"
)

// Names of what is exported.
const (
	// ScopeName is the instrumentation scope of the spans and metrics.
	ScopeName = "github.com/weir-go/weir/server"
	// CallsMetric counts store calls.
	CallsMetric = "weir.store.calls"
	// DurationMetric is a histogram of store call latency in seconds.
	DurationMetric = "weir.store.duration"
)

// Attribute keys of the spans and metrics.
const (
	AttrOp      = attribute.Key("weir.op")      // take, refund, reset
	AttrPolicy  = attribute.Key("weir.policy")  // policy name or envoy:DOMAIN
	AttrLimit   = attribute.Key("weir.limit")   // limit name within the policy (spans only)
	AttrOutcome = attribute.Key("weir.outcome") // allowed, limited, ok, error
	AttrStore   = attribute.Key("weir.store")   // memory, sqlite, redis
	AttrCost    = attribute.Key("weir.cost")    // units asked for (spans only)
)

// Telemetry exports observations of store calls. It implements
// service.Observer.
type Telemetry struct {
	store    attribute.KeyValue
	tracer   trace.Tracer // nil: no traces
	calls    metric.Int64Counter
	duration metric.Float64Histogram // nil with calls: no metrics
	shutdown []func(context.Context) error
}

var _ service.Observer = (*Telemetry)(nil)

// Start sets up the exporters cfg asks for; store names the store kind
// (memory, sqlite, redis) put on every span and point. It returns nil,
// nil when cfg exports nothing: the server then sets no observer and pays
// nothing. Call Shutdown to flush and stop.
func Start(ctx context.Context, cfg Config, store string) (*Telemetry, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "weir")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	t := &Telemetry{store: AttrStore.String(store)}
	if cfg.Traces {
		var exp sdktrace.SpanExporter
		if cfg.TracesProtocol == GRPC {
			exp, err = otlptracegrpc.New(ctx)
		} else {
			exp, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		t.tracer = tp.Tracer(ScopeName)
		t.shutdown = append(t.shutdown, tp.Shutdown)
	}
	if cfg.Metrics {
		var exp sdkmetric.Exporter
		if cfg.MetricsProtocol == GRPC {
			exp, err = otlpmetricgrpc.New(ctx)
		} else {
			exp, err = otlpmetrichttp.New(ctx)
		}
		if err != nil {
			t.Shutdown(ctx)
			return nil, fmt.Errorf("otlp metric exporter: %w", err)
		}
		// The periodic reader reads OTEL_METRIC_EXPORT_INTERVAL.
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), sdkmetric.WithResource(res))
		t.shutdown = append(t.shutdown, mp.Shutdown)
		m := mp.Meter(ScopeName)
		if t.calls, err = m.Int64Counter(CallsMetric, metric.WithUnit("{call}"),
			metric.WithDescription("Store calls (decisions, refunds, resets) by operation, policy, outcome and store.")); err != nil {
			t.Shutdown(ctx)
			return nil, err
		}
		if t.duration, err = m.Float64Histogram(DurationMetric, metric.WithUnit("s"),
			metric.WithDescription("Latency of store calls by operation, outcome and store.")); err != nil {
			t.Shutdown(ctx)
			return nil, err
		}
	}
	return t, nil
}

// Observe exports one store call: a span named "weir.OP" spanning the
// call, and a point of each metric.
func (t *Telemetry) Observe(ctx context.Context, o service.Observation) {
	op, outcome := AttrOp.String(o.Op), AttrOutcome.String(o.Outcome)
	policy := AttrPolicy.String(o.Policy)
	if t.tracer != nil {
		_, span := t.tracer.Start(ctx, "weir."+o.Op, trace.WithTimestamp(o.Start),
			trace.WithAttributes(op, policy, AttrLimit.String(o.Limit), outcome, t.store, AttrCost.Int64(o.Cost)))
		if o.Err != nil {
			span.RecordError(o.Err)
			span.SetStatus(codes.Error, o.Err.Error())
		}
		span.End(trace.WithTimestamp(o.Start.Add(o.Duration)))
	}
	if t.duration != nil {
		t.calls.Add(ctx, 1, metric.WithAttributes(op, policy, outcome, t.store))
		t.duration.Record(ctx, o.Duration.Seconds(), metric.WithAttributes(op, outcome, t.store))
	}
}

// Shutdown flushes what is buffered and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
