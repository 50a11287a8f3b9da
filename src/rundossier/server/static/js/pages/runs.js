// Runs: every flow's runs, newest first, with filters, keyset pages and live updates.

import { api } from "../api.js";
import { errorChip } from "../components/chip.js";
import {
  h, fill, agoEl, fmtDuration, statusBadge, runHash, hashFor, debounce, notice, runIdTime, setTitle, STATUSES, ERRORED,
} from "../util.js";

const PAGE = 50;
const RANGES = [
  ["", "All"],
  ["6h", "6h"],
  ["12h", "12h"],
  ["24h", "24h"],
  ["3d", "3d"],
  ["7d", "7d"],
  ["custom", "Custom"],
];
const RANGE_MS = { "6h": 6 * 3600e3, "12h": 12 * 3600e3, "24h": 24 * 3600e3, "3d": 3 * 86400e3, "7d": 7 * 86400e3 };
const ANY_FAILURE = "failed,crashed,upstream_failed";

/** Filters from the hash's query (the page's shareable state). */
function filtersFrom(params) {
  return {
    q: params.get("q") || "",
    status: params.get("status") || "",
    orchestrator: params.get("orchestrator") || "",
    flow_id: params.get("flow_id") || "",
    range: params.get("range") || "",
    since: params.get("since") || "",
    until: params.get("until") || "",
    fingerprint: params.get("fingerprint") || "",
  };
}

/** [since, until] as Dates (either may be null). */
function window_(f) {
  if (f.range && RANGE_MS[f.range]) return [new Date(Date.now() - RANGE_MS[f.range]), null];
  if (f.range === "custom") {
    const since = f.since ? new Date(f.since) : null;
    const until = f.until ? new Date(f.until) : null;
    return [since && !Number.isNaN(since.getTime()) ? since : null, until && !Number.isNaN(until.getTime()) ? until : null];
  }
  return [null, null];
}

function apiParams(f, cursor) {
  const [since, until] = window_(f);
  // a range button sends its span ("6h"): the server reads it with the parser the CLI uses
  const relative = Boolean(f.range && RANGE_MS[f.range]);
  return {
    q: f.q || null,
    status: f.status || null,
    orchestrator: f.orchestrator || null,
    flow_id: f.flow_id || null,
    since: relative ? f.range : since ? since.toISOString() : null,
    until: until ? until.toISOString() : null,
    fingerprint: f.fingerprint || null,
    limit: PAGE,
    cursor,
  };
}

/** The text `q` searches, as the API does: every word in the flow id, run key, error type or message (any case). */
function searchable(run) {
  const error = run.error || {};
  return [run.flow_id, run.run_key, error.type, error.message].filter(Boolean).join("\n").toLowerCase();
}

/** Whether a run pushed by the live stream belongs in the table under these filters. */
function matches(f, run) {
  if (f.flow_id && run.flow_id !== f.flow_id) return false;
  if (f.orchestrator && run.orchestrator !== f.orchestrator) return false;
  if (f.status && !f.status.split(",").includes(run.status)) return false;
  if (f.fingerprint && run.fingerprint !== f.fingerprint) return false;
  if (f.q) {
    const text = searchable(run);
    if (!f.q.toLowerCase().split(/\s+/).filter(Boolean).slice(0, 8).every((word) => text.includes(word))) return false;
  }
  const [since, until] = window_(f);
  const created = runIdTime(run.run_id);
  if (created && since && created < since) return false;
  if (created && until && created >= until) return false;
  return true;
}

/** The step a run failed in, when it failed in one. */
function failedStep(run) {
  return run.root_step_id && run.root_step_id !== "_run" ? run.root_step_id : null;
}

