#!/usr/bin/env bash
# Profiles one e2e server while the load client runs one scenario against it: `perf record`
# (cpu-clock, call graphs) attached to the server for a window of the run, or the whole
# server run under `heaptrack`. Server on core 0, client on core 1, as in bench-e2e.sh.
#
#   scripts/profile-e2e.sh perf <peer> <scenario> <start-s> <seconds> <out.data>
#   scripts/profile-e2e.sh heaptrack <peer> <scenario> <client-seconds> <out>
#
# Then `perf report -i <out.data> --no-children --sort sym --stdio -g none`, or
# `heaptrack_print -f <out>.zst --print-peaks 1`. Set E2E_BIN to profile another build
# of bench/benches/e2e (for example one with a setting changed).
set -euo pipefail
cd "$(dirname "$0")/.."
tool=$1 peer=$2 scenario=$3
ulimit -n "$(ulimit -Hn)"
bin=${E2E_BIN:-$(cargo bench -p tower-sse-bench --bench e2e --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\/e2e-[0-9a-f]*\))/\1/p' | tail -1)}
port=${SSE_BENCH_PORT:-38919}
server=
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; }
trap cleanup EXIT
wait_for_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.05
  done
}
case $tool in
  perf)
    start=$4 seconds=$5 out=$6
    taskset -c 0 "$bin" server "$peer" "$port" &
    server=$!
    wait_for_port
    timeout 150 taskset -c 1 "$bin" client "$peer" "$port" "$server" "$scenario" 2>/dev/null &
    client=$!
    sleep "$start"
    perf record -e cpu-clock -F 4999 -g -p "$server" -o "$out" -- sleep "$seconds" >/dev/null 2>&1
    wait "$client"
    ;;
  heaptrack)
    seconds=$4 out=$5
    taskset -c 0 heaptrack -o "$out" "$bin" server "$peer" "$port" >/dev/null 2>&1 &
    wait_for_port
    server=$(pgrep -f "e2e-.* server $peer $port" | tail -1)
    timeout "$seconds" taskset -c 1 "$bin" client "$peer" "$port" "$server" "$scenario" 2>/dev/null || true
    kill "$server"
    # heaptrack writes its file after the server exits.
    while pgrep -f "heaptrack -o $out" >/dev/null; do sleep 0.5; done
    server=
    ;;
  *)
    echo "usage: $0 perf|heaptrack ..." >&2
    exit 2
    ;;
esac
