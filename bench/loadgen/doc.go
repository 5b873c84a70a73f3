// Command loadgen drives a running `weir serve` over HTTP JSON or gRPC and
// reports decisions per second, latency percentiles and the server's CPU
// time per decision. With -mode keys it fills the server with distinct
// keys and reports its resident memory per key.
//
//	weir serve --config bench/loadgen/bench.yaml --envoy-config bench/loadgen/envoy.yaml &
//	go run ./bench/loadgen -pid $! -proto http,grpc -clients 1,16,64 -keys 10000 -duration 10s
//
// Server CPU comes from /proc/PID/stat (utime+stime, what getrusage
// reports for that process); the load generator's own CPU from
// getrusage(RUSAGE_SELF). Both share the machine's cores: the load
// generator's CPU is the ceiling of what can be measured on one box.
//
// The protocols http, grpc and envoy use net/http and grpc-go clients.
// rawhttp, rawgrpc and rawenvoy send the same requests through lean
// clients (raw.go): HTTP/1.1 with one keep-alive connection per client,
// and gRPC as HTTP/2 frames written and read directly. They spend about
// half the CPU per call of the library clients, which leaves more of the
// shared cores to the server; every answer is still checked (status 200
// and a decision; grpc-status 0 and a response message).
package main
