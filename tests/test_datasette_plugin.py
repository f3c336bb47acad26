"""The Datasette plugin, through the real ``datasette`` program on a loopback port."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx

from .faces import (  # noqa: F401 - served is a fixture
    HOSTILE,
    deployed_test_rows,
    make_trained_db,
    script,
    served,
    sqml_tables,
)
from .helpers import expected_mode


def sql_json(url: str, sql: str) -> dict:
    response = httpx.get(f"{url}/ml.json", params={"sql": sql, "_shape": "objects"}, timeout=120)
    return response.json()


def test_functions_on_datasette_connections(served: tuple[str, Path]) -> None:  # noqa: F811
    url, _ = served
    values = (0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02)
    names = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
    features = json.dumps(dict(zip(names, values, strict=True)))
    answer = sql_json(
        url, f"SELECT sqml_binding_mode() AS mode, sqml_predict('diabetes', '{features}') AS p"
    )
    assert answer["ok"], answer
    row = answer["rows"][0]
    assert row["mode"] == expected_mode() and isinstance(row["p"], float)
    # Our own error text, not "user-defined function raised exception".
    failed = sql_json(url, "SELECT sqml_predict('nope', '{}')")
    assert not failed["ok"] and "unknown experiment 'nope'" in failed["error"]
    # Datasette's connections are read-only: a writing function says so.
    refused = sql_json(url, "SELECT sqml_load_dataset('iris', 'again')")
    assert not refused["ok"] and "readonly" in refused["error"]


def test_dashboard_lists_experiments_runs_and_charts(served: tuple[str, Path]) -> None:  # noqa: F811
    url, db = served
    response = httpx.get(url + "/-/sqml", timeout=120)
    assert response.status_code == 200
    html = response.text
    assert "<script" not in html  # the hostile experiment name is shown as text
    assert "&lt;script&gt;window.sqmlPwned = 1&lt;/script&gt;" in html
    conn = sqlite3.connect(db)
    for name, runs, scored in conn.execute(
        "SELECT experiment, count(*), count(score) FROM sqml_runs_overview GROUP BY experiment"
    ):
        section = html.split(f'data-experiment="{_attr(name)}"')[1].split("</section>")[0]
        assert section.count('<circle class="run-point') == scored
        assert section.count('<tr data-run-id="') == runs
        assert section.count('class="run-point deployed"') == 1
        assert f'href="/-/sqml/{quote(name, safe="")}"' in section
    conn.close()


def _attr(text: str) -> str:
    from html import escape

    return escape(text)


def test_experiment_pages(served: tuple[str, Path]) -> None:  # noqa: F811
    url, db = served
    classification = httpx.get(f"{url}/-/sqml/{quote(HOSTILE, safe='')}", timeout=120)
    assert classification.status_code == 200
    assert "Confusion matrix" in classification.text
    assert classification.text.count('class="cm-cell') == 9
    assert classification.text.count('<path class="curve"') == 6  # ROC and PR, 3 classes
    regression = httpx.get(f"{url}/-/sqml/diabetes", timeout=120)
    assert regression.status_code == 200
    test_rows = deployed_test_rows(db, "diabetes")
    assert regression.text.count('<circle class="residual"') == test_rows < 120


def test_comparison_page_and_its_links(served: tuple[str, Path]) -> None:  # noqa: F811
    url, _ = served
    page = httpx.get(f"{url}/-/sqml/diabetes", timeout=120).text
    links = re.findall(r'<a class="compare" href="([^"]+)"', page)
    assert len(links) == 1  # the run that is not deployed
    compared = httpx.get(url + links[0].replace("&amp;", "&"), timeout=120)
    assert compared.status_code == 200 and "<h1>Run " in compared.text
    assert "Both models on run" in compared.text
    bad = httpx.get(f"{url}/-/sqml?compare=1", timeout=120)
    assert bad.status_code == 404 and "compare takes two run ids" in bad.text
    missing = httpx.get(f"{url}/-/sqml?compare=1,999", timeout=120)
    assert missing.status_code == 404 and "there is no run 999" in missing.text


def test_unknown_experiment_is_404(served: tuple[str, Path]) -> None:  # noqa: F811
    url, _ = served
    response = httpx.get(f"{url}/-/sqml/{quote('<b>nope</b>', safe='')}", timeout=120)
    assert response.status_code == 404
    assert "unknown experiment" in response.text and "<b>nope" not in response.text


def datasette_get(path: str, *files: Path, immutable: bool = False, **settings: str) -> tuple:
    """Datasette in this process, plugins loaded from their entry points as in production:
    runs the startup hooks, then GETs ``path``."""
    from datasette.app import Datasette

    metadata = {"plugins": {"sqlite-ml": settings}} if settings else None
    names = [str(f) for f in files]
    ds = Datasette(
        files=[] if immutable else names, immutables=names if immutable else [], metadata=metadata
    )

    async def get() -> tuple:
        await ds.invoke_startup()
        response = await ds.client.get(path)
        return response.status_code, response.text

    try:
        return asyncio.run(get())
    finally:
        for db in ds.databases.values():
            db.close()


def test_startup_creates_the_schema_in_the_configured_database(tmp_path: Path) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    for path in (first, second):
        sqlite3.connect(path).execute("CREATE TABLE t(x)").connection.close()
    status, text = datasette_get("/-/sqml", first, second, db="second")
    assert status == 200 and "No experiments yet" in text
    assert sqml_tables(first) == []
    assert "sqml_experiments" in sqml_tables(second)

    # Default: the first mutable database.
    datasette_get("/-/sqml", first)
    assert "sqml_experiments" in sqml_tables(first)


def test_immutable_database_is_read_without_writing(tmp_path: Path) -> None:
    db = tmp_path / "frozen.db"
    sqlite3.connect(db).execute("CREATE TABLE t(x)").connection.close()
    status, text = datasette_get("/-/sqml", db, immutable=True)
    assert status == 200 and "no sqlite-ml tables" in text
    status, text = datasette_get("/frozen.json?sql=SELECT+sqml_version()+AS+v", db, immutable=True)
    assert status == 200 and json.loads(text)["ok"]
    assert sqml_tables(db) == []


def test_immutable_database_with_experiments(tmp_path: Path) -> None:
    db = make_trained_db(tmp_path / "published.db")
    status, text = datasette_get("/-/sqml/diabetes", db, immutable=True)
    test_rows = deployed_test_rows(db, "diabetes")
    assert status == 200 and text.count('<circle class="residual"') == test_rows


def test_unknown_configured_database_stops_datasette(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    sqlite3.connect(db).close()
    config = tmp_path / "metadata.json"
    config.write_text(json.dumps({"plugins": {"sqlite-ml": {"db": "missing"}}}))
    done = subprocess.run(
        [script("datasette"), str(db), "-m", str(config), "--get", "/-/sqml"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "db='missing' names no attached database; available: one" in done.stderr


def test_experiments_named_dot_and_dot_dot_are_reachable_from_the_dashboard(
    tmp_path: Path,
) -> None:
    import html
    import re

    from datasette.app import Datasette

    import sqlite_ml

    db = tmp_path / "dots.db"
    conn = sqlite3.connect(db)
    sqlite_ml.register(conn)
    conn.execute("CREATE TABLE t (x REAL, y REAL)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, 2.0 * i + 1) for i in range(40)])
    for name in (".", ".."):
        conn.execute("SELECT sqml_train(?, 'regression', 'ridge', 't', 'y')", (name,))
    conn.commit()
    conn.close()
    ds = Datasette(files=[str(db)])

    async def pages() -> list[tuple[int, str]]:
        await ds.invoke_startup()
        index = (await ds.client.get("/-/sqml")).text
        links = [html.unescape(h) for h in re.findall(r'href="(/-/sqml[^"]*)"', index)]
        # httpx, like browsers, would drop a "/." or "/.." path segment
        dots = sorted({link for link in links if "experiment=" in link})
        assert len(dots) == 2, links  # linked from the summary table and each section
        return [((r := await ds.client.get(link)).status_code, r.text) for link in dots]

    try:
        results = asyncio.run(pages())
    finally:
        for database in ds.databases.values():
            database.close()
    titles = sorted(re.search(r"<h1>(.*?)</h1>", text).group(1) for _, text in results)
    assert [status for status, _ in results] == [200, 200]
    assert titles == [".", ".."]
