"""Tests of capture(): logging records and stdout/stderr writes routed to the step's StepLog."""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import sys
import threading

import pytest

from rundossier.core.logs import decode_lines
from rundossier.record.capture import capture, capture_errors
from rundossier.record.steplog import StepLog

capture_module = sys.modules["rundossier.record.capture"]

ORIGINAL_CALL_HANDLERS = logging.Logger.callHandlers


@pytest.fixture(autouse=True)
def clean_install():
    yield
    assert logging.Logger.callHandlers is ORIGINAL_CALL_HANDLERS
    assert capture_module._tees == {}
    assert capture_module._logging_refs == [0]


def use_streams(monkeypatch) -> tuple[io.StringIO, io.StringIO]:
    """Put StringIOs in sys.stdout/sys.stderr. Call it in the test body: pytest's own capture
    replaces the streams again between fixture setup and the test call."""
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return out, err


@pytest.fixture
def logger(request):
    log = logging.getLogger(f"tcap.{request.node.name}")
    log.setLevel(logging.DEBUG)
    yield log
    log.setLevel(logging.NOTSET)
    for handler in list(log.handlers):
        log.removeHandler(handler)
    log.propagate = True


def lines(steplog: StepLog) -> list[tuple[str, str | None, str]]:
    return [(x.stream, x.level, x.message) for x in decode_lines(steplog.snapshot())]


def messages(steplog: StepLog) -> list[str]:
    return [x.message for x in decode_lines(steplog.snapshot())]


def test_print_and_logging_both_land_and_still_reach_the_streams(monkeypatch, logger):
    streams = use_streams(monkeypatch)
    out, err = streams
    sl = StepLog()
    with capture(sl) as got:
        assert got is sl
        print("hello", "world")
        print("to stderr", file=sys.stderr)
        logger.info("loaded %d rows", 3)
    assert lines(sl) == [
        ("stdout", None, "hello world"),
        ("stderr", None, "to stderr"),
        ("stderr", "INFO", f"{logger.name}: loaded 3 rows"),
    ]
    assert out.getvalue() == "hello world\n"
    assert err.getvalue() == "to stderr\n"
    assert sys.stdout is out and sys.stderr is err


def test_record_timestamp_and_level_come_from_the_record(monkeypatch, logger):
    use_streams(monkeypatch)
    sl = StepLog(clock=lambda: 1.0)
    with capture(sl):
        logger.warning("w")
    (line,) = decode_lines(sl.snapshot())
    assert line.level == "WARNING" and line.ts != 1.0


@pytest.mark.parametrize(
    ("writes", "expected"),
    [
        (["abc", "def"], ["abcdef"]),
        (["a\nb", "c\n"], ["a", "bc"]),
        (["x\r\n", "y\r", "\n"], ["x", "y"]),
        (["10%\r", "50%\r", "100%\n"], ["100%"]),
        (["\n\n"], ["", ""]),
        (["no newline at all"], ["no newline at all"]),
        (["tail\r"], ["tail"]),
        (["a", "", "b\n"], ["ab"]),
        (["日本", "語\n✓"], ["日本語", "✓"]),
    ],
)
def test_partial_writes_become_lines_and_are_flushed_at_exit(monkeypatch, writes, expected):
    streams = use_streams(monkeypatch)
    out, _ = streams
    sl = StepLog()
    with capture(sl):
        for text in writes:
            assert sys.stdout.write(text) == len(text)
    assert messages(sl) == expected
    assert out.getvalue() == "".join(writes)


def test_a_line_that_never_ends_is_stored_as_one_bounded_line(monkeypatch):
    use_streams(monkeypatch)
    sl = StepLog(max_line_bytes=1000)
    with capture(sl):
        for _ in range(20_000):
            sys.stdout.write("xyz")
    [got] = messages(sl)
    assert got.startswith("xyz" * 300) and got.endswith(" bytes omitted")
    head, _, omitted = got.rpartition(" ... ")
    assert len(got.encode()) <= 1000 and len(head) + int(omitted.split()[0]) == 60_000


