package daemon

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// OpenStore opens the store named by a URL:
//
//	memory                                in-process (the default)
//	memory:?max_keys=1000000&sweep=30s    with a key cap and sweep interval
//	sqlite:PATH                           a SQLite file (created if missing)
//	redis://[user:pass@]HOST:PORT/DB      Redis or Valkey (rediss:// for TLS)
//
// It returns the store, a description for logs (no credentials), and a
// close function.
func OpenStore(ctx context.Context, raw string) (weir.Store, string, func() error, error) {
	switch {
	case raw == "" || raw == "memory" || strings.HasPrefix(raw, "memory:"):
		return openMemory(strings.TrimPrefix(strings.TrimPrefix(raw, "memory"), ":"))
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		if path == "" {
			return nil, "", nil, fmt.Errorf("--store %q: want sqlite:PATH", raw)
		}
		return openSQLite(path)
	case strings.HasPrefix(raw, "redis://"), strings.HasPrefix(raw, "rediss://"):
		return openRedis(ctx, raw)
	}
	return nil, "", nil, fmt.Errorf("--store %q: want memory, sqlite:PATH or redis://HOST:PORT/DB", raw)
}

func openMemory(rest string) (weir.Store, string, func() error, error) {
	q, err := url.ParseQuery(strings.TrimPrefix(rest, "?"))
	if err != nil {
		return nil, "", nil, fmt.Errorf("--store memory: %v", err)
	}
	opts := []memstore.Option{memstore.WithSweep(30 * time.Second)}
	desc := "memory"
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "max_keys":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, "", nil, fmt.Errorf("--store memory: max_keys %q is not a whole number", v)
			}
			opts = append(opts, memstore.WithMaxKeys(n))
			desc += " max_keys=" + v
		case "sweep":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, "", nil, fmt.Errorf("--store memory: sweep %q is not a duration", v)
			}
			opts = append(opts, memstore.WithSweep(d))
			desc += " sweep=" + v
		default:
			return nil, "", nil, fmt.Errorf("--store memory: unknown option %q (want max_keys or sweep)", k)
		}
	}
	s := memstore.New(opts...)
	return s, desc, s.Close, nil
}
