#!/usr/bin/env bash
# nasgate's performance against the machine's limits and a peer, in ONE run on one machine
# (GitHub issues 7 and 18; method and results in docs/performance.md).
#
# On temp shares on one filesystem (BENCH_DIR, default $TMPDIR or /tmp) it starts
#   nasgate         the release build under test: share locks and default durability on
#   nasgate-nolock  the same build with the benchmark-only --unsafe-no-share-locks
#   s3s-fs          a Rust S3 server over a directory, no locking: the peer
#   nginx           nasgate's share as static files with sendfile: the loopback GET ceiling
# measures fio buffered write + fsync (the write ceiling) and a plain readdir+stat walk (the
# listing baseline), then runs bench/loadgen (which verifies every byte it reads) against
# each target, interleaved (round r: each workload on nasgate, s3s-fs, nginx; then round
# r+1), and prints the medians over the rounds and nasgate/anchor ratios. Absolute numbers on
# a shared machine are noise; ratios measured side by side in one run are the result.
#
# Usage: scripts/bench.sh [options]
#   --rounds N       rounds (default 3; --quick: 1)
#   --duration S     seconds per timed run (default 5; --quick: 1)
#   --full           add the 100 000-key listing and the 4 GiB memory rows
#   --quick          tiny sizes and durations: a smoke test of the harness (~2 minutes)
#   --only REGEX     only rows whose title matches (case-insensitive), e.g. 'GET|list'
#   --out FILE       also write the table as Markdown to FILE (raw results: FILE.jsonl)
#   --no-build       use the existing release binaries instead of running cargo build
# Exit status: 0 when every run completed without a single error, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROUNDS="" DURATION="" FULL=0 QUICK=0 ONLY="" OUT="" BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --full) FULL=1; shift ;;
        --quick) QUICK=1; shift ;;
        --only) ONLY=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-1}
    HUGE=64M HUGE_NAME="64 MiB" LIST1=2000 FUSE_MIB=64
else
    ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5}
    HUGE=1G HUGE_NAME="1 GiB" LIST1=10000 FUSE_MIB=1024
fi
LIST2=100000
AK=bench SK=bench-secret-key-123
NASGATE=${NASGATE_BIN:-$ROOT/target/release/nasgate}
LOADGEN=$ROOT/bench/loadgen/target/release/loadgen
TOOLS=$ROOT/target/bench-tools
S3S=$TOOLS/bin/s3s-fs

# --- what we need -------------------------------------------------------------------------
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
apt_needed=()
for pkg in nginx fio curl python3 fuse3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || apt_needed+=("$pkg")
done
if [ ${#apt_needed[@]} -gt 0 ]; then
    echo "bench: installing ${apt_needed[*]}" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_needed[@]}" >/dev/null
fi
if [ "$BUILD" = 1 ]; then
    echo "bench: building nasgate and loadgen (release)" >&2
    cargo build --release --quiet
    cargo build --release --quiet --manifest-path bench/loadgen/Cargo.toml
fi
for bin in "$NASGATE" "$LOADGEN"; do
    [ -x "$bin" ] || { echo "bench: missing $bin (run without --no-build)" >&2; exit 2; }
done

# --- the rows -----------------------------------------------------------------------------
# On a network filesystem every open, lock and rename is a round trip: there the small-object
# rows against the same work done directly on the share carry the real-NAS issue's target.
# On a local disk the direct side runs from the page cache at memory speed, so no target.
BASE_FS=$(findmnt -n -o FSTYPE -T "${BENCH_DIR:-${TMPDIR:-/tmp}}" 2>/dev/null || true)
case "$BASE_FS" in
    nfs | nfs4 | cifs | smb3 | ceph | fuse.glusterfs | fuse.ceph*) NAS_TARGET=">=0.5" ;;
    *) NAS_TARGET="" ;;
