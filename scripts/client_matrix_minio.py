#!/usr/bin/env python3
"""The MinIO Python SDK leg of the client matrix (scripts/client-matrix.sh).

One step per run, like the boto3 leg:

    client_matrix_minio.py STEP --endpoint URL --bucket NAME --work DIR

DIR holds the inputs the matrix made (small.bin, big.bin) and receives the downloads.
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Any failed check raises, so
the exit code is non-zero and the traceback says what differed.
"""

import argparse
import filecmp
import io
import os
import sys
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.commonconfig import ComposeSource, CopySource, Tags
from minio.datatypes import PostPolicy
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

MIB = 1024 * 1024


def client(endpoint):
    url = urlparse(endpoint)
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=10, read=120), retries=False)
    return Minio(
        url.netloc,
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        secure=url.scheme == "https",
        region="us-east-1",
        http_client=http,
    )


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def read(path, start=0, length=None):
    with open(path, "rb") as f:
        f.seek(start)
        return f.read() if length is None else f.read(length)


def get(mc, a, key, **kw):
    r = mc.get_object(a.bucket, key, **kw)
    try:
        return r.read()
    finally:
        r.close()
        r.release_conn()


def missing(mc, a, key):
    try:
        mc.stat_object(a.bucket, key)
    except S3Error as e:
        check(e.code == "NoSuchKey", f"stat {key}: {e.code}")
    else:
        raise AssertionError(f"{key} exists")


def step_mb(mc, a):
    mc.make_bucket(a.bucket)
    check(mc.bucket_exists(a.bucket), "bucket_exists is false after make_bucket")
    check(a.bucket in [b.name for b in mc.list_buckets()], "list_buckets lacks the bucket")


def step_put_get(mc, a):
    data = read(os.path.join(a.work, "small.bin"))
    tags = Tags.new_object_tags()
    tags["team"] = "storage"
    mc.put_object(a.bucket, "small.bin", io.BytesIO(data), len(data),
                  content_type="text/x-matrix", metadata={"x-amz-meta-origin": "minio-py", "Cache-Control": "no-cache"},
                  tags=tags)
    st = mc.stat_object(a.bucket, "small.bin")
    check(st.size == len(data), f"stat size {st.size}")
    check(st.content_type == "text/x-matrix", f"content type {st.content_type}")
    check(st.metadata.get("x-amz-meta-origin") == "minio-py", f"metadata {dict(st.metadata)}")
    check(st.metadata.get("Cache-Control") == "no-cache", f"cache-control {dict(st.metadata)}")
    check(get(mc, a, "small.bin") == data, "small.bin reads back different bytes")
    check(mc.get_object_tags(a.bucket, "small.bin") == {"team": "storage"}, "tags differ")


def step_put_stream(mc, a):
    """Length unknown up front: the SDK streams 5 MiB parts (multipart)."""
    path = os.path.join(a.work, "big.bin")
    with open(path, "rb") as f:
        mc.put_object(a.bucket, "stream/big.bin", f, -1, part_size=5 * MIB)
    st = mc.stat_object(a.bucket, "stream/big.bin")
    check(st.size == os.path.getsize(path), f"stream/big.bin size {st.size}")
    check("-" in st.etag, f"a streamed upload should be multipart, ETag {st.etag}")


def step_fput_fget(mc, a):
    src = os.path.join(a.work, "big.bin")
    mc.fput_object(a.bucket, "dir/big.bin", src, part_size=8 * MIB)
    dest = os.path.join(a.work, "down", "big.bin")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    mc.fget_object(a.bucket, "dir/big.bin", dest)
    check(filecmp.cmp(src, dest, shallow=False), "fget_object differs from the upload")


def step_ranges(mc, a):
    src = os.path.join(a.work, "big.bin")
    size = os.path.getsize(src)
    for offset, length in [(0, 1), (8 * MIB - 3, 7), (size - 10, 10), (12345, 3 * MIB)]:
        got = get(mc, a, "dir/big.bin", offset=offset, length=length)
        check(got == read(src, offset, length), f"range {offset}+{length} differs")
    tail = get(mc, a, "dir/big.bin", offset=size - 100)
    check(tail == read(src, size - 100), "open-ended range differs")


def step_list(mc, a):
    names = sorted(o.object_name for o in mc.list_objects(a.bucket, recursive=True))
    want = ["dir/big.bin", "small.bin", "stream/big.bin"]
    check(names == want, f"recursive listing {names}, want {want}")
    top = sorted((o.object_name, o.is_dir) for o in mc.list_objects(a.bucket))
    check(top == [("dir/", True), ("small.bin", False), ("stream/", True)], f"delimited listing {top}")
    v1 = sorted(o.object_name for o in mc.list_objects(a.bucket, prefix="dir/", use_api_v1=True))
    check(v1 == ["dir/big.bin"], f"V1 listing {v1}")
    after = [o.object_name for o in mc.list_objects(a.bucket, recursive=True, start_after="dir/big.bin")]
    check(after == ["small.bin", "stream/big.bin"], f"start_after listing {after}")


