"""HTML pages about experiments, shared by ``sqml report`` and the Datasette dashboard.

Rendered on the server from a registered connection: tables plus inline SVG charts and
inline CSS, so a page opens offline and needs no script. Every user string is escaped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from html import escape

from .._version import __version__
from ..ops import insights, run_insights
from ..scoring import LOWER_IS_BETTER
from . import charts
from .charts import fmt

Link = Callable[[str], str]  # experiment name -> URL of its page
CompareLink = Callable[[int, int], str]  # two run ids -> URL of their comparison


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


def runs_table(
    info: insights.Experiment,
    settings: dict[int, run_insights.RunSettings] | None = None,
    compare_link: CompareLink | None = None,
) -> str:
    """Every run with its metrics, split, hyperparameters, how its deployment was decided
    and whether its model is the deployed one (with a link to compare it with that one)."""
    settings = settings or {}
    metric_names = sorted({name for run in info.runs for name in run.metrics})
    head = "".join(
        f"<th>{escape(name)}</th>"
        for name in ["run", "started", "algorithm", "status", f"score ({info.metric})"]
        + metric_names
        + ["fit s", "deployed", *_SETTINGS_HEADINGS]
    )
    deployed = info.deployed_run
    rows = []
    for run in info.runs:
        status = escape(run.status)
        if run.status != "success":
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
            *_settings_cells(settings.get(run.run_id), run, deployed, compare_link),
        ]
        css = ' class="deployed"' if run.deployed else ""
        rows.append(f'<tr data-run-id="{run.run_id}"{css}>{"".join(cells)}</tr>')
    return (
        f'<table class="sqml runs"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


_SETTINGS_HEADINGS = ["split", "hyperparameters", "deployment decision", ""]


def _settings_cells(
    settings: run_insights.RunSettings | None,
    run: insights.RunEntry,
    deployed: insights.RunEntry | None,
    compare_link: CompareLink | None,
) -> list[str]:
    """The cells of a run's split, hyperparameters, deployment decision and a link to
    compare it with the deployed run."""
    if settings is None:
        cells = ["<td></td>", "<td></td>", "<td></td>"]
    else:
        params = ", ".join(
            f"{escape(str(k))}={escape(json.dumps(v))}"
            for k, v in sorted(settings.hyperparams.items())
        )
        decision = escape(settings.decision_summary or "")
        gate = settings.gate
        if gate is not None and isinstance(gate.get("p_value"), (int, float)):
            decision += f' <span class="muted">(p = {gate["p_value"]:.3g})</span>'
        cells = [
            f'<td class="split">{escape(settings.split_text)}</td>',
            f'<td class="params"><details><summary>{len(settings.hyperparams)}</summary>'
            f"{params}</details></td>",
            f'<td class="decision">{decision}</td>',
        ]
    link = ""
    if compare_link is not None and deployed is not None and deployed.run_id != run.run_id:
        if run.model_id is not None:
            url = escape(compare_link(run.run_id, deployed.run_id))
            link = f'<a class="compare" href="{url}">compare with deployed</a>'
    return [*cells, f"<td>{link}</td>"]


def experiments_table(summaries: list[run_insights.ExperimentSummary], link: Link) -> str:
    """One row per experiment: its deciding metric, runs, best and deployed models."""
    head = "".join(
        f"<th>{name}</th>"
        for name in [
            "experiment",
            "type",
            "deciding metric",
            "runs",
            "best",
            "deployed",
            "deployed score",
            "last trained",
        ]
    )
    rows = []
    for summary in summaries:
        best = summary.best
        deployed = summary.deployed
        rows.append(
            f'<tr data-summary-of="{escape(summary.name)}">'
            f'<td><a href="{escape(link(summary.name))}">{escape(summary.name)}</a></td>'
            f"<td>{escape(summary.prediction_type)}</td>"
            f'<td>{escape(summary.metric)} <span class="muted">({summary.direction})</span></td>'
            f'<td class="num">{summary.runs}'
            + (f' <span class="muted">({summary.failed} failed)</span>' if summary.failed else "")
            + "</td>"
            + (
                f"<td>run {best.run_id} ({escape(best.algorithm)}) {fmt(best.score)}</td>"
                if best is not None
                else "<td>\u2013</td>"
            )
            + (
                f"<td>run {deployed.run_id} ({escape(deployed.algorithm)})</td>"
                if deployed is not None
                else "<td>none</td>"
            )
            + _number_cell(deployed.score if deployed else None).replace(
                'class="num"', 'class="num deployed-score"', 1
            )
            + f'<td class="when">{escape(summary.last_trained or "")}</td></tr>'
        )
    return (
        '<table class="sqml summary"><thead><tr>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


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
    return f'<p class="summary">{text}</p>'


def overview(conn: sqlite3.Connection, link: Link, compare_link: CompareLink | None = None) -> str:
    """A table comparing the experiments, then every experiment: a summary, the chart of
    its runs' scores and the runs table."""
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
    else:
        summaries = [run_insights.experiment_summary(info) for info in found]
        parts.append(experiments_table(summaries, link))
    settings = run_insights.run_settings(conn)
    for info in found:
        parts.append(
            f'<section class="experiment" data-experiment="{escape(info.name)}">'
            f'<h2><a href="{escape(link(info.name))}">{escape(info.name)}</a></h2>'
            f"{_summary(info)}"
            f"{charts.score_chart(info.name, info.metric, _run_points(info))}"
            f"{runs_table(info, settings, compare_link)}</section>"
        )
    return "".join(parts)


