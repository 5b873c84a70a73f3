package redisstore_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
)

// minimalACL is the least privilege the store needs, as docs/redis.md
// documents it: its key prefix, the script commands, and the commands the
// script runs.
const minimalACL = "~weir:* resetchannels -@all +evalsha +eval +ping +del +hello +auth " +
	"+get +mget +set +pexpire +time +zrangebyscore +zremrangebyscore +zadd +zrem +hgetall +hset +hdel"

// TestAuth is S9: a password-protected server with a least-privilege ACL
// user. The store works with that user for every algorithm; the user gets
// NOPERM outside the prefix; a wrong password is a clear error that does
// not contain the secret.
func TestAuth(t *testing.T) {
	const secret = "s3cr3t-pa55word-do-not-log"
	srv := redistest.Start(t, "--requirepass", "admin-"+secret)
	admin := srv.Options()
	admin.Password = "admin-" + secret
	ac := redis.NewClient(admin)
	defer ac.Close()
	ctx := context.Background()
	if err := ac.Do(ctx, append([]any{"ACL", "SETUSER", "weir", "on", ">" + secret}, splitAny(minimalACL)...)...).Err(); err != nil {
		t.Fatal(err)
	}

	o := srv.Options()
	o.Username, o.Password = "weir", secret
	c := redis.NewClient(o)
	defer c.Close()
	s, err := redisstore.New(c, redisstore.WithDeadline(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	limits := []weir.Limit{
		weir.PerSecond(5).WithName("tb"),
		weir.PerSecond(5).WithAlgorithm(weir.FixedWindow).WithName("fw"),
		weir.PerSecond(5).WithAlgorithm(weir.SlidingWindowCounter).WithName("sw"),
		weir.PerSecond(5).WithAlgorithm(weir.SlidingWindowLog).WithName("log"),
		weir.Concurrent(5, time.Second).WithName("c"),
	}
	for _, l := range limits {
		req := &weir.Request{Checks: []weir.Check{{Key: "k", Limit: l}}, Cost: 2, Lease: "x"}
		d, err := s.Take(ctx, req)
		if err != nil || !d.Allowed || d.Remaining != 3 {
			t.Fatalf("%s with the minimal ACL: %+v, %v", l.Name, d, err)
		}
		if err := s.Refund(ctx, req); err != nil {
			t.Fatalf("%s refund with the minimal ACL: %v", l.Name, err)
		}
		if err := s.Reset(ctx, req.Checks); err != nil {
			t.Fatalf("%s reset with the minimal ACL: %v", l.Name, err)
		}
	}
	if err := c.Set(ctx, "other:key", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("SET outside the prefix: %v, want NOPERM", err)
	}

	o.Password = "wrong"
	bad := redis.NewClient(o)
	defer bad.Close()
	bs, err := redisstore.New(bad, redisstore.WithDeadline(30*time.Second)) // the reply is under test, not latency
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	err = bs.Ping(ctx)
	if err == nil || !errors.Is(err, weir.ErrUnavailable) || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v, want a WRONGPASS error", err)
	}
	_, terr := bs.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "k", Limit: limits[0]}}, Cost: 1})
	for _, e := range []error{err, terr} {
		if e != nil && strings.Contains(e.Error(), secret) {
			t.Fatalf("error reveals the secret: %v", e)
		}
	}
}

func splitAny(s string) []any {
	var out []any
	for _, f := range strings.Fields(s) {
		out = append(out, f)
	}
	return out
}

// TestTLS is S9's transport half: a TLS-only server, a client that
// verifies the server's certificate (the default), and one that does not
// trust the server's CA and so cannot connect.
func TestTLS(t *testing.T) {
	srv := redistest.StartTLS(t)
	s, err := redisstore.New(srv.Client(), redisstore.WithDeadline(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	d, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.PerSecond(3)}}, Cost: 1})
	if err != nil || !d.Allowed || d.Remaining != 2 {
		t.Fatalf("over TLS: %+v, %v", d, err)
	}
	o := srv.Options()
	o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12} // system roots: the test CA is unknown
	c := redis.NewClient(o)
	defer c.Close()
	untrusted, err := redisstore.New(c, redisstore.WithDeadline(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	if err := untrusted.Ping(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server certificate: %v, want a certificate error", err)
	}
}
