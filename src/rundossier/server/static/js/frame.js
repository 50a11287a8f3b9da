// The page inside another page's frame: Airflow renders it in its plugin tabs, in an iframe
// sandboxed with "allow-scripts allow-same-origin allow-forms" (3.1 to 3.3; later releases add
// allow-downloads). Such a frame may not start a download nor navigate the top window, but the
// top document, same origin and not sandboxed, may: downloads and links to the host's own pages
// are clicked there. In a frame the page also drops its own header and follows the host's theme.

/** True when this page is shown inside a frame (any host). */
export const framed = window.top !== window;

/**
 * The top window's document when a same-origin page frames this one (Airflow's UI), else null:
 * not framed, or framed by another origin (its document cannot be reached).
 */
export function hostDocument() {
  if (!framed) return null;
  try {
    const doc = window.top.document;
    return doc && doc.body ? doc : null;
  } catch {
    return null;
  }
}

/**
 * Follow `href` (resolved against this page) from an <a> in the top document: a download when
 * `download` is a string (the suggested filename, or "" for the server's), else a navigation of
 * the top window (or a new tab when `newTab`).
 */
export function clickInHost(doc, href, { download = null, newTab = false } = {}) {
  const a = doc.createElement("a");
  a.href = new URL(href, document.baseURI).href;
  if (download !== null) a.setAttribute("download", download);
  if (newTab) {
    a.target = "_blank";
    a.rel = "noopener";
  }
  a.style.display = "none";
  doc.body.append(a);
  try {
    a.click();
  } finally {
    a.remove();
  }
}

/**
 * Downloads (`<a download>`) and links to the host's pages (`<a target="_top">`) clicked in this
 * page are followed from the top document. Not framed, or framed by another origin: the
 * browser's own handling, unchanged.
 */
function delegateClicks() {
  const follow = (event, newTab) => {
    if (event.defaultPrevented) return;
    const a = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (!a) return;
    const download = a.getAttribute("download"); // null: not a download
    if (download === null && a.target !== "_top") return;
    const doc = hostDocument();
    if (!doc) return;
    event.preventDefault();
    clickInHost(doc, a.href, { download, newTab: newTab && download === null });
  };
  document.addEventListener("click", (event) => {
    if (event.button !== 0) return;
    follow(event, event.ctrlKey || event.metaKey || event.shiftKey);
  });
  document.addEventListener("auxclick", (event) => {
    if (event.button === 1) follow(event, true);
  });
}

/** The host's colour mode: Airflow (next-themes) puts `dark` or `light` on its <html> class. */
function hostIsDark(doc) {
  const root = doc.documentElement;
  if (root.classList.contains("dark") || root.dataset.theme === "dark") return true;
  if (root.classList.contains("light") || root.dataset.theme === "light") return false;
  return root.style.colorScheme === "dark";
}

function followTheme(doc) {
  const apply = () => {
    document.documentElement.dataset.theme = hostIsDark(doc) ? "dark" : "light";
  };
  apply();
  new MutationObserver(apply).observe(doc.documentElement, {
    attributes: true,
    attributeFilter: ["class", "data-theme", "style"],
  });
}

/** Call once at start-up. */
export function installFrame() {
  if (!framed) return;
  document.documentElement.classList.add("framed");
  delegateClicks();
  const doc = hostDocument();
  if (doc) followTheme(doc);
}
