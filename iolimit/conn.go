package iolimit

import (
	"context"
	"net"
)

// A Conn is a net.Conn whose reads and writes are throttled, each
// direction by its own [Budget]. Other methods are the underlying
// connection's.
type Conn struct {
	net.Conn
	ctx         context.Context
	read, write Budget
	err         error
}

// NewConn returns c with reads throttled by read and writes by write. A
// nil budget leaves that direction unthrottled; to throttle both
// directions together, pass the same budget twice. Waits end with ctx's
// error as soon as ctx is done (closing the connection does not end
// them; cancel ctx).
func NewConn(ctx context.Context, c net.Conn, read, write Budget) *Conn {
	cn := &Conn{Conn: c, ctx: ctx, read: read, write: write}
	switch {
	case c == nil:
		cn.err = fieldErr("c", "is nil")
	case read != nil && read.Burst() < 1:
		cn.err = checkBudget(read, "read")
	case write != nil && write.Burst() < 1:
		cn.err = checkBudget(write, "write")
	}
	return cn
}

// Read reads at most the read budget's burst, then waits for the bytes
// read, as [Reader.Read] does.
func (c *Conn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.read == nil {
		return c.Conn.Read(p)
	}
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if b := c.read.Burst(); int64(len(p)) > b {
		p = p[:b]
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if werr := waitN(c.ctx, c.read, int64(n)); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Write waits for the write budget and writes, piece by piece, as
// [Writer.Write] does.
func (c *Conn) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.write == nil {
		return c.Conn.Write(p)
	}
	return writeThrottled(c.ctx, c.Conn, c.write, p)
}

// A Listener is a net.Listener whose accepted connections are throttled.
type Listener struct {
	net.Listener
	ctx     context.Context
	budgets func(net.Conn) (read, write Budget)
}

// NewListener returns ln with every accepted connection wrapped by
// [NewConn] with the budgets that budgets returns for it: typically a new
// per-connection [Limit] combined with a shared one by [All]. Waits end
// when ctx is done.
//
//	shared, _ := iolimit.NewLimit(10<<20, 0) // 10 MiB/s for the whole server
//	ln = iolimit.NewListener(ctx, ln, func(net.Conn) (read, write iolimit.Budget) {
//		own, _ := iolimit.NewLimit(256<<10, 0) // 256 KiB/s per connection
//		return nil, iolimit.All(own, shared)
//	})
func NewListener(ctx context.Context, ln net.Listener, budgets func(net.Conn) (read, write Budget)) *Listener {
	return &Listener{Listener: ln, ctx: ctx, budgets: budgets}
}

// Accept waits for the next connection and returns it throttled.
func (l *Listener) Accept() (net.Conn, error) {
	if l.Listener == nil {
		return nil, fieldErr("ln", "is nil")
	}
	if l.budgets == nil {
		return nil, fieldErr("budgets", "is nil")
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r, w := l.budgets(c)
	return NewConn(l.ctx, c, r, w), nil
}
