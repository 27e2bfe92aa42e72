"""The web console in a real browser (Debian's Chromium, headless, through Playwright) against
real `nasgate serve` processes. Run by scripts/console-test.sh (after `cargo build`).

Each test uses its own bucket on a module-wide server; the fixtures fail a test whose page logs
a console error, a page error or a CSP violation it did not provoke on purpose.
"""

import base64
import hashlib
import os
import re
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from conftest import ACCESS_KEY, PHONE, SECRET_KEY, Nginx, Server, nasgate_bin, s3_client

pytestmark = pytest.mark.timeout(120)

MiB = 1024 * 1024


def png(width=320, height=200):
    """A real PNG (a colour gradient), made here so the test ships no binary file."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes((x * 255 // width, y * 255 // height, 200 - x * 120 // width))
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


# A one-page PDF saying "Hello PDF".
PDF = b"""%PDF-1.4
1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 200]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj
4 0 obj<</Length 44>>stream
BT /F1 24 Tf 40 100 Td (Hello PDF) Tj ET
endstream endobj
5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj
trailer<</Root 1 0 R>>
%%EOF
"""


def wav(seconds=0.5, rate=8000):
    """A mono 8-bit PCM WAV (a 440 Hz square wave)."""
    n = int(seconds * rate)
    pcm = bytes(200 if (i * 440 * 2 // rate) % 2 else 56 for i in range(n))
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    return b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", n) + pcm


def body(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(s3, bucket, prefix=""):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def wait_uploads_done(page, count, timeout=90_000):
    """Waits until the upload panel says `count` files are uploaded and none is running."""
    expect(page.locator("#upload-summary")).to_have_text(re.compile(rf"^{count} uploaded"), timeout=timeout)


def poll(page, js, timeout_s=20):
    """Waits until the function js returns true in the page. (Not wait_for_function: its
    polling evaluates strings with eval, which the console's CSP rightly refuses.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(js):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {js}"
        page.wait_for_timeout(50)


def part_number(url):
    q = parse_qs(urlparse(url).query)
    return int(q["partNumber"][0]) if "partNumber" in q else None


# Buckets of the tests whose screens are in docs/screenshots read like a user's.
BUCKET_NAMES = {
    "test_browse_folders_deep_links_search_and_paging": "projects",
    "test_details_and_preview_of_image_and_text": "media",
    "test_resume_after_reload_sends_only_missing_parts": "backups",
    "test_share_link_works_in_a_fresh_context": "finance",
}


@pytest.fixture
def bucket(s3, request):
    name = BUCKET_NAMES.get(request.node.name) or re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    s3.create_bucket(Bucket=name)
    return name


# ---- login ----


def test_login_logout_and_wrong_secret(console, server, make_console):
    page = console.page
    # A browser opening / is sent to the console.
    resp = page.goto(f"{server.base}/")
    assert resp.ok
    assert page.url == f"{server.base}/_nasgate/"
    expect(page.locator("#access-key")).to_be_visible()
    console.shot("login")

    console.expect_status(401, "/_nasgate/api/login")
    page.fill("#access-key", ACCESS_KEY)
    page.fill("#secret-key", "not-the-secret")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("Wrong access key or secret key.")
    assert not [c for c in console.context.cookies() if c["name"] == "nasgate_session"]

    page.fill("#secret-key", SECRET_KEY)
    page.press("#secret-key", "Enter")
    expect(page.locator("#who-name")).to_have_text(ACCESS_KEY)
    expect(page.get_by_role("heading", name="Buckets", exact=True)).to_be_visible()
    cookie = [c for c in console.context.cookies() if c["name"] == "nasgate_session"][0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # The page's script cannot read the session, and no secret is kept in storage.
    assert "nasgate_session" not in page.evaluate("document.cookie")
    storage = page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert SECRET_KEY not in storage

    # The session survives a reload (a fresh whoami), then logout ends it.
    page.reload()
    expect(page.locator("#who-name")).to_have_text(ACCESS_KEY)
    page.click("#logout")
    expect(page.locator("#access-key")).to_be_visible()
    assert not [c for c in console.context.cookies() if c["name"] == "nasgate_session"]
    page.reload()
    expect(page.locator("#access-key")).to_be_visible()

    # The login screen on a phone.
    phone = make_console(server.base, viewport=PHONE)
    phone.goto()
    expect(phone.page.locator("#access-key")).to_be_visible()
    phone.shot("login-phone")


def test_login_attempts_are_rate_limited(make_console, tmp_path):
    # Its own instance: the limit is per client address, and every test browses from 127.0.0.1.
    srv = Server(tmp_path)
    try:
        c = make_console(srv.base)
        c.expect_status(401, "/_nasgate/api/login")
        c.expect_status(429, "/_nasgate/api/login")
        page = c.page
        page.goto(f"{srv.base}/_nasgate/")
        page.fill("#access-key", ACCESS_KEY)
        for _ in range(5):
            page.fill("#secret-key", "wrong")
            page.click("#login-submit")
            expect(page.locator("#login-error")).to_have_text("Wrong access key or secret key.")
            page.evaluate("document.querySelector('#login-error').textContent = ''")
        page.fill("#secret-key", "wrong")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_have_text(re.compile(r"Too many failed attempts\. Try again in \d+ s\."))
    finally:
        srv.close()


def test_keyboard_only_sign_in_and_create_bucket(console, s3):
    page = console.page
    page.goto(f"{console.base}/_nasgate/")
    # The access key field has the focus; Tab and Enter do the rest.
    expect(page.locator("#access-key")).to_be_focused()
    page.keyboard.type(ACCESS_KEY)
    page.keyboard.press("Tab")
    page.keyboard.type(SECRET_KEY)
    page.keyboard.press("Enter")
    expect(page.locator("#create-bucket")).to_be_visible()
    for _ in range(20):
        if page.evaluate("document.activeElement.id") == "create-bucket":
            break
        page.keyboard.press("Tab")
    expect(page.locator("#create-bucket")).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus is not visible"
    page.keyboard.press("Enter")
    expect(page.locator("#prompt-input")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("dialog")).to_have_count(0)
    page.keyboard.press("Enter")
    page.keyboard.type("typed-by-keys")
    page.keyboard.press("Enter")
    expect(page.locator("#empty-state")).to_be_visible()
    assert "typed-by-keys" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


# ---- buckets ----


def test_create_bucket_anonymous_read_and_delete(console, server, s3):
    page = console.page
    console.login()
    page.click("#create-bucket")
    page.fill("#prompt-input", "Bad_Name")
    page.keyboard.press("Enter")
    expect(page.locator(".dialog .field-error")).to_contain_text("lowercase")
    page.fill("#prompt-input", "photos-2026")
    page.keyboard.press("Enter")
    # Creating opens the new, empty bucket.
    expect(page.locator("#empty-state")).to_contain_text("This folder is empty")
    assert os.path.isdir(os.path.join(server.share, "photos-2026"))
    s3.put_object(Bucket="photos-2026", Key="public.txt", Body=b"hello anyone")

    page.goto(f"{server.base}/_nasgate/#/buckets")
    row = page.locator('tr[data-bucket="photos-2026"]')
    expect(row).to_contain_text("12 B · 1 object")
    toggle = row.get_by_role("switch")
    expect(toggle).to_have_attribute("aria-checked", "false")
    anonymous = f"{server.base}/photos-2026/public.txt"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(anonymous, timeout=5)

    toggle.click()
    page.get_by_role("button", name="Allow").click()
    expect(toggle).to_have_attribute("aria-checked", "true")
    with urllib.request.urlopen(anonymous, timeout=5) as r:
        assert r.read() == b"hello anyone"
    expect(page.locator("#bucket-table")).not_to_contain_text("…")
    console.shot("buckets")

    toggle.click()
    expect(toggle).to_have_attribute("aria-checked", "false")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(anonymous, timeout=5)

    # A bucket with objects is refused, with a clear banner; an empty one goes.
    console.expect_status(409, "/photos-2026?")
    row.get_by_role("button", name="Delete bucket photos-2026").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("#banner")).to_contain_text("not empty")
    assert os.path.isdir(os.path.join(server.share, "photos-2026"))
    s3.delete_object(Bucket="photos-2026", Key="public.txt")
    row.get_by_role("button", name="Delete bucket photos-2026").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator('tr[data-bucket="photos-2026"]')).to_have_count(0)
    assert not os.path.exists(os.path.join(server.share, "photos-2026"))


