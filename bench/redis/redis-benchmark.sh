#!/usr/bin/env bash
# redis-benchmark.sh: Weir's decision script under redis-benchmark, the
# ceiling the batching store is compared with (issue 3: "≥ 70% of what
# redis-benchmark reaches with your own script at pipeline depth 16").
#
#   bench/redis/redis-benchmark.sh          # from the repository root
#
# redis-benchmark cannot send the script's packed arguments: they are
# binary (NUL bytes), and its -x (last argument from stdin) cuts them at
# the first NUL. So the script runs behind a one-line text wrapper that
# packs the same numbers (a token-bucket take of 1 at 1,000,000/s, burst
# 1,000,000: every decision writes) and copies them to each decision's
# argument. The wrapper alone is measured too: its cost is inside the
# script's figures, so they are slightly pessimistic.
#
# It starts its own redis-server on a free port and stops it at the end.
# Environment: REQUESTS (400000 decisions per case), BATCHES ("1 16 64"
# decisions per call), CLIENTS (redis-benchmark's -c, 50).
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${REQUESTS:-400000}
BATCHES=${BATCHES:-"1 16 64"}
CLIENTS=${CLIENTS:-50}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark is not installed (Debian: redis-tools)" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --daemonize yes \
  --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
R() { redis-cli -p "$port" "$@"; }

wrap='local b = struct.pack("<lllllllllll", 1, 1, 1, 0, -1, 0, 0, 1000000, 1, 1000000, 1) for i = 1, tonumber(ARGV[3]) do ARGV[4 + i] = b end'
script=$(for f in $(ls redisstore/scripts/*.lua | sort); do cat "$f"; echo; done)
full_sha=$(R script load "$wrap
$script")
wrap_sha=$(R script load "$wrap return 1")

echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), redis-benchmark -P 16 -c $CLIENTS -r 1000, $REQUESTS decisions per case"
printf '%-9s %-13s %12s %12s %14s\n' batch script calls/s decisions/s µs/call
for n in $BATCHES; do
  keys=$(for _ in $(seq "$n"); do printf ' k:__rand_int__'; done)
  for which in wrapper script; do
    sha=$wrap_sha; [[ $which == script ]] && sha=$full_sha
    R config resetstat >/dev/null
    # shellcheck disable=SC2086 # keys are separate words
    rps=$(redis-benchmark -p "$port" -P 16 -c "$CLIENTS" -r 1000 -n $((REQUESTS / n)) -q \
      evalsha "$sha" "$n" $keys "" 0 "$n" 1 2>&1 | tr '\r' '\n' | tail -1 | grep -o '[0-9.]* requests per second' | cut -d' ' -f1)
    usec=$(R info commandstats | grep '^cmdstat_evalsha:' | sed 's/.*usec_per_call=\([0-9.]*\).*/\1/')
    awk -v n="$n" -v w="$which" -v r="$rps" -v u="$usec" 'BEGIN { printf "%-9s %-13s %12.0f %12.0f %14.2f\n", n, w, r, r * n, u }'
  done
done
