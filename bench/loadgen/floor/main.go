// Command floor is the baseline for the load generator: a net/http server
// whose POST /v1/check handler only reads the body and writes a fixed
// decision. Its CPU per request is what net/http itself costs on the
// machine, the floor under `weir serve`'s HTTP figures.
//
//	go run ./bench/loadgen/floor -addr 127.0.0.1:18090 &
//	go run ./bench/loadgen -http http://127.0.0.1:18090 -pid $! -proto http -clients 16
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	flag.Parse()
	answer := []byte(`{"allowed":true,"policy":"bench","limit":1000000,"remaining":999999,"retry_after_ms":0,"reset_after_ms":1,"limit_name":"1000000/s"}`)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/check", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
