#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed if missing; settings
# in Cargo.toml's [package.metadata.deb]) and checks its contents: the
# binary (which must run), both systemd units (which systemd-analyze must
# accept), the environment file /etc/default/roomd as dist/roomd.env has
# it, and that file listed as a conffile. Exits non-zero on anything
# missing or wrong.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi
# cargo-deb builds the release binary and prints the package's path last.
deb=$(cargo deb --locked | tail -n 1)
[ -f "$deb" ] || { echo "deb.sh: no package at '$deb'" >&2; exit 1; }

failed=0
fail() { echo "deb.sh: $*" >&2; failed=1; }

contents=$(dpkg-deb -c "$deb")
for path in usr/bin/roomd lib/systemd/system/roomd.service \
    lib/systemd/system/roomd.socket lib/systemd/system/roomd@.service etc/default/roomd; do
    grep -Eq " \./$path\$" <<<"$contents" || fail "$path missing from $deb"
done
info=$(dpkg-deb -I "$deb")
grep -Eq '^ *Package: roomd$' <<<"$info" || fail "$deb is not the roomd package"
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
grep -qx /etc/default/roomd <<<"$conffiles" || fail "/etc/default/roomd is not a conffile"

# The files themselves: the units and env file as in dist/, a binary that runs.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
for unit in roomd.service roomd.socket roomd@.service; do
    cmp -s "dist/$unit" "$root/lib/systemd/system/$unit" || fail "$unit differs from dist/$unit"
done
cmp -s dist/roomd.env "$root/etc/default/roomd" || fail "/etc/default/roomd differs from dist/roomd.env"
version=$("$root/usr/bin/roomd" --version) || fail "usr/bin/roomd --version failed"
[ "$version" = "roomd $(cargo pkgid | sed 's/.*[#@]//')" ] || fail "unexpected version '$version'"
# The units as systemd reads them, ExecStart= pointing at the unpacked
# binary: not a single complaint (unknown keys are only warnings there).
if command -v systemd-analyze >/dev/null; then
    units="$root/verify"
    mkdir "$units"
    sed "s|^ExecStart=/usr/bin/roomd|ExecStart=$root/usr/bin/roomd|" \
        "$root/lib/systemd/system/roomd.service" >"$units/roomd.service"
    cp "$root/lib/systemd/system/roomd.socket" "$units/"
    complaints=$(systemd-analyze verify "$units/roomd.socket" "$units/roomd.service" 2>&1) ||
        fail "systemd-analyze verify failed: $complaints"
    [ -z "$complaints" ] || fail "systemd-analyze verify: $complaints"
fi

[ "$failed" = 0 ] || exit 1
echo "deb.sh: $deb has the binary, both units and the conffile /etc/default/roomd"
