// The nasgate console: hash routes (#/login, #/buckets, #/b/<bucket>/<prefix>), the bucket list
// and the object browser. State lives in the page and the share only: any instance can serve
// any click.

import {
  api,
  ApiError,
  setSessionLostHandler,
  presignOne,
  s3,
  s3xml,
  kids,
  kidText,
  listBuckets,
  listPage,
  listAllKeys,
  deleteKeys,
  copySource,
  objectExists,
  getPolicy,
  classifyPolicy,
  setAnonymousRead,
  describe,
} from "./api.js";
import { h, mount, icon, button, formatBytes, formatDate, openDialog, confirmDialog, promptDialog, showBanner, hideBanner, toast } from "./ui.js";
import { Uploader, filesFromDrop, pendingRecords, discardRecord } from "./upload.js";

const state = {
  me: null,
  uploader: null,
  view: null, // the current object browser, when one is shown
};

const view = () => document.getElementById("view");

// ---- routing ----

function encodePath(prefix) {
  return prefix
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
}

/** The hash of the object browser at bucket/prefix. */
export function browseHash(bucket, prefix = "") {
  return `#/b/${encodeURIComponent(bucket)}/${encodePath(prefix)}`;
}

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const m = hash.match(/^\/b\/([^/]+)\/?(.*)$/);
  if (m) {
    try {
      return { name: "objects", bucket: decodeURIComponent(m[1]), prefix: m[2].split("/").map(decodeURIComponent).join("/") };
    } catch {
      return { name: "buckets" };
    }
  }
  if (hash.startsWith("/login")) return { name: "login" };
  return { name: "buckets" };
}

async function route() {
  hideBanner();
  const r = parseHash();
  if (!state.me) {
    try {
      state.me = await api("whoami");
    } catch (e) {
      state.me = null;
      if (!(e instanceof ApiError && e.status === 401)) showBanner(describe(e));
    }
  }
  renderTopbar();
  if (!state.me || r.name === "login") {
    if (state.me) {
      location.hash = "#/buckets";
      return;
    }
    renderLogin();
    return;
  }
  document.body.classList.remove("logged-out");
  if (r.name === "objects") renderObjects(r.bucket, r.prefix);
  else renderBuckets();
}

setSessionLostHandler(() => {
  if (!state.me) return;
  state.me = null;
  renderTopbar();
  renderLogin("Your session has ended. Sign in again.");
});

// ---- top bar ----

function renderTopbar() {
  const user = document.getElementById("user");
  if (!state.me) {
    mount(user);
    return;
  }
  mount(
    user,
    h("span", { class: "who", title: state.me.root ? "root user" : "user" }, h("span", { class: "avatar", "aria-hidden": "true" }, state.me.accessKey.slice(0, 1).toUpperCase()), h("span", { id: "who-name" }, state.me.accessKey), state.me.root ? h("span", { class: "badge" }, "root") : null),
    button("Sign out", logout, { kind: "ghost", iconName: "logout", id: "logout" }),
  );
}

async function logout() {
  try {
    await api("logout", {});
  } catch (e) {
    showBanner(describe(e));
  }
  state.me = null;
  location.hash = "#/login";
  renderTopbar();
  renderLogin();
}

// ---- login ----

