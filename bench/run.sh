#!/usr/bin/env bash
# The roomd benchmark matrix: the same scenarios against roomd, the Node
# `ws` reference (bench/node) and the trivial limit server, each server
# pinned to one core and the load generator to the other, then one
# side-by-side table. See bench/README.md.
#
# Order: BENCH_ROUNDS rounds, each interleaved across the servers (round
# 1: roomd, node, limit; round 2: ...): first the `idle` rounds, each on a
# freshly started server; then the rounds of storm, fanout (full speed
# and fixed rate) and relay, each round on a fresh server. The table shows
# the median over each figure's runs, so one noisy minute on a shared
# machine moves no figure.
#
# Then the TLS rows (issue #12), the same way: roomd over TLS, roomd
# plaintext and the Node reference over https, each round interleaved:
# `idle` (memory per connection), then `handshakes` (full TLS handshake +
# upgrade per connection, as fast as they go) and full-speed `fanout`, with
# an ECDSA P-256 certificate made for the run by `openssl` in OUT/tls.
#
# Then the cluster rows (issue #11): a single roomd beside a cluster of two
# roomd nodes on one Redis (`--redis`), each round interleaved, each round
# on fresh servers (and a fresh Redis): full-speed `fanout` with the
# publisher on node A and the subscribers alternating A/B, fixed-rate
# `fanout` the same way, and `relay` with every host on A and every guest
# on B. The cluster's server CPU is the sum over both nodes and Redis, all
# three pinned to the server core.
#
#   bench/run.sh                      # matrix, TLS and cluster rows (about 15 minutes)
#   BENCH_QUICK=1 bench/run.sh        # smoke run (about 4 minutes)
#   BENCH_TLS=only bench/run.sh       # the TLS rows alone
#   BENCH_CLUSTER=only bench/run.sh   # the cluster rows alone
#
# Environment (defaults in brackets; quick values after the slash):
#   BENCH_SERVERS     servers to run ["roomd node limit"]
#   BENCH_ROUNDS      rounds of every scenario per server [3 / 1]
#   BENCH_DURATION    seconds per fanout/relay run [5 / 2]
#   BENCH_SUBS        fanout subscribers [1000]
#   BENCH_RATE        offered msgs/s for the latency run [100]
#   BENCH_PAIRS       relay pairs [100]
#   BENCH_IDLE_CONNS  idle connections, split over two generators [19000 / 4000]
#   BENCH_STORM_CONNS storm connections [10000 / 2000]
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU  cores to pin to [0 / 1]
#   BENCH_ROOMD       the roomd binary [target/release/roomd]
#   BENCH_ROOMD_FLAGS extra roomd flags [--max-connections 20000
#                     --rate-limit 0 --log-level warn]: the Node reference
#                     has no rate limit, and idle needs 19,000 connections
#   BENCH_OUT         where logs and JSON lines go [a fresh temp dir]
#   BENCH_TLS         1: the TLS rows after the matrix; 0: none; only: the
#                     TLS rows alone [1]
#   BENCH_TLS_SERVERS servers of the TLS rows ["roomd-tls roomd-plain node-tls"]
#   BENCH_TLS_IDLE_CONNS  idle connections in the TLS rows [10000 / 2000]
#   BENCH_HANDSHAKE_IN_FLIGHT  connections under way in `handshakes` [64]
#   BENCH_CLUSTER     1: the cluster rows after the others; 0: none; only:
#                     the cluster rows alone [1]
#   BENCH_CLUSTER_SERVERS servers of the cluster rows ["roomd-single roomd-cluster"]
#   BENCH_REDIS       the Redis server binary [redis-server]
set -euo pipefail
cd "$(dirname "$0")/.."

