#!/usr/bin/env bash
# Builds nasgate for Windows (x86_64-pc-windows-gnu, linked by mingw-w64) and runs the
# platform-independent integration tests under Wine: the S3 SDK and protocol tests, instances
# sharing one share under contention (with instances killed), and locks across processes.
# Needs the Debian packages in scripts/apt-packages.txt (test.sh installs them).
#
# Wine 8's bcryptprimitives.dll lacks ProcessPrng, which Rust's standard library imports; a
# test-only stand-in built from tests/windows/ is put next to the test executables. It is
# never part of a release build.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
TESTS=(cli s3_sdk s3_protocol shared_mode lock_cross_process)

rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

test_args=()
for t in "${TESTS[@]}"; do test_args+=(--test "$t"); done

# The executables first (nasgate.exe is built along with the tests that spawn it).
cargo test --target "$TARGET" "${test_args[@]}" --no-run

out="target/$TARGET/debug"
x86_64-w64-mingw32-gcc -shared -O2 -o "$out/bcryptprimitives.dll" \
    tests/windows/bcryptprimitives.c tests/windows/bcryptprimitives.def -ladvapi32
cp "$out/bcryptprimitives.dll" "$out/deps/"

# A Wine prefix of our own under target/, made without a display or questions.
export WINEPREFIX="$PWD/target/wineprefix"
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    echo "windows.sh: initialising $WINEPREFIX"
    # A wineserver left from an earlier prefix at this path would answer for the new one.
    wineserver -k 2>/dev/null || true
    wineboot -i >/dev/null 2>&1 || true
    wineserver -w
fi
[ -f "$WINEPREFIX/system.reg" ] || { echo "windows.sh: wineboot did not make a prefix" >&2; exit 1; }

runner=wine64
command -v wine64 >/dev/null || runner=wine
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$runner"
# One wineserver for the whole run instead of one started (and torn down) per test binary.
wineserver -p
trap 'wineserver -k || true' EXIT
# One test thread: Wine serialises much of its work in wineserver, and the timing bounds in the
# lock tests assume the processes they start are not starved.
cargo test --no-fail-fast --target "$TARGET" "${test_args[@]}" -- --test-threads="${WINE_TEST_THREADS:-1}"
