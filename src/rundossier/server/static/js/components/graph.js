// The steps' dependency graph as inline SVG: layered left to right, status colours, zoom, pan, recenter.
// Nodes are links to the step view; keyboard: Tab through nodes, +/- zoom, arrows pan, 0 recenters.

import { h, stepHash } from "../util.js";

const NODE_W = 176;
const NODE_H = 46;
const GAP_X = 64;
const GAP_Y = 22;
const PAD = 24;

/** Nodes (latest try per step) and edges (upstream -> step) from a run's steps. */
export function graphModel(steps) {
  const latest = new Map();
  const tries = new Map();
  for (const s of steps) {
    const prev = latest.get(s.step_id);
    if (!prev || s.try_number > prev.try_number) latest.set(s.step_id, s);
    tries.set(s.step_id, (tries.get(s.step_id) || 0) + 1);
  }
  const edges = new Set();
  for (const s of steps) for (const up of s.upstream || []) edges.add(`${up}\u0000${s.step_id}`);
  const nodes = new Map();
  for (const [id, s] of latest) nodes.set(id, { id, status: s.status, try_number: s.try_number, tries: tries.get(id) });
  for (const e of edges) {
    const [from] = e.split("\u0000");
    if (!nodes.has(from)) nodes.set(from, { id: from, status: "none", try_number: null, tries: 0 });
  }
  return { nodes: [...nodes.values()], edges: [...edges].map((e) => e.split("\u0000")) };
}

