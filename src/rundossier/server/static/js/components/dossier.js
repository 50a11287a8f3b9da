// The failure dossier at the top of a run: headline, classification with its evidence, where the
// time went, next actions (copyable commands), comparison with the last good run, replay plan, group.
// A dossier of an unknown version is shown field by field.

import { h, fmtDuration, runHash, hashFor, timeEl, stepHash, logHash } from "../util.js";
import { copyButton } from "./copy.js";

const WINDOW_LABEL = { queue_wait: "queue wait", setup: "setup", active_work: "active work", write_back: "write back" };

function label(key) {
  return key.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

const measured = (w) => (w.duration_ms ?? w.elapsed_ms ?? 0) > 0;

/**
 * A run's or step's timing windows as one bar: closed windows to scale, open/unknown ones marked.
 * A window that took no measurable time (0.0 s) gets no bar, only its legend entry; when nothing
 * was measured at all, a note says so instead of a bar.
 */
export function windowsBar(timing) {
  const windows = (timing && timing.windows) || [];
  if (!windows.length) return h("p", { class: "muted small", "data-testid": "nothing-measured" }, "Nothing was measured for this run.");
  const shown = windows.filter((w) => w.state !== "closed" || measured(w)); // no bar for a 0.0 s window
  const known = shown.reduce((a, w) => a + (w.duration_ms || w.elapsed_ms || 0), 0) || 1;
  const anyMeasured = windows.some((w) => measured(w) || w.state === "open");
  return h("div", { class: "windows" },
    anyMeasured ? h("div", { class: "wbar", role: "img", "aria-label": windows.map((w) => `${WINDOW_LABEL[w.name] || w.name} ${w.state === "closed" ? fmtDuration(w.duration_ms) : w.state}`).join(", ") },
      shown.map((w) => {
        const ms = w.duration_ms ?? w.elapsed_ms ?? 0;
        const grow = w.state === "closed" || w.state === "open" ? Math.max(ms / known, 0.04) : 0.04;
        const seg = h("span", { class: `wseg w-${w.name} ws-${w.state}`, title: w.signal || `${WINDOW_LABEL[w.name] || w.name}: ${fmtDuration(ms)}` });
        seg.style.flexGrow = String(grow); // CSSOM, not a style attribute: the CSP allows no inline styles
        return seg;
      }))
      : h("p", { class: "muted small", "data-testid": "nothing-measured" },
        "Nothing was measured: no window of this run has a recorded duration (the steps reported no timings)."),
    h("ul", { class: "wlegend" }, windows.map((w) => h("li", { class: measured(w) || w.state !== "closed" ? null : "w-zero" },
      h("span", { class: `wkey w-${w.name}`, "aria-hidden": "true" }),
      `${WINDOW_LABEL[w.name] || w.name} `,
      h("strong", {}, w.state === "closed" ? (measured(w) ? fmtDuration(w.duration_ms) : "none measured")
        : w.state === "open" ? (w.elapsed_ms !== null && w.elapsed_ms !== undefined ? `open, ${fmtDuration(w.elapsed_ms)} so far` : "open")
          : w.state),
      w.signal ? h("span", { class: "muted small" }, ` — ${w.signal}`) : null))));
}

function classificationEl(c) {
  if (!c) return null;
  return h("div", { class: "dz" },
    h("h3", {}, "What kind of failure"),
    h("p", {}, h("span", { class: `tag conf-${c.confidence}` }, c.label || c.code), " ",
      h("span", { class: "muted small" }, `${c.confidence} confidence`), c.summary ? ` — ${c.summary}` : ""),
    c.evidence && c.evidence.length ? h("ul", { class: "evidence" }, c.evidence.map((e) =>
      h("li", {}, e.text, e.source ? h("span", { class: "muted small" }, ` (from ${e.source})`) : null))) : null,
    c.also && c.also.length ? h("p", { class: "muted small" }, `Also matched: ${c.also.join(", ")}`) : null);
}

/**
 * Where an action's command points inside this UI, as [label, href]: the step's log for a raw API
 * GET of it, the run's page for `rundossier show RUN`. A person gets a link, not an API call.
 */
export function actionLink(command, runId) {
  if (!command) return null;
  const log = command.match(/^GET \/api\/runs\/([^/]+)\/steps\/([^/?]+)\/logs(?:\?try=(\d+))?$/);
  if (log) {
    const step = decodeURIComponent(log[2]);
    return { label: `Open the log of ${step}`, href: logHash(decodeURIComponent(log[1]), step, log[3] ? Number(log[3]) : null), replaces: true };
  }
  const show = command.match(/^rundossier show (run_\S+)$/);
  if (show && show[1] !== runId) return { label: "Open that run", href: runHash(show[1]), replaces: false };
  return null;
}

/** The dossier's actions as a list: title, detail, and the exact command with a Copy button (or a link in this UI). */
export function actionList(actions, runId = null) {
  return h("ol", { class: "actions" }, actions.map((a) => {
    const link = actionLink(a.command, runId);
    const command = link && link.replaces ? null : a.command;
    const code = command ? h("code", {}, command) : null;
    return h("li", {},
      h("strong", {}, a.title),
      a.detail && !(link && link.replaces) ? h("div", { class: "muted small" }, a.detail) : null,
      code ? h("div", { class: "command" }, h("pre", {}, code), copyButton(command, code)) : null,
      link ? h("div", {}, h("a", { class: "btn btn-small", href: link.href, "data-testid": "action-link" }, link.label)) : null);
  }));
}

function actionsEl(actions, runId) {
  if (!actions || !actions.length) return null;
  return h("div", { class: "dz" }, h("h3", {}, "Next"), actionList(actions, runId));
}

function comparisonEl(c) {
  if (!c) return null;
  return h("div", { class: "dz" },
    h("h3", {}, "Compared with the last successful run"),
    h("p", {}, h("a", { href: runHash(c.baseline_run_id), class: "mono" }, c.baseline_run_id),
      c.baseline_finished_at ? [" finished ", timeEl(c.baseline_finished_at)] : null, c.note ? ` — ${c.note}` : ""),
    c.differences && c.differences.length ? h("table", { class: "compact" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "This run"), h("th", { scope: "col" }, "Last good run"))),
      h("tbody", {}, c.differences.map((d) => h("tr", {}, h("td", {}, d.field), h("td", { class: "mono" }, String(d.failed ?? "–")),
        h("td", { class: "mono" }, String(d.baseline ?? "–")))))) : h("p", { class: "muted small" }, "No recorded field differs."),
    c.newly_failed && c.newly_failed.length ? h("p", {}, "Newly failed: ", c.newly_failed.join(", ")) : null,
    c.not_reached && c.not_reached.length ? h("p", {}, "Not reached: ", c.not_reached.join(", ")) : null,
  );
}