@pytest.mark.parametrize("then", ["\nafter\n", "after\n", ""])
def test_one_huge_print_is_one_bounded_line(monkeypatch, then):
    # print() writes the text, then the newline: the text alone must not be stored whole
    use_streams(monkeypatch)
    sl = StepLog(max_line_bytes=1000)
    with capture(sl):
        sys.stdout.write("é" * 5_000_000)
        sys.stdout.write(then)
    got = messages(sl)
    assert got[1:] == (["after"] if then.startswith("\n") else []) and sl.total_bytes < 2_000
    head, _, marker = got[0].rpartition(" ... ")
    stored = len(head.encode())
    dropped = 10_000_000 + (len("after") if then == "after\n" else 0) - stored
    assert head.startswith("éé") and marker == f"{dropped} bytes omitted"


def test_a_progress_bar_longer_than_a_line_keeps_its_latest_state(monkeypatch):
    use_streams(monkeypatch)
    sl = StepLog(max_line_bytes=1000)
    with capture(sl):
        sys.stderr.write("x" * 5000)
        sys.stderr.write("\rdone 100%\n")
    assert messages(sl) == ["done 100%"]


def test_a_progress_bar_is_stored_as_its_final_state(monkeypatch):
    use_streams(monkeypatch)
    sl = StepLog()
    with capture(sl):
        for i in range(50_000):
            sys.stderr.write(f"\rprogress {i}%")
        sys.stderr.write("\n")
    assert lines(sl) == [("stderr", None, "progress 49999%")]


def test_writelines_is_captured(monkeypatch):
    streams = use_streams(monkeypatch)
    out, _ = streams
    sl = StepLog()
    with capture(sl):
        sys.stdout.writelines(iter(["a\n", "b", "c\n"]))
    assert messages(sl) == ["a", "bc"]
    assert out.getvalue() == "a\nbc\n"


def test_tee_delegates_like_the_stream_it_wraps(monkeypatch):
    inner = io.TextIOWrapper(io.BytesIO(), encoding="latin-1", newline="\n")
    monkeypatch.setattr(sys, "stdout", inner)
    sl = StepLog()
    with capture(sl):
        tee = sys.stdout
        assert tee is not inner
        assert tee.encoding == "latin-1"
        assert tee.buffer is inner.buffer
        assert tee.isatty() is False
        assert tee.writable()
        with pytest.raises(io.UnsupportedOperation):
            tee.fileno()
        tee.custom_flag = True  # attributes set on the stream land on the original
        print("café")
        tee.flush()
    assert inner.buffer.getvalue() == "café\n".encode("latin-1")
    assert inner.custom_flag is True
    assert messages(sl) == ["café"]


def test_tee_can_be_weakly_referenced_like_a_stream(monkeypatch):
    # structlog keys its write locks by stream in a WeakKeyDictionary (Airflow's task logging)
    import weakref

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    with capture(StepLog()):
        locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        locks[sys.stdout] = threading.Lock()
        assert weakref.ref(sys.stdout)() is sys.stdout
        assert sys.stdout in locks


def test_tee_fileno_of_a_real_file(monkeypatch, tmp_path):
    with open(tmp_path / "out.txt", "w") as fh:
        monkeypatch.setattr(sys, "stdout", fh)
        with capture(StepLog()):
            assert sys.stdout.fileno() == fh.fileno()
            print("x")


def test_errors_of_the_original_stream_are_the_users(monkeypatch):
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stdout", closed)
    with pytest.raises(ValueError) as outside:
        print("x")
    sl = StepLog()
    with capture(sl):
        with pytest.raises(ValueError) as inside:
            print("x")
    assert str(inside.value) == str(outside.value)


def test_exception_propagates_unchanged_and_earlier_lines_are_kept(monkeypatch, logger):
    streams = use_streams(monkeypatch)
    out, _ = streams
    sl = StepLog()
    err = RuntimeError("task failed")
    with pytest.raises(RuntimeError) as excinfo:
        with capture(sl):
            print("before")
            logger.info("about to fail")
            sys.stdout.write("partial")
            raise err
    assert excinfo.value is err
    assert messages(sl) == ["before", f"{logger.name}: about to fail", "partial"]
    assert sys.stdout is out


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), GeneratorExit()])
def test_base_exceptions_propagate_too(monkeypatch, exc):
    use_streams(monkeypatch)
    with pytest.raises(type(exc)) as excinfo:
        with capture(StepLog()):
            raise exc
    assert excinfo.value is exc