# ---- uploads ----


def test_upload_folder_and_multipart_with_a_failing_part(console, s3, bucket, tmp_path):
    page = console.page
    console.login()
    console.open(bucket)

    tree = tmp_path / "album"
    (tree / "sub" / "deep").mkdir(parents=True)
    files = {
        "album/a.txt": b"first file\n",
        "album/sub/b.json": b'{"b": 2}\n',
        "album/sub/deep/c.bin": os.urandom(300_000),
        "album/empty.txt": b"",
        "album/weird #1 & 50% ü.txt": b"odd name\n",
    }
    for rel, data in files.items():
        (tmp_path / rel).write_bytes(data)
    page.set_input_files("#folder-input", str(tree))
    wait_uploads_done(page, len(files))
    assert keys(s3, bucket) == sorted(files)
    for rel, data in files.items():
        assert body(s3, bucket, rel) == data
    expect(page.locator('tr.folder[data-prefix="album/"]')).to_be_visible()

    # Files dropped on the page go to the current folder.
    page.click("#upload-clear")
    page.evaluate(
        """() => {
            const dt = new DataTransfer();
            dt.items.add(new File(["dropped one\\n"], "dropped.txt", { type: "text/plain" }));
            const target = document.querySelector(".browser");
            target.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
            target.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
        }"""
    )
    wait_uploads_done(page, 1)
    assert body(s3, bucket, "dropped.txt") == b"dropped one\n"

    # 25 MiB in 8 MiB parts (4 parts); part 2 fails once and is retried; part 3 finds the
    # share busy once (503 SlowDown), which is waited out, not counted as a failure.
    big = tmp_path / "big.bin"
    data = os.urandom(25 * MiB)
    big.write_bytes(data)
    sent = []
    failed = []
    busy = []

    def handle(route):
        n = part_number(route.request.url)
        sent.append(n)
        if n == 2 and not failed:
            failed.append(n)
            route.fulfill(status=500, body="<Error><Code>InternalError</Code><Message>injected</Message></Error>")
        elif n == 3 and not busy:
            busy.append(n)
            route.fulfill(status=503, headers={"Retry-After": "1"}, body="<Error><Code>SlowDown</Code><Message>busy</Message></Error>")
        else:
            route.continue_()

    console.expect_status(500, "partNumber=2")
    console.expect_status(503, "partNumber=3")
    page.route(re.compile(r".*[?&]partNumber=\d+.*"), handle)
    page.click("#upload-clear")
    page.set_input_files("#file-input", str(big))
    wait_uploads_done(page, 1)
    assert failed == [2] and busy == [3]
    assert sorted(sent) == [1, 2, 2, 3, 3, 4]
    expect(page.locator('.upload-item[data-key="big.bin"]')).to_contain_text("1 retried")
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-4")
    assert hashlib.sha256(body(s3, bucket, "big.bin")).digest() == hashlib.sha256(data).digest()
    expect(page.locator('tr.object[data-key="big.bin"]')).to_be_visible()
    assert page.evaluate("localStorage.getItem('nasgate.uploads')") == "[]"


