package grpcapi

import (
	"context"
	"strings"
	"testing"

	"github.com/weir-go/weir/server/gen/weirv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func i64(n int64) *int64 { return &n }

// TestReport: Report settles the actual cost of work, into debt; its
// input is checked as Check's is, and cost is required.
func TestReport(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	r, err := s.Report(ctx, &weirv1.ReportRequest{Policy: "api", Key: "k", Cost: i64(100200)})
	if err != nil || !r.Allowed || r.Debt != 100000 || r.Remaining != 0 || r.RetryAfterMs != 1000010 || r.Clamped {
		t.Fatalf("report: %v %v", r, err)
	}
	if c, err := s.Check(ctx, &weirv1.CheckRequest{Policy: "api", Key: "k"}); err != nil || c.Allowed {
		t.Errorf("check in debt: %v %v", c, err)
	}
	for name, req := range map[string]*weirv1.ReportRequest{
		"cost":     {Policy: "api", Key: "k"},
		"cost ":    {Policy: "api", Key: "k", Cost: i64(-1)},
		"reserved": {Policy: "api", Key: "k", Cost: i64(1), Reserved: 201},
		"policy":   {Policy: "jobs", Key: "k", Cost: i64(1)},
		"policy ":  {Key: "k", Cost: i64(1)},
	} {
		_, err := s.Report(ctx, req)
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), strings.TrimSpace(name)+":") {
			t.Errorf("%v: %v, want INVALID_ARGUMENT naming %s", req, err, name)
		}
	}
}