def test_exc_info_record_includes_the_traceback(monkeypatch, logger):
    use_streams(monkeypatch)
    sl = StepLog()
    with capture(sl):
        try:
            int("not a number")
        except ValueError:
            logger.exception("lookup failed")
    ((stream, level, message),) = lines(sl)
    assert (stream, level) == ("stderr", "ERROR")
    assert message.startswith(f"{logger.name}: lookup failed\nTraceback (most recent call last):")
    assert "ValueError: invalid literal for int()" in message
    assert "test_exc_info_record_includes_the_traceback" in message


def test_users_formatter_still_formats_its_own_traceback(monkeypatch, logger):
    use_streams(monkeypatch)

    class Custom(logging.Formatter):
        def formatException(self, ei):  # noqa: N802
            return "CUSTOM TRACE"

    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(Custom("%(message)s"))
    logger.addHandler(handler)
    sl = StepLog()
    with capture(sl):
        try:
            int("boom")
        except ValueError:
            logger.exception("boom")
    assert handler.stream.getvalue() == "boom\nCUSTOM TRACE\n"
    assert "ValueError" in messages(sl)[0]


def test_level_filters_records(monkeypatch, logger):
    use_streams(monkeypatch)
    sl = StepLog()
    with capture(sl, level=logging.WARNING):
        logger.debug("d")
        logger.info("i")
        logger.warning("w")
        logger.error("e")
    assert [level for _, level, _ in lines(sl)] == ["WARNING", "ERROR"]


def test_logger_levels_are_not_changed(monkeypatch, logger):
    use_streams(monkeypatch)
    logger.setLevel(logging.WARNING)
    sl = StepLog()
    with capture(sl):
        logger.info("not enabled")
        assert logger.level == logging.WARNING
    assert messages(sl) == []


def test_named_loggers_and_their_children_only(monkeypatch, logger):
    use_streams(monkeypatch)
    a = logging.getLogger(f"{logger.name}.a")
    b = logging.getLogger(f"{logger.name}.b")
    sl = StepLog()
    with capture(sl, logger_names=(a.name,)):
        a.info("from a")
        logging.getLogger(f"{a.name}.child").info("from child")
        b.info("from b")
    assert messages(sl) == [f"{a.name}: from a", f"{a.name}.child: from child"]


def test_non_propagating_logger_is_captured_only_when_named(monkeypatch, logger):
    streams = use_streams(monkeypatch)
    logger.propagate = False
    sl = StepLog()
    with capture(sl):
        logger.error("not reaching root")  # no handler: lastResort prints it to stderr
    with capture(sl, logger_names=("", logger.name)):
        logger.error("named")
    assert lines(sl) == [
        ("stderr", None, "not reaching root"),  # what the user saw, as stderr text
        ("stderr", "ERROR", f"{logger.name}: named"),  # the record, its echo not stored again
    ]
    assert streams[1].getvalue() == "not reaching root\nnamed\n"


def test_a_single_logger_name_as_a_string(monkeypatch, logger):
    use_streams(monkeypatch)
    sl = StepLog()
    with capture(sl, logger_names=logger.name):  # type: ignore[arg-type]
        logger.info("one name")
        logging.getLogger("elsewhere").error("not named")
    assert messages(sl)[0] == f"{logger.name}: one name"
    assert all(not m.startswith("elsewhere:") for m in messages(sl))


def test_logger_names_empty_leaves_logging_alone(monkeypatch, logger):
    use_streams(monkeypatch)
    sl = StepLog()
    with capture(sl, logger_names=()):
        assert logging.Logger.callHandlers is ORIGINAL_CALL_HANDLERS
        logger.info("ignored")
        print("kept")
    assert messages(sl) == ["kept"]