esac
# title | metric | A (nasgate side) | B (anchor side) | target
# A and B are TARGET:MEASUREMENT. Metrics: mib_per_s, ops_per_s (ratio A/B, higher is
# better), p50_ms (ratio A/B, lower is better), rss (A's peak RSS in MiB), rss_delta (A - B).
ROWS=$(cat <<EOF
GET 4 KiB x16 vs s3s-fs|ops_per_s|ng:get4k|s3s:get4k|>=10
GET 4 KiB x16 vs nginx|ops_per_s|ng:get4k|nginx:get4k|>=0.15
GET 1 MiB x8 vs s3s-fs|mib_per_s|ng:get1m|s3s:get1m|>=3
GET 1 MiB x8 vs nginx|mib_per_s|ng:get1m|nginx:get1m|
GET 64 MiB x4 vs s3s-fs|mib_per_s|ng:get64m|s3s:get64m|
GET 64 MiB x4 vs nginx|mib_per_s|ng:get64m|nginx:get64m|>=0.9
PUT 4 KiB x16 vs s3s-fs|ops_per_s|ng:put4k|s3s:put4k|>=3
GET 4 KiB x16 vs open+read+close on the share|ops_per_s|ng:get4k|files:get4k|$NAS_TARGET
PUT 4 KiB x16 vs temp+fsync+rename on the share|ops_per_s|ng:put4k|files:put4k|$NAS_TARGET
PUT 4 KiB x16 vs durable replace (temp+fsync+rename+dir fsync) on the share|ops_per_s|ng:put4k|files:put4kd|
durable replace 4 KiB x16 on the share vs s3s-fs PUT 4 KiB x16|ops_per_s|files:put4kd|s3s:put4k|
PUT 1 MiB x8 vs s3s-fs|mib_per_s|ng:put1m|s3s:put1m|>=2
PUT 1 MiB x8 vs durable replace on the share|mib_per_s|ng:put1m|files:put1md|
durable replace 1 MiB x8 on the share vs s3s-fs PUT 1 MiB x8|mib_per_s|files:put1md|s3s:put1m|
PUT 64 MiB x4 vs s3s-fs|mib_per_s|ng:put64m|s3s:put64m|>=1.5
PUT 64 MiB x4 vs fio 4x64 MiB write+fsync|mib_per_s|ng:put64m|fio:fio64m|>=0.8
PUT $HUGE_NAME x1 vs fio $HUGE_NAME write+fsync|mib_per_s|ng:puthuge|fio:fiohuge|
mixed PUT+GET+HEAD+DELETE 4 KiB x8 vs s3s-fs|ops_per_s|ng:mixed|s3s:mixed|
list $LIST1 keys: page p50 vs s3s-fs|p50_ms|ng:list1|s3s:list1|
list $LIST1 keys: page p50 vs readdir+stat of 1000|p50_ms|ng:list1|walk:walk1|<=3
multipart $HUGE_NAME (16 MiB parts x4) vs PUT $HUGE_NAME|mib_per_s|ng:mpu|ng:puthuge|
multipart $HUGE_NAME (16 MiB parts x4) vs s3s-fs|mib_per_s|ng:mpu|s3s:mpu|
memory: peak RSS, 32 GET streams of 64 MiB|rss|ng:mem32||<64 MiB
lock cost: GET 4 KiB x16, locks on vs off|ops_per_s|ng:get4k|nolock:get4k|>=0.9
hot object: GET 4 KiB x16 of one object vs 16 objects|ops_per_s|ng:hot4k|ng:get4k|
FUSE sequential write $FUSE_MIB MiB, mount vs direct|mib_per_s|fuse:fusewrite|direct:fusewrite|>=0.7
FUSE sequential write $FUSE_MIB MiB until its ETag is stored, mount vs direct|mib_per_s|fuse:fusewrite_stored|direct:fusewrite|
FUSE sequential read $FUSE_MIB MiB, mount vs direct|mib_per_s|fuse:fuseread|direct:fuseread|>=0.9
EOF
)
if [ "$FULL" = 1 ]; then
    ROWS+=$'\n'"list $LIST2 keys: page p50 vs readdir+stat of 1000|p50_ms|ng:list2|walk:walk2|<=3"
    ROWS+=$'\n'"list $LIST2 keys: page p50 vs s3s-fs|p50_ms|ng:list2|s3s:list2|"
    ROWS+=$'\n'"memory: peak RSS, PUT 4 GiB minus PUT 1 MiB|rss_delta|ng:put4g|ng:put1m1|<16 MiB"
    ROWS+=$'\n'"memory: peak RSS, GET 4 GiB minus GET 1 MiB|rss_delta|ng:get4g|ng:get1m1|<16 MiB"
