"""Bound a `TraceDoc` so its rendered text fits in `max_bytes`, dropping the middle first.

`bound(doc, max_bytes)` returns `doc` itself when `render_text(doc)` fits. Otherwise it sets
`truncated=True` and, in this order, until it fits:

1. header values longer than they can be are cut (only for absurd headers);
2. middle log lines are dropped (head and tail kept, `omitted_log_lines` counts them); the
   traceback keeps its full size when it can, else the log tail keeps at least a quarter;
3. the chain is rendered from its nodes (`traceback_text` cleared) and reduced: middle frames of
   the longest stacks down to 15 per stack (the first 5 and last 10), then middle members of the
   largest exception groups down to 15, then long strings (messages, notes, frame lines) cut in
   the middle down to 256 bytes, then frames and members down to none and strings to 48 bytes;
   each step binary-searches the largest count that fits;
4. last resort: the rendered traceback section is cut in the middle with a bytes marker.

Any log-tail budget the traceback did not need is given back to the log tail. Work is about
linear in what is kept (plus one pass over dropped frames per search step), never in the size of
what is dropped: a million log lines or a 50 MiB message cost little. Compute `fingerprint()`
before bounding: dropped frames change it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from rundossier.core.trace.model import (
    MARKER_BYTES,
    MARKER_EXCEPTIONS,
    MARKER_FRAMES,
    MARKER_LOG_LINES,
    ExceptionNode,
    Frame,
    TraceDoc,
    TraceHeader,
    cut_middle,
    head_count,
    utf8_len,
)
from rundossier.core.trace.render import (
    _chain_pieces,
    _error_summary,
    _header_pieces,
    _log_heading,
    _log_pieces,
    _pieces,
    _section_pieces,
    _text_size,
)

#: The smallest budget `bound()` accepts; below it a header alone may not fit.
MIN_MAX_BYTES = 4096

# (parameter, floor) steps of the chain reduction: K frames per stack, M members per group,
# C bytes per string.
_STEPS = (("K", 15), ("M", 15), ("C", 256), ("K", 0), ("M", 0), ("C", 48))
_HEADER_CAPS = (1024, 256, 64, 16)


class _Lengths:
    """UTF-8 lengths of long strings, memoized for the duration of one bound() call."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[str, int]] = {}

    def __call__(self, s: str) -> int:
        if s.isascii():
            return len(s)
        if len(s) < 4096:
            return utf8_len(s)
        hit = self._memo.get(id(s))
        if hit is None or hit[0] is not s:
            hit = (s, utf8_len(s))
            self._memo[id(s)] = hit
        return hit[1]


