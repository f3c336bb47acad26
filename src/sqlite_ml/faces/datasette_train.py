"""The dashboard's "train" form, for the actors allowed to train (Datasette permission
``sqml-train``): it posts to ``/-/sqml-train``, which checks the permission again, runs
``sqml_train`` through the plugin's writer and shows the experiment with its new run, or
the form again with the error."""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from ..ops import insights

FIELDS = ("experiment", "prediction_type", "algorithm", "dataset", "target", "options")
PREDICTION_TYPES = ("classification", "regression", "clustering")


def _options(values: list[str], chosen: str) -> str:
    return "".join(
        f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(v)}</option>'
        for v in values
    )


def form(
    action: str,
    csrftoken: str,
    datasets: list[str],
    algorithms: Mapping[str, list[str]],
    values: Mapping[str, str] | None = None,
    message: str = "",
) -> str:
    """The form; ``values`` fill it again after an error, shown in ``message``."""
    values = values or {}
    every_algorithm = sorted({name for names in algorithms.values() for name in names})
    suggestions = "".join(f'<option value="{escape(name)}">' for name in every_algorithm)
    notice = f'<p class="message error">{escape(message)}</p>' if message else ""
    text = {name: escape(values.get(name, "")) for name in FIELDS}
    return (
        f'<form class="train" method="post" action="{escape(action)}">'
        f"<h2>Train a model</h2>{notice}"
        f'<input type="hidden" name="csrftoken" value="{escape(csrftoken)}">'
        '<label>experiment <input name="experiment" required '
        f'value="{text["experiment"]}"></label>'
        '<label>prediction type <select name="prediction_type">'
        f"{_options(list(PREDICTION_TYPES), values.get('prediction_type', 'classification'))}"
        "</select></label>"
        '<label>algorithm <input name="algorithm" list="sqml-algorithms" required '
        f'value="{text["algorithm"]}"></label>'
        f'<datalist id="sqml-algorithms">{suggestions}</datalist>'
        '<label>dataset <select name="dataset">'
        f"{_options(datasets, values.get('dataset', ''))}</select></label>"
        '<label>target <input name="target" placeholder="column (none for clustering)" '
        f'value="{text["target"]}"></label>'
        '<label>options <input name="options" placeholder=\'{"hyperparams": {...}}\' size="30" '
        f'value="{text["options"]}"></label>'
        '<button type="submit">Train</button>'
        '<p class="muted">Runs <code>sqml_train</code> on this database; large datasets take '
        "a while.</p></form>"
    )


def sqml_train_arguments(posted: Mapping[str, str]) -> tuple[Any, ...]:
    """``sqml_train``'s arguments from the posted form (its own checks word any error)."""
    values = {name: (posted.get(name) or "").strip() for name in FIELDS}
    arguments: list[Any] = [
        values["experiment"],
        values["prediction_type"],
        values["algorithm"],
        values["dataset"],
        values["target"] or None,
    ]
    if values["options"]:
        arguments += [0.25, "shuffle", values["options"]]
    return tuple(arguments)


def choices(conn: Any) -> tuple[list[str], dict[str, list[str]]]:
    """(datasets, algorithms per prediction type) for the form, read on ``conn``."""
    return insights.dataset_names(conn), insights.training_choices()


def trained_notice(info: insights.Experiment, run: str | None) -> str:
    """The line the experiment page shows after the form trained run ``run``."""
    if not run or not run.isdigit():
        return ""
    found = next((r for r in info.runs if r.run_id == int(run)), None)
    if found is None:
        return ""
    deployed = "deployed" if found.deployed else "not deployed (an earlier model is better)"
    score = "" if found.score is None else f", {info.metric} {found.score:.4f}"
    what = f"Run {found.run_id} trained: {escape(found.algorithm)}{score}, {deployed}."
    return f'<p class="message trained">{what}</p>'


def run_id_of(answer: object) -> int | None:
    try:
        value = json.loads(answer) if isinstance(answer, str) else None
    except ValueError:
        return None
    run = value.get("run_id") if isinstance(value, dict) else None
    return run if isinstance(run, int) else None
