// The console's own API (login, whoami, presign, usage) and S3 requests on presigned URLs.
// The browser never holds a secret: every S3 request is signed by the server for the session's
// user, then sent as an ordinary S3 request, so locks, policies and quotas apply as for any client.

import { showBanner, hideBanner } from "./ui.js";

/** An error from the console API or from S3, with the HTTP status and the S3/API code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
  }
}

let onSessionLost = () => {};
/** Called when a console API call finds the session gone (401 NoSession). */
export function setSessionLostHandler(fn) {
  onSessionLost = fn;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Calls api/<path>: GET when body is undefined, else a JSON POST with the CSRF header. */
export async function api(path, body) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.headers["X-Nasgate-Console"] = "1";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`api/${path}`, init);
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data && data.code, data && data.error);
    err.retryAfter = Number(res.headers.get("Retry-After")) || 0;
    if (res.status === 401 && err.code === "NoSession") onSessionLost();
    throw err;
  }
  return data;
}

/**
 * Presigns S3 requests ({method, bucket, key, query, headers, expires}); returns URLs relative to
 * the console page, in the same order. Batches of at most 1000 per call, as the API allows.
 */
export async function presign(requests) {
  const urls = [];
  for (let i = 0; i < requests.length; i += 1000) {
    const data = await api("presign", { requests: requests.slice(i, i + 1000) });
    urls.push(...data.urls);
  }
  return urls;
}

export async function presignOne(request) {
  return (await presign([request]))[0];
}

/** Parses an S3 XML error body into an ApiError. */
export function s3Error(status, text) {
  let code = "";
  let message = "";
  if (text) {
    const doc = new DOMParser().parseFromString(text, "application/xml");
    code = doc.querySelector("Error > Code")?.textContent || "";
    message = doc.querySelector("Error > Message")?.textContent || "";
  }
  if (!code) code = { 403: "AccessDenied", 404: "NotFound", 503: "SlowDown" }[status] || `HTTP${status}`;
  return new ApiError(status, code, message || code);
}

/** How long to wait before retry n (0-based) of a 503 SlowDown: Retry-After, else backoff. */
export function backoff(attempt, retryAfter) {
  if (retryAfter > 0) return Math.min(retryAfter, 10) * 1000;
  return Math.min(500 * 2 ** attempt, 8000);
}

const BUSY_RETRIES = 6;

/**
 * One S3 request: presigns it, sends it with fetch and retries a 503 SlowDown (the share is busy,
 * a lock wait timed out) with backoff while the banner says so. `send` holds the body and the
 * unsigned headers (Content-Type, Range, x-amz-checksum-*). Resolves with the Response; non-2xx
 * answers become an ApiError.
 */
export async function s3(request, send = {}) {
  const url = await presignOne(request);
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url, { method: request.method, headers: { ...(request.headers || {}), ...(send.headers || {}) }, body: send.body, credentials: "omit" });
    if (res.status === 503 && attempt < BUSY_RETRIES) {
      showBanner("The server is busy, retrying…", "busy");
      await sleep(backoff(attempt, Number(res.headers.get("Retry-After")) || 0));
      continue;
    }
    hideBanner("busy");
    if (!res.ok) throw s3Error(res.status, await res.text());
    return res;
  }
}

/** An S3 request whose answer is XML: returns the parsed Document. */
export async function s3xml(request, send) {
  const res = await s3(request, send);
  const text = await res.text();
  const doc = new DOMParser().parseFromString(text, "application/xml");
  // CompleteMultipartUpload and CopyObject may answer 200 with an <Error> body.
  if (doc.documentElement && doc.documentElement.localName === "Error") throw s3Error(500, text);
  return doc;
}

/** Direct children of el named name (S3 XML, any namespace). */
export function kids(el, name) {
  return el ? [...el.children].filter((c) => c.localName === name) : [];
}

/** Text of the first direct child of el named name, or "". */
export function kidText(el, name) {
  return kids(el, name)[0]?.textContent ?? "";
}

/** ListBuckets: [{name, created}]. */
export async function listBuckets() {
  const doc = await s3xml({ method: "GET" });
  const root = doc.documentElement;
  return kids(kids(root, "Buckets")[0], "Bucket").map((b) => ({ name: kidText(b, "Name"), created: kidText(b, "CreationDate") }));
}

/** One page of ListObjectsV2: {folders: [prefix], objects: [{key,size,modified,etag}], next}. */
export async function listPage(bucket, { prefix = "", delimiter = "/", token = "", maxKeys = 200 } = {}) {
  const query = { "list-type": "2", "max-keys": String(maxKeys) };
  if (prefix) query.prefix = prefix;
  if (delimiter) query.delimiter = delimiter;
  if (token) query["continuation-token"] = token;
  const doc = await s3xml({ method: "GET", bucket, query });
  const root = doc.documentElement;
  const truncated = kidText(root, "IsTruncated") === "true";
  return {
    folders: kids(root, "CommonPrefixes").map((p) => kidText(p, "Prefix")),
    objects: kids(root, "Contents").map((c) => ({
      key: kidText(c, "Key"),
      size: Number(kidText(c, "Size")),
      modified: kidText(c, "LastModified"),
      etag: kidText(c, "ETag"),
    })),
    next: truncated ? kidText(root, "NextContinuationToken") : "",
  };
}

