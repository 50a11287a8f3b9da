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

// -- the one time-zone rule: local time with its offset, or UTC; the user's choice, kept in localStorage
const TZ_KEY = "rundossier.tz";

function readTz() {
  try {
    return localStorage.getItem(TZ_KEY) === "utc" ? "utc" : "local";
  } catch {
    return "local"; // storage refused (a sandboxed frame): the default
  }
}

let tzMode = readTz();

/** "local" or "utc". */
export function timeZoneMode() {
  return tzMode;
}

export function setTimeZoneMode(mode) {
  tzMode = mode === "utc" ? "utc" : "local";
  try { localStorage.setItem(TZ_KEY, tzMode); } catch { /* not kept: this page only */ }
}

/** "UTC" or the browser's offset now, "UTC+01:00". */
export function zoneLabel(date = new Date()) {
  if (tzMode === "utc") return "UTC";
  const off = -date.getTimezoneOffset();
  const sign = off < 0 ? "-" : "+";
  const a = Math.abs(off);
  return `UTC${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** "2026-11-22 14:03:07" in the chosen time zone (local or UTC), or "–". */
export function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  if (tzMode === "utc") return d.toISOString().slice(0, 19).replace("T", " ");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The full time with its zone, for tooltips: "2026-11-22 14:03:07 UTC+01:00". */
export function fmtTimeZoned(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${fmtTime(iso)} ${zoneLabel(d)}`;
}

/**
 * A <time> element with the time in the chosen zone shown and the zoned time as its tooltip. With
 * `sameDayAs` (another ISO time), only the time of day is shown when both fall on the same day.
 */
export function timeEl(iso, sameDayAs = null) {
  if (!iso) return h("span", { class: "muted" }, "–");
  const full = fmtTime(iso);
  const text = sameDayAs && fmtTime(sameDayAs).slice(0, 10) === full.slice(0, 10) ? full.slice(11) : full;
  return h("time", { datetime: iso, title: fmtTimeZoned(iso) }, text);
}

/** A <time> showing "3 min ago", the absolute zoned time on hover (where a person scans a list). */
export function agoEl(iso) {
  if (!iso) return h("span", { class: "muted" }, "–");
  return h("time", { datetime: iso, title: fmtTimeZoned(iso), class: "ago" }, fmtAgo(iso));
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
  if (Number.isNaN(s)) return "";
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

/** The step's page scrolled to its log. */
export function logHash(runId, stepId, tryNumber) {
  return `${stepHash(runId, stepId, tryNumber)}${tryNumber ? "&" : "?"}view=log`;
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

/** The tab's title: "acc_nightly · failed · rundossier". */
export function setTitle(...parts) {
  document.title = [...parts.filter(Boolean), "rundossier"].join(" · ");
}
