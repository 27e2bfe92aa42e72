"""Fixtures for the web console's browser tests: real `nasgate serve` processes on temp shares,
nginx as a round-robin proxy, and Debian's Chromium driven by Playwright.

Every page a test opens on the console collects console messages, page errors and CSP
violations; the test fails at teardown if the page logged any it did not expect.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from playwright.sync_api import expect, sync_playwright

# A loaded 2-core CI machine: assertions wait up to 20 s (they pass as soon as they hold).
expect.set_options(timeout=20_000)

REPO = Path(__file__).resolve().parents[2]
ACCESS_KEY = "nasgate"
SECRET_KEY = "nasgate-dev-secret"
SCREENSHOTS = os.environ.get("NASGATE_SCREENSHOTS") == "1"
SCREENSHOT_DIR = REPO / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def nasgate_bin():
    path = Path(os.environ.get("NASGATE_BIN", REPO / "target" / "debug" / "nasgate"))
    if not path.exists():
        pytest.fail(f"{path} missing: run `cargo build` first (scripts/console-test.sh does)")
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc=None, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready after {deadline_s} s")
        time.sleep(0.05)


class Server:
    """One `nasgate serve` child on a share; stopped (and its log kept for failures) on close."""

    def __init__(self, share, extra_args=()):
        self.share = str(share)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix="nasgate-console-", suffix=".log")[1])
        env = dict(os.environ, NASGATE_ROOT_USER=ACCESS_KEY, NASGATE_ROOT_PASSWORD=SECRET_KEY)
        self.proc = subprocess.Popen(
            [nasgate_bin(), "serve", self.share, "--address", f"127.0.0.1:{self.port}", *extra_args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"),
        )
        try:
            wait_ready(f"{self.base}/health/ready", self.proc)
        except Exception:
            self.close()
            raise

    def s3_requests(self):
        """S3 requests this instance answered, from its Prometheus metrics."""
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=5) as r:
            text = r.read().decode()
        total = 0
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r"^nasgate_s3_requests(?:_total)?\{[^}]*\}\s+([0-9.e+]+)$", line)
            if m:
                total += float(m.group(1))
        return total

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_path.unlink(missing_ok=True)


class Nginx:
    """nginx from the shipped template scripts/lb/nginx.conf, round robin over upstreams."""

    def __init__(self, upstreams, template=None):
        self.dir = tempfile.mkdtemp(prefix="nasgate-console-nginx-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        template = template or (REPO / "scripts" / "lb" / "nginx.conf").read_text()
        servers = "".join(f"server {u} max_fails=0;\n" for u in upstreams)
        conf = (
            template.replace("@LISTEN@", f"127.0.0.1:{self.port}")
            .replace("@UPSTREAMS@", servers)
            .replace("@PREFIX@", self.dir)
        )
        path = Path(self.dir) / "nginx.conf"
        path.write_text(conf)
        globals_ = "daemon off; master_process off;" + (" user root root;" if os.geteuid() == 0 else "")
        self.proc = subprocess.Popen(["nginx", "-c", str(path), "-p", self.dir, "-g", globals_])
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("nginx did not start")
                time.sleep(0.05)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def s3_client(base):
    return boto3.client(
        "s3",
        endpoint_url=base,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


@pytest.fixture(scope="module")
def share():
    d = tempfile.mkdtemp(prefix="nasgate-console-share-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def server(share):
    s = Server(share)
    yield s
    s.close()


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server.base)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        yield b
        b.close()


# Chromium reports a fetch answered with an error status as "Failed to load resource: the server
# responded with a status of N"; these are expected where the console asks on purpose: whoami
# before login (401: no session yet) and a bucket's policy (404: the bucket has none).
ALWAYS_EXPECTED = [(401, "/_nasgate/api/whoami"), (404, "?policy=")]

CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


class Console:
    """A browser context and page on the console, recording what the page logs."""

    def __init__(self, browser, base, viewport=DESKTOP, **context_args):
        self.base = base
        self.context = browser.new_context(viewport=viewport, accept_downloads=True, **context_args)
        self.context.set_default_timeout(30_000)
        self.context.add_init_script(CSP_PROBE)
        self.expected = list(ALWAYS_EXPECTED)
        self.messages = []
        self.page = self.watch(self.context.new_page())

    def watch(self, page):
        page.on("console", lambda m: self.messages.append((m.type, m.text, m.location.get("url", ""))))
        page.on("pageerror", lambda e: self.messages.append(("pageerror", str(e), "")))
        # A beforeunload prompt (uploads running) must not block a test's reload.
        page.on("dialog", lambda d: d.accept())
        return page

    def expect_status(self, status, url_part):
        """Allows one kind of "Failed to load resource" (an error status the test provokes)."""
        self.expected.append((status, url_part))

    def problems(self, page=None):
        bad = []
        for kind, text, url in self.messages:
            if kind not in ("error", "pageerror", "warning"):
                continue
            m = re.match(r"Failed to load resource: the server responded with a status of (\d+)", text)
            if m and any(int(m.group(1)) == s and part in url for s, part in self.expected):
                continue
            if kind == "warning" and "Content Security Policy" not in text:
                continue
            bad.append(f"{kind}: {text} ({url})")
        try:
            for v in (page or self.page).evaluate("window.__cspViolations || []"):
                bad.append(f"CSP violation: {v}")
        except Exception:
            pass
        return bad

    def goto(self, hash_=""):
        self.page.goto(f"{self.base}/_nasgate/{hash_}")

    def login(self, access=ACCESS_KEY, secret=SECRET_KEY):
        page = self.page
        page.goto(f"{self.base}/_nasgate/")
        page.fill("#access-key", access)
        page.fill("#secret-key", secret)
        page.click("#login-submit")
        page.wait_for_selector("#logout")

    def open(self, bucket, prefix=""):
        self.page.goto(f"{self.base}/_nasgate/#/b/{bucket}/{prefix}")
        self.page.wait_for_selector("#object-table, #empty-state")

    def shot(self, name, page=None, full_page=False):
        if SCREENSHOTS:
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            (page or self.page).screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=full_page)

    def close(self):
        self.context.close()


@pytest.fixture
def console(browser, server):
    c = Console(browser, server.base)
    yield c
    problems = c.problems()
    c.close()
    assert not problems, "the console logged errors:\n" + "\n".join(problems)


@pytest.fixture
def make_console(browser):
    """Further consoles (other viewports, other servers), each checked for errors at teardown."""
    made = []

    def make(base, **kw):
        c = Console(browser, base, **kw)
        made.append(c)
        return c

    yield make
    failures = []
    for c in made:
        failures += c.problems()
        c.close()
    assert not failures, "the console logged errors:\n" + "\n".join(failures)
