package main

// Lean clients for the load generator. The net/http and grpc-go clients
// spend about as much CPU per call as the server does, and on one
// two-core machine that CPU is taken from the server: the load generator
// becomes the ceiling of the measurement. These clients do the least a
// correct client must: HTTP/1.1 with keep-alive over one connection per
// worker, and gRPC over HTTP/2 frames written and read directly (HPACK
// with its dynamic table, flow control, SETTINGS and PING answered), with
// pre-encoded request bodies. Every answer is still checked: HTTP status
// 200 and a JSON body; gRPC :status 200, one message and grpc-status 0.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/weir-go/weir/server/gen/weirv1"
)

// rawHTTPCaller sends POST /v1/check over one keep-alive connection per
// worker.
func rawHTTPCaller(base string, bodies [][]byte, clients int) (func(context.Context, int, int) error, func(), error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" {
		return nil, nil, fmt.Errorf("rawhttp needs an http:// URL (got %q)", base)
	}
	reqs := make([][]byte, len(bodies))
	for k, b := range bodies {
		reqs[k] = fmt.Appendf(nil, "POST /v1/check HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", u.Host, len(b), b)
	}
	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	conns := make([]*conn, clients)
	for w := range conns {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			return nil, nil, err
		}
		conns[w] = &conn{c: c, br: bufio.NewReaderSize(c, 16<<10)}
	}
	call := func(_ context.Context, w, i int) error {
		cn := conns[w]
		k := (w*7919 + i*104729) % len(reqs)
		if _, err := cn.c.Write(reqs[k]); err != nil {
			return err
		}
		return readHTTPResponse(cn.br)
	}
	closeFn := func() {
		for _, cn := range conns {
			cn.c.Close()
		}
	}
	return call, closeFn, nil
}

// readHTTPResponse reads one response with a Content-Length body and
// checks that it is a 200 carrying a JSON decision.
func readHTTPResponse(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", bytes.TrimSpace(line))
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		const cl = "content-length:"
		if len(line) > len(cl) && bytes.EqualFold(line[:len(cl)], []byte(cl)) {
			n, err = strconv.Atoi(string(bytes.TrimSpace(line[len(cl):])))
			if err != nil {
				return fmt.Errorf("content-length %q", line)
			}
		}
	}
	if n < 0 {
		return errors.New("response without Content-Length")
	}
	body, err := br.Peek(n)
	if err != nil {
		return err
	}
	if !bytes.Contains(body, []byte(`"allowed":`)) {
		return fmt.Errorf("body without a decision: %q", body)
	}
	_, err = br.Discard(n)
	return err
}

// h2conn is one HTTP/2 connection carrying unary gRPC calls.
type h2conn struct {
	c net.Conn

	wmu    sync.Mutex // guards the fields below and writes
	bw     *bufio.Writer
	fr     *http2.Framer
	enc    *hpack.Encoder
	hbuf   bytes.Buffer
	nextID uint32
	sendWn int64 // connection send window
	wcond  *sync.Cond
	err    error

	pmu     sync.Mutex
	pending map[uint32]*h2call
}

// h2call is one outstanding call; a worker reuses its own.
type h2call struct {
	done    chan error
	gotMsg  bool
	status  string // grpc-status from the trailers
	message string
}

const h2window = 1 << 30

func dialH2(addr string) (*h2conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := &h2conn{c: c, bw: bufio.NewWriterSize(c, 32<<10), nextID: 1, sendWn: 65535, pending: map[uint32]*h2call{}}
	h.wcond = sync.NewCond(&h.wmu)
	h.fr = http2.NewFramer(h.bw, bufio.NewReaderSize(c, 64<<10))
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.hbuf)
	if _, err := h.bw.WriteString(http2.ClientPreface); err != nil {
		return nil, err
	}
	// Large receive windows: the load generator always reads at once.
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2window}, http2.Setting{ID: http2.SettingEnablePush, Val: 0}); err != nil {
		return nil, err
	}
	if err := h.fr.WriteWindowUpdate(0, h2window-65535); err != nil {
		return nil, err
	}
	if err := h.bw.Flush(); err != nil {
		return nil, err
	}
	go h.readLoop()
	return h, nil
}

func (h *h2conn) fail(err error) {
	h.wmu.Lock()
	if h.err == nil {
		h.err = err
	}
	h.wcond.Broadcast()
	h.wmu.Unlock()
	h.pmu.Lock()
	for id, p := range h.pending {
		p.done <- err
		delete(h.pending, id)
	}
	h.pmu.Unlock()
}

