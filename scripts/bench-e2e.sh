#!/usr/bin/env bash
# End-to-end benchmark of tower-sse against axum's `Sse`: the same routes on the same hyper
# settings, the server pinned to core 0 on one runtime thread, the load client on core 1,
# over 127.0.0.1. Prints the median of each metric over the runs; see BENCHMARKS.md.
#
#   scripts/bench-e2e.sh [runs] [scenario...]
#
# runs defaults to 3; scenarios to `burst1 burst100 idle floor fanout`. Each client phase has a
# deadline and each client run a timeout, so the script always ends (about 2 minutes a run).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
shift || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(burst1 burst100 idle floor fanout)
port=${SSE_BENCH_PORT:-38917}

# 10,000 idle connections need a descriptor each, in the server and in the client.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 10100 ]; then
  echo "ulimit -n is $(ulimit -n); the idle scenario needs more than 10,100" >&2
fi

bin=$(cargo bench --bench e2e --no-run 2>&1 | sed -n 's/.*Executable .*e2e.rs (\(.*\))/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build benches/e2e.rs" >&2; exit 1; }

mkdir -p target/bench-e2e
results=target/bench-e2e/$(date -u +%Y%m%dT%H%M%SZ).tsv
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
echo "results: $results" >&2

server=
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; }
trap cleanup EXIT

for run in $(seq "$runs"); do
  # Alternate which server goes first, so drift on a shared machine hits both alike.
  if [ $((run % 2)) -eq 1 ]; then order=(tower-sse axum); else order=(axum tower-sse); fi
  for scenario in "${scenarios[@]}"; do
    for which in "${order[@]}"; do
      echo "run $run/$runs: $scenario on $which (load $(cut -d' ' -f1 /proc/loadavg))" >&2
      taskset -c 0 "$bin" server "$which" "$port" &
      server=$!
      for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
      done
      timeout 120 taskset -c 1 "$bin" client "$which" "$port" "$server" "$scenario" \
        | tee -a "$results" || echo "client failed or timed out" >&2
      kill "$server" 2>/dev/null || true
      wait "$server" 2>/dev/null || true
      server=
    done
  done
done

echo
echo "Medians of $runs runs, $(date -u +%Y-%m-%d), load average now $(cut -d' ' -f1-3 /proc/loadavg):"
"$bin" report "$results"
