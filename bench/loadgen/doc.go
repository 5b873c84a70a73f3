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
package main