def test_std_streams_false_leaves_sys_stdout_alone(monkeypatch, logger):
    streams = use_streams(monkeypatch)
    out, _ = streams
    sl = StepLog()
    with capture(sl, std_streams=False):
        assert sys.stdout is out
        print("not captured")
        logger.info("captured")
    assert messages(sl) == [f"{logger.name}: captured"]


def test_handler_lists_and_has_handlers_are_untouched(monkeypatch, logger):
    use_streams(monkeypatch)
    logger.propagate = False
    root_handlers = list(logging.root.handlers)
    sl = StepLog()
    with capture(sl, logger_names=("", logger.name)):
        assert logging.root.handlers == root_handlers
        assert logger.handlers == []
        assert logger.hasHandlers() is False


def test_last_resort_still_prints_and_the_record_is_stored_once(monkeypatch, logger):
    streams = use_streams(monkeypatch)
    _, err = streams
    logger.propagate = False  # no handler anywhere: logging.lastResort prints to sys.stderr
    sl = StepLog()
    with capture(sl, logger_names=(logger.name,)):
        logger.warning("careful")
    assert err.getvalue() == "careful\n"
    assert lines(sl) == [("stderr", "WARNING", f"{logger.name}: careful")]


def test_a_handler_echoing_to_stderr_does_not_store_the_record_twice(monkeypatch, logger):
    streams = use_streams(monkeypatch)
    _, err = streams
    sl = StepLog()
    with capture(sl):
        logger.addHandler(logging.StreamHandler(sys.stderr))  # holds our tee
        logger.info("once")
    assert err.getvalue() == "once\n"
    assert lines(sl) == [("stderr", "INFO", f"{logger.name}: once")]


def test_echo_of_an_uncovered_logger_is_stored_as_stderr_text(monkeypatch, logger):
    use_streams(monkeypatch)
    other = logging.getLogger(f"{logger.name}.other")
    other.addHandler(logging.StreamHandler(sys.stderr))  # resolves to the current sys.stderr
    other.propagate = False
    sl = StepLog()
    with capture(sl, logger_names=(logger.name,)):
        other.handlers[0].setStream(sys.stderr)
        other.info("plain text")
    other.handlers.clear()
    other.propagate = True
    assert lines(sl) == [("stderr", None, "plain text")]


def test_stdout_redirected_to_logging_is_stored_once_as_text(monkeypatch, logger):
    out, _ = use_streams(monkeypatch)
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)

    class ToLogger:  # like Airflow 2's StreamLogWriter under redirect_stdout
        def write(self, text):
            if text.strip():
                logger.info(text.strip())
            return len(text)

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ToLogger())
    sl = StepLog()
    with capture(sl):
        print("printed")
    assert lines(sl) == [("stdout", None, "printed")]
    assert handler.stream.getvalue() == "printed\n"


def test_concurrent_captures_with_different_settings(monkeypatch, logger):
    out, _ = use_streams(monkeypatch)
    logs_only, everything = StepLog(), StepLog()
    ready, done = threading.Event(), threading.Event()

    def other() -> None:
        with capture(logs_only, std_streams=False):
            ready.wait()
            print("thread print")  # the tee is installed (by the main capture) but not for us
            logger.info("thread record")
        done.set()

    thread = threading.Thread(target=contextvars.copy_context().run, args=(other,))
    thread.start()
    with capture(everything):
        ready.set()
        done.wait(10)
        print("main print")
    thread.join()
    assert messages(logs_only) == [f"{logger.name}: thread record"]
    assert messages(everything) == ["main print"]
    assert out.getvalue() == "thread print\nmain print\n"


def test_own_records_are_not_captured(monkeypatch):
    use_streams(monkeypatch)
    sl = StepLog()
    own = logging.getLogger("rundossier.record.recorder")
    with capture(sl):
        own.error("storage down, spooling")
    assert messages(sl) == []


