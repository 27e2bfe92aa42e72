#!/usr/bin/env bash
# Client matrix: drives real S3 clients (awscli, boto3, MinIO's Python SDK, s3cmd, rclone,
# s3fs-fuse) against a real `nasgate serve` and checks every byte, both as the client reads it
# back and as it landed on the share. Builds nothing: NASGATE_BIN (default
# target/debug/nasgate) must exist.
#
# Each client gets its own bucket and runs the same story: make the bucket, upload a small
# file and a 41 MiB file (multipart, 8 MiB parts), list, download and compare, sync a small
# tree (empty file, spaces, '+', '=', non-ASCII names) up, down, and up and down again with
# changes and deletions, delete the objects, remove the bucket. On top: awscli presigns a GET
# and drives a multipart upload by hand (s3api: parts, ListParts, Complete, Abort); boto3
# pages listings one key at a time, reads ranges, copies (UploadPartCopy) and tags, posts
# browser forms (generate_presigned_post, and forms the policy must refuse) and multi-deletes
# whitespace-only keys; MinIO's SDK streams an upload of unknown length, composes objects,
# and presigns GET, PUT and POST policies; s3fs mounts a bucket, makes directories and writes
# into them, and reads them back after a remount. Every upload is compared byte for byte with
# what landed on the share, every download with its source. A client's first failed step
# ends that client (later steps build on it); the other clients still run. Last, the
# server's log must hold no ERROR, panic or 5xx answer (501 NotImplemented to an optional
# request a client tolerated is listed as a note).
#
# Environment:
#   NASGATE_BIN                 server binary (default target/debug/nasgate)
#   CLIENT_MATRIX_CLIENTS       clients to run, space-separated (default: all six)
#   CLIENT_MATRIX_STEP_TIMEOUT  bound on every client command, seconds (default 180)
#   CLIENT_MATRIX_DEBUG=1       clients log every request and response (aws --debug,
#                               s3cmd -d, rclone -vv --dump headers, botocore debug)
#   CLIENT_MATRIX_KEEP=1        keep the temp dir (share, work files, logs) for a post-mortem
#
# Prints one line per step and, last, `client-matrix: N passed, M failed`; exits 1 on any
# failure (after printing the failed step's output and the server's log tail).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

NASGATE_BIN=${NASGATE_BIN:-target/debug/nasgate}
case $NASGATE_BIN in /*) ;; *) NASGATE_BIN=$ROOT/$NASGATE_BIN ;; esac
CLIENTS=${CLIENT_MATRIX_CLIENTS:-awscli boto3 minio s3cmd rclone s3fs}
T=${CLIENT_MATRIX_STEP_TIMEOUT:-180}
DEBUG=${CLIENT_MATRIX_DEBUG:-}

die() {
    echo "client-matrix: $*" >&2
    exit 2
}
[ -x "$NASGATE_BIN" ] || die "no nasgate binary at $NASGATE_BIN (run cargo build first)"
for tool in python3 s3cmd rclone s3fs fusermount mountpoint curl cmp diff timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/test.sh installs it)"
done
python3 -c 'import awscli, boto3, minio' 2>/dev/null ||
    die "python3 lacks awscli/boto3/minio: python3 -m pip install -r scripts/requirements-test.txt"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nasgate-client-matrix.XXXXXX")
SHARE=$TMP/share
WORK=$TMP/work
LOG=$TMP/nasgate.log
mkdir -p "$SHARE" "$WORK" "$TMP/logs" "$TMP/xdg-config" "$TMP/xdg-cache"
SERVER_PID=""

cleanup() {
    local rc=$?
    # A step that failed half-way may leave its s3fs mount behind.
    for m in "$WORK"/*/mnt; do
        if mountpoint -q "$m" 2>/dev/null; then fusermount -u -z "$m" || true; fi
    done
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "${CLIENT_MATRIX_KEEP:-}" ]; then
        echo "client-matrix: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log_tail() {
    echo "--- nasgate log (last ${1:-40} lines of $LOG) ---"
    tail -n "${1:-40}" "$LOG" || true
    echo "--- end of nasgate log ---"
}

# ---------------------------------------------------------------------------------------------
# The server: a fresh share, credentials of our own, port 0 (the kernel picks a free port and
# nasgate logs it), then poll /health/live. Bounded at 20 s; no fixed sleeps.

export NASGATE_ROOT_USER=matrix-access
export NASGATE_ROOT_PASSWORD='matrix/Secret+Key0123456789abcdefghijKLM'
export NASGATE_LOG=info
"$NASGATE_BIN" serve "$SHARE" --address 127.0.0.1:0 >"$LOG" 2>&1 </dev/null &
SERVER_PID=$!

ADDRESS=""
deadline=$((SECONDS + 20))
while :; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "client-matrix: nasgate serve exited before it was ready"
        log_tail
        exit 1
    fi
    if [ -z "$ADDRESS" ]; then
        ADDRESS=$(sed -n 's/.*listening.*address=\([0-9.:]*\).*/\1/p' "$LOG" | head -n 1)
    fi
    if [ -n "$ADDRESS" ] && curl -fsS -m 2 -o /dev/null "http://$ADDRESS/health/live" 2>/dev/null; then
        break
    fi
    if [ $SECONDS -ge $deadline ]; then
        echo "client-matrix: nasgate serve not live after 20 s (address: ${ADDRESS:-unknown})"
        log_tail
        exit 1
    fi
    sleep 0.1
