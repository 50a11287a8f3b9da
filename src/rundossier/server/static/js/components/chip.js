// The error chip of a failed run and its popover: full message and a View Trace download link.
// Hover, focus or click opens it; Escape, leaving or clicking elsewhere closes it.

import { runTraceHref } from "../api.js";
import { h, errorSummary, shortType, runHash, fmtTime, FAILED } from "../util.js";

let openChip = null; // only one popover at a time
let seq = 0;

/** What stands in for the trace link when there is none to download (evidence, not a blank). */
export function traceMissingReason(run) {
  if (run.blobs_expired) {
    const day = run.blobs_expired_at ? run.blobs_expired_at.slice(0, 10) : "an earlier sweep";
    return `trace expired by retention on ${day}`;
  }
  if (run.spooled) return "the trace is waiting in the local spool of the host that recorded it";
  const hasTrace = (run.error && run.error.trace_url) || (run.trace_bytes !== null && run.trace_bytes !== undefined);
  if (!hasTrace) {
    if (run.status === "crashed") return "no trace captured: the process was killed or died before it could report";
    if (run.error && !run.error.type) return "no trace captured: the failure was reported as a message only";
    return "no trace captured";
  }
  return null;
}

/** The <a download> for a run's trace (the contract's data-testid="view-trace"). */
export function viewTraceLink(href, label = "View Trace", extraClass = "") {
  return h(
    "a",
    { class: `btn btn-trace ${extraClass}`.trim(), "data-testid": "view-trace", href, download: "" },
    h("svg:svg", { width: 14, height: 14, viewBox: "0 0 24 24", "aria-hidden": "true" },
      h("svg:path", { fill: "currentColor", d: "M11 3h2v10.2l3.6-3.6 1.4 1.4-6 6-6-6 1.4-1.4 3.6 3.6zM4 19h16v2H4z" })),
    label,
  );
}

/**
 * The chip for `run` (or a step shaped like one: status, error, flow_id, finished_at...).
 * `traceHref` and `openHref` default to the run's trace and the run's page.
 */
export function errorChip(run, { traceHref, openHref, openLabel = "Open run" } = {}) {
  const id = `popover-${++seq}`;
  const failed = FAILED.has(run.status);
  // the whole first line: CSS cuts it with an ellipsis where the column ends; the title holds it all
  const label = run.error ? errorSummary(run.error, 300) : `${run.status.replace("_", " ")}: no error message reported`;
  const chip = h(
    "button",
    {
      type: "button",
      class: failed || run.status === "running" ? "chip chip-error" : "chip chip-recovered",
      "data-testid": "error-chip",
      "aria-expanded": "false",
      "aria-controls": id,
      "aria-haspopup": "dialog",
      title: failed ? label : `A try failed; the ${run.step_id ? "step" : "run"} ended ${run.status}`,
    },
    label,
  );
  const missing = traceMissingReason(run);
  const popover = h(
    "div",
    { class: "popover", id, role: "dialog", "aria-label": `Error of run ${run.run_id}`, "data-testid": "error-popover", hidden: true },
    h("div", { class: "popover-head" }, h("strong", {}, shortType(run.error && run.error.type) || "Error"),
      h("span", { class: "muted small" }, ` ${run.flow_id} · ${fmtTime(run.finished_at || run.started_at)}`)),
    h("pre", { class: "popover-message" }, (run.error && run.error.message) ||
      "No error message was reported for this failure. The trace, when there is one, says what is known."),
    !failed && run.error ? h("p", { class: "small muted" }, `A try failed, then the ${run.step_id ? "step" : "run"} ended ${run.status}.`) : null,
    h(
      "div",
      { class: "popover-actions" },
      missing ? h("span", { class: "missing small" }, missing) : viewTraceLink(traceHref || runTraceHref(run.run_id)),
      h("a", { class: "btn", href: openHref || runHash(run.run_id) }, openLabel),
    ),
  );
  const wrap = h("span", { class: "chip-wrap" }, chip, popover);
  let pinned = false;
  let leaveTimer = null;

  // beside the chip when there is room on its left (chips sit in the last column: the popover then
  // covers the row, not the chips below), else below it (or above, near the bottom of the window)
  const place = () => {
    const r = chip.getBoundingClientRect();
    const width = Math.min(520, window.innerWidth - 16);
    popover.style.width = `${width}px`;
    const height = popover.offsetHeight || 200;
    if (r.left - width - 8 >= 8) {
      popover.style.left = `${r.left - width - 8}px`;
      popover.style.top = `${Math.max(8, Math.min(r.top - 8, window.innerHeight - height - 8))}px`;
      return;
    }
    const left = Math.max(8, Math.min(r.left, window.innerWidth - width - 8));
    popover.style.left = `${left}px`;
    const below = r.bottom + 4;
    popover.style.top = below + height > window.innerHeight - 8 && r.top - height - 4 > 8
      ? `${r.top - height - 4}px`
      : `${below}px`;
  };
  const open = () => {
    clearTimeout(leaveTimer);
    if (openChip && openChip !== api) openChip.close();
    openChip = api;
    if (!popover.hidden) return;
    popover.hidden = false;
    chip.setAttribute("aria-expanded", "true");
    place();
  };
  const close = () => {
    clearTimeout(leaveTimer);
    pinned = false;
    popover.hidden = true;
    chip.setAttribute("aria-expanded", "false");
    if (openChip === api) openChip = null;
  };
  // when the page or the table scrolls, the popover follows its chip, or closes once the chip is out of view
  const follow = () => {
    const r = chip.getBoundingClientRect();
    if (r.bottom < 0 || r.top > window.innerHeight || r.right < 0 || r.left > window.innerWidth) close();
    else place();
  };
  const api = { close, follow };

  wrap.addEventListener("mouseenter", open);
  wrap.addEventListener("mouseleave", () => {
    if (pinned) return;
    leaveTimer = setTimeout(close, 250);
  });
  chip.addEventListener("focus", open);
  wrap.addEventListener("focusout", (event) => {
    if (!wrap.contains(event.relatedTarget) && !pinned) close();
  });
  chip.addEventListener("click", (event) => {
    event.stopPropagation();
    if (pinned) { close(); return; }
    open();
    pinned = true;
  });
  wrap.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !popover.hidden) {
      event.stopPropagation();
      close();
      chip.focus({ preventScroll: true });
      // focusing the chip opens it again: keep it closed until the next focus
      queueMicrotask(close);
    }
  });
  return wrap;
}

document.addEventListener("click", (event) => {
  if (openChip && !(event.target instanceof Node && event.target.closest && event.target.closest(".chip-wrap"))) {
    openChip.close();
  }
});
window.addEventListener("scroll", (event) => {
  const inside = event.target instanceof Element && event.target.closest(".popover");
  if (openChip && !inside) openChip.follow();
}, { passive: true, capture: true });
window.addEventListener("hashchange", () => { if (openChip) openChip.close(); });
