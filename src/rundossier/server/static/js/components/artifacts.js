// A run's artifact manifest: what each step read and wrote (paged), and the data-flow graph of
// producer -> consumer steps (inside the run, and from steps of other runs).

import { api } from "../api.js";
import { dependencyGraph } from "./graph.js";
import { h, fill, stepHash, notice } from "../util.js";

export const PAGE = 200;

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

function shortChecksum(checksum) {
  if (!checksum) return null;
  const [kind, value] = checksum.includes(":") ? checksum.split(/:(.*)/s) : ["", checksum];
  return `${kind ? `${kind}:` : ""}${value.length > 8 ? `${value.slice(0, 8)}…` : value}`;
}

function stateOf(a) {
  if (a.present === false) return h("span", { class: "tag tag-missing" }, "missing");
  if (a.size === 0) return h("span", { class: "tag tag-missing" }, "empty");
  return null;
}

function row(run, a) {
  const producer = a.producer;
  return h("tr", { class: a.present === false ? "artifact-missing" : null, "data-role": a.role },
    h("td", {}, h("span", { class: `tag role-${a.role}` }, a.role === "input" ? "in" : "out")),
    h("td", { class: "artifact-uri" }, h("span", { class: "mono wrap", title: a.note || a.uri }, a.uri), " ", stateOf(a),
      a.kind ? h("span", { class: "tag kind" }, a.kind) : null,
      producer ? h("div", { class: "muted producer" }, "from ",
        h("a", { href: producer.run_id === run.run_id ? stepHash(run.run_id, producer.step_id, producer.try_number) : `#/run/${encodeURIComponent(producer.run_id)}` },
          producer.run_id === run.run_id ? producer.step_id : `${producer.flow_id} / ${producer.step_id}`)) : null),
    h("td", {}, a.step_id ? h("a", { href: stepHash(run.run_id, a.step_id, a.try_number), class: "mono" }, a.step_id) : "–",
      a.try_number > 1 ? h("span", { class: "muted" }, ` try ${a.try_number}`) : null),
    h("td", { class: "num" }, fmtBytes(a.size)),
    h("td", { class: "mono", title: a.checksum || "" }, shortChecksum(a.checksum) || "–"),
  );
}

/** Nodes and edges of producer -> consumer steps, from the artifacts loaded so far. */
export function flowModel(run, items) {
  const nodes = new Map();
  const edges = new Map();
  const latest = new Map();
  for (const s of run.steps || []) {
    const prev = latest.get(s.step_id);
    if (!prev || s.try_number > prev.try_number) latest.set(s.step_id, s);
  }
  const stepNode = (stepId) => {
    if (!nodes.has(stepId)) {
      const s = latest.get(stepId);
      nodes.set(stepId, { id: stepId, status: s ? s.status : "none", try_number: s ? s.try_number : null, tries: 1 });
    }
    return stepId;
  };
  const writers = new Map(); // uri -> step ids of this run that wrote it
  for (const a of items) if (a.role === "output" && a.step_id) {
    if (!writers.has(a.uri)) writers.set(a.uri, new Set());
    writers.get(a.uri).add(a.step_id);
  }
  const edge = (from, to) => edges.set(JSON.stringify([from, to]), [from, to]);
  for (const a of items) {
    if (a.role !== "input" || !a.step_id) continue;
    const p = a.producer;
    if (p && p.run_id !== run.run_id) {
      const id = `${p.run_id}\u0000${p.step_id}`;
      if (!nodes.has(id)) {
        nodes.set(id, { id, name: p.step_id, sub: `↗ ${p.flow_id}`, status: "external", href: `#/run/${encodeURIComponent(p.run_id)}`,
          title: `${p.step_id} of run ${p.run_id} (${p.flow_id})`, tries: 1 });
      }
      edge(id, stepNode(a.step_id));
    } else {
      const from = p ? [p.step_id] : [...(writers.get(a.uri) || [])];
      for (const f of from) if (f !== a.step_id) edge(stepNode(f), stepNode(a.step_id));
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

/**
 * The artifacts card (beside the timeline) and the data-flow card, filled once the first page
 * is loaded; both stay out of the page when the run has no artifacts.
 */
export function artifactCards(run, isCurrent) {
  const card = h("section", { class: "card artifacts", "aria-label": "Artifacts", hidden: true });
  const flow = h("section", { class: "card", "aria-label": "Data flow", hidden: true });
  const items = [];
  let cursor = null;
  const body = h("tbody", {});
  const more = h("button", { type: "button", class: "btn", hidden: true }, "Load more");
  const count = h("span", { class: "muted count" });

  const drawFlow = () => {
    const model = flowModel(run, items);
    if (!model.edges.length) {
      flow.hidden = true;
      return;
    }
    flow.hidden = false;
    fill(flow, h("h2", {}, "Data flow"),
      h("p", { class: "muted" }, "Steps that wrote a URI → the steps that read it (in this run, or ↗ in another run)."),
      dependencyGraph(run.run_id, [], { model, label: "Data flow graph" }));
  };

  const load = async () => {
    more.disabled = true;
    let page;
    try {
      page = await api.runArtifacts(run.run_id, { limit: PAGE, ...(cursor ? { cursor } : {}) });
    } catch (err) {
      if (!isCurrent()) return;
      card.hidden = false;
      fill(card, h("h2", {}, "Artifacts"), notice("error", `Could not load the artifacts: ${err.message}`));
      return;
    }
    if (!isCurrent()) return;
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!items.length) return; // no manifest: no card
    card.hidden = false;
    body.append(...page.items.map((a) => row(run, a)));
    more.hidden = !cursor;
    more.disabled = false;
    const missing = items.filter((a) => a.present === false).length;
    fill(count, `${items.length}${cursor ? "+" : ""} recorded${missing ? `, ${missing} missing` : ""}`);
    drawFlow();
  };
  more.addEventListener("click", load);

  fill(card, h("div", { class: "card-head" }, h("h2", {}, "Artifacts"), " ", count),
    h("div", { class: "table-wrap artifacts-wrap" }, h("table", { class: "artifacts-table" },
      h("thead", {}, h("tr", {}, ["", "URI", "Step", "Size", "Checksum"].map((t) =>
        h("th", { scope: "col", class: t === "Size" ? "num" : null }, t)))),
      body)),
    more);
  load();
  return { card, flow };
}