fi
if [ -n "$ONLY" ]; then
    ROWS=$(grep -Ei -- "^[^|]*($ONLY)" <<<"$ROWS" || true)
    [ -n "$ROWS" ] || { echo "bench: no row matches --only '$ONLY'" >&2; exit 2; }
fi

# Measurements in the order each round runs them; loadgen arguments.
walkdir() { printf 'list-%s/d%04d' "$1" $(($1 / 2000)); }
declare -A ARGS=(
    [get4k]="get --size 4K -c 16"
    [get1m]="get --size 1M -c 8"
    [get64m]="get --size 64M -c 4"
    [hot4k]="get --size 4K -c 16 --keys 1"
    [put4k]="put --size 4K -c 16"
    [put1m]="put --size 1M -c 8"
    [put64m]="put --size 64M -c 4"
    [puthuge]="put --size $HUGE -c 1 --ops 1"
    [mpu]="multipart --size $HUGE --part-size 16M -c 4 --ops 1"
    [mixed]="mixed --size 4K -c 8"
    [list1]="list --bucket list-$LIST1 --keys $LIST1 -c 1"
    [list2]="list --bucket list-$LIST2 --keys $LIST2 -c 1"
    [mem32]="get --size 64M -c 32 --keys 4"
    [put4g]="put --size 4G -c 1 --ops 1"
    [put1m1]="put --size 1M -c 1"
    [get4g]="get --size 4G -c 1 --ops 1 --keys 1"
    [get1m1]="get --size 1M -c 1"
)
ORDER="get4k hot4k get1m get64m mem32 put4k put4kd put1m put1md put64m fio64m puthuge fiohuge mpu mixed
       list1 walk1 list2 walk2 put1m1 put4g get1m1 get4g fusewrite fuseread"
TARGETS="ng nolock s3s nginx fio walk files fuse direct"
needed=$(cut -d'|' -f3,4 <<<"$ROWS" | tr '|' '\n' | grep . | sort -u)
need() { grep -qx "$1" <<<"$needed"; }
need_target() { grep -q "^$1:" <<<"$needed"; }
if need_target s3s && [ ! -x "$S3S" ]; then
    echo "bench: installing s3s-fs 0.14.1 into $TOOLS" >&2
    cargo install s3s-fs --version 0.14.1 --features binary --locked --root "$TOOLS" --quiet
    [ -x "$S3S" ] || { echo "bench: missing $S3S" >&2; exit 2; }
fi

