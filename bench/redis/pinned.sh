#!/usr/bin/env bash
# pinned.sh: Redis CPU per decision without the benchmark client stealing
# Redis's core. INFO commandstats times a command by the wall clock, so when
# the Go client and redis-server share two cores, every preemption of Redis
# by the client counts as Redis time. Here redis-server runs alone on CPU 0
# and the benchmark (GOMAXPROCS=1) on CPU 1, and BenchmarkRedisAllow's
# redis-µs/op is Redis's own cost per decision, for Weir and redis_rate
# alike. (The client then has one core, so decisions/s is lower than in the
# shared run: use this for Redis CPU, the shared run for throughput.)
#
#   bench/redis/pinned.sh                     # from the repository root
#
# Environment: BENCH (default 'RedisAllow/keys=1000/g=(16|64|256)/'),
# COUNT (3), BENCHTIME (2s).
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH=${BENCH:-'RedisAllow/keys=1000/g=(16|64|256)/'}
COUNT=${COUNT:-3}
BENCHTIME=${BENCHTIME:-2s}
command -v taskset >/dev/null || { echo "taskset is not installed (Debian: util-linux)" >&2; exit 1; }
[[ $(nproc) -ge 2 ]] || { echo "needs at least 2 CPUs" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --daemonize yes --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

(cd bench && go test -c -o "$dir/bench.test" .)
WEIR_REDIS_ADDR=127.0.0.1:$port taskset -c 1 "$dir/bench.test" -test.run '^$' -test.bench "$BENCH" \
  -test.cpu 1 -test.count "$COUNT" -test.benchtime "$BENCHTIME"
