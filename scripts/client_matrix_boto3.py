#!/usr/bin/env python3
"""The boto3 leg of the client matrix (scripts/client-matrix.sh).

One step per run, so the matrix bounds, counts and reports each step like the other clients':

    client_matrix_boto3.py STEP --endpoint URL --bucket NAME --work DIR

DIR holds the inputs the matrix made (small.bin, big.bin, tree/) and receives the downloads.
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. CLIENT_MATRIX_DEBUG=1 logs
every request and response (botocore debug) to stderr. Any failed check raises, so the exit
code is non-zero and the traceback says what differed.
"""

import argparse
import filecmp
import logging
import os
import sys

import boto3
import urllib3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.handlers import validate_ascii_metadata

MIB = 1024 * 1024
# Forces multipart (8 MiB parts) for anything of 8 MiB or more, for uploads, downloads
# (ranged GETs) and managed copies (UploadPartCopy).
MULTIPART = TransferConfig(
    multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4
)


def client(endpoint):
    if os.environ.get("CLIENT_MATRIX_DEBUG"):
        boto3.set_stream_logger("botocore", logging.DEBUG)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            # One attempt: a retry would hide a server that fails now and then.
            retries={"total_max_attempts": 1, "mode": "standard"},
        ),
    )


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def same_file(a, b):
    check(filecmp.cmp(a, b, shallow=False), f"{a} and {b} differ")


def read(path, start=0, length=None):
    with open(path, "rb") as f:
        f.seek(start)
        return f.read() if length is None else f.read(length)


def all_keys(s3, bucket, prefix=""):
    """Every key under prefix via ListObjectsV2, one key per page (exercises continuation)."""
    out = {}
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1}
    )
    for page in pages:
        for o in page.get("Contents", []):
            check(o["Key"] not in out, f"key {o['Key']} listed twice")
            out[o["Key"]] = o["Size"]
    return out


def tree_files(root):
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            yield os.path.relpath(path, root).replace(os.sep, "/"), path


def step_mb(s3, a):
    s3.create_bucket(Bucket=a.bucket)
    s3.head_bucket(Bucket=a.bucket)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    check(a.bucket in names, f"ListBuckets lacks {a.bucket}: {names}")


def step_put_small(s3, a):
    src = os.path.join(a.work, "small.bin")
    with open(src, "rb") as body:
        s3.put_object(
            Bucket=a.bucket,
            Key="small.bin",
            Body=body,
            ContentType="application/x-matrix",
            Metadata={"origin": "boto3"},
        )
    head = s3.head_object(Bucket=a.bucket, Key="small.bin")
    check(head["ContentLength"] == os.path.getsize(src), f"HeadObject size {head}")
    check(head["ContentType"] == "application/x-matrix", f"content type {head}")
    check(head["Metadata"].get("origin") == "boto3", f"metadata {head['Metadata']}")


def step_put_big(s3, a):
    src = os.path.join(a.work, "big.bin")
    s3.upload_file(src, a.bucket, "dir/big.bin", Config=MULTIPART)
    head = s3.head_object(Bucket=a.bucket, Key="dir/big.bin")
    check(head["ContentLength"] == os.path.getsize(src), f"HeadObject size {head}")
    check("-" in head["ETag"], f"ETag {head['ETag']} is not a multipart ETag")


