// One step try: its error, the trace panel with View Trace, and the log viewer. A failed try shows
// its failure first (Airflow's Trace tab lands here), with the command that re-runs the step.

import { api, stepTraceHref, stepTraceDocHref } from "../api.js";
import { traceMissingReason } from "../components/chip.js";
import { actionList } from "../components/dossier.js";
import { timeline } from "../components/lifecycle.js";
import { logViewer, firstPageQuery } from "../components/logviewer.js";
import { tracePanel } from "../components/tracepanel.js";
import { orchestratorLinks, orchestratorUrls } from "../orchestrator.js";
import {
  h, fill, timeEl, fmtDuration, statusBadge, stepHash, runHash, hashFor, notice, errorSummary, setTitle, ERRORED,
} from "../util.js";

/** How to re-run this step, from the run's dossier, when it is the step the run failed on. */
function rerunEl(run, step) {
  const d = run.dossier;
  if (!d || d.failed_step !== step.step_id || !Array.isArray(d.actions)) return null;
  const retry = d.actions.filter((a) => a.kind === "retry");
  if (!retry.length) return null;
  return h("div", { class: "rerun" }, h("h3", {}, "Re-run"), actionList(retry, run.run_id));
}

/** On a try that did not fail: the earlier tries of the step that did, with a link to each. */
function earlierFailures(run, tries, step) {
  const failed = tries.filter((t) => t.try_number < step.try_number && (t.error || ERRORED.has(t.status)));
  if (!failed.length) return null;
  return notice("info",
    failed.length === 1 ? "An earlier try failed: " : `${failed.length} earlier tries failed: `,
    failed.map((t, i) => [i ? "; " : "", h("a", { href: stepHash(run.run_id, step.step_id, t.try_number) }, `try ${t.try_number}`),
      ` (${t.error ? errorSummary(t.error, 80) : t.status})`]));
}

export async function renderStep(ctx, runId, stepId, params, { ended = false } = {}) {
  const { main } = ctx;
  const wanted = Number.parseInt(params.get("try") || "", 10);
  const tryWanted = Number.isNaN(wanted) ? null : wanted;
  // the address names the step (and maybe the try): ask for the log's first page beside the run, not after it
  const firstPage = api.logs(runId, stepId, firstPageQuery(tryWanted));
  firstPage.catch(() => {}); // awaited by the viewer; a failure shows there (or the run's does)
  const known = orchestratorUrls();
  let run;
  try {
    run = await api.run(runId);
  } catch (err) {
    if (!ctx.current()) return;
    fill(main, h("h1", {}, "Step"), notice(err.status === 404 ? "warn" : "error", err.message), h("p", {}, h("a", { href: "#/runs" }, "← All runs")));
    return;
  }
  if (!ctx.current()) return;
  const tries = run.steps.filter((s) => s.step_id === stepId).sort((a, b) => a.try_number - b.try_number);
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
    h("a", { href: "#/runs" }, "Runs"), " / ",
    h("a", { href: hashFor("/runs", { flow_id: run.flow_id }) }, run.flow_id), " / ",
    h("a", { href: runHash(run.run_id), class: "mono" }, run.run_key));
  if (!tries.length) {
    fill(main, crumbs, h("h1", {}, stepId), notice("warn", `Run ${run.run_id} has no step ${JSON.stringify(stepId)} recorded.`));
    return;
  }
  const step = tries.find((t) => t.try_number === wanted) || tries[tries.length - 1];
  // without a try the server's log is the latest try's, the one shown
  const prefetched = tryWanted === null || tryWanted === step.try_number ? firstPage : null;
  setTitle(step.step_id, run.flow_id, step.status.replace("_", " "));
  const asRun = { ...step, run_id: run.run_id, flow_id: run.flow_id, blobs_expired: run.blobs_expired, blobs_expired_at: run.blobs_expired_at };
  const missing = step.error ? traceMissingReason(asRun) : null;
  const failure = h("section", { class: "card failure", "aria-label": "Failure" });
  const urls = await known;
  if (!ctx.current()) return;

  fill(
    main,
    h("div", { class: "page-head" }, crumbs,
      h("div", { class: "title-row" }, h("h1", { tabindex: "-1", class: "mono" }, step.step_id), statusBadge(step.status),
        tries.length > 1 ? h("nav", { class: "try-switch", "aria-label": "Tries" }, "Try ",
          tries.map((t) => h("a", {
            href: stepHash(run.run_id, stepId, t.try_number),
            class: `try st-${t.status}`,
            "aria-current": t.try_number === step.try_number ? "page" : null,
            title: `try ${t.try_number}: ${t.status}`,
          }, String(t.try_number)))) : null,
        orchestratorLinks(urls, run, step))),
    step.error ? failure : earlierFailures(run, tries, step),
    h("div", { class: "grid-2" },
      h("section", { class: "card details", "aria-label": "Details" }, h("h2", {}, "Details"),
        h("dl", { class: "kv" },
          [["Try", `${step.try_number} of ${tries.length}`], ["Host", step.host || run.host || "–"],
            ["Started", timeEl(step.started_at)], ["Finished", timeEl(step.finished_at)], ["Duration", fmtDuration(step.duration_ms)],
            ["First output", timeEl(step.first_output_at)], ["Last output", timeEl(step.last_output_at)],
            ["Upstream", step.upstream.length ? step.upstream.map((u) => h("a", { href: stepHash(run.run_id, u), class: "mono tag" }, u)) : "none"],
          ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
      h("section", { class: "card", "aria-label": "Lifecycle" }, h("h2", {}, "Lifecycle"), timeline(step),
        step.error ? h("p", { class: "run-error" }, h("strong", {}, "Error: "), step.error.type ? `${step.error.type}: ` : "", (step.error.message || "").split("\n")[0]) : null)),
    h("section", { class: "card log-card", "aria-label": "Log", id: "log" }, h("h2", {}, `Log of ${step.step_id}, try ${step.try_number}`),
      ended ? notice("info", `The step ended (${step.status}) while you followed it; this is its stored log.`) : null,
      logViewer(ctx, {
        runId: run.run_id,
        stepId: step.step_id,
        tryNumber: step.try_number,
        running: step.status === "running" || step.status === "queued",
        firstPage: prefetched,
        onEnded: () => setTimeout(() => { if (ctx.current()) renderStep(ctx, runId, stepId, params, { ended: true }); }, 1500),
      })),
  );
  // from the run's "Log of …" button: the log in view, the failure above it one scroll away
  const toLog = params.get("view") === "log" ? () => {
    if (!ctx.current()) return;
    const logCard = main.querySelector("#log");
    logCard.scrollIntoView({ block: "start" });
    logCard.querySelector(".log-scroll").focus({ preventScroll: true });
  } : () => {};
  toLog();
  if (step.error) {
    const rerun = rerunEl(run, step);
    if (missing) {
      fill(failure, h("h2", {}, "Failure"), notice(run.blobs_expired ? "warn" : "info", missing), rerun);
    } else {
      await tracePanel(failure, {
        load: () => api.stepTraceDoc(run.run_id, step.step_id, step.try_number),
        downloadHref: stepTraceHref(run.run_id, step.step_id, step.try_number),
        jsonHref: stepTraceDocHref(run.run_id, step.step_id, step.try_number),
        jsonName: `${run.run_id}_trace.json`,
        isCurrent: ctx.current,
      });
      if (rerun && ctx.current()) failure.append(rerun);
    }
  }
  toLog(); // again: the trace above the log has loaded and moved it
}
