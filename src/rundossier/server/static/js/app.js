// The page: hash router, live indicator, token prompt. One module per page under pages/.

import { live } from "./api.js";
import { installFrame } from "./frame.js";
import { installPrefs } from "./prefs.js";
import { h, fill, parseHash, setTitle } from "./util.js";
import { renderRuns } from "./pages/runs.js";
import { renderRun } from "./pages/run.js";
import { renderStep } from "./pages/step.js";
import { renderFailures } from "./pages/failures.js";
import { renderRetention } from "./pages/retention.js";
import { renderFind } from "./pages/find.js";

installFrame();

const main = document.getElementById("main");
const indicator = document.querySelector("[data-testid=live-indicator]");
const LABELS = { connecting: "Connecting", live: "Live", error: "Reconnecting", offline: "Offline", disconnected: "Offline" };
const TITLES = { runs: "Runs", run: "Run", step: "Step", failures: "Failures", retention: "Retention", find: "Finding a run", "not-found": "Not found" };

let cleanup = null; // what the current page wants done when it is left
let generation = 0;

function route() {
  const { parts, params } = parseHash();
  const [section, id, sub, subId] = parts;
  if (section === "run" && id && sub === "step" && subId !== undefined) {
    return { nav: "runs", view: "step", render: (ctx) => renderStep(ctx, id, subId, params) };
  }
  if (section === "run" && id) return { nav: "runs", view: "run", render: (ctx) => renderRun(ctx, id, params) };
  if (section === "failures") return { nav: "failures", view: "failures", render: (ctx) => renderFailures(ctx, params) };
  if (section === "retention") return { nav: "retention", view: "retention", render: (ctx) => renderRetention(ctx, params) };
  if (section === "find") return { nav: "runs", view: "find", render: (ctx) => renderFind(ctx, params) };
  if (!section || section === "runs") return { nav: "runs", view: "runs", render: (ctx) => renderRuns(ctx, params) };
  return {
    nav: null,
    view: "not-found",
    render: ({ main }) => {
      fill(main, h("h1", {}, "Not found"), h("p", {}, "No page at this address. ", h("a", { href: "#/runs" }, "Go to the runs.")));
    },
  };
}

async function show() {
  if (cleanup) {
    try { cleanup(); } catch (err) { console.error(err); }
    cleanup = null;
  }
  const mine = ++generation;
  const { nav, view, render } = route();
  document.documentElement.dataset.view = view; // in a frame, the section links show on list views only
  setTitle(TITLES[view]); // pages with more to say (a run's flow and status) set their own
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  const ctx = {
    main,
    live,
    /** false once the user navigated elsewhere: async work checks it before touching the page */
    current: () => mine === generation,
    onLeave: (fn) => {
      const previous = cleanup;
      cleanup = () => { if (previous) previous(); fn(); };
    },
  };
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    await render(ctx);
  } catch (err) {
    if (mine === generation) fill(main, h("div", { class: "notice notice-error", role: "alert" }, `This page failed: ${err.message}`));
    console.error(err);
  }
}

function setIndicator(state) {
  indicator.dataset.state = state;
  indicator.textContent = LABELS[state] || state;
  indicator.title = state === "live" ? "Live updates from the server"
    : state === "error" ? "The connection to the server was lost; reconnecting"
      : state === "connecting" ? "Connecting to the server" : "The server cannot be reached; retrying";
}

// -- token prompt (standalone `serve` on a non-loopback address) ------------------------------------
let prompting = false;

function promptToken() {
  if (prompting) return;
  prompting = true;
  live.disconnect();
  const input = h("input", { type: "password", id: "token", autocomplete: "current-password", required: true, size: 40 });
  const form = h(
    "form",
    { class: "card token-form" },
    h("h1", {}, "This server needs its token"),
    h("p", {}, "Enter the value of RUNDOSSIER_API_TOKEN the server was started with. It is kept in a cookie for this page only."),
    h("label", { for: "token" }, "Token"),
    " ",
    input,
    " ",
    h("button", { type: "submit", class: "btn btn-primary" }, "Continue"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    const path = location.pathname.replace(/[^/]*$/, "") || "/";
    const secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = `rundossier_token=${encodeURIComponent(value)}; path=${path}; SameSite=Strict${secure}`;
    prompting = false;
    live.start();
    show();
  });
  generation++;
  fill(main, form);
  input.focus();
}

window.addEventListener("rundossier:auth-required", promptToken);
window.addEventListener("hashchange", show);
document.querySelector("[data-skip]").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
live.onState(setIndicator);
window.addEventListener("offline", () => live.disconnect());
window.addEventListener("online", () => live.start());
installPrefs({ rerender: show });
live.start();
show();
