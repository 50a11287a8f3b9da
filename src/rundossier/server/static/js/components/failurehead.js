// The first screen of a failed run: what failed (exception type and full message, or a crash's
// reason), where (the top in-app frame: function, file:line, source line), in which step and try,
// the View Trace download, one click to the failing step's log, and the dossier's headline.

import { h, fill, shortType } from "../util.js";
import { viewTraceLink } from "./chip.js";

/** The step and try the run failed on: the dossier's, else the root step's latest try; null for a run-level failure. */
export function failingStep(run) {
  const d = run.dossier || {};
  const stepId = d.failed_step || run.root_step_id || null;
  if (!stepId || stepId === "_run") return null;
  const tries = (run.steps || []).filter((s) => s.step_id === stepId);
  if (!tries.length) return null;
  const latest = tries.reduce((a, b) => (b.try_number > a.try_number ? b : a));
  const tryNumber = d.failed_step === stepId && d.failed_try ? d.failed_try : latest.try_number;
  return { stepId, tryNumber, tries: tries.length };
}

/** The exception that ended the run (the last of the chain) and its innermost in-app frame. */
export function topFrame(doc) {
  const chain = (doc && doc.chain) || [];
  for (let i = chain.length - 1; i >= 0; i--) {
    const frames = chain[i].frames || [];
    for (let j = frames.length - 1; j >= 0; j--) {
      if (frames[j].in_app) return frames[j];
    }
  }
  return null;
}

function frameEl(frame) {
  if (!frame) return null;
  return h("div", { class: "fh-frame", "data-testid": "top-frame" },
    h("div", { class: "fh-where" },
      h("span", { class: "muted small" }, "in "),
      h("span", { class: "frame-fn" }, frame.name),
      h("span", { class: "muted small" }, " at "),
      h("span", { class: "frame-file" }, frame.filename),
      frame.lineno !== null && frame.lineno !== undefined ? h("span", { class: "frame-line" }, `:${frame.lineno}`) : null),
    frame.line ? h("pre", { class: "fh-code" }, frame.line) : null);
}

/**
 * Fill `container` with the failure head of `run`. `trace` is a promise of the trace document
 * (or null when there is none to load: `missing` then says why); `stepHref(stepId, try)` and
 * `logHref(stepId, try)` give the step's page and its log.
 */
export function failureHead(container, run, { trace, missing, traceHref, stepHref, logHref, isCurrent }) {
  const step = failingStep(run);
  const error = run.error || {};
  const crashed = run.status === "crashed";
  const type = error.type || (crashed ? "Crashed" : run.status === "upstream_failed" ? "Upstream failed" : "Failed");
  const message = error.message || (crashed
    ? "The process ended without reporting an exception (killed, out of memory, or its heartbeat was lost)."
    : "No error message was reported.");
  const headline = run.dossier && (run.dossier.headline || run.dossier.summary);
  const frameSlot = h("div", { class: "fh-frame-slot" });
  const where = step
    ? h("p", { class: "fh-step" }, "Failed in step ",
      h("a", { href: stepHref(step.stepId, step.tryNumber), class: "mono", "data-testid": "failing-step" }, step.stepId),
      step.tries > 1 || step.tryNumber > 1 ? ` · try ${step.tryNumber} of ${step.tries}` : ` · try ${step.tryNumber}`)
    : null;
  fill(container,
    headline ? h("p", { class: "fh-headline", "data-testid": "dossier-headline" }, headline) : null,
    h("div", { class: "fh-exc" },
      h("span", { class: "exc-type fh-type", title: error.type || type }, shortType(type)),
      error.type && error.type.includes(".") ? h("span", { class: "muted small" }, ` ${error.type}`) : null),
    h("pre", { class: "fh-message", "data-testid": "failure-message" }, message),
    missing ? h("p", { class: "fh-reason", "data-testid": "failure-reason" }, missing) : null,
    frameSlot,
    where,
    h("div", { class: "fh-actions" },
      missing ? null : viewTraceLink(traceHref, "View Trace", "btn-primary"),
      step ? h("a", { class: "btn", href: logHref(step.stepId, step.tryNumber), "data-testid": "open-log" }, `Log of ${step.stepId}`) : null,
      step ? h("a", { class: "btn", href: stepHref(step.stepId, step.tryNumber) }, "Open step") : null));
  if (trace) {
    trace.then((doc) => {
      if (!isCurrent()) return;
      const frame = topFrame(doc);
      if (frame) fill(frameSlot, frameEl(frame));
      else if (doc && doc.captured === false && doc.reason && !missing) {
        fill(frameSlot, h("p", { class: "fh-reason", "data-testid": "failure-reason" }, doc.reason));
      }
    }, () => {});
  }
  return container;
}
