// The failure panel: the chain of exceptions (root cause first, as Python prints it), library frames
// folded and your own frames open, the log lines before the failure, and the trace download.

import { h, fill, shortType, notice } from "../util.js";
import { viewTraceLink } from "./chip.js";

const RELATION = {
  cause: "The above exception was the direct cause of the following exception:",
  context: "During handling of the above exception, another exception occurred:",
};

function frameEl(frame) {
  return h(
    "li",
    { class: `frame ${frame.in_app ? "frame-app" : "frame-lib"}` },
    h("div", { class: "frame-where" },
      h("span", { class: "frame-file" }, frame.filename),
      frame.lineno !== null && frame.lineno !== undefined ? h("span", { class: "frame-line" }, `:${frame.lineno}`) : null,
      h("span", { class: "frame-fn" }, ` in ${frame.name}`),
      frame.repeat ? h("span", { class: "muted small" }, ` (repeated ${frame.repeat} more time${frame.repeat === 1 ? "" : "s"})`) : null),
    frame.line ? h("pre", { class: "frame-code" }, frame.line) : null,
  );
}

/**
 * The package a library frame is in, for the fold's summary: "airflow" for
 * .../site-packages/airflow/models/x.py, "json" for /usr/lib/python3.11/json/decoder.py,
 * "contextlib" for /usr/lib/python3.11/contextlib.py.
 */
export function libraryName(filename) {
  const inPackages = filename.split(/[\\/](?:site|dist)-packages[\\/]/);
  const parts = inPackages[inPackages.length - 1].split(/[\\/]/).filter(Boolean);
  if (!parts.length) return filename;
  if (inPackages.length > 1) return parts[0].replace(/\.py$/, "");
  const dir = parts.length > 1 ? parts[parts.length - 2] : "";
  return dir && !/^(python[\d.]*|lib)$/i.test(dir) ? dir : parts[parts.length - 1].replace(/\.py$/, "");
}

/** Frames with runs of library frames folded into one <details>. */
function framesEl(node) {
  const out = [];
  let lib = [];
  const flush = () => {
    if (!lib.length) return;
    const files = [...new Set(lib.map((f) => libraryName(f.filename)))];
    out.push(h("li", { class: "frame-fold" },
      h("details", {},
        h("summary", {}, `${lib.length} library frame${lib.length === 1 ? "" : "s"}`,
          h("span", { class: "muted small" }, ` (${files.slice(0, 3).join(", ")}${files.length > 3 ? ", …" : ""})`)),
        h("ol", { class: "frames" }, lib.map(frameEl)))));
    lib = [];
  };
  node.frames.forEach((frame, i) => {
    if (node.omitted_frames && i === Math.floor(node.frames.length / 3)) {
      flush();
      out.push(h("li", { class: "frame-omitted" }, `… ${node.omitted_frames} frames omitted …`));
    }
    if (frame.in_app) {
      flush();
      out.push(frameEl(frame));
    } else {
      lib.push(frame);
    }
  });
  flush();
  return h("ol", { class: "frames" }, out);
}

function nodeEl(node, isRoot) {
  return h(
    "section",
    { class: `exc${isRoot ? " exc-root" : ""}` },
    h("header", { class: "exc-head" },
      isRoot ? h("span", { class: "tag tag-root" }, "root cause") : null,
      h("span", { class: "exc-type", title: node.type }, shortType(node.type)),
      node.type.includes(".") ? h("span", { class: "muted small" }, ` ${node.type}`) : null),
    node.message ? h("pre", { class: "exc-message" }, node.message) : null,
    node.notes && node.notes.length ? h("ul", { class: "exc-notes" }, node.notes.map((n) => h("li", {}, n))) : null,
    node.frames.length ? framesEl(node) : h("p", { class: "muted small" }, "no frames"),
    node.group && node.group.length ? h("div", { class: "exc-group" },
      node.group.map((member, i) => h("details", { open: i === 0 },
        h("summary", {}, `sub-exception ${i + 1} of ${node.group.length + (node.omitted_exceptions || 0)}`),
        chainEl(member))),
      node.omitted_exceptions ? h("p", { class: "muted small" }, `… ${node.omitted_exceptions} exceptions omitted …`) : null) : null,
  );
}

function chainEl(chain) {
  const out = [];
  chain.forEach((node, i) => {
    out.push(nodeEl(node, i === 0 && chain.length > 1));
    if (node.relation && i < chain.length - 1) out.push(h("p", { class: "exc-relation" }, RELATION[node.relation] || node.relation));
  });
  return h("div", { class: "chain" }, out);
}

/**
 * Fill `container` with the failure panel. `load()` returns the trace document (or throws the
 * API's error: 404 says why none was captured, 410 that retention expired it); `downloadHref`
 * is the text trace, `jsonHref` the same document as JSON, saved as `jsonName`.
 */
export async function tracePanel(container, { load, downloadHref, jsonHref = null, jsonName = "trace.json", title = "Failure", summary = true, isCurrent = () => true }) {
  fill(container, h("h2", {}, title), h("p", { class: "muted" }, "Loading the trace…"));
  let doc;
  try {
    doc = await load();
  } catch (err) {
    if (!isCurrent()) return;
    const kind = err.status === 410 ? "warn" : err.status === 404 ? "info" : "error";
    const head = err.status === 410 ? "Trace expired. " : err.status === 404 ? "No trace. " : "Could not load the trace. ";
    fill(container, h("h2", {}, title), notice(kind, h("strong", {}, head), err.message));
    return;
  }
  if (!isCurrent()) return;
  const header = doc.header || {};
  if (header.step_id && header.step_id !== "_run" && title.startsWith("Failure")) {
    title = `Failure in step ${header.step_id}${header.try_number ? ` (try ${header.try_number})` : ""}`;
  }
  const chain = doc.chain || [];
  const body = [];
  if (!doc.captured) {
    body.push(notice("info", h("strong", {}, "No traceback captured: "), doc.reason || "the failure was reported without an exception"));
    if (doc.error_type || doc.error_message) {
      body.push(h("pre", { class: "exc-message" }, [shortType(doc.error_type), doc.error_message].filter(Boolean).join(": ")));
    }
  } else if (chain.length) {
    body.push(chainEl(chain));
  }
  if (doc.truncated) body.push(h("p", { class: "muted small" }, "This trace was cut to the size limit; markers show what was dropped."));
  if (doc.log_tail && doc.log_tail.length) {
    body.push(h("details", { class: "logtail", open: true },
      h("summary", {}, doc.log_tail.length === 1 ? "The last log line before the failure" : `The last ${doc.log_tail.length} log lines before the failure`),
      h("pre", { class: "logtail-lines" }, doc.log_tail.join("\n"))));
  }
  fill(
    container,
    h("div", { class: "panel-head" }, h("h2", {}, title),
      h("div", { class: "panel-actions" },
        jsonHref ? h("a", { class: "btn", href: jsonHref, download: jsonName, "data-testid": "trace-json", title: "The structured trace (exception chain, frames, log tail) as JSON" }, "JSON") : null,
        viewTraceLink(downloadHref, "View Trace", "btn-primary"))),
    summary ? h("p", { class: "exc-summary" }, h("strong", {}, shortType(doc.error_type) || "Error"), doc.error_message ? `: ${doc.error_message.split("\n")[0]}` : "") : null,
    body,
  );
}