def details(conn: sqlite3.Connection, name: str, compare_link: CompareLink | None = None) -> str:
    """One experiment: runs over time, the deployed model's evaluation on its test rows
    (confusion matrix or residuals, ROC and precision-recall curves), importances.

    Raises ``SqmlError`` for an unknown experiment."""
    info = insights.experiment(conn, name)
    settings = run_insights.run_settings(conn, info.name)
    parts = [
        f'<section class="experiment-details" data-experiment="{escape(info.name)}">'
        f"<h1>{escape(info.name)}</h1>{_summary(info)}",
        _deployment_note(info, settings),
        f"<h2>{escape(info.metric)} of every run</h2>"
        f"{charts.score_chart(info.name, info.metric, _run_points(info))}",
        f"<h2>Runs</h2>{runs_table(info, settings, compare_link)}",
        _evaluation_section(conn, info),
    ]
    importances = insights.feature_importances(conn, info.name)
    if importances:
        parts.append(
            "<h2>Feature importances (deployed model)</h2>" + charts.bar_chart(importances)
        )
    parts.append("</section>")
    return "".join(parts)


def _deployment_note(
    info: insights.Experiment, settings: dict[int, run_insights.RunSettings]
) -> str:
    """How the deployed model came to be deployed, in the words recorded on its run."""
    deployed = info.deployed_run
    recorded = settings.get(deployed.run_id) if deployed is not None else None
    if recorded is None or recorded.decision_summary is None:
        return ""
    text = escape(recorded.decision_summary)
    gate = recorded.gate
    if gate is not None:
        low, high = (gate.get("interval") or [None, None])[:2]
        text += (
            f' <span class="muted">(gate: improvement {fmt(gate.get("improvement"))}, '
            f"interval [{fmt(low)}, {fmt(high)}], p-value {fmt(gate.get('p_value'))})</span>"
        )
    return f'<p class="decision">Deployment: {text}</p>'


def _evaluation_section(conn: sqlite3.Connection, info: insights.Experiment) -> str:
    """The deployed model on its run's test rows: confusion matrix and ROC / PR curves
    (classification) or residuals (regression)."""
    title = "Confusion matrix" if info.prediction_type == "classification" else "Residuals"
    result = run_insights.deployed_evaluation(conn, info)
    if isinstance(result, str):
        return f'<h2>{title} (deployed model, test rows)</h2><p class="empty">{escape(result)}.</p>'
    if result.kind == "confusion_matrix":
        chart = charts.confusion_matrix(result.labels, result.matrix)
    else:
        chart = charts.residual_plot(result.actual, result.predicted)
    section = (
        f"<h2>{title} (deployed model, test rows)</h2>"
        f'<p class="source">{escape(result.source)}.</p>{chart}'
    )
    return section + _curves_section(result)


def _curves_section(result: run_insights.TestEvaluation) -> str:
    """ROC and precision-recall curves of the deployed classifier on its test rows."""
    if not result.curves:
        return ""
    roc = [charts.CurveLine(c.label, c.fpr, c.tpr, c.auc) for c in result.curves]
    pr = [
        charts.CurveLine(c.label, c.recall, c.precision, c.average_precision) for c in result.curves
    ]
    which = (
        "one class against the rest"
        if len(result.curves) > 1
        else f"class {result.curves[0].label}"
    )
    calibration = "; ".join(
        f"{escape(c.label)}: Brier {fmt(c.brier)}, calibration error {fmt(c.calibration_error)}"
        for c in result.curves
    )
    return (
        f"<h2>ROC and precision-recall curves (deployed model, test rows)</h2>"
        f'<p class="source">{escape(which)}; legend: area under each curve. '
        f"Calibration: {calibration}.</p>"
        '<div class="curves">'
        + charts.curve_chart("ROC curve", "false positive rate", "true positive rate", roc, True)
        + charts.curve_chart("precision-recall curve", "recall", "precision", pr, False)
        + "</div>"
    )


