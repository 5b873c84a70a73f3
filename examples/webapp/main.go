package main

import (
	"context"
	"crypto/subtle"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/examples/internal/serve"
	"github.com/weir-go/weir/httplimit"
	"github.com/weir-go/weir/memstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	addr      string
	store     string
	redisAddr string
	// redisDeadline bounds each decision's wait for Redis.
	redisDeadline time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8090", "address to listen on (8090: clear of weir serve's 8080 and 8081)")
	fs.StringVar(&c.store, "store", "memory", "where limiter state lives: memory or redis")
	fs.StringVar(&c.redisAddr, "redis", "localhost:6379", "Redis address, with -store redis")
	fs.DurationVar(&c.redisDeadline, "redis-deadline", 50*time.Millisecond, "how long a decision may wait for Redis before the store's failure policy (503) applies, with -store redis")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, nil
}

// run serves the app until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	app, err := newApp(store)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           app,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(slog.NewTextHandler(stderr, nil), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "webapp: listening on http://%s (store %s)\n", ln.Addr(), cfg.store)
	return serve.Until(ctx, srv, ln)
}

// users are the demo's accounts and passwords.
var users = map[string]string{"alice": "pizza", "bob": "pasta"}

// newApp returns the demo's handler with its limits in store.
func newApp(store weir.Store) (http.Handler, error) {
	mux := http.NewServeMux()
	routes := []struct {
		pattern string
		body    string
		limits  []weir.Option
	}{
		{"GET /{$}", "Welcome! Try /pizza and /pasta.\n", []weir.Option{weir.PerSecond(5).WithName("index")}},
		{"GET /pizza", "Here is your pizza.\n", []weir.Option{
			weir.PerSecond(2).WithBurst(2).WithName("pizza-second"),
			weir.PerMinute(20).WithName("pizza-minute"),
		}},
		{"GET /pasta", "Here is your pasta.\n", []weir.Option{weir.PerSecond(1).WithName("pasta")}},
	}
	for _, rt := range routes {
		lim, err := weir.NewLimiter(store, rt.limits...)
		if err != nil {
			return nil, err
		}
		mw, err := httplimit.New(httplimit.Policy{Limiter: lim, Key: httplimit.BasicAuthUser()})
		if err != nil {
			return nil, err
		}
		body := rt.body
		mux.Handle(rt.pattern, mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, _, _ := r.BasicAuth()
			fmt.Fprintf(w, "Hello %s. %s", user, body)
		})))
	}
	return authenticate(mux), nil
}

// authenticate answers 401 to requests without valid credentials.
func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		want, known := users[user]
		if !ok || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="webapp", charset="UTF-8"`)
			http.Error(w, "sign in as alice:pizza or bob:pasta", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// openStore opens the store the flags chose.
func openStore(ctx context.Context, cfg config) (weir.Store, func(), error) {
	switch cfg.store {
	case "memory":
		s := memstore.New()
		return s, func() { _ = s.Close() }, nil
	case "redis":
		return openRedis(ctx, cfg.redisAddr, cfg.redisDeadline)
	}
	return nil, nil, fmt.Errorf("unknown -store %q (want memory or redis)", cfg.store)
}