# --- the machine and the servers ----------------------------------------------------------
WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/nasgate-bench.XXXXXX")
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
PIDS=()
cleanup() {
    set +e
    [ -n "${MNT:-}" ] && mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; } 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    wait 2>/dev/null
    if [ -n "${BENCH_KEEP:-}" ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fs=$(findmnt -n -o FSTYPE,SOURCE,OPTIONS -T "$WORK" 2>/dev/null | awk '{print $1" on "$2" ("$3")"}')
MACHINE="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), \
$(free -g | awk '/^Mem:/{print $2}') GiB memory, Linux $(uname -r); shares in $WORK: ${fs:-?}"
echo "machine: $MACHINE"
COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')
echo "nasgate: $COMMIT; rounds: $ROUNDS; \
${DURATION}s per run$([ "$QUICK" = 1 ] && echo '; QUICK (smoke test, not figures)')"

declare -A EP PID NA
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_http URL PID: until URL answers at all (any status), or PID dies, or 10 s.
wait_http() {
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || return 1
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" != 000 ] && return 0
        sleep 0.1
    done
    return 1
}
# start_nasgate NAME SHARE PORT [FLAGS...]: sets EP[NAME] and PID[NAME]; 1 if it did not start.
start_nasgate() {
    local name=$1 share=$2 port=$3
    shift 3
    mkdir -p "$share"
    NASGATE_ROOT_USER=$AK NASGATE_ROOT_PASSWORD=$SK NASGATE_LOG=warn \
        "$NASGATE" serve "$share" --address "127.0.0.1:$port" "$@" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    EP[$name]=$port PID[$name]=$pid
    wait_http "http://127.0.0.1:$port/health/live" "$pid"
}

NG_SHARE=$WORK/nasgate-share
start_nasgate ng "$NG_SHARE" "$(port)" || { cat "$WORK/ng.log" >&2; echo "bench: nasgate did not start" >&2; exit 2; }

if need_target nolock; then
    if ! start_nasgate nolock "$WORK/nolock-share" "$(port)" --unsafe-no-share-locks; then
        NA[nolock]="switch missing"
        echo "bench: nasgate --unsafe-no-share-locks: $(head -c 200 "$WORK/nolock.log" | head -n1)" >&2
    fi
fi
if need_target s3s; then
    p=$(port)
    mkdir -p "$WORK/s3s-fs"
    "$S3S" --host 127.0.0.1 --port "$p" --access-key "$AK" --secret-key "$SK" "$WORK/s3s-fs" \
        >"$WORK/s3s-fs.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$p/" "$pid" || { cat "$WORK/s3s-fs.log" >&2; exit 2; }
    EP[s3s]=$p PID[s3s]=$pid
fi
if need_target nginx; then
    p=$(port)
    mkdir -p "$WORK/nginx"
    user=""
    [ "$(id -u)" -eq 0 ] && user="user root root;"
    cat >"$WORK/nginx/nginx.conf" <<CONF
$user
worker_processes 1; master_process off; daemon off;
pid $WORK/nginx/pid; error_log $WORK/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000000; keepalive_timeout 300s;
  default_type application/octet-stream;
  client_body_temp_path $WORK/nginx/b; proxy_temp_path $WORK/nginx/p; fastcgi_temp_path $WORK/nginx/f;
  uwsgi_temp_path $WORK/nginx/u; scgi_temp_path $WORK/nginx/s;
  server { listen 127.0.0.1:$p; root $NG_SHARE; }
}
CONF
    nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>>"$WORK/nginx/error.log" &
    pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$p/" "$pid" || { cat "$WORK/nginx/error.log" >&2; exit 2; }
    EP[nginx]=$p PID[nginx]=$pid
fi
if need_target fuse; then
    FUSE_SHARE=$WORK/fuse-share MNT=$WORK/fuse-mnt
    mkdir -p "$MNT"
    if start_nasgate fuse "$FUSE_SHARE" "$(port)" --mount "$MNT"; then
        for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
    fi
    if mountpoint -q "$MNT"; then
        curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X PUT "http://127.0.0.1:${EP[fuse]}/fusebench" \
            >/dev/null || true
        [ -d "$MNT/fusebench" ] || mkdir "$MNT/fusebench" || NA[fuse]="no bucket directory in the mount"
    else
        NA[fuse]="--mount unavailable"
        echo "bench: nasgate --mount: $(grep -m1 . "$WORK/fuse.log" || echo 'no mount within 10 s')" >&2
        kill "${PID[fuse]}" 2>/dev/null || true
    fi
fi

# --- running one measurement --------------------------------------------------------------
# record LABEL JSON: appends a result line and prints a progress line.
record() {
    printf '%s\n' "$2" >>"$RESULTS"
    python3 - "$1" "$2" "$ROUND" <<'EOF' >&2
import json, sys
label, r, rnd = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
if r.get("na"):
    print(f"  [r{rnd}] {label:18} n/a ({r['na']})"); sys.exit()
if r.get("failed"):
    print(f"  [r{rnd}] {label:18} FAILED"); sys.exit()
rss = r.get("server_peak_rss_kib")
if "ops_per_s" not in r:
    print(f"  [r{rnd}] {label:18} {r['mib_per_s']:9.1f} MiB/s{r.get('note', '')}"); sys.exit()
print(f"  [r{rnd}] {label:18} {r.get('ops_per_s', 0):10.1f} op/s {r.get('mib_per_s', 0):9.1f} MiB/s"
      f"  p50 {r.get('p50_ms', 0):8.3f} ms  p99 {r.get('p99_ms', 0):8.3f} ms"
      + (f"  server {r.get('server_cpu_pct')}% CPU, {rss // 1024} MiB peak" if rss else "")
      + (f"  ERRORS {r['errors']}" if r.get("errors") else ""))
EOF
}
na() { record "$1" "{\"target\":\"$1\",\"na\":\"$2\"}"; }