function replayEl(r, runId) {
  if (!r) return null;
  const stepLinks = (ids) => ids.map((id) => h("a", { class: "tag mono", href: stepHash(runId, id) }, id));
  return h("div", { class: "dz" },
    h("h3", {}, "Re-run from the failed step"),
    h("p", {}, h("span", { class: `tag ${r.replayable ? "conf-high" : "conf-low"}` }, r.replayable ? "replayable" : "not replayable"), ` ${r.reason || ""}`),
    r.redo && r.redo.length ? h("p", {}, "Redo: ", stepLinks(r.redo)) : null,
    r.keep && r.keep.length ? h("p", {}, "Keep: ", stepLinks(r.keep)) : null,
    r.how ? h("p", { class: "muted small" }, r.how) : null);
}

function listEl(title, items, render) {
  if (!items || !items.length) return null;
  return h("div", { class: "dz" }, h("h3", {}, title), h("ul", { class: "plain" }, items.map((x) => h("li", {}, render(x)))));
}

function genericEl(dossier) {
  const rows = Object.entries(dossier).filter(([, v]) => v !== null && typeof v !== "object").slice(0, 30);
  return h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", {}, label(k)), h("dd", {}, String(v))]));
}

export function dossierPanel(dossier, run) {
  if (!dossier || typeof dossier !== "object") return null;
  const runId = dossier.run_id || (run && run.run_id);
  const failed = Boolean(dossier.failed_step || dossier.classification);
  const body = dossier.version === 1
    ? [
      classificationEl(dossier.classification),
      dossier.timing ? h("div", { class: "dz" }, h("h3", {}, dossier.live ? "Where the time goes (live)" : "Where the time went"), windowsBar(dossier.timing)) : null,
      actionsEl(dossier.actions, runId),
      listEl("Said plainly", dossier.signals, (s) => [s.text, s.step_id ? h("span", { class: "muted small" }, ` (${s.step_id}${s.try_number ? ` try ${s.try_number}` : ""})`) : null]),
      listEl("What is kept", dossier.material, (m) => [h("strong", {}, m.name), `: ${m.state}`, m.detail ? h("span", { class: "muted small" }, ` — ${m.detail}`) : null]),
      comparisonEl(dossier.comparison),
      replayEl(dossier.replay, runId),
      dossier.group ? h("div", { class: "dz" }, h("h3", {}, "Failure group"),
        h("p", {}, h("a", { href: hashFor("/runs", { fingerprint: dossier.group.fingerprint }), class: "mono" }, dossier.group.fingerprint),
          ` — seen ${dossier.group.count} time${dossier.group.count === 1 ? "" : "s"}`,
          dossier.group.first_seen ? [" since ", timeEl(dossier.group.first_seen)] : null,
          dossier.group.flows && dossier.group.flows.length ? ` in ${dossier.group.flows.join(", ")}` : "")) : null,
    ]
    : [genericEl(dossier)];
  const headline = dossier.headline || dossier.summary || dossier.title;
  const content = [h("p", { class: "dossier-title" }, headline || "Dossier"), h("div", { class: "dz-grid" }, body)];
  return h(
    "section",
    { class: `card dossier${failed ? "" : " dossier-quiet"}`, "aria-label": "Dossier", "data-testid": "dossier" },
    failed ? [h("h2", {}, "Dossier"), content]
      : h("details", {}, h("summary", {}, h("strong", {}, "Dossier: "), headline || "timing and comparison"), h("div", { class: "dz-grid" }, body)),
  );
}