def comparison(conn: sqlite3.Connection, first: int, second: int, link: Link | None = None) -> str:
    """Two runs side by side: settings, hyperparameters, metrics (the better value of
    each in bold), and both models scored on the first run's test rows.

    Raises ``SqmlError`` for a run that does not exist."""
    compared = run_insights.compare_runs(conn, first, second)
    sides = (compared.first, compared.second)

    def name(side: run_insights.RunSide) -> str:
        text = escape(side.experiment)
        if link is not None:
            text = f'<a href="{escape(link(side.experiment))}">{text}</a>'
        return f"run {side.run.run_id} ({escape(side.run.algorithm)}) of {text}"

    rows = [
        ("experiment", *(name(side) for side in sides)),
        ("status", *(escape(side.run.status) for side in sides)),
        ("deployed", *("yes" if side.run.deployed else "no" for side in sides)),
        ("started", *(escape(side.run.created_at) for side in sides)),
        ("fit seconds", *(fmt(side.run.fit_time, 3) for side in sides)),
    ]
    for label, value in (
        ("dataset", lambda s: s.dataset),
        ("target", lambda s: s.target),
        ("split", lambda s: s.split_text),
        ("test rows", lambda s: str(s.test_rows)),
        ("deployment decision", lambda s: s.decision_summary or ""),
    ):
        rows.append(
            (label, *(escape(value(side.settings)) if side.settings else "" for side in sides))
        )
    parameters = sorted({k for side in sides if side.settings for k in side.settings.hyperparams})
    for key in parameters:
        values = [
            json.dumps(side.settings.hyperparams.get(key)) if side.settings else ""
            for side in sides
        ]
        differ = ' class="differs"' if values[0] != values[1] else ""
        rows.append((f"<span{differ}>{escape(key)}</span>", *(escape(v) for v in values)))
    table = "".join(f"<tr><th>{label}</th><td>{a}</td><td>{b}</td></tr>" for label, a, b in rows)
    same = (
        "Both runs were tested on the same rows: their stored metrics compare directly."
        if compared.same_test_rows
        else "The runs were tested on different rows (another split, test size, seed or "
        "data): compare their stored metrics with care, and see both scored on the first "
        "run's test rows below."
    )
    metrics_rows = "".join(
        _metric_row(
            metric, compared.first.run.metrics.get(metric), compared.second.run.metrics.get(metric)
        )
        for metric in compared.metric_names
    )
    parts = [
        f'<section class="comparison" data-runs="{first},{second}">'
        f"<h1>Run {first} and run {second}</h1>",
        f'<table class="sqml compare-settings"><thead><tr><th></th><th>run {first}</th>'
        f"<th>run {second}</th></tr></thead><tbody>{table}</tbody></table>",
        f"<h2>Stored metrics (each on its own test rows)</h2><p class='source'>{same}</p>",
        f'<table class="sqml compare"><thead><tr><th>metric</th><th>run {first}</th>'
        f"<th>run {second}</th></tr></thead><tbody>{metrics_rows}</tbody></table>",
        f"<h2>Both models on run {first}'s test rows</h2>",
    ]
    if isinstance(compared.on_first_rows, str):
        parts.append(f'<p class="empty">{escape(compared.on_first_rows)}.</p>')
    else:
        parts.append(
            f'<table class="sqml compare same-rows"><thead><tr><th>metric</th>'
            f"<th>run {first}</th><th>run {second}</th></tr></thead><tbody>"
            + "".join(_metric_row(m, a, b) for m, (a, b) in compared.on_first_rows.items())
            + "</tbody></table>"
        )
    parts.append("</section>")
    return "".join(parts)


def _metric_row(metric: str, first: float | None, second: float | None) -> str:
    """A metric of two runs, the better value marked (lower is better for errors)."""
    better = [False, False]
    if first is not None and second is not None and first != second:
        lower = metric in LOWER_IS_BETTER
        better = [(first < second) == lower, (second < first) == lower]
    cells = "".join(
        _number_cell(value).replace('class="num"', f'class="num{" better" if good else ""}"', 1)
        for value, good in zip((first, second), better, strict=True)
    )
    return f'<tr data-metric="{escape(metric)}"><td>{escape(metric)}</td>{cells}</tr>'


def comparison_report(conn: sqlite3.Connection, first: int, second: int) -> str:
    """The self-contained HTML page comparing two runs (``sqml compare``)."""
    body = comparison(conn, first, second)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = f'<p class="muted">sqlite-ml comparison \u00b7 generated {stamp}</p>'
    return page(f"sqlite-ml: run {first} and run {second}", body, header)


def report(conn: sqlite3.Connection, name: str) -> str:
    """The self-contained HTML report of one experiment (``sqml report``)."""
    body = details(conn, name)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = f'<p class="muted">sqlite-ml report \u00b7 generated {stamp}</p>'
    return page(f"sqlite-ml report: {name}", body, header)
