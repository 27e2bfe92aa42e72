// Uploads: single PUTs for small files, multipart for large ones (4 parts in flight, each part
// retried with backoff), per-file and total progress, cancel, and resume after a reload: the
// upload's id is kept in localStorage, and re-selecting the same file asks the server which
// parts it already has (ListParts) and sends only the others.

import { presign, s3xml, s3Error, kids, kidText, backoff, s3, describe } from "./api.js";
import { h, mount, button, formatBytes, showBanner, hideBanner, icon } from "./ui.js";

/** Files above this go multipart. */
export const MULTIPART_THRESHOLD = 8 * 1024 * 1024;
/** Part size: under the 10 MiB body limit common proxies ship with, above S3's 5 MiB minimum. */
export const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 4;
/** Tries per part (and per single PUT) before the file is marked failed. */
const TRIES = 3;
const STORE_KEY = "nasgate.uploads";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- resume records ----

function loadRecords() {
  try {
    const list = JSON.parse(localStorage.getItem(STORE_KEY) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function saveRecords(list) {
  localStorage.setItem(STORE_KEY, JSON.stringify(list));
}

function sameFile(r, bucket, key, file) {
  return r.bucket === bucket && r.key === key && r.size === file.size && r.lastModified === file.lastModified && r.name === file.name;
}

/** Unfinished multipart uploads this browser started (for the "re-select to resume" note). */
export function pendingRecords(bucket) {
  return loadRecords().filter((r) => !bucket || r.bucket === bucket);
}

function forgetRecord(uploadId) {
  saveRecords(loadRecords().filter((r) => r.uploadId !== uploadId));
}

/** Aborts an unfinished upload found in localStorage and forgets it. */
export async function discardRecord(record) {
  try {
    await s3({ method: "DELETE", bucket: record.bucket, key: record.key, query: { uploadId: record.uploadId } });
  } catch (e) {
    if (e.code !== "NoSuchUpload") throw e;
  } finally {
    forgetRecord(record.uploadId);
  }
}

/** A part size that keeps a file within S3's 10 000 parts (8 MiB up to 78 GiB). */
export function partSizeFor(size) {
  const min = Math.ceil(size / 10000 / (1024 * 1024)) * 1024 * 1024;
  return Math.max(PART_SIZE, min);
}

// ---- one PUT with progress (XHR: fetch has no upload progress) ----

function putWithProgress(url, body, headers, onProgress, signalHolder) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    signalHolder.xhrs.add(xhr);
    xhr.open("PUT", url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      signalHolder.xhrs.delete(xhr);
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr);
      else {
        const err = s3Error(xhr.status, xhr.responseText);
        err.retryAfter = Number(xhr.getResponseHeader("Retry-After")) || 0;
        reject(err);
      }
    };
    xhr.onerror = () => {
      signalHolder.xhrs.delete(xhr);
      reject(Object.assign(new Error("network error"), { status: 0 }));
    };
    xhr.onabort = () => {
      signalHolder.xhrs.delete(xhr);
      reject(Object.assign(new Error("cancelled"), { cancelled: true }));
    };
    xhr.send(body);
  });
}

/** Sends one body, retrying failures (503 SlowDown waits as long as the server asks). */
async function putRetrying(getUrl, body, headers, onProgress, item) {
  let busy = 0;
  for (let attempt = 1; ; attempt++) {
    if (item.cancelled) throw Object.assign(new Error("cancelled"), { cancelled: true });
    try {
      const xhr = await putWithProgress(await getUrl(), body, headers, onProgress, item);
      hideBanner("busy");
      return xhr;
    } catch (e) {
      onProgress(0);
      if (e.cancelled || item.cancelled) throw e;
      if (e.status === 503 && busy < 6) {
        busy++;
        attempt--;
        showBanner("The server is busy, retrying…", "busy");
        await sleep(backoff(busy - 1, e.retryAfter));
        continue;
      }
      if (attempt >= TRIES || e.status === 403 || e.status === 404) throw e;
      item.retries++;
      item.render();
      await sleep(backoff(attempt - 1, 0));
    }
  }
}

