// Retention: each flow's effective policy, the rule it came from, and what a sweep would remove
// (GET api/retention); rules are set, changed and deleted here (PUT / DELETE api/retention/{pattern})
// and a sweep previewed (dry run) or run flow by flow with its progress (POST api/retention/sweep).
// Any other answer shape is shown as generic tables.

import { api, sendJSON, enc } from "../api.js";
import { h, fill, notice, fmtTime } from "../util.js";

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** A policy's limits in words; for a stored rule (`rule`), a missing limit is inherited, 0 none. */
function limits(p, rule = false) {
  if (!p) return "–";
  const word = (v, some, none) => (v ? some : rule && (v === null || v === undefined) ? "inherited" : none);
  const parts = [];
  parts.push(word(p.keep_days, `${p.keep_days} days`, "no day limit").replace(/^inherited$/, "days inherited"));
  parts.push(word(p.keep_last, `last ${p.keep_last} run${p.keep_last === 1 ? "" : "s"}`, "no run limit").replace(/^inherited$/, "run limit inherited"));
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

/** The retention overview's own shape: rules, flows with their effective policy, the sweep preview.
 * `actions` (edit, remove, sweep controls) come from the page; without them it is read-only. */
function renderOverview(data, actions = null) {
  const out = [];
  const t = data.preview && data.preview.totals;
  if (t) {
    out.push(h("section", { class: "card" }, h("h2", {}, "A sweep now would remove"),
      h("p", {}, `${t.runs_removed} runs (${t.steps_removed} steps, ${t.events_removed} events), expire the traces and logs of ${t.runs_expired} more, and delete ${t.blobs_removed} blobs (${bytes(t.bytes_removed)}).`),
      h("p", { class: "muted" }, "Computed ", fmtTime(data.preview.computed_at), data.preview.complete ? "" : ` — incomplete: ${data.preview.error || "stopped early"}`,
        ". Run it with ", h("code", {}, "rundossier retention sweep"), " (", h("code", {}, "--dry-run"), " to preview)", actions ? " or here:" : "."),
      actions ? actions.sweep : null));
  } else if (actions) out.push(h("section", { class: "card" }, h("h2", {}, "Sweep"), actions.sweep));
  if (actions) out.push(actions.form);
  const rules = data.rules || [];
  out.push(h("section", { class: "card" }, h("h2", {}, "Rules"),
    h("p", { class: "muted" }, `Without a rule a flow keeps the built-in default: ${data.builtin ? data.builtin.describe : "30 days or last 100 runs"}. An exact flow id beats the longest matching glob, which beats *.`),
    rules.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "retention-rules" },
          h("thead", {}, h("tr", {}, ["pattern", "kind", "keeps", "set by", "updated", "flows", actions ? "" : null].filter((c) => c !== null).map((c) => h("th", { scope: "col" }, c || h("span", { class: "sr-only" }, "Actions"))))),
          h("tbody", {}, rules.map((r) => h("tr", { "data-pattern": r.flow_pattern },
            h("td", {}, h("code", {}, r.flow_pattern)), h("td", {}, r.kind || "–"), h("td", {}, limits(r, true)),
            h("td", {}, r.source || "–"), h("td", {}, fmtTime(r.updated_at)), h("td", {}, (r.flows || []).join(", ") || h("span", { class: "muted" }, "none")),
            actions ? h("td", { class: "row-actions" },
              h("button", { type: "button", class: "btn btn-small", onclick: () => actions.edit(r) }, "Edit"),
              h("button", { type: "button", class: "btn btn-small btn-danger", onclick: () => actions.remove(r.flow_pattern) }, "Delete")) : null)))))
      : h("p", { class: "muted" }, "No rules set. Add one with ", h("code", {}, "rundossier retention set FLOW --keep-days 30 --keep-last 100 --blob-days 7"), ".")));
  const flows = data.flows || [];
  out.push(h("section", { class: "card" }, h("h2", {}, "Flows"),
    flows.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "retention-flows" },
          h("thead", {}, h("tr", {}, ["flow", "runs", "effective policy", "from rule", "why", "a sweep would remove", actions ? "" : null].filter((c) => c !== null).map((c) => h("th", { scope: "col" }, c || h("span", { class: "sr-only" }, "Actions"))))),
          h("tbody", {}, flows.map((f) => h("tr", { "data-flow": f.flow_id },
            h("td", {}, h("a", { href: `#/runs?flow_id=${encodeURIComponent(f.flow_id)}` }, f.flow_id)),
            h("td", { class: "num" }, String(f.runs ?? "–")), h("td", {}, f.describe || limits(f.policy)),
            h("td", {}, ruleCell(f)), h("td", {}, f.reason || "–"), h("td", {}, removeCell(f.would_remove)),
            actions ? h("td", { class: "row-actions" },
              h("button", { type: "button", class: "btn btn-small", onclick: () => actions.edit({ flow_pattern: f.flow_id, ...(f.rule === f.flow_id ? f.policy : {}) }) }, "Set policy")) : null)))))
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