function row(run) {
  const triggered = run.queued_at || run.created_at;
  const badge = statusBadge(run.status);
  if (run.status === "running") badge.classList.add("pulse");
  const step = failedStep(run);
  const errored = run.error || ERRORED.has(run.status);
  return h(
    "tr",
    { "data-run-id": run.run_id, "data-updated-at": run.updated_at, class: `row-${run.status}` },
    h("td", { class: "col-flow", "data-label": "Flow" },
      h("a", { href: hashFor("/runs", { flow_id: run.flow_id }), class: "flowlink", title: `Only runs of ${run.flow_id}` }, run.flow_id),
      h("a", { href: runHash(run.run_id), class: "mono runlink small", title: `${run.run_key} (${run.orchestrator}${run.host ? ` on ${run.host}` : ""})` }, run.run_key)),
    h("td", { class: "col-status", "data-label": "Status" }, badge),
    h("td", { class: "col-when", "data-label": "When" }, agoEl(triggered)),
    h("td", { class: "num col-duration", "data-label": "Duration" }, fmtDuration(run.duration_ms)),
    h("td", { class: "col-error", "data-label": "Failure" },
      errored && step ? h("span", { class: "failed-step small", title: `failed in step ${step}` }, h("span", { class: "muted" }, "in "), h("span", { class: "mono" }, step)) : null,
      errored ? errorChip(run) : null),
  );
}

const COLUMNS = [["Flow / run", "col-flow"], ["Status", "col-status"], ["When", "col-when"], ["Duration", "num col-duration"], ["Failure", "col-error"]];

/** What an empty first page says: how to record a first run, or that the filters match none. */
function emptyState(filtered) {
  if (filtered) return h("p", {}, "No runs match these filters. ", h("span", { class: "muted" }, "Clear them to see every run."));
  const snippet = [
    "from rundossier import Recorder",
    "",
    "recorder = Recorder()",
    'with recorder.run(flow_id="my_flow") as run:',
    '    with run.step("extract"):',
    "        ...",
  ].join("\n");
  return h("div", { class: "empty-state" },
    h("p", {}, h("strong", {}, "No runs recorded yet."), " Record a first run and it shows up here live:"),
    h("ul", {},
      h("li", {}, "Plain Python: wrap your flow in a recorder, then run it.", h("pre", { class: "snippet" }, snippet)),
      h("li", {}, "Airflow 3: install rundossier where the scheduler and workers run; its plugin records every DAG run."),
      h("li", {}, "Prefect 3: attach rundossier's state hooks to your flows and tasks."),
      h("li", {}, "Or try it with example runs: ", h("code", {}, "rundossier demo"), ".")));
}

