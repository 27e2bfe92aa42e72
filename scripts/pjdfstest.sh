#!/usr/bin/env bash
# POSIX conformance of the FUSE mount: builds pjdfstest (from ../shared/third-party, or
# $PJDFSTEST_TARBALL) in a temp dir outside the repository, starts `nasgate serve --mount`
# on a temp share, runs the chosen pjdfstest groups as root with `prove` inside a bucket of
# the mount, and prints the passed/failed points per group.
#
# Not part of scripts/test.sh: it needs root, autoconf/automake and the pjdfstest tarball,
# and takes several minutes.
#
# Usage: scripts/pjdfstest.sh [GROUP...]   (default: the core groups below)
# Env:   NASGATE_BIN (default target/debug/nasgate), PJDFSTEST_TARBALL, KEEP=1 keeps the temp
#        dir, VERBOSE=1 prints every failed point.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(open unlink rename mkdir rmdir truncate ftruncate chmod utimensat symlink)
bin=${NASGATE_BIN:-$repo/target/debug/nasgate}
tarball=${PJDFSTEST_TARBALL:-$repo/../shared/third-party/pjdfstest-85a8aea.tar.gz}

[ "$(id -u)" -eq 0 ] || { echo "pjdfstest.sh: must run as root" >&2; exit 2; }
[ -x "$bin" ] || { echo "pjdfstest.sh: no nasgate binary at $bin (cargo build first)" >&2; exit 2; }
[ -f "$tarball" ] || { echo "pjdfstest.sh: no pjdfstest tarball at $tarball" >&2; exit 2; }
for tool in autoreconf make gcc prove fusermount3; do
    command -v "$tool" >/dev/null || { echo "pjdfstest.sh: $tool is missing (apt-get install autoconf automake gcc make perl fuse3)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/nasgate-pjdfstest.XXXXXX)
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill -TERM "$server" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server" 2>/dev/null || true
    fi
    if mountpoint -q "$work/mnt" 2>/dev/null; then fusermount3 -u -z "$work/mnt" || umount -l "$work/mnt" || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "pjdfstest.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "pjdfstest.sh: building pjdfstest in $work/src"
mkdir -p "$work/src" "$work/share" "$work/mnt"
tar -xzf "$tarball" -C "$work/src" --strip-components=1
(cd "$work/src" && autoreconf -ifs >/dev/null 2>&1 && ./configure >/dev/null && make pjdfstest >/dev/null)

"$bin" serve "$work/share" --address 127.0.0.1:0 --mount "$work/mnt" --mount-allow-other \
    --mount-attr-ttl 0 --lock-timeout "${LOCK_TIMEOUT:-2}" 2>"$work/server.log" &
server=$!
for _ in $(seq 200); do
    mountpoint -q "$work/mnt" && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
mountpoint -q "$work/mnt" || { echo "pjdfstest.sh: mount did not come up" >&2; cat "$work/server.log" >&2; exit 1; }

# Files live in buckets: the tests run in one.
mkdir "$work/mnt/pjd"
printf '%-10s %7s %7s %7s %6s\n' group points passed failed secs
total_p=0
total_f=0
for g in "${groups[@]}"; do
    started=$(date +%s)
    out="$work/$g.out"
    # prove -v shows every point: each "ok N" / "not ok N" line is one.
    (cd "$work/mnt/pjd" && timeout 1200 prove -v -r "$work/src/tests/$g" >"$out" 2>&1) || true
    passed=$(grep -cE '^ok [0-9]' "$out" || true)
    failed=$(grep -cE '^not ok [0-9]' "$out" || true)
    secs=$(( $(date +%s) - started ))
    printf '%-10s %7d %7d %7d %6d\n' "$g" $((passed + failed)) "$passed" "$failed" "$secs"
    total_p=$((total_p + passed))
    total_f=$((total_f + failed))
    if [ "${VERBOSE:-0}" = 1 ]; then
        grep -hE '^not ok [0-9]|^/.*\.t ' "$out" | sed "s/^/  $g: /" || true
    fi
done
printf '%-10s %7d %7d %7d\n' total $((total_p + total_f)) "$total_p" "$total_f"
