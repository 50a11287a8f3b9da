// Links from a run or a step to its orchestrator's own pages: Airflow's DAG run, task instance
// and task log. Shown when the server says where that UI is (`api/about`: inside Airflow its root
// is "../" from this page). They carry target="_top": in Airflow's tab they open in the Airflow
// window, not inside the frame (see frame.js).

import { api } from "./api.js";
import { h } from "./util.js";

let urls = null;

/** {orchestrator: UI root} from the server, fetched once; {} when it cannot say. */
export function orchestratorUrls() {
  if (!urls) urls = api.about().then((about) => about.orchestrator_urls || {}, () => ({}));
  return urls;
}

const enc = encodeURIComponent;

/** The Airflow UI root as an absolute URL ending in "/", or null when it is not known. */
function airflowRoot(known, run) {
  const base = run.orchestrator === "airflow" ? known.airflow : null;
  if (!base) return null;
  const url = new URL(base, document.baseURI).href;
  return url.endsWith("/") ? url : `${url}/`;
}

/** Airflow's page of the DAG run, or null. */
export function airflowRunUrl(known, run) {
  const root = airflowRoot(known, run);
  return root && `${root}dags/${enc(run.flow_id)}/runs/${enc(run.run_key)}`;
}

/** Airflow's page of the task instance of `step` (its Logs tab), or null. */
export function airflowTaskUrl(known, run, step) {
  const dagRun = airflowRunUrl(known, run);
  if (!dagRun) return null;
  const task = step.task_id || String(step.step_id).replace(/\[\d+\]$/, "");
  const mapped = step.map_index !== null && step.map_index !== undefined && step.map_index >= 0 ? `/mapped/${step.map_index}` : "";
  return `${dagRun}/tasks/${enc(task)}${mapped}`;
}

/** Airflow's log of one try of `step`, or null. */
export function airflowLogUrl(known, run, step) {
  const task = airflowTaskUrl(known, run, step);
  return task && `${task}?try_number=${step.try_number}`;
}

/** A link that opens in the top window (Airflow's, when this page is its tab). */
export function topLink(href, label, testId) {
  return h("a", { class: "btn btn-small", href, target: "_top", "data-testid": testId }, label);
}

/** "In Airflow: …" links for a run, or for one try of a step; null when there are none. */
export function orchestratorLinks(known, run, step = null) {
  if (step) {
    const task = airflowTaskUrl(known, run, step);
    if (!task) return null;
    return h("nav", { class: "host-links", "aria-label": "In Airflow" }, h("span", { class: "muted small" }, "In Airflow:"),
      topLink(task, "Task instance", "airflow-task-instance"),
      topLink(airflowLogUrl(known, run, step), `Log of try ${step.try_number}`, "airflow-log"),
      topLink(airflowRunUrl(known, run), "DAG run", "airflow-dag-run"));
  }
  const dagRun = airflowRunUrl(known, run);
  return dagRun
    ? h("nav", { class: "host-links", "aria-label": "In Airflow" }, h("span", { class: "muted small" }, "In Airflow:"),
      topLink(dagRun, "DAG run", "airflow-dag-run"))
    : null;
}
