#!/bin/bash
# Measures roomd RSS per idle WebSocket connection and idle CPU.
set -u
cargo build --release --bin roomd --example idle_clients >/dev/null 2>&1 || exit 1
BIN=target/release
N=${N:-10000}
$BIN/roomd --listen 127.0.0.1:18080 --heartbeat-interval 300 --log-level warn --max-connections 20000 &
SP=$!
sleep 0.5
rss() { awk '/VmRSS/{print $2}' /proc/$SP/status; }
cpu() { awk '{print $14+$15}' /proc/$SP/stat; }
$BIN/examples/idle_clients 127.0.0.1:18080 /chat 100 2 >/dev/null   # warm-up
R0=$(rss)
$BIN/examples/idle_clients 127.0.0.1:18080 /chat $N 40 &
CP=$!
for i in $(seq 1 60); do sleep 1; c=$(ls /proc/$SP/fd | wc -l); [ "$c" -ge $((N+5)) ] && break; done
sleep 2
R1=$(rss); C0=$(cpu)
sleep 20
C1=$(cpu); R2=$(rss)
echo "fds=$(ls /proc/$SP/fd | wc -l) rss_before_kb=$R0 rss_with_${N}_kb=$R1 rss_after_20s_kb=$R2"
echo "per_conn_bytes=$(( (R1 - R0) * 1024 / N ))"
echo "idle_cpu_ticks_in_20s=$((C1 - C0)) (clock ticks of $(getconf CLK_TCK)/s)"
kill $CP; wait $CP 2>/dev/null
kill -TERM $SP; wait $SP; echo "server exit $?"
