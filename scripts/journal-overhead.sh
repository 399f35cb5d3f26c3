#!/usr/bin/env bash
# Journaling overhead: roomd with and without --journal under roomd-bench
# `relay` (one engine input per message: the worst case) and `fanout`,
# alternating, server on core 0 and generator on core 1. Compare the
# "per_server_cpu_s" figures: they hold up best on a shared machine.
#
#   scripts/journal-overhead.sh [REPS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${1:-4}"
secs="${2:-5}"
cargo build --release -q -p roomd -p roomd-bench
out="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$out"' EXIT
port=19000
for rep in $(seq "$reps"); do
    for mode in plain journal; do
        args=(--listen "127.0.0.1:$port" --max-connections 20000 --rate-limit 0 --log-level warn)
        [ "$mode" = journal ] && args+=(--journal "$out/journal.jsonl")
        taskset -c 0 target/release/roomd "${args[@]}" >/dev/null 2>&1 &
        pid=$!
        sleep 0.3
        for scenario in relay fanout; do
            printf '%s %s %s ' "$scenario" "$mode" "$rep"
            taskset -c 1 target/release/roomd-bench "$scenario" --addr "127.0.0.1:$port" \
                --duration "$secs" --server-pid "$pid" 2>/dev/null | tail -1 |
                grep -o '"[a-z_]*per_server_cpu_s":[0-9.]*'
        done
        kill -TERM "$pid"
        wait "$pid" || true
        port=$((port + 1))
    done
done