quick=${BENCH_QUICK:-0}
pick() { if [ "$quick" = 1 ]; then echo "$2"; else echo "$1"; fi; }
SERVERS=${BENCH_SERVERS:-roomd node limit}
ROUNDS=${BENCH_ROUNDS:-$(pick 3 1)}
DURATION=${BENCH_DURATION:-$(pick 5 2)}
SUBS=${BENCH_SUBS:-1000}
RATE=${BENCH_RATE:-100}
PAIRS=${BENCH_PAIRS:-100}
IDLE_CONNS=${BENCH_IDLE_CONNS:-$(pick 19000 4000)}
STORM_CONNS=${BENCH_STORM_CONNS:-$(pick 10000 2000)}
TLS=${BENCH_TLS:-1}
TLS_SERVERS=${BENCH_TLS_SERVERS:-roomd-tls roomd-plain node-tls}
TLS_IDLE_CONNS=${BENCH_TLS_IDLE_CONNS:-$(pick 10000 2000)}
HANDSHAKE_IN_FLIGHT=${BENCH_HANDSHAKE_IN_FLIGHT:-64}
CLUSTER=${BENCH_CLUSTER:-1}
CLUSTER_SERVERS=${BENCH_CLUSTER_SERVERS:-roomd-single roomd-cluster}
REDIS=${BENCH_REDIS:-redis-server}
if [ "$CLUSTER" = only ]; then TLS=0; fi
if [ "$TLS" = only ]; then CLUSTER=0; fi
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/roomd-bench.XXXXXX)}
ROOMD=${BENCH_ROOMD:-target/release/roomd}
read -r -a ROOMD_FLAGS <<<"${BENCH_ROOMD_FLAGS:---max-connections 20000 --rate-limit 0 --log-level warn}"
SRC=127.0.0.2-9 # extra source addresses, past the ephemeral-port limit
mkdir -p "$OUT"

# Up to the hard limit (20,000 here): 19,000 idle connections need it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then stop_server; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building (release)"
cargo build --release --workspace --quiet
echo "== installing the Node reference's dependencies"
(cd bench/node && npm ci --no-audit --no-fund --silent)

BENCH=target/release/roomd-bench
run_client() { timeout 180 taskset -c "$CLIENT_CPU" "$BENCH" "$@"; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral range
        if ! listening "$p"; then echo "$p"; return; fi
    done
    echo "no free port" >&2
    return 1
}

# The TLS rows' certificate: ECDSA P-256, signed by a throwaway CA the
# generator trusts (--tls-ca), for 127.0.0.1 and localhost.
TLS_DIR=$OUT/tls
make_certificate() {
    mkdir -p "$TLS_DIR"
    (
        cd "$TLS_DIR"
        p256() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
        p256 ca.key
        openssl req -x509 -new -key ca.key -subj "/CN=roomd bench CA" -days 2 -out ca.pem
        p256 server.key
        openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
        printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -sha256 -extfile server.ext -out server.pem
    ) >>"$OUT/openssl.log" 2>&1
}

addr=""
client_tls=()    # the generator's TLS flags for the running server
client_nodes=()  # --addr2 for a cluster's second node
server_pids=""   # every process of the running server, comma-separated
extra_pids=()    # a cluster's processes besides server_pid: node B, Redis

health_of() { # port: the body of GET /health, or nothing
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&3
        timeout 2 cat <&3
    ) 2>/dev/null || true
}

# The cluster: a Redis on a free loopback port (no persistence), then two
# roomd nodes on it with the single node's flags, all pinned to the server
# core; ready when both nodes answer /health 200 with "nodes":2. Sets
# server_pid (node A), extra_pids, addr (node A) and client_nodes (node B).
start_cluster() {
    local name=$1 redis_port port_a port_b pid
    redis_port=$(free_port)
    taskset -c "$SERVER_CPU" "$REDIS" --port "$redis_port" --bind 127.0.0.1 --save '' \
        --appendonly no >>"$OUT/$name-redis.log" 2>&1 &
    extra_pids=($!)
    for _ in $(seq 50); do
        if listening "$redis_port"; then break; fi
        sleep 0.1
    done
    port_a=$(free_port)
    port_b=$(free_port)
    while [ "$port_b" = "$port_a" ] || [ "$port_b" = "$redis_port" ]; do port_b=$(free_port); done
    taskset -c "$SERVER_CPU" "$ROOMD" --listen "127.0.0.1:$port_a" --redis "redis://127.0.0.1:$redis_port" \
        "${ROOMD_FLAGS[@]}" >>"$OUT/$name.log" 2>&1 &
    server_pid=$!
    taskset -c "$SERVER_CPU" "$ROOMD" --listen "127.0.0.1:$port_b" --redis "redis://127.0.0.1:$redis_port" \
        "${ROOMD_FLAGS[@]}" >>"$OUT/$name-b.log" 2>&1 &
    pid=$!
    extra_pids=("$pid" "${extra_pids[@]}") # node B, then Redis
    addr=127.0.0.1:$port_a
    client_nodes=(--addr2 "127.0.0.1:$port_b")
    server_pids=$server_pid,${extra_pids[0]},${extra_pids[1]}
    for _ in $(seq 150); do
        local a b
        a=$(health_of "$port_a")
        b=$(health_of "$port_b")
        if [[ $a == "HTTP/1.1 200"* && $a == *'"nodes":2'* && $b == "HTTP/1.1 200"* && $b == *'"nodes":2'* ]]; then
            return 0
        fi
        for pid in "$server_pid" "${extra_pids[@]}"; do
            if ! kill -0 "$pid" 2>/dev/null; then break 2; fi
        done
        sleep 0.1
    done
    echo "$name did not come up (two nodes answering /health with \"nodes\":2); its logs:" >&2
    tail -5 "$OUT/$name.log" "$OUT/$name-b.log" "$OUT/$name-redis.log" >&2
    stop_server
    return 1
}

