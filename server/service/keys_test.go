package service

import (
	"context"
	"sync"
	"testing"

	"github.com/weir-go/weir/server/topk"
)

type keyRecord struct {
	policy, key string
	denied      bool
}

type recordKeys struct {
	mu  sync.Mutex
	got []keyRecord
}

func (r *recordKeys) Count(policy, key string, denied bool) {
	r.mu.Lock()
	r.got = append(r.got, keyRecord{policy, key, denied})
	r.mu.Unlock()
}

// TestKeyCounter: every decision of Check and Acquire reaches the key
// counter with the rendered key; denials and shadow denials are denied;
// a request refused as bad input is not a decision.
func TestKeyCounter(t *testing.T) {
	s, _, _ := newService(t, `policies:
  login: {limits: ["1/m"], key: "user:{key}"}
  shadow: {limits: ["1/m"], shadow: true}
  conc: {limits: ["1/m algo=concurrency"]}
`)
	rec := &recordKeys{}
	s.SetKeyCounter(rec)
	ctx := context.Background()
	for _, tc := range []struct {
		req    Request
		acq    bool
		want   *keyRecord
		reject bool
	}{
		{req: Request{Policy: "login", Key: "alice", Cost: 1}, want: &keyRecord{"login", "user:alice", false}},
		{req: Request{Policy: "login", Key: "alice", Cost: 1}, want: &keyRecord{"login", "user:alice", true}},
		{req: Request{Policy: "shadow", Key: "s", Cost: 1}, want: &keyRecord{"shadow", "s", false}},
		{req: Request{Policy: "shadow", Key: "s", Cost: 1}, want: &keyRecord{"shadow", "s", true}},
		{req: Request{Policy: "conc", Key: "c", Cost: 1}, acq: true, want: &keyRecord{"conc", "c", false}},
		{req: Request{Policy: "conc", Key: "c", Cost: 1}, acq: true, want: &keyRecord{"conc", "c", true}},
		{req: Request{Policy: "login", Key: "bob", Cost: -1}, reject: true},
	} {
		rec.got = nil
		var err error
		if tc.acq {
			_, err = s.Acquire(ctx, &tc.req)
		} else {
			_, err = s.Check(ctx, &tc.req)
		}
		if (err != nil) != tc.reject {
			t.Fatalf("%+v: err %v", tc.req, err)
		}
		switch {
		case tc.want == nil && len(rec.got) != 0:
			t.Errorf("%+v: counted %v", tc.req, rec.got)
		case tc.want != nil && (len(rec.got) != 1 || rec.got[0] != *tc.want):
			t.Errorf("%+v: counted %v, want %v", tc.req, rec.got, *tc.want)
		}
	}
}

// BenchmarkCheckTopKeys is BenchmarkCheck with the dashboard's top-keys
// tracker counting every key, over 10,000 keys: compare the two for the
// sketch's cost per decision.
func BenchmarkCheckTopKeys(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			s, _, _ := newService(b, "policies:\n  p: {limits: [\"1000000000/s\"]}\n")
			if on {
				s.SetKeyCounter(topk.NewTracker(64, 60_000, 0))
			}
			ctx := context.Background()
			reqs := make([]Request, 10000)
			for i := range reqs {
				reqs[i] = Request{Policy: "p", Key: "user:" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676)), Cost: 1}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Check(ctx, &reqs[i%len(reqs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
