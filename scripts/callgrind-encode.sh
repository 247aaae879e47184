#!/usr/bin/env bash
# Per-event cost of cases of bench/benches/encode.rs that does not depend on the machine's load:
# instructions counted by callgrind, and (MODE=cpu) the CPU time the process used.
#
#   scripts/callgrind-encode.sh [BENCH_BINARY] [CASE...]       # Ir per event
#   MODE=cpu scripts/callgrind-encode.sh [BENCH_BINARY] [CASE...]  # CPU ns per event
#
# Each case runs with SSE_BENCH_EVENTS=LOW and HIGH; one case drains 6 bodies (1 untimed
# pass + 5 samples), so the per-event cost is (cost(HIGH) - cost(LOW)) / (6 * (HIGH - LOW)):
# the fixed costs (runtime, service, divan) cancel. CPU mode takes the least user+sys time
# of REPS runs at each size. Without BENCH_BINARY it builds the bench and uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-ir}
if [ "$MODE" = cpu ]; then
  LOW=${LOW:-100000}
  HIGH=${HIGH:-1000000}
else
  LOW=${LOW:-10000}
  HIGH=${HIGH:-60000}
fi
REPS=${REPS:-3}
bin=${1:-}
if [ -z "$bin" ]; then
  bin=$(cargo bench -p tower-sse-bench --bench encode --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
fi
shift || true
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  cases=(json_with_id::tower_sse_event json_with_id::axum_event json_with_id::actix_event
    json_plain::tower_sse_item json_plain::tower_sse_event json_plain::axum_event
    json_plain::actix_event event_text::tower_sse_event event_text::axum_event
    event_text::actix_event)
fi
out=$(mktemp -d)
trap 'rm -r "$out"' EXIT
ir() {
  SSE_BENCH_EVENTS=$2 valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
    "$bin" --bench --exact "encode::$1" >/dev/null 2>"$out/log"
  sed -n 's/^summary: //p;s/^totals: //p' "$out/cg" | head -1
}
# Least user+sys CPU seconds over REPS runs.
cpu() {
  local best=
  for _ in $(seq "$REPS"); do
    SSE_BENCH_EVENTS=$2 /usr/bin/time -f '%U %S' -o "$out/time" \
      "$bin" --bench --exact "encode::$1" >/dev/null 2>&1
    local t
    t=$(awk '{print $1 + $2}' "$out/time")
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
  done
  echo "$best * 1000000000"
}
if [ "$MODE" = cpu ]; then unit='CPU ns/event'; else unit='Ir/event'; fi
printf '%-36s %12s\n' case "$unit"
for case in "${cases[@]}"; do
  low=$($MODE "$case" "$LOW")
  high=$($MODE "$case" "$HIGH")
  printf '%-36s %12.1f\n' "$case" "$(echo "(($high) - ($low)) / (6 * ($HIGH - $LOW))" | bc -l)"
done