/** Layer = longest path from a source (cycles cut); order within a layer by parents' mean position. */
export function layout(model) {
  const parents = new Map(model.nodes.map((n) => [n.id, []]));
  for (const [from, to] of model.edges) parents.get(to).push(from);
  const layer = new Map(model.nodes.map((n) => [n.id, 0]));
  for (let round = 0; round < model.nodes.length; round++) {
    let changed = false;
    for (const [from, to] of model.edges) {
      if (layer.get(to) < layer.get(from) + 1 && layer.get(from) + 1 < model.nodes.length) {
        layer.set(to, layer.get(from) + 1);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const n of model.nodes) {
    const l = layer.get(n.id);
    (columns[l] = columns[l] || []).push(n);
  }
  const pos = new Map();
  columns.forEach((col, ci) => {
    if (ci > 0) {
      const score = (n) => {
        const ps = parents.get(n.id).filter((p) => pos.has(p));
        return ps.length ? ps.reduce((a, p) => a + pos.get(p).row, 0) / ps.length : Infinity;
      };
      col.sort((a, b) => score(a) - score(b));
    }
    col.forEach((n, ri) => pos.set(n.id, { col: ci, row: ri }));
  });
  const rows = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  const out = new Map();
  columns.forEach((col) => {
    if (!col) return;
    const offset = ((rows - col.length) * (NODE_H + GAP_Y)) / 2;
    col.forEach((n) => {
      const p = pos.get(n.id);
      out.set(n.id, { x: PAD + p.col * (NODE_W + GAP_X), y: PAD + offset + p.row * (NODE_H + GAP_Y) });
    });
  });
  return {
    pos: out,
    width: PAD * 2 + columns.length * NODE_W + Math.max(0, columns.length - 1) * GAP_X,
    height: PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y,
  };
}

const ICON = { success: "✓", failed: "✕", crashed: "✕", upstream_failed: "⊘", running: "↻", queued: "…", skipped: "↷", cancelled: "–", paused: "‖", none: "?" };

function cut(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

/**
 * The graph of a run's steps (edges: upstream -> step), or of any `model` of the same shape whose
 * nodes may carry their own `href` and `sub` (second line), and `label` ("Dependency graph").
 */
export function dependencyGraph(runId, steps, { model = graphModel(steps), label = "Dependency graph" } = {}) {
  if (!model.nodes.length) return h("p", { class: "muted" }, "No steps recorded.");
  const { pos, width, height } = layout(model);
  const viewport = h("svg:g", { class: "viewport" });
  const svg = h(
    "svg:svg",
    { class: "graph", role: "group", "aria-label": `${label} of ${model.nodes.length} steps`, width: "100%", height: Math.min(Math.max(height, 140), 420) },
    h("svg:defs", {}, h("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      h("svg:path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))),
    viewport,
  );
  for (const [from, to] of model.edges) {
    const a = pos.get(from);
    const b = pos.get(to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x - 2;
    const y2 = b.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    viewport.append(h("svg:path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
  }
  for (const n of model.nodes) {
    const p = pos.get(n.id);
    const name = n.name || n.id;
    const label = n.title || `${name}: ${n.status === "none" ? "not recorded" : n.status}${n.tries > 1 ? `, ${n.tries} tries` : ""}`;
    const body = h("svg:g", { class: `node st-${n.status}`, transform: `translate(${p.x},${p.y})` },
      h("svg:title", {}, label),
      h("svg:rect", { width: NODE_W, height: NODE_H, rx: 7 }),
      h("svg:text", { x: 12, y: 19, class: "node-name" }, cut(name, 22)),
      h("svg:text", { x: 12, y: 36, class: "node-status" }, n.sub ? cut(n.sub, 24)
        : `${ICON[n.status] || ""} ${n.status === "none" ? "not recorded" : n.status.replace("_", " ")}${n.tries > 1 ? ` · try ${n.try_number}` : ""}`));
    const href = n.href !== undefined ? n.href : n.status === "none" ? null : stepHash(runId, n.id, n.try_number);
    if (!href) {
      viewport.append(body);
    } else {
      viewport.append(h("svg:a", { href, "aria-label": label, class: "node-link" }, body));
    }
  }

  // -- zoom and pan --------------------------------------------------------------------------
  let scale = 1;
  let tx = 0;
  let ty = 0;
  const apply = () => viewport.setAttribute("transform", `translate(${tx},${ty}) scale(${scale})`);
  const recenter = () => {
    const box = svg.getBoundingClientRect();
    const w = box.width || 800;
    const hgt = box.height || 300;
    scale = Math.min(1.2, Math.max(0.25, Math.min(w / width, hgt / height)));
    tx = (w - width * scale) / 2;
    ty = (hgt - height * scale) / 2;
    apply();
  };
  const zoom = (factor, cx, cy) => {
    const box = svg.getBoundingClientRect();
    const x = cx ?? box.width / 2;
    const y = cy ?? box.height / 2;
    const next = Math.min(3, Math.max(0.2, scale * factor));
    tx = x - ((x - tx) * next) / scale;
    ty = y - ((y - ty) * next) / scale;
    scale = next;
    apply();
  };
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = svg.getBoundingClientRect();
    zoom(event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest("a")) return;
    drag = { x: event.clientX, y: event.clientY, tx, ty };
    svg.setPointerCapture(event.pointerId);
    svg.classList.add("dragging");
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    tx = drag.tx + event.clientX - drag.x;
    ty = drag.ty + event.clientY - drag.y;
    apply();
  });
  const endDrag = () => { drag = null; svg.classList.remove("dragging"); };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  const controls = h("div", { class: "graph-controls", role: "toolbar", "aria-label": "Graph view" },
    h("button", { type: "button", class: "btn btn-icon", "aria-label": "Zoom in", title: "Zoom in (+)", onclick: () => zoom(1.25) }, "+"),
    h("button", { type: "button", class: "btn btn-icon", "aria-label": "Zoom out", title: "Zoom out (−)", onclick: () => zoom(1 / 1.25) }, "−"),
    h("button", { type: "button", class: "btn", title: "Fit the graph (0)", onclick: recenter }, "Recenter"));
  const wrap = h("div", { class: "graph-wrap", tabindex: "0", "aria-label": `${label}: + and - zoom, arrows pan, 0 recenters` }, controls, svg);
  wrap.addEventListener("keydown", (event) => {
    const step = 40;
    const keys = {
      "+": () => zoom(1.25), "=": () => zoom(1.25), "-": () => zoom(1 / 1.25), "0": recenter,
      ArrowLeft: () => { tx += step; apply(); }, ArrowRight: () => { tx -= step; apply(); },
      ArrowUp: () => { ty += step; apply(); }, ArrowDown: () => { ty -= step; apply(); },
    };
    if (keys[event.key] && (event.target === wrap || event.key.length === 1)) {
      event.preventDefault();
      keys[event.key]();
    }
  });
  // fit once the SVG has a size in the page
  requestAnimationFrame(() => requestAnimationFrame(recenter));
  return wrap;
}
