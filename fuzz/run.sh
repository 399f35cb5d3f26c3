#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 30) on the stable toolchain
# and fails if any target finds a crash.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, ...); on stable
# RUSTC_BOOTSTRAP=1 allows them. New corpus entries go to fuzz/corpus/<target>
# (not committed); the committed seeds in fuzz/seeds/<target> are read too.
# No sanitizer: roomd forbids unsafe code, and AddressSanitizer made the
# engine target 8x slower for nothing it could find.
# A crash is saved under fuzz/artifacts/<target>/: copy it to
# tests/data/fuzz/<target>/ so that `cargo test` keeps replaying it.
set -euo pipefail

seconds="${1:-30}"
shift || true
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

export RUSTC_BOOTSTRAP=1
failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== fuzz target $target for ${seconds}s"
    if ! cargo fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ran ${seconds}s each without a crash"