const LIMITS = [
  ["keep_days", "Keep days", "delete finished runs that ended more than N days ago"],
  ["keep_last", "Keep last runs", "keep only the newest N finished runs of the flow"],
  ["blob_days", "Trace and log days", "expire traces and logs after N days (the run stays)"],
];

/** The rule editor: pattern and limits (blank: inherited from "*" or the built-in; 0: no limit). */
function ruleForm(flows, onSave) {
  const pattern = h("input", { type: "text", id: "rule-pattern", required: true, list: "rule-flows", placeholder: "flow id, glob such as finance_*, or *", autocomplete: "off" });
  const inputs = Object.fromEntries(LIMITS.map(([key]) => [key, h("input", { type: "number", id: `rule-${key}`, min: "0", step: "1", inputmode: "numeric", placeholder: "inherit" })]));
  const message = h("div", { class: "form-message", "aria-live": "polite" });
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save rule");
  const form = h("form", { class: "card rule-form", "aria-label": "Set a retention rule" },
    h("h2", {}, "Set a rule"),
    h("p", { class: "muted small" }, "Blank: inherited from the rule * (or the built-in default). 0: no limit. An existing rule with this pattern is replaced."),
    h("datalist", { id: "rule-flows" }, flows.map((f) => h("option", { value: f }))),
    h("div", { class: "filters rule-fields" },
      h("div", { class: "field" }, h("label", { for: "rule-pattern" }, "Pattern"), pattern),
      LIMITS.map(([key, label, title]) => h("div", { class: "field", title }, h("label", { for: `rule-${key}` }, label), inputs[key])),
      h("div", { class: "field field-end" }, save)),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const [key] of LIMITS) {
      const v = inputs[key].value.trim();
      body[key] = v === "" ? null : Number(v);
    }
    save.disabled = true;
    fill(message);
    try {
      await sendJSON("PUT", `api/retention/${enc(pattern.value.trim())}`, body);
      await onSave(`Rule ${pattern.value.trim()} saved.`, { flow_pattern: pattern.value.trim(), ...body });
    } catch (err) {
      fill(message, notice("error", `Could not save the rule: ${err.message}`));
    } finally {
      save.disabled = false;
    }
  });
  form.edit = (rule, { focus = true } = {}) => {
    pattern.value = rule.flow_pattern || "";
    for (const [key] of LIMITS) inputs[key].value = rule[key] === null || rule[key] === undefined ? "" : String(rule[key]);
    fill(message);
    if (!focus) return;
    form.scrollIntoView({ block: "nearest" });
    pattern.focus();
  };
  form.say = (...children) => fill(message, children);
  return form;
}

function sweepTotals(report) {
  const t = report.totals || {};
  const n = (k) => Number(t[k] || 0);
  return `${n("runs_removed")} runs (${n("steps_removed")} steps, ${n("events_removed")} events) removed, traces and logs of ${n("runs_expired")} more expired, ${n("blobs_removed")} blobs (${bytes(n("bytes_removed"))}) deleted`;
}

