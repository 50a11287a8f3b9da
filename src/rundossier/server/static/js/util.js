// Small helpers shared by every page: DOM building, formatting, hash routes.

/** Build an element: h("a", {href: "#/runs", class: "x"}, "text", child). Text is never parsed as HTML. */
export function h(tag, attrs, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** "2026-11-22 14:03:07" in the browser's time zone, or "–". */
export function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * A <time> element with local time shown and the UTC instant as its tooltip. With `sameDayAs`
 * (another ISO time), only the time of day is shown when both fall on the same local day.
 */
export function timeEl(iso, sameDayAs = null) {
  if (!iso) return h("span", { class: "muted" }, "–");
  const full = fmtTime(iso);
  const text = sameDayAs && fmtTime(sameDayAs).slice(0, 10) === full.slice(0, 10) ? full.slice(11) : full;
  return h("time", { datetime: iso, title: `${full} (${new Date(iso).toISOString()})` }, text);
}

/** Same as the CLI: 1.5s, 1m01s, 1h01m. */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(Math.floor(s % 60))}s`;
  return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
}

/** "3 min ago", for recency. */
export function fmtAgo(iso) {
  if (!iso) return "";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function shortType(type) {
  if (!type) return "";
  const parts = String(type).split(".");
  return parts[parts.length - 1];
}

/** "KeyError: 'id'" on one line, cut to `max` characters. */
export function errorSummary(error, max = 90) {
  if (!error) return "";
  const type = shortType(error.type);
  const first = String(error.message || "").split("\n")[0];
  const text = type && first ? `${type}: ${first}` : type || first || "failed";
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

export const STATUSES = [
  "queued", "running", "paused", "success", "failed", "crashed", "cancelled", "skipped", "upstream_failed",
];
export const FAILED = new Set(["failed", "crashed", "upstream_failed"]);
/** Statuses that get an error chip even when no message was reported (upstream_failed is a consequence). */
export const ERRORED = new Set(["failed", "crashed"]);
export const TERMINAL = new Set(["success", "failed", "crashed", "cancelled", "skipped", "upstream_failed"]);

export function statusBadge(status) {
  return h("span", { class: `badge st-${status}` }, status.replace("_", " "));
}

/** Parse "#/run/ID/step/S?try=2" into {parts: ["run","ID","step","S"], params: URLSearchParams}. */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : "");
  const parts = path.split("/").filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  return { parts, params };
}

/** "#/runs?status=failed" from a path and a plain object (empty values left out). */
export function hashFor(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return `#${path}${s ? "?" + s : ""}`;
}

export function runHash(runId) {
  return `#/run/${encodeURIComponent(runId)}`;
}

export function stepHash(runId, stepId, tryNumber) {
  const base = `#/run/${encodeURIComponent(runId)}/step/${encodeURIComponent(stepId)}`;
  return tryNumber ? `${base}?try=${tryNumber}` : base;
}

/** The creation time encoded in a run id (ULID: 48-bit milliseconds in the first 10 characters). */
export function runIdTime(runId) {
  const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const body = String(runId).replace(/^run_/, "").slice(0, 10);
  let ms = 0;
  for (const c of body) {
    const v = alphabet.indexOf(c);
    if (v < 0) return null;
    ms = ms * 32 + v;
  }
  return new Date(ms);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A notice box: kind is "info", "warn" or "error". */
export function notice(kind, ...children) {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : null }, ...children);
}
