#!/usr/bin/env bash
# S3 throughput of nasgate for 1 MiB and 64 MiB objects, as ratios against baselines measured
# in the same run on the same filesystem: PUT against `dd conv=fsync` (the disk's write path
# with the fsync nasgate does), GET against nginx serving the same file statically (the
# loopback HTTP ceiling). Not part of the test suite; run it by hand:
#   cargo build --release && scripts/bench-s3.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${NASGATE_BIN:-target/release/nasgate}
[ -x "$BIN" ] || { echo "bench-s3: build first (cargo build --release)" >&2; exit 2; }
command -v nginx >/dev/null || { echo "bench-s3: needs nginx (apt install nginx)" >&2; exit 2; }

work=$(mktemp -d)
share="$work/share"
mkdir -p "$share" "$work/nginx"
cleanup() {
    [ -n "${npid:-}" ] && kill "$npid" 2>/dev/null || true
    [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sport=$(port)
NASGATE_ROOT_USER=bench NASGATE_ROOT_PASSWORD=bench-secret-123 NASGATE_LOG=warn \
    "$BIN" serve "$share" --address "127.0.0.1:$sport" 2>"$work/nasgate.log" &
spid=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$sport/health/live" >/dev/null && break; sleep 0.05; done

nport=$(port)
user=""; [ "$(id -u)" -eq 0 ] && user="user root root;"
cat > "$work/nginx/nginx.conf" <<CONF
$user
worker_processes 1; master_process off; daemon off;
pid $work/nginx/pid; error_log $work/nginx/error.log;
events { worker_connections 64; }
http { access_log off; sendfile on;
  client_body_temp_path $work/nginx/b; proxy_temp_path $work/nginx/p; fastcgi_temp_path $work/nginx/f;
  uwsgi_temp_path $work/nginx/u; scgi_temp_path $work/nginx/s;
  server { listen 127.0.0.1:$nport; root $share; } }
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
npid=$!
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$nport/" && break; sleep 0.05; done

S3=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "bench:bench-secret-123" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -sf)
curl "${S3[@]}" -X PUT "http://127.0.0.1:$sport/bench" >/dev/null

now() { date +%s%N; }
mbps() { python3 -c "print(f'{$1 * $2 / (($3) / 1e9):.1f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

printf '%-8s %-4s %12s %14s %8s\n' size op "nasgate MB/s" "baseline MB/s" ratio
for spec in "1:40" "64:4"; do
    mib=${spec%%:*}; n=${spec##*:}
    head -c $((mib * 1048576)) /dev/urandom > "$work/obj"
    t0=$(now)
    for i in $(seq "$n"); do curl "${S3[@]}" -T "$work/obj" "http://127.0.0.1:$sport/bench/o$i" >/dev/null; done
    t1=$(now)
    for i in $(seq "$n"); do dd if="$work/obj" of="$share/raw$i" bs=1M conv=fsync status=none; done
    t2=$(now)
    for i in $(seq "$n"); do curl "${S3[@]}" "http://127.0.0.1:$sport/bench/o$i" -o /dev/null; done
    t3=$(now)
    for i in $(seq "$n"); do curl -sf "http://127.0.0.1:$nport/bench/o$i" -o /dev/null; done
    t4=$(now)
    put=$(mbps "$mib" "$n" "$t1 - $t0"); raw=$(mbps "$mib" "$n" "$t2 - $t1")
    get=$(mbps "$mib" "$n" "$t3 - $t2"); ngx=$(mbps "$mib" "$n" "$t4 - $t3")
    printf '%-8s %-4s %12s %14s %8s\n' "${mib}MiB" PUT "$put" "$raw (dd)" "$(ratio "$put" "$raw")"
    printf '%-8s %-4s %12s %14s %8s\n' "${mib}MiB" GET "$get" "$ngx (nginx)" "$(ratio "$get" "$ngx")"
    rm -f "$share"/raw*
done