// ---- the queue ----

/** The upload manager: a panel listing every file of this session with its progress. */
export class Uploader {
  constructor(panel, { onFileDone } = {}) {
    this.panel = panel;
    this.items = [];
    this.onFileDone = onFileDone || (() => {});
    this.running = 0;
    this.collapsed = false;
    this.render();
  }

  /** Queues files: [{file, bucket, key}]. */
  add(entries) {
    for (const { file, bucket, key } of entries) {
      const item = {
        file,
        bucket,
        key,
        loaded: 0,
        status: "queued",
        error: "",
        retries: 0,
        cancelled: false,
        resumed: 0,
        xhrs: new Set(),
        partLoaded: new Map(),
        render: () => this.render(),
      };
      this.items.push(item);
    }
    this.collapsed = false;
    this.render();
    this.pump();
  }

  pump() {
    // Two files at a time; each multipart file has its own 4 parts in flight.
    while (this.running < 2) {
      const next = this.items.find((i) => i.status === "queued");
      if (!next) break;
      this.running++;
      next.status = "uploading";
      this.run(next).finally(() => {
        this.running--;
        this.render();
        this.pump();
      });
    }
    this.render();
  }

  async run(item) {
    try {
      if (item.file.size > MULTIPART_THRESHOLD) await this.multipart(item);
      else await this.single(item);
      item.status = "done";
      item.loaded = item.file.size;
      this.onFileDone(item);
    } catch (e) {
      if (item.cancelled || e.cancelled) {
        item.status = "cancelled";
      } else {
        item.status = "failed";
        item.error = e.code ? describe(e) : e.message;
      }
    }
  }

  async single(item) {
    const headers = { "Content-Type": item.file.type || "application/octet-stream" };
    let url = null;
    await putRetrying(
      async () => url || (url = (await presign([{ method: "PUT", bucket: item.bucket, key: item.key, expires: 3600 }]))[0]),
      item.file,
      headers,
      (n) => {
        item.loaded = n;
        this.renderSoon();
      },
      item,
    );
  }

