// Command weir is Weir's command line.
//
//	weir serve [--config FILE] [--store memory|sqlite:PATH|redis://HOST:PORT/DB]
//	           [--http 127.0.0.1:8080] [--grpc 127.0.0.1:8081]
//	weir check --policy P --key K [--cost N] [--server http://127.0.0.1:8080]
//	weir config check FILE
//	weir pipe [-L RATE] [-s SIZE] [FILE...]
//	weir version
//
// `weir serve` runs the rate-limit service: with no flags it serves a small
// built-in demo policy set from the memory store and prints where to look.
// Policies come from a strict YAML file and are reloaded when it changes;
// callers never choose their limits. The same process answers a native
// HTTP JSON API (POST /v1/check), a gRPC API (weir.v1.Weir), and Envoy's
// global rate-limit protocol from envoyproxy/ratelimit's unchanged YAML,
// with Prometheus metrics, health endpoints, bearer-token auth and a live
// dashboard. Several instances share limits through Redis. See
// docs/server.md and docs/envoy.md.
//
// `weir check` asks a running server for one decision (exit status 0 when
// allowed, 1 when denied, 2 for bad usage, 3 when the server refuses the
// request, 4 when no decision came back). `weir config check` validates a
// policy file without serving. `weir pipe` throttles a stream like pv -L.
// `weir version` (or `weir --version`) prints the module versions and the
// VCS revision the binary was built from.
//
// main only wires signals (SIGINT and SIGTERM cancel the context, which
// starts a graceful shutdown) and exit codes; the program itself is
// internal/cli.Run, which the command tests call in-process. The server
// behind `weir serve` is package server/daemon.
package main
