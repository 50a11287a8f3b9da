// The reader's choices, kept in localStorage: the colour mode (follows the system's
// prefers-color-scheme until the toggle picks light or dark) and the time zone of every time shown
// (local with its offset, or UTC). Inside Airflow's frame the host's colour mode rules (frame.js).

import { framed } from "./frame.js";
import { setTimeZoneMode, timeZoneMode, zoneLabel } from "./util.js";

const THEME_KEY = "rundossier.theme";
const THEMES = ["auto", "dark", "light"];
const THEME_LABEL = { auto: "Auto", dark: "Dark", light: "Light" };

function stored(key, fallback) {
  try {
    return localStorage.getItem(key) || fallback;
  } catch {
    return fallback; // storage refused: the default, for this page only
  }
}

function keep(key, value) {
  try { localStorage.setItem(key, value); } catch { /* this page only */ }
}

/** Install the colour-mode and time-zone toggles; `rerender()` redraws the page after a time-zone change. */
export function installPrefs({ rerender }) {
  const themeBtn = document.querySelector("[data-testid=theme-toggle]");
  const tzBtn = document.querySelector("[data-testid=tz-toggle]");
  const system = window.matchMedia("(prefers-color-scheme: dark)");
  let theme = THEMES.includes(stored(THEME_KEY, "auto")) ? stored(THEME_KEY, "auto") : "auto";

  const applyTheme = () => {
    const dark = theme === "dark" || (theme === "auto" && system.matches);
    document.documentElement.dataset.theme = dark ? "dark" : "light";
    themeBtn.textContent = `Theme: ${THEME_LABEL[theme]}`;
    themeBtn.title = `Colour mode: ${theme === "auto" ? "as the system's setting" : THEME_LABEL[theme].toLowerCase()}; click to switch`;
  };
  if (framed) {
    themeBtn.hidden = true; // the host's colour mode (frame.js)
  } else {
    applyTheme();
    system.addEventListener("change", () => { if (theme === "auto") applyTheme(); });
    themeBtn.addEventListener("click", () => {
      theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
      keep(THEME_KEY, theme);
      applyTheme();
    });
  }

  const applyTz = () => {
    const utc = timeZoneMode() === "utc";
    tzBtn.textContent = utc ? "Times in UTC" : `Times in local (${zoneLabel()})`;
    tzBtn.setAttribute("aria-label", `${tzBtn.textContent}. Switch to ${utc ? "local time" : "UTC"}`);
  };
  applyTz();
  tzBtn.addEventListener("click", () => {
    setTimeZoneMode(timeZoneMode() === "utc" ? "local" : "utc");
    applyTz();
    rerender();
  });
}