def test_resume_after_reload_sends_only_missing_parts(console, s3, bucket, tmp_path):
    page = console.page
    console.login()
    console.open(bucket)
    big = tmp_path / "resume.bin"
    data = os.urandom(25 * MiB)
    big.write_bytes(data)

    done_parts = []
    held = []
    holding = [True]
    page.on("response", lambda r: done_parts.append(part_number(r.url)) if r.status == 200 and part_number(r.url) else None)

    def hold_late_parts(route):
        # Parts 3 and 4 never reach the server: they are held (never continued) until the
        # reload cancels them. After the reload every part goes through.
        if holding[0] and part_number(route.request.url) in (3, 4):
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r".*[?&]partNumber=\d+.*"), hold_late_parts)
    page.set_input_files("#file-input", str(big))
    deadline = time.monotonic() + 60
    while sorted(done_parts) != [1, 2] or len(held) < 2:
        assert time.monotonic() < deadline, f"parts done {done_parts}, held {len(held)}"
        page.wait_for_timeout(100)
    expect(page.locator('.upload-item[data-key="resume.bin"]')).to_contain_text("%")
    console.shot("upload-progress")
    record = page.evaluate("JSON.parse(localStorage.getItem('nasgate.uploads'))")
    assert len(record) == 1 and record[0]["key"] == "resume.bin" and record[0]["size"] == len(data)

    holding[0] = False
    page.reload()
    expect(page.locator("#resume-notice")).to_contain_text("1 unfinished upload")
    expect(page.locator("#empty-state")).to_be_visible()
    console.shot("resume-notice")

    after = []
    list_parts = []
    page.on("request", lambda r: after.append(part_number(r.url)) if part_number(r.url) else None)
    page.on(
        "request",
        lambda r: list_parts.append(r.url) if r.method == "GET" and "uploadId=" in r.url and not part_number(r.url) else None,
    )
    page.set_input_files("#file-input", str(big))
    wait_uploads_done(page, 1)
    assert len(list_parts) >= 1, "no ListParts before resuming"
    assert sorted(after) == [3, 4], f"sent again: {after}"
    assert hashlib.sha256(body(s3, bucket, "resume.bin")).digest() == hashlib.sha256(data).digest()
    assert s3.head_object(Bucket=bucket, Key="resume.bin")["ETag"].strip('"').endswith("-4")
    assert page.evaluate("localStorage.getItem('nasgate.uploads')") == "[]"
    expect(page.locator("#resume-notice")).to_be_empty()


