"""Training from Datasette (issue 16): the functions that write work from Datasette's SQL
page and JSON API for the actors it allows (permission ``sqml-train``), through the
plugin's own write connection; datasette-ml's settings are accepted. Datasette's own test
client, as datasette-ml's suite uses it."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette

import sqlite_ml

TRAIN = "SELECT sqml_train(?, 'classification', ?, 'dataset_iris', 'target') AS training"


def iris_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    sqlite_ml.register(conn)
    conn.execute("SELECT sqml_load_dataset('iris')").fetchone()
    conn.commit()
    conn.close()
    return path


def counts(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT (SELECT count(*) FROM sqml_runs), (SELECT count(*) FROM sqml_models)"
        ).fetchone()
    finally:
        conn.close()


def serve(
    files: list[Path], plugins: dict[str, Any] | None, body: Callable[[Datasette], Awaitable[Any]]
) -> Any:
    """Run ``body`` against an in-process Datasette with plugin settings ``plugins``."""
    metadata = {"plugins": plugins} if plugins is not None else None
    ds = Datasette([str(f) for f in files], metadata=metadata)

    async def run() -> Any:
        await ds.invoke_startup()
        return await body(ds)

    try:
        return asyncio.run(run())
    finally:
        for db in ds.databases.values():
            db.close()


def actor(ds: Datasette, name: str) -> dict[str, str]:
    return {"ds_actor": ds.sign({"a": {"id": name}}, "actor")}


async def query(
    ds: Datasette, database: str, sql: str, params: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    response = await ds.client.get(
        f"/{database}.json", params={"sql": sql, "_shape": "objects", **(params or {})}, **kwargs
    )
    return response.json()


def train_sql(experiment: str, algorithm: str) -> str:
    return (
        f"SELECT sqml_train('{experiment}', 'classification', '{algorithm}', 'dataset_iris',"
        " 'target') AS training"
    )


def test_allowed_actors_train_from_the_json_api_and_others_are_told_how(tmp_path: Path) -> None:
    db = iris_db(tmp_path / "ml.db")

    async def body(ds: Datasette) -> None:
        refused = await query(ds, "ml", train_sql("e", "logistic_regression"))
        assert not refused["ok"]
        assert (
            "sqml_train writes to database 'ml', which needs the Datasette permission"
            " 'sqml-train'; anonymous users do not have it" in refused["error"]
        )
        assert '{"plugins": {"sqlite-ml": {"train": {"id": ["alice"]}}}}' in refused["error"]
        bob = await query(ds, "ml", train_sql("e", "dummy"), cookies=actor(ds, "bob"))
        assert not bob["ok"] and 'actor "bob" does not have it' in bob["error"]
        assert counts(db) == (0, 0)

        trained = await query(
            ds, "ml", train_sql("e", "logistic_regression"), cookies=actor(ds, "alice")
        )
        assert trained["ok"], trained
        answer = json.loads(trained["rows"][0]["training"])
        assert answer["deployed"] and answer["run_id"] == 1
        assert counts(db) == (1, 1)
        # every reader sees the new model at once
        predicted = await query(ds, "ml", "SELECT sqml_predict('e', '[5.1, 3.5, 1.4, 0.2]') AS p")
        assert predicted["rows"] == [{"p": 0.0}]
        # the other writers too, and their errors in our words
        loaded = await query(
            ds, "ml", "SELECT sqml_load_dataset('wine') AS w", cookies=actor(ds, "alice")
        )
        assert loaded["ok"] and json.loads(loaded["rows"][0]["w"])["table"] == "dataset_wine"
        tables = await query(ds, "ml", "SELECT name FROM sqlite_master WHERE name = 'dataset_wine'")
        assert tables["rows"] == [{"name": "dataset_wine"}]
        typo = await query(
            ds, "ml", "SELECT sqml_delete_experiment('nope')", cookies=actor(ds, "alice")
        )
        assert not typo["ok"]
        assert "unknown experiment 'nope'; experiments in this database: 'e'" in typo["error"]

    serve([db], {"sqlite-ml": {"train": {"id": "alice"}}}, body)


def test_root_by_default_everyone_when_configured(tmp_path: Path) -> None:
    db = iris_db(tmp_path / "ml.db")

    async def default(ds: Datasette) -> None:
        root = await query(ds, "ml", train_sql("r", "dummy"), cookies=actor(ds, "root"))
        assert root["ok"], root
        anonymous = await query(ds, "ml", train_sql("r", "dummy"))
        assert not anonymous["ok"] and "anonymous users do not have it" in anonymous["error"]

    serve([db], None, default)

    async def everyone(ds: Datasette) -> None:
        anonymous = await query(ds, "ml", train_sql("a", "dummy"))
        assert anonymous["ok"], anonymous

    serve([db], {"sqlite-ml": {"train": True}}, everyone)
    assert counts(db) == (2, 2)


def test_datasette_ml_settings_are_accepted(tmp_path: Path) -> None:
    data, sqml = iris_db(tmp_path / "data.db"), iris_db(tmp_path / "sqml.db")

    async def body(ds: Datasette) -> None:
        trained = await query(ds, "sqml", train_sql("m", "dummy"), cookies=actor(ds, "root"))
        assert trained["ok"], trained
        elsewhere = await query(ds, "data", train_sql("m", "dummy"), cookies=actor(ds, "root"))
        assert not elsewhere["ok"]
        assert (
            "sqml_train cannot write to database 'data' from Datasette: the sqlite-ml plugin"
            " writes only to database 'sqml'" in elsewhere["error"]
        )

    # datasette-ml's own key and its default database name, 'sqml'
    serve([data, sqml], {"datasette-ml": {}}, body)
    serve([data, sqml], {"datasette-ml": {"db": "sqml"}}, body)
    assert counts(sqml) == (2, 2) and counts(data) == (0, 0)
    for settings in ({"datasette-ml": {"db": "unknown"}}, {"datasette-ml": {}}):
        with pytest.raises(sqlite_ml.SqmlError, match="names no attached database"):
            serve([data], settings, lambda ds: asyncio.sleep(0))


def test_a_canned_query_trains_for_an_allowed_actor(tmp_path: Path) -> None:
    db = iris_db(tmp_path / "ml.db")
    metadata = {
        "plugins": {"sqlite-ml": {"train": {"id": "alice"}}},
        "databases": {
            "ml": {
                "queries": {
                    "train": {
                        "sql": "SELECT sqml_train(:experiment, 'classification', "
                        "'dummy', 'dataset_iris', 'target') AS training"
                    }
                }
            }
        },
    }
    ds = Datasette([str(db)], metadata=metadata)

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        await ds.invoke_startup()
        params = {"experiment": "canned", "_shape": "objects"}
        anonymous = (await ds.client.get("/ml/train.json", params=params)).json()
        alice = (
            await ds.client.get("/ml/train.json", params=params, cookies=actor(ds, "alice"))
        ).json()
        return anonymous, alice

    try:
        anonymous, alice = asyncio.run(run())
    finally:
        for database in ds.databases.values():
            database.close()
    assert not anonymous["ok"] and "anonymous users do not have it" in anonymous["error"]
    assert alice["ok"], alice
    assert json.loads(alice["rows"][0]["training"])["experiment_name"] == "canned"


def test_the_dashboard_form_trains_for_allowed_actors(tmp_path: Path) -> None:
    db = iris_db(tmp_path / "ml.db")

    async def body(ds: Datasette) -> None:
        anonymous = await ds.client.get("/-/sqml")
        assert anonymous.status_code == 200 and "<form" not in anonymous.text
        forbidden = await ds.client.post("/-/sqml-train", data={"experiment": "x"})
        assert forbidden.status_code == 403
        assert "needs the Datasette permission" in unescape(forbidden.text)

        cookies = actor(ds, "alice")
        page = await ds.client.get("/-/sqml", cookies=cookies)
        assert '<form class="train" method="post" action="/-/sqml-train">' in page.text
        assert '<option value="dataset_iris">' in page.text
        token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
        cookies = {**cookies, "ds_csrftoken": page.cookies["ds_csrftoken"]}
        fields = {
            "csrftoken": token,
            "experiment": "from the form",
            "prediction_type": "classification",
            "algorithm": "decision_tree",
            "dataset": "dataset_iris",
            "target": "target",
            "options": '{"hyperparams": {"max_depth": 2}}',
        }
        done = await ds.client.post("/-/sqml-train", data=fields, cookies=cookies)
        assert done.status_code == 302, done.text
        location = done.headers["location"]
        assert location == "/-/sqml/from%20the%20form?trained=1"
        shown = await ds.client.get(location, cookies=cookies)
        assert "Run 1 trained: decision_tree, accuracy" in shown.text
        hyperparams = await query(ds, "ml", "SELECT hyperparams FROM sqml_runs")
        assert json.loads(hyperparams["rows"][0]["hyperparams"])["max_depth"] == 2

        wrong = await ds.client.post(
            "/-/sqml-train", data={**fields, "algorithm": "decision_tre"}, cookies=cookies
        )
        assert wrong.status_code == 400
        assert "did you mean &#x27;decision_tree&#x27;" in wrong.text
        assert 'value="from the form"' in wrong.text  # the form keeps what was typed

    serve([db], {"sqlite-ml": {"train": {"id": "alice"}}}, body)
    assert counts(db) == (1, 1)


def test_a_permission_check_that_does_not_answer_is_a_clear_error(
    tmp_path: Path, monkeypatch
) -> None:
    from sqlite_ml.faces import datasette_writes

    db = iris_db(tmp_path / "ml.db")
    monkeypatch.setattr(datasette_writes, "PERMISSION_TIMEOUT", 0.2)

    async def body(ds: Datasette) -> None:
        checked = ds.permission_allowed

        async def slow(actor: Any, action: str, resource: Any = None, default: bool = False) -> Any:
            if action == "sqml-train":
                await asyncio.sleep(2)
            return await checked(actor, action, resource=resource, default=default)

        ds.permission_allowed = slow  # type: ignore[method-assign]
        answer = await query(ds, "ml", train_sql("e", "dummy"), cookies=actor(ds, "alice"))
        assert not answer["ok"]
        assert (
            "Datasette did not answer whether this actor has the permission 'sqml-train'"
            in (answer["error"])
        )
        assert counts(db) == (0, 0)

    serve([db], {"sqlite-ml": {"train": {"id": "alice"}}}, body)
