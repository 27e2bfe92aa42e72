#!/usr/bin/env bash
# Counts the system calls a release `nasgate serve` makes per small-object operation (PUT of
# a new key, PUT over an existing one, GET, HEAD, DELETE of 4 KiB): on a NAS each call on the share is a network round trip, so
# these counts are what the small-object rows cost there (GitHub issue 18).
#
# Usage: scripts/syscalls.sh [--ops N] [--binary PATH]
#   --ops N        requests per operation (default 200), on one keep-alive connection
#   --binary PATH  the nasgate binary (default target/release/nasgate; build it first)
# Needs strace and curl. Prints, per operation, the calls per request by name and in total;
# the figures include the HTTP side (epoll, recv, send), which is the same for every
# operation, and the blocking pool's futex hand-offs.
set -euo pipefail

OPS=200
BIN=target/release/nasgate
while [ $# -gt 0 ]; do
    case $1 in
        --ops) OPS=$2; shift 2 ;;
        --binary) BIN=$2; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "syscalls: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v strace >/dev/null || { echo "syscalls: strace is missing (apt-get install strace)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "syscalls: $BIN missing (cargo build --release)" >&2; exit 2; }

AK=bench SK=bench-secret-key-123
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nasgate-syscalls.XXXXXX")
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/share"
NASGATE_ROOT_USER=$AK NASGATE_ROOT_PASSWORD=$SK NASGATE_LOG=warn \
    "$BIN" serve "$WORK/share" --address "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
PID=$!
EP=http://127.0.0.1:$PORT
for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$EP/health/live")" != 000 ] && break
    sleep 0.1
done
s3() { curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
s3 -X PUT "$EP/sys" >/dev/null
head -c 4096 /dev/urandom >"$WORK/obj"

# attached: whether strace traces every thread of the server.
attached() {
    local s
    for s in /proc/"$PID"/task/*/status; do
        grep -q "^TracerPid:[[:space:]]*[1-9]" "$s" || return 1
    done
}

# count NAME CURL-ARGS...: runs the requests under strace -c and prints calls per request.
count() {
    local name=$1
    shift
    strace -f -c -o "$WORK/$name.strace" -p "$PID" 2>/dev/null &
    local st=$!
    # strace prints nothing when attached; give it a moment to attach to every thread.
    for _ in $(seq 50); do
        attached && break
        sleep 0.1
    done
    s3 "$@" >/dev/null
    kill -INT "$st"
    wait "$st" 2>/dev/null || true
    python3 - "$name" "$OPS" "$WORK/$name.strace" <<'EOF'
import sys
name, ops, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls = {}
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        n = int(f[3])
        calls[f[-1]] = n
total = sum(calls.values())
top = sorted(calls.items(), key=lambda kv: -kv[1])
print(f"{name:8} {total / ops:6.1f} calls/request: " +
      ", ".join(f"{k} {v / ops:.1f}" for k, v in top if v / ops >= 0.05))
EOF
}

URLS="$EP/sys/d/k[1-$OPS]"
count PUT-new -T "$WORK/obj" "$URLS"
count PUT-over -T "$WORK/obj" "$URLS"
count GET -o /dev/null "$URLS"
count HEAD -I "$URLS"
count DELETE -X DELETE "$URLS"