loadgen() { # TARGET MEAS
    local t=$1 m=$2 label="$1:$2" out rc=0
    local args=(--endpoint "http://127.0.0.1:${EP[$t]}" --server-pid "${PID[$t]}" --label "$label")
    if [ "$t" = nginx ]; then args+=(--no-sign); else args+=(--access-key "$AK" --secret-key "$SK"); fi
    [[ "${ARGS[$m]}" == *"--ops"* ]] || args+=(--duration "$DURATION")
    # shellcheck disable=SC2086
    out=$("$LOADGEN" ${ARGS[$m]} "${args[@]}" 2>"$WORK/loadgen.err") || rc=$?
    sed 's/^/      /' "$WORK/loadgen.err" >&2
    out=$(tail -n1 <<<"$out")
    if [ "$rc" -ge 2 ] || [ -z "$out" ]; then
        out="{\"target\":\"$label\",\"failed\":true,\"errors\":1}"
    fi
    record "$label" "$out"
}

# mib_record LABEL MIB [NOTE]: records a MiB/s figure; an empty MIB records a failure.
mib_record() {
    if [ -n "$2" ]; then
        record "$1" "{\"target\":\"$1\",\"mib_per_s\":$2,\"errors\":0,\"note\":\"${3:-}\"}"
    else
        record "$1" "{\"target\":\"$1\",\"failed\":true,\"errors\":1}"
    fi
}

fio_run() { # MEAS JOBS SIZE
    local dir=$WORK/fio mib=""
    mkdir -p "$dir"
    if fio --name=seqwrite --directory="$dir" --rw=write --bs=1M --size="$3" --numjobs="$2" \
        --ioengine=psync --end_fsync=1 --group_reporting --output-format=json \
        >"$WORK/fio.json" 2>"$WORK/fio.err"; then
        mib=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["write"]["bw"] / 1024)' \
            "$WORK/fio.json") || mib=""
    else
        sed 's/^/      /' "$WORK/fio.err" >&2
    fi
    rm -rf "$dir"
    mib_record "fio:$1" "$mib"
}

walk_run() { # MEAS KEYS: readdir+stat of one 1000-file directory of nasgate's listing bucket
    local dir out
    dir=$NG_SHARE/$(walkdir "$2")
    if [ ! -d "$dir" ]; then na "walk:$1" "no listing bucket"; return; fi
    if out=$("$LOADGEN" walk --dir "$dir" --ops 50 --label "walk:$1"); then
        record "walk:$1" "$out"
    else
        mib_record "walk:$1" ""
    fi
}

files_run() { # MEAS: the same small-object work as nasgate's, done directly on the share
    local op out size=4K conc=16
    case "$1" in
        get4k) op=file-read ;;
        put4k) op=file-replace ;;
        put4kd) op=file-replace-durable ;;
        put1md) op=file-replace-durable size=1M conc=8 ;;
        *) na "files:$1" "no such run"; return ;;
    esac
    # shellcheck disable=SC2086
    if out=$("$LOADGEN" $op --dir "$WORK/files" --size $size -c $conc --duration "$DURATION" \
        --label "files:$1" 2>"$WORK/loadgen.err"); then
        record "files:$1" "$(tail -n1 <<<"$out")"
    else
        sed 's/^/      /' "$WORK/loadgen.err" >&2
        mib_record "files:$1" ""
    fi
}

