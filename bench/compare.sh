#!/usr/bin/env bash
# Two roomd binaries through the same benchmark matrix, interleaved, for a
# before/after comparison on a shared machine. It only changes how
# bench/run.sh is invoked: each round runs run.sh once per binary with
# BENCH_SERVERS=roomd BENCH_ROUNDS=1 (alternating which binary goes first),
# and once with BENCH_SERVERS="node limit", each into its own directory;
# then it merges the JSON lines and prints three tables with run.sh's
# report: after vs node/limit, before vs node/limit, and after vs before
# (in that last table the "node" column is the BEFORE binary, so
# "roomd/node" is after/before).
#
#   bench/compare.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]
#
# Environment: everything run.sh reads (BENCH_QUICK, BENCH_DURATION, ...)
# except BENCH_SERVERS, BENCH_ROUNDS, BENCH_ROOMD and BENCH_OUT;
# COMPARE_NODE=0 skips the node and limit servers; COMPARE_OUT is where
# everything goes (a fresh temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
before=$(realpath "$1")
after=$(realpath "$2")
rounds=${3:-3}
node=${COMPARE_NODE:-1}
OUT=${COMPARE_OUT:-$(mktemp -d /tmp/roomd-compare.XXXXXX)}
mkdir -p "$OUT"
echo "== before: $before ($(sha256sum "$before" | cut -c1-12))"
echo "== after:  $after ($(sha256sum "$after" | cut -c1-12))"
echo "== $rounds rounds into $OUT; load: $(cut -d' ' -f1-3 /proc/loadavg)"

one() { # tag servers binary round
    local tag=$1 servers=$2 bin=$3 round=$4
    echo "== round $round: $tag ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
    BENCH_SERVERS=$servers BENCH_ROUNDS=1 BENCH_ROOMD=$bin BENCH_OUT="$OUT/$tag-$round" \
        bash bench/run.sh >"$OUT/$tag-$round.txt" 2>&1 || echo "   (run.sh failed: see $OUT/$tag-$round.txt)"
    grep -E '^\| (idle: handshakes|fanout 1000x1 64B full: deliveries|relay 100 pairs: round)' \
        "$OUT/$tag-$round.txt" || true
}

for round in $(seq "$rounds"); do
    if [ $((round % 2)) = 1 ]; then order="after before"; else order="before after"; fi
    for tag in $order; do
        if [ "$tag" = after ]; then bin=$after; else bin=$before; fi
        one "$tag" roomd "$bin" "$round"
    done
    if [ "$node" = 1 ]; then one nodelimit "node limit" "$after" "$round"; fi
done

merge() { # dir file tag/server...
    local dir=$1 file=$2
    shift 2
    mkdir -p "$dir"
    : >"$dir/$file"
    for src in "$@"; do
        cat "$OUT"/$src 2>/dev/null >>"$dir/$file" || true
    done
}
# after vs before: the before binary's runs stand in the "node" column.
merge "$OUT/t-after-vs-before" roomd.jsonl 'after-*/roomd.jsonl'
merge "$OUT/t-after-vs-before" node.jsonl 'before-*/roomd.jsonl'
for tag in after before; do
    merge "$OUT/t-$tag" roomd.jsonl "$tag-*/roomd.jsonl"
    merge "$OUT/t-$tag" node.jsonl 'nodelimit-*/node.jsonl'
    merge "$OUT/t-$tag" limit.jsonl 'nodelimit-*/limit.jsonl'
done

BENCH=target/release/roomd-bench
echo
echo "== results ($(date -u '+%Y-%m-%d %H:%M UTC')); logs and JSON in $OUT"
if [ "$node" = 1 ]; then
    echo "-- AFTER (roomd = $after)"
    "$BENCH" report --dir "$OUT/t-after"
    echo "-- BEFORE (roomd = $before)"
    "$BENCH" report --dir "$OUT/t-before"
fi
echo "-- AFTER vs BEFORE: roomd = after, node = BEFORE, roomd/node = after/before (ignore the limit columns)"
"$BENCH" report --dir "$OUT/t-after-vs-before" |
    sed -e '1s/|        node |/|      before |/' -e '1s/roomd\/node/after\/bef/' \
        -e "s/(roomd\/node\/limit)/(after\/before\/-)/g" -e "3,\$s/|        node |/|      before |/"
