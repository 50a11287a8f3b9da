// Run detail: dossier, details card, lifecycle timeline with the artifacts beside it, steps with
// tries, dependency graph, data-flow graph, failure panel (chain of exceptions, download), events.

import { api, runTraceHref, runTraceDocHref, stepTraceHref } from "../api.js";
import { artifactCards } from "../components/artifacts.js";
import { errorChip, traceMissingReason } from "../components/chip.js";
import { dossierPanel } from "../components/dossier.js";
import { failureHead } from "../components/failurehead.js";
import { dependencyGraph } from "../components/graph.js";
import { timeline } from "../components/lifecycle.js";
import { tracePanel } from "../components/tracepanel.js";
import { orchestratorLinks, orchestratorUrls } from "../orchestrator.js";
import {
  h, fill, timeEl, fmtDuration, statusBadge, stepHash, logHash, hashFor, notice, setTitle, FAILED, ERRORED,
} from "../util.js";

export function detailsCard(run) {
  const rows = [
    ["Flow", h("a", { href: hashFor("/runs", { flow_id: run.flow_id }) }, run.flow_id)],
    ["Run key", h("span", { class: "mono wrap" }, run.run_key)],
    ["Run id", h("span", { class: "mono" }, run.run_id)],
    ["Orchestrator", run.orchestrator],
    ["Host", run.host || "–"],
    run.agent ? ["Agent", run.agent] : null,
    ["Try", String(run.attempt)],
    ["Triggered", timeEl(run.queued_at || run.created_at)],
    ["Started", timeEl(run.started_at)],
    ["Finished", timeEl(run.finished_at)],
    ["Duration", fmtDuration(run.duration_ms)],
    run.code_version ? ["Code version", h("span", { class: "mono" }, run.code_version)] : null,
    run.trace_id ? ["Trace", traceLink(run)] : null,
    run.parent_run_id ? ["Parent run", h("a", { href: `#/run/${encodeURIComponent(run.parent_run_id)}`, class: "mono" }, run.parent_run_id)] : null,
    (run.children || []).length ? ["Subflow runs", h("ul", { class: "children" }, run.children.map((c) =>
      h("li", {}, h("a", { href: `#/run/${encodeURIComponent(c.run_id)}`, title: c.run_id }, c.flow_id), " ", statusBadge(c.status))))] : null,
    Object.keys(run.tags || {}).length ? ["Tags", Object.entries(run.tags).map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`))] : null,
  ].filter(Boolean);
  return h("section", { class: "card details", "aria-label": "Details" },
    h("h2", {}, "Details"),
    h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

// the OpenTelemetry trace the run belongs to, linked to the trace viewer when the server has a template
function traceLink(run) {
  const id = h("span", { class: "mono", title: "OpenTelemetry trace id" }, run.trace_id);
  const url = run.trace_viewer_url;
  if (!url || !/^https?:\/\//i.test(url)) return id;
  return h("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "trace-link" }, id);
}

// A big run's page draws its first screen at once and the rest in slices: rows of the steps table
// CHUNK at a time between frames, the graph when it nears the viewport, the latest events first.
const CHUNK = 100;
const BIG = 200;

/** Append `make(item)` for each of `items` to `parent` CHUNK at a time, one slice per task, while `live()`. */
function appendInSlices(parent, items, make, live) {
  let i = 0;
  const slice = () => {
    if (!live()) return;
    const end = Math.min(items.length, i + CHUNK);
    const frag = document.createDocumentFragment();
    for (; i < end; i++) frag.append(make(items[i]));
    parent.append(frag);
    if (i < items.length) setTimeout(slice, 0);
  };
  slice();
}

function stepsTable(run, live) {
  const byStep = new Map();
  for (const s of run.steps) {
    if (!byStep.has(s.step_id)) byStep.set(s.step_id, []);
    byStep.get(s.step_id).push(s);
  }
  const row = ([stepId, tries]) => {
    tries.sort((a, b) => a.try_number - b.try_number);
    const latest = tries[tries.length - 1];
    const logLines = (latest.log_lines.stdout || 0) + (latest.log_lines.stderr || 0);
    return h(
      "tr",
      { class: stepId === run.root_step_id ? "root-step" : null },
      h("td", {}, h("a", { href: stepHash(run.run_id, stepId, latest.try_number), class: "mono" }, stepId),
        stepId === run.root_step_id ? h("span", { class: "tag tag-root" }, "root cause") : null),
      h("td", {}, statusBadge(latest.status)),
      h("td", { class: "tries" }, tries.map((t) =>
        h("a", { href: stepHash(run.run_id, stepId, t.try_number), class: `try st-${t.status}`, title: `try ${t.try_number}: ${t.status}` },
          `${t.try_number}`))),
      h("td", {}, timeEl(latest.started_at)),
      h("td", { class: "num" }, fmtDuration(latest.duration_ms)),
      h("td", { class: "num" }, latest.has_log ? logLines.toLocaleString() : latest.status === "running" ? "live" : "–"),
      h("td", {}, latest.error || ERRORED.has(latest.status) ? errorChip({ ...run, ...latest, run_id: run.run_id, flow_id: run.flow_id, error: latest.error }, {
        traceHref: stepTraceHref(run.run_id, stepId, latest.try_number),
        openHref: stepHash(run.run_id, stepId, latest.try_number),
        openLabel: "Open step",
      }) : null),
    );
  };
  const body = h("tbody", {});
  const entries = [...byStep];
  if (!entries.length) body.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No steps recorded.")));
  else appendInSlices(body, entries, row, live);
  return h("table", { class: "steps" },
    h("thead", {}, h("tr", {}, ["Step", "Status", "Tries", "Started", "Duration", "Log lines", "Error"].map((t) => h("th", { scope: "col", class: ["Duration", "Log lines"].includes(t) ? "num" : null }, t)))),
    body);
}

/** The dependency graph; for a big run, drawn only when its card nears the viewport. */
function graphCard(run, live) {
  const card = h("section", { class: "card below", "aria-label": "Dependency graph" }, h("h2", {}, "Dependency graph"));
  const ids = new Set(run.steps.map((s) => s.step_id));
  if (ids.size <= BIG || typeof IntersectionObserver === "undefined") {
    card.append(dependencyGraph(run.run_id, run.steps));
    return card;
  }
  const waiting = h("p", { class: "muted" }, `The graph of ${ids.size.toLocaleString()} steps is drawn when you scroll to it.`);
  card.append(waiting);
  const seen = new IntersectionObserver((entries) => {
    if (!entries.some((e) => e.isIntersecting)) return;
    seen.disconnect();
    if (live()) waiting.replaceWith(dependencyGraph(run.run_id, run.steps));
  }, { rootMargin: "600px 0px" });
  seen.observe(card);
  return card;
}

/** The run's ledger; a long one shows its latest BIG entries, the rest one click away. */
function eventsCard(run) {
  const item = (e) => h("li", {}, timeEl(e.ts), " ", h("span", { class: "tag" }, e.kind), " ",
    e.step_id ? h("span", { class: "mono" }, `${e.step_id} `) : null, e.summary);
  const list = h("ol", { class: "events" });
  const hidden = Math.max(0, run.events.length - BIG);
  list.append(...run.events.slice(hidden).map(item));
  let more = null;
  if (hidden) {
    more = h("button", { type: "button", class: "btn" }, `Show the ${hidden.toLocaleString()} earlier events`);
    more.addEventListener("click", () => {
      list.prepend(...run.events.slice(0, hidden).map(item));
      more.remove();
    });
  }
  return h("section", { class: "card below", "aria-label": "Events" }, h("h2", {}, "Events"), more, list);
}

function fingerprintOf(run) {
  return JSON.stringify([run.status, run.updated_at, run.steps.map((s) => [s.step_id, s.try_number, s.status, s.finished_at])]);
}

export async function renderRun(ctx, runId) {
  const { main } = ctx;
  let run = null;
  let timer = null;
  let draws = 0;
  const known = await orchestratorUrls();

  async function refresh() {
    let next;
    try {
      next = await api.run(runId);
    } catch (err) {
      if (!ctx.current()) return;
      if (!run) {
        fill(main, h("h1", {}, "Run"), notice(err.status === 404 ? "warn" : "error", err.message),
          h("p", {}, h("a", { href: "#/runs" }, "← All runs")));
      }
      return;
    }
    if (!ctx.current()) return;
    const changed = !run || fingerprintOf(next) !== fingerprintOf(run);
    run = next;
    if (changed) draw(run);
    clearTimeout(timer);
    if (run.status === "running" || run.status === "queued") timer = setTimeout(refresh, 5000);
  }

  function draw(run) {
    const drawn = ++draws;
    const live = () => ctx.current() && drawn === draws; // a later draw (a refresh) replaces this one
    const failed = FAILED.has(run.status);
    const missing = traceMissingReason(run);
    setTitle(run.flow_id, run.status.replace("_", " "));
    const head = h("div", { class: "page-head" },
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/runs" }, "Runs"), " / ",
        h("a", { href: hashFor("/runs", { flow_id: run.flow_id }) }, run.flow_id)),
      h("div", { class: "title-row" },
        h("h1", { tabindex: "-1" }, run.flow_id, h("span", { class: "muted title-key mono" }, ` ${run.run_key}`)),
        statusBadge(run.status),
        orchestratorLinks(known, run)));
    const showFailure = failed || Boolean(run.error);
    // the trace document, loaded once for the head (top frame) and the stack below it
    const trace = showFailure && !missing ? api.runTraceDoc(run.run_id) : null;
    if (trace) trace.catch(() => {}); // the stack panel reports a failure to load
    const headEl = failed ? failureHead(h("section", { class: "card failure-head", "aria-label": "What failed", "data-testid": "failure-head" }), run, {
      trace,
      missing,
      traceHref: runTraceHref(run.run_id),
      stepHref: (stepId, tryNumber) => stepHash(run.run_id, stepId, tryNumber),
      logHref: (stepId, tryNumber) => logHash(run.run_id, stepId, tryNumber),
      isCurrent: ctx.current,
    }) : null;
    const failure = h("section", { class: "card failure", "aria-label": "Stack trace" });
    const artifacts = artifactCards(run, ctx.current);
    fill(
      main,
      head,
      headEl,
      showFailure ? failure : null,
      run.dossier ? dossierPanel(run.dossier, run) : null,
      h("div", { class: "grid-2" }, detailsCard(run),
        h("div", { class: "column" },
          h("section", { class: "card", "aria-label": "Lifecycle" }, h("h2", {}, "Lifecycle"), timeline(run),
            run.error && !failed ? h("p", { class: "run-error" }, h("strong", {}, "Error: "), run.error.type ? `${run.error.type}: ` : "",
              (run.error.message || "").split("\n")[0]) : null),
          artifacts.card)),
      h("section", { class: "card below", "aria-label": "Steps" }, h("h2", {}, "Steps"), h("div", { class: "table-wrap" }, stepsTable(run, live))),
      graphCard(run, live),
      artifacts.flow,
      run.events.length ? eventsCard(run) : null,
    );
    if (showFailure) {
      if (missing) {
        fill(failure, h("h2", {}, "Stack trace"), notice(run.blobs_expired ? "warn" : "info", missing));
      } else {
        tracePanel(failure, {
          load: () => trace,
          downloadHref: runTraceHref(run.run_id),
          jsonHref: runTraceDocHref(run.run_id),
          jsonName: `${run.run_id}_trace.json`,
          title: "Stack trace",
          summary: !failed, // a failed run's head already says it
          isCurrent: ctx.current,
        });
      }
    }
  }

  // live updates of this run (state changes) trigger a refresh; a running run is also polled
  ctx.onLeave(ctx.live.onRun((r) => {
    if (run && r.run_id === runId && (r.status !== run.status || r.updated_at !== run.updated_at)) {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    }
  }));
  ctx.onLeave(() => clearTimeout(timer));
  await refresh();
}
