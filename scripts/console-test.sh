#!/usr/bin/env bash
# The web console's browser tests (tests/console/): Debian's Chromium, headless, driven by
# Playwright for Python against real `nasgate serve` processes (and nginx for the
# two-instance test). Needs a built binary (`cargo build`; NASGATE_BIN overrides
# target/debug/nasgate), `chromium` and `nginx` (scripts/apt-packages.txt) and the pip pins in
# scripts/requirements-test.txt; scripts/test.sh installs all of them.
# NASGATE_SCREENSHOTS=1 also writes the screenshots in docs/screenshots/.
# Extra arguments go to pytest, e.g. `scripts/console-test.sh -k zip -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
export NASGATE_BIN="${NASGATE_BIN:-$PWD/target/debug/nasgate}"
if [ ! -x "$NASGATE_BIN" ]; then
    echo "console-test.sh: $NASGATE_BIN missing; run cargo build first" >&2
    exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
    echo "console-test.sh: /usr/bin/chromium missing (apt install chromium)" >&2
    exit 1
fi
# Playwright must never download a browser of its own: it drives /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
exec python3 -m pytest tests/console -p no:cacheprovider -q "$@"