# dd_mib ARGS... [-- COMMAND...]: runs dd with 1 MiB blocks (then COMMAND, if given),
# prints the MiB/s of the wall time of both.
dd_mib() {
    local t0 t1 args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    t0=$(date +%s%N)
    dd "${args[@]}" bs=1M status=none || return 1
    if [ $# -gt 0 ]; then "$@" || return 1; fi
    t1=$(date +%s%N)
    python3 -c "print($FUSE_MIB / (($t1 - $t0) / 1e9))"
}
drop_caches() {
    sync
    { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null
}
# fresh_pages FILE: empties the page cache after filling it with FILE, so the next run takes
# pages the guest has just used. On a virtual machine whose host backs memory on first
# touch, pages not used for a while cost several times more to fill (reads and writes of the
# same 1 GiB measured 800 vs 2600 MiB/s depending on which went first); this way every side
# starts alike.
fresh_pages() {
    [ -f "$1" ] && dd if="$1" of=/dev/null bs=1M status=none
    drop_caches
}
# wait_etag FS_JSON: waits (up to 2 minutes) until the record holds an ETag.
wait_etag() {
    local i
    for i in $(seq 2400); do
        grep -q '"etag"' "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench: no ETag stored in $1" >&2
    return 1
}
fuse_run() { # MEAS
    if [ -n "${NA[fuse]:-}" ]; then
        na "fuse:$1" "${NA[fuse]}"
        na "direct:$1" "${NA[fuse]}"
        return
    fi
    local via=$MNT/fusebench direct=$FUSE_SHARE/fusebench warm="" side src order="fuse direct" t0 t1 mib
    # The two sides take turns going first (see fresh_pages).
    [ $((ROUND % 2)) = 0 ] && order="direct fuse"
    if [ "$1" = fusewrite ]; then
        # Both sides replace their file the same way: a new file written and renamed over
        # the old one (what the mount does with a staging file), and each starts with
        # nothing left to write back and an empty page cache; they take turns going first.
        # On a virtual machine whose memory the host backs on first touch, a write into
        # page-cache pages freed a moment ago (a file rewritten in place or just removed)
        # measured up to 10x faster than one into pages the guest had not used for a while,
        # so without this the row measured which side got the warm pages.
        for side in $order; do
            fresh_pages "$direct/w"
            if [ "$side" = fuse ]; then
                # A large file's ETag is computed after its publish: the row counts the write
                # until close, the one after it until the ETag is stored, and the other side
                # starts only then, so that hashing does not slow it.
                t0=$(date +%s%N)
                mib=$(dd_mib if=/dev/zero of="$via/w" count="$FUSE_MIB" conv=fsync)
                wait_etag "$FUSE_SHARE/.minio.sys/buckets/fusebench/w/fs.json"
                t1=$(date +%s%N)
                mib_record fuse:fusewrite "$mib"
                mib_record fuse:fusewrite_stored "$(python3 -c "print($FUSE_MIB / (($t1 - $t0) / 1e9))")"
            else
                mib_record direct:fusewrite "$(dd_mib if=/dev/zero of="$direct/direct-w.new" count="$FUSE_MIB" conv=fsync \
                    -- mv -f "$direct/direct-w.new" "$direct/direct-w")"
            fi
        done
        return
    fi
    [ -f "$via/w" ] || dd if=/dev/zero of="$via/w" bs=1M count="$FUSE_MIB" conv=fsync status=none || true
    for side in $order; do
        src=$via/w
        [ "$side" = direct ] && src=$direct/w
        if ! fresh_pages "$direct/w"; then
            warm=" (warm cache)"
            dd if="$src" of=/dev/null bs=1M status=none || true
        fi
        mib_record "$side:fuseread" "$(dd_mib if="$src" of=/dev/null)" "$warm"
    done
}

# --- the rounds ---------------------------------------------------------------------------
for ROUND in $(seq "$ROUNDS"); do
    echo "round $ROUND/$ROUNDS" >&2
    for m in $ORDER; do
        for t in $TARGETS; do
            need "$t:$m" || continue
            case "$t" in
                fio) if [ "$m" = fio64m ]; then fio_run "$m" 4 64M; else fio_run "$m" 1 "$HUGE"; fi ;;
                walk) if [ "$m" = walk1 ]; then walk_run "$m" "$LIST1"; else walk_run "$m" "$LIST2"; fi ;;
                files) files_run "$m" ;;
                fuse) fuse_run "$m" ;;
                direct) ;; # measured with fuse
                *) if [ -n "${NA[$t]:-}" ]; then na "$t:$m" "${NA[$t]}"; else loadgen "$t" "$m"; fi ;;
            esac
        done
    done