def test_cancel_aborts_the_multipart_upload(console, s3, bucket, tmp_path):
    page = console.page
    console.login()
    console.open(bucket)
    big = tmp_path / "cancel.bin"
    big.write_bytes(os.urandom(20 * MiB))
    held = []
    page.route(re.compile(r".*[?&]partNumber=\d+.*"), lambda route: held.append(route))
    page.set_input_files("#file-input", str(big))
    deadline = time.monotonic() + 30
    while len(held) < 3:
        assert time.monotonic() < deadline
        page.wait_for_timeout(50)
    assert len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 1
    page.locator('.upload-item[data-key="cancel.bin"]').get_by_role("button", name="Cancel").click()
    expect(page.locator('.upload-item[data-key="cancel.bin"]')).to_contain_text("Cancelled")
    deadline = time.monotonic() + 20
    while s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        assert time.monotonic() < deadline, "the upload was not aborted"
        time.sleep(0.1)
    page.unroute_all(behavior="ignoreErrors")
    assert keys(s3, bucket) == []
    assert page.evaluate("localStorage.getItem('nasgate.uploads')") == "[]"


# ---- browsing ----


def test_browse_folders_deep_links_search_and_paging(console, server, s3, bucket, make_console):
    page = console.page
    for key in ["docs/readme.txt", "docs/2024/report.csv", "docs/2024/q1/sheet.csv", "photos/cat.png", "top.txt"]:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for i in range(230):
        s3.put_object(Bucket=bucket, Key=f"many/obj-{i:03}.txt", Body=b"x" * i)
    console.login()
    page.get_by_role("link", name=bucket).click()
    expect(page.locator('tr.folder[data-prefix="docs/"]')).to_be_visible()
    expect(page.locator("tr.object")).to_have_count(1)  # top.txt

    page.locator('tr.folder[data-prefix="docs/"] a').click()
    expect(page.locator('tr.object[data-key="docs/readme.txt"]')).to_be_visible()
    page.locator('tr.folder[data-prefix="docs/2024/"] a').click()
    expect(page.locator('tr.object[data-key="docs/2024/report.csv"]')).to_be_visible()
    assert page.url.endswith(f"#/b/{bucket}/docs/2024/")
    crumbs = page.locator("#crumbs a")
    expect(crumbs).to_have_text(["Buckets", bucket, "docs", "2024"])
    crumbs.nth(2).click()
    expect(page.locator('tr.object[data-key="docs/readme.txt"]')).to_be_visible()
    page.go_back()
    expect(page.locator('tr.object[data-key="docs/2024/report.csv"]')).to_be_visible()

    # A deep link in a fresh page of the same session.
    deep = console.context.new_page()
    console.watch(deep)
    deep.goto(f"{server.base}/_nasgate/#/b/{bucket}/docs/2024/q1/")
    expect(deep.locator('tr.object[data-key="docs/2024/q1/sheet.csv"]')).to_be_visible()
    deep.close()

    # Server-side prefix search in the current folder.
    console.open(bucket)
    page.fill("#search", "ph")
    page.click("#search-submit")
    expect(page.locator("tr.folder")).to_have_count(1)
    expect(page.locator('tr.folder[data-prefix="photos/"]')).to_be_visible()
    expect(page.locator("tr.object")).to_have_count(0)
    page.fill("#search", "nothing-like-this")
    page.click("#search-submit")
    expect(page.locator("#empty-state")).to_contain_text("Nothing found")

    # Pages of 200 with a continuation token, then sorting the loaded page.
    console.open(bucket, "many/")
    expect(page.locator("tr.object")).to_have_count(200)
    expect(page.locator("#loaded-count")).to_contain_text("more in this folder")
    page.click("#load-more")
    expect(page.locator("tr.object")).to_have_count(230)
    expect(page.locator("#load-more")).to_have_count(0)
    page.get_by_role("button", name="Sort by Size").click()
    page.get_by_role("button", name="Sort by Size").click()
    expect(page.locator("tr.object").first).to_have_attribute("data-key", "many/obj-229.txt")
    console.open(bucket)
    console.shot("objects")

    phone = make_console(server.base, viewport=PHONE)
    phone.login()
    phone.open(bucket, "docs/")
    phone.shot("objects-phone")
    # On a phone the details panel is under the list, scrolled to.
    phone.page.locator('tr.object[data-key="docs/readme.txt"] button').click()
    expect(phone.page.locator("#nas-path")).to_be_in_viewport()
    phone.page.goto(f"{server.base}/_nasgate/#/buckets")
    expect(phone.page.locator(f'tr[data-bucket="{bucket}"]')).to_be_visible()
    expect(phone.page.locator("#bucket-table")).not_to_contain_text("…", timeout=20_000)
    phone.shot("buckets-phone")


# ---- details and preview ----