func (h *h2conn) readLoop() {
	var recv int64
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.fail(err)
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.wmu.Lock()
				err = h.fr.WriteSettingsAck()
				if err == nil {
					err = h.bw.Flush()
				}
				h.wmu.Unlock()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				h.wmu.Lock()
				err = h.fr.WritePing(true, f.Data)
				if err == nil {
					err = h.bw.Flush()
				}
				h.wmu.Unlock()
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				h.wmu.Lock()
				h.sendWn += int64(f.Increment)
				h.wcond.Broadcast()
				h.wmu.Unlock()
			}
		case *http2.GoAwayFrame:
			err = fmt.Errorf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			h.finish(f.StreamID, fmt.Errorf("stream reset: %v", f.ErrCode))
		case *http2.DataFrame:
			recv += int64(len(f.Data()))
			h.pmu.Lock()
			p := h.pending[f.StreamID]
			h.pmu.Unlock()
			if p != nil && len(f.Data()) >= 5 {
				p.gotMsg = true
			}
			if recv > h2window/2 {
				h.wmu.Lock()
				err = h.fr.WriteWindowUpdate(0, uint32(recv))
				if err == nil {
					err = h.bw.Flush()
				}
				h.wmu.Unlock()
				recv = 0
			}
		case *http2.MetaHeadersFrame:
			h.pmu.Lock()
			p := h.pending[f.StreamID]
			h.pmu.Unlock()
			if p == nil {
				break
			}
			for _, hf := range f.Fields {
				switch hf.Name {
				case ":status":
					if hf.Value != "200" {
						h.finish(f.StreamID, fmt.Errorf(":status %s", hf.Value))
					}
				case "grpc-status":
					p.status = hf.Value
				case "grpc-message":
					p.message = hf.Value
				}
			}
			if f.StreamEnded() {
				switch {
				case p.status != "0":
					h.finish(f.StreamID, fmt.Errorf("grpc-status %s: %s", p.status, p.message))
				case !p.gotMsg:
					h.finish(f.StreamID, errors.New("no response message"))
				default:
					h.finish(f.StreamID, nil)
				}
			}
		}
		if err != nil {
			h.fail(err)
			return
		}
	}
}

func (h *h2conn) finish(id uint32, err error) {
	h.pmu.Lock()
	p := h.pending[id]
	delete(h.pending, id)
	h.pmu.Unlock()
	if p != nil {
		p.done <- err
	}
}

// call sends one unary call of path with the gRPC-framed message msg and
// waits for its answer.
func (h *h2conn) call(ctx context.Context, p *h2call, authority, path string, msg []byte) error {
	*p = h2call{done: p.done}
	h.wmu.Lock()
	for h.err == nil && h.sendWn < int64(len(msg)) {
		h.wcond.Wait()
	}
	if h.err != nil {
		err := h.err
		h.wmu.Unlock()
		return err
	}
	id := h.nextID
	h.nextID += 2
	h.pmu.Lock()
	h.pending[id] = p
	h.pmu.Unlock()
	h.hbuf.Reset()
	for _, f := range [...]hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: path},
		{Name: ":authority", Value: authority},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	} {
		h.enc.WriteField(f)
	}
	err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hbuf.Bytes(), EndHeaders: true})
	if err == nil {
		err = h.fr.WriteData(id, true, msg)
	}
	if err == nil {
		err = h.bw.Flush()
	}
	h.sendWn -= int64(len(msg))
	h.wmu.Unlock()
	if err != nil {
		h.fail(err)
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// grpcFrame prefixes a marshalled message with gRPC's 5-byte header.
func grpcFrame(m []byte) []byte {
	b := make([]byte, 5+len(m))
	binary.BigEndian.PutUint32(b[1:], uint32(len(m)))
	copy(b[5:], m)
	return b
}

// rawGRPCCaller makes unary calls of path with one of msgs (already
// gRPC-framed) per call, over conns HTTP/2 connections shared by the
// workers.
func rawGRPCCaller(addr, path string, msgs [][]byte, clients, conns int) (func(context.Context, int, int) error, func(), error) {
	hs := make([]*h2conn, max(conns, 1))
	for i := range hs {
		h, err := dialH2(addr)
		if err != nil {
			return nil, nil, err
		}
		hs[i] = h
	}
	calls := make([]h2call, clients)
	for w := range calls {
		calls[w].done = make(chan error, 1)
	}
	call := func(ctx context.Context, w, i int) error {
		k := (w*7919 + i*104729) % len(msgs)
		return hs[w%len(hs)].call(ctx, &calls[w], addr, path, msgs[k])
	}
	closeFn := func() {
		for _, h := range hs {
			h.c.Close()
		}
	}
	return call, closeFn, nil
}

// rawCaller builds the lean client for proto rawhttp, rawgrpc or
// rawenvoy, sending the same requests as the http, grpc and envoy
// clients.
func rawCaller(kind, httpURL, grpcAddr, policy, domain string, keys, batch, clients, conns int) (func(context.Context, int, int) error, func(), error) {
	if kind == "rawhttp" {
		return rawHTTPCaller(httpURL, httpBodies(policy, keys, batch), clients)
	}
	msgs := make([][]byte, keys)
	path := "/weir.v1.Weir/Check"
	for k := range keys {
		var m proto.Message
		switch {
		case kind == "rawenvoy":
			path = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
			req := &rlv3.RateLimitRequest{Domain: domain}
			for j := range batch {
				req.Descriptors = append(req.Descriptors, &rlcommon.RateLimitDescriptor{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: "user", Value: strconv.Itoa((k + j*7919) % keys)}}})
			}
			m = req
		case batch == 1:
			m = &weirv1.CheckRequest{Policy: policy, Key: "user:" + strconv.Itoa(k)}
		default:
			path = "/weir.v1.Weir/CheckBatch"
			req := &weirv1.CheckBatchRequest{}
			for j := range batch {
				req.Checks = append(req.Checks, &weirv1.CheckRequest{Policy: policy, Key: "user:" + strconv.Itoa((k+j*7919)%keys)})
			}
			m = req
		}
		b, err := proto.Marshal(m)
		if err != nil {
			return nil, nil, err
		}
		msgs[k] = grpcFrame(b)
	}
	return rawGRPCCaller(grpcAddr, path, msgs, clients, conns)
}
