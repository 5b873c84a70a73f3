package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/weir-go/weir/examples/internal/serve"
	"github.com/weir-go/weir/iolimit"
)

// A record is one element of the streamed array.
type record struct {
	ID      int       `json:"id"`
	Name    string    `json:"name"`
	Email   string    `json:"email"`
	Score   float64   `json:"score"`
	Created time.Time `json:"created"`
}

// makeRecord builds record i: the data exists only while it is encoded.
func makeRecord(i int) record {
	return record{
		ID:      i,
		Name:    "user-" + strconv.Itoa(i),
		Email:   "user" + strconv.Itoa(i) + "@example.com",
		Score:   float64(i%1000) / 10,
		Created: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
	}
}

// writeRecords writes a JSON array of n records to w, one record at a
// time, flushing every 64 records. It stops at the first write error
// (the client went away, or its context ended while waiting).
func writeRecords(w http.ResponseWriter, n int) error {
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	if _, err := w.Write([]byte("[\n")); err != nil {
		return err
	}
	for i := range n {
		if i > 0 {
			if _, err := w.Write([]byte(",")); err != nil {
				return err
			}
		}
		if err := enc.Encode(makeRecord(i)); err != nil { // writes the record and "\n"
			return err
		}
		if i%64 == 63 {
			if err := rc.Flush(); err != nil {
				return err
			}
		}
	}
	_, err := w.Write([]byte("]\n"))
	return err
}

// newHandler serves /records: n records, each client throttled to
// perClient bytes/s and all of them together to total bytes/s.
func newHandler(n int, perClient, total int64) (http.Handler, error) {
	shared, err := iolimit.NewLimit(total, 0)
	if err != nil {
		return nil, fmt.Errorf("total: %w", err)
	}
	if _, err := iolimit.NewLimit(perClient, 0); err != nil {
		return nil, fmt.Errorf("rate: %w", err)
	}
	records := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := writeRecords(w, n); err != nil && r.Context().Err() == nil {
			log.Printf("stream to %s: %v", r.RemoteAddr, err)
		}
	})
	throttled := iolimit.Handler(records, func(*http.Request) (iolimit.Budget, error) {
		own, err := iolimit.NewLimit(perClient, 0)
		if err != nil {
			return nil, err
		}
		return iolimit.All(own, shared), nil
	})
	mux := http.NewServeMux()
	mux.Handle("GET /records", throttled)
	return mux, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runArgs(ctx, os.Args[1:], os.Stderr); errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	} else if err != nil {
		log.Fatal(err)
	}
}

// config is what the flags set.
type config struct {
	addr        string
	records     int
	rate, total int64
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8091", "listen address (8091: clear of weir serve's 8080 and 8081)")
	fs.IntVar(&c.records, "records", 400_000, "number of records in the array")
	fs.Int64Var(&c.rate, "rate", 32<<10, "bytes per second per client")
	fs.Int64Var(&c.total, "total", 10<<20, "bytes per second for all clients together")
	return c, fs.Parse(args)
}

// runArgs serves with the settings of the command-line arguments until ctx
// is done, logging where to stderr.
func runArgs(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := log.New(stderr, "", log.LstdFlags)
	return run(ctx, c.addr, c.records, c.rate, c.total, func(a net.Addr) { logger.Printf("serving http://%s/records", a) })
}

// run serves until ctx is done, calling ready with the listening address.
func run(ctx context.Context, addr string, n int, rate, total int64, ready func(net.Addr)) error {
	h, err := newHandler(n, rate, total)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	ready(ln.Addr())
	return serve.Until(ctx, srv, ln)
}
