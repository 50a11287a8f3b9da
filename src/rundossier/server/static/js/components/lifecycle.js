// A run's lifecycle: queued → running → its end state, as the run and step pages' timeline.

import { h, timeEl, FAILED, TERMINAL } from "../util.js";

/**
 * The stages of a run or step as [{name, state, at}], state one of done, current, failed, future.
 * Only stages that happened (or may still happen) are listed: a run skipped before it started
 * shows queued → skipped, never an invented "running".
 */
export function lifecycle(item) {
  const status = item.status;
  const stages = [];
  const started = Boolean(item.started_at) || ["running", "paused"].includes(status) || (TERMINAL.has(status) && !["skipped", "upstream_failed"].includes(status));
  const queuedAt = item.queued_at || item.created_at;
  if (queuedAt || status === "queued") {
    stages.push({ name: "queued", at: queuedAt, state: status === "queued" ? "current" : "done" });
  }
  if (status === "queued") {
    stages.push({ name: "running", state: "future" }, { name: "finished", state: "future" });
    return stages;
  }
  if (started) {
    stages.push({ name: "running", at: item.started_at, state: status === "running" ? "current" : "done" });
  }
  if (status === "running") {
    stages.push({ name: "finished", state: "future" });
  } else if (status === "paused") {
    stages.push({ name: "paused", state: "current" }, { name: "finished", state: "future" });
  } else {
    stages.push({ name: status, at: item.finished_at, state: FAILED.has(status) ? "failed" : status === "cancelled" ? "cancelled" : "done", end: true });
  }
  return stages;
}

/** The run detail's timeline: done steps green, current blue and animated, failed red, future grey. */
export function timeline(item) {
  const stages = lifecycle(item);
  return h(
    "ol",
    { class: "timeline", "aria-label": "Lifecycle" },
    stages.map((stage) =>
      h(
        "li",
        { class: `tl tl-${stage.state}`, "aria-current": stage.state === "current" ? "step" : null },
        h("span", { class: "tl-dot", "aria-hidden": "true" },
          stage.state === "done" ? "✓" : stage.state === "failed" ? "✕" : stage.state === "cancelled" ? "–" : ""),
        h("span", { class: "tl-name" }, stage.name.replace("_", " ")),
        h("span", { class: "tl-time" }, stage.at ? timeEl(stage.at) : stage.state === "future" ? "not yet" : ""),
      ),
    ),
  );
}