def test_details_and_preview_of_image_and_text(console, server, s3, bucket):
    page = console.page
    image = png()
    s3.put_object(Bucket=bucket, Key="photos/sunset.png", Body=image, ContentType="image/png")
    s3.put_object(
        Bucket=bucket,
        Key="photos/notes.txt",
        Body=b"line one\nline two <b>not bold</b>\n",
        ContentType="text/plain",
        Metadata={"owner": "ops-team"},
        Tagging="project=alpha&stage=beta",
    )
    big_text = ("0123456789abcdef" * 4096 * 2).encode()  # 128 KiB
    s3.put_object(Bucket=bucket, Key="photos/big.log", Body=big_text)
    s3.put_object(Bucket=bucket, Key="photos/scan.pdf", Body=PDF, ContentType="application/pdf")
    s3.put_object(Bucket=bucket, Key="photos/tone.wav", Body=wav())
    console.login()
    console.open(bucket, "photos/")

    page.locator('tr.object[data-key="photos/notes.txt"] button').click()
    meta = page.locator("#details-meta")
    expect(meta).to_contain_text("text/plain")
    expect(meta).to_contain_text("owner = ops-team")
    expect(page.locator("#tags")).to_contain_text("project=alpha")
    expect(page.locator("#tags")).to_contain_text("stage=beta")
    console.shot("details")
    expect(page.locator("#nas-path")).to_have_text(f"{server.share}/{bucket}/photos/notes.txt")
    etag = s3.head_object(Bucket=bucket, Key="photos/notes.txt")["ETag"].strip('"')
    expect(meta).to_contain_text(etag)
    page.click("#action-preview")
    expect(page.locator("#text-preview")).to_have_text("line one\nline two <b>not bold</b>\n")
    page.keyboard.press("Escape")
    expect(page.locator("dialog")).to_have_count(0)

    page.locator('tr.object[data-key="photos/big.log"] button').click()
    page.click("#action-preview")
    expect(page.locator("#text-preview")).to_be_visible()
    assert len(page.locator("#text-preview").text_content()) == 64 * 1024
    expect(page.locator("#preview")).to_contain_text("first 64 KiB")
    page.keyboard.press("Escape")

    # A PDF shows in the browser's viewer from a blob typed application/pdf (Chromium's viewer
    # refuses sandboxed frames, and S3 answers are sandboxed).
    page.locator('tr.object[data-key="photos/scan.pdf"] button').click()
    expect(meta).to_contain_text("application/pdf")
    page.click("#action-preview")
    expect(page.locator("#pdf-preview")).to_have_attribute("src", re.compile(r"^blob:"))
    page.keyboard.press("Escape")

    # Audio plays from a presigned URL (typed by its extension even as binary/octet-stream).
    page.locator('tr.object[data-key="photos/tone.wav"] button').click()
    page.click("#action-preview")
    poll(page, "() => { const a = document.querySelector('#preview audio'); return !!a && a.readyState >= 1 && Math.abs(a.duration - 0.5) < 0.01; }")
    page.keyboard.press("Escape")

    page.locator('tr.object[data-key="photos/sunset.png"] button').click()
    expect(meta).to_contain_text("image/png")
    page.click("#action-preview")
    img = page.locator("#image-preview")
    expect(img).to_be_visible()
    poll(page, "() => document.querySelector('#image-preview').complete && document.querySelector('#image-preview').naturalWidth === 320")
    console.shot("preview")
    page.keyboard.press("Escape")


def test_uploaded_html_and_svg_run_no_script(console, server, s3, bucket, tmp_path):
    page = console.page
    payload = "<script>document.title='pwned';try{parent.document.title='pwned'}catch(e){};window.top.__pwned=1;fetch('/_nasgate/api/whoami').then(r=>r.text()).then(t=>{document.title='pwned '+t})</script>"
    (tmp_path / "evil.html").write_text(f"<!doctype html><html><body><h1>hi</h1>{payload}</body></html>")
    (tmp_path / "evil.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg" onload="document.title=\'pwned\'">{payload}<circle r="5"/></svg>')
    console.login()
    console.open(bucket)
    page.set_input_files("#file-input", [str(tmp_path / "evil.html"), str(tmp_path / "evil.svg")])
    wait_uploads_done(page, 2)
    title = page.title()
    for key in ["evil.html", "evil.svg"]:
        page.locator(f'tr.object[data-key="{key}"] button').click()
        page.click("#action-preview")
        expect(page.locator("#text-preview")).to_contain_text("<script>document.title='pwned'")
        assert page.evaluate("document.querySelectorAll('.preview iframe, .preview img, .preview object, .preview embed').length") == 0
        page.keyboard.press("Escape")
    assert page.title() == title
    assert page.evaluate("window.__pwned") is None

    # Opened at its S3 URL on the console's origin (with the session cookie in the browser),
    # the object is sandboxed: its script does not run and cannot call the console API.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "evil.html"}, ExpiresIn=300)
    raw = console.context.new_page()
    resp = raw.goto(url)
    assert resp.status == 200
    assert "sandbox" in resp.headers.get("content-security-policy", "")
    expect(raw.locator("h1")).to_have_text("hi")
    raw.wait_for_timeout(300)
    assert "pwned" not in raw.title()
    raw.close()
    svg_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "evil.svg"}, ExpiresIn=300)
    raw = console.context.new_page()
    resp = raw.goto(svg_url)
    assert resp.status == 200
    raw.wait_for_timeout(300)
    assert "pwned" not in raw.title()
    raw.close()


