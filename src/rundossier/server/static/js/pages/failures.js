// Failures: failure groups across runs (same fingerprint), from GET api/failures.

import { api } from "../api.js";
import { h, fill, timeEl, errorSummary, runHash, hashFor, notice } from "../util.js";

export async function renderFailures(ctx) {
  const { main } = ctx;
  const head = h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Failures"),
    h("p", { class: "muted" }, "Failures grouped by fingerprint: the same error at the same place, across runs and flows."));
  let data;
  try {
    data = await api.failures();
  } catch (err) {
    if (!ctx.current()) return;
    fill(main, head, err.status === 404 && err.type === "not_found"
      ? notice("info", "Failure groups are not available on this server: it has no ", h("code", {}, "api/failures"), " endpoint (a newer rundossier adds it).")
      : notice("error", `Could not load failure groups: ${err.message}`));
    return;
  }
  if (!ctx.current()) return;
  const items = data.items || [];
  if (!items.length) {
    fill(main, head, notice("info", "No failures recorded."));
    return;
  }
  fill(
    main,
    head,
    h("div", { class: "table-wrap" }, h("table", { class: "failures" },
      h("thead", {}, h("tr", {}, ["Error", "Count", "First seen", "Last seen", "Flows", "Latest"].map((t) => h("th", { scope: "col", class: t === "Count" ? "num" : null }, t)))),
      h("tbody", {}, items.map((g) => {
        // the contract's flat shape, or a `latest: {run_id, flow_id, error}` object
        const latestId = g.latest_run_id || (g.latest && g.latest.run_id) || null;
        const error = g.error || (g.latest && g.latest.error) || null;
        return h("tr", {},
        h("td", { class: "col-error" }, h("strong", {}, error ? errorSummary(error, 120) : "no error message"),
          g.failure_class ? h("span", { class: "tag" }, g.failure_class) : null,
          g.fingerprint ? h("div", { class: "small" }, h("a", { href: hashFor("/runs", { fingerprint: g.fingerprint }), class: "mono" }, `group ${g.fingerprint}`)) : null),
        h("td", { class: "num" }, String(g.count ?? "–")),
        h("td", {}, timeEl(g.first_seen)),
        h("td", {}, timeEl(g.last_seen)),
        h("td", {}, (g.flows || []).map((flow) => h("a", { class: "tag", href: hashFor("/runs", { flow_id: flow, status: "failed,crashed,upstream_failed" }) }, flow))),
        h("td", {}, latestId ? h("a", { href: runHash(latestId), class: "mono" }, latestId) : "–"),
        );
      })))),
  );
}