function renderLogin(notice = "") {
  document.body.classList.add("logged-out");
  const error = h("p", { class: "field-error", role: "alert", id: "login-error" }, notice);
  const access = h("input", { id: "access-key", name: "accessKey", autocomplete: "username", required: true, spellcheck: "false" });
  const secret = h("input", { id: "secret-key", name: "secretKey", type: "password", autocomplete: "current-password", required: true });
  const submit = button("Sign in", null, { kind: "primary wide", type: "submit", id: "login-submit" });
  const form = h(
    "form",
    {
      class: "login-card",
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        error.textContent = "";
        try {
          await api("login", { accessKey: access.value.trim(), secretKey: secret.value });
          state.me = await api("whoami");
          secret.value = "";
          if (parseHash().name === "login" || !location.hash) location.hash = "#/buckets";
          else route();
        } catch (err) {
          if (err.code === "InvalidCredentials") error.textContent = "Wrong access key or secret key.";
          else if (err.code === "TooManyAttempts") error.textContent = `Too many failed attempts. Try again in ${err.retryAfter || 60} s.`;
          else error.textContent = describe(err);
          secret.select();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("img", { src: "logo.svg", alt: "", class: "login-logo", width: 48, height: 48 }),
    h("h1", {}, "Sign in to nasgate"),
    h("p", { class: "muted" }, "Use an access key and secret key of this share: the root pair or a user's."),
    h("label", { class: "field" }, h("span", {}, "Access key"), access),
    h("label", { class: "field" }, h("span", {}, "Secret key"), secret),
    error,
    submit,
  );
  mount(view(), h("div", { class: "login-wrap" }, form));
  access.focus();
}

// ---- buckets ----

const BUCKET_RE = /^(?!\d+\.\d+\.\d+\.\d+$)(?!xn--)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function bucketNameProblem(name) {
  if (!name) return "Enter a name.";
  if (name.length < 3 || name.length > 63) return "Use 3 to 63 characters.";
  if (!BUCKET_RE.test(name) || name.includes("..")) return "Use lowercase letters, digits, dots and hyphens; start and end with a letter or digit.";
  return "";
}

async function renderBuckets() {
  state.view = null;
  document.title = "Buckets · nasgate";
  const body = h("tbody", {});
  const table = h(
    "table",
    { class: "table", id: "bucket-table" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Created"), h("th", { scope: "col" }, "Usage"), h("th", { scope: "col" }, "Anonymous read"), h("th", { scope: "col", class: "actions-col" }, h("span", { class: "sr-only" }, "Actions")))),
    body,
  );
  const shareInfo = h("p", { class: "muted", id: "share-info" }, "Share: ", h("code", {}, state.me.share));
  const content = h("div", { class: "card" }, h("p", { class: "empty" }, "Loading buckets…"));
  mount(
    view(),
    h(
      "section",
      { class: "page" },
      h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Buckets"), shareInfo), button("Create bucket", createBucket, { kind: "primary", iconName: "plus", id: "create-bucket" })),
      content,
    ),
  );
  let buckets;
  try {
    buckets = await listBuckets();
  } catch (e) {
    mount(content, h("p", { class: "empty error" }, describe(e)));
    return;
  }
  if (!buckets.length) {
    mount(
      content,
      h("div", { class: "empty-state" }, icon("bucket", "icon big"), h("h2", {}, "No buckets yet"), h("p", { class: "muted" }, "A bucket is a top-level folder of the share. Create one to start uploading."), button("Create bucket", createBucket, { kind: "primary", iconName: "plus" })),
    );
    return;
  }
  mount(content, h("div", { class: "table-wrap" }, table));
  const usageCells = [];
  for (const b of buckets) {
    const usage = h("td", { class: "num", dataset: { label: "Usage" } }, h("span", { class: "muted" }, "…"));
    const anon = h("td", { dataset: { label: "Anonymous read" } }, h("span", { class: "muted" }, "…"));
    usageCells.push([b.name, usage, anon]);
    body.append(
      h(
        "tr",
        { dataset: { bucket: b.name } },
        h("td", { class: "name" }, h("a", { href: browseHash(b.name), class: "item-link" }, icon("bucket"), h("span", {}, b.name))),
        h("td", { dataset: { label: "Created" } }, formatDate(b.created)),
        usage,
        anon,
        h("td", { class: "actions-col" }, button("", () => deleteBucket(b.name), { kind: "ghost icon-only danger-text", iconName: "trash", title: `Delete bucket ${b.name}` })),
      ),
    );
  }
  // Usage walks each bucket on the share (bounded server side): one at a time.
  let shown = false;
  for (const [name, usageCell, anonCell] of usageCells) {
    loadPolicyCell(name, anonCell);
    try {
      const u = await api(`usage?bucket=${encodeURIComponent(name)}`);
      mount(usageCell, `${u.complete ? "" : "≥ "}${formatBytes(u.bytes)} · ${u.objects} object${u.objects === 1 ? "" : "s"}`);
      if (!shown && u.shareTotalBytes) {
        shown = true;
        shareInfo.append(` · ${formatBytes(u.shareFreeBytes)} free of ${formatBytes(u.shareTotalBytes)}`);
      }
    } catch (e) {
      mount(usageCell, h("span", { class: "muted", title: describe(e) }, "—"));
    }
  }
}

async function loadPolicyCell(bucket, cell) {
  let kind;
  try {
    kind = classifyPolicy(bucket, await getPolicy(bucket));
  } catch (e) {
    mount(cell, h("span", { class: "muted", title: describe(e) }, "—"));
    return;
  }
  const on = kind === "download" || kind === "custom-read";
  const toggle = h(
    "button",
    {
      type: "button",
      class: `switch ${on ? "on" : ""}`,
      role: "switch",
      "aria-checked": on ? "true" : "false",
      "aria-label": `Anonymous read of ${bucket}`,
      title: kind.startsWith("custom") ? "This bucket has a custom policy; switching replaces it." : "Anyone with the URL can download objects",
      onclick: async () => {
        const next = !on;
        if (kind.startsWith("custom") && !(await confirmDialog("Replace the bucket policy?", `${bucket} has a custom policy. Switching anonymous read ${next ? "on" : "off"} replaces it.`, { confirmLabel: "Replace", danger: true }))) return;
        if (next && !(await confirmDialog("Allow anonymous read?", `Anyone who can reach this server can then download every object of ${bucket} without signing in.`, { confirmLabel: "Allow", danger: true }))) return;
        toggle.disabled = true;
        try {
          await setAnonymousRead(bucket, next);
          toast(next ? `Anonymous read on for ${bucket}` : `Anonymous read off for ${bucket}`);
        } catch (e) {
          showBanner(describe(e));
        }
        loadPolicyCell(bucket, cell);
      },
    },
    h("span", { class: "knob", "aria-hidden": "true" }),
  );
  mount(cell, h("div", { class: "switch-wrap" }, toggle, h("span", { class: "muted small" }, on ? (kind === "custom-read" ? "On (custom)" : "On") : kind === "custom" ? "Custom policy" : "Off")));
}

async function createBucket() {
  const name = await promptDialog("Create bucket", "Bucket name", { confirmLabel: "Create", hint: "3–63 characters: lowercase letters, digits, dots and hyphens.", validate: bucketNameProblem });
  if (!name) return;
  try {
    await s3({ method: "PUT", bucket: name });
    toast(`Bucket ${name} created`);
    location.hash = browseHash(name);
  } catch (e) {
    showBanner(describe(e));
  }
}

async function deleteBucket(name) {
  if (!(await confirmDialog("Delete bucket?", `Delete the empty bucket ${name}? Buckets with objects are refused.`, { confirmLabel: "Delete", danger: true }))) return;
  try {
    await s3({ method: "DELETE", bucket: name });
    toast(`Bucket ${name} deleted`);
    renderBuckets();
  } catch (e) {
    showBanner(describe(e));
  }
}

// ---- objects ----

const baseName = (key) => key.replace(/\/$/, "").split("/").pop();

function breadcrumbs(bucket, prefix) {
  const parts = prefix.split("/").filter(Boolean);
  const crumbs = [h("li", {}, h("a", { href: "#/buckets" }, "Buckets")), h("li", {}, h("a", { href: browseHash(bucket) }, bucket))];
  let acc = "";
  for (const p of parts) {
    acc += `${p}/`;
    crumbs.push(h("li", {}, h("a", { href: browseHash(bucket, acc) }, p)));
  }
  crumbs[crumbs.length - 1].firstChild.setAttribute("aria-current", "page");
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumbs", id: "crumbs" }, h("ol", {}, crumbs));
}

class ObjectBrowser {
  constructor(bucket, prefix) {
    this.bucket = bucket;
    this.prefix = prefix;
    this.search = "";
    this.folders = [];
    this.objects = [];
    this.next = "";
    this.selected = new Set(); // keys and folder prefixes
    this.sort = { by: "name", dir: 1 };
    this.active = null; // key shown in the details panel
    this.loading = false;
  }

  get listPrefix() {
    return this.prefix + this.search;
  }

  render() {
    document.title = `${this.bucket}/${this.prefix} · nasgate`;
    const fileInput = h("input", { type: "file", multiple: true, id: "file-input", class: "sr-only", tabindex: "-1", onchange: (e) => this.uploadInput(e.target) });
    const folderInput = h("input", { type: "file", multiple: true, webkitdirectory: true, id: "folder-input", class: "sr-only", tabindex: "-1", onchange: (e) => this.uploadInput(e.target) });
    this.searchInput = h("input", { type: "search", id: "search", placeholder: "Search by name prefix in this folder", value: this.search, "aria-label": "Search by name prefix" });
    this.toolbar = h("div", { class: "selection-bar", id: "selection-bar", hidden: true });
    this.tableHost = h("div", { class: "card listing" });
    this.details = h("aside", { class: "details card", id: "details", hidden: true, "aria-label": "Object details" });
    this.notice = h("div", { id: "resume-notice" });
    this.root = h(
      "section",
      { class: "page browser" },
      h(
        "div",
        { class: "page-head" },
        h("div", { class: "head-main" }, breadcrumbs(this.bucket, this.prefix)),
        h(
          "div",
          { class: "head-actions" },
          button("Upload files", () => fileInput.click(), { kind: "primary", iconName: "upload", id: "upload-files" }),
          button("Upload folder", () => folderInput.click(), { iconName: "upload", id: "upload-folder" }),
          button("Zip folder", () => this.zip({ prefix: this.prefix }), { iconName: "zip", id: "zip-folder", title: "Download this folder as a zip" }),
          button("", () => this.reload(), { kind: "ghost icon-only", iconName: "refresh", title: "Refresh", id: "refresh" }),
          fileInput,
          folderInput,
        ),
      ),
      h(
        "form",
        {
          class: "search-row",
          role: "search",
          onsubmit: (e) => {
            e.preventDefault();
            this.search = this.searchInput.value;
            this.reload();
          },
        },
        h("label", { class: "search-box" }, icon("search"), this.searchInput),
        button("Search", null, { type: "submit", id: "search-submit" }),
      ),
      this.notice,
      this.toolbar,
      h("div", { class: "split" }, this.tableHost, this.details),
      h("div", { class: "drop-hint", "aria-hidden": "true" }, icon("upload", "icon big"), h("p", {}, "Drop files or folders to upload to ", h("strong", {}, `${this.bucket}/${this.prefix}`))),
    );
    this.root.addEventListener("dragover", (e) => {
      if (![...e.dataTransfer.types].includes("Files")) return;
      e.preventDefault();
      this.root.classList.add("dragging");
    });
    this.root.addEventListener("dragleave", (e) => {
      if (!this.root.contains(e.relatedTarget)) this.root.classList.remove("dragging");
    });
    this.root.addEventListener("drop", async (e) => {
      e.preventDefault();
      this.root.classList.remove("dragging");
      const files = await filesFromDrop(e.dataTransfer);
      this.queue(files);
    });
    mount(view(), this.root);
    this.renderNotice();
    this.reload();
  }

  renderNotice() {
    const pending = pendingRecords(this.bucket);
    const running = new Set((state.uploader?.items || []).map((i) => i.uploadId).filter(Boolean));
    const stale = pending.filter((r) => !running.has(r.uploadId));
    if (!stale.length) {
      mount(this.notice);
      return;
    }
    mount(
      this.notice,
      h(
        "div",
        { class: "notice" },
        h("div", {}, h("strong", {}, `${stale.length} unfinished upload${stale.length === 1 ? "" : "s"}`), h("span", { class: "muted" }, ` — select the same file${stale.length === 1 ? "" : "s"} again to resume: `), stale.map((r) => h("code", {}, r.key)).reduce((acc, el) => (acc.length ? [...acc, ", ", el] : [el]), [])),
        button("Discard", async () => {
          for (const r of stale) {
            try {
              await discardRecord(r);
            } catch (e) {
              showBanner(describe(e));
            }
          }
          this.renderNotice();
        }, { kind: "ghost small" }),
      ),
    );
  }

  async reload() {
    this.folders = [];
    this.objects = [];
    this.next = "";
    this.selected.clear();
    await this.loadMore(true);
  }

  async loadMore(first = false) {
    if (this.loading) return;
    this.loading = true;
    if (first) mount(this.tableHost, h("p", { class: "empty" }, "Loading…"));
    try {
      const page = await listPage(this.bucket, { prefix: this.listPrefix, token: this.next });
      this.folders.push(...page.folders);
      this.objects.push(...page.objects.filter((o) => o.key !== this.prefix));
      this.next = page.next;
    } catch (e) {
      if (first) mount(this.tableHost, h("p", { class: "empty error" }, describe(e)));
      else showBanner(describe(e));
      this.loading = false;
      return;
    }
    this.loading = false;
    this.renderTable();
  }

  sorted() {
    const { by, dir } = this.sort;
    const cmp = {
      name: (a, b) => a.key.localeCompare(b.key),
      size: (a, b) => a.size - b.size || a.key.localeCompare(b.key),
      modified: (a, b) => (a.modified < b.modified ? -1 : a.modified > b.modified ? 1 : 0) || a.key.localeCompare(b.key),
    }[by];
    const folders = [...this.folders].sort((a, b) => (by === "name" ? dir * a.localeCompare(b) : a.localeCompare(b)));
    const objects = [...this.objects].sort((a, b) => dir * cmp(a, b));
    return { folders, objects };
  }

  renderTable() {
    const { folders, objects } = this.sorted();
    if (!folders.length && !objects.length) {
      mount(
        this.tableHost,
        h(
          "div",
          { class: "empty-state", id: "empty-state" },
          icon(this.search ? "search" : "folder", "icon big"),
          this.search
            ? [h("h2", {}, "Nothing found"), h("p", { class: "muted" }, `No names in this folder start with “${this.search}”.`)]
            : [h("h2", {}, "This folder is empty"), h("p", { class: "muted" }, "Drop files or folders here, or use Upload.")],
        ),
      );
      this.renderSelection();
      return;
    }
    const sortButton = (by, label) =>
      h(
        "button",
        {
          type: "button",
          class: "sort",
          "aria-label": `Sort by ${label}`,
          onclick: () => {
            this.sort = { by, dir: this.sort.by === by ? -this.sort.dir : 1 };
            this.renderTable();
          },
        },
        label,
        this.sort.by === by ? h("span", { "aria-hidden": "true", class: "arrow" }, this.sort.dir > 0 ? "▲" : "▼") : null,
      );
    const all = [...folders, ...objects.map((o) => o.key)];
    const allBox = h("input", {
      type: "checkbox",
      "aria-label": "Select all loaded",
      id: "select-all",
      checked: all.length > 0 && all.every((k) => this.selected.has(k)),
      onchange: (e) => {
        for (const k of all) e.target.checked ? this.selected.add(k) : this.selected.delete(k);
        this.renderTable();
      },
    });
    const checkbox = (k, name) =>
      h("input", {
        type: "checkbox",
        "aria-label": `Select ${name}`,
        checked: this.selected.has(k),
        onchange: (e) => {
          e.target.checked ? this.selected.add(k) : this.selected.delete(k);
          this.renderSelection();
          allBox.checked = all.every((x) => this.selected.has(x));
        },
      });
    const rows = [
      ...folders.map((p) =>
        h(
          "tr",
          { class: "folder", dataset: { prefix: p } },
          h("td", { class: "check" }, checkbox(p, baseName(p))),
          h("td", { class: "name" }, h("a", { href: browseHash(this.bucket, p), class: "item-link" }, icon("folder", "icon folder-icon"), h("span", {}, `${baseName(p)}/`))),
          h("td", { class: "num muted" }, "—"),
          h("td", { class: "muted" }, "Folder"),
        ),
      ),
      ...objects.map((o) =>
        h(
          "tr",
          { class: this.active === o.key ? "object active" : "object", dataset: { key: o.key } },
          h("td", { class: "check" }, checkbox(o.key, baseName(o.key))),
          h("td", { class: "name" }, h("button", { type: "button", class: "item-link link-button", onclick: () => this.showDetails(o) }, icon("file"), h("span", {}, o.key.slice(this.prefix.length)))),
          h("td", { class: "num", dataset: { label: "Size" } }, formatBytes(o.size)),
          h("td", { dataset: { label: "Modified" } }, formatDate(o.modified)),
        ),
      ),
    ];
    mount(
      this.tableHost,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "table objects", id: "object-table" },
          h("thead", {}, h("tr", {}, h("th", { class: "check" }, allBox), h("th", { scope: "col" }, sortButton("name", "Name")), h("th", { scope: "col", class: "num" }, sortButton("size", "Size")), h("th", { scope: "col" }, sortButton("modified", "Modified")))),
          h("tbody", {}, rows),
        ),
      ),
      h(
        "div",
        { class: "list-foot" },
        h("span", { class: "muted", id: "loaded-count" }, `${folders.length + objects.length} item${folders.length + objects.length === 1 ? "" : "s"} loaded${this.next ? " · more in this folder" : ""}`),
        this.next ? button("Load more", () => this.loadMore(), { id: "load-more" }) : null,
      ),
    );
    this.renderSelection();
  }

  renderSelection() {
    const n = this.selected.size;
    this.toolbar.hidden = n === 0;
    if (!n) return;
    mount(
      this.toolbar,
      h("strong", {}, `${n} selected`),
      h(
        "div",
        { class: "row-actions" },
        button("Download zip", () => this.zipSelection(), { iconName: "zip", id: "zip-selection" }),
        button("Delete", () => this.deleteSelection(), { kind: "danger", iconName: "trash", id: "delete-selection" }),
        button("Clear", () => {
          this.selected.clear();
          this.renderTable();
        }, { kind: "ghost" }),
      ),
    );
  }

  uploadInput(input) {
    const files = [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
    input.value = "";
    this.queue(files);
  }

  queue(files) {
    if (!files.length) return;
    state.uploader.add(files.map(({ file, path }) => ({ file, bucket: this.bucket, key: this.prefix + path })));
    this.renderNotice();
  }

  /** Keys behind the selection: folders expanded by listing everything under them. */
  async selectedKeys() {
    const keys = [];
    for (const k of this.selected) {
      if (k.endsWith("/") && this.folders.includes(k)) keys.push(...(await listAllKeys(this.bucket, k)));
      else keys.push(k);
    }
    return keys;
  }

  async deleteSelection() {
    let keys;
    try {
      keys = await this.selectedKeys();
    } catch (e) {
      showBanner(describe(e));
      return;
    }
    if (!keys.length) return;
    const ok = await confirmDialog("Delete objects?", `Delete ${keys.length} object${keys.length === 1 ? "" : "s"}${[...this.selected].some((k) => k.endsWith("/")) ? " (folders included)" : ""}? This cannot be undone.`, {
      confirmLabel: `Delete ${keys.length}`,
      danger: true,
    });
    if (!ok) return;
    await this.deleteKeysNow(keys);
  }

  async deleteKeysNow(keys) {
    try {
      const { deleted, errors } = await deleteKeys(this.bucket, keys);
      if (errors.length) showBanner(`${errors.length} object${errors.length === 1 ? "" : "s"} not deleted: ${errors[0].key}: ${errors[0].message || errors[0].code}`);
      toast(`${deleted} object${deleted === 1 ? "" : "s"} deleted`);
    } catch (e) {
      showBanner(describe(e));
    }
    if (keys.includes(this.active)) this.closeDetails();
    this.reload();
  }

  zipSelection() {
    const keys = [...this.selected];
    const folders = keys.filter((k) => k.endsWith("/") && this.folders.includes(k));
    if (folders.length === 1 && keys.length === 1) return this.zip({ prefix: folders[0] });
    this.selectedKeys().then((all) => this.zip({ prefix: this.prefix, keys: all }), (e) => showBanner(describe(e)));
  }

  /** POSTs a form to api/zip: the browser streams the answer to disk as a download. */
  zip({ prefix, keys = [] }) {
    const form = h("form", { method: "post", action: "api/zip", class: "sr-only" });
    const field = (name, value) => form.append(h("input", { type: "hidden", name, value }));
    field("bucket", this.bucket);
    if (prefix) field("prefix", prefix);
    for (const k of keys) field("key", k);
    field("csrf", state.me.csrf || "");
    document.body.append(form);
    form.submit();
    form.remove();
    toast("Zip download started");
  }

  closeDetails() {
    this.active = null;
    this.details.hidden = true;
    this.root.classList.remove("with-details");
    for (const tr of this.tableHost.querySelectorAll("tr.active")) tr.classList.remove("active");
  }

  async showDetails(obj) {
    this.active = obj.key;
    for (const tr of this.tableHost.querySelectorAll("tr.object")) tr.classList.toggle("active", tr.dataset.key === obj.key);
    this.details.hidden = false;
    this.root.classList.add("with-details");
    const meta = h("dl", { class: "meta", id: "details-meta" }, h("dt", {}, "Loading"), h("dd", {}, "…"));
    const name = baseName(obj.key);
    mount(
      this.details,
      h("header", { class: "details-head" }, h("h2", { title: obj.key, id: "details-name" }, name), button("", () => this.closeDetails(), { kind: "ghost icon-only", iconName: "close", title: "Close details" })),
      h(
        "div",
        { class: "details-actions" },
        button("Preview", () => preview(this.bucket, obj, this.headers), { iconName: "eye", id: "action-preview" }),
        button("Download", () => download(this.bucket, obj.key), { iconName: "download", id: "action-download" }),
        button("Share", () => shareDialog(this.bucket, obj.key), { iconName: "share", id: "action-share" }),
        button("Rename", () => this.rename(obj.key), { iconName: "edit", id: "action-rename" }),
        button("Delete", async () => {
          if (await confirmDialog("Delete object?", `Delete ${obj.key}? This cannot be undone.`, { confirmLabel: "Delete", danger: true })) this.deleteKeysNow([obj.key]);
        }, { kind: "danger-text", iconName: "trash", id: "action-delete" }),
      ),
      meta,
    );
    this.details.querySelector("#action-preview").focus();
    // On narrow screens the panel sits under the list.
    if (matchMedia("(max-width: 900px)").matches) this.details.scrollIntoView({ block: "start" });
    const rows = [];
    const add = (label, value, cls) => rows.push(h("dt", {}, label), h("dd", { class: cls }, value));
    let head = null;
    try {
      const res = await s3({ method: "HEAD", bucket: this.bucket, key: obj.key });
      head = res.headers;
    } catch (e) {
      mount(meta, h("dt", {}, "Error"), h("dd", {}, describe(e)));
      return;
    }
    if (this.active !== obj.key) return;
    this.headers = head;
    add("Size", `${formatBytes(Number(head.get("Content-Length")))} (${Number(head.get("Content-Length")).toLocaleString()} bytes)`);
    add("Modified", formatDate(head.get("Last-Modified")));
    add("ETag", h("code", {}, (head.get("ETag") || "").replace(/"/g, "")), "break");
    add("Content type", head.get("Content-Type") || "—");
    add("NAS path", h("code", { id: "nas-path" }, `${state.me.share.replace(/\/$/, "")}/${this.bucket}/${obj.key}`), "break");
    const userMeta = [];
    head.forEach((value, key) => {
      if (key.toLowerCase().startsWith("x-amz-meta-")) userMeta.push([key.slice(11), value]);
    });
    add("Metadata", userMeta.length ? h("ul", { class: "kv" }, userMeta.map(([k, v]) => h("li", {}, h("code", {}, k), " = ", v))) : h("span", { class: "muted" }, "none"));
    const tagsCell = h("span", { class: "muted", id: "tags" }, "…");
    add("Tags", tagsCell);
    mount(meta, rows);
    try {
      const doc = await s3xml({ method: "GET", bucket: this.bucket, key: obj.key, query: { tagging: "" } });
      const tags = [...doc.getElementsByTagName("Tag")].map((t) => [kidText(t, "Key"), kidText(t, "Value")]);
      tagsCell.replaceWith(tags.length ? h("ul", { class: "kv", id: "tags" }, tags.map(([k, v]) => h("li", {}, h("span", { class: "tag" }, `${k}=${v}`)))) : h("span", { class: "muted", id: "tags" }, "none"));
    } catch (e) {
      tagsCell.textContent = describe(e);
    }
  }

  async rename(key) {
    const dest = await promptDialog("Rename or move", "New key (folders with “/”)", {
      value: key,
      confirmLabel: "Move",
      hint: "Copies the object to the new key, then deletes the old one. Objects over 5 GiB cannot be copied this way.",
      validate: (v) => (!v ? "Enter a key." : v === key ? "That is the current key." : v.endsWith("/") ? "A key cannot end with “/”." : ""),
    });
    if (!dest) return;
    try {
      if (await objectExists(this.bucket, dest)) {
        if (!(await confirmDialog("Replace?", `${dest} already exists. Replace it?`, { confirmLabel: "Replace", danger: true }))) return;
      }
      await s3xml({ method: "PUT", bucket: this.bucket, key: dest, headers: { "x-amz-copy-source": copySource(this.bucket, key) } });
      await s3({ method: "DELETE", bucket: this.bucket, key });
      toast(`Moved to ${dest}`);
      this.closeDetails();
      this.reload();
    } catch (e) {
      showBanner(describe(e));
    }
  }
}

function renderObjects(bucket, prefix) {
  if (prefix && !prefix.endsWith("/")) prefix += "/";
  state.view = new ObjectBrowser(bucket, prefix);
  state.view.render();
}

// ---- download, share, preview ----

function attachment(name) {
  return `attachment; filename*=UTF-8''${encodeURIComponent(name)}`;
}

async function download(bucket, key) {
  try {
    const url = await presignOne({ method: "GET", bucket, key, query: { "response-content-disposition": attachment(baseName(key)) } });
    const a = h("a", { href: url, download: baseName(key), class: "sr-only" });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) {
    showBanner(describe(e));
  }
}

const EXPIRIES = [
  [3600, "1 hour"],
  [6 * 3600, "6 hours"],
  [86400, "1 day"],
  [3 * 86400, "3 days"],
  [604800, "7 days (longest)"],
];

function shareDialog(bucket, key) {
  return openDialog(`Share ${baseName(key)}`, (body) => {
    const select = h("select", { id: "share-expiry" }, EXPIRIES.map(([s, label]) => h("option", { value: String(s), selected: s === 86400 }, label)));
    const link = h("input", { type: "text", readonly: true, id: "share-url", "aria-label": "Share link", value: "" });
    const expires = h("p", { class: "muted small", id: "share-expires" });
    const copy = button("Copy", async () => {
      try {
        await navigator.clipboard.writeText(link.value);
      } catch {
        link.select();
        document.execCommand("copy");
      }
      copy.querySelector("span").textContent = "Copied";
      setTimeout(() => (copy.querySelector("span").textContent = "Copy"), 1500);
    }, { kind: "primary", iconName: "copy", id: "share-copy" });
    const make = async () => {
      const seconds = Number(select.value);
      try {
        const url = await presignOne({ method: "GET", bucket, key, expires: seconds });
        link.value = new URL(url, location.href).href;
        expires.textContent = `Anyone with this link can download ${key} until ${formatDate(new Date(Date.now() + seconds * 1000))}. It stops working earlier if your user's secret changes or the user is disabled.`;
      } catch (e) {
        expires.textContent = describe(e);
      }
    };
    select.addEventListener("change", make);
    mount(body, h("label", { class: "field" }, h("span", {}, "Link expires after"), select), h("div", { class: "copy-row" }, link, copy), expires);
    make();
  });
}

const TEXT_EXT = /\.(txt|md|markdown|csv|tsv|json|jsonl|ndjson|log|ya?ml|toml|ini|conf|cfg|xml|html?|svg|js|mjs|ts|css|py|rs|go|java|c|h|cpp|sh|sql|env|properties)$/i;
const IMAGE_EXT = /\.(png|jpe?g|gif|webp|avif|bmp|ico)$/i;
const AUDIO_EXT = /\.(mp3|wav|ogg|oga|flac|m4a|aac|opus)$/i;
const VIDEO_EXT = /\.(mp4|webm|ogv|mov|m4v)$/i;

/** What kind of preview suits an object: image, pdf, audio, video, text or none. */
export function previewKind(key, type = "") {
  type = type.toLowerCase();
  // Markup that a browser would run is only ever shown as text.
  if (/svg|html|xml/.test(type) || /\.(svg|html?|xml|xhtml)$/i.test(key)) return "text";
  if (type.startsWith("image/") || IMAGE_EXT.test(key)) return "image";
  if (type === "application/pdf" || /\.pdf$/i.test(key)) return "pdf";
  if (type.startsWith("audio/") || AUDIO_EXT.test(key)) return "audio";
  if (type.startsWith("video/") || VIDEO_EXT.test(key)) return "video";
  if (type.startsWith("text/") || /json|csv|yaml|javascript/.test(type) || TEXT_EXT.test(key)) return "text";
  return "none";
}

const MEDIA_TYPES = { image: "", pdf: "application/pdf", audio: "", video: "" };
const TEXT_LIMIT = 64 * 1024;
const PDF_LIMIT = 64 * 1024 * 1024;

async function preview(bucket, obj, headers) {
  const type = headers?.get("Content-Type") || "";
  const kind = previewKind(obj.key, type);
  await openDialog(
    `Preview: ${baseName(obj.key)}`,
    async (body, close, dlg) => {
      const holder = h("div", { class: "preview", id: "preview" }, h("p", { class: "muted" }, "Loading…"));
      mount(body, holder, h("div", { class: "dialog-actions" }, button("Download", () => download(bucket, obj.key), { iconName: "download" })));
      try {
        if (kind === "none") {
          mount(holder, h("p", { class: "empty" }, `No preview for this type (${type || "unknown"}). Download it instead.`));
          return;
        }
        if (kind === "text") {
          const res = await s3({ method: "GET", bucket, key: obj.key }, { headers: { Range: `bytes=0-${TEXT_LIMIT - 1}` } });
          const buf = await res.arrayBuffer();
          const text = new TextDecoder("utf-8", { fatal: false }).decode(buf);
          const total = obj.size ?? Number(headers?.get("Content-Length"));
          mount(holder, h("pre", { class: "text-preview", id: "text-preview" }, text), total > TEXT_LIMIT ? h("p", { class: "muted small" }, `Showing the first 64 KiB of ${formatBytes(total)}.`) : null);
          return;
        }
        if (kind === "pdf") {
          // Chromium's PDF viewer refuses sandboxed frames, and S3 answers are sandboxed on this
          // origin; so the bytes are fetched and shown from a blob typed application/pdf, which
          // the browser only ever renders with its PDF viewer (no page script runs in it).
          const size = obj.size ?? Number(headers?.get("Content-Length"));
          if (size > PDF_LIMIT) {
            mount(holder, h("p", { class: "empty" }, `This PDF is ${formatBytes(size)}; previews stop at ${formatBytes(PDF_LIMIT)}. Download it instead.`));
            return;
          }
          const res = await s3({ method: "GET", bucket, key: obj.key });
          const blob = new Blob([await res.arrayBuffer()], { type: "application/pdf" });
          const url = URL.createObjectURL(blob);
          dlg.addEventListener("close", () => URL.revokeObjectURL(url));
          mount(holder, h("iframe", { src: url, title: `PDF ${baseName(obj.key)}`, class: "pdf", id: "pdf-preview" }));
          return;
        }
        const query = {};
        // Force a media type the browser only renders as media (never as a document).
        if (MEDIA_TYPES[kind]) query["response-content-type"] = MEDIA_TYPES[kind];
        else if (type.startsWith(`${kind}/`) && !/svg|html|xml/.test(type)) query["response-content-type"] = type;
        const url = await presignOne({ method: "GET", bucket, key: obj.key, query, expires: 3600 });
        const el = {
          image: () => h("img", { src: url, alt: baseName(obj.key), id: "image-preview" }),
          pdf: () => h("iframe", { src: url, title: `PDF ${baseName(obj.key)}`, class: "pdf", id: "pdf-preview" }),
          audio: () => h("audio", { src: url, controls: true }),
          video: () => h("video", { src: url, controls: true }),
        }[kind]();
        mount(holder, el);
      } catch (e) {
        mount(holder, h("p", { class: "empty error" }, describe(e)));
      }
    },
    { wide: true },
  );
}

// ---- start ----

function start() {
  state.uploader = new Uploader(document.getElementById("uploads"), {
    onFileDone: (item) => {
      const v = state.view;
      if (v && v.bucket === item.bucket && item.key.startsWith(v.prefix)) {
        clearTimeout(start.refresh);
        start.refresh = setTimeout(() => {
          if (state.view === v && !v.loading) v.reload();
          v.renderNotice();
        }, 300);
      }
    },
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("beforeunload", (e) => {
    if (state.uploader.items.some((i) => ["queued", "uploading", "completing"].includes(i.status))) e.preventDefault();
  });
  route();
}

start();