def step_copy_compose(mc, a):
    mc.copy_object(a.bucket, "copy/small.bin", CopySource(a.bucket, "small.bin"))
    check(get(mc, a, "copy/small.bin") == read(os.path.join(a.work, "small.bin")), "copy differs")
    # Compose: UploadPartCopy of a whole object and of a byte range, then a small tail.
    size = os.path.getsize(os.path.join(a.work, "big.bin"))
    sources = [
        ComposeSource(a.bucket, "dir/big.bin"),
        ComposeSource(a.bucket, "dir/big.bin", offset=MIB, length=6 * MIB),
        ComposeSource(a.bucket, "small.bin"),
    ]
    mc.compose_object(a.bucket, "composed.bin", sources)
    big = read(os.path.join(a.work, "big.bin"))
    want = big + big[MIB:7 * MIB] + read(os.path.join(a.work, "small.bin"))
    st = mc.stat_object(a.bucket, "composed.bin")
    check(st.size == len(want), f"composed size {st.size}, want {len(want)} (big is {size})")
    check(get(mc, a, "composed.bin") == want, "composed object differs")


def step_tags(mc, a):
    tags = Tags.new_object_tags()
    tags["k 1"] = "v/1"
    tags["ünï"] = "cödé"
    mc.set_object_tags(a.bucket, "copy/small.bin", tags)
    check(mc.get_object_tags(a.bucket, "copy/small.bin") == dict(tags), "tags read back differ")
    mc.delete_object_tags(a.bucket, "copy/small.bin")
    check(not mc.get_object_tags(a.bucket, "copy/small.bin"), "tags left after delete")


def step_presigned(mc, a):
    http = urllib3.PoolManager(retries=False, timeout=60)
    url = mc.presigned_put_object(a.bucket, "presigned/put.bin", expires=timedelta(minutes=5))
    r = http.request("PUT", url, body=b"put through a presigned URL")
    check(r.status == 200, f"presigned PUT answered {r.status} {r.data[:200]!r}")
    url = mc.presigned_get_object(a.bucket, "presigned/put.bin", expires=timedelta(minutes=5))
    r = http.request("GET", url)
    check(r.status == 200 and r.data == b"put through a presigned URL", f"presigned GET {r.status}")

    policy = PostPolicy(a.bucket, datetime.now(timezone.utc) + timedelta(minutes=5))
    policy.add_starts_with_condition("key", "presigned/")
    policy.add_equals_condition("Content-Type", "text/plain")
    policy.add_content_length_range_condition(1, 64 * 1024)
    form = mc.presigned_post_policy(policy)
    endpoint = mc._base_url._url  # pylint: disable=protected-access
    target = f"{endpoint.scheme}://{endpoint.netloc}/{a.bucket}"
    fields = dict(form, key="presigned/post.txt", **{"Content-Type": "text/plain"})
    fields["file"] = ("post.txt", b"posted by a browser form", "text/plain")
    r = http.request("POST", target, fields=fields)
    check(r.status == 204, f"presigned POST answered {r.status} {r.data[:300]!r}")
    check(get(mc, a, "presigned/post.txt") == b"posted by a browser form", "POSTed object differs")
    fields["key"] = "elsewhere/post.txt"
    r = http.request("POST", target, fields=fields)
    check(r.status == 403, f"POST outside the policy answered {r.status}")
    missing(mc, a, "elsewhere/post.txt")


def step_remove(mc, a):
    names = [o.object_name for o in mc.list_objects(a.bucket, recursive=True)]
    errors = list(mc.remove_objects(a.bucket, [DeleteObject(n) for n in names]))
    check(not errors, f"remove_objects errors {errors}")
    left = [o.object_name for o in mc.list_objects(a.bucket, recursive=True)]
    check(not left, f"objects left after remove_objects: {left}")


def step_rb(mc, a):
    mc.remove_bucket(a.bucket)
    check(not mc.bucket_exists(a.bucket), "bucket_exists is true after remove_bucket")


STEPS = {
    "mb": step_mb,
    "put-get": step_put_get,
    "put-stream": step_put_stream,
    "fput-fget": step_fput_fget,
    "ranges": step_ranges,
    "list": step_list,
    "copy-compose": step_copy_compose,
    "tags": step_tags,
    "presigned": step_presigned,
    "remove": step_remove,
    "rb": step_rb,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=sorted(STEPS))
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--work", required=True)
    a = p.parse_args()
    STEPS[a.step](client(a.endpoint), a)


if __name__ == "__main__":
    sys.exit(main())
