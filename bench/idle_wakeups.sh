#!/usr/bin/env bash
# How often an idle roomd wakes up: the reactor's epoll_wait returns (strace
# -c, and perf stat on the syscalls:sys_exit_epoll_wait tracepoint, which
# does not slow the process as strace does) and its context switches
# (/proc/PID/status, /proc/PID/task/*/schedstat)
# over 20 s windows, with no connections and with N idle `stream`
# connections held by `roomd-bench idle` (which answers pings).
# See bench/IDLE_WAKEUPS.md.
#
#   bench/idle_wakeups.sh ROOMD_BINARY [CONNS]     # CONNS defaults to 10000
#
# Timeline (t0 = when the generator reports every connection joined):
#   no connections: perf + proc counters over 20 s, then strace over 20 s
#   t0+2..t0+22   perf + proc counters (no heartbeat due: the first is at ~t0+30)
#   t0+22..t0+42  strace -c (holds the first ping round at ~t0+30)
#   t0+45..t0+65  perf + proc counters (holds the second ping round at ~t0+60)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "$1")
CONNS=${2:-10000}
WIN=${WAKEUP_WINDOW:-20}
ulimit -n "$(ulimit -Hn)"
OUT=$(mktemp -d /tmp/roomd-wakeups.XXXXXX)
port=$((20000 + RANDOM % 12000))
"$BIN" --listen "127.0.0.1:$port" --max-connections 20000 --rate-limit 0 \
    --log-level warn --heartbeat-interval 30 >"$OUT/server.log" 2>&1 &
pid=$!
gen=""
trap 'kill $pid 2>/dev/null || true; if [ -n "$gen" ]; then kill $gen 2>/dev/null || true; fi' EXIT
sleep 2

counters() { # voluntary nonvoluntary timeslices (summed over threads)
    local v n s=0
    v=$(awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$pid/status")
    n=$(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "/proc/$pid/status")
    for t in /proc/$pid/task/*/schedstat; do s=$((s + $(cut -d' ' -f3 "$t"))); done
    echo "$v $n $s"
}
proc_window() { # label: /proc counters and perf's count of epoll_wait returns
    local a b returns
    read -r -a a <<<"$(counters)"
    perf stat -x, -e syscalls:sys_exit_epoll_wait -p "$pid" -o "$OUT/perf.txt" -- sleep "$WIN"
    read -r -a b <<<"$(counters)"
    returns=$(awk -F, '/sys_exit_epoll_wait/ {print $1}' "$OUT/perf.txt")
    echo "$1: over ${WIN} s: epoll_wait returns $returns (perf), voluntary ctxt switches $((b[0] - a[0])), nonvoluntary $((b[1] - a[1])), timeslices run $((b[2] - a[2]))"
}
strace_window() { # label
    timeout -s INT "$WIN" strace -c -f -e trace=epoll_wait,epoll_pwait,epoll_pwait2 -p "$pid" \
        -o "$OUT/strace-$2.txt" >/dev/null 2>&1 || true
    local calls
    calls=$(awk '$NF ~ /^epoll_(p?wait2?)$/ {s += $4} END {print s + 0}' "$OUT/strace-$2.txt")
    echo "$1: strace over ${WIN} s: epoll_wait returns $calls"
    sed 's/^/    /' "$OUT/strace-$2.txt"
}

echo "== $BIN (pid $pid, 127.0.0.1:$port, heartbeat 30 s), $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads: $(ls /proc/$pid/task | wc -l)"
proc_window "0 connections"
strace_window "0 connections" zero

target/release/roomd-bench idle --addr "127.0.0.1:$port" --conns "$CONNS" --src 127.0.0.2-9 \
    --hold 68 --label wakeups >"$OUT/gen.out" 2>&1 &
gen=$!
for _ in $(seq 600); do
    if grep -q 'opened in' "$OUT/gen.out"; then break; fi
    sleep 0.1
done
grep 'opened in' "$OUT/gen.out" || { cat "$OUT/gen.out"; exit 1; }
t0=$(date +%s.%N)
at() { # sleeps until t0 + $1 seconds (at once if that has passed)
    local d
    d=$(echo "$t0 + $1 - $(date +%s.%N)" | bc)
    case $d in -*) ;; *) sleep "$d" ;; esac
}
echo "server: $(awk '/^VmRSS|^Threads/' /proc/$pid/status | tr -s ' \t\n' ' '), fds $(ls /proc/$pid/fd | wc -l)"
at 2
proc_window "$CONNS idle, t0+2..t0+22 (no ping due)"
at 22
strace_window "$CONNS idle, t0+22..t0+42 (first ping round)" idle
at 45
proc_window "$CONNS idle, t0+45..t0+65 (second ping round)"
echo "server still holds fds: $(ls /proc/$pid/fd | wc -l)"
# The generator resets its connections when its hold ends (a kill would
# close them normally and leave 10,000 sockets in TIME_WAIT).
wait "$gen" 2>/dev/null || true
gen=""
grep -v '^{' "$OUT/gen.out" | tail -3
echo "(files in $OUT)"
