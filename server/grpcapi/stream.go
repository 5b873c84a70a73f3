package grpcapi

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/gen/weirv1"
	"github.com/weir-go/weir/server/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errDraining ends the streams open when Drain is called.
var errDraining = status.Error(codes.Unavailable, "weir: the server is shutting down: messages without an answer were not decided")

// CheckStream implements weirv1.WeirServer: every message is one Check,
// decided as soon as it is read and answered with its id before the next
// message is read, so answers come in request order and a stream holds
// at most one undecided message (HTTP/2 flow control stops a client that
// sends faster than it reads answers). Bad input is answered with a
// CheckStreamError and the stream goes on; a message that cannot be
// decoded, a cancelled context or Drain ends the stream.
func (s *Server) CheckStream(stream grpc.BidiStreamingServer[weirv1.CheckStreamRequest, weirv1.CheckStreamResponse]) error {
	select {
	case <-s.drain:
		return errDraining
	default:
	}
	// A worker reads, decides and answers; this goroutine waits for it or
	// for Drain. Returning ends the stream, which unblocks the worker's
	// Recv; stopped (under mu, held while a message is decided and
	// answered) keeps it from deciding anything after that, so every
	// decided message is answered.
	var (
		mu      sync.Mutex
		stopped bool
	)
	done := make(chan error, 1)
	go func() {
		ctx := stream.Context()
		for {
			m, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
			mu.Lock()
			if stopped {
				mu.Unlock()
				done <- nil
				return
			}
			err = stream.Send(s.answer(ctx, m))
			mu.Unlock()
			if err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-s.drain:
		mu.Lock()
		stopped = true
		mu.Unlock()
		return errDraining
	}
}

// answer decides one stream message as Check would.
func (s *Server) answer(ctx context.Context, m *weirv1.CheckStreamRequest) *weirv1.CheckStreamResponse {
	out := &weirv1.CheckStreamResponse{Id: m.GetId()}
	var err error
	switch {
	case m.GetCheck() == nil:
		err = &weir.FieldError{Field: "check", Reason: "is required"}
	case !s.gate.Enter():
		err = service.ErrOverloaded
	default:
		var res *weirv1.CheckResponse
		res, err = s.check(ctx, m.GetCheck())
		s.gate.Leave()
		if err == nil {
			out.Answer = &weirv1.CheckStreamResponse_Result{Result: res}
			return out
		}
		var fe *weir.FieldError
		if errors.As(err, &fe) {
			err = &weir.FieldError{Field: "check." + fe.Field, Reason: fe.Reason, Err: fe.Err}
		}
	}
	code, msg := classify(err)
	out.Answer = &weirv1.CheckStreamResponse_Error{Error: &weirv1.CheckStreamError{Code: int32(code), Message: msg}}
	return out
}
