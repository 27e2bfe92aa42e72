#!/usr/bin/env bash
# Checks scripts/systemd/nasgate.service as install.sh installs it: stages an install into a
# temp directory (with a stand-in binary, temp share and mount paths), then runs
# `systemd-analyze verify` on the staged unit and fails on any output, not only on a
# non-zero exit: systemd-analyze exits 0 after many warnings (unknown or misspelt settings,
# bad values). Also checks that a second install changes nothing. Needs no root and no
# running systemd (works in a container).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
analyze="${SYSTEMD_ANALYZE:-systemd-analyze}"
command -v "$analyze" >/dev/null 2>&1 || { echo "verify.sh: $analyze not found (apt install systemd)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
mkdir -p "$tmp/share" "$tmp/mnt"
printf '#!/bin/sh\nexit 0\n' >"$tmp/nasgate"
chmod 0755 "$tmp/nasgate"

install_args=(--destdir "$root" --binary "$tmp/nasgate" --share "$tmp/share" --mount "$tmp/mnt/nasgate")
"$here/../install.sh" "${install_args[@]}" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log" >&2
    echo "verify.sh: install.sh failed" >&2
    exit 1
}
unit="$root/etc/systemd/system/nasgate.service"
env="$root/etc/nasgate/nasgate.env"

fail=0
expect() {
    if ! grep -qx -- "$1" "$2"; then
        echo "verify.sh: expected the line '$1' in ${2#"$root"}" >&2
        fail=1
    fi
}
expect "RequiresMountsFor=$tmp/share $tmp/mnt" "$unit"
expect "NASGATE_SHARE=$tmp/share" "$env"
expect "NASGATE_MOUNT=$tmp/mnt/nasgate" "$env"
[ "$(stat -c %a "$env")" = 600 ] || { echo "verify.sh: $env is not mode 0600" >&2; fail=1; }

# A second run must change nothing (and keep the environment file the operator edited).
echo "NASGATE_ROOT_USER=edited" >>"$env"
before="$(cd "$root" && find . -type f -exec sha256sum {} + | sort)"
"$here/../install.sh" "${install_args[@]}" >"$tmp/install2.log" 2>&1 || {
    cat "$tmp/install2.log" >&2
    echo "verify.sh: second install.sh failed" >&2
    exit 1
}
after="$(cd "$root" && find . -type f -exec sha256sum {} + | sort)"
if [ "$before" != "$after" ]; then
    echo "verify.sh: a second install.sh changed files:" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail=1
fi

# systemd-analyze checks that ExecStart's binary exists and that EnvironmentFile is
# well-formed: point both into the staging root.
sed -i -e "s|^ExecStart=/usr/local/bin/nasgate |ExecStart=$root/usr/local/bin/nasgate |" \
    -e "s|^EnvironmentFile=/etc/|EnvironmentFile=$root/etc/|" "$unit"
grep -q "^ExecStart=$root/usr/local/bin/nasgate serve" "$unit" || {
    echo "verify.sh: ExecStart not rewritten" >&2
    exit 1
}

# --man=no: no man pages to look up. Without systemd as PID 1 (containers), verify still
# loads the unit and its dependencies from the unit search path.
set +e
out="$("$analyze" verify --man=no "$unit" 2>&1)"
rc=$?
set -e
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    echo "verify.sh: systemd-analyze verify (exit $rc):" >&2
    echo "$out" >&2
    fail=1
fi

if [ "$fail" -ne 0 ]; then
    echo "verify.sh: FAILED" >&2
    exit 1
fi
# For information: systemd's exposure score (it rates any service that can mount highly).
if score="$("$analyze" security --offline=yes "$unit" 2>/dev/null | tail -n 1)"; then
    echo "verify.sh: $score"
fi
echo "verify.sh: ok: nasgate.service verifies cleanly; install.sh is idempotent"
