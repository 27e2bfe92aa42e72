#!/usr/bin/env bash
# Installs nasgate as a systemd service on this host: the binary, the unit (with this host's
# share and mount paths) and, the first time only, the environment file. Safe to run again,
# e.g. to upgrade the binary: an existing /etc/nasgate/nasgate.env is never overwritten.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/install.sh --share DIR [--mount DIR] [--binary PATH] [--prefix DIR] [--destdir DIR]

Installs nasgate as a systemd service:
  PREFIX/bin/nasgate                   the binary (PREFIX defaults to /usr/local)
  /etc/systemd/system/nasgate.service  the unit, RequiresMountsFor= set to the share and the
                                       mount point's parent
  /etc/nasgate/nasgate.env             settings and credentials, mode 0600; installed only
                                       if it does not exist yet

Options:
  --share DIR     the mounted NAS directory to serve (required)
  --mount DIR     also mount the share with FUSE at DIR (created if missing)
  --binary PATH   install this nasgate binary; default: cargo build --release here and
                  install target/release/nasgate
  --prefix DIR    install the binary under DIR/bin (default /usr/local); ExecStart follows
  --destdir DIR   staging root: install everything under DIR instead of /, without root and
                  without touching systemd (for packaging and tests)
  -h, --help      this help

Needs root unless --destdir is given. Runs `systemctl daemon-reload` when systemd is running.
EOF
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

share=""
mount=""
binary=""
prefix="/usr/local"
destdir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --share) [ $# -ge 2 ] || die "--share needs a directory"; share="$2"; shift 2 ;;
        --share=*) share="${1#*=}"; shift ;;
        --mount) [ $# -ge 2 ] || die "--mount needs a directory"; mount="$2"; shift 2 ;;
        --mount=*) mount="${1#*=}"; shift ;;
        --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary="$2"; shift 2 ;;
        --binary=*) binary="${1#*=}"; shift ;;
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; destdir="$2"; shift 2 ;;
        --destdir=*) destdir="${1#*=}"; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

