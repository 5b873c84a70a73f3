// Package serve runs an example's HTTP server for as long as a context
// lasts and then shuts it down gracefully: the lifecycle every example
// server (webapp, stream, llmgateway) has, written once.
package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// ShutdownTimeout is how long Until lets the requests in flight finish
// once the context ends.
const ShutdownTimeout = 5 * time.Second

// Until serves srv on ln until ctx ends, then shuts srv down, letting the
// requests in flight finish for up to ShutdownTimeout. It returns nil
// after a clean shutdown, and otherwise the error that stopped the server
// or the shutdown.
func Until(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
