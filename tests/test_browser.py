"""The Datasette dashboard in a real headless Chromium (Debian's ``chromium``, driven by
Playwright), against a real Datasette server on a loopback port.

Chromium is a CI requirement (``.ci/run`` installs it): when it is missing this test fails.
Set ``SQML_SKIP_BROWSER=1`` to skip it on purpose. Screenshots are kept in
``tests/artifacts/`` (or ``$SQML_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .faces import HOSTILE, deployed_test_rows, served  # noqa: F401 - served is a fixture

ARTIFACTS = Path(os.environ.get("SQML_ARTIFACTS", Path(__file__).parent / "artifacts"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]

pytestmark = pytest.mark.skipif(
    os.environ.get("SQML_SKIP_BROWSER") == "1", reason="SQML_SKIP_BROWSER=1"
)


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed: the browser test needs Debian's chromium package "
            "(apt-get install -y chromium; .ci/run installs it), or set SQML_SKIP_BROWSER=1"
        )
    return path


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(120_000)
            yield page
        finally:
            context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    assert path.stat().st_size > 10_000
    return path


def test_dashboard_in_chromium(browser_page: Any, served: tuple[str, Path]) -> None:  # noqa: F811
    url, db = served
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    response = page.goto(url + "/-/sqml")
    assert response is not None and response.status == 200
    screenshot(page, "dashboard.png")

    # The hostile experiment name is text on the page, and its script never ran.
    assert page.evaluate("typeof window.sqmlPwned") == "undefined" and not dialogs
    headings = page.locator("section.experiment h2").all_inner_texts()
    conn = sqlite3.connect(db)
    try:
        names = [row[0] for row in conn.execute("SELECT name FROM sqml_experiments ORDER BY name")]
        assert sorted(headings) == names == sorted(["diabetes", HOSTILE])
        for name in names:
            check_experiment_section(page, conn, name)
    finally:
        conn.close()
    # Offline: nothing was fetched from anywhere but the Datasette server.
    assert requests and all(request.startswith(url) for request in requests)


def check_experiment_section(page: Any, conn: sqlite3.Connection, name: str) -> None:
    section = page.locator("section.experiment").filter(
        has=page.get_by_role("heading", name=name, exact=True)
    )
    assert section.count() == 1
    runs = conn.execute(
        "SELECT run_id, score, deployed FROM sqml_runs_overview WHERE experiment = ?"
        " ORDER BY run_id",
        (name,),
    ).fetchall()
    scored = [(run_id, score, deployed) for run_id, score, deployed in runs if score is not None]

    # The chart is drawn: one visible circle per scored run inside the SVG's box.
    chart = section.locator("svg.score-chart")
    chart_box = chart.bounding_box()
    assert chart_box is not None and chart_box["width"] > 300 and chart_box["height"] > 150
    circles = chart.locator("circle.run-point")
    assert circles.count() == len(scored)
    for index, (run_id, score, deployed) in enumerate(scored):
        circle = circles.nth(index)
        box = circle.bounding_box()
        assert box is not None and box["width"] > 3
        assert chart_box["x"] <= box["x"] <= chart_box["x"] + chart_box["width"]
        assert int(circle.get_attribute("data-run-id")) == run_id
        assert float(circle.get_attribute("data-score")) == score
        assert ("deployed" in circle.get_attribute("class")) == bool(deployed)
    assert chart.locator("path.failed-run").count() == len(runs) - len(scored)
    # Scores printed higher sit higher in the chart.
    heights = [circles.nth(i).bounding_box()["y"] for i in range(len(scored))]
    order_by_score = sorted(range(len(scored)), key=lambda i: scored[i][1])
    order_by_height = sorted(range(len(scored)), key=lambda i: -heights[i])
    assert [scored[i][1] for i in order_by_score] == [scored[i][1] for i in order_by_height]

    # The runs table shows the database's numbers.
    rows = section.locator("table.runs tbody tr")
    assert rows.count() == len(runs)
    for index, (run_id, score, deployed) in enumerate(runs):
        row = rows.nth(index)
        assert int(row.get_attribute("data-run-id")) == run_id
        cell = row.locator("td.score")
        if score is None:
            assert cell.inner_text().strip() == "\u2013"
        else:
            assert float(cell.get_attribute("data-value")) == score
            assert cell.inner_text().strip() == f"{score:.4f}"
        assert ("deployed" in (row.get_attribute("class") or "")) == bool(deployed)


def test_experiment_pages_in_chromium(browser_page: Any, served: tuple[str, Path]) -> None:  # noqa: F811
    url, db = served
    page = browser_page
    page.goto(url + "/-/sqml")
    page.locator("section.experiment h2").get_by_role("link", name=HOSTILE, exact=True).click()
    page.wait_for_load_state()
    assert page.url == f"{url}/-/sqml/{quote(HOSTILE, safe='')}"
    assert page.locator("h1").inner_text() == HOSTILE
    cells = page.locator("svg.confusion-matrix rect.cm-cell")
    assert cells.count() == 9  # three iris classes
    counts = [int(cells.nth(i).get_attribute("data-count")) for i in range(9)]
    labelled = deployed_test_rows(db, HOSTILE)  # the deployed run's test rows only
    regression_rows = deployed_test_rows(db, "diabetes")
    assert sum(counts) == labelled < 150
    diagonal = sum(counts[i * 3 + i] for i in range(3))
    assert diagonal > labelled * 0.8  # the deployed model is right on most rows
    box = cells.first.bounding_box()
    assert box is not None and box["width"] >= 28
    screenshot(page, "experiment-classification.png")

    response = page.goto(url + "/-/sqml/diabetes")
    assert response is not None and response.status == 200
    points = page.locator("svg.residual-plot circle.residual")
    assert points.count() == regression_rows
    assert points.first.bounding_box() is not None
    screenshot(page, "experiment-regression.png")

    missing = page.goto(url + "/-/sqml/nope")
    assert missing is not None and missing.status == 404
    assert "unknown experiment" in page.locator("body").inner_text()


def test_summary_curves_and_comparison_in_chromium(
    browser_page: Any,
    served: tuple[str, Path],  # noqa: F811
) -> None:
    url, db = served
    page = browser_page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url + "/-/sqml")
    # The summary table at the top: one row per experiment, the deciding metric named.
    summary = page.locator("table.summary tbody tr")
    assert summary.count() == 2
    first_table = page.locator("table").first
    assert "summary" in (first_table.get_attribute("class") or "")
    row = page.locator('table.summary tr[data-summary-of="diabetes"]')
    assert "r2" in row.inner_text() and "higher is better" in row.inner_text()
    # The runs table shows each run's split and hyperparameters.
    runs = page.locator('section.experiment[data-experiment="diabetes"] table.runs')
    assert "by hash of rowid" in runs.locator("td.split").first.inner_text()
    runs.locator("td.params summary").first.click()
    assert (
        "alpha=" in runs.locator("td.params").nth(1).inner_text()
        or "=" in runs.locator("td.params").first.inner_text()
    )

    page.goto(f"{url}/-/sqml/{quote(HOSTILE, safe='')}")
    charts = page.locator("svg.curve-chart")
    assert charts.count() == 2  # ROC and precision-recall
    roc = charts.first
    box = roc.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 250
    curves = roc.locator("path.curve")
    assert curves.count() == 3  # one per iris class, against the rest
    conn = sqlite3.connect(db)
    try:
        run_id = conn.execute(
            "SELECT run_id FROM sqml_runs_overview WHERE experiment = ? AND deployed", (HOSTILE,)
        ).fetchone()[0]
    finally:
        conn.close()
    for index in range(3):
        curve = curves.nth(index)
        area = float(curve.get_attribute("data-area"))
        assert 0.5 < area <= 1.0
        curve_box = curve.bounding_box()
        assert curve_box is not None and curve_box["width"] > 20  # drawn, not collapsed
    assert f"of run {run_id}" in page.locator("p.source").first.inner_text()
    assert "Deployment: deployed" in page.locator("p.decision").inner_text()
    screenshot(page, "report-test-rows.png")

    link = page.locator("a.compare").first
    link.click()
    page.wait_for_load_state()
    assert "compare=" in page.url and page.locator("h1").inner_text().startswith("Run ")
    assert page.locator("table.compare.same-rows tbody tr").count() >= 5
    screenshot(page, "compare.png")
    assert requests and all(request.startswith(url) for request in requests)
