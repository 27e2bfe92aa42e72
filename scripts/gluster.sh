#!/usr/bin/env bash
# A real NAS for the test suite (issue 12): a local GlusterFS with one brick per volume and
# several native FUSE client mounts of each volume, every mount its own glusterfs client
# process, standing in for several NAS client hosts.
#
#   nasgate-tuned    the settings nasgate recommends: client caches off, strict locks, mounts
#                    with direct-io-mode=enable,attribute-timeout=0,entry-timeout=0
#   nasgate-default  Gluster's defaults, mounted with no options
#
# Usage: scripts/gluster.sh up [N]   start glusterd, create both volumes, mount N (default 3)
#                                    clients of each; prints NASGATE_GLUSTER_TUNED=m1:m2:...
#                                    and NASGATE_GLUSTER_DEFAULT=... (eval-able lines)
#        scripts/gluster.sh down     unmount, delete the volumes, stop glusterd and bricks
#        scripts/gluster.sh status   what is running and whether each mount answers
# Idempotent; needs root and the Debian packages glusterfs-server and glusterfs-client
# (scripts/apt-packages.txt; scripts/test.sh installs them). No systemd: glusterd runs as a
# plain daemon with its pid in /run/glusterd.pid.
set -euo pipefail

ROOT=${NASGATE_GLUSTER_ROOT:-/tmp/nasgate-gluster}
PIDFILE=/run/glusterd.pid
TUNED=nasgate-tuned
DEFAULT=nasgate-default
TUNED_MOUNT_OPTS=direct-io-mode=enable,attribute-timeout=0,entry-timeout=0
# Every client-side cache that can answer a read or a stat without asking the brick.
TUNED_VOLUME_OPTS=(
    performance.stat-prefetch off
    performance.quick-read off
    performance.open-behind off
    performance.write-behind off
    performance.io-cache off
    performance.read-ahead off
    performance.readdir-ahead off
    performance.parallel-readdir off
    performance.nl-cache off
    client.strict-locks on
)
# Gluster refuses bricks on localhost/127.0.0.1; the hostname (which resolves to loopback
# here) is accepted.
HOST=$(hostname)

die() { echo "gluster.sh: $*" >&2; exit 1; }
gl() { gluster --mode=script "$@"; }

