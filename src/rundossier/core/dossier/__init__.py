"""The failure dossier: a run explained from its recorded rows and events (pure, no I/O).

    from rundossier.core.dossier import build_dossier, dossier_json, dossier_text, dossier_markdown
    d = build_dossier(run, steps, events, baseline=Baseline(ok_run, ok_steps, ok_events), now=now)

Timing windows (`windows`), classification with evidence (`classify`), next actions
(`actions`), attempt comparison (`compare`), replay plan (`replay`), failure groups (`groups`);
the event vocabulary integrations write is in `events`.
"""

from __future__ import annotations

from rundossier.core.dossier.build import build_dossier, latest_tries
from rundossier.core.dossier.classify import CLASSES, LABELS, FailureFacts, classify
from rundossier.core.dossier.compare import Baseline
from rundossier.core.dossier.groups import FailureGroup, group_json, merge_groups
from rundossier.core.dossier.model import Dossier, dossier_json
from rundossier.core.dossier.text import dossier_markdown, dossier_text

__all__ = [
    "build_dossier",
    "latest_tries",
    "Baseline",
    "Dossier",
    "dossier_json",
    "dossier_text",
    "dossier_markdown",
    "classify",
    "FailureFacts",
    "CLASSES",
    "LABELS",
    "FailureGroup",
    "merge_groups",
    "group_json",
]