def step_list(s3, a):
    want = {
        "small.bin": os.path.getsize(os.path.join(a.work, "small.bin")),
        "dir/big.bin": os.path.getsize(os.path.join(a.work, "big.bin")),
    }
    got = all_keys(s3, a.bucket)
    check(got == want, f"ListObjectsV2 gave {got}, want {want}")
    # Delimiter listing, V2 and V1.
    v2 = s3.list_objects_v2(Bucket=a.bucket, Delimiter="/")
    check(
        [p["Prefix"] for p in v2.get("CommonPrefixes", [])] == ["dir/"],
        f"V2 prefixes {v2.get('CommonPrefixes')}",
    )
    check([o["Key"] for o in v2.get("Contents", [])] == ["small.bin"], f"V2 {v2}")
    v1 = s3.list_objects(Bucket=a.bucket, Delimiter="/")
    check(
        [p["Prefix"] for p in v1.get("CommonPrefixes", [])] == ["dir/"],
        f"V1 prefixes {v1.get('CommonPrefixes')}",
    )
    check([o["Key"] for o in v1.get("Contents", [])] == ["small.bin"], f"V1 {v1}")
    # V1 paging with markers.
    keys = []
    for page in s3.get_paginator("list_objects").paginate(
        Bucket=a.bucket, PaginationConfig={"PageSize": 1}
    ):
        keys += [o["Key"] for o in page.get("Contents", [])]
    check(sorted(keys) == sorted(want), f"ListObjects V1 paged gave {keys}")


def step_get(s3, a):
    small = os.path.join(a.work, "small.bin")
    big = os.path.join(a.work, "big.bin")
    out = os.path.join(a.work, "boto3-dl")
    os.makedirs(out, exist_ok=True)
    body = s3.get_object(Bucket=a.bucket, Key="small.bin")["Body"].read()
    check(body == read(small), "GetObject small.bin: bytes differ")
    s3.download_file(a.bucket, "dir/big.bin", os.path.join(out, "big.bin"), Config=MULTIPART)
    same_file(big, os.path.join(out, "big.bin"))
    s3.download_file(a.bucket, "small.bin", os.path.join(out, "small.bin"))
    same_file(small, os.path.join(out, "small.bin"))
    # Ranges: inside, crossing an 8 MiB part boundary, suffix, open-ended.
    size = os.path.getsize(big)
    for rng, start, length in [
        ("bytes=1000-1999", 1000, 1000),
        (f"bytes={8 * MIB - 10}-{8 * MIB + 9}", 8 * MIB - 10, 20),
        ("bytes=-100", size - 100, 100),
        (f"bytes={size - 5}-", size - 5, 5),
    ]:
        r = s3.get_object(Bucket=a.bucket, Key="dir/big.bin", Range=rng)
        got = r["Body"].read()
        check(got == read(big, start, length), f"range {rng}: bytes differ")
        check(r["ContentLength"] == length, f"range {rng}: Content-Length {r['ContentLength']}")


def step_copy(s3, a):
    big = os.path.join(a.work, "big.bin")
    out = os.path.join(a.work, "boto3-dl")
    os.makedirs(out, exist_ok=True)
    # Managed copy of the big object: multipart with UploadPartCopy.
    s3.copy(
        {"Bucket": a.bucket, "Key": "dir/big.bin"}, a.bucket, "copy/big.bin", Config=MULTIPART
    )
    s3.download_file(a.bucket, "copy/big.bin", os.path.join(out, "copy-big.bin"))
    same_file(big, os.path.join(out, "copy-big.bin"))
    # CopyObject with new metadata, then tags.
    s3.copy_object(
        Bucket=a.bucket,
        Key="copy/small.bin",
        CopySource={"Bucket": a.bucket, "Key": "small.bin"},
        MetadataDirective="REPLACE",
        Metadata={"copied": "yes"},
    )
    head = s3.head_object(Bucket=a.bucket, Key="copy/small.bin")
    check(head["Metadata"] == {"copied": "yes"}, f"copy metadata {head['Metadata']}")
    body = s3.get_object(Bucket=a.bucket, Key="copy/small.bin")["Body"].read()
    check(body == read(os.path.join(a.work, "small.bin")), "copy/small.bin: bytes differ")
    tags = [{"Key": "matrix", "Value": "boto3"}, {"Key": "step", "Value": "copy"}]
    s3.put_object_tagging(Bucket=a.bucket, Key="copy/small.bin", Tagging={"TagSet": tags})
    got = s3.get_object_tagging(Bucket=a.bucket, Key="copy/small.bin")["TagSet"]
    check(sorted(got, key=lambda t: t["Key"]) == tags, f"tags {got}")
    s3.delete_object_tagging(Bucket=a.bucket, Key="copy/small.bin")
    got = s3.get_object_tagging(Bucket=a.bucket, Key="copy/small.bin")["TagSet"]
    check(got == [], f"tags after delete {got}")


