package grpcapi

import (
	"context"
	"strings"
	"testing"

	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/gen/weirv1"
	"github.com/weir-go/weir/server/service"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(tb testing.TB) *Server {
	tb.Helper()
	cfg, err := config.Parse("t.yaml", []byte("policies:\n  api: {limits: [\"100/s burst=200\"]}\n  jobs: {limits: [\"2/m algo=concurrency\"]}\n"))
	if err != nil {
		tb.Fatal(err)
	}
	ms := memstore.New()
	tb.Cleanup(func() { ms.Close() })
	svc, err := service.New(ms, nil, cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return New(svc, nil)
}

// FuzzCheck (R21) feeds arbitrary protobuf bytes to Check, CheckStream's
// decision and CheckBatch: never a panic; every error is INVALID_ARGUMENT
// naming a field.
func FuzzCheck(f *testing.F) {
	for _, m := range []proto.Message{
		&weirv1.CheckRequest{Policy: "api", Key: "k"},
		&weirv1.CheckRequest{Policy: "api", Key: "k", Cost: proto.Int64(-3), Fields: map[string]string{"a": "b"}},
		&weirv1.CheckRequest{Policy: "jobs", Key: strings.Repeat("k", 300)},
		&weirv1.CheckBatchRequest{Checks: []*weirv1.CheckRequest{{Policy: "api", Key: "a"}, {Policy: "nope"}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	s := newServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		var one weirv1.CheckRequest
		if proto.Unmarshal(data, &one) == nil {
			_, err := s.Check(ctx, &one)
			checkErr(t, err)
			// A stream message answers as Check does, the field's path
			// starting at the stream message.
			r := s.answer(ctx, &weirv1.CheckStreamRequest{Id: 7, Check: &one})
			if st := status.Convert(err); r.GetId() != 7 || (err == nil) != (r.GetResult() != nil) ||
				err != nil && (codes.Code(r.GetError().GetCode()) != st.Code() || r.GetError().GetMessage() != "check."+st.Message()) {
				t.Fatalf("Check: %v; CheckStream answer: %v", err, r)
			}
			_, err = s.Acquire(ctx, &one)
			checkErr(t, err)
		}
		var batch weirv1.CheckBatchRequest
		if proto.Unmarshal(data, &batch) == nil && len(batch.Checks) <= service.MaxBatch {
			_, err := s.CheckBatch(ctx, &batch)
			checkErr(t, err)
		}
	})
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("error %v, want INVALID_ARGUMENT", err)
	}
	field, _, ok := strings.Cut(st.Message(), ":")
	if !ok || field == "" || strings.Contains(field, " ") {
		t.Fatalf("error %q does not start with a field name", st.Message())
	}
}

func TestReleaseAndReset(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	r, err := s.Acquire(ctx, &weirv1.CheckRequest{Policy: "jobs", Key: "q"})
	if err != nil || !r.Allowed || r.Lease == "" {
		t.Fatalf("acquire: %v %v", r, err)
	}
	if _, err := s.Release(ctx, &weirv1.ReleaseRequest{Policy: "jobs", Key: "q"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("release without lease: %v", err)
	}
	if _, err := s.Release(ctx, &weirv1.ReleaseRequest{Policy: "jobs", Key: "q", Lease: r.Lease}); err != nil {
		t.Errorf("release: %v", err)
	}
	// No auth configured: everyone is admin (loopback only).
	if _, err := s.Reset(ctx, &weirv1.ResetRequest{Policy: "api", Key: "k"}); err != nil {
		t.Errorf("reset: %v", err)
	}
}

// TestAcquireWaitMS: wait_ms is taken by Acquire only, within its range.
func TestAcquireWaitMS(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	if r, err := s.Acquire(ctx, &weirv1.CheckRequest{Policy: "jobs", Key: "w", WaitMs: 100}); err != nil || !r.Allowed {
		t.Fatalf("acquire with wait_ms while free: %v %v", r, err)
	}
	for name, call := range map[string]func() error{
		"too long": func() error {
			_, err := s.Acquire(ctx, &weirv1.CheckRequest{Policy: "jobs", Key: "w", WaitMs: 5001})
			return err
		},
		"negative": func() error {
			_, err := s.Acquire(ctx, &weirv1.CheckRequest{Policy: "jobs", Key: "w", WaitMs: -5})
			return err
		},
		"check": func() error {
			_, err := s.Check(ctx, &weirv1.CheckRequest{Policy: "api", Key: "w", WaitMs: 100})
			return err
		},
	} {
		err := call()
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "wait_ms") {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming wait_ms", name, err)
		}
	}
}
