// Copy buttons. The Clipboard API is missing or refused where this page often runs: Airflow's
// sandboxed tab, an Airflow served over plain http (not a secure context). Then the text is
// copied from a selection (execCommand("copy")), and when that fails too, it is left selected
// for Ctrl+C. The button says "Copied" only when a copy reported success.

import { h } from "../util.js";

function copyFromSelection(text) {
  const buffer = h("textarea", { class: "copy-buffer", readonly: true, "aria-hidden": "true", tabindex: "-1" });
  buffer.value = text;
  const focused = document.activeElement;
  document.body.append(buffer);
  buffer.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  buffer.remove();
  if (focused instanceof HTMLElement) focused.focus({ preventScroll: true });
  return copied;
}

/** Put `text` on the clipboard; true when the browser says it did. */
export async function copyText(text) {
  if (window.isSecureContext && navigator.clipboard && navigator.clipboard.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // refused (a sandboxed frame, no permission): the selection-based copy below
    }
  }
  return copyFromSelection(text);
}

function selectContents(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

/** A Copy button for `text`; `source` (the element showing it) is selected when copying fails. */
export function copyButton(text, source = null, title = "Copy the command") {
  const btn = h("button", { type: "button", class: "btn btn-small", title, "data-testid": "copy" }, "Copy");
  const status = h("span", { class: "sr-only", role: "status" });
  let timer = null;
  btn.addEventListener("click", async () => {
    const copied = await copyText(text);
    btn.textContent = copied ? "Copied" : "Press Ctrl+C";
    btn.dataset.copied = String(copied);
    status.textContent = copied ? "Copied to the clipboard" : "Could not copy: the text is selected, press Ctrl+C";
    if (!copied && source) selectContents(source);
    clearTimeout(timer);
    timer = setTimeout(() => {
      btn.textContent = "Copy";
      delete btn.dataset.copied;
      status.textContent = "";
    }, copied ? 1500 : 4000);
  });
  return h("span", { class: "copy" }, btn, status);
}