def step_sync_up(s3, a):
    for rel, path in tree_files(os.path.join(a.work, "tree")):
        s3.upload_file(path, a.bucket, "tree/" + rel, Config=MULTIPART)
    want = {rel: os.path.getsize(p) for rel, p in tree_files(os.path.join(a.work, "tree"))}
    got = {k[len("tree/"):]: v for k, v in all_keys(s3, a.bucket, "tree/").items()}
    check(got == want, f"tree/ lists {got}, want {want}")


def step_sync_down(s3, a):
    down = os.path.join(a.work, "down")
    for key in all_keys(s3, a.bucket, "tree/"):
        dest = os.path.join(down, *key[len("tree/"):].split("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        s3.download_file(a.bucket, key, dest, Config=MULTIPART)


def step_delete(s3, a):
    s3.delete_object(Bucket=a.bucket, Key="small.bin")
    keys = sorted(all_keys(s3, a.bucket))
    check("small.bin" not in keys, "small.bin still listed after DeleteObject")
    r = s3.delete_objects(
        Bucket=a.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": False}
    )
    check(not r.get("Errors"), f"DeleteObjects errors {r.get('Errors')}")
    deleted = sorted(d["Key"] for d in r.get("Deleted", []))
    check(deleted == keys, f"DeleteObjects deleted {deleted}, want {keys}")
    left = all_keys(s3, a.bucket)
    check(left == {}, f"objects left after DeleteObjects: {left}")


def step_rb(s3, a):
    s3.delete_bucket(Bucket=a.bucket)
    try:
        s3.head_bucket(Bucket=a.bucket)
    except ClientError as e:
        code = e.response["Error"]["Code"]
        check(code in ("404", "NoSuchBucket"), f"HeadBucket after delete: {code}")
    else:
        raise AssertionError("HeadBucket succeeded after DeleteBucket")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    check(a.bucket not in names, f"ListBuckets still has {a.bucket}")


def absent(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        code = e.response["Error"]["Code"]
        check(code in ("404", "NoSuchKey"), f"HEAD {key!r}: {code}")
    else:
        raise AssertionError(f"{key!r} exists")


def error_code(body):
    text = body.decode("utf-8", "replace")
    start = text.find("<Code>")
    return text[start + 6:text.find("</Code>")] if start >= 0 else text[:200]


def step_post(s3, a):
    """Browser-form uploads: generate_presigned_post and a multipart/form-data POST."""
    http = urllib3.PoolManager(retries=False, timeout=60)

    def post(p, filename, data, extra=None, fields=None):
        form = dict(p["fields"] if fields is None else fields)
        form.update(extra or {})
        form["file"] = (filename, data, "text/plain")
        return http.request("POST", p["url"], fields=form)

    p = s3.generate_presigned_post(
        a.bucket,
        "form/${filename}",
        Fields={"Content-Type": "text/plain", "x-amz-meta-who": "form", "success_action_status": "201"},
        Conditions=[
            {"Content-Type": "text/plain"},
            {"x-amz-meta-who": "form"},
            {"success_action_status": "201"},
            ["content-length-range", 1, 1000],
        ],
        ExpiresIn=600,
    )
    r = post(p, "hello.txt", b"hello from a form")
    check(r.status == 201, f"POST answered {r.status}: {r.data[:300]!r}")
    check(b"<Key>form/hello.txt</Key>" in r.data, f"PostResponse {r.data!r}")
    got = s3.get_object(Bucket=a.bucket, Key="form/hello.txt")
    check(got["Body"].read() == b"hello from a form", "POSTed bytes differ")
    check(got["ContentType"] == "text/plain", f"content type {got['ContentType']}")
    check(got["Metadata"] == {"who": "form"}, f"metadata {got['Metadata']}")
    check(r.headers.get("ETag") == got["ETag"], "POST ETag differs from GET's")

    # Default answer (204) and a redirect.
    plain = s3.generate_presigned_post(a.bucket, "form/plain.bin", ExpiresIn=600)
    r = post(plain, "x", b"plain")
    check(r.status == 204, f"default POST answered {r.status}")
    back = "http://example.invalid/done"
    redir = s3.generate_presigned_post(
        a.bucket, "form/redirect.bin", Fields={"success_action_redirect": back},
        Conditions=[{"success_action_redirect": back}], ExpiresIn=600,
    )
    r = http.request("POST", redir["url"], fields={**redir["fields"], "file": ("r", b"r")}, redirect=False)
    where = r.headers.get("Location", "")
    check(r.status == 303 and where.startswith(back + "?bucket=") and "key=form%2Fredirect.bin" in where,
          f"redirect POST answered {r.status} {where}")

    # Refused forms leave nothing behind.
    refused = [
        ("too large", post(p, "big.txt", b"x" * 1001), "EntityTooLarge", "form/big.txt"),
    ]
    small = s3.generate_presigned_post(
        a.bucket, "form/small.txt", Conditions=[["content-length-range", 10, 20]], ExpiresIn=600
    )
    refused.append(("too small", post(small, "s", b"tiny"), "EntityTooSmall", "form/small.txt"))
    prefix = s3.generate_presigned_post(
        a.bucket, "form/${filename}", Conditions=[["starts-with", "$key", "form/"]], ExpiresIn=600
    )
    moved = dict(prefix["fields"], key="elsewhere/x.txt")
    refused.append(("key outside the policy", post(prefix, "x.txt", b"x", fields=moved), "AccessDenied", "elsewhere/x.txt"))
    old = s3.generate_presigned_post(a.bucket, "form/old.txt", ExpiresIn=-60)
    refused.append(("expired policy", post(old, "o", b"old"), "AccessDenied", "form/old.txt"))
    forged = dict(plain["fields"], key="form/plain.bin")
    forged["x-amz-signature"] = "0" * 64
    refused.append(("forged signature", post(plain, "f", b"forged", fields=forged), "SignatureDoesNotMatch", None))
    refused.append(("field outside the policy", post(plain, "e", b"extra", extra={"x-amz-meta-sneaky": "1"}), "AccessDenied", None))
    for what, r, code, key in refused:
        check(r.status in (400, 403) and error_code(r.data) == code,
              f"{what}: {r.status} {error_code(r.data)}, want {code}")
        if key:
            absent(s3, a.bucket, key)
    check(s3.get_object(Bucket=a.bucket, Key="form/plain.bin")["Body"].read() == b"plain",
          "a refused POST changed form/plain.bin")
    s3.delete_objects(Bucket=a.bucket, Delete={"Objects": [
        {"Key": k} for k in ("form/hello.txt", "form/plain.bin", "form/redirect.bin")]})


def step_odd_keys(s3, a):
    """Keys that are only whitespace and metadata outside ASCII, exactly as boto3 sends them."""
    keys = [" ", "  a  ", "\ttab", "a", "tab", "line\nfeed", "amp&lt<"]
    for k in keys:
        s3.put_object(Bucket=a.bucket, Key="odd/" + k, Body=k.encode())
    listed = sorted(all_keys(s3, a.bucket, "odd/"))
    check(listed == sorted("odd/" + k for k in keys), f"listed {listed!r}")
    doomed = ["odd/ ", "odd/  a  ", "odd/\ttab", "odd/line\nfeed", "odd/amp&lt<"]
    r = s3.delete_objects(Bucket=a.bucket, Delete={"Objects": [{"Key": k} for k in doomed]})
    check(not r.get("Errors"), f"DeleteObjects errors {r.get('Errors')}")
    check(sorted(d["Key"] for d in r["Deleted"]) == sorted(doomed), f"deleted {r['Deleted']!r}")
    left = sorted(all_keys(s3, a.bucket, "odd/"))
    check(left == ["odd/a", "odd/tab"], f"left after multi-delete {left!r}")
    for k in ("a", "tab"):
        body = s3.get_object(Bucket=a.bucket, Key="odd/" + k)["Body"].read()
        check(body == k.encode(), f"odd/{k} holds {body!r}")
    s3.delete_objects(Bucket=a.bucket, Delete={"Objects": [{"Key": k} for k in left]})

    # boto3 refuses such metadata by default; the unregistered check is what older boto3 and
    # other clients send: the value as ISO-8859-1 bytes.
    s3.meta.events.unregister("before-parameter-build.s3.PutObject", validate_ascii_metadata)
    s3.put_object(Bucket=a.bucket, Key="odd/meta", Body=b"m", Metadata={"meta1": "Hello Worldé"})
    meta = s3.head_object(Bucket=a.bucket, Key="odd/meta")["Metadata"]
    check(meta == {"meta1": "Hello Worldé"}, f"metadata came back as {meta!r}")
    s3.delete_object(Bucket=a.bucket, Key="odd/meta")


def step_policy(s3, a):
    """put/get/delete_bucket_policy, and what an anonymous-download policy opens."""
    import json

    try:
        s3.get_bucket_policy(Bucket=a.bucket)
        check(False, "GetBucketPolicy answered for a bucket without a policy")
    except ClientError as e:
        check(e.response["Error"]["Code"] == "NoSuchBucketPolicy", f"no policy: {e}")
    s3.put_object(Bucket=a.bucket, Key="pub/open.txt", Body=b"open")
    s3.put_object(Bucket=a.bucket, Key="shut.txt", Body=b"shut")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{a.bucket}/pub/*"],
            }
        ],
    }
    s3.put_bucket_policy(Bucket=a.bucket, Policy=json.dumps(policy))
    got = json.loads(s3.get_bucket_policy(Bucket=a.bucket)["Policy"])
    check(got == policy, f"GetBucketPolicy gave {got}")
    http = urllib3.PoolManager()
    r = http.request("GET", f"{a.endpoint}/{a.bucket}/pub/open.txt")
    check(r.status == 200 and r.data == b"open", f"anonymous GET of pub/ answered {r.status}")
    r = http.request("GET", f"{a.endpoint}/{a.bucket}/shut.txt")
    check(r.status == 403, f"anonymous GET outside pub/ answered {r.status}")
    try:
        s3.put_bucket_policy(Bucket=a.bucket, Policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotResource":"x"}]}')
        check(False, "a policy with NotResource was accepted")
    except ClientError as e:
        check(e.response["Error"]["Code"] == "MalformedPolicy", f"malformed: {e}")
    s3.delete_bucket_policy(Bucket=a.bucket)
    r = http.request("GET", f"{a.endpoint}/{a.bucket}/pub/open.txt")
    check(r.status == 403, f"anonymous GET after DeleteBucketPolicy answered {r.status}")
    s3.delete_objects(
        Bucket=a.bucket,
        Delete={"Objects": [{"Key": "pub/open.txt"}, {"Key": "shut.txt"}]},
    )


STEPS = {
    "mb": step_mb,
    "put-small": step_put_small,
    "put-big": step_put_big,
    "list": step_list,
    "get": step_get,
    "copy": step_copy,
    "sync-up": step_sync_up,
    "sync-down": step_sync_down,
    "delete": step_delete,
    "rb": step_rb,
    "post": step_post,
    "odd-keys": step_odd_keys,
    "policy": step_policy,
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