  async multipart(item) {
    const { file, bucket, key } = item;
    item.partLoaded.clear(); // a retried file starts its count from what the server has
    let record = loadRecords().find((r) => sameFile(r, bucket, key, file));
    const done = new Map(); // partNumber -> etag
    let partSize = partSizeFor(file.size);
    if (record) {
      try {
        partSize = record.partSize;
        for (const p of await this.listParts(record)) {
          const expected = Math.min(partSize, file.size - (p.number - 1) * partSize);
          if (p.size === expected) done.set(p.number, p.etag);
        }
        item.resumed = done.size;
      } catch (e) {
        // The upload is gone (completed, aborted or expired): start over.
        forgetRecord(record.uploadId);
        record = null;
        done.clear();
        partSize = partSizeFor(file.size);
      }
    }
    if (!record) {
      const doc = await s3xml(
        { method: "POST", bucket, key, query: { uploads: "" } },
        { headers: { "Content-Type": file.type || "application/octet-stream" } },
      );
      const uploadId = kidText(doc.documentElement, "UploadId");
      record = { bucket, key, uploadId, size: file.size, lastModified: file.lastModified, name: file.name, partSize, started: Date.now() };
      saveRecords([...loadRecords(), record]);
    }
    item.uploadId = record.uploadId;
    if (item.cancelled) {
      // Cancelled while the upload was being created: cancel() did not know its id yet.
      await discardRecord(record).catch(() => {});
      throw Object.assign(new Error("cancelled"), { cancelled: true });
    }

    const count = Math.max(1, Math.ceil(file.size / partSize));
    const todo = [];
    for (let n = 1; n <= count; n++) {
      if (done.has(n)) item.partLoaded.set(n, Math.min(partSize, file.size - (n - 1) * partSize));
      else todo.push(n);
    }
    this.updateLoaded(item);

    // Presign parts in small batches just before they are sent, so URLs stay fresh.
    const urls = new Map();
    const urlFor = async (n) => {
      if (!urls.has(n)) {
        const batch = todo.filter((p) => p >= n && !urls.has(p)).slice(0, 16);
        const signed = await presign(batch.map((p) => ({ method: "PUT", bucket, key, query: { partNumber: String(p), uploadId: record.uploadId }, expires: 3600 })));
        batch.forEach((p, i) => urls.set(p, signed[i]));
      }
      return urls.get(n);
    };

    const queue = [...todo];
    const worker = async () => {
      while (queue.length) {
        const n = queue.shift();
        const start = (n - 1) * partSize;
        const blob = file.slice(start, Math.min(start + partSize, file.size));
        const xhr = await putRetrying(
          () => urlFor(n),
          blob,
          {},
          (loaded) => {
            item.partLoaded.set(n, loaded);
            this.updateLoaded(item);
          },
          item,
        );
        item.partLoaded.set(n, blob.size);
        done.set(n, xhr.getResponseHeader("ETag"));
        this.updateLoaded(item);
      }
    };
    const workers = [];
    for (let i = 0; i < Math.min(PARTS_IN_FLIGHT, todo.length); i++) workers.push(worker());
    try {
      await Promise.all(workers);
    } catch (e) {
      // Stop the other parts of this file; the upload stays on the server for a later resume.
      queue.length = 0;
      for (const xhr of item.xhrs) xhr.abort();
      throw e;
    }
    if (item.cancelled) throw Object.assign(new Error("cancelled"), { cancelled: true });

    item.status = "completing";
    this.render();
    const body =
      "<CompleteMultipartUpload>" +
      [...done.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([n, etag]) => `<Part><PartNumber>${n}</PartNumber><ETag>${etag}</ETag></Part>`)
        .join("") +
      "</CompleteMultipartUpload>";
    await s3xml({ method: "POST", bucket, key, query: { uploadId: record.uploadId } }, { body, headers: { "Content-Type": "application/xml" } });
    forgetRecord(record.uploadId);
  }

  /** ListParts, every page: [{number, etag, size}]. */
  async listParts(record) {
    const parts = [];
    let marker = "";
    for (;;) {
      const query = { uploadId: record.uploadId };
      if (marker) query["part-number-marker"] = marker;
      const doc = await s3xml({ method: "GET", bucket: record.bucket, key: record.key, query });
      const root = doc.documentElement;
      for (const p of kids(root, "Part")) {
        parts.push({ number: Number(kidText(p, "PartNumber")), etag: kidText(p, "ETag"), size: Number(kidText(p, "Size")) });
      }
      if (kidText(root, "IsTruncated") !== "true") return parts;
      marker = kidText(root, "NextPartNumberMarker");
    }
  }

  updateLoaded(item) {
    let sum = 0;
    for (const v of item.partLoaded.values()) sum += v;
    item.loaded = sum;
    this.renderSoon();
  }

  async cancel(item) {
    item.cancelled = true;
    for (const xhr of item.xhrs) xhr.abort();
    if (item.status === "queued" || item.status === "failed") item.status = "cancelled";
    if (item.uploadId) {
      try {
        await discardRecord({ bucket: item.bucket, key: item.key, uploadId: item.uploadId });
      } catch (e) {
        showBanner(`Could not abort the upload of ${item.key}: ${describe(e)}`);
      }
    }
    this.render();
  }

  retry(item) {
    Object.assign(item, { status: "queued", error: "", cancelled: false, retries: 0 });
    this.pump();
  }

  clearFinished() {
    this.items = this.items.filter((i) => !["done", "cancelled"].includes(i.status));
    this.render();
  }

  renderSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.render();
    });
  }

  render() {
    const items = this.items;
    this.panel.hidden = items.length === 0;
    if (!items.length) return;
    const active = items.filter((i) => i.status !== "cancelled");
    const total = active.reduce((s, i) => s + i.file.size, 0);
    const loaded = active.reduce((s, i) => s + Math.min(i.loaded, i.file.size), 0);
    const pct = total ? Math.floor((loaded * 100) / total) : 100;
    const doneCount = items.filter((i) => i.status === "done").length;
    const failed = items.filter((i) => i.status === "failed").length;
    const busy = items.some((i) => ["queued", "uploading", "completing"].includes(i.status));
    const summary = busy
      ? `Uploading ${doneCount} of ${items.length} · ${pct}%`
      : `${doneCount} uploaded${failed ? ` · ${failed} failed` : ""}`;
    mount(
      this.panel,
      h(
        "header",
        { class: "upload-head" },
        h("strong", { id: "upload-summary" }, summary),
        h(
          "div",
          { class: "row-actions" },
          busy ? null : button("Clear", () => this.clearFinished(), { kind: "ghost small", id: "upload-clear" }),
          button(this.collapsed ? "Show" : "Hide", () => {
            this.collapsed = !this.collapsed;
            this.render();
          }, { kind: "ghost small" }),
        ),
      ),
      h("progress", { class: "total", max: 100, value: pct, "aria-label": "Total upload progress", id: "upload-total" }),
      this.collapsed
        ? null
        : h(
            "ul",
            { class: "upload-list" },
            items.map((item) => {
              const p = item.file.size ? Math.floor((Math.min(item.loaded, item.file.size) * 100) / item.file.size) : item.status === "done" ? 100 : 0;
              const status = {
                queued: "Waiting",
                uploading: `${p}% of ${formatBytes(item.file.size)}${item.resumed ? ` · resumed, ${item.resumed} parts already there` : ""}${item.retries ? ` · ${item.retries} retried` : ""}`,
                completing: "Finishing…",
                done: `Done · ${formatBytes(item.file.size)}${item.resumed ? ` · resumed, ${item.resumed} parts were there` : ""}${item.retries ? ` · ${item.retries} retried` : ""}`,
                failed: `Failed: ${item.error}`,
                cancelled: "Cancelled",
              }[item.status];
              return h(
                "li",
                { class: `upload-item ${item.status}`, dataset: { key: item.key, status: item.status } },
                h("div", { class: "upload-name", title: item.key }, icon(item.status === "done" ? "file" : "upload"), h("span", {}, item.key)),
                h("progress", { max: 100, value: p, "aria-label": `Progress of ${item.key}` }),
                h(
                  "div",
                  { class: "upload-status" },
                  h("span", { class: "upload-state" }, status),
                  item.status === "failed" ? button("Retry", () => this.retry(item), { kind: "ghost small" }) : null,
                  ["queued", "uploading", "failed"].includes(item.status) ? button("Cancel", () => this.cancel(item), { kind: "ghost small" }) : null,
                ),
              );
            }),
          ),
    );
  }
}

// ---- collecting files from a drop ----

function readAllEntries(reader) {
  return new Promise((resolve, reject) => {
    const all = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (!batch.length) resolve(all);
        else {
          all.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

async function walkEntry(entry, path, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: path + file.name });
  } else if (entry.isDirectory) {
    const children = await readAllEntries(entry.createReader());
    for (const child of children) await walkEntry(child, `${path}${entry.name}/`, out);
  }
}

/** Files of a drop, folders walked: [{file, path}] with paths relative to the drop. */
export async function filesFromDrop(dataTransfer) {
  const out = [];
  const entries = [...dataTransfer.items].map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (entries.every((e) => e)) {
    for (const entry of entries) await walkEntry(entry, "", out);
  } else {
    for (const file of dataTransfer.files) out.push({ file, path: file.name });
  }
  return out;
}