/** Preview (dry run) and run a sweep, one flow per request so the page can show how far it got. */
function sweepControls(flows, onDone) {
  const preview = h("button", { type: "button", class: "btn" }, "Preview (dry run)");
  const run = h("button", { type: "button", class: "btn btn-danger" }, "Run sweep now");
  const bar = h("progress", { max: "1", value: "0", hidden: true, "aria-label": "Sweep progress" });
  const status = h("p", { class: "small", "aria-live": "polite", "data-testid": "sweep-status" });
  async function sweep(dryRun) {
    preview.disabled = run.disabled = true;
    bar.hidden = false;
    bar.max = String(Math.max(1, flows.length));
    bar.value = "0";
    const sum = {};
    let failed = null;
    const list = flows.length ? flows : [null];
    for (let i = 0; i < list.length; i += 1) {
      const flow = list[i];
      status.textContent = `${dryRun ? "Previewing" : "Sweeping"} ${flow ?? "every flow"} (${i + 1} of ${list.length})…`;
      const params = new URLSearchParams({ dry_run: String(dryRun) });
      if (flow !== null) params.append("flow_id", flow);
      try {
        const report = await sendJSON("POST", `api/retention/sweep?${params}`);
        for (const [k, v] of Object.entries(report.totals || {})) sum[k] = (sum[k] || 0) + Number(v || 0);
      } catch (err) {
        failed = `${flow ?? "the sweep"}: ${err.message}`;
        break;
      }
      bar.value = String(i + 1);
    }
    preview.disabled = run.disabled = false;
    const done = `${dryRun ? "A sweep would leave" : "Swept"} ${list.length} flow${list.length === 1 ? "" : "s"}: ${sweepTotals({ totals: sum })}${dryRun ? " (dry run: nothing was removed)" : ""}.`;
    status.textContent = failed ? `Stopped at ${failed}. ${done.replace(/^Swept/, "Before that, swept")}` : done;
    status.className = failed ? "small notice-error" : "small";
    if (!dryRun) await onDone(status.textContent);
  }
  preview.addEventListener("click", () => sweep(true));
  run.addEventListener("click", () => {
    if (window.confirm(`Run a retention sweep over ${flows.length || "every"} flow${flows.length === 1 ? "" : "s"} now? Removed runs, traces and logs cannot be restored.`)) sweep(false);
  });
  return h("div", { class: "sweep-controls" }, h("div", { class: "row-actions" }, preview, run), bar, status);
}

export async function renderRetention(ctx) {
  const { main } = ctx;
  const head = h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Retention"),
    h("p", { class: "muted" }, "How long each flow's runs, traces and logs are kept: set rules here or with ", h("code", {}, "rundossier retention set"), "."));
  let sweptNote = null;
  let formNote = null;
  let formRule = null; // the rule just saved stays in the editor

  async function load() {
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
    if (!(data && Array.isArray(data.flows))) {
      fill(main, head, render(data));
      return;
    }
    const flowIds = data.flows.map((f) => f.flow_id);
    const form = ruleForm(flowIds, async (note, rule) => { formNote = note; formRule = rule; await load(); });
    const sweep = sweepControls(flowIds, async (note) => { sweptNote = note; await load(); });
    const actions = {
      form,
      sweep,
      edit: (rule) => form.edit(rule),
      remove: async (pattern) => {
        if (!window.confirm(`Delete the rule ${pattern}? Its flows fall back to the next matching rule.`)) return;
        try {
          await sendJSON("DELETE", `api/retention/${enc(pattern)}`);
        } catch (err) {
          form.say(notice("error", `Could not delete the rule ${pattern}: ${err.message}`));
          return;
        }
        formNote = `Rule ${pattern} deleted.`;
        await load();
      },
    };
    fill(main, head, sweptNote ? notice("info", sweptNote) : null, renderOverview(data, actions));
    if (formRule) form.edit(formRule, { focus: false });
    if (formNote) form.say(notice("info", formNote));
    sweptNote = null;
    formNote = null;
    formRule = null;
  }
  await load();
}