done
ENDPOINT=http://$ADDRESS

# ---------------------------------------------------------------------------------------------
# Client configuration: environment and temp files only; nothing under ~.

export XDG_CONFIG_HOME=$TMP/xdg-config XDG_CACHE_HOME=$TMP/xdg-cache
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
# Plain http on loopback: a CA bundle from the environment only trips rclone's AWS SDK up.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_CA_BUNDLE
export AWS_ACCESS_KEY_ID=$NASGATE_ROOT_USER AWS_SECRET_ACCESS_KEY=$NASGATE_ROOT_PASSWORD
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$ENDPOINT
export AWS_CONFIG_FILE=$TMP/aws-config AWS_SHARED_CREDENTIALS_FILE=$TMP/aws-credentials
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
# One attempt per request: a retry would hide a server that fails now and then.
export AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard
: >"$AWS_SHARED_CREDENTIALS_FILE"
cat >"$AWS_CONFIG_FILE" <<EOF
[default]
region = us-east-1
s3 =
    addressing_style = path
    signature_version = s3v4
    multipart_threshold = 8MB
    multipart_chunksize = 8MB
EOF
# The same with one request at a time, so every request of a sync reuses one connection.
sed 's/^\(    multipart_chunksize.*\)$/\1\n    max_concurrent_requests = 1/' "$AWS_CONFIG_FILE" >"$TMP/aws-config-serial"

S3CMD_CONFIG=$TMP/s3cmd.cfg
cat >"$S3CMD_CONFIG" <<EOF
[default]
access_key = $NASGATE_ROOT_USER
secret_key = $NASGATE_ROOT_PASSWORD
host_base = $ADDRESS
host_bucket = $ADDRESS
bucket_location = us-east-1
use_https = False
signature_v2 = False
check_ssl_certificate = False
progress_meter = False
max_retries = 1
EOF

RCLONE_CONF=$TMP/rclone.conf
: >"$RCLONE_CONF"
export RCLONE_CONFIG_MX_TYPE=s3 RCLONE_CONFIG_MX_PROVIDER=Other
export RCLONE_CONFIG_MX_ACCESS_KEY_ID=$NASGATE_ROOT_USER
export RCLONE_CONFIG_MX_SECRET_ACCESS_KEY=$NASGATE_ROOT_PASSWORD
export RCLONE_CONFIG_MX_ENDPOINT=$ENDPOINT RCLONE_CONFIG_MX_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_MX_REGION=us-east-1

# Every client command goes through one of these: bounded by timeout, optionally verbose.
aws_dbg=() s3cmd_dbg=() rclone_dbg=()
if [ -n "$DEBUG" ]; then
    aws_dbg=(--debug) s3cmd_dbg=(-d) rclone_dbg=(-vv --dump headers)
    export CLIENT_MATRIX_DEBUG=1
fi
awsc() {
    timeout -k 5 "$T" python3 -m awscli --cli-read-timeout 30 ${aws_dbg[@]+"${aws_dbg[@]}"} "$@"
}
s3c() { timeout -k 5 "$T" s3cmd -c "$S3CMD_CONFIG" --no-progress ${s3cmd_dbg[@]+"${s3cmd_dbg[@]}"} "$@"; }
rcl() {
    timeout -k 5 "$T" rclone --config "$RCLONE_CONF" --cache-dir "$TMP/xdg-cache/rclone" \
        --retries 1 --low-level-retries 1 ${rclone_dbg[@]+"${rclone_dbg[@]}"} "$@"
}
b3() {
    local step=$1
    shift
    timeout -k 5 "$T" python3 "$ROOT/scripts/client_matrix_boto3.py" "$step" \
        --endpoint "$ENDPOINT" --bucket "$BUCKET" --work "$CW" "$@"
}
mnc() {
    local step=$1
    shift
    timeout -k 5 "$T" python3 "$ROOT/scripts/client_matrix_minio.py" "$step" \
        --endpoint "$ENDPOINT" --bucket "$BUCKET" --work "$CW" "$@"
}

# ---------------------------------------------------------------------------------------------
# Inputs, made once; each client works on its own copy of the tree (its sync steps change it).

INPUT=$TMP/input
mkdir -p "$INPUT/tree/sub/deeper"
head -c 1537 /dev/urandom >"$INPUT/small.bin"
head -c $((41 * 1024 * 1024 + 12345)) /dev/urandom >"$INPUT/big.bin"
head -c 3000 /dev/urandom | base64 >"$INPUT/tree/a.txt"
head -c 300000 /dev/urandom >"$INPUT/tree/b.bin"
: >"$INPUT/tree/empty.dat"
: >"$INPUT/tree/sub/empty-too.dat"
head -c $((1024 * 1024 + 7)) /dev/urandom >"$INPUT/tree/sub/c.bin"
printf 'plus and equals\n' >"$INPUT/tree/sub/plus+sign=eq.txt"
printf 'spaces\n' >"$INPUT/tree/sub/deeper/name with spaces.txt"
printf 'unicode\n' >"$INPUT/tree/sub/deeper/ünïcødé-ファイル.txt"
SMALL_SIZE=$(stat -c %s "$INPUT/small.bin")
BIG_SIZE=$(stat -c %s "$INPUT/big.bin")