start_server() { # name: on a free port, pinned; sets server_pid(s), addr, client_tls
    local name=$1 port
    client_tls=()
    client_nodes=()
    extra_pids=()
    if [ "$name" = roomd-cluster ]; then
        start_cluster "$name"
        return
    fi
    port=$(free_port)
    addr=127.0.0.1:$port
    case $name in
    roomd | roomd-plain | roomd-single) set -- "$ROOMD" --listen "$addr" "${ROOMD_FLAGS[@]}" ;;
    roomd-tls)
        set -- "$ROOMD" --listen "127.0.0.1:$(free_port)" --tls-listen "$addr" \
            --tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server.key" "${ROOMD_FLAGS[@]}"
        ;;
    node) set -- node bench/node/server.js --listen "$addr" ;;
    node-tls)
        set -- node bench/node/server.js --listen "$addr" \
            --tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server.key"
        ;;
    limit) set -- target/release/limit-server --listen "$addr" ;;
    esac
    case $name in
    *-tls)
        addr=wss://$addr
        client_tls=(--tls-ca "$TLS_DIR/ca.pem")
        ;;
    esac
    taskset -c "$SERVER_CPU" "$@" >>"$OUT/$name.log" 2>&1 &
    server_pid=$!
    server_pids=$server_pid
    for _ in $(seq 100); do
        if listening "$port"; then return 0; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "$name did not start; its log:" >&2
    tail -20 "$OUT/$name.log" >&2
    stop_server
    return 1
}

stop_server() {
    local pid
    for pid in "$server_pid" "${extra_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    server_pid=""
    extra_pids=()
    sleep 1 # let the kernel finish tearing the last connections down
}

scenario() { # name scenario args...: runs it against the running server
    local name=$1 status=0 mode=full
    shift
    # The generator's own exit status (grep's, with no line, is no failure).
    run_client "$@" --addr "$addr" "${client_nodes[@]}" "${client_tls[@]}" --label "$name" \
        --server-pid "$server_pids" 2>&1 |
        tee -a "$OUT/$name.out" | grep -v '^{' || status=${PIPESTATUS[0]}
    if [ "$status" != 0 ]; then
        # A run that failed (e.g. joins never answered) counts in the table.
        case " $* " in *" --rate "*) mode=rate ;; esac
        echo "{\"scenario\":\"$1\",\"mode\":\"$mode\",\"server\":\"$name\",\"failed\":true,\"exit\":$status}" >>"$OUT/$name.out"
    fi
}

idle_round() { # name round [connections [timeout s]]
    local name=$1 round=$2 conns=${3:-$IDLE_CONNS} limit=${4:-30}
    # A fresh server: memory per connection is read against the server's
    # resident memory at start.
    start_server "$name" || return 0
    echo "== $name: idle round $round of $ROUNDS (pid $server_pid on cpu $SERVER_CPU, $addr)"
    # Two generator processes: one process may hold only ~20,000 sockets.
    local sync=$OUT/$name-idle$round-sync shard1_out=$OUT/$name-idle$round-shard1.out
    rm -rf "$sync" && mkdir -p "$sync"
    run_client idle --conns "$conns" --timeout "$limit" --shard 1/2 --sync-dir "$sync" --src "$SRC" \
        --addr "$addr" "${client_tls[@]}" --label "$name" >"$shard1_out" 2>&1 &
    local shard1=$!
    scenario "$name" idle --conns "$conns" --timeout "$limit" --shard 0/2 --sync-dir "$sync" --src "$SRC"
    wait "$shard1" || true
    grep -v '^{' "$shard1_out" || true
    stop_server
}

other_scenarios() { # name round: every other scenario, on one fresh server
    local name=$1 round=$2
    start_server "$name" || return 0
    echo "== $name: round $round of $ROUNDS (pid $server_pid on cpu $SERVER_CPU, listening on $addr)"
    scenario "$name" storm --conns "$STORM_CONNS" --src "$SRC"
    scenario "$name" fanout --subs "$SUBS" --pubs 1 --size 64 --duration "$DURATION"
    scenario "$name" fanout --subs "$SUBS" --pubs 1 --size 64 --duration "$DURATION" --rate "$RATE"
    scenario "$name" relay --pairs "$PAIRS" --duration "$DURATION"
    stop_server
}

