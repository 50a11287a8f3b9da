"""The page's assets: every JavaScript module is preloaded by index.html (fetched at once, not as
the imports are discovered), and nothing preloaded is missing."""

from __future__ import annotations

import re

from rundossier.server.ui import STATIC


def test_every_module_is_preloaded_and_every_preload_exists() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    preloaded = set(re.findall(r'<link rel="modulepreload" href="static/([^"]+)">', html))
    entry = set(re.findall(r'<script type="module" src="static/([^"]+)">', html))
    modules = {p.relative_to(STATIC).as_posix() for p in STATIC.glob("js/**/*.js")}
    assert entry == {"js/app.js"}
    assert preloaded | entry == modules