# The client's working copy: small.bin and big.bin (hard links to the inputs), tree/ (a copy).
setup_work() {
    CW=$WORK/$1
    mkdir -p "$CW"
    ln "$INPUT/small.bin" "$CW/small.bin" 2>/dev/null || cp "$INPUT/small.bin" "$CW/small.bin"
    ln "$INPUT/big.bin" "$CW/big.bin" 2>/dev/null || cp "$INPUT/big.bin" "$CW/big.bin"
    cp -r "$INPUT/tree" "$CW/tree"
}

# The sync-changes edit: one file grows, one goes, one is new.
change_tree() {
    printf 'appended line\n' >>"$CW/tree/a.txt"
    rm "$CW/tree/b.bin"
    head -c 5000 /dev/urandom >"$CW/tree/sub/new.bin"
}

# ---------------------------------------------------------------------------------------------
# Checks.

fail() {
    echo "CHECK FAILED: $*" >&2
    return 1
}

# The object's bytes on the share equal the source file's (what the server stored, not just
# what it hands back).
stored() { # bucket key source
    cmp -- "$3" "$SHARE/$1/$2" || fail "object $1/$2 on the share differs from $3"
}

# The object was assembled from at least two parts (its ETag is MD5-of-parts "-N").
multipart() { # bucket key
    python3 - "$SHARE/.minio.sys/buckets/$1/$2/fs.json" <<'EOF' || fail "$1/$2 was not uploaded in parts"
import json, re, sys
etag = json.load(open(sys.argv[1]))["meta"]["etag"]
m = re.fullmatch(r"[0-9a-f]{32}-([0-9]+)", etag)
print("stored ETag", etag)
sys.exit(0 if m and int(m.group(1)) >= 2 else 1)
EOF
}

# Every file of the local tree is on the share under bucket/prefix, byte for byte, and the
# share holds nothing else there.
tree_stored() { # bucket prefix dir
    local rel
    while IFS= read -r -d '' rel; do
        stored "$1" "$2/${rel#./}" "$3/$rel"
    done < <(cd "$3" && find . -type f -print0)
    diff <(cd "$3" && find . -type f | sort) <(cd "$SHARE/$1/$2" && find . -type f | sort) ||
        fail "share's $1/$2 holds other files than $3"
}

same_tree() { # dir dir
    diff -r -- "$1" "$2" || fail "trees $1 and $2 differ"
}

# A listing (saved to a file) shows the key with its size in bytes.
listed() { # listing-file size key
    awk -v s="$2" -v k="$3" '
        { has = 0; for (i = 1; i <= NF; i++) if ($i == s) has = 1 }
        has && length($0) >= length(k) && substr($0, length($0) - length(k) + 1) == k { found = 1 }
        END { exit !found }' "$1" || {
        cat "$1"
        fail "listing does not show $3 with $2 bytes"
    }
}

no_bucket_dir() { # bucket
    [ ! -e "$SHARE/$1" ] || fail "bucket directory $1 still on the share"
}

# ---------------------------------------------------------------------------------------------
# Steps.

PASSED=0
FAILED=0
FAILURES=()
CLIENT_FAILED=""
STEPNO=0

server_alive() { kill -0 "$SERVER_PID" 2>/dev/null; }

