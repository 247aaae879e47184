#!/usr/bin/env bash
# End-to-end benchmark of tower-sse against axum's `Sse` and actix-web-lab's `sse`: the same
# routes, each server pinned to core 0 (tower-sse and axum on one current-thread Tokio
# runtime, actix-web on one worker), the load client on core 1, over 127.0.0.1. Peers run
# one after another inside each run, so every figure in a table comes from the same run.
# Prints the median of each metric over the runs; see BENCHMARKS.md.
#
#   scripts/bench-e2e.sh [runs] [scenario...]
#
# runs defaults to 3; scenarios to `burst1 burst100 idle floor fanout fanout10k-2
# fanout10k-10 h2idle`. Peers are
# `<server>[/<setup>]` (see bench/benches/e2e/servers/mod.rs), set with
#   SSE_BENCH_PEERS     HTTP/1.1 scenarios (default: tower-sse tower-sse/tuned tower-sse/auto
#                       tower-sse/auto-tuned axum actix-web-lab)
#   SSE_BENCH_H2_PEERS  h2idle (default: tower-sse/h2 tower-sse/auto-tuned axum/h2
#                       actix-web-lab/h2, the last on actix-web's h2c listener)
# A peer named `<peer>+jemalloc` runs on jemalloc (Debian's libjemalloc2, preloaded).
# Each client phase has a deadline and each client run a timeout, so the script always ends.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
shift || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(burst1 burst100 idle floor fanout fanout10k-2 fanout10k-10 h2idle)
port=${SSE_BENCH_PORT:-38917}
read -r -a peers <<<"${SSE_BENCH_PEERS:-tower-sse tower-sse/tuned tower-sse/auto tower-sse/auto-tuned axum actix-web-lab}"
read -r -a h2_peers <<<"${SSE_BENCH_H2_PEERS:-tower-sse/h2 tower-sse/auto-tuned axum/h2 actix-web-lab/h2}"

# 10,000 idle connections need a descriptor each, in the server and in the client.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 10100 ]; then
  echo "ulimit -n is $(ulimit -n); the idle scenario needs more than 10,100" >&2
fi

bin=$(cargo bench -p tower-sse-bench --bench e2e --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\/e2e-[0-9a-f]*\))/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build bench/benches/e2e" >&2; exit 1; }

mkdir -p target/bench-e2e
results=target/bench-e2e/$(date -u +%Y%m%dT%H%M%SZ).tsv
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
echo "results: $results" >&2

server=
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; }
trap cleanup EXIT

for run in $(seq "$runs"); do
  for scenario in "${scenarios[@]}"; do
    case $scenario in
      h2idle) order=("${h2_peers[@]}") ;;
      *) order=("${peers[@]}") ;;
    esac
    # Reverse the order every other run, so drift on a shared machine hits all peers alike.
    if [ $((run % 2)) -eq 0 ]; then
      for ((i = 0, j = ${#order[@]} - 1; i < j; i++, j--)); do
        t=${order[i]}; order[i]=${order[j]}; order[j]=$t
      done
    fi
    for which in "${order[@]}"; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      echo "run $run/$runs: $scenario on $which (load $load)" >&2
      echo "RESULT	$scenario	load average at start	$which	$load" >>"$results"
      # `<peer>+jemalloc`: the same server on jemalloc (Debian's libjemalloc2, preloaded).
      preload=
      case $which in *+jemalloc) preload=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1) ;; esac
      if [ -n "$preload" ] || [[ $which != *+jemalloc ]]; then :; else
        echo "no libjemalloc.so.2 for $which (apt-get install libjemalloc2)" >&2; continue
      fi
      LD_PRELOAD=$preload taskset -c 0 "$bin" server "$which" "$port" &
      server=$!
      for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
      done
      # actix-web runs its accept loop and its worker on threads of their own: the RSS and
      # CPU the client reads are the whole process's, as for the other servers.
      timeout 150 taskset -c 1 "$bin" client "$which" "$port" "$server" "$scenario" \
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