def test_mask_that_logs_and_prints_does_not_recurse(monkeypatch, logger):
    streams = use_streams(monkeypatch)
    out, _ = streams
    inner_log = logging.getLogger(f"{logger.name}.mask")

    def noisy_mask(text: str) -> str:
        inner_log.warning("masking")
        print("in mask")
        return text.replace("s3cret", "***")

    sl = StepLog(mask=noisy_mask)
    with capture(sl):
        print("token=s3cret")
    assert messages(sl) == ["token=***"]
    assert "in mask" in out.getvalue() and "token=s3cret" in out.getvalue()


class BrokenLog:
    max_line_bytes = 1000

    def write(self, *args, **kwargs):
        raise RuntimeError("bug in the capture path")


def test_faults_in_the_capture_path_are_swallowed_and_counted(monkeypatch, logger, caplog):
    streams = use_streams(monkeypatch)
    out, _ = streams
    before = capture_errors()
    with caplog.at_level(logging.WARNING, logger="rundossier.capture"):
        with capture(BrokenLog()):  # type: ignore[arg-type]
            print("user output")
            logger.info("user record")
    assert out.getvalue() == "user output\n"
    assert capture_errors() == before + 2
    assert any("ignored 2 fault" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("inner_kwargs", "outer_expected", "inner_expected"),
    [
        ({}, ["o1", "o2"], ["i1", "LOG: ri"]),
        ({"std_streams": False}, ["o1", "i1", "o2"], ["LOG: ri"]),
        ({"logger_names": ()}, ["o1", "LOG: ri", "o2"], ["i1"]),
    ],
)
def test_nested_captures_route_to_the_innermost_that_covers(
    monkeypatch, logger, inner_kwargs, outer_expected, inner_expected
):
    use_streams(monkeypatch)
    outer, inner = StepLog(), StepLog()
    with capture(outer):
        print("o1")
        with capture(inner, **inner_kwargs):
            print("i1")
            logger.info("ri")
        print("o2")
    fix = [m.replace(f"{logger.name}:", "LOG:") for m in messages(outer)]
    assert fix == outer_expected
    assert [m.replace(f"{logger.name}:", "LOG:") for m in messages(inner)] == inner_expected


def test_nested_capture_flushes_its_own_partial_line(monkeypatch):
    use_streams(monkeypatch)
    outer, inner = StepLog(), StepLog()
    with capture(outer):
        sys.stdout.write("outer-")
        with capture(inner):
            sys.stdout.write("inner partial")
        sys.stdout.write("rest\n")
    assert messages(inner) == ["inner partial"]
    assert messages(outer) == ["outer-rest"]


def test_stdout_replaced_inside_is_left_alone(monkeypatch):
    streams = use_streams(monkeypatch)
    out, _ = streams
    theirs = io.StringIO()
    sl = StepLog()
    with capture(sl):
        sys.stdout = theirs
        print("to theirs")
    assert sys.stdout is theirs
    assert theirs.getvalue() == "to theirs\n" and out.getvalue() == ""


def test_a_wrapper_around_our_tee_never_stores_twice(monkeypatch):
    streams = use_streams(monkeypatch)
    out, _ = streams

    class Wrapper:
        def __init__(self, inner):
            self.inner = inner

        def write(self, text):
            return self.inner.write(text)

        def flush(self):
            self.inner.flush()

    first, second = StepLog(), StepLog()
    with capture(first):
        sys.stdout = Wrapper(sys.stdout)  # someone wraps ours and keeps it after we exit
        print("a")
    with capture(second):
        print("b")
    assert messages(first) == ["a"] and messages(second) == ["b"]
    assert out.getvalue() == "a\nb\n"


def test_a_kept_tee_put_back_is_reused(monkeypatch):
    streams = use_streams(monkeypatch)
    out, _ = streams
    with capture(StepLog()):
        kept = sys.stdout
    sys.stdout = kept
    sl = StepLog()
    with capture(sl):
        assert sys.stdout is kept
        print("again")
    assert sys.stdout is out
    assert messages(sl) == ["again"]


def test_none_streams_are_left_alone(monkeypatch, logger):
    monkeypatch.setattr(sys, "stdout", None)
    sl = StepLog()
    with capture(sl):
        assert sys.stdout is None
        print("goes nowhere")
        logger.info("still captured")
    assert messages(sl) == [f"{logger.name}: still captured"]


