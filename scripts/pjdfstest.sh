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
    grep -hE '^not ok [0-9]|^/.*\.t ' "$out" | sed "s/^/  $g: /" >>"$work/failed" || true
    if [ "${VERBOSE:-0}" = 1 ]; then
        grep -hE '^not ok [0-9]|^/.*\.t ' "$out" | sed "s/^/  $g: /" || true
    fi
done
printf '%-10s %7d %7d %7d\n' total $((total_p + total_f)) "$total_p" "$total_f"

# Every failed point against the rule of mountd/SEMANTICS.md that sets it aside
# ("pjdfstest points set aside"); "unexplained" ones are bugs to fix.
python3 - "$work/failed" <<'PY'
import collections, re, sys
counts, unexplained = collections.Counter(), []
made_special, file_special, current = set(), False, None
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    head = re.match(r"  (\w+): (/\S+\.t) ", line)
    if head:
        current, made_special, file_special = head.group(2), set(), False
        continue
    m = re.match(r"  (\w+): not ok \d+(?: - tried '(.*)', expected (.*), got (.*))?", line)
    if not m:
        continue
    cmd, got = m.group(2), m.group(4)
    if "# TODO" in line:
        # pjdfstest's own TODO: a point Linux is known not to meet either.
        rule = "pjdfstest-todo"
    elif cmd is None:
        # A check without a command (times, counts) in a file that needed a special file.
        rule = "special-knock-on" if file_special else "unexplained"
    else:
        words = cmd.split()
        while words and words[0] in ("-u", "-g", "-U"):
            words = words[2:]
        op, args = (words[0], words[1:]) if words else ("", [])
        if op in ("mkfifo", "mknod", "bind", "link") and got == "EPERM":
            rule = "hard-link" if op == "link" else "special-file"
            made_special.update(a for a in args[:2] if "pjdfstest_" in a)
            file_special = True
        elif got == "ENAMETOOLONG" and any(len(a) > 1024 for a in args):
            rule = "key-length"
        elif file_special and op == "lstat" and "nlink" in args[-1]:
            rule = "special-knock-on"
        elif file_special and (
            any(a.split("/")[0] in {n.split("/")[0] for n in made_special} for a in args)
            or got in ("ENOENT", "0")
        ):
            rule = "special-knock-on"
        else:
            rule = "unexplained"
    counts[rule] += 1
    if rule == "unexplained":
        unexplained.append(line[:300])
print("failed points by rule (mountd/SEMANTICS.md, pjdfstest points set aside):")
for rule, n in sorted(counts.items()):
    print(f"  {rule:18} {n}")
for line in unexplained:
    print("  unexplained:" + line)
PY
