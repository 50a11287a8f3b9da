// Retention: each flow's effective policy, the rule it came from, and what a sweep would remove
// (GET api/retention); any other answer shape is shown as generic tables.

import { api } from "../api.js";
import { h, fill, notice, fmtTime } from "../util.js";

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function limits(p) {
  if (!p) return "–";
  const parts = [];
  parts.push(p.keep_days ? `${p.keep_days} days` : "no day limit");
  parts.push(p.keep_last ? `last ${p.keep_last} runs` : "no run limit");
  if (p.blob_days) parts.push(`traces and logs ${p.blob_days} days`);
  return parts.join(" · ");
}

function ruleCell(f) {
  if (!f.rule) return h("span", { class: "muted" }, f.rule_kind || "built-in");
  return [h("code", {}, f.rule), " ", h("span", { class: "muted" }, `(${[f.rule_kind, f.rule_source].filter(Boolean).join(", ")})`)];
}

function removeCell(w) {
  if (!w) return h("span", { class: "muted" }, "–");
  if (!w.runs && !w.runs_expired && !w.blobs) return h("span", { class: "muted" }, "nothing");
  const parts = [];
  if (w.runs) parts.push(`${w.runs} run${w.runs === 1 ? "" : "s"}`);
  if (w.runs_expired) parts.push(`${w.runs_expired} trace set${w.runs_expired === 1 ? "" : "s"} expired`);
  if (w.blobs) parts.push(`${w.blobs} blob${w.blobs === 1 ? "" : "s"}, ${bytes(w.bytes)}`);
  return parts.join(" · ");
}

/** The retention overview's own shape: rules, flows with their effective policy, the sweep preview. */
function renderOverview(data) {
  const out = [];
  const t = data.preview && data.preview.totals;
  if (t) {
    out.push(h("section", { class: "card" }, h("h2", {}, "A sweep now would remove"),
      h("p", {}, `${t.runs_removed} runs (${t.steps_removed} steps, ${t.events_removed} events), expire the traces and logs of ${t.runs_expired} more, and delete ${t.blobs_removed} blobs (${bytes(t.bytes_removed)}).`),
      h("p", { class: "muted" }, "Computed ", fmtTime(data.preview.computed_at), data.preview.complete ? "" : ` — incomplete: ${data.preview.error || "stopped early"}`,
        ". Run it with ", h("code", {}, "rundossier retention sweep"), " (", h("code", {}, "--dry-run"), " to preview).")));
  }
  const rules = data.rules || [];
  out.push(h("section", { class: "card" }, h("h2", {}, "Rules"),
    h("p", { class: "muted" }, `Without a rule a flow keeps the built-in default: ${data.builtin ? data.builtin.describe : "30 days or last 100 runs"}. An exact flow id beats the longest matching glob, which beats *.`),
    rules.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "retention-rules" },
          h("thead", {}, h("tr", {}, ["pattern", "kind", "keeps", "set by", "updated", "flows"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rules.map((r) => h("tr", {},
            h("td", {}, h("code", {}, r.flow_pattern)), h("td", {}, r.kind || "–"), h("td", {}, limits(r)),
            h("td", {}, r.source || "–"), h("td", {}, fmtTime(r.updated_at)), h("td", {}, (r.flows || []).join(", ") || h("span", { class: "muted" }, "none")))))))
      : h("p", { class: "muted" }, "No rules set. Add one with ", h("code", {}, "rundossier retention set FLOW --keep-days 30 --keep-last 100 --blob-days 7"), ".")));
  const flows = data.flows || [];
  out.push(h("section", { class: "card" }, h("h2", {}, "Flows"),
    flows.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "retention-flows" },
          h("thead", {}, h("tr", {}, ["flow", "runs", "effective policy", "from rule", "why", "a sweep would remove"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, flows.map((f) => h("tr", {},
            h("td", {}, h("a", { href: `#/runs?flow_id=${encodeURIComponent(f.flow_id)}` }, f.flow_id)),
            h("td", { class: "num" }, String(f.runs ?? "–")), h("td", {}, f.describe || limits(f.policy)),
            h("td", {}, ruleCell(f)), h("td", {}, f.reason || "–"), h("td", {}, removeCell(f.would_remove)))))))
      : h("p", { class: "muted" }, "No runs recorded yet.")));
  if (data.cap) out.push(h("p", { class: "muted" }, `Write-time cap: ${data.cap.enabled ? "on" : "off"} (RUNDOSSIER_RETENTION_CAP).`));
  return out;
}

function label(key) {
  return key.replace(/_/g, " ");
}

function cell(value) {
  if (value === null || value === undefined || value === "") return h("span", { class: "muted" }, "–");
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return h("time", { datetime: value }, fmtTime(value));
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ");
  if (typeof value === "object") return h("code", {}, JSON.stringify(value));
  return String(value);
}

/** A table from a list of objects: the union of their keys as columns, first-seen order. */
export function objectTable(rows, caption) {
  const cols = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  return h("div", { class: "table-wrap" }, h("table", { class: "generic" },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, label(c))))),
    h("tbody", {}, rows.map((r) => h("tr", {}, cols.map((c) => h("td", {}, cell(r[c]))))))));
}

/** Every list of objects in the answer becomes a table; scalar fields become a definition list. */
function render(data) {
  if (Array.isArray(data)) return data.length && typeof data[0] === "object" ? objectTable(data) : h("p", {}, cell(data));
  const out = [];
  const scalars = [];
  for (const [key, value] of Object.entries(data || {})) {
    if (Array.isArray(value) && value.length && value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
      out.push(h("section", { class: "card" }, h("h2", {}, label(key)), objectTable(value)));
    } else if (Array.isArray(value) && !value.length) {
      out.push(h("section", { class: "card" }, h("h2", {}, label(key)), h("p", { class: "muted" }, "none")));
    } else if (value && typeof value === "object" && !Array.isArray(value)) {
      out.push(h("section", { class: "card" }, h("h2", {}, label(key)),
        h("dl", { class: "kv" }, Object.entries(value).map(([k, v]) => [h("dt", {}, label(k)), h("dd", {}, cell(v))]))));
    } else {
      scalars.push([key, value]);
    }
  }
  if (scalars.length) {
    out.unshift(h("section", { class: "card" }, h("dl", { class: "kv" }, scalars.map(([k, v]) => [h("dt", {}, label(k)), h("dd", {}, cell(v))]))));
  }
  return out.length ? out : h("p", { class: "muted" }, "No retention policies set.");
}

export async function renderRetention(ctx) {
  const { main } = ctx;
  const head = h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Retention"),
    h("p", { class: "muted" }, "How long each flow's runs, traces and logs are kept. Change them with ", h("code", {}, "rundossier retention set"), "."));
  let data;
  try {
    data = await api.retention();
  } catch (err) {
    if (!ctx.current()) return;
    fill(main, head, err.status === 404 && err.type === "not_found"
      ? notice("info", "Retention is not available on this server: it has no ", h("code", {}, "api/retention"), " endpoint (a newer rundossier adds it).")
      : notice("error", `Could not load retention policies: ${err.message}`));
    return;
  }
  if (!ctx.current()) return;
  fill(main, head, data && Array.isArray(data.flows) ? renderOverview(data) : render(data));
}