def test_concurrent_captures_in_threads_route_correctly(monkeypatch, logger):
    streams = use_streams(monkeypatch)
    out, _ = streams
    n_threads, n_lines = 6, 300
    logs: dict[int, StepLog] = {}
    barrier = threading.Barrier(n_threads)

    def step(k: int) -> None:
        sl = logs[k] = StepLog()
        with capture(sl):
            barrier.wait()
            for i in range(n_lines):
                print(f"t{k} p{i}")
                logger.info("t%d r%d", k, i)
            sys.stdout.write(f"t{k} partial")

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(step, k)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, sl in logs.items():
        got = lines(sl)
        assert [m for s, _, m in got if s == "stdout"] == [f"t{k} p{i}" for i in range(n_lines)] + [f"t{k} partial"]
        assert [m for s, lv, m in got if lv == "INFO"] == [f"{logger.name}: t{k} r{i}" for i in range(n_lines)]
    assert sys.stdout is out
    assert out.getvalue().count("\n") == n_threads * n_lines


def test_concurrent_captures_in_asyncio_tasks(monkeypatch, logger):
    use_streams(monkeypatch)

    async def step(k: int) -> StepLog:
        sl = StepLog()
        with capture(sl):
            for i in range(50):
                print(f"a{k} {i}")
                await asyncio.sleep(0)
                logger.info("a%d r%d", k, i)
        return sl

    async def main() -> list[StepLog]:
        return await asyncio.gather(*(step(k) for k in range(4)))

    for k, sl in enumerate(asyncio.run(main())):
        got = messages(sl)
        assert [m for m in got if m.startswith(f"a{k} ")] == [f"a{k} {i}" for i in range(50)]
        assert len(got) == 100 and all(f"a{k}" in m for m in got)


def test_threads_started_inside_a_step_need_the_context(monkeypatch):
    streams = use_streams(monkeypatch)
    sl = StepLog()
    with capture(sl):
        bare = threading.Thread(target=print, args=("bare thread",))
        bare.start()
        bare.join()
        ctx = contextvars.copy_context()
        carried = threading.Thread(target=ctx.run, args=(print, "carried thread"))
        carried.start()
        carried.join()
    assert messages(sl) == ["carried thread"]
    assert "bare thread" in streams[0].getvalue()


def test_capture_throughput_is_reasonable(monkeypatch, logger):
    use_streams(monkeypatch)
    import time

    sl = StepLog()
    n = 20_000
    with capture(sl):
        start = time.perf_counter()
        for i in range(n):
            print("line", i)
        elapsed = time.perf_counter() - start
    assert sl.counts["stdout"] == n
    assert elapsed / n < 200e-6  # a generous bound; measured figures are in the report


@pytest.mark.parametrize(
    ("name", "said", "stored"),
    [
        ("app.secrets.backend", "Loaded backend vault", "app.secrets.backend: Loaded backend vault"),
        ("token_refresher", "refreshed ok", "token_refresher: refreshed ok"),
        ("app.secrets.backend", "password=hunter2 in config", "app.secrets.backend: password=*** in config"),
        ("etl", "api_key: sk_live_1234567890abcdef", "etl: api_key: ***"),
    ],
)
def test_the_logger_name_is_kept_out_of_the_mask(monkeypatch, name, said, stored):
    from rundossier.core.masking import DEFAULT_MASKER

    use_streams(monkeypatch)
    log = logging.getLogger(name)
    sl = StepLog(mask=DEFAULT_MASKER.mask)
    with capture(sl, logger_names=[name]):
        log.warning(said)
    assert messages(sl) == [stored]


def test_a_users_formatter_is_masked_whole(monkeypatch, logger):
    use_streams(monkeypatch)
    sl = StepLog(mask=lambda s: s.replace("secret", "***"))
    with capture(sl, formatter=logging.Formatter("%(name)s.secret | %(message)s")):
        logger.warning("a secret")
    assert messages(sl) == [f"{logger.name}.*** | a ***"]
