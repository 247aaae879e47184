#!/usr/bin/env bash
# Instructions per event for cases of benches/encode.rs, counted by callgrind, so the figure
# does not depend on the machine's load.
#
#   scripts/callgrind-encode.sh [BENCH_BINARY] [CASE...]
#
# Each case runs twice under `valgrind --tool=callgrind`, with SSE_BENCH_EVENTS=LOW and HIGH;
# one case drains 6 bodies (1 untimed pass + 5 samples), so instructions per event are
# (Ir(HIGH) - Ir(LOW)) / (6 * (HIGH - LOW)): the fixed costs (runtime, service, divan) cancel.
# Without BENCH_BINARY it builds the bench and uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
LOW=${LOW:-20000}
HIGH=${HIGH:-120000}
bin=${1:-}
if [ -z "$bin" ]; then
  bin=$(cargo bench --bench encode --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
fi
shift || true
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  cases=(json_with_id::tower_sse_event json_with_id::axum_event json_with_id::actix_event
    json_plain::tower_sse_item json_plain::tower_sse_event event_text::tower_sse_event)
fi
out=$(mktemp -d)
ir() {
  SSE_BENCH_EVENTS=$2 valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
    "$bin" --bench --exact "encode::$1" >/dev/null 2>"$out/log"
  sed -n 's/^summary: //p;s/^totals: //p' "$out/cg" | head -1
}
printf '%-36s %12s\n' case 'Ir/event'
for case in "${cases[@]}"; do
  low=$(ir "$case" "$LOW")
  high=$(ir "$case" "$HIGH")
  printf '%-36s %12.1f\n' "$case" "$(echo "($high - $low) / (6 * ($HIGH - $LOW))" | bc -l)"
done
rm -r "$out"