/** Every key under prefix (no delimiter), page by page; for folder delete and zip. */
export async function listAllKeys(bucket, prefix, onProgress) {
  const keys = [];
  let token = "";
  do {
    const page = await listPage(bucket, { prefix, delimiter: "", token, maxKeys: 1000 });
    keys.push(...page.objects.map((o) => o.key));
    token = page.next;
    if (onProgress) onProgress(keys.length);
  } while (token);
  return keys;
}

async function sha256Base64(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

function xmlEscape(s) {
  return s.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]);
}

/**
 * Deletes keys with DeleteObjects, 1000 per request. Browsers have no MD5 in WebCrypto, so the
 * body's integrity header is x-amz-checksum-sha256 (which S3 accepts instead of Content-MD5).
 * Returns {deleted, errors: [{key, code, message}]}.
 */
export async function deleteKeys(bucket, keys, onProgress) {
  let deleted = 0;
  const errors = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const body =
      '<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>' +
      batch.map((k) => `<Object><Key>${xmlEscape(k)}</Key></Object>`).join("") +
      "</Delete>";
    const checksum = await sha256Base64(body);
    const doc = await s3xml(
      { method: "POST", bucket, query: { delete: "" } },
      { body, headers: { "Content-Type": "application/xml", "x-amz-checksum-sha256": checksum } },
    );
    const errs = kids(doc.documentElement, "Error").map((e) => ({ key: kidText(e, "Key"), code: kidText(e, "Code"), message: kidText(e, "Message") }));
    errors.push(...errs);
    deleted += batch.length - errs.length;
    if (onProgress) onProgress(deleted);
  }
  return { deleted, errors };
}

/** The x-amz-copy-source value for bucket/key (URL-encoded, slashes kept). */
export function copySource(bucket, key) {
  return `/${bucket}/${encodeURIComponent(key).replace(/%2F/g, "/")}`;
}

/** Whether an object named key exists (ListObjectsV2 with the key as prefix: no 404 noise). */
export async function objectExists(bucket, key) {
  const page = await listPage(bucket, { prefix: key, delimiter: "", maxKeys: 1 });
  return page.objects.some((o) => o.key === key);
}

/** The bucket policy `mc anonymous set download` writes: anyone may read objects. */
export function downloadPolicy(bucket) {
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Principal: { AWS: ["*"] }, Action: ["s3:GetBucketLocation"], Resource: [`arn:aws:s3:::${bucket}`] },
      { Effect: "Allow", Principal: { AWS: ["*"] }, Action: ["s3:GetObject"], Resource: [`arn:aws:s3:::${bucket}/*`] },
    ],
  };
}

const asList = (v) => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/** "none", "download" (anonymous read of every object) or "custom", from a policy document. */
export function classifyPolicy(bucket, policy) {
  if (!policy) return "none";
  const statements = asList(policy.Statement);
  const readsAll = statements.some((s) => {
    if (s.Effect !== "Allow") return false;
    const principal = s.Principal === "*" ? ["*"] : asList(s.Principal && s.Principal.AWS);
    return (
      principal.includes("*") &&
      asList(s.Action).some((a) => a === "s3:GetObject" || a === "s3:*") &&
      asList(s.Resource).includes(`arn:aws:s3:::${bucket}/*`)
    );
  });
  const onlyThat = JSON.stringify(policy) === JSON.stringify(downloadPolicy(bucket));
  return readsAll ? (onlyThat ? "download" : "custom-read") : "custom";
}

/** The bucket's policy document, or null when it has none. */
export async function getPolicy(bucket) {
  try {
    const res = await s3({ method: "GET", bucket, query: { policy: "" } });
    return JSON.parse(await res.text());
  } catch (e) {
    if (e.code === "NoSuchBucketPolicy") return null;
    throw e;
  }
}

export async function setAnonymousRead(bucket, on) {
  if (on) {
    const body = JSON.stringify(downloadPolicy(bucket));
    await s3({ method: "PUT", bucket, query: { policy: "" } }, { body, headers: { "Content-Type": "application/json" } });
  } else {
    await s3({ method: "DELETE", bucket, query: { policy: "" } });
  }
}

/** Human text for an error shown in the banner. */
export function describe(err) {
  if (!(err instanceof ApiError)) return err && err.message ? `Network error: ${err.message}` : "Network error";
  const friendly = {
    AccessDenied: "Access denied: your user's policy does not allow this.",
    BucketNotEmpty: "The bucket is not empty. Delete its objects first.",
    BucketAlreadyExists: "A bucket with that name already exists.",
    BucketAlreadyOwnedByYou: "You already have a bucket with that name.",
    InvalidBucketName: "That is not a valid bucket name.",
    NoSuchBucket: "The bucket does not exist (any more).",
    NoSuchKey: "The object does not exist (any more).",
    SlowDown: "The server is busy. Try again in a moment.",
    NoSession: "Your session has ended. Sign in again.",
  };
  return friendly[err.code] || `${err.message}${err.code && err.message !== err.code ? ` (${err.code})` : ""}`;
}
