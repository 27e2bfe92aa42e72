#!/usr/bin/env bash
# Runs every nasgate test: installs what the tests need (Debian packages, Python S3 clients,
# Playwright), checks formatting and lints, runs the whole workspace's tests, then the client
# matrix (real S3 clients against a real nasgate), the web console in headless Chromium
# (scripts/console-test.sh), then the Windows build and its tests under Wine
# (scripts/windows.sh). Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_needed=()
for pkg in $(grep -v '^#' scripts/apt-packages.txt); do
    dpkg -s "$pkg" >/dev/null 2>&1 || apt_needed+=("$pkg")
done
if [ ${#apt_needed[@]} -gt 0 ]; then
    echo "test.sh: installing ${apt_needed[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_needed[@]}" >/dev/null
fi

# Python S3 clients for the client matrix and Playwright/pytest for the console tests, at the
# pinned versions.
if ! python3 - scripts/requirements-test.txt 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    name, _, pinned = line.split("#")[0].strip().partition("==")
    if name and version(name) != pinned:
        sys.exit(1)
EOF
then
    echo "test.sh: installing scripts/requirements-test.txt"
    PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install -q --root-user-action=ignore \
        -r scripts/requirements-test.txt
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# A real NAS: local GlusterFS volumes (tuned and at defaults), three client mounts of each.
# tests/gluster.rs fails, rather than skips, when these variables name broken mounts.
as_root=""
[ "$(id -u)" -eq 0 ] || as_root="sudo"
trap '$as_root scripts/gluster.sh down >/dev/null 2>&1 || true' EXIT
gluster_env=$($as_root scripts/gluster.sh up 3)
echo "$gluster_env"
while read -r assignment; do export "${assignment?}"; done <<<"$gluster_env"

cargo test --workspace
# Real S3 clients (awscli, boto3, MinIO SDK, s3cmd, rclone, s3fs) against the binary cargo test just built.
NASGATE_BIN=target/debug/nasgate scripts/client-matrix.sh
# The web console in headless Chromium (Playwright) against the same binary.
NASGATE_BIN=target/debug/nasgate scripts/console-test.sh
# The Windows build, and its S3 and lock tests under Wine.
scripts/windows.sh