# Paths end up in a unit file (where spaces and '%' are special) and in sed replacements:
# accept absolute paths of plain characters only, without a trailing slash.
clean_path() {
    local what="$1" p="$2"
    [ -n "$p" ] || die "$what is empty"
    case "$p" in /*) ;; *) die "$what must be an absolute path: $p" ;; esac
    [[ "$p" =~ ^[A-Za-z0-9._/@+:-]+$ ]] || die "$what may only contain letters, digits and ._/@+:- : $p"
    while [ "${#p}" -gt 1 ] && [ "${p%/}" != "$p" ]; do p="${p%/}"; done
    case "/$p/" in */../* | */./*) die "$what must not contain . or .. components: $p" ;; esac
    printf '%s\n' "$p"
}

[ -n "$share" ] || { usage >&2; die "--share is required"; }
share="$(clean_path --share "$share")"
[ "$share" != "/" ] || die "--share must not be /"
prefix="$(clean_path --prefix "$prefix")"
if [ -n "$mount" ]; then
    mount="$(clean_path --mount "$mount")"
    [ "$mount" != "/" ] || die "--mount must not be /"
    case "$mount/" in "$share"/*) die "--mount $mount must not be inside the share $share" ;; esac
    case "$share/" in "$mount"/*) die "the share $share must not be inside --mount $mount" ;; esac
fi
if [ -n "$destdir" ]; then
    destdir="$(clean_path --destdir "$destdir")"
    [ "$destdir" != "/" ] || destdir=""
fi
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
    die "installing into / needs root (run with sudo, or stage with --destdir DIR)"
fi

# The binary: given, or built from this checkout.
if [ -z "$binary" ]; then
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found; build first (cargo build --release) and pass --binary target/release/nasgate"
    echo "install.sh: building nasgate (cargo build --release) in $repo"
    (cd "$repo" && cargo build --release --bin nasgate)
    binary="$repo/target/release/nasgate"
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then die "not an executable file: $binary"; fi

bin_path="$prefix/bin/nasgate"
unit_path="/etc/systemd/system/nasgate.service"
env_path="/etc/nasgate/nasgate.env"

# Copy to a temp file in the same directory, then rename: a running nasgate keeps its old
# binary, and a reader never sees a half-copied file.
install -d -m 0755 "$destdir$prefix/bin"
tmp="$(mktemp "$destdir$prefix/bin/.nasgate.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
install -m 0755 "$binary" "$tmp"
mv -f "$tmp" "$destdir$bin_path"
trap - EXIT
echo "install.sh: installed $destdir$bin_path"

# The unit, with this host's paths.
if [ -n "$mount" ]; then
    requires="$share $(dirname "$mount")"
else
    requires="$share"
fi
install -d -m 0755 "$destdir/etc/systemd/system"
sed -e "s|^RequiresMountsFor=.*|RequiresMountsFor=$requires|" \
    -e "s|^ExecStart=/usr/local/bin/nasgate |ExecStart=$bin_path |" \
    "$here/systemd/nasgate.service" >"$destdir$unit_path.tmp"
chmod 0644 "$destdir$unit_path.tmp"
mv -f "$destdir$unit_path.tmp" "$destdir$unit_path"
echo "install.sh: installed $destdir$unit_path (RequiresMountsFor=$requires)"

# The environment file: the operator's from the second run on, so never overwritten.
install -d -m 0755 "$destdir/etc/nasgate"
env_new=0
if [ -e "$destdir$env_path" ]; then
    echo "install.sh: kept the existing $destdir$env_path"
    configured="$(sed -n 's/^NASGATE_SHARE=//p' "$destdir$env_path" | tail -n 1)"
    if [ "$configured" != "$share" ]; then
        echo "install.sh: warning: $env_path has NASGATE_SHARE=${configured:-(unset)}, the unit now requires $share" >&2
    fi
    configured="$(sed -n 's/^NASGATE_MOUNT=//p' "$destdir$env_path" | tail -n 1)"
    if [ "$configured" != "$mount" ]; then
        echo "install.sh: warning: $env_path has NASGATE_MOUNT=${configured:-(unset)}, this install used --mount ${mount:-(none)}" >&2
    fi
    mode="$(stat -c %a "$destdir$env_path")"
    if [ "$mode" != "600" ] && [ "$mode" != "400" ]; then
        echo "install.sh: warning: $env_path has mode $mode; it holds credentials: chmod 600 $env_path" >&2
    fi
else
    env_new=1
    mount_line="#NASGATE_MOUNT=/srv/nasgate"
    [ -z "$mount" ] || mount_line="NASGATE_MOUNT=$mount"
    (
        umask 077
        sed -e "s|^NASGATE_SHARE=.*|NASGATE_SHARE=$share|" \
            -e "s|^#NASGATE_MOUNT=/srv/nasgate\$|$mount_line|" \
            "$here/systemd/nasgate.env" >"$destdir$env_path.tmp"
    )
    chmod 0600 "$destdir$env_path.tmp"
    mv -f "$destdir$env_path.tmp" "$destdir$env_path"
    echo "install.sh: installed $destdir$env_path (mode 0600)"
fi

if [ -n "$mount" ] && [ ! -d "$destdir$mount" ]; then
    install -d -m 0755 "$destdir$mount"
    echo "install.sh: created the mount point $destdir$mount"
fi

# systemd: only on the live system, and only when systemd runs it (not in most containers).
active=0
if [ -n "$destdir" ]; then
    echo "install.sh: staged under $destdir; systemd not touched"
elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    echo "install.sh: systemctl daemon-reload done"
    if systemctl is-active --quiet nasgate; then active=1; fi
else
    echo "install.sh: systemd is not running here; skipped systemctl daemon-reload"
fi

# Checks that only warn: the NAS may not be mounted yet at install time.
if [ -z "$destdir" ]; then
    [ -d "$share" ] || echo "install.sh: warning: $share does not exist yet (is the NAS mounted?)" >&2
    if [ -n "$mount" ] && ! command -v fusermount3 >/dev/null 2>&1; then
        echo "install.sh: warning: fusermount3 not found; --mount needs the fuse3 package" >&2
    fi
fi

echo
echo "Next:"
if [ "$env_new" = 1 ]; then
    echo "  1. Edit $env_path: set NASGATE_ROOT_USER and NASGATE_ROOT_PASSWORD (the same"
    echo "     pair on every host serving $share) and NASGATE_ADDRESS (e.g. 0.0.0.0:9000"
    echo "     behind a load balancer; the default 127.0.0.1:9000 is this host only)."
else
    echo "  1. Check $env_path (credentials, NASGATE_ADDRESS, NASGATE_SHARE)."
fi
echo "  2. Check the share on this host:  $bin_path check $share"
if [ "$active" = 1 ]; then
    echo "  3. nasgate is running the old binary: systemctl restart nasgate"
else
    echo "  3. Start now and at boot:         systemctl enable --now nasgate"
fi
echo "  4. Verify:                        systemctl status nasgate; curl http://ADDRESS/health/ready"
