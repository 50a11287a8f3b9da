// #/find?orchestrator=airflow&flow_id=D&run_key=R[&step_id=S][&map_index=M][&try=N]
// Links from Airflow and Prefect land here: find our run id, then show the run or the step.

import { api } from "../api.js";
import { h, fill, notice, hashFor, runHash, stepHash } from "../util.js";

/** The step id for a task id and an Airflow map index ("-1", "" or an unreplaced "{MAP_INDEX}": unmapped). */
export function stepIdFor(stepId, mapIndex) {
  if (!stepId) return null;
  const m = (mapIndex ?? "").trim();
  if (m === "" || m === "-1" || m === "{MAP_INDEX}" || m.toLowerCase() === "none") return stepId;
  return `${stepId}[${m}]`;
}

export async function renderFind(ctx, params) {
  const { main } = ctx;
  const orchestrator = params.get("orchestrator") || "";
  const flowId = params.get("flow_id") || "";
  const runKey = params.get("run_key") || "";
  const stepId = stepIdFor(params.get("step_id"), params.get("map_index"));
  const tryRaw = params.get("try");
  const tryNumber = tryRaw && /^\d+$/.test(tryRaw) && Number(tryRaw) > 0 ? Number(tryRaw) : null;
  const head = h("h1", { tabindex: "-1" }, "Finding the run…");
  if (!orchestrator || !flowId || !runKey) {
    fill(main, h("h1", {}, "Find a run"), notice("warn", "This link needs orchestrator, flow_id and run_key."), h("p", {}, h("a", { href: "#/runs" }, "All runs")));
    return;
  }
  fill(main, head);
  let found;
  try {
    found = await api.lookup({ orchestrator, flow_id: flowId, run_key: runKey });
  } catch (err) {
    if (!ctx.current()) return;
    if (err.status === 404) {
      fill(main, h("h1", {}, "Run not recorded"),
        notice("warn", `rundossier has no record of ${orchestrator} run `, h("code", {}, runKey), " of ", h("code", {}, flowId),
          ". It may not have started yet, or rundossier was not installed where it ran."),
        h("p", {}, h("a", { href: hashFor("/runs", { flow_id: flowId }) }, `Recorded runs of ${flowId}`)));
    } else {
      fill(main, h("h1", {}, "Find a run"), notice("error", `Could not look the run up: ${err.message}`));
    }
    return;
  }
  if (!ctx.current()) return;
  location.replace(stepId ? stepHash(found.run_id, stepId, tryNumber) : runHash(found.run_id));
}