# ---- share, download, zip ----


def test_share_link_works_in_a_fresh_context(console, browser, s3, bucket):
    page = console.page
    data = b"shared bytes \x00\x01\x02" * 1000
    s3.put_object(Bucket=bucket, Key="reports/q3 final.pdf.txt", Body=data)
    console.context.grant_permissions(["clipboard-read", "clipboard-write"])
    console.login()
    console.open(bucket, "reports/")
    page.locator('tr.object[data-key="reports/q3 final.pdf.txt"] button').click()
    page.click("#action-share")
    page.select_option("#share-expiry", str(7 * 86400))
    expect(page.locator("#share-expires")).to_contain_text("until")
    link = page.locator("#share-url")
    expect(link).to_have_value(re.compile(r"X-Amz-Expires=604800"))
    url = link.input_value()
    assert url.startswith(console.base + "/")
    page.click("#share-copy")
    expect(page.locator("#share-copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == url
    console.shot("share")
    page.keyboard.press("Escape")

    fresh = browser.new_context()
    try:
        assert fresh.cookies() == []
        resp = fresh.request.get(url)
        assert resp.status == 200 and resp.body() == data
        tampered = url.replace("X-Amz-Expires=604800", "X-Amz-Expires=604799")
        assert fresh.request.get(tampered).status == 403
    finally:
        fresh.close()


def test_download_and_zip_compared_byte_for_byte(console, s3, bucket):
    page = console.page
    files = {
        "z/a.txt": b"alpha\n",
        "z/sub/b.bin": os.urandom(1 * MiB + 123),
        "z/sub/c.json": b'{"c": [1, 2, 3]}',
        "z/empty": b"",
    }
    for key, data in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    s3.put_object(Bucket=bucket, Key="other.txt", Body=b"not in the zip")
    console.login()
    console.open(bucket)

    # A folder selected in its parent: entry names relative to the folder.
    page.get_by_label("Select z").check()
    with page.expect_download() as dl:
        page.click("#zip-selection")
    zipped = zipfile.ZipFile(dl.value.path())
    assert zipped.testzip() is None
    assert sorted(zipped.namelist()) == sorted(k[len("z/"):] for k in files)
    for key, data in files.items():
        assert zipped.read(key[len("z/"):]) == data

    # Two objects picked in a folder.
    console.open(bucket, "z/sub/")
    page.get_by_label("Select b.bin").check()
    page.get_by_label("Select c.json").check()
    expect(page.locator("#selection-bar")).to_contain_text("2 selected")
    with page.expect_download() as dl:
        page.click("#zip-selection")
    zipped = zipfile.ZipFile(dl.value.path())
    assert sorted(zipped.namelist()) == ["b.bin", "c.json"]
    assert zipped.read("b.bin") == files["z/sub/b.bin"]

    # One object, presigned with Content-Disposition: attachment.
    page.locator('tr.object[data-key="z/sub/b.bin"] button').click()
    with page.expect_download() as dl:
        page.click("#action-download")
    assert dl.value.suggested_filename == "b.bin"
    assert Path(dl.value.path()).read_bytes() == files["z/sub/b.bin"]


# ---- delete and rename ----


def test_delete_selection_and_rename(console, s3, bucket):
    page = console.page
    for key in ["keep.txt", "one.txt", "two.txt", "dir/x.txt", "dir/y/z.txt", "dir/y/w.txt"]:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    console.login()
    console.open(bucket)

    page.get_by_label("Select one.txt").check()
    page.get_by_label("Select two.txt").check()
    page.get_by_label("Select dir").check()
    page.click("#delete-selection")
    dialog = page.locator("dialog")
    expect(dialog).to_contain_text("Delete 5 objects (folders included)?")
    dialog.get_by_role("button", name="Delete 5").click()
    expect(page.locator("tr.object")).to_have_count(1)
    expect(page.locator("tr.folder")).to_have_count(0)
    assert keys(s3, bucket) == ["keep.txt"]

    page.locator('tr.object[data-key="keep.txt"] button').click()
    page.click("#action-rename")
    page.fill("#prompt-input", "archive/kept.txt")
    page.keyboard.press("Enter")
    expect(page.locator('tr.folder[data-prefix="archive/"]')).to_be_visible()
    assert keys(s3, bucket) == ["archive/kept.txt"]
    assert body(s3, bucket, "archive/kept.txt") == b"keep.txt"

    console.open(bucket, "archive/")
    page.locator('tr.object[data-key="archive/kept.txt"] button').click()
    page.click("#action-delete")
    page.locator("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#empty-state")).to_be_visible()
    assert keys(s3, bucket) == []


def test_busy_server_shows_retrying_and_recovers(console, s3, bucket):
    page = console.page
    s3.put_object(Bucket=bucket, Key="f.txt", Body=b"f")
    console.login()
    console.expect_status(503, f"/{bucket}?")
    answered = []

    def busy_once(route):
        if not answered:
            answered.append(1)
            route.fulfill(
                status=503,
                headers={"Retry-After": "1", "Content-Type": "application/xml"},
                body="<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            )
        else:
            route.continue_()

    page.route(re.compile(rf".*/{bucket}\?.*list-type=2.*"), busy_once)
    page.goto(f"{console.base}/_nasgate/#/b/{bucket}/")
    expect(page.locator("#banner")).to_contain_text("busy, retrying")
    expect(page.locator('tr.object[data-key="f.txt"]')).to_be_visible()
    expect(page.locator("#banner")).to_be_hidden()


# ---- two instances behind a load balancer ----


def test_two_instances_behind_round_robin_proxy(make_console, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    a = Server(share)
    b = Server(share)
    lb = None
    try:
        lb = Nginx([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
        s3 = s3_client(lb.base)
        before = (a.s3_requests(), b.s3_requests())
        c = make_console(lb.base)
        page = c.page
        c.login()
        page.click("#create-bucket")
        page.fill("#prompt-input", "behind-lb")
        page.keyboard.press("Enter")
        expect(page.locator("#empty-state")).to_be_visible()
        files = {f"f{i}.txt": f"file {i}\n".encode() * (i + 1) for i in range(6)}
        big = os.urandom(17 * MiB)  # 3 parts, each may land on either instance
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        (tmp_path / "big.bin").write_bytes(big)
        page.set_input_files("#file-input", [str(tmp_path / n) for n in files] + [str(tmp_path / "big.bin")])
        wait_uploads_done(page, len(files) + 1)
        expect(page.locator("tr.object")).to_have_count(len(files) + 1)
        for name, data in files.items():
            assert body(s3, "behind-lb", name) == data
        assert body(s3, "behind-lb", "big.bin") == big
        for i in range(4):
            page.locator('tr.object[data-key="f1.txt"] button').click()
            page.click("#action-preview")
            expect(page.locator("#text-preview")).to_have_text("file 1\nfile 1\n")
            page.keyboard.press("Escape")
            page.reload()
            expect(page.locator("#who-name")).to_have_text(ACCESS_KEY)
        page.get_by_label("Select all loaded").check()
        page.click("#delete-selection")
        page.locator("dialog").get_by_role("button", name=re.compile("^Delete")).click()
        expect(page.locator("#empty-state")).to_be_visible()
        assert keys(s3, "behind-lb") == []
        after = (a.s3_requests(), b.s3_requests())
        served = (after[0] - before[0], after[1] - before[1])
        assert min(served) >= 5, f"S3 requests per instance: {served}"
    finally:
        if lb:
            lb.close()
        a.close()
        b.close()


def test_upload_goes_on_when_an_instance_dies_behind_the_proxy(make_console, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    a = Server(share)
    b = Server(share)
    lb = None
    try:
        lb = Nginx([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
        s3 = s3_client(lb.base)
        s3.create_bucket(Bucket="survivor")
        c = make_console(lb.base)
        page = c.page
        c.login()
        c.open("survivor")
        data = os.urandom(25 * MiB)
        (tmp_path / "big.bin").write_bytes(data)
        done_parts = []
        held = []
        page.on("response", lambda r: done_parts.append(part_number(r.url)) if r.status == 200 and part_number(r.url) else None)
        page.route(
            re.compile(r".*[?&]partNumber=\d+.*"),
            lambda route: held.append(route) if part_number(route.request.url) in (3, 4) else route.continue_(),
        )
        page.set_input_files("#file-input", str(tmp_path / "big.bin"))
        deadline = time.monotonic() + 60
        while sorted(done_parts) != [1, 2] or len(held) < 2:
            assert time.monotonic() < deadline, f"parts done {done_parts}, held {len(held)}"
            page.wait_for_timeout(100)
        # One instance dies with the upload half done; the rest reaches the other one.
        a.proc.kill()
        a.proc.wait()
        for route in held:
            route.continue_()
        wait_uploads_done(page, 1)
        assert hashlib.sha256(body(s3, "survivor", "big.bin")).digest() == hashlib.sha256(data).digest()
        expect(page.locator('tr.object[data-key="big.bin"]')).to_be_visible()
    finally:
        if lb:
            lb.close()
        a.close()
        b.close()


def test_a_read_only_user_browses_and_is_refused_uploads(console, server, s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="report.txt", Body=b"quarterly\n")
    env = dict(os.environ, NASGATE_ROOT_USER=ACCESS_KEY, NASGATE_ROOT_PASSWORD=SECRET_KEY, NASGATE_USER_SECRET="reader-secret-123")
    subprocess.run([nasgate_bin(), "user", "add", "--policy", "readonly", server.share, "reader"], env=env, check=True, capture_output=True, timeout=30)
    page = console.page
    # Users are picked up by every instance within 2 s.
    deadline = time.monotonic() + 15
    console.expect_status(401, "/_nasgate/api/login")
    # The readonly policy allows neither bucket policies nor tags: those cells say so.
    console.expect_status(403, "?policy=")
    console.expect_status(403, "?tagging=")
    while True:
        page.goto(f"{console.base}/_nasgate/")
        page.fill("#access-key", "reader")
        page.fill("#secret-key", "reader-secret-123")
        page.click("#login-submit")
        try:
            expect(page.locator("#logout")).to_be_visible(timeout=2_000)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the new user cannot sign in"
    expect(page.locator("#who-name")).to_have_text("reader")
    expect(page.locator(".who .badge")).to_have_count(0)

    console.open(bucket)
    page.locator('tr.object[data-key="report.txt"] button').click()
    page.click("#action-preview")
    expect(page.locator("#text-preview")).to_have_text("quarterly\n")
    page.keyboard.press("Escape")

    (tmp_path / "nope.txt").write_bytes(b"should not land")
    console.expect_status(403, "/nope.txt?")
    page.set_input_files("#file-input", str(tmp_path / "nope.txt"))
    expect(page.locator('.upload-item[data-key="nope.txt"]')).to_contain_text("Failed")
    expect(page.locator('.upload-item[data-key="nope.txt"]')).to_contain_text("Access denied")
    expect(page.locator("#tags")).to_contain_text("Access denied")
    assert keys(s3, bucket) == ["report.txt"]


# A reverse proxy that publishes nasgate under /s3/ (the prefix is stripped on the way in).
SUBPATH_NGINX = """
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path @PREFIX@/client_body;
    proxy_temp_path @PREFIX@/proxy;
    fastcgi_temp_path @PREFIX@/fastcgi;
    uwsgi_temp_path @PREFIX@/uwsgi;
    scgi_temp_path @PREFIX@/scgi;
    upstream nasgate { @UPSTREAMS@ }
    server {
        listen @LISTEN@;
        client_max_body_size 0;
        proxy_request_buffering off;
        location /s3/ {
            proxy_pass http://nasgate/;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
        }
    }
}
"""


def test_console_works_behind_a_proxy_at_a_sub_path(make_console, server, s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello from a sub-path\n")
    lb = Nginx([f"127.0.0.1:{server.port}"], template=SUBPATH_NGINX)
    try:
        base = f"{lb.base}/s3"
        c = make_console(base)
        page = c.page
        page.goto(f"{base}/")
        assert page.url == f"{base}/_nasgate/"
        c.login()
        page.get_by_role("link", name=bucket).click()
        page.locator('tr.folder[data-prefix="dir/"] a').click()
        page.locator('tr.object[data-key="dir/hello.txt"] button').click()
        page.click("#action-preview")
        expect(page.locator("#text-preview")).to_have_text("hello from a sub-path\n")
        page.keyboard.press("Escape")
        (tmp_path / "up.txt").write_bytes(b"uploaded through /s3/\n")
        page.set_input_files("#file-input", str(tmp_path / "up.txt"))
        wait_uploads_done(page, 1)
        assert body(s3, bucket, "dir/up.txt") == b"uploaded through /s3/\n"
        page.locator('tr.object[data-key="dir/hello.txt"] button').click()
        page.click("#action-share")
        expect(page.locator("#share-url")).to_have_value(re.compile(r"^" + re.escape(base) + "/"))
        url = page.locator("#share-url").input_value()
        page.keyboard.press("Escape")
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read() == b"hello from a sub-path\n"
    finally:
        lb.close()


def test_deleting_more_than_1000_objects_goes_in_batches(console, s3, bucket):
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"bulk/{i:04}", Body=b"x"), range(1005)))
    s3.put_object(Bucket=bucket, Key="stays.txt", Body=b"stays")
    page = console.page
    batches = []
    page.on("request", lambda r: batches.append(r) if r.method == "POST" and "?delete=" in r.url else None)
    console.login()
    console.open(bucket)
    page.get_by_label("Select bulk").check()
    page.click("#delete-selection")
    expect(page.locator("dialog")).to_contain_text("Delete 1005 objects (folders included)?")
    page.locator("dialog").get_by_role("button", name="Delete 1005").click()
    expect(page.locator("tr.folder")).to_have_count(0)
    assert keys(s3, bucket) == ["stays.txt"]
    assert len(batches) == 2
    for request in batches:
        digest = hashlib.sha256(request.post_data_buffer).digest()
        assert request.headers["x-amz-checksum-sha256"] == base64.b64encode(digest).decode()
