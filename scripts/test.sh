#!/usr/bin/env bash
# Runs every nasgate test: installs what the tests need (Debian packages), checks formatting
# and lints, then runs the whole workspace's tests. Safe to run again and again.
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

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