def bound(doc: TraceDoc, max_bytes: int) -> TraceDoc:
    """`doc` cut so that `len(render_text(result).encode("utf-8")) <= max_bytes`."""
    if max_bytes < MIN_MAX_BYTES:
        raise ValueError(f"max_bytes={max_bytes} is too small for a trace document; use at least {MIN_MAX_BYTES}")
    if _text_size(_pieces(doc), stop=max_bytes) <= max_bytes:
        return doc
    lengths = _Lengths()
    doc = _bound_header(doc, max_bytes // 2)
    budget = max_bytes - _text_size(_header_pieces(doc))
    section = _text_size(_section_pieces(doc), stop=budget)
    logs = _text_size(_log_pieces(doc), stop=budget)
    log_budget = max(budget - section, min(logs, budget // 4))
    work = doc
    logs_cut = logs > log_budget
    if logs_cut:
        work = _cut_logs(doc, log_budget, lengths)
        logs = _text_size(_log_pieces(work))
    section_budget = budget - logs
    if section > section_budget:
        work = _bound_section(work, section_budget, lengths)
        section = _text_size(_section_pieces(work), stop=section_budget)
        if logs_cut and section < section_budget:
            more = _cut_logs(doc, budget - section, lengths)
            work = work.replace(log_tail=more.log_tail, omitted_log_lines=more.omitted_log_lines)
    work = work.replace(truncated=True)
    if _text_size(_pieces(work), stop=max_bytes) <= max_bytes:
        return work
    return _last_resort(work, max_bytes, lengths)


# -- header -------------------------------------------------------------------------------------


def _bound_header(doc: TraceDoc, limit: int) -> TraceDoc:
    if _text_size(_header_pieces(doc), stop=limit) <= limit:
        return doc
    candidate = doc
    for cap in _HEADER_CAPS:
        reason = None if doc.reason is None else cut_middle(doc.reason, cap)
        candidate = doc.replace(header=_cap_header(doc.header, cap), reason=reason)
        if _text_size(_header_pieces(candidate), stop=limit) <= limit:
            return candidate
    header = candidate.header
    if header.extra:
        note = (("omitted", f"{len(header.extra)} header fields"),)
        candidate = candidate.replace(header=dataclasses.replace(header, extra=note))
    return candidate


def _cap_header(h: TraceHeader, cap: int) -> TraceHeader:
    def c(value: str | None) -> str | None:
        return None if value is None else cut_middle(value, cap)

    return TraceHeader(
        run_id=cut_middle(h.run_id, cap),
        flow_id=cut_middle(h.flow_id, cap),
        step_id=c(h.step_id),
        try_number=h.try_number,
        orchestrator=cut_middle(h.orchestrator, cap),
        host=c(h.host),
        started_at=c(h.started_at),
        failed_at=c(h.failed_at),
        extra=tuple((cut_middle(k, cap), cut_middle(v, cap)) for k, v in h.extra),
    )


# -- log tail -----------------------------------------------------------------------------------


def _cut_logs(doc: TraceDoc, limit: int, lengths: Callable[[str], int]) -> TraceDoc:
    """Keep the most log lines (a third from the head, the rest from the tail) within `limit`."""
    lines = doc.log_tail
    n = len(lines)
    total = n + doc.omitted_log_lines
    fixed = len(_log_heading(total)) + len(MARKER_LOG_LINES.format(n=total)) + 1
    room = limit - fixed
    head_sums = _cumulative(lines, range(n), room, lengths)
    tail_sums = _cumulative(lines, range(n - 1, -1, -1), room, lengths)

    def fits(k: int) -> bool:
        i = head_count(k)
        j = k - i
        if i >= len(head_sums) or j >= len(tail_sums):
            return False
        return head_sums[i] + tail_sums[j] <= room

    lo, hi = 0, n + 1  # fits(lo) is assumed (k=0 keeps no line), hi is past the end
    if room < 0:
        hi = 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    if lo >= n:
        return doc
    i = head_count(lo)
    kept = lines[:i] + lines[n - (lo - i) :]
    return doc.replace(log_tail=kept, omitted_log_lines=doc.omitted_log_lines + n - lo)


def _cumulative(lines: tuple[str, ...], order: range, room: int, lengths: Callable[[str], int]) -> list[int]:
    """Running byte sizes (line + newline) in `order`, stopping once past `room`."""
    sums = [0]
    total = 0
    for index in order:
        if total > room:
            break
        total += lengths(lines[index]) + 1
        sums.append(total)
    return sums


# -- traceback section --------------------------------------------------------------------------


def _bound_section(doc: TraceDoc, limit: int, lengths: _Lengths) -> TraceDoc:
    if not doc.captured:
        return _bound_uncaptured(doc, limit, lengths)
    if not doc.chain:
        text = doc.traceback_text
        return doc.replace(traceback_text=cut_middle(text, limit, own_line=True, nbytes=lengths(text)))
    chain = _bound_chain(doc.chain, limit, lengths)
    doc = doc.replace(chain=chain, traceback_text="")
    message = chain[-1].message
    summary = _error_summary(doc.error_type, doc.error_message)
    if message != doc.error_message and _error_summary(doc.error_type, message) == summary:
        doc = doc.replace(error_message=message)  # the cut message, unless the header would change
    return doc


def _bound_uncaptured(doc: TraceDoc, limit: int, lengths: _Lengths) -> TraceDoc:
    doc = doc.replace(
        reason=None if doc.reason is None else cut_middle(doc.reason, 256),
        error_type=None if doc.error_type is None else cut_middle(doc.error_type, 256),
    )
    message = doc.error_message
    if message:
        size = lengths(message)
        overhead = _text_size(_section_pieces(doc)) - size
        if overhead + size > limit:
            cut = cut_middle(message, max(0, limit - overhead), nbytes=size)
            doc = doc.replace(error_message=cut)
    return doc


def _bound_chain(chain: tuple[ExceptionNode, ...], limit: int, lengths: _Lengths) -> tuple[ExceptionNode, ...]:
    stats = {"K": 0, "M": 0, "C": 0}
    _collect_stats(chain, stats, lengths)
    params = {"K": stats["K"], "M": stats["M"], "C": min(stats["C"], limit)}

    def reduce(p: dict[str, int]) -> tuple[ExceptionNode, ...]:
        c = p["C"] if p["C"] < stats["C"] else None
        return _reduce_chain(chain, p["K"], p["M"], c, lengths)

    def fits(p: dict[str, int]) -> bool:
        return _text_size(_chain_pieces(reduce(p), ""), stop=limit) <= limit

    if fits(params):
        return reduce(params)
    for key, floor in _STEPS:
        current = params[key]
        if current <= floor:
            continue
        trial = {**params, key: floor}
        if not fits(trial):
            params = trial
            continue
        lo, hi = floor, current
        # string caps need not be byte-exact: stop within about 1/1024 of the cap
        while hi - lo > (max(1, hi // 1024) if key == "C" else 1):
            mid = (lo + hi) // 2
            if fits({**params, key: mid}):
                lo = mid
            else:
                hi = mid
        params[key] = lo
        break
    return reduce(params)


def _collect_stats(chain: tuple[ExceptionNode, ...], stats: dict[str, int], lengths: _Lengths) -> None:
    for node in chain:
        stats["K"] = max(stats["K"], len(node.frames))
        stats["M"] = max(stats["M"], len(node.group))
        longest = max([lengths(node.message), lengths(node.type)] + [lengths(n) for n in node.notes])
        for f in node.frames:
            longest = max(longest, lengths(f.line), lengths(f.filename), lengths(f.name))
        stats["C"] = max(stats["C"], longest)
        for member in node.group:
            _collect_stats(member, stats, lengths)


def _reduce_chain(
    chain: tuple[ExceptionNode, ...], k: int, m: int, c: int | None, lengths: _Lengths
) -> tuple[ExceptionNode, ...]:
    return tuple(_reduce_node(node, k, m, c, lengths) for node in chain)


def _reduce_node(node: ExceptionNode, k: int, m: int, c: int | None, lengths: _Lengths) -> ExceptionNode:
    frames = node.frames
    omitted_frames = node.omitted_frames
    count = len(frames)
    if count > k:
        head = head_count(k)
        tail = k - head
        omitted_frames += sum(1 + f.repeat for f in frames[head : count - tail])
        frames = frames[:head] + frames[count - tail :]
    group = node.group
    omitted_exceptions = node.omitted_exceptions
    if len(group) > m:
        head = head_count(m)
        tail = m - head
        omitted_exceptions += len(group) - m
        group = group[:head] + group[len(group) - tail :]
    group = tuple(_reduce_chain(member, k, m, c, lengths) for member in group)
    message, notes, error_type = node.message, node.notes, node.type
    if c is not None:

        def cut(s: str) -> str:
            if len(s) <= c and s.isascii():
                return s
            size = lengths(s)
            return s if size <= c else cut_middle(s, c, nbytes=size)

        message = cut(message)
        error_type = cut(error_type)
        notes = tuple(cut(n) for n in notes)
        frames = tuple(Frame(cut(f.filename), f.lineno, cut(f.name), cut(f.line), f.in_app, f.repeat) for f in frames)
    return ExceptionNode(
        type=error_type,
        message=message,
        frames=frames,
        omitted_frames=omitted_frames,
        notes=notes,
        relation=node.relation,
        group=group,
        omitted_exceptions=omitted_exceptions,
    )


# -- last resort --------------------------------------------------------------------------------


def _last_resort(doc: TraceDoc, max_bytes: int, lengths: _Lengths) -> TraceDoc:
    """Cut the rendered section itself; shrinks again by any overshoot until it fits."""
    doc = _bound_header(doc, max_bytes // 4)
    header = _text_size(_header_pieces(doc))
    logs = _text_size(_log_pieces(doc))
    log_budget = min(logs, (max_bytes - header) // 8)
    if logs > log_budget:
        doc = _cut_logs(doc, log_budget, lengths)
        logs = _text_size(_log_pieces(doc))
    budget = max_bytes - header - logs
    text = "".join(_section_pieces(doc)) if doc.captured else ""
    for _ in range(4):
        if doc.captured:
            doc = doc.replace(traceback_text=cut_middle(text, max(0, budget), own_line=True))
        else:
            doc = _bound_uncaptured(doc, max(0, budget), lengths)
        size = _text_size(_pieces(doc))
        if size <= max_bytes:
            return doc
        budget -= size - max_bytes
    # Unreachable with max_bytes >= MIN_MAX_BYTES; keep the promise anyway.
    return doc.replace(
        header=TraceHeader(run_id=cut_middle(doc.header.run_id, 16), flow_id="", orchestrator=""),
        error_type=None,
        error_message=None,
        traceback_text=MARKER_BYTES.format(n=len(text)) + "\n",
        log_tail=(),
        omitted_log_lines=0,
        reason=None,
    )


__all__ = [
    "bound",
    "MIN_MAX_BYTES",
    "MARKER_FRAMES",
    "MARKER_LOG_LINES",
    "MARKER_BYTES",
    "MARKER_EXCEPTIONS",
]
