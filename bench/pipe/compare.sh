#!/usr/bin/env bash
# compare.sh: weir pipe -L R against pv -q -L R on the same input, for
# 10 s at each rate. For each run it prints the achieved rate, its error
# against the target, and the process's CPU time (user+sys, from bash's
# time, millisecond resolution).
#
#   go build -o /tmp/weir ./cmd/weir && bench/pipe/compare.sh /tmp/weir
#
# Environment: RATES (default "1m 100m 1g"), SECONDS_PER_RUN (10),
# REPEAT (3), MODES ("file pipe"): "file" reads /dev/zero and writes
# /dev/null (no pipe: both tools read and write through a buffer);
# "pipe" feeds the tool from `head -c` through a pipe and drains it with
# cat (both tools use splice(2)).
set -euo pipefail
WEIR=${1:?usage: compare.sh path/to/weir}
RATES=${RATES:-"1m 100m 1g"}
SECS=${SECONDS_PER_RUN:-10}
REPEAT=${REPEAT:-3}
MODES=${MODES:-"file pipe"}
command -v pv >/dev/null || { echo "pv is not installed" >&2; exit 1; }

bytes() { # 1m -> 1048576
  local n=${1%?} u=${1: -1}
  case $u in k) echo $((n << 10));; m) echo $((n << 20));; g) echo $((n << 30));; *) echo "$1";; esac
}

run() { # tool mode rate size -> "elapsed cpu"
  local tool=$1 mode=$2 rate=$3 size=$4 out
  local cmd
  if [[ $tool == pv ]]; then cmd="pv -q -L $rate"; else cmd="$WEIR pipe -q -L $rate"; fi
  out=$(mktemp)
  if [[ $mode == file ]]; then
    bash -c "TIMEFORMAT='%3R %3U %3S'; time $cmd -S -s $size </dev/zero >/dev/null" 2>"$out"
  else
    head -c "$size" /dev/zero | bash -c "TIMEFORMAT='%3R %3U %3S'; time $cmd" 2>"$out" | cat >/dev/null
  fi
  awk '{printf "%s %.3f\n", $1, $2 + $3}' "$out"
  rm -f "$out"
}

# Warm up: the first run of a freshly built binary reads it from disk.
"$WEIR" pipe -q </dev/null >/dev/null
pv -q </dev/null >/dev/null

printf '%-5s %-5s %-6s %9s %14s %9s %8s\n' tool mode rate elapsed achieved_B/s error% cpu_s
for mode in $MODES; do
  for rate in $RATES; do
    r=$(bytes "$rate")
    size=$((r * SECS))
    for i in $(seq "$REPEAT"); do
      for tool in weir pv; do
        read -r el cpu < <(run "$tool" "$mode" "$rate" "$size")
        awk -v t="$tool" -v m="$mode" -v rate="$rate" -v r="$r" -v s="$size" -v el="$el" -v cpu="$cpu" \
          'BEGIN { a = s / el; printf "%-5s %-5s %-6s %9.3f %14.0f %+8.2f%% %8.3f\n", t, m, rate, el, a, (a / r - 1) * 100, cpu }'
      done
    done
  done
done
