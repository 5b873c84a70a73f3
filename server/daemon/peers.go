package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/weir-go/weir/server/peers"
	"github.com/weir-go/weir/server/service"
)

// Peer counting (on_store_error: fallback). Every instance on one Redis
// beats every peerInterval; a beat counts for peerTTL.
const (
	peerKey      = "weir:peers"
	peerInterval = time.Second
	peerTTL      = 3 * peerInterval
)

// startPeers counts the weir serve instances sharing the Redis store at
// raw, on a client of its own, and gives each count to svc (SetPeers)
// until the returned stop is called; stop also takes this instance out of
// the count.
func startPeers(ctx context.Context, raw string, svc *service.Service, log *slog.Logger) (stop func(), err error) {
	if u, err := url.Parse(raw); err == nil {
		q := u.Query()
		q.Del("deadline")
		u.RawQuery = q.Encode()
		raw = u.String()
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("--store: %v", err)
	}
	opt.PoolSize = 2
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)
	c, err := peers.New(client, peerKey, peerTTL)
	if err != nil {
		client.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	last := int64(0)
	go func() {
		defer close(done)
		c.Run(ctx, peerInterval, func(n int64) {
			if n != last {
				log.Info("instances sharing the store", "count", n, "fallback_share", max(n, svc.Config().Server.FallbackInstances, 1))
				last = n
			}
			svc.SetPeers(n)
		})
	}()
	return func() {
		cancel()
		<-done
		client.Close()
	}, nil
}