done

# --- the table ----------------------------------------------------------------------------
ROWS=$ROWS python3 - "$RESULTS" "$MACHINE" "$ROUNDS" "$DURATION" "$QUICK" "${OUT:-}" "$COMMIT" <<'EOF'
import datetime, json, os, shutil, statistics, sys
results, machine, rounds, duration, quick, out, commit = sys.argv[1:8]
rows = [l.split("|") for l in os.environ["ROWS"].strip().splitlines()]
by = {}
for line in open(results):
    r = json.loads(line)
    by.setdefault(r["target"], []).append(r)

def med(label, key):
    rs = by.get(label, [])
    if not rs:
        return None, "not run"
    if any(r.get("na") for r in rs):
        return None, "n/a (" + rs[0]["na"] + ")"
    if any(r.get("failed") for r in rs):
        return None, "FAILED"
    if any(r.get("errors") for r in rs):
        return None, "ERRORS (%d)" % sum(r["errors"] for r in rs)
    if key == "rss":
        return statistics.median(r["server_peak_rss_kib"] / 1024 for r in rs), None
    return statistics.median(r[key] for r in rs), None

def fmt(v, metric):
    if metric in ("mib_per_s",): return "%.0f MiB/s" % v if v >= 10 else "%.2f MiB/s" % v
    if metric == "ops_per_s": return "%.0f op/s" % v
    if metric == "p50_ms": return "%.2f ms" % v
    return "%.1f MiB" % v

def met(value, target):
    t = target.split()[0] if target else ""
    for op in (">=", "<=", "<", ">"):
        if t.startswith(op):
            x = float(t[len(op):])
            return {">=": value >= x, "<=": value <= x, "<": value < x, ">": value > x}[op]
    return None

table, bad = [], False
for title, metric, a, b, target in rows:
    key = "rss" if metric.startswith("rss") else metric
    va, ea = med(a, key)
    vb, eb = (med(b, key) if b else (None, None))
    usage = ""
    ra = by.get(a, [])
    if ra and all("server_cpu_pct" in r and r["server_cpu_pct"] is not None for r in ra):
        usage = "%.0f%% / %.0f MiB" % (statistics.median(r["server_cpu_pct"] for r in ra),
                                      max(r["server_peak_rss_kib"] for r in ra) / 1024)
    ca = ea or fmt(va, key)
    cb = (eb or fmt(vb, key)) if b else ""
    if ea or eb:
        e = ea or eb
        bad = bad or not e.startswith("n/a")
        table.append((title, ca, cb, e if e.startswith("n/a") else "-", target, "", usage))
        continue
    if metric == "rss":
        value, ratio = va, ""
    elif metric == "rss_delta":
        value = va - vb
        ratio = "+%.1f MiB" % value
    else:
        value = va / vb if vb else float("nan")
        ratio = "%.2fx" % value
    m = met(value, target)
    table.append((title, ca, cb, ratio, target, "" if m is None else ("yes" if m else "NO"), usage))

head = ("row", "nasgate", "anchor", "ratio", "target", "met", "nasgate CPU / peak RSS")
widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
print()
for r in [head] + table:
    print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
print("\nmedians over %s round(s) of %ss runs; ratio = nasgate / anchor (for ms: lower is better)" % (rounds, duration))
if out:
    with open(out, "w") as f:
        f.write("Measured %s on nasgate %s with `scripts/bench.sh` (%s round(s), %ss per run%s).\n\n"
                % (datetime.date.today().isoformat(), commit, rounds, duration, ", --quick" if quick == "1" else ""))
        f.write("Machine: %s\n\n" % machine)
        f.write("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
        for r in table:
            f.write("| " + " | ".join(str(c).replace("|", "/") for c in r) + " |\n")
    shutil.copy(results, out + ".jsonl")
    print("wrote %s and %s.jsonl" % (out, out))
sys.exit(1 if bad else 0)
EOF