tls_scenarios() { # name round: handshakes and full-speed fanout, on one fresh server
    local name=$1 round=$2
    start_server "$name" || return 0
    echo "== $name: TLS round $round of $ROUNDS (pid $server_pid on cpu $SERVER_CPU, $addr)"
    scenario "$name" handshakes --in-flight "$HANDSHAKE_IN_FLIGHT" --duration "$DURATION" --src "$SRC"
    scenario "$name" fanout --subs "$SUBS" --pubs 1 --size 64 --duration "$DURATION"
    stop_server
}

cluster_scenarios() { # name round: fanout (full speed, fixed rate) and relay, on fresh servers
    local name=$1 round=$2
    start_server "$name" || return 0
    echo "== $name: cluster round $round of $ROUNDS (pids $server_pids on cpu $SERVER_CPU, $addr ${client_nodes[*]})"
    scenario "$name" fanout --subs "$SUBS" --pubs 1 --size 64 --duration "$DURATION"
    scenario "$name" fanout --subs "$SUBS" --pubs 1 --size 64 --duration "$DURATION" --rate "$RATE"
    scenario "$name" relay --pairs "$PAIRS" --duration "$DURATION"
    stop_server
}

usable() { # name: whether this machine can run that server
    case $1 in
    roomd-cluster)
        if ! command -v "$REDIS" >/dev/null; then
            echo "== $1: no $REDIS; skipped"
            return 1
        fi
        ;;&
    roomd*)
        if [ ! -x "$ROOMD" ]; then
            echo "== $1: no $ROOMD binary; skipped"
            return 1
        fi
        ;;
    esac
}

servers=()
if [ "$TLS" != only ] && [ "$CLUSTER" != only ]; then
    for name in $SERVERS; do
        usable "$name" || continue
        servers+=("$name")
        : >"$OUT/$name.out"
        : >"$OUT/$name.log"
    done
fi
tls_servers=()
if [ "$TLS" != 0 ]; then
    make_certificate
    echo "== TLS certificate: $(openssl x509 -in "$TLS_DIR/server.pem" -noout -subject -ext subjectAltName |
        tr '\n' ' ' | sed 's/  */ /g'), key: $(openssl pkey -in "$TLS_DIR/server.key" -noout -text |
        grep -m1 'ASN1 OID' | sed 's/^ *//')"
    for name in $TLS_SERVERS; do
        usable "$name" || continue
        tls_servers+=("$name")
        : >"$OUT/$name.out"
        : >"$OUT/$name.log"
    done
fi

cluster_servers=()
if [ "$CLUSTER" != 0 ]; then
    for name in $CLUSTER_SERVERS; do
        usable "$name" || continue
        cluster_servers+=("$name")
        : >"$OUT/$name.out"
        : >"$OUT/$name.log"
    done
fi

each_round() { # what servers...: `what NAME ROUND` for every round, interleaved
    local what=$1 round name
    shift
    for round in $(seq "$ROUNDS"); do
        for name in "$@"; do
            "$what" "$name" "$round"
        done
    done
}
# Node opens TLS connections at a few hundred a second: up to 100 s.
tls_idle_round() { idle_round "$1" "$2" "$TLS_IDLE_CONNS" 100; }

each_round idle_round "${servers[@]}"
each_round other_scenarios "${servers[@]}"
each_round tls_idle_round "${tls_servers[@]}"
each_round tls_scenarios "${tls_servers[@]}"
each_round cluster_scenarios "${cluster_servers[@]}"
for name in "${servers[@]}" "${tls_servers[@]}" "${cluster_servers[@]}"; do
    # Every summary line of this server's runs.
    grep '^{' "$OUT/$name.out" >"$OUT/$name.jsonl" || true
done

echo
echo "== results ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
echo "   server on cpu $SERVER_CPU, generator on cpu $CLIENT_CPU; logs and JSON in $OUT"
if [ ${#servers[@]} -gt 0 ]; then
    "$BENCH" report --dir "$OUT"
fi
if [ ${#tls_servers[@]} -gt 0 ]; then
    echo
    echo "== TLS rows (ECDSA P-256 certificate; idle: $TLS_IDLE_CONNS connections)"
    "$BENCH" report --dir "$OUT" --tls
fi
if [ ${#cluster_servers[@]} -gt 0 ]; then
    echo
    echo "== cluster rows (two roomd nodes and a Redis, all on cpu $SERVER_CPU; the cluster's server CPU is the sum)"
    "$BENCH" report --dir "$OUT" --cluster
fi