export async function renderRuns(ctx, params) {
  const { main } = ctx;
  let f = filtersFrom(params);
  // the cursor of each page seen, the last one the current page's: in the address (`cursor`) and in
  // the history entry's state, so Back and a reload come back to the same page
  const cursorParam = params.get("cursor") || "";
  const saved = history.state && Array.isArray(history.state.cursors) ? history.state.cursors : null;
  let cursors = !cursorParam ? [null]
    : saved && saved[saved.length - 1] === cursorParam ? saved : [null, cursorParam];
  let nextCursor = null;
  const rows = new Map(); // run_id -> <tr>
  let pending = 0;

  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "runs" },
    h("caption", { class: "sr-only" }, "Runs, newest first"),
    h("colgroup", {}, COLUMNS.map(([, cls]) => h("col", { class: cls }))),
    h("thead", {}, h("tr", {}, COLUMNS.map(([t, cls]) => h("th", { scope: "col", class: cls }, t)))),
    tbody,
  );
  const status = h("p", { class: "muted small", "aria-live": "polite" });
  const newer = h("button", { type: "button", class: "btn", disabled: true }, "← Newer");
  const older = h("button", { type: "button", class: "btn", disabled: true }, "Older →");
  const pageLabel = h("span", { class: "muted" });
  const banner = h("button", { type: "button", class: "banner", hidden: true });

  // -- filters -----------------------------------------------------------------------------
  const search = h("input", { type: "search", id: "f-q", value: f.q, placeholder: "flow, run key or error text", autocomplete: "off" });
  const statusSel = h("select", { id: "f-status" },
    h("option", { value: "" }, "All statuses"),
    h("option", { value: ANY_FAILURE }, "Any failure"),
    STATUSES.map((s) => h("option", { value: s }, s.replace("_", " "))));
  const orchSel = h("select", { id: "f-orch" },
    h("option", { value: "" }, "All orchestrators"),
    ["airflow", "prefect", "python"].map((o) => h("option", { value: o }, o)));
  const flowSel = h("select", { id: "f-flow" }, h("option", { value: "" }, "All flows"));
  const rangeButtons = RANGES.map(([value, label]) =>
    h("button", { type: "button", class: "seg", "data-range": value || "all", "aria-pressed": "false" }, label));
  const sinceIn = h("input", { type: "datetime-local", id: "f-since" });
  const untilIn = h("input", { type: "datetime-local", id: "f-until" });
  const custom = h("div", { class: "custom-range", hidden: true },
    h("label", { for: "f-since" }, "From"), sinceIn, h("label", { for: "f-until" }, "to"), untilIn,
    h("button", { type: "button", class: "btn", onclick: () => applyCustom() }, "Apply"));
  const clear = h("button", { type: "button", class: "btn btn-quiet" }, "Clear filters");
  const group = h("div", { class: "field group-filter" });

  const filters = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runs", onsubmit: (e) => e.preventDefault() },
    h("div", { class: "field" }, h("label", { for: "f-q" }, "Search"), search),
    h("div", { class: "field" }, h("label", { for: "f-status" }, "Status"), statusSel),
    h("div", { class: "field" }, h("label", { for: "f-orch" }, "Orchestrator"), orchSel),
    h("div", { class: "field" }, h("label", { for: "f-flow" }, "Flow"), flowSel),
    h("div", { class: "field" }, h("span", { class: "label", id: "range-label" }, "Time range"),
      h("div", { class: "segmented", role: "group", "aria-labelledby": "range-label" }, rangeButtons)),
    group,
    h("div", { class: "field field-end" }, clear),
    custom,
  );

  function toLocalInput(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    const off = d.getTimezoneOffset() * 60000;
    return new Date(d.getTime() - off).toISOString().slice(0, 16);
  }

  function syncControls() {
    search.value = f.q;
    statusSel.value = f.status;
    if (statusSel.value !== f.status) { // a status list not in the menu: show it as an option
      statusSel.append(h("option", { value: f.status }, f.status));
      statusSel.value = f.status;
    }
    orchSel.value = f.orchestrator;
    if (f.flow_id && ![...flowSel.options].some((o) => o.value === f.flow_id)) {
      flowSel.append(h("option", { value: f.flow_id }, f.flow_id));
    }
    flowSel.value = f.flow_id;
    rangeButtons.forEach((b) => b.setAttribute("aria-pressed", String((b.dataset.range === "all" ? "" : b.dataset.range) === f.range)));
    custom.hidden = f.range !== "custom";
    fill(group, f.fingerprint ? [h("span", { class: "label" }, "Failure group"),
      h("button", { type: "button", class: "tag tag-remove", title: "Show every run", onclick: () => setFilters({ fingerprint: "" }) },
        h("span", { class: "mono" }, f.fingerprint), " ✕")] : []);
    group.hidden = !f.fingerprint;
    sinceIn.value = toLocalInput(f.since);
    untilIn.value = toLocalInput(f.until);
  }

  function setFilters(changes, push = true) {
    // a search still being typed (debounced) counts too
    f = { ...f, q: search.value.trim(), ...changes };
    if (f.range !== "custom") { f.since = ""; f.until = ""; }
    cursors = [null];
    remember(push);
    syncControls();
    load();
  }

  /** This page's filters and page in the address: a new history entry (Back returns), or this one replaced. */
  function remember(push = true) {
    const cursor = cursors.length > 1 ? cursors[cursors.length - 1] : "";
    const address = hashFor("/runs", { ...f, cursor });
    if (address === location.hash) return;
    if (push) history.pushState({ cursors }, "", address);
    else history.replaceState({ cursors }, "", address);
    setTitle("Runs", f.flow_id, f.status.includes(",") ? "any failure" : f.status.replace("_", " "));
  }

  function applyCustom() {
    const since = sinceIn.value ? new Date(sinceIn.value).toISOString() : "";
    const until = untilIn.value ? new Date(untilIn.value).toISOString() : "";
    setFilters({ range: "custom", since, until });
  }

  search.addEventListener("input", debounce(() => setFilters({ q: search.value.trim() }, false), 300));
  statusSel.addEventListener("change", () => setFilters({ status: statusSel.value }));
  orchSel.addEventListener("change", () => setFilters({ orchestrator: orchSel.value }));
  flowSel.addEventListener("change", () => setFilters({ flow_id: flowSel.value }));
  rangeButtons.forEach((b) => b.addEventListener("click", () => {
    const value = b.dataset.range === "all" ? "" : b.dataset.range;
    if (value === "custom") {
      f = { ...f, range: "custom" };
      syncControls();
      sinceIn.focus();
      return;
    }
    setFilters({ range: value });
  }));
  clear.addEventListener("click", () => setFilters({ q: "", status: "", orchestrator: "", flow_id: "", range: "", since: "", until: "", fingerprint: "" }));
  newer.addEventListener("click", () => { if (cursors.length > 1) { cursors = cursors.slice(0, -1); remember(); load(); } });
  older.addEventListener("click", () => { if (nextCursor) { cursors = [...cursors, nextCursor]; remember(); load(); } });
  banner.addEventListener("click", () => { cursors = [null]; remember(); load(); });

  fill(
    main,
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Runs"), status),
    filters,
    banner,
    h("div", { class: "table-wrap" }, table),
    h("nav", { class: "pager", "aria-label": "Pages" }, newer, pageLabel, older),
  );
  syncControls();
  setTitle("Runs", f.flow_id, f.status.includes(",") ? "any failure" : f.status.replace("_", " "));

  api.flows().then((data) => {
    if (!ctx.current()) return;
    for (const flow of data.items) {
      if (![...flowSel.options].some((o) => o.value === flow)) flowSel.append(h("option", { value: flow }, flow));
    }
    flowSel.value = f.flow_id;
  }).catch(() => {});

  let loading = 0;
  async function load() {
    const mine = ++loading;
    status.textContent = "Loading…";
    let data;
    try {
      data = await api.runs(apiParams(f, cursors[cursors.length - 1]));
    } catch (err) {
      if (!ctx.current() || mine !== loading) return;
      status.textContent = "";
      fill(tbody, h("tr", {}, h("td", { colspan: COLUMNS.length }, notice("error", `Could not load runs: ${err.message}`))));
      return;
    }
    if (!ctx.current() || mine !== loading) return;
    rows.clear();
    pending = 0;
    banner.hidden = true;
    fill(tbody);
    for (const run of data.items) {
      const tr = row(run);
      rows.set(run.run_id, tr);
      tbody.append(tr);
    }
    if (!data.items.length) {
      const filtered = Object.values(f).some(Boolean);
      tbody.append(h("tr", {}, h("td", { colspan: COLUMNS.length, class: "empty" },
        cursors.length > 1 ? "No older runs." : emptyState(filtered))));
    }
    nextCursor = data.next_cursor;
    older.disabled = !nextCursor;
    newer.disabled = cursors.length <= 1;
    pageLabel.textContent = `Page ${cursors.length}`;
    status.textContent = `${data.items.length} run${data.items.length === 1 ? "" : "s"} shown`;
  }

  function onRun(run) {
    const existing = rows.get(run.run_id);
    if (existing && existing.dataset.updatedAt === run.updated_at) return; // nothing new
    if (existing) {
      const tr = row(run);
      existing.replaceWith(tr);
      rows.set(run.run_id, tr);
      tr.classList.add("flash");
      return;
    }
    if (!matches(f, run)) return;
    if (cursors.length > 1) {
      pending += 1;
      banner.hidden = false;
      banner.textContent = `${pending} new run${pending === 1 ? "" : "s"} since this page was loaded: show the newest`;
      return;
    }
    const tr = row(run);
    tr.classList.add("flash", "new");
    rows.set(run.run_id, tr);
    const empty = tbody.querySelector("td.empty");
    if (empty) empty.parentElement.remove();
    const after = [...tbody.children].find((other) => other.dataset.runId && other.dataset.runId < run.run_id);
    tbody.insertBefore(tr, after || null);
  }

  ctx.onLeave(ctx.live.onRun(onRun));
  // after a reconnect, updates may have been missed: reload the first page
  ctx.onLeave(ctx.live.onState((state, before) => {
    if (state === "live" && before && before !== "connecting" && cursors.length === 1) load();
  }));
  await load();
}
