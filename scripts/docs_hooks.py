"""The docs site's generated references (an mkdocs hook: mkdocs.yml `hooks:`), from the code itself:

    configuration.md             its table, at `<!-- settings-table -->`: the settings model
                                 (rundossier/settings.py): variables, airflow.cfg / Block keys,
                                 defaults and the fields' descriptions
    reference/http-api.md        the app's OpenAPI: every operation, its parameters and answers
    reference/cli.md             `rundossier ... --help` of every command, as argparse prints it

`mkdocs build --strict` (scripts/lint.sh) builds them each time, so they cannot go stale.
`python scripts/docs_hooks.py OUTDIR` writes the references to OUTDIR instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HELP_WIDTH = "80"  # fits the site's code blocks
METHODS = ("get", "put", "post", "delete", "patch")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# -- configuration -----------------------------------------------------------------------------------


SETTINGS_MARKER = "<!-- settings-table -->"


def settings_table() -> str:
    """Every setting: its variable, its airflow.cfg / Block key, its default and its description."""
    from rundossier.settings import ALL_ENV_VARS, ENV_VARS, Settings

    lines = ["| variable | airflow.cfg / Block | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        shown = extra.get("default_text", field.get_default(call_default_factory=True))
        layer = f"`{name}`" if name in ENV_VARS else "environment only"
        lines.append(
            f"| `{ALL_ENV_VARS[name]}` | {layer} | {_default_text(shown)} | {_cell(field.description or '')} |"
        )
    return "\n".join(lines) + "\n"


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "off" if not value else "on"
    if value is None or value == "" or value == ():
        return "unset"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


# -- HTTP API ----------------------------------------------------------------------------------------


def http_api_reference() -> str:
    from rundossier.server import create_app
    from rundossier.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        doc = create_app(Settings.resolve(explicit={"home": home})).openapi()
    lines = [
        "# HTTP API reference",
        "",
        f"Generated from the OpenAPI document of rundossier {doc['info']['version']}. A running server",
        "serves the same document at `/openapi.json` and an interactive page at `/docs` (Swagger UI from",
        'packaged files: it works offline). Every error answers `{"error": {"type": ..., "message": ...}}`;',
        "see [Web UI and HTTP API](../ui.md) for the statuses and how to authenticate.",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    for tag, ops in by_tag.items():
        lines += [f"## {tag}", ""]
        for method, path, op in ops:
            lines += [f"### `{method.upper()} {path}`", ""]
            if op.get("summary"):
                lines += [op["summary"] + ".", ""]
            if op.get("description"):
                lines += [op["description"].strip(), ""]
            params = op.get("parameters") or []
            if params:
                lines += ["| parameter | in | type | required | meaning |", "|---|---|---|---|---|"]
                for p in params:
                    lines.append(
                        f"| `{p['name']}` | {p['in']} | {_schema_type(p.get('schema', {}))} | "
                        f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |"
                    )
                lines.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                lines += [f"Body ({media}): {_schema_type(content.get('schema', {}))}", ""]
            lines += ["| status | answer |", "|---|---|"]
            for status, answer in op.get("responses", {}).items():
                content = answer.get("content", {})
                kinds = ", ".join(f"{m} {_schema_type(c.get('schema', {}))}".strip() for m, c in content.items())
                lines.append(f"| {status} | {_cell(answer.get('description', ''))}{': ' + kinds if kinds else ''} |")
            lines.append("")
    return "\n".join(lines)


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[1]}`"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_schema_type(s) for s in schema[key])
    kind = schema.get("type", "")
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return kind


# -- CLI ---------------------------------------------------------------------------------------------


def cli_reference() -> str:
    lines = [
        "# CLI reference",
        "",
        "Generated from the help of the `rundossier` command (argparse), command by command. See",
        "[CLI](../cli.md) for exit codes, errors and output.",
        "",
    ]
    for argv in _commands([]):
        text = _help(argv)
        lines += [f"## `{' '.join(['rundossier', *argv])}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


def _help(argv: list[str]) -> str:
    from rundossier.cli.main import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps at the terminal's width
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            build_parser().parse_args([*argv, "--help"])
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return out.getvalue()


def _commands(argv: list[str]) -> list[list[str]]:
    """`argv` and every command below it, from the help's command list (argparse's public output)."""
    found = [argv]
    listing = False
    for line in _help(argv).splitlines():
        if re.fullmatch(r"  [A-Z_]+", line):
            listing = True
        elif listing and (m := re.match(r"    ([a-z][\w-]*)(\s|$)", line)):
            found += _commands([*argv, m.group(1)])
        elif listing and not line.startswith("     "):
            listing = False
    return found


# -- the hook ----------------------------------------------------------------------------------------

PAGES: dict[str, Callable[[], str]] = {
    "reference/http-api.md": http_api_reference,
    "reference/cli.md": cli_reference,
}


def on_files(files: Any, config: Any) -> Any:
    """mkdocs: add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    for uri, build in PAGES.items():
        files.append(File.generated(config, uri, content=build()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs: the configuration page's table, from the settings model."""
    return markdown.replace(SETTINGS_MARKER, settings_table()) if SETTINGS_MARKER in markdown else markdown


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "site-reference")
    for uri, build in {"reference/configuration.md": settings_table, **PAGES}.items():
        path = out / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(build(), encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
