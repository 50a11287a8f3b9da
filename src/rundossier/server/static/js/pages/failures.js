// Failures: failure groups across runs (same fingerprint), from GET api/failures: how many runs each
// failed in the window (each count links to exactly those runs in the runs list) and on which days (a bar per day), first and last seen, the flows it hits,
// and whether someone marked it resolved (a failure after that reopens it as a regression).
// Filters (flow, class, time range) live in the address.

import { api } from "../api.js";
import { h, fill, timeEl, errorSummary, runHash, hashFor, notice, setTitle } from "../util.js";

const RANGES = [["", "All time"], ["1d", "24h"], ["7d", "7d"], ["30d", "30d"], ["90d", "90d"]];
const RANGE_DAYS = { "1d": 1, "7d": 7, "30d": 30, "90d": 90 };
const CLASSES = [
  ["killed", "Killed"],
  ["timeout", "Timeout"],
  ["upstream", "Upstream failure"],
  ["pre_work", "Failed before any work"],
  ["write_back", "Write-back failure"],
  ["rate_limited", "Rate limited"],
  ["unavailable", "External service unavailable"],
  ["data", "Data / validation error"],
  ["unknown", "Unknown"],
];
// the statuses a group counts (its runs list link filters on them)
const COUNTED = "failed,crashed";
const STATE_LABELS = { open: "Open", resolved: "Resolved", regression: "Regression" };

function filtersFrom(params) {
  return {
    flow_id: params.get("flow_id") || "",
    failure_class: params.get("failure_class") || "",
    range: RANGE_DAYS[params.get("range")] ? params.get("range") : "",
  };
}

function apiParams(f) {
  const days = RANGE_DAYS[f.range];
  return {
    flow_id: f.flow_id || null,
    failure_class: f.failure_class || null,
    since: days ? new Date(Date.now() - days * 86400e3).toISOString() : null,
    limit: 200,
  };
}

/** A bar per day (the group's trend), tallest for the busiest day; its label reads the numbers. */
function sparkline(trend, from) {
  if (!trend || !trend.length) return h("span", { class: "muted" }, "–");
  const max = Math.max(...trend, 1);
  const total = trend.reduce((a, b) => a + b, 0);
  const label = `${total} failed run${total === 1 ? "" : "s"} over ${trend.length} day${trend.length === 1 ? "" : "s"}${from ? ` from ${from}` : ""}; busiest day ${Math.max(...trend)}`;
  return h("span", { class: `spark${trend.length > 31 ? " spark-dense" : ""}`, role: "img", "aria-label": label, title: label, "data-testid": "trend" },
    trend.map((n) => {
      const bar = h("i", { class: n ? "" : "zero" });
      bar.style.height = `${n ? Math.max(12, Math.round((n / max) * 100)) : 4}%`; // CSSOM: the CSP allows no style attributes
      return bar;
    }));
}

function stateBadge(g) {
  const state = g.state || "open";
  const title = state === "regression" ? "failed again after it was marked resolved"
    : state === "resolved" ? "marked resolved; no failure since" : "not marked resolved";
  return h("span", { class: `badge gs-${state}`, title, "data-testid": "group-state" }, STATE_LABELS[state] || state);
}

