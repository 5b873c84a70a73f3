package iolimit

import (
	"context"
	"net/http"
)

// NewResponseWriter returns w with its body throttled by lim: each Write
// waits for the budget and is split into pieces no larger than its burst.
// Flush keeps working (the result implements http.Flusher, and
// http.ResponseController reaches w through Unwrap). Waits end with ctx's
// error, typically the request's context, as soon as it is done. A nil
// lim makes every Write fail.
func NewResponseWriter(ctx context.Context, w http.ResponseWriter, lim Budget) http.ResponseWriter {
	return &responseWriter{ResponseWriter: w, ctx: ctx, lim: lim, err: checkBudget(lim, "lim")}
}

type responseWriter struct {
	http.ResponseWriter
	ctx context.Context
	lim Budget
	err error
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	return writeThrottled(w.ctx, w.ResponseWriter, w.lim, p)
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError flushes the underlying writer, for http.ResponseController.
func (w *responseWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Handler throttles the response bodies of h: budget returns each
// request's budget, typically a new per-response [Limit] joined with a
// shared one by [All]. The throttle ends with the request's context. If
// budget returns an error, the client gets 500 Internal Server Error and
// h is not called.
//
//	shared, _ := iolimit.NewLimit(10<<20, 0)
//	h = iolimit.Handler(h, func(*http.Request) (iolimit.Budget, error) {
//		own, err := iolimit.NewLimit(32<<10, 0)
//		return iolimit.All(own, shared), err
//	})
func Handler(h http.Handler, budget func(*http.Request) (Budget, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if budget == nil {
			http.Error(w, "iolimit: no budget function", http.StatusInternalServerError)
			return
		}
		b, err := budget(r)
		if err == nil {
			err = checkBudget(b, "budget")
		}
		if err != nil {
			http.Error(w, "iolimit: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(NewResponseWriter(r.Context(), w, b), r)
	})
}
