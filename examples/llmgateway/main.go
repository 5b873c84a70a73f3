package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/examples/internal/serve"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/redisstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "llmgateway:", err)
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	addr     string
	upstream string
	redis    string
	prefix   string
	deadline time.Duration
	limits   limits
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("llmgateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8092", "address to listen on (8092: clear of weir serve's 8080/8081 and the other examples' 8090/8091)")
	fs.StringVar(&c.upstream, "upstream", "", "base URL of an OpenAI-compatible API (empty: a fake one started in process)")
	fs.StringVar(&c.redis, "redis", "", "Redis address to keep the budgets in, shared by every gateway using it (empty: in memory)")
	fs.StringVar(&c.prefix, "prefix", "llmgateway:", "Redis key prefix")
	fs.DurationVar(&c.deadline, "redis-deadline", 250*time.Millisecond, "how long one decision may wait for Redis before the gateway answers 503")
	fs.Int64Var(&c.limits.RPM, "rpm", 60, "requests per minute per API key")
	fs.Int64Var(&c.limits.TPM, "tpm", 10000, "tokens per minute per API key")
	fs.Int64Var(&c.limits.DefaultMaxTokens, "default-max-tokens", 1024, "completion tokens estimated for a request without max_tokens")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.deadline <= 0 {
		return c, fmt.Errorf("-redis-deadline must be positive (got %v)", c.deadline)
	}
	for name, v := range map[string]int64{"-rpm": c.limits.RPM, "-tpm": c.limits.TPM, "-default-max-tokens": c.limits.DefaultMaxTokens} {
		if v <= 0 {
			return c, fmt.Errorf("%s must be positive (got %d)", name, v)
		}
	}
	return c, nil
}

// run serves the gateway until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var store weir.Store
	if c.redis != "" {
		client := redis.NewClient(&redis.Options{Addr: c.redis})
		defer client.Close()
		rs, err := redisstore.New(client, redisstore.WithPrefix(c.prefix), redisstore.WithDeadline(c.deadline))
		if err != nil {
			return err
		}
		defer rs.Close()
		store = rs
	} else {
		ms := memstore.New()
		defer ms.Close()
		store = ms
	}
	upstream := c.upstream
	if upstream == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fake := &http.Server{Handler: newFakeUpstream(), ReadHeaderTimeout: 10 * time.Second}
		go fake.Serve(ln)
		defer fake.Close()
		upstream = "http://" + ln.Addr().String()
		fmt.Fprintf(stdout, "llmgateway: fake upstream on %s\n", upstream)
	}
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("-upstream %q is not an absolute URL", upstream)
	}
	gw, err := newGateway(store, u, c.limits)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "llmgateway: listening on http://%s (%d requests and %d tokens per minute per API key)\n", ln.Addr(), c.limits.RPM, c.limits.TPM)
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	return serve.Until(ctx, srv, ln)
}
