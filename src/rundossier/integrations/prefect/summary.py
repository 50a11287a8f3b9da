"""What a failed Prefect flow run shows in the Prefect UI (pure): links and a short Markdown summary.

The link artifact points at the trace download of rundossier's HTTP API,
`{ui_base_url}/api/runs/{run_id}/trace`, and the summary links the run page `{ui_base_url}/#/run/{run_id}`
(see the UI routes contract). Without a `ui_base_url` there is no link a browser could open (a
storage path is none): the summary gives the `rundossier trace RUN_ID` command and says where to set
the base URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from rundossier.core.trace.chain import printed_chain
from rundossier.core.trace.model import CAUSE, CONTEXT

MAX_CHAIN = 8
MAX_LINE = 300
NO_UI_HINT = (
    "Links to the trace and the run appear here once the RunDossier block has a UI base URL: set "
    "`ui_base_url` to where `rundossier serve` is reachable from your browser."
)


def trace_url(ui_base_url: str, run_id: str) -> str:
    """The trace download of a run (rundossier's API answers with an attachment)."""
    return f"{ui_base_url.rstrip('/')}/api/runs/{quote(run_id, safe='')}/trace"


def run_page_url(ui_base_url: str, run_id: str) -> str:
    """The run's page in rundossier's web UI."""
    return f"{ui_base_url.rstrip('/')}/#/run/{quote(run_id, safe='')}"


@dataclass(frozen=True)
class FailureSummary:
    """The facts a failure summary shows (already masked)."""

    flow_name: str
    run_id: str
    status: str
    flow_run_name: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    step_id: str | None = None
    try_number: int | None = None
    chain: tuple[str, ...] = ()
    trace_link: str | None = None
    page_link: str | None = None
    reason: str | None = None


def chain_of(exc: BaseException | None, mask: Callable[[str], str] = str, limit: int = MAX_CHAIN) -> tuple[str, ...]:
    """`("RuntimeError: load failed", "caused by ConnectionError: timeout")`, outermost first, masked."""
    if exc is None:
        return ()
    links = printed_chain(exc)
    out = tuple(
        _LINK_WORDS.get(relation or "", "") + one_line(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__, mask)
        for e, relation in links[:limit]
    )
    return out + ("...",) if len(links) > limit else out


_LINK_WORDS = {CAUSE: "caused by ", CONTEXT: "while handling "}


def one_line(text: str, mask: Callable[[str], str] = str, limit: int = MAX_LINE) -> str:
    """First line of `text`, masked, at most `limit` characters."""
    text = mask(str(text))
    first = text.strip().split("\n", 1)[0]
    if len(first) > limit:
        first = first[: limit - 3] + "..."
    elif "\n" in text.strip():
        first += " ..."
    return first


def failure_markdown(s: FailureSummary, dossier: str | None = None) -> str:
    """The Markdown artifact: the dossier when one is given, else the error and failing task; then
    the exception chain (the evidence either way) and the links."""
    out: list[str] = []
    if dossier:
        out.append(dossier.rstrip())
        out.append("")
    else:
        title = "crashed" if s.status == "crashed" else "failed"
        out.append(f"## rundossier: flow run {title}")
        out.append("")
        where = f"**{md_escape(s.flow_name)}**"
        if s.flow_run_name:
            where += f" (`{md_code(s.flow_run_name)}`)"
        out.append(f"Flow {where}, rundossier run `{s.run_id}`, status **{s.status}**.")
        out.append("")
        if s.step_id:
            task = f"Failing task: `{md_code(s.step_id)}`"
            if s.try_number:
                task += f", try {s.try_number}"
            out.append(task + ".")
            out.append("")
        if s.error_type or s.error_message:
            err = ": ".join(x for x in (s.error_type, s.error_message) if x)
            out.extend(fenced(err))
            out.append("")
    if len(s.chain) > 1:
        out.append("Exception chain (outermost first):")
        out.append("")
        out.extend(f"{n}. {md_escape(link)}" for n, link in enumerate(s.chain, 1))
        out.append("")
    if not dossier and s.reason:
        out.append(f"_{md_escape(s.reason)}_")
        out.append("")
    out.append("")
    if s.trace_link:
        out.append(f"- [Download the full trace]({s.trace_link})")
    if s.page_link:
        out.append(f"- [Open the run in rundossier]({s.page_link})")
    if not s.trace_link:
        out.append(f"- `rundossier trace {s.run_id}` prints the trace")
        out.append(f"- {NO_UI_HINT}")
    return "\n".join(out).strip() + "\n"


def fenced(text: str) -> list[str]:
    """A fenced code block that holds `text` whatever backticks it contains."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", text, fence]


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#"})


def md_escape(text: str) -> str:
    """Text shown as is in Markdown (no links, emphasis or HTML from user data)."""
    return text.translate(_MD_SPECIAL)


def md_code(text: str) -> str:
    """Text safe inside a single-backtick code span."""
    return text.replace("`", "'")


__all__ = [
    "NO_UI_HINT",
    "FailureSummary",
    "chain_of",
    "failure_markdown",
    "fenced",
    "md_code",
    "md_escape",
    "one_line",
    "run_page_url",
    "trace_url",
]
