package daemon

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/weir-go/weir/server/service"
	"github.com/weir-go/weir/server/telemetry"
)

// startTelemetry exports the service's store calls over OTLP when the
// OTEL_* environment asks for it (see telemetry.Parse); otherwise it sets
// nothing. The returned stop flushes and stops the exporters.
func startTelemetry(ctx context.Context, svc *service.Service, storeURL string, log *slog.Logger) (stop func(), err error) {
	cfg, err := telemetry.Parse(os.Getenv)
	if err != nil {
		return nil, err
	}
	tel, err := telemetry.Start(ctx, cfg, storeKind(storeURL))
	if err != nil || tel == nil {
		return func() {}, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry export", "err", err) }))
	svc.SetObserver(tel)
	log.Info("opentelemetry", "traces", cfg.Traces, "traces_protocol", cfg.TracesProtocol, "metrics", cfg.Metrics, "metrics_protocol", cfg.MetricsProtocol)
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("opentelemetry shutdown", "err", err)
		}
	}, nil
}

// storeKind is the store's kind from its URL: memory, sqlite or redis.
func storeKind(url string) string {
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		return "sqlite"
	case strings.HasPrefix(url, "redis"):
		return "redis"
	}
	return "memory"
}
