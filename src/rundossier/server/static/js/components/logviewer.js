// The log viewer of one step try: stdout / stderr / all tabs with line counts, 500 lines a page,
// full-text search with next/previous and a match counter, follow mode for a running step,
// download as a text file, reload.

import { api, logDownloadHref } from "../api.js";
import { h, fill, notice, fmtAgo } from "../util.js";

const PAGE_SIZE = 500;
const FOLLOW_EVERY_MS = 2000;
const STREAMS = [["all", "All"], ["stdout", "stdout"], ["stderr", "stderr"]];

function fmtLineTime(ts) {
  const d = new Date(ts * 1000);
  if (Number.isNaN(d.getTime())) return "";
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** The message with every case-insensitive occurrence of `q` wrapped in <mark>. */
function highlighted(message, q) {
  if (!q) return message;
  const lower = message.toLowerCase();
  const needle = q.toLowerCase();
  const out = [];
  let at = 0;
  for (;;) {
    const i = lower.indexOf(needle, at);
    if (i < 0) break;
    out.push(message.slice(at, i), h("mark", {}, message.slice(i, i + needle.length)));
    at = i + needle.length;
  }
  out.push(message.slice(at));
  return out;
}

/** The query of the viewer's first page (all streams, page 1, no search or level): a page may ask
 * for it before it knows the try (`tryNumber` null: the latest) and hand the answer in as `firstPage`. */
export function firstPageQuery(tryNumber) {
  return { stream: "all", page: 1, page_size: PAGE_SIZE, try: tryNumber };
}

/** `onEnded(data)` is called when follow mode sees the running step end; `firstPage`: a promise of
 * the answer to `firstPageQuery` for this try, already asked for. */
export function logViewer(ctx, { runId, stepId, tryNumber, running, onEnded = null, firstPage = null }) {
  const state = {
    stream: "all",
    page: 1,
    pages: 1,
    q: "",
    level: "",
    matches: [],
    matchIndex: -1,
    follow: Boolean(running),
    data: null,
  };
  let timer = null;
  let loading = 0;

  const tabs = STREAMS.map(([value, label]) =>
    h("button", { type: "button", role: "tab", class: "tab", "data-stream": value, "aria-selected": String(value === "all"), id: `logtab-${value}` },
      label, " ", h("span", { class: "count", "data-count": value }, "")));
  const search = h("input", { type: "search", id: "log-q", placeholder: "Search the whole log", autocomplete: "off", "aria-describedby": "log-matches" });
  const prev = h("button", { type: "button", class: "btn btn-icon", "aria-label": "Previous match", title: "Previous match (Shift+Enter)" }, "↑");
  const next = h("button", { type: "button", class: "btn btn-icon", "aria-label": "Next match", title: "Next match (Enter)" }, "↓");
  const counter = h("span", { class: "match-counter", id: "log-matches", "aria-live": "polite", "data-testid": "match-counter" }, "");
  // the API filters by level: pages are pages of matching lines (a line without a level counts as a
  // warning on stderr, info on stdout)
  const levelSel = h("select", { id: "log-level", title: "Show only lines of this level or worse" },
    h("option", { value: "" }, "All levels"),
    h("option", { value: "error" }, "Errors"),
    h("option", { value: "warning" }, "Warnings and errors"),
    h("option", { value: "info" }, "Info and above"));
  const follow = h("button", { type: "button", class: "btn", "aria-pressed": String(state.follow), title: "Show new lines as the step writes them" }, "Follow");
  const download = h("a", { class: "btn", download: "", href: logDownloadHref(runId, stepId, tryNumber, "all") }, "Download");
  const reload = h("button", { type: "button", class: "btn" }, "Reload");
  const info = h("div", { class: "log-info small", "aria-live": "polite" });
  const levelNote = h("p", { class: "muted small level-note", "aria-live": "polite" });
  const body = h("tbody");
  const scroller = h("div", { class: "log-scroll", tabindex: "0", "aria-label": "Log lines" },
    h("table", { class: "log" }, h("thead", { class: "sr-only" }, h("tr", {}, ["Line", "Time", "Stream", "Level", "Message"].map((t) => h("th", { scope: "col" }, t)))), body));
  const pageLabel = h("span", { class: "muted", "data-testid": "log-page" });
  const first = h("button", { type: "button", class: "btn", "aria-label": "First page" }, "«");
  const back = h("button", { type: "button", class: "btn" }, "‹ Previous");
  const fwd = h("button", { type: "button", class: "btn" }, "Next ›");
  const last = h("button", { type: "button", class: "btn", "aria-label": "Last page" }, "»");

  const root = h(
    "section",
    { class: "logviewer", "aria-label": "Log" },
    h("div", { class: "log-toolbar" },
      h("div", { class: "tabs", role: "tablist", "aria-label": "Stream" }, tabs),
      h("div", { class: "log-search" }, h("label", { for: "log-q", class: "sr-only" }, "Search the log"), search, prev, next, counter),
      h("div", { class: "log-actions" }, h("label", { for: "log-level", class: "sr-only" }, "Level"), levelSel, follow, download, reload)),
    info,
    levelNote,
    scroller,
    h("nav", { class: "pager", "aria-label": "Log pages" }, first, back, pageLabel, fwd, last),
  );

  function render(data, { scrollTo } = {}) {
    state.data = data;
    state.page = data.page;
    state.pages = data.pages;
    for (const [value] of STREAMS) {
      const n = value === "all" ? (data.counts.stdout || 0) + (data.counts.stderr || 0) : data.counts[value] || 0;
      root.querySelector(`[data-count=${value}]`).textContent = `(${n.toLocaleString()})`;
    }
    const notes = [];
    if (data.reason) notes.push(notice(data.available ? "info" : "warn", data.reason));
    if (data.live) {
      notes.push(h("span", { class: "live-note" }, h("span", { class: "pulse-dot", "aria-hidden": "true" }),
        data.snapshot_at ? `running: lines as published ${fmtAgo(data.snapshot_at)}` : "running"));
    }
    fill(info, notes);
    const matchSet = new Set(state.q ? data.matches : []);
    const current = state.matchIndex >= 0 ? state.matches[state.matchIndex] : null;
    fill(body, data.lines.map((line) =>
      h("tr", { class: `ln ln-${line.stream}${matchSet.has(line.n) ? " ln-match" : ""}${line.n === current ? " ln-current" : ""}`, "data-n": line.n },
        h("td", { class: "ln-n" }, line.n),
        h("td", { class: "ln-ts" }, fmtLineTime(line.ts)),
        h("td", { class: "ln-stream" }, line.stream),
        h("td", { class: "ln-level" }, line.level || ""),
        h("td", { class: "ln-msg" }, highlighted(line.message, state.q)))));
    if (!data.lines.length) {
      body.append(h("tr", {}, h("td", { colspan: 5, class: "empty" }, data.available ? "No lines in this stream." : "No lines to show.")));
    }
    const from = data.total ? (data.page - 1) * data.page_size + 1 : 0;
    const to = Math.min(data.total, data.page * data.page_size);
    const plus = data.total_exact === false ? "+" : "";
    pageLabel.textContent = `Page ${data.page} of ${data.pages - (plus ? 1 : 0)}${plus} · lines ${from.toLocaleString()}–${to.toLocaleString()} of ${data.total.toLocaleString()}${plus}`;
    first.disabled = back.disabled = data.page <= 1;
    fwd.disabled = last.disabled = data.page >= data.pages;
    follow.disabled = !data.live && !state.follow;
    download.href = logDownloadHref(runId, stepId, tryNumber, state.stream);
    download.toggleAttribute("hidden", !data.available);
    updateCounter();
    levelNote.textContent = data.level ? `Only ${LEVEL_NAMES[data.level]}: ${data.total.toLocaleString()}${plus} line${data.total === 1 && !plus ? "" : "s"}` : "";
    if (scrollTo === "bottom") scroller.scrollTop = scroller.scrollHeight;
    else if (scrollTo === "top") scroller.scrollTop = 0;
    else if (typeof scrollTo === "number") {
      const tr = body.querySelector(`tr[data-n="${scrollTo}"]`);
      if (tr) tr.scrollIntoView({ block: "center" });
    }
  }

  const LEVEL_NAMES = { error: "errors", warning: "warnings and errors", info: "info and above" };

  function updateCounter() {
    if (!state.q) { counter.textContent = ""; prev.disabled = next.disabled = true; return; }
    const n = state.matches.length;
    const more = state.data && state.data.matches_truncated ? "+" : "";
    counter.textContent = n ? `${state.matchIndex + 1} / ${n}${more}` : "0 matches";
    prev.disabled = next.disabled = n === 0;
  }

  async function load(page, opts = {}) {
    const mine = ++loading;
    let data;
    try {
      // page "last": the server finds the last page (a filtered page's total may be a lower bound)
      data = opts.prefetched ? await opts.prefetched : await api.logs(runId, stepId, {
        stream: state.stream, page: page === "last" ? 1 : page, last: page === "last" ? "true" : null,
        page_size: PAGE_SIZE, q: state.q || null, level: state.level || null, try: tryNumber,
      });
    } catch (err) {
      if (mine === loading && ctx.current()) fill(info, notice("error", `Could not load the log: ${err.message}`));
      return null;
    }
    if (mine !== loading || !ctx.current()) return null;
    if (state.q) state.matches = data.matches;
    render(data, opts);
    return data;
  }

  async function goToMatch(index) {
    if (!state.matches.length) return;
    state.matchIndex = (index + state.matches.length) % state.matches.length;
    const n = state.matches[state.matchIndex];
    const page = Math.ceil(n / PAGE_SIZE);
    stopFollow();
    await load(page, { scrollTo: n });
  }

  async function runSearch() {
    state.q = search.value.trim();
    state.matchIndex = -1;
    state.matches = [];
    const data = await load(state.page);
    if (!data || !state.q) return;
    if (state.matches.length) {
      // the first match at or after the top of the current page
      const startLine = (state.page - 1) * PAGE_SIZE + 1;
      const i = state.matches.findIndex((n) => n >= startLine);
      await goToMatch(i >= 0 ? i : 0);
    } else {
      updateCounter();
    }
  }

  function stopFollow() {
    if (!state.follow) return;
    state.follow = false;
    follow.setAttribute("aria-pressed", "false");
    clearTimeout(timer);
  }

  async function followTick() {
    if (!state.follow || !ctx.current()) return;
    const data = await load("last", { scrollTo: "bottom" });
    if (!state.follow || !ctx.current()) return;
    if (data && !data.live) {
      stopFollow();
      follow.disabled = true;
      info.append(notice("info", `The step ended (${data.status}); this is its stored log.`));
      if (onEnded) onEnded(data);
      return;
    }
    timer = setTimeout(followTick, FOLLOW_EVERY_MS);
  }

  function startFollow() {
    state.follow = true;
    follow.setAttribute("aria-pressed", "true");
    clearTimeout(timer);
    followTick();
  }

  tabs.forEach((tab) => tab.addEventListener("click", () => {
    state.stream = tab.dataset.stream;
    tabs.forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
    state.matchIndex = -1;
    if (state.follow) { followTick(); return; }
    (state.q ? runSearch() : load(1, { scrollTo: "top" }));
  }));
  root.querySelector("[role=tablist]").addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const i = tabs.findIndex((t) => t.getAttribute("aria-selected") === "true");
    const j = (i + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length;
    tabs[j].focus();
    tabs[j].click();
  });
  search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    if (search.value.trim() !== state.q) runSearch();
    else goToMatch(state.matchIndex + (event.shiftKey ? -1 : 1));
  });
  search.addEventListener("search", () => { if (!search.value) runSearch(); });
  next.addEventListener("click", () => goToMatch(state.matchIndex + 1));
  prev.addEventListener("click", () => goToMatch(state.matchIndex - 1));
  follow.addEventListener("click", () => (state.follow ? stopFollow() : startFollow()));
  reload.addEventListener("click", () => load(state.page));
  levelSel.addEventListener("change", () => {
    state.level = levelSel.value;
    state.matchIndex = -1;
    if (state.follow) { followTick(); return; }
    (state.q ? runSearch() : load(1, { scrollTo: "top" }));
  });
  first.addEventListener("click", () => { stopFollow(); load(1, { scrollTo: "top" }); });
  back.addEventListener("click", () => { stopFollow(); load(state.page - 1, { scrollTo: "top" }); });
  fwd.addEventListener("click", () => { stopFollow(); load(state.page + 1, { scrollTo: "top" }); });
  last.addEventListener("click", () => { stopFollow(); load("last", { scrollTo: "bottom" }); });

  ctx.onLeave(() => clearTimeout(timer));
  (async () => {
    const data = await load(1, { scrollTo: "top", prefetched: firstPage });
    if (data && data.live && state.follow) startFollow();
    else if (data && !data.live) { state.follow = false; follow.setAttribute("aria-pressed", "false"); follow.disabled = true; }
  })();
  return root;
}
