"""The dossier as plain text (top of `rundossier show`) and as Markdown (the Prefect artifact)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from rundossier.core.dossier.model import CLOSED, INCONSISTENT, OPEN, Dossier, Timing, Window
from rundossier.core.ids import RUN_STEP
from rundossier.core.timefmt import duration_text

MAX_EVIDENCE = 5
MAX_FIELDS_CHARS = 200


def _label(name: str) -> str:
    return name.replace("_", " ")


def window_text(w: Window) -> str:
    """`setup 1.2s`, `setup open (12.0s so far): started, no first work yet`, `queue wait ?: ...`."""
    name = _label(w.name)
    if w.state == CLOSED:
        return f"{name} {duration_text(w.duration_ms)}"
    if w.state == OPEN:
        so_far = f" ({duration_text(w.elapsed_ms)} so far)" if w.elapsed_ms is not None else ""
        return f"{name} open{so_far}: {w.signal}"
    if w.state == INCONSISTENT:
        return f"{name} ?: {w.signal}"
    return f"{name} ?: {w.signal}"


def timing_text(t: Timing) -> str:
    return " | ".join(window_text(w) for w in t.windows)


def _fields(fields: dict[str, Any]) -> str:
    text = json.dumps(fields, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= MAX_FIELDS_CHARS else text[: MAX_FIELDS_CHARS - 3] + "..."


def _failed_timing(d: Dossier) -> Timing | None:
    if d.failed_step is None:
        return None
    for t in d.steps:
        if t.step_id == d.failed_step and t.try_number == d.failed_try:
            return t
    return None


def dossier_text(d: Dossier) -> str:
    """Plain text for a terminal: headline, class and evidence, timing, signals, next actions."""
    lines = [f"DOSSIER  {d.headline}"]
    c = d.classification
    if c is not None:
        lines.append(f"  class        {c.code} ({c.confidence} confidence): {c.summary}")
        for e in c.evidence[:MAX_EVIDENCE]:
            lines.append(f"  evidence     - {e.text}")
            lines.append(f"                 from {e.source}" + (f"  {_fields(e.fields)}" if e.fields else ""))
        if c.also:
            lines.append(f"  also         {', '.join(c.also)}")
    lines.append(f"  run timing   {timing_text(d.timing)}")
    ft = _failed_timing(d)
    if ft is not None:
        lines.append(f"  step timing  {ft.step_id} try {ft.try_number}: {timing_text(ft)}")
    for s in d.signals:
        where = f" ({s.step_id} try {s.try_number})" if s.step_id else ""
        lines.append(f"  signal       ! {s.text}{where}")
    if d.material and c is not None:
        lines.append("  evidence kept " + "; ".join(f"{m.name}: {m.state}" for m in d.material))
    for a in d.actions:
        head = f"  next         {a.title}"
        lines.append(head)
        if a.command:
            lines.append(f"                 $ {a.command}")
        if a.detail:
            lines.append(f"                 {a.detail}")
    cmp = d.comparison
    if cmp is not None:
        lines.append(f"  compared     with {cmp.baseline_run_id} (the flow's last successful run)")
        for diff in cmp.differences:
            note = f" ({diff.note})" if diff.note else ""
            lines.append(f"                 {diff.field}: {diff.failed} vs {diff.baseline}{note}")
        for w in cmp.windows:
            if w.delta_ms is None:
                continue
            scope = "run" if w.step_id is None else f"step {w.step_id}"
            lines.append(
                f"                 {scope} {_label(w.window)}: {duration_text(w.failed_ms)} "
                f"vs {duration_text(w.baseline_ms)} "
                f"({'+' if w.delta_ms >= 0 else ''}{duration_text(w.delta_ms)})"
            )
        if cmp.newly_failed:
            lines.append(f"                 newly failed: {', '.join(cmp.newly_failed)}")
        if cmp.new_steps:
            lines.append(f"                 new steps: {', '.join(cmp.new_steps)}")
        if cmp.not_reached:
            lines.append(f"                 not reached: {', '.join(cmp.not_reached[:20])}")
        if cmp.note:
            lines.append(f"                 {cmp.note}")
    elif c is not None and not d.live:
        lines.append("  compared     no earlier successful run of this flow is recorded")
    r = d.replay
    if r is not None:
        verdict = "replayable" if r.replayable else "NOT replayable"
        lines.append(f"  replay       {verdict}: {r.reason}")
        lines.append(f"                 redo: {_names(r.redo)}")
        lines.append(f"                 keep: {_names(r.keep)}")
        for e in r.evidence:
            lines.append(f"                 - {e.text}")
    if d.fingerprint:
        lines.append(f"  group        {d.fingerprint}  (rundossier failures)")
    return "\n".join(lines) + "\n"


def _names(names: tuple[str, ...], limit: int = 20) -> str:
    if not names:
        return "-"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _md_escape(text: str) -> str:
    out = str(text).replace("\\", "\\\\")
    for ch in "`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out


def _md_code(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}\n{text}\n{fence}"


def dossier_markdown(d: Dossier, *, ui_base_url: str | None = None) -> str:
    """Markdown for a Prefect artifact (or any Markdown viewer); user text is escaped.

    Only what a browser renders: no emoji shortcodes (Prefect's Markdown shows `:warning:` as is)
    and no storage locations (`file://`, `s3://`), which no browser opens. With `ui_base_url`, where
    rundossier's UI and API are served, the trace action links to the trace download there.
    """
    out = [f"## Run dossier: {_md_escape(d.headline)}", ""]
    out.append(f"Run `{d.run_id}` of **{_md_escape(d.flow_id)}** ({d.orchestrator}), status **{d.status}**.")
    out.append("")
    c = d.classification
    if c is not None:
        out.append(f"**{_md_escape(c.label)}** ({c.confidence} confidence): {_md_escape(c.summary)}")
        out.append("")
        for e in c.evidence[:MAX_EVIDENCE]:
            out.append(f"- {_md_escape(e.text)} _(from {_md_escape(e.source)})_")
        if c.also:
            out.append(f"- also matched: {', '.join(c.also)}")
        out.append("")
    out.append("| window | run | " + (f"step {_md_escape(d.failed_step or '')} |" if _failed_timing(d) else ""))
    out.append("|---|---|" + ("---|" if _failed_timing(d) else ""))
    ft = _failed_timing(d)
    for i, w in enumerate(d.timing.windows):
        row = f"| {_label(w.name)} | {_md_escape(_cell(w))} |"
        if ft is not None:
            row += f" {_md_escape(_cell(ft.windows[i]))} |"
        out.append(row)
    out.append("")
    if d.signals:
        for s in d.signals:
            out.append(f"- \u26a0\ufe0f {_md_escape(s.text)}")
        out.append("")
    if d.actions:
        out.append("### Next actions")
        out.append("")
        refs = {m.ref for m in d.material if m.ref}
        for a in d.actions:
            title, detail = _md_escape(a.title), a.detail
            if detail is not None and detail in refs:  # a storage location: a link to the API instead
                detail = None
                if ui_base_url:
                    title = f"[{title}]({trace_link(d, ui_base_url)})"
            out.append(f"**{title}**" + (f": {_md_escape(detail)}" if detail else ""))
            if a.command:
                out.append("")
                out.append(_md_code(a.command))
            out.append("")
    cmp = d.comparison
    if cmp is not None:
        out.append(f"### Compared with the last successful run `{cmp.baseline_run_id}`")
        out.append("")
        for diff in cmp.differences:
            out.append(f"- {_md_escape(diff.field)}: `{diff.failed}` vs `{diff.baseline}`")
        for wd in cmp.windows:
            if wd.delta_ms is not None:
                scope = "run" if wd.step_id is None else f"step {wd.step_id}"
                out.append(
                    f"- {_md_escape(scope)} {_label(wd.window)}: {duration_text(wd.failed_ms)} "
                    f"vs {duration_text(wd.baseline_ms)}"
                )
        if cmp.newly_failed:
            out.append(f"- newly failed: {_md_escape(', '.join(cmp.newly_failed))}")
        out.append("")
    r = d.replay
    if r is not None:
        verdict = "Replayable" if r.replayable else "**Not replayable**"
        out.append(f"### Replay plan: {verdict}")
        out.append("")
        out.append(_md_escape(r.reason))
        out.append("")
        out.append(f"- redo: {_md_escape(_names(r.redo))}")
        out.append(f"- keep: {_md_escape(_names(r.keep))}")
        for e in r.evidence:
            out.append(f"- {_md_escape(e.text)}")
        out.append("")
    if d.fingerprint:
        out.append(f"Failure group `{d.fingerprint}`.")
    return "\n".join(out).rstrip() + "\n"


def trace_link(d: Dossier, ui_base_url: str) -> str:
    """The trace download of the dossier's failed try (or of the run) in rundossier's API."""
    run = f"{ui_base_url.rstrip('/')}/api/runs/{quote(d.run_id, safe='')}"
    if d.failed_step is not None and d.failed_step != RUN_STEP:
        return f"{run}/steps/{quote(d.failed_step, safe='')}/trace?try={d.failed_try or 1}"
    return f"{run}/trace"


def _cell(w: Window) -> str:
    if w.state == CLOSED:
        return duration_text(w.duration_ms)
    if w.state == OPEN:
        return f"open: {w.signal}"
    return f"? {w.signal}"


__all__ = ["dossier_text", "dossier_markdown", "timing_text", "window_text", "trace_link"]
