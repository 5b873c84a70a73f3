package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/lograte"
)

// openRedis opens a Redis store. Besides go-redis's URL options it takes
// deadline=DURATION: how long one decision may take, queueing included,
// before the store reports it unavailable (redisstore's default: 50ms).
func openRedis(ctx context.Context, raw string) (weir.Store, string, func() error, error) {
	var sopts []redisstore.Option
	if u, err := url.Parse(raw); err == nil {
		q := u.Query()
		if d := q.Get("deadline"); d != "" {
			dd, err := time.ParseDuration(d)
			if err != nil || dd <= 0 {
				return nil, "", nil, fmt.Errorf("--store: deadline %q is not a positive duration", d)
			}
			sopts = append(sopts, redisstore.WithDeadline(dd))
			q.Del("deadline")
			u.RawQuery = q.Encode()
			raw = u.String()
		}
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--store: %v", err)
	}
	desc := fmt.Sprintf("redis://%s/%d", opt.Addr, opt.DB)
	// A retried script call could charge a decision twice (R16): the store
	// never retries, so neither may the client, whatever the URL says.
	opt.MaxRetries = -1
	// Every call the store makes directly (Ping for /readyz and the
	// store-ready metric, Del for reset, the script calls of its workers)
	// ends at a context deadline, the store's own. Without this option
	// go-redis ignores those deadlines on the socket and waits for its
	// ReadTimeout (3 s by default): /readyz would hang while Redis is
	// stalled (SIGSTOP, a stuck host) instead of answering 503 (issue 16.1).
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)
	s, err := redisstore.New(client, sopts...)
	if err != nil {
		client.Close()
		return nil, "", nil, fmt.Errorf("--store %s: %w", desc, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		s.Close()
		client.Close()
		return nil, "", nil, fmt.Errorf("--store %s: %w", desc, err)
	}
	return s, desc, func() error { s.Close(); return client.Close() }, nil
}

// routeRedisLogs sends the Redis client's own log lines (go-redis logs
// through one process-wide logger: pool dial failures, reconnects) to log
// as warnings with "source":"redis", each kind of line at most once per
// lograte.DefaultEvery with a count of the ones held back, instead of
// unstructured lines on stderr, one per failed dial.
func routeRedisLogs(log *slog.Logger) {
	redis.SetLogger(lograte.RedisLogger{T: lograte.NewThrottle(log, slog.LevelWarn, 0, nil)})
}

// CheckStoreLimits reports the first limit of cfg that the store named by
// storeURL cannot hold (issue 16.5: Redis refuses quotas and bursts above
// 2^51), as a *config.Error naming the file, the line and the key, so that
// weir config check, start-up and a reload refuse it instead of answering
// every request to the policy with a 400. Envoy limits (requests_per_unit
// is a uint32) always fit. The memory and SQLite stores hold every valid
// limit.
func CheckStoreLimits(cfg *config.Config, storeURL string) error {
	if !strings.HasPrefix(storeURL, "redis://") && !strings.HasPrefix(storeURL, "rediss://") {
		return nil
	}
	for _, p := range cfg.Policies {
		for i, l := range p.Limits {
			err := redisstore.CheckLimit(l)
			if err == nil {
				continue
			}
			var fe *weir.FieldError
			field, reason := "limits", err.Error()
			if errors.As(err, &fe) {
				field, reason = fe.Field, fe.Reason
			}
			line := 0
			if i < len(p.LimitLines) {
				line = p.LimitLines[i]
			}
			return &config.Error{File: cfg.Source, Line: line,
				Msg: fmt.Sprintf("policy %q: limits[%d] (%s): %s %s", p.Name, i, l.Name, field, reason)}
		}
	}
	for _, p := range cfg.Plans {
		for i, l := range p.Limits {
			err := redisstore.CheckLimit(l)
			if err == nil {
				continue
			}
			field, reason := "limits", err.Error()
			if fe, ok := errors.AsType[*weir.FieldError](err); ok {
				field, reason = fe.Field, fe.Reason
			}
			line := 0
			if lines := cfg.PlanLines[p.Name]; i < len(lines) {
				line = lines[i]
			}
			return &config.Error{File: cfg.Source, Line: line, Msg: fmt.Sprintf("plans.%s[%d] (%s): %s %s", p.Name, i, l, field, reason)}
		}
	}
	return nil
}
