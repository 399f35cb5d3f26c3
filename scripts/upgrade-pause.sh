#!/bin/bash
# Measures a live upgrade's pause (SIGUSR2; `roomd_last_handover_seconds`,
# from the old process's last read to the new one's first) against the
# number of idle WebSocket connections, and under fanout load (the fanout
# run then reports whether any delivery was lost across the upgrade).
#
#   scripts/upgrade-pause.sh              # 1000 10000 19000 idle, then fanout
#   COUNTS="1000" FANOUT=0 scripts/upgrade-pause.sh
#
# Needs an open-file limit above the largest count (`ulimit -n`). Every
# wait is bounded; the servers are stopped on exit.
set -u
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-"1000 10000 19000"}
FANOUT=${FANOUT:-1}
PORT=${PORT:-18091}
BIN=target/release
cargo build --release -q --bin roomd --example idle_clients || exit 1
cargo build --release -q -p roomd-bench || exit 1
LOG=$(mktemp)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -f "$LOG"' EXIT

metric() { # the value of metric $1
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' >&3
    timeout 5 cat <&3 | awk -v m="$1" '$1 == m {print $2}'
    exec 3>&-
}

wait_for() { # a log line matching $1, at most 30 s
    for _ in $(seq 300); do grep -q "$1" "$LOG" && return 0; sleep 0.1; done
    echo "no log line '$1'" >&2; return 1
}

start_server() {
    : > "$LOG"
    $BIN/roomd --listen "127.0.0.1:$PORT" --heartbeat-interval 300 --rate-limit 0 \
        --max-connections 20000 --log-level info > "$LOG" 2>&1 &
    SERVER=$!; PIDS+=("$SERVER")
    wait_for "listening on"
}

upgrade() { # sets PAUSE (ms) and SERVER (the new pid)
    kill -USR2 "$SERVER"
    wait_for "serving as pid" || return 1
    SERVER=$(grep -o "serving as pid [0-9]*" "$LOG" | tail -1 | awk '{print $4}')
    PIDS+=("$SERVER")
    PAUSE=$(awk -v s="$(metric roomd_last_handover_seconds)" 'BEGIN {printf "%.1f", s * 1000}')
}

for n in $COUNTS; do
    start_server || exit 1
    $BIN/examples/idle_clients "127.0.0.1:$PORT" /chat "$n" 600 > /dev/null 2>&1 &
    CLIENTS=$!; PIDS+=("$CLIENTS")
    for _ in $(seq 600); do
        [ "$(metric roomd_websockets_open)" = "$n" ] && break; sleep 0.1
    done
    open=$(metric roomd_websockets_open)
    upgrade || exit 1
    after=$(metric roomd_websockets_open)
    echo "idle $n: pause ${PAUSE} ms; websockets open before $open, after $after"
    kill "$CLIENTS"; kill -TERM "$SERVER"; wait "$CLIENTS" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
done

if [ "$FANOUT" = 1 ]; then
    start_server || exit 1
    $BIN/roomd-bench fanout --addr "127.0.0.1:$PORT" --subs 1000 --rate 100 --duration 6 \
        > "$LOG.fanout" 2>&1 &
    BENCH=$!; PIDS+=("$BENCH")
    sleep 3
    upgrade || exit 1
    wait "$BENCH"
    echo "fanout 1000 at 100 msg/s: pause ${PAUSE} ms; $(tail -1 "$LOG.fanout")"
    rm -f "$LOG.fanout"
    kill -TERM "$SERVER"
fi