export async function renderFailures(ctx, params = new URLSearchParams()) {
  const { main } = ctx;
  let f = filtersFrom(params);
  const status = h("p", { class: "muted small", "aria-live": "polite" });
  const head = h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Failures"),
    h("p", { class: "muted" }, "Failures grouped by fingerprint: the same error at the same place, across runs and flows."),
    h("p", { class: "muted small", "data-testid": "count-rule" },
      "Count: the failed or crashed runs with this failure, as the runs list shows them (each run once, whatever its tries; runs that recovered or that retention removed are not counted)."),
    status);
  const flowSel = h("select", { id: "ff-flow" }, h("option", { value: "" }, "All flows"));
  const classSel = h("select", { id: "ff-class" }, h("option", { value: "" }, "All classes"),
    CLASSES.map(([value, label]) => h("option", { value }, label)));
  const rangeButtons = RANGES.map(([value, label]) =>
    h("button", { type: "button", class: "seg", "data-range": value || "all", "aria-pressed": "false" }, label));
  const clear = h("button", { type: "button", class: "btn btn-quiet" }, "Clear filters");
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter failure groups", onsubmit: (e) => e.preventDefault() },
    h("div", { class: "field" }, h("label", { for: "ff-flow" }, "Flow"), flowSel),
    h("div", { class: "field" }, h("label", { for: "ff-class" }, "Class"), classSel),
    h("div", { class: "field" }, h("span", { class: "label", id: "ff-range-label" }, "Time range"),
      h("div", { class: "segmented", role: "group", "aria-labelledby": "ff-range-label" }, rangeButtons)),
    h("div", { class: "field field-end" }, clear));
  const body = h("div", { class: "failures-body" });
  fill(main, head, filters, body);

  function syncControls() {
    if (f.flow_id && ![...flowSel.options].some((o) => o.value === f.flow_id)) flowSel.append(h("option", { value: f.flow_id }, f.flow_id));
    flowSel.value = f.flow_id;
    classSel.value = f.failure_class;
    rangeButtons.forEach((b) => b.setAttribute("aria-pressed", String((b.dataset.range === "all" ? "" : b.dataset.range) === f.range)));
    setTitle("Failures", f.flow_id, f.failure_class);
  }

  function setFilters(changes) {
    f = { ...f, ...changes };
    const address = hashFor("/failures", f);
    if (address !== location.hash) history.pushState(null, "", address);
    syncControls();
    load();
  }

  flowSel.addEventListener("change", () => setFilters({ flow_id: flowSel.value }));
  classSel.addEventListener("change", () => setFilters({ failure_class: classSel.value }));
  rangeButtons.forEach((b) => b.addEventListener("click", () => setFilters({ range: b.dataset.range === "all" ? "" : b.dataset.range })));
  clear.addEventListener("click", () => setFilters({ flow_id: "", failure_class: "", range: "" }));
  syncControls();
  api.flows().then((data) => {
    if (!ctx.current()) return;
    for (const flow of data.items) if (![...flowSel.options].some((o) => o.value === flow)) flowSel.append(h("option", { value: flow }, flow));
    flowSel.value = f.flow_id;
  }).catch(() => {});

  async function change(g, action, button) {
    button.disabled = true;
    try {
      await (action === "resolve" ? api.resolveFailure(g.fingerprint) : api.reopenFailure(g.fingerprint));
    } catch (err) {
      button.disabled = false;
      if (!ctx.current()) return;
      body.prepend(notice("error", `Could not ${action} the group: ${err.message}`));
      return;
    }
    if (ctx.current()) load();
  }

  /** The runs list showing exactly the runs a group's count counts (of one flow, or of the flow filter). */
  function runsOf(g, data, flow = f.flow_id) {
    const window = data.counted_since ? { range: "custom", since: data.counted_since } : {};
    return hashFor("/runs", { fingerprint: g.fingerprint, status: COUNTED, flow_id: flow || "", ...window });
  }

  function row(g, data) {
    // the contract's flat shape, or a `latest: {run_id, flow_id, error}` object
    const latestId = g.latest_run_id || (g.latest && g.latest.run_id) || null;
    const error = g.error || (g.latest && g.latest.error) || null;
    const state = g.state || "open";
    const action = state === "open" ? "resolve" : "reopen";
    const button = g.state === undefined ? null
      : h("button", { type: "button", class: "btn btn-small", "data-action": action }, action === "resolve" ? "Resolve" : "Reopen");
    if (button) button.addEventListener("click", () => change(g, action, button));
    return h("tr", { "data-fingerprint": g.fingerprint, class: `group-${state}` },
      h("td", { class: "col-error", "data-label": "Error" },
        h("strong", {}, error ? errorSummary(error, 120) : "no error message"),
        h("div", { class: "small" },
          g.state !== undefined ? stateBadge(g) : null, " ",
          g.failure_class ? h("span", { class: "tag" }, g.failure_class) : null,
          g.fingerprint ? h("a", { href: runsOf(g, data), class: "mono", title: "The runs that failed with it" }, `group ${g.fingerprint}`) : null,
          g.resolved_at ? h("span", { class: "muted" }, " · resolved ", timeEl(g.resolved_at)) : null,
          button ? [" ", button] : null)),
      h("td", { class: "col-trend", "data-label": "Trend" }, sparkline(g.trend, data.trend_from)),
      h("td", { class: "num", "data-label": "Count" }, g.fingerprint && g.count != null
        ? h("a", { href: runsOf(g, data), title: "These runs in the runs list", "data-testid": "group-runs" }, String(g.count))
        : String(g.count ?? "–")),
      h("td", { class: "col-seen", "data-label": "First seen" }, timeEl(g.first_seen)),
      h("td", { class: "col-seen", "data-label": "Last seen" }, timeEl(g.last_seen)),
      h("td", { "data-label": "Flows" }, (g.flows || []).map((flow) => h("a", { class: "tag", href: runsOf(g, data, flow), title: `These runs of ${flow}` }, flow))),
      h("td", { class: "col-latest", "data-label": "Latest" }, latestId ? h("a", { href: runHash(latestId), class: "mono small" }, latestId) : "–"));
  }

  let loading = 0;
  async function load() {
    const mine = ++loading;
    status.textContent = "Loading…";
    let data;
    try {
      data = await api.failures(apiParams(f));
    } catch (err) {
      if (!ctx.current() || mine !== loading) return;
      status.textContent = "";
      fill(body, err.status === 404 && err.type === "not_found"
        ? notice("info", "Failure groups are not available on this server: it has no ", h("code", {}, "api/failures"), " endpoint (a newer rundossier adds it).")
        : notice("error", `Could not load failure groups: ${err.message}`));
      return;
    }
    if (!ctx.current() || mine !== loading) return;
    const items = data.items || [];
    const filtered = Boolean(f.flow_id || f.failure_class || f.range);
    const total = items.reduce((n, g) => n + (g.count || 0), 0);
    status.textContent = items.length
      ? `${items.length} group${items.length === 1 ? "" : "s"}, ${total.toLocaleString()} failed run${total === 1 ? "" : "s"}${data.counted_since ? ` since ${data.counted_since.slice(0, 10)} (UTC days)` : ""}`
      : "";
    if (!items.length) {
      fill(body, notice("info", filtered ? "No failures match these filters." : "No failures recorded."));
      return;
    }
    const columns = ["Error", "Trend", "Count", "First seen", "Last seen", "Flows", "Latest"];
    fill(body, h("div", { class: "table-wrap" }, h("table", { class: "failures" },
      h("thead", {}, h("tr", {}, columns.map((t) => h("th", { scope: "col", class: t === "Count" ? "num" : null }, t)))),
      h("tbody", {}, items.map((g) => row(g, data))))));
  }
  load();
}
