"""HTML pages about experiments, shared by ``sqml report`` and the Datasette dashboard.

Rendered on the server from a registered connection: tables plus inline SVG charts and
inline CSS, so a page opens offline and needs no script. Every user string is escaped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from html import escape

from .._version import __version__
from ..ops import insights
from . import charts
from .charts import fmt

Link = Callable[[str], str]  # experiment name -> URL of its page


def page(title: str, body: str, header: str = "") -> str:
    """A whole HTML document: inline style, no external resource of any kind."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{charts.STYLE}</style></head>"
        f"<body>{header}{body}"
        f'<p class="muted source">sqlite-ml {escape(__version__)}</p></body></html>\n'
    )


def _run_points(info: insights.Experiment) -> list[charts.RunPoint]:
    return [
        charts.RunPoint(run.run_id, run.algorithm, run.score, run.deployed, run.status)
        for run in info.runs
    ]


def _number_cell(value: float | None, digits: int = 4) -> str:
    data = "" if value is None else f' data-value="{value!r}"'
    return f'<td class="num"{data}>{fmt(value, digits)}</td>'


def runs_table(info: insights.Experiment) -> str:
    """Every run with its metrics and whether its model is the deployed one."""
    metric_names = sorted({name for run in info.runs for name in run.metrics})
    head = "".join(
        f"<th>{escape(name)}</th>"
        for name in ["run", "started", "algorithm", "status", f"score ({info.metric})"]
        + metric_names
        + ["fit s", "deployed", "notes"]
    )
    rows = []
    for run in info.runs:
        status = escape(run.status)
        if run.status == "pending" and run.progress:
            status += f'<div class="progress">{escape(progress_text(run.progress))}</div>'
        elif run.status != "success":
            status = f'<span class="badge failed">{status}</span>'
            if run.error:
                status += f'<div class="muted run-error">{escape(run.error)}</div>'
        cells = [
            f'<td class="num">{run.run_id}</td>',
            f'<td class="when">{escape(run.created_at)}</td>',
            f"<td>{escape(run.algorithm)}</td>",
            f"<td>{status}</td>",
            _number_cell(run.score).replace('class="num"', 'class="num score"', 1),
            *(_number_cell(run.metrics.get(name)) for name in metric_names),
            _number_cell(run.fit_time, 3),
            '<td><span class="badge">deployed</span></td>' if run.deployed else "<td></td>",
            f'<td class="run-notes">{_run_notes(run)}</td>',
        ]
        css = ' class="deployed"' if run.deployed else ""
        rows.append(f'<tr data-run-id="{run.run_id}"{css}>{"".join(cells)}</tr>')
    return (
        f'<table class="sqml runs"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def progress_text(progress: dict[str, object]) -> str:
    """A running run's last progress report, as the runs table shows it."""
    stage, done, total = progress.get("stage"), progress.get("done"), progress.get("total")
    text = f"{stage} {done}/{total}" if total else f"{stage}"
    return text + (f" at {progress['updated_at']}" if progress.get("updated_at") else "")


def _tags(tags: dict[str, str]) -> str:
    return "".join(f'<span class="tag">{escape(k)}={escape(v)}</span>' for k, v in tags.items())


def _run_notes(run: insights.RunEntry) -> str:
    """A run's note, tags and warnings (what it decided on its own: columns left out,
    dates; and the libraries' warnings), folded so the table stays readable."""
    parts = []
    if run.note:
        parts.append(f'<div class="note">{escape(run.note)}</div>')
    if run.tags:
        parts.append(f"<div>{_tags(run.tags)}</div>")
    if run.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in run.warnings)
        parts.append(
            f'<details class="warnings"><summary>{len(run.warnings)} warning(s)</summary>'
            f"<ul>{items}</ul></details>"
        )
    return "".join(parts)


def _summary(info: insights.Experiment) -> str:
    deployed = info.deployed_run
    failed = sum(run.status != "success" for run in info.runs)
    text = (
        f"{escape(info.prediction_type)} \u00b7 {len(info.runs)} run(s)"
        + (f", {failed} without a model" if failed else "")
        + " \u00b7 "
    )
    if deployed is None:
        text += "no deployed model"
    else:
        text += (
            f"deployed: run {deployed.run_id} ({escape(deployed.algorithm)}), "
            f"{escape(info.metric)} <strong>{fmt(deployed.score)}</strong>"
        )
    described = f'<p class="summary">{text}</p>'
    if info.tags:
        described += f'<p class="tags">{_tags(info.tags)}</p>'
    if info.note:
        described += f'<p class="note">{escape(info.note)}</p>'
    return described


def overview(conn: sqlite3.Connection, link: Link) -> str:
    """Every experiment: a summary, the chart of its runs' scores and the runs table."""
    if not insights.has_sqml_tables(conn):
        return (
            "<h1>sqlite-ml experiments</h1>"
            '<p class="empty">This database has no sqlite-ml tables yet: train a model with '
            "<code>sqml_train(...)</code> first.</p>"
        )
    found = insights.experiments(conn)
    parts = [f"<h1>sqlite-ml experiments</h1><p class='muted'>{len(found)} experiment(s)</p>"]
    if not found:
        parts.append('<p class="empty">No experiments yet.</p>')
    for info in found:
        parts.append(
            f'<section class="experiment" data-experiment="{escape(info.name)}">'
            f'<h2><a href="{escape(link(info.name))}">{escape(info.name)}</a></h2>'
            f"{_summary(info)}"
            f"{charts.score_chart(info.name, info.metric, _run_points(info))}"
            f"{runs_table(info)}</section>"
        )
    return "".join(parts)


def details(conn: sqlite3.Connection, name: str) -> str:
    """One experiment: runs over time, the deployed model's evaluation, importances.

    Raises ``SqmlError`` for an unknown experiment."""
    info = insights.experiment(conn, name)
    parts = [
        f'<section class="experiment-details" data-experiment="{escape(info.name)}">'
        f"<h1>{escape(info.name)}</h1>{_summary(info)}",
        f"<h2>Score of every run</h2>"
        f"{charts.score_chart(info.name, info.metric, _run_points(info))}",
        f"<h2>Runs</h2>{runs_table(info)}",
        _evaluation_section(conn, info),
    ]
    importances = insights.feature_importances(conn, info.name)
    if importances:
        parts.append(
            "<h2>Feature importances (deployed model)</h2>" + charts.bar_chart(importances)
        )
    parts.append("</section>")
    return "".join(parts)


def _evaluation_section(conn: sqlite3.Connection, info: insights.Experiment) -> str:
    title = "Confusion matrix" if info.prediction_type == "classification" else "Residuals"
    result = insights.evaluation(conn, info)
    if isinstance(result, str):
        return f'<h2>{title} (deployed model)</h2><p class="empty">{escape(result)}.</p>'
    if result.kind == "confusion_matrix":
        chart = charts.confusion_matrix(result.labels, result.matrix)
    else:
        chart = charts.residual_plot(result.actual, result.predicted)
    return f'<h2>{title} (deployed model)</h2><p class="source">{escape(result.source)}.</p>{chart}'


def report(conn: sqlite3.Connection, name: str) -> str:
    """The self-contained HTML report of one experiment (``sqml report``)."""
    body = details(conn, name)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = f'<p class="muted">sqlite-ml report \u00b7 generated {stamp}</p>'
    return page(f"sqlite-ml report: {name}", body, header)
