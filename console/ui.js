// DOM helpers, dialogs, the error banner and toasts. No innerHTML anywhere: every object name,
// key and metadata value reaches the page as text, so a key like `<img onerror=...>` is inert.

/** Builds an element: h("button", {class: "btn", onclick: fn}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : value);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces all children of el. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const ICONS = {
  folder: "M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z",
  file: "M6 3h8l4 4v14H6z M14 3v4h4",
  bucket: "M4 6c0-1.7 3.6-3 8-3s8 1.3 8 3-3.6 3-8 3-8-1.3-8-3z M4 6l2 13c.2 1.2 2.8 2 6 2s5.8-.8 6-2l2-13",
  upload: "M12 16V4 M7 9l5-5 5 5 M4 20h16",
  download: "M12 4v12 M7 11l5 5 5-5 M4 20h16",
  trash: "M4 7h16 M9 7V4h6v3 M6 7l1 13h10l1-13",
  share: "M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1 M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1",
  eye: "M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12z M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z",
  edit: "M4 20h4L19 9l-4-4L4 16z",
  refresh: "M20 11a8 8 0 1 0-2.3 5.7 M20 4v7h-7",
  search: "M11 4a7 7 0 1 0 0 14 7 7 0 0 0 0-14z M21 21l-5-5",
  close: "M6 6l12 12 M18 6L6 18",
  plus: "M12 5v14 M5 12h14",
  zip: "M6 3h12v18H6z M12 3v2 M12 7v2 M12 11v2 M11 15h2v3h-2z",
  copy: "M9 9h11v11H9z M5 15H4V4h11v1",
  logout: "M15 4h4v16h-4 M10 8l-4 4 4 4 M6 12h10",
  chevron: "M9 6l6 6-6 6",
};

/** An inline SVG icon (aria-hidden; the button next to it carries the label). */
export function icon(name, cls = "icon") {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  for (const d of ICONS[name].split(" M")) {
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d.startsWith("M") ? d : "M" + d);
    svg.append(path);
  }
  return svg;
}

/** A button with an icon and a label. */
export function button(label, onclick, { kind = "", iconName, title, id, disabled, type = "button" } = {}) {
  return h(
    "button",
    { type, class: `btn ${kind}`.trim(), onclick, title, id, disabled, "aria-label": title && !label ? title : undefined },
    iconName ? icon(iconName) : null,
    label ? h("span", {}, label) : null,
  );
}

export function formatBytes(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDate(value) {
  if (!value) return "—";
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

// ---- dialogs ----

/**
 * Opens a modal <dialog> (Escape closes it, focus is trapped by the browser) and resolves with
 * the value passed to close(), or null when dismissed.
 */
export function openDialog(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: wide ? "dialog wide" : "dialog", "aria-label": title });
    let result = null;
    const close = (value = null) => {
      result = value;
      dlg.close();
    };
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(result);
    });
    const body = h("div", { class: "dialog-body" });
    mount(
      dlg,
      h("header", { class: "dialog-head" }, h("h2", {}, title), button("", () => close(null), { kind: "ghost icon-only", iconName: "close", title: "Close" })),
      body,
    );
    document.body.append(dlg);
    build(body, close, dlg);
    dlg.showModal();
    const focusable = body.querySelector("[autofocus], input, select, textarea, button.primary");
    if (focusable) focusable.focus();
  });
}

/** A yes/no confirmation; resolves true when confirmed. */
export function confirmDialog(title, message, { confirmLabel = "Confirm", danger = false } = {}) {
  return openDialog(title, (body, close) => {
    mount(
      body,
      h("p", {}, message),
      h(
        "div",
        { class: "dialog-actions" },
        button("Cancel", () => close(false)),
        button(confirmLabel, () => close(true), { kind: danger ? "danger" : "primary" }),
      ),
    );
  }).then((v) => v === true);
}

/** A one-field form dialog; resolves with the entered string or null. */
export function promptDialog(title, label, { value = "", confirmLabel = "OK", hint = "", validate } = {}) {
  return openDialog(title, (body, close) => {
    const input = h("input", { type: "text", value, autofocus: true, spellcheck: "false", autocomplete: "off", id: "prompt-input" });
    const error = h("p", { class: "field-error", role: "alert" });
    const form = h(
      "form",
      {
        onsubmit: (e) => {
          e.preventDefault();
          const v = input.value.trim();
          const problem = validate ? validate(v) : v ? "" : "Required";
          if (problem) {
            error.textContent = problem;
            input.setAttribute("aria-invalid", "true");
            return;
          }
          close(v);
        },
      },
      h("label", { class: "field" }, h("span", {}, label), input),
      hint ? h("p", { class: "hint" }, hint) : null,
      error,
      h("div", { class: "dialog-actions" }, button("Cancel", () => close(null)), button(confirmLabel, null, { kind: "primary", type: "submit" })),
    );
    mount(body, form);
  });
}

// ---- banner and toasts ----

let bannerTimer = null;

/** Shows an error (or info) banner under the top bar; kind "busy" is the 503 retry notice. */
export function showBanner(message, kind = "error") {
  const el = document.getElementById("banner");
  clearTimeout(bannerTimer);
  mount(
    el,
    h("span", {}, message),
    kind === "busy" ? null : button("", hideBanner, { kind: "ghost icon-only", iconName: "close", title: "Dismiss" }),
  );
  el.className = `banner ${kind}`;
  el.hidden = false;
}

export function hideBanner(kind) {
  const el = document.getElementById("banner");
  if (kind && !el.classList.contains(kind)) return;
  el.hidden = true;
}

/** A short confirmation that fades away. */
export function toast(message) {
  const host = document.getElementById("toasts");
  const el = h("div", { class: "toast", role: "status" }, message);
  host.append(el);
  setTimeout(() => el.remove(), 3500);
}