# Runs one step (a shell function) in a subshell with errexit, output to a per-step log.
step() { # client name function [args...]
    local client=$1 name=$2 out rc=0 started=$SECONDS
    shift 2
    [ -z "$CLIENT_FAILED" ] || return 0
    STEPNO=$((STEPNO + 1))
    out=$TMP/logs/$(printf '%02d' "$STEPNO")-$client-${name//[^A-Za-z0-9]/-}.log
    # In the background rather than under `if`/`||`, so errexit holds inside the step.
    (
        set -euo pipefail
        "$@"
    ) >"$out" 2>&1 &
    wait $! || rc=$?
    if [ $rc -eq 0 ]; then
        PASSED=$((PASSED + 1))
        printf 'ok   %-7s %s (%ds)\n' "$client" "$name" $((SECONDS - started))
    else
        FAILED=$((FAILED + 1))
        FAILURES+=("$client: $name")
        CLIENT_FAILED=$name
        printf 'FAIL %-7s %s (exit %d%s)\n' "$client" "$name" "$rc" \
            "$([ $rc -eq 124 ] && echo ", timed out after ${T}s")"
        echo "--- output of $client/$name (last 60 lines) ---"
        tail -n 60 "$out" || true
        echo "--- end of output ---"
        log_tail 30
        server_alive || echo "client-matrix: nasgate serve is no longer running"
    fi
}

# ---- awscli: aws s3 and aws s3api ----

aws_mb() {
    awsc s3 mb "s3://$BUCKET"
    awsc s3api head-bucket --bucket "$BUCKET"
    awsc s3 ls >"$CW/buckets.txt"
    grep -q " $BUCKET\$" "$CW/buckets.txt" || fail "aws s3 ls does not list $BUCKET"
}
aws_put_small() {
    awsc s3 cp --only-show-errors "$CW/small.bin" "s3://$BUCKET/small.bin"
    stored "$BUCKET" small.bin "$CW/small.bin"
}
aws_put_big() {
    awsc s3 cp --only-show-errors "$CW/big.bin" "s3://$BUCKET/dir/big.bin"
    stored "$BUCKET" dir/big.bin "$CW/big.bin"
    multipart "$BUCKET" dir/big.bin
}
aws_s3api_put() {
    awsc s3api put-object --bucket "$BUCKET" --key api/small.bin --body "$CW/small.bin" \
        --content-type application/x-matrix --metadata origin=awscli >/dev/null
    stored "$BUCKET" api/small.bin "$CW/small.bin"
    awsc s3api head-object --bucket "$BUCKET" --key api/small.bin \
        --query '[ContentLength, ContentType, Metadata.origin]' --output text >"$CW/head.txt"
    cat "$CW/head.txt"
    [ "$(cat "$CW/head.txt")" = "$(printf '%s\tapplication/x-matrix\tawscli' "$SMALL_SIZE")" ] ||
        fail "head-object answered: $(cat "$CW/head.txt")"
}
aws_list() {
    awsc s3 ls --recursive "s3://$BUCKET" >"$CW/ls.txt"
    cat "$CW/ls.txt"
    listed "$CW/ls.txt" "$SMALL_SIZE" small.bin
    listed "$CW/ls.txt" "$SMALL_SIZE" api/small.bin
    listed "$CW/ls.txt" "$BIG_SIZE" dir/big.bin
    [ "$(wc -l <"$CW/ls.txt")" -eq 3 ] || fail "expected 3 objects"
    awsc s3 ls "s3://$BUCKET/" >"$CW/ls-top.txt"
    grep -q 'PRE dir/$' "$CW/ls-top.txt" || fail "aws s3 ls shows no dir/ prefix"
    awsc s3api list-objects-v2 --bucket "$BUCKET" --max-items 10 --page-size 1 \
        --query 'Contents[].[Key, Size]' --output text >"$CW/v2.txt"
    awsc s3api list-objects --bucket "$BUCKET" --page-size 1 \
        --query 'Contents[].[Key, Size]' --output text >"$CW/v1.txt"
    printf 'api/small.bin\t%s\ndir/big.bin\t%s\nsmall.bin\t%s\n' \
        "$SMALL_SIZE" "$BIG_SIZE" "$SMALL_SIZE" >"$CW/want.txt"
    diff "$CW/want.txt" "$CW/v2.txt" || fail "list-objects-v2 (paged by 1)"
    diff "$CW/want.txt" "$CW/v1.txt" || fail "list-objects (paged by 1)"
}
aws_get() {
    mkdir -p "$CW/dl"
    awsc s3 cp --only-show-errors "s3://$BUCKET/small.bin" "$CW/dl/small.bin"
    awsc s3 cp --only-show-errors "s3://$BUCKET/dir/big.bin" "$CW/dl/big.bin"
    cmp "$CW/small.bin" "$CW/dl/small.bin"
    cmp "$CW/big.bin" "$CW/dl/big.bin"
    awsc s3api get-object --bucket "$BUCKET" --key api/small.bin "$CW/dl/api-small.bin" >/dev/null
    cmp "$CW/small.bin" "$CW/dl/api-small.bin"
    awsc s3api get-object --bucket "$BUCKET" --key dir/big.bin --range bytes=8388600-8388699 \
        "$CW/dl/range.bin" >/dev/null
    cmp <(tail -c +8388601 "$CW/big.bin" | head -c 100) "$CW/dl/range.bin"
}
aws_presign() {
    awsc s3 presign "s3://$BUCKET/dir/big.bin" --expires-in 300 >"$CW/url.txt"
    curl -fsS -m "$T" -o "$CW/dl/presigned-big.bin" "$(cat "$CW/url.txt")"
    cmp "$CW/big.bin" "$CW/dl/presigned-big.bin"
}
aws_multipart() {
    local id etag1 etag2
    head -c $((8 * 1024 * 1024)) "$CW/big.bin" >"$CW/part1"
    tail -c +$((8 * 1024 * 1024 + 1)) "$CW/big.bin" >"$CW/part2"
    id=$(awsc s3api create-multipart-upload --bucket "$BUCKET" --key mp/big.bin \
        --query UploadId --output text)
    etag1=$(awsc s3api upload-part --bucket "$BUCKET" --key mp/big.bin --upload-id "$id" \
        --part-number 1 --body "$CW/part1" --query ETag --output text)
    etag2=$(awsc s3api upload-part --bucket "$BUCKET" --key mp/big.bin --upload-id "$id" \
        --part-number 2 --body "$CW/part2" --query ETag --output text)
    awsc s3api list-parts --bucket "$BUCKET" --key mp/big.bin --upload-id "$id" \
        --query 'Parts[].[PartNumber, Size]' --output text >"$CW/parts.txt"
    printf '1\t%s\n2\t%s\n' "$(stat -c %s "$CW/part1")" "$(stat -c %s "$CW/part2")" |
        diff - "$CW/parts.txt" || fail "list-parts"
    awsc s3api list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' \
        --output text >"$CW/uploads.txt"
    grep -qx 'mp/big.bin' "$CW/uploads.txt" || fail "list-multipart-uploads lacks mp/big.bin"
    printf '{"Parts": [{"PartNumber": 1, "ETag": %s}, {"PartNumber": 2, "ETag": %s}]}' \
        "$(printf '%s' "$etag1" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" \
        "$(printf '%s' "$etag2" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" \
        >"$CW/complete.json"
    awsc s3api complete-multipart-upload --bucket "$BUCKET" --key mp/big.bin --upload-id "$id" \
        --multipart-upload "file://$CW/complete.json" >/dev/null
    stored "$BUCKET" mp/big.bin "$CW/big.bin"
    multipart "$BUCKET" mp/big.bin
    # An aborted upload leaves nothing behind.
    id=$(awsc s3api create-multipart-upload --bucket "$BUCKET" --key mp/aborted.bin \
        --query UploadId --output text)
    awsc s3api upload-part --bucket "$BUCKET" --key mp/aborted.bin --upload-id "$id" \
        --part-number 1 --body "$CW/part1" >/dev/null
    awsc s3api abort-multipart-upload --bucket "$BUCKET" --key mp/aborted.bin --upload-id "$id"
    if awsc s3api list-parts --bucket "$BUCKET" --key mp/aborted.bin --upload-id "$id" \
        >"$CW/aborted.txt" 2>&1; then
        fail "list-parts of an aborted upload succeeded"
    fi
    grep -q NoSuchUpload "$CW/aborted.txt" || { cat "$CW/aborted.txt"; fail "want NoSuchUpload"; }
    awsc s3api list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' \
        --output text >"$CW/uploads.txt"
    ! grep -q 'mp/' "$CW/uploads.txt" || { cat "$CW/uploads.txt"; fail "uploads left over"; }
    [ ! -e "$SHARE/$BUCKET/mp/aborted.bin" ] || fail "aborted object on the share"
}
aws_sync_up() {
    # Serially, so an upload after an empty file reuses the connection of its zero-length PUT,
    # which nasgate (like S3) answers without an interim "100 Continue". botocore before
    # 1.43.77 then reads the next response on that connection with the stale status line and
    # stalls (boto/botocore#3755); awscli 1.46.3 still vendors botocore 1.43.62.
    AWS_CONFIG_FILE=$TMP/aws-config-serial awsc s3 sync --only-show-errors "$CW/tree" "s3://$BUCKET/tree"
    tree_stored "$BUCKET" tree "$CW/tree"
    awsc s3 sync --dryrun "$CW/tree" "s3://$BUCKET/tree" >"$CW/again.txt"
    [ ! -s "$CW/again.txt" ] || { cat "$CW/again.txt"; fail "second sync would transfer again"; }
}
aws_sync_down() {
    awsc s3 sync --only-show-errors "s3://$BUCKET/tree" "$CW/down"
    same_tree "$CW/tree" "$CW/down"
}
aws_sync_changes() {
    change_tree
    awsc s3 sync --only-show-errors --delete "$CW/tree" "s3://$BUCKET/tree"
    tree_stored "$BUCKET" tree "$CW/tree"
    awsc s3 sync --only-show-errors --delete "s3://$BUCKET/tree" "$CW/down"
    same_tree "$CW/tree" "$CW/down"
}
aws_delete() {
    awsc s3 rm --only-show-errors "s3://$BUCKET/small.bin"
    awsc s3api delete-object --bucket "$BUCKET" --key api/small.bin
    # shellcheck disable=SC2016 # a JMESPath literal, not a shell expansion
    awsc s3api list-objects-v2 --bucket "$BUCKET" \
        --query '{Objects: Contents[].{Key: Key}, Quiet: `false`}' --output json >"$CW/del.json"
    awsc s3api delete-objects --bucket "$BUCKET" --delete "file://$CW/del.json" \
        --query 'length(Deleted)' --output text >"$CW/deleted.txt"
    # Left: dir/big.bin, mp/big.bin and the tree.
    want=$((2 + $(find "$CW/tree" -type f | wc -l)))
    [ "$(cat "$CW/deleted.txt")" -eq "$want" ] ||
        fail "delete-objects deleted $(cat "$CW/deleted.txt"), want $want"
    awsc s3 ls --recursive "s3://$BUCKET" >"$CW/left.txt" || true
    [ ! -s "$CW/left.txt" ] || { cat "$CW/left.txt"; fail "objects left after delete"; }
}
aws_rb() {
    awsc s3 rb "s3://$BUCKET"
    if awsc s3api head-bucket --bucket "$BUCKET" 2>/dev/null; then fail "bucket still there"; fi
    no_bucket_dir "$BUCKET"
}

run_awscli() {
    step awscli "make-bucket" aws_mb
    step awscli "upload small (s3 cp)" aws_put_small
    step awscli "upload 41 MiB multipart (s3 cp)" aws_put_big
    step awscli "s3api put-object/head-object" aws_s3api_put
    step awscli "list (s3 ls, list-objects-v2, list-objects)" aws_list
    step awscli "download and compare" aws_get
    step awscli "presigned GET (s3 presign, curl)" aws_presign
    step awscli "s3api multipart (parts, list, complete, abort)" aws_multipart
    step awscli "sync up (one connection)" aws_sync_up
    step awscli "sync down" aws_sync_down
    step awscli "sync changes --delete" aws_sync_changes
    step awscli "delete objects" aws_delete
    step awscli "remove bucket" aws_rb
}

# ---- boto3 ----

b3_put_small() { b3 put-small && stored "$BUCKET" small.bin "$CW/small.bin"; }
b3_put_big() {
    b3 put-big
    stored "$BUCKET" dir/big.bin "$CW/big.bin"
    multipart "$BUCKET" dir/big.bin
}
b3_copy() {
    b3 copy
    stored "$BUCKET" copy/big.bin "$CW/big.bin"
    multipart "$BUCKET" copy/big.bin
    stored "$BUCKET" copy/small.bin "$CW/small.bin"
}
b3_sync_up() { b3 sync-up && tree_stored "$BUCKET" tree "$CW/tree"; }
b3_sync_down() { b3 sync-down && same_tree "$CW/tree" "$CW/down"; }
b3_rb() { b3 rb && no_bucket_dir "$BUCKET"; }

run_boto3() {
    step boto3 "make-bucket" b3 mb
    step boto3 "upload small (put_object)" b3_put_small
    step boto3 "upload 41 MiB multipart (upload_file)" b3_put_big
    step boto3 "list (V2 paged, V1 paged, delimiter)" b3 list
    step boto3 "download, ranges and compare" b3 get
    step boto3 "copy (UploadPartCopy, CopyObject) and tagging" b3_copy
    step boto3 "browser-form POST (generate_presigned_post), refused forms" b3 post
    step boto3 "whitespace keys, multi-delete, non-ASCII metadata" b3 odd-keys
    step boto3 "bucket policy (put/get/delete_bucket_policy), anonymous GET" b3 policy
    step boto3 "sync up (upload_file)" b3_sync_up
    step boto3 "sync down (download_file)" b3_sync_down
    step boto3 "delete objects (DeleteObject, DeleteObjects)" b3 delete
    step boto3 "remove bucket" b3_rb
}

# ---- s3cmd ----

s3cmd_mb() {
    s3c mb "s3://$BUCKET"
    s3c ls >"$CW/buckets.txt"
    grep -q " s3://$BUCKET\$" "$CW/buckets.txt" || fail "s3cmd ls does not list $BUCKET"
}
s3cmd_put_small() {
    s3c put "$CW/small.bin" "s3://$BUCKET/small.bin"
    stored "$BUCKET" small.bin "$CW/small.bin"
}
s3cmd_put_big() {
    s3c put --multipart-chunk-size-mb=8 "$CW/big.bin" "s3://$BUCKET/dir/big.bin"
    stored "$BUCKET" dir/big.bin "$CW/big.bin"
    multipart "$BUCKET" dir/big.bin
}
s3cmd_list() {
    s3c ls --recursive "s3://$BUCKET" >"$CW/ls.txt"
    cat "$CW/ls.txt"
    listed "$CW/ls.txt" "$SMALL_SIZE" "s3://$BUCKET/small.bin"
    listed "$CW/ls.txt" "$BIG_SIZE" "s3://$BUCKET/dir/big.bin"
    [ "$(wc -l <"$CW/ls.txt")" -eq 2 ] || fail "expected 2 objects"
    s3c ls "s3://$BUCKET/" >"$CW/ls-top.txt"
    grep -q "DIR  *s3://$BUCKET/dir/\$" "$CW/ls-top.txt" || fail "s3cmd ls shows no dir/ prefix"
    s3c info "s3://$BUCKET/dir/big.bin" >"$CW/info.txt"
    grep -Eq "File size: *$BIG_SIZE\$" "$CW/info.txt" || { cat "$CW/info.txt"; fail "s3cmd info"; }
}
s3cmd_get() {
    mkdir -p "$CW/dl"
    s3c get "s3://$BUCKET/small.bin" "$CW/dl/small.bin"
    s3c get "s3://$BUCKET/dir/big.bin" "$CW/dl/big.bin"
    cmp "$CW/small.bin" "$CW/dl/small.bin"
    cmp "$CW/big.bin" "$CW/dl/big.bin"
}
s3cmd_sync_up() {
    s3c sync "$CW/tree/" "s3://$BUCKET/tree/"
    tree_stored "$BUCKET" tree "$CW/tree"
    s3c sync --dry-run "$CW/tree/" "s3://$BUCKET/tree/" >"$CW/again.txt"
    ! grep -q '^upload' "$CW/again.txt" || { cat "$CW/again.txt"; fail "second sync would upload again"; }
}
s3cmd_sync_down() {
    mkdir -p "$CW/down"
    s3c sync "s3://$BUCKET/tree/" "$CW/down/"
    same_tree "$CW/tree" "$CW/down"
}
s3cmd_sync_changes() {
    change_tree
    s3c sync --delete-removed "$CW/tree/" "s3://$BUCKET/tree/"
    tree_stored "$BUCKET" tree "$CW/tree"
    s3c sync --delete-removed "s3://$BUCKET/tree/" "$CW/down/"
    same_tree "$CW/tree" "$CW/down"
}
s3cmd_delete() {
    s3c del "s3://$BUCKET/small.bin"
    s3c del --recursive --force "s3://$BUCKET/"
    s3c ls --recursive "s3://$BUCKET" >"$CW/left.txt"
    [ ! -s "$CW/left.txt" ] || { cat "$CW/left.txt"; fail "objects left after delete"; }
}
s3cmd_rb() {
    s3c rb "s3://$BUCKET"
    s3c ls >"$CW/buckets.txt"
    ! grep -q " s3://$BUCKET\$" "$CW/buckets.txt" || fail "bucket still listed"
    no_bucket_dir "$BUCKET"
}

run_s3cmd() {
    step s3cmd "make-bucket" s3cmd_mb
    step s3cmd "upload small (put)" s3cmd_put_small
    step s3cmd "upload 41 MiB multipart (put, 8 MiB chunks)" s3cmd_put_big
    step s3cmd "list (ls, info)" s3cmd_list
    step s3cmd "download and compare (get)" s3cmd_get
    step s3cmd "sync up" s3cmd_sync_up
    step s3cmd "sync down" s3cmd_sync_down
    step s3cmd "sync changes --delete-removed" s3cmd_sync_changes
    step s3cmd "delete objects (del, del --recursive)" s3cmd_delete
    step s3cmd "remove bucket" s3cmd_rb
}

# ---- rclone ----

rclone_mb() {
    rcl mkdir "mx:$BUCKET"
    rcl lsd mx: >"$CW/buckets.txt"
    grep -q " $BUCKET\$" "$CW/buckets.txt" || { cat "$CW/buckets.txt"; fail "rclone lsd does not list $BUCKET"; }
}
rclone_put_small() {
    rcl copyto "$CW/small.bin" "mx:$BUCKET/small.bin"
    stored "$BUCKET" small.bin "$CW/small.bin"
}
rclone_put_big() {
    rcl copyto --s3-upload-cutoff 8M --s3-chunk-size 8M "$CW/big.bin" "mx:$BUCKET/dir/big.bin"
    stored "$BUCKET" dir/big.bin "$CW/big.bin"
    multipart "$BUCKET" dir/big.bin
}
rclone_list() {
    rcl lsl "mx:$BUCKET" >"$CW/ls.txt"
    cat "$CW/ls.txt"
    listed "$CW/ls.txt" "$SMALL_SIZE" small.bin
    listed "$CW/ls.txt" "$BIG_SIZE" dir/big.bin
    [ "$(wc -l <"$CW/ls.txt")" -eq 2 ] || fail "expected 2 objects"
    rcl lsf "mx:$BUCKET" >"$CW/lsf.txt"
    printf 'dir/\nsmall.bin\n' | diff - "$CW/lsf.txt" || fail "rclone lsf top level"
    rcl md5sum "mx:$BUCKET/small.bin" >"$CW/md5.txt"
    [ "$(cut -d' ' -f1 "$CW/md5.txt")" = "$(md5sum <"$CW/small.bin" | cut -d' ' -f1)" ] ||
        fail "rclone md5sum (from the ETag) differs: $(cat "$CW/md5.txt")"
}
rclone_get() {
    mkdir -p "$CW/dl"
    rcl copyto "mx:$BUCKET/small.bin" "$CW/dl/small.bin"
    rcl copyto "mx:$BUCKET/dir/big.bin" "$CW/dl/big.bin"
    cmp "$CW/small.bin" "$CW/dl/small.bin"
    cmp "$CW/big.bin" "$CW/dl/big.bin"
}
rclone_sync_up() {
    rcl sync "$CW/tree" "mx:$BUCKET/tree"
    tree_stored "$BUCKET" tree "$CW/tree"
    rcl check "$CW/tree" "mx:$BUCKET/tree"
}
rclone_sync_down() {
    rcl sync "mx:$BUCKET/tree" "$CW/down"
    same_tree "$CW/tree" "$CW/down"
}
rclone_sync_changes() {
    change_tree
    rcl sync "$CW/tree" "mx:$BUCKET/tree"
    tree_stored "$BUCKET" tree "$CW/tree"
    rcl sync "mx:$BUCKET/tree" "$CW/down"
    same_tree "$CW/tree" "$CW/down"
}
rclone_delete() {
    rcl deletefile "mx:$BUCKET/small.bin"
    rcl delete "mx:$BUCKET"
    rcl lsf -R --files-only "mx:$BUCKET" >"$CW/left.txt"
    [ ! -s "$CW/left.txt" ] || { cat "$CW/left.txt"; fail "objects left after delete"; }
}
rclone_rb() {
    rcl rmdir "mx:$BUCKET"
    rcl lsd mx: >"$CW/buckets.txt"
    ! grep -q " $BUCKET\$" "$CW/buckets.txt" || fail "bucket still listed"
    no_bucket_dir "$BUCKET"
}

run_rclone() {
    step rclone "make-bucket (mkdir)" rclone_mb
    step rclone "upload small (copyto)" rclone_put_small
    step rclone "upload 41 MiB multipart (copyto, 8M cutoff/chunks)" rclone_put_big
    step rclone "list (lsl, lsf, md5sum)" rclone_list
    step rclone "download and compare (copyto)" rclone_get
    step rclone "sync up (sync, check)" rclone_sync_up
    step rclone "sync down" rclone_sync_down
    step rclone "sync changes" rclone_sync_changes
    step rclone "delete objects (deletefile, delete)" rclone_delete
    step rclone "remove bucket (rmdir)" rclone_rb
}

# ---- MinIO's Python SDK ----

mn_put_get() { mnc put-get && stored "$BUCKET" small.bin "$CW/small.bin"; }
mn_put_stream() {
    mnc put-stream
    stored "$BUCKET" stream/big.bin "$CW/big.bin"
    multipart "$BUCKET" stream/big.bin
}
mn_fput_fget() {
    mnc fput-fget
    stored "$BUCKET" dir/big.bin "$CW/big.bin"
    multipart "$BUCKET" dir/big.bin
}
mn_rb() { mnc rb && no_bucket_dir "$BUCKET"; }

run_minio() {
    step minio "make-bucket" mnc mb
    step minio "put/get/stat with metadata and tags" mn_put_get
    step minio "streaming upload of unknown length (multipart)" mn_put_stream
    step minio "fput_object / fget_object" mn_fput_fget
    step minio "ranged reads" mnc ranges
    step minio "list (V2, delimiter, V1, start_after)" mnc list
    step minio "copy and compose (UploadPartCopy)" mnc copy-compose
    step minio "object tags" mnc tags
    step minio "presigned GET, PUT and POST policy" mnc presigned
    step minio "remove_objects" mnc remove
    step minio "remove bucket" mn_rb
}

# ---- s3fs-fuse: a POSIX mount of one bucket ----

S3FS_MNT=""
s3fs_mount() {
    S3FS_MNT=$CW/mnt
    mkdir -p "$S3FS_MNT"
    printf '%s:%s\n' "$NASGATE_ROOT_USER" "$NASGATE_ROOT_PASSWORD" >"$CW/passwd-s3fs"
    chmod 600 "$CW/passwd-s3fs"
    timeout -k 5 "$T" s3fs "$BUCKET" "$S3FS_MNT" -o url="$ENDPOINT" -o use_path_request_style \
        -o passwd_file="$CW/passwd-s3fs" -o sigv4 -o retries=1 -o dbglevel=warn \
        -o logfile="$CW/s3fs.log"
    local deadline=$((SECONDS + 20))
    until mountpoint -q "$S3FS_MNT"; do
        [ $SECONDS -lt $deadline ] || fail "s3fs did not mount within 20 s"
        sleep 0.1
    done
}
s3fs_unmount() {
    fusermount -u "$S3FS_MNT" || fail "fusermount -u failed"
}
# The directory object s3fs made keeps its content type and its mode/uid/gid/mtime metadata.
dir_record_kept() { # bucket dir
    python3 - "$SHARE/.minio.sys/buckets/$1/$2/.minio.sys/fs.json" <<'EOF' ||
import json, sys
meta = json.load(open(sys.argv[1]))["meta"]
print(meta)
sys.exit(0 if meta.get("content-type") == "application/x-directory" and "X-Amz-Meta-Mode" in meta else 1)
EOF
        fail "the directory object $1/$2/ lost its content type or metadata"
}
s3fs_mkdir_write() {
    s3fs_mount
    mkdir "$S3FS_MNT/made"
    cp "$CW/small.bin" "$S3FS_MNT/made/small.bin"
    cp -r "$CW/tree" "$S3FS_MNT/made/tree"
    [ "$(stat -c %F "$S3FS_MNT/made")" = directory ] || fail "made/ is not a directory on the mount"
    stored "$BUCKET" made/small.bin "$CW/small.bin"
    tree_stored "$BUCKET" made/tree "$CW/tree"
    dir_record_kept "$BUCKET" made
    s3fs_unmount
}
s3fs_remount_read() {
    s3fs_mount
    [ "$(stat -c %F "$S3FS_MNT/made")" = directory ] || fail "made/ is not a directory after a remount"
    cmp "$CW/small.bin" "$S3FS_MNT/made/small.bin" || fail "made/small.bin reads back different"
    same_tree "$CW/tree" "$S3FS_MNT/made/tree"
    rm -r "$S3FS_MNT/made"
    [ ! -e "$SHARE/$BUCKET/made" ] || fail "made/ still on the share after rm -r"
    s3fs_unmount
}

run_s3fs() {
    step s3fs "make-bucket (boto3)" b3 mb
    step s3fs "mount, mkdir, write a file and a tree" s3fs_mkdir_write
    step s3fs "remount, read back, rm -r" s3fs_remount_read
    step s3fs "remove bucket (boto3)" b3_rb
}

# ---------------------------------------------------------------------------------------------

echo "client-matrix: nasgate at $ENDPOINT; $(python3 -m awscli --version 2>&1 | cut -d' ' -f1,4); \
boto3/$(python3 -c 'import boto3; print(boto3.__version__)'); \
minio/$(python3 -c 'import minio; print(minio.__version__)'); \
s3cmd/$(s3cmd --version | cut -d' ' -f3); rclone/$(rclone version | head -n 1 | cut -d' ' -f2); \
s3fs/$(s3fs --version | head -n 1 | cut -d' ' -f7)"

for client in $CLIENTS; do
    case $client in
    awscli | boto3 | minio | s3cmd | rclone | s3fs) ;;
    *) die "unknown client $client (awscli, boto3, minio, s3cmd, rclone, s3fs)" ;;
    esac
    if ! server_alive; then
        FAILED=$((FAILED + 1))
        FAILURES+=("$client: not run, nasgate serve died")
        echo "FAIL $client: not run, nasgate serve is no longer running"
        continue
    fi
    BUCKET=mx-$client
    setup_work "$client"
    CLIENT_FAILED=""
    "run_$client"
    [ -z "$CLIENT_FAILED" ] || echo "     $client: stopped after the failed step \"$CLIENT_FAILED\""
done

# The server's side: still running, nothing logged as an error, no 5xx answer other than
# 501 NotImplemented (an honest answer to an optional request a client tolerated; listed).
server_log_clean() {
    server_alive || fail "nasgate serve is no longer running"
    ! grep -nE ' ERROR |panicked|status=5(0[02-9]|[1-9][0-9])' "$LOG" || fail "nasgate logged errors"
}
CLIENT_FAILED=""
step nasgate "log has no ERROR, panic or 5xx" server_log_clean
grep -E 'status=501' "$LOG" | sed -E 's/.* bucket="([^"]*)" key="([^"]*)".*/\1\/\2/' | sort | uniq -c |
    awk '{ print "client-matrix: note: nasgate answered 501 NotImplemented " $1 "x on /" $2 }' || true

[ "$FAILED" -eq 0 ] || printf 'client-matrix: failed: %s\n' "${FAILURES[@]}"
echo "client-matrix: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] || exit 1
