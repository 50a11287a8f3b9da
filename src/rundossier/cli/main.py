"""`rundossier` entry point: argument parsing and dispatch to the command modules.

Exit codes (a contract, see README "CLI" and `EPILOG`): 0 ok, 1 error, 2 usage (a bad option or
value), 3 not found, 4 configuration. Every error is one line on stderr saying what is wrong and
how to fix it; the traceback is printed only with `--debug` (accepted before or after the command).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from rundossier import __version__
from rundossier.cli import commands, doctor, failures
from rundossier.cli import retention as retention_cli
from rundossier.cli.options import port, positive_limit, status_name, try_number
from rundossier.cli.text import visible
from rundossier.errors import ConfigError, InvalidInput, RundossierError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFIG = 4

EPILOG = """\
exit codes:
  0  ok
  1  error: the database or storage failed or did not answer (within RUNDOSSIER_DB_TIMEOUT),
     a stored trace is damaged, `doctor` found a problem, `flush` could not deliver
  2  usage: an unknown option, or a value it does not accept (a time such as 6h, 3d or an
     ISO-8601 date; a status; a try number)
  3  not found: no run, step or trace with that id
  4  configuration: a RUNDOSSIER_* setting is malformed (a storage URL with an unknown scheme,
     a database URL without its driver...); `rundossier doctor` checks them all
every error is one line on stderr saying what is wrong and how to fix it; --debug adds the traceback"""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (exit 2) and `--debug` on every (sub)command."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # SUPPRESS: a subcommand's parser must not reset a --debug given before the command
        self.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="print the traceback of an error"
        )

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {visible(message)} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="rundossier",
        description="Run debugger for Airflow, Prefect and plain Python: run history, full traces, logs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"rundossier {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runs = sub.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--flow", help="only this flow / DAG id")
    runs.add_argument("--status", action="append", type=status_name, help="only this status (repeatable)")
    runs.add_argument("--orchestrator", choices=["airflow", "prefect", "python"])
    runs.add_argument("-q", "--search", help="text in flow id, run key or error (any case)")
    runs.add_argument("--since", help="ISO time or a span such as 6h, 3d")
    runs.add_argument("--fingerprint", help="only runs of this failure group (see `rundossier failures`)")
    runs.add_argument("--limit", type=positive_limit, default=20, help="at most this many runs (1 to 500)")
    runs.add_argument("--cursor", help="next_cursor of a previous page")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(func=commands.runs)

    show = sub.add_parser("show", help="one run: details, steps and events")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=commands.show)

    trace = sub.add_parser("trace", help="a run's root-cause trace (or one step's)")
    trace.add_argument("run_id")
    trace.add_argument("--step", help="a step id instead of the root cause")
    trace.add_argument("--try", dest="try_number", type=try_number, help="the step's try (default: latest)")
    trace.add_argument("-o", "--output", help="write to this file instead of stdout")
    trace.set_defaults(func=commands.trace)

    failures.add_parser(sub)

    flush = sub.add_parser("flush", help="deliver traces and rows waiting in the local spool")
    flush.add_argument("--json", action="store_true")
    flush.set_defaults(func=commands.flush)

    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    up = dbsub.add_parser("upgrade", help="apply schema migrations")
    up.set_defaults(func=commands.db_upgrade)

    serve = sub.add_parser("serve", help="serve the web UI and the HTTP API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=port, default=8765)
    serve.add_argument(
        "--no-auth", action="store_true", help="serve a non-loopback address without RUNDOSSIER_API_TOKEN"
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="a name browsers reach the server by, besides 127.0.0.1/localhost/[::1] (repeatable; "
        "also RUNDOSSIER_ALLOWED_HOSTS=a,b); other Host headers are refused when there is no token",
    )
    serve.set_defaults(func=commands.serve)

    retention_cli.register(sub)
    doctor.register(sub)

    demo = sub.add_parser("demo", help="record example runs (some failing) and serve the web UI")
    demo.add_argument("--home", help="RUNDOSSIER_HOME for the demo (default: the configured one)")
    demo.add_argument("--no-serve", action="store_true", help="only record the runs and print where to look")
    demo.add_argument("--host", default="127.0.0.1", help="address to serve the UI on (default 127.0.0.1)")
    demo.add_argument("--port", type=port, default=8765)
    demo.set_defaults(func=commands.demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's boundary: one line, the traceback only with --debug
        if debug:
            traceback.print_exc()
        code, line = _error_line(exc)
        commands.err(line)
        return code


def _error_line(exc: Exception) -> tuple[int, str]:
    """The exit code and the one line that says what went wrong (and how to go on)."""
    if isinstance(exc, commands.NotFound):
        return EXIT_NOT_FOUND, str(exc)
    if isinstance(exc, InvalidInput):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, RundossierError):
        return EXIT_ERROR, f"{type(exc).__name__}: {exc}"
    first = (str(exc).splitlines() or [""])[0]
    return EXIT_ERROR, (
        f"unexpected {type(exc).__name__}: {first} (a bug in rundossier: run the command again with "
        "--debug for the traceback and include it when you report this)"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
