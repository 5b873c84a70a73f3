package redisstore

import (
	"context"
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
	"github.com/weir-go/weir/redisstore/redistest"
)

// TestTokenBucketEncoding checks the token bucket's state encoding on both
// of the script's paths: the fast path (one token-bucket check) and the
// general one (here, two checks). Both read the text "a b q" of earlier
// versions, and both write "\0" + three little-endian int64s.
func TestTokenBucketEncoding(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	now := time.UnixMicro(1_800_000_000_000_000)
	s, err := New(client, WithClock(func() time.Time { return now }), WithPrefix("enc:"), WithDeadline(correctnessDeadline))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	tb := weir.PerSecond(10).WithBurst(5).WithName("tb") // I = 100 ms, tau = 500 ms
	fw := weir.Per(1000, time.Hour).WithAlgorithm(weir.FixedWindow).WithName("fw")
	us := now.UnixMicro()
	for _, tc := range []struct {
		name   string
		checks []weir.Check
		stored string // the state before the take
		rem    int64  // the token bucket's remaining after it
		tat    int64  // and its TAT (µs)
	}{
		{"fast/fresh", []weir.Check{{Key: "a", Limit: tb}}, "", 4, us + 100_000},
		{"fast/text", []weir.Check{{Key: "b", Limit: tb}}, strconv.FormatInt(us+300_000, 10) + " 0 1", 1, us + 400_000},
		{"fast/binary", []weir.Check{{Key: "c", Limit: tb}}, encodeTAT(us+200_000, 0, 1), 2, us + 300_000},
		{"fast/other-q", []weir.Check{{Key: "d", Limit: tb}}, strconv.FormatInt(us+200_000, 10) + " 1 3", 1, us + 300_001},
		{"general/text", []weir.Check{{Key: "e", Limit: tb}, {Key: "e", Limit: fw}}, strconv.FormatInt(us+300_000, 10) + " 0 1", 1, us + 400_000},
		{"general/binary", []weir.Check{{Key: "f", Limit: tb}, {Key: "f", Limit: fw}}, encodeTAT(us+200_000, 0, 1), 2, us + 300_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := s.redisKey(engine.Name(tb), tc.checks[0].Key, weir.TokenBucket)
			if tc.stored != "" {
				if err := client.Set(ctx, key, tc.stored, time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
			}
			st := make([]weir.Status, len(tc.checks))
			d, err := s.Take(ctx, &weir.Request{Checks: tc.checks, Cost: 1, Statuses: st})
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed || st[0].Remaining != tc.rem {
				t.Errorf("allowed %v, token bucket remaining %d; want true, %d", d.Allowed, st[0].Remaining, tc.rem)
			}
			v, err := client.Get(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if want := encodeTAT(tc.tat, 0, 1); v != want {
				t.Errorf("stored %q, want %q", v, want)
			}
		})
	}
}

func encodeTAT(a, b, q int64) string {
	buf := []byte{0}
	for _, v := range []int64{a, b, q} {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
	}
	return string(buf)
}