glusterd_running() {
    [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

wait_for() { # seconds, description, command...
    local secs=$1 what=$2; shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || die "timed out after ${secs}s waiting for $what"
        sleep 0.2
    done
}

start_glusterd() {
    # A glusterd already answering (say one systemd started when the package was installed)
    # is used as it is.
    if ! glusterd_running && ! gl pool list >/dev/null 2>&1; then
        command -v /usr/sbin/glusterd >/dev/null || die "glusterd missing: apt-get install glusterfs-server"
        /usr/sbin/glusterd -p "$PIDFILE"
    fi
    wait_for 30 "glusterd to answer" gl pool list
}

volume_exists() { gl volume info "$1" >/dev/null 2>&1; }
volume_started() { gl volume info "$1" 2>/dev/null | grep -q '^Status: Started'; }

ensure_volume() { # name, options...
    local vol=$1; shift
    if ! volume_exists "$vol"; then
        # A brick left from an earlier volume carries its volume-id xattr: start afresh.
        rm -rf "${ROOT:?}/bricks/$vol"
        mkdir -p "$ROOT/bricks/$vol"
        gl volume create "$vol" "$HOST:$ROOT/bricks/$vol" force >/dev/null
    fi
    while [ $# -gt 0 ]; do
        gl volume set "$vol" "$1" "$2" >/dev/null
        shift 2
    done
    volume_started "$vol" || gl volume start "$vol" force >/dev/null
    wait_for 30 "brick of $vol online" brick_online "$vol"
}

brick_online() {
    # The plain table wraps long brick paths; the XML form does not.
    gl volume status "$1" --xml 2>/dev/null | grep -q '<status>1</status>'
}

mount_answers() { timeout 10 stat -f "$1" 2>/dev/null | grep -q 'Type: fuseblk\|Type: fuse'; }

ensure_mount() { # volume, dir, options
    local vol=$1 dir=$2 opts=$3
    mkdir -p "$dir" 2>/dev/null || true
    if mountpoint -q "$dir" 2>/dev/null; then
        mount_answers "$dir" && return 0
    fi
    # A dead client (killed glusterfs process) leaves ENOTCONN behind: detach it first.
    if grep -q " $dir fuse" /proc/mounts; then
        umount -l "$dir" 2>/dev/null || true
    fi
    mkdir -p "$dir"
    if [ -n "$opts" ]; then
        mount -t glusterfs -o "$opts" "$HOST:/$vol" "$dir"
    else
        mount -t glusterfs "$HOST:/$vol" "$dir"
    fi
    wait_for 30 "$dir to answer" mount_answers "$dir"
}

mounts_of() { # volume, n
    local vol=$1 n=$2 i list=""
    for i in $(seq 1 "$n"); do
        list="$list${list:+:}$ROOT/$vol/$i"
    done
    echo "$list"
}

up() {
    local n=${1:-3}
    [ "$n" -ge 1 ] 2>/dev/null || die "up: N must be a positive number"
    [ "$(id -u)" -eq 0 ] || die "needs root (glusterd and mount)"
    command -v gluster >/dev/null || die "gluster missing: apt-get install glusterfs-server glusterfs-client"
    getent hosts "$HOST" >/dev/null ||
        die "the hostname $HOST does not resolve; glusterd needs it (Debian: '127.0.1.1 $HOST' in /etc/hosts)"
    mkdir -p "$ROOT"
    start_glusterd
    ensure_volume "$TUNED" "${TUNED_VOLUME_OPTS[@]}"
    ensure_volume "$DEFAULT"
    local i
    for i in $(seq 1 "$n"); do
        ensure_mount "$TUNED" "$ROOT/$TUNED/$i" "$TUNED_MOUNT_OPTS"
        ensure_mount "$DEFAULT" "$ROOT/$DEFAULT/$i" ""
    done
    echo "NASGATE_GLUSTER_TUNED=$(mounts_of "$TUNED" "$n")"
    echo "NASGATE_GLUSTER_DEFAULT=$(mounts_of "$DEFAULT" "$n")"
}

down() {
    local dir
    # Every client mount beneath ROOT, tests' private ones included.
    for dir in $(awk -v r="$ROOT/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null || true
    done
    local vol
    for vol in "$TUNED" "$DEFAULT"; do
        if volume_exists "$vol"; then
            gl volume stop "$vol" force >/dev/null 2>&1 || true
            gl volume delete "$vol" >/dev/null 2>&1 || true
        fi
    done
    # Only the glusterd this script started (its pid file); never one systemd runs.
    if glusterd_running; then
        local pid
        pid=$(cat "$PIDFILE")
        kill "$pid" 2>/dev/null || true
        local end=$((SECONDS + 15))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
        rm -f "$PIDFILE"
    fi
    rm -rf "${ROOT:?}/bricks"
    echo "gluster.sh: down"
}

status() {
    if glusterd_running; then
        echo "glusterd: running (pid $(cat "$PIDFILE"))"
    elif gl pool list >/dev/null 2>&1; then
        echo "glusterd: running (not started by this script)"
    else
        echo "glusterd: not running"
        return 1
    fi
    local vol bad=0 dir
    for vol in "$TUNED" "$DEFAULT"; do
        if volume_started "$vol"; then echo "volume $vol: started"; else echo "volume $vol: not started"; bad=1; fi
        for dir in "$ROOT/$vol"/*; do
            [ -d "$dir" ] || continue
            if mount_answers "$dir"; then echo "  mount $dir: ok"; else echo "  mount $dir: BROKEN"; bad=1; fi
        done
    done
    return $bad
}

case "${1:-}" in
    up) up "${2:-3}" ;;
    down) down ;;
    status) status ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
