"""The ``sqml`` command, through click's runner and as the installed console script."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sqlite_ml.faces.cli import ProgressBar, cli
from sqlite_ml.faces.statements import split_statements
from sqlite_ml.ops import progress, training

from .faces import HOSTILE, deployed_test_rows, make_trained_db, script
from .helpers import expected_mode

COMMANDS = [
    "query",
    "shell",
    "train",
    "experiments",
    "runs",
    "report",
    "compare",
    "export",
    "demo",
    "extension-path",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_trained_db(tmp_path_factory.mktemp("cli") / "trained.db")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def sqml(runner: CliRunner, *args: Any, input: str | None = None) -> Any:
    return runner.invoke(cli, [str(arg) for arg in args], input=input, catch_exceptions=False)


def scalar(path: Path, sql: str, params: Any = ()) -> Any:
    return db_rows(path, sql, params)[0][0]


def db_rows(path: Path, sql: str, params: Any = ()) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(runner: CliRunner, command: str) -> None:
    result = sqml(runner, command, "--help")
    assert result.exit_code == 0
    assert f"Usage: cli {command}" in result.output or f"sqml {command}" in result.output


def test_query_outputs_table_json_and_csv(runner: CliRunner, trained: Path) -> None:
    sql = "SELECT name, prediction_type, 1.5 AS x, NULL AS n FROM sqml_experiments ORDER BY name"
    table = sqml(runner, "query", trained, sql)
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split() == ["name", "prediction_type", "x", "n"]
    assert lines[2].split() == ["diabetes", "regression", "1.5", "NULL"]
    assert lines[3].split() == ["iris", "classification", "1.5", "NULL"]

    records = json.loads(sqml(runner, "query", trained, sql, "--json").output)
    assert records[1] == {"name": "iris", "prediction_type": "classification", "x": 1.5, "n": None}

    rows = list(csv.reader(io.StringIO(sqml(runner, "query", trained, sql, "--csv").output)))
    assert rows == [
        ["name", "prediction_type", "x", "n"],
        ["diabetes", "regression", "1.5", ""],
        ["iris", "classification", "1.5", ""],
    ]


def test_query_calls_sqml_functions(runner: CliRunner, trained: Path) -> None:
    features = "json_object('sepal length (cm)', 5.1, 'sepal width (cm)', 3.5, "
    features += "'petal length (cm)', 1.4, 'petal width (cm)', 0.2)"
    result = sqml(
        runner, "query", trained, f"SELECT sqml_predict('iris', {features}) AS p", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"p": 0.0}]


def test_query_runs_statements_in_order_and_prints_the_last(
    runner: CliRunner, tmp_path: Path
) -> None:
    db = tmp_path / "new.db"
    sqlite3.connect(db).close()
    result = sqml(
        runner,
        "query",
        db,
        "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2); SELECT sum(x) FROM t",
    )
    assert result.exit_code == 0, result.output
    assert result.output.split()[-1] == "3"
    assert scalar(db, "SELECT count(*) FROM t") == 2  # committed
    # Reading commands leave a database without sqml tables as it was.
    assert scalar(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqml%'") == 0


def test_bad_sql_exits_1_with_the_sqlite_message(runner: CliRunner, trained: Path) -> None:
    result = sqml(runner, "query", trained, "SELECT * FROM no_such_table")
    assert result.exit_code == 1
    assert "Error: no such table: no_such_table" in result.output


def test_sqml_error_message_reaches_the_user(runner: CliRunner, trained: Path) -> None:
    result = sqml(runner, "query", trained, "SELECT sqml_predict('nope', '{}')")
    assert result.exit_code == 1
    assert "unknown experiment 'nope'" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["query", "{db}", "SELECT 1"],
        ["experiments", "{db}"],
        ["runs", "{db}", "iris"],
        ["report", "{db}", "iris", "-o", "{out}"],
        ["train", "{db}", "e", "-t", "classification", "-a", "svc", "-d", "t", "-y", "y"],
    ],
)
def test_missing_database_is_an_error_and_is_not_created(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    db, out = tmp_path / "typo.db", tmp_path / "r.html"
    result = sqml(runner, *[a.format(db=db, out=out) for a in args])
    assert result.exit_code == 1
    assert f"{db} does not exist" in result.output
    assert not db.exists() and not out.exists()


def test_database_without_experiments(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    sqlite3.connect(db).execute("CREATE TABLE t(x)").connection.close()
    for args in (["experiments", db], ["runs", db, "x"], ["report", db, "x"]):
        result = sqml(runner, *args)
        assert result.exit_code == 1
        assert "has no sqlite-ml experiments" in result.output


def test_not_a_database(runner: CliRunner, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    result = sqml(runner, "query", junk, "SELECT 1")
    assert result.exit_code == 1
    assert "cannot open" in result.output and "not a database" in result.output


def test_experiments_leaderboard_matches_the_database(runner: CliRunner, trained: Path) -> None:
    records = json.loads(sqml(runner, "experiments", trained, "--json").output)
    assert [r["experiment"] for r in records] == ["diabetes"] * 2 + ["iris"] * 3
    for experiment in ("iris", "diabetes"):
        mine = [r for r in records if r["experiment"] == experiment]
        assert [r["rank"] for r in mine] == sorted(r["rank"] for r in mine)
        assert [r["score"] for r in mine] == sorted((r["score"] for r in mine), reverse=True)
        deployed = [r for r in mine if r["deployed"]]
        assert len(deployed) == 1 and deployed[0]["rank"] == 1
    for record in records:
        score = scalar(
            trained,
            "SELECT value FROM sqml_metrics WHERE model_id = ? AND name = 'score'",
            (record["model_id"],),
        )
        assert record["score"] == score
        assert record["metric"] == "score"  # no experiment chose another deciding metric
        assert score in record["metrics"].values()  # score is the type's main metric
        assert record["hyperparams"]

    table = sqml(runner, "experiments", trained).output
    assert table.splitlines()[0].split()[:4] == ["experiment", "rank", "algorithm", "score"]
    best = max((r for r in records if r["experiment"] == "iris"), key=lambda r: r["score"])
    assert f"accuracy {best['score']:.4f}" in table  # the deciding metric, named


def test_runs_lists_every_run(runner: CliRunner, trained: Path) -> None:
    records = json.loads(sqml(runner, "runs", trained, "iris", "--json").output)
    expected = scalar(
        trained,
        "SELECT json_group_array(run_id) FROM (SELECT run_id FROM sqml_runs_overview"
        " WHERE experiment = 'iris' ORDER BY run_id)",
    )
    assert [r["run"] for r in records] == json.loads(expected)
    assert [r["algorithm"] for r in records] == ["dummy", "logistic_regression", "knn"] + [
        "logistic_regression"
    ]
    assert [r["status"] for r in records] == ["success"] * 3 + ["failed"]
    assert records[-1]["score"] is None and "2 classes" in records[-1]["error"]
    assert sum(r["deployed"] for r in records) == 1


def test_unknown_experiment(runner: CliRunner, trained: Path) -> None:
    for args in (["runs", trained, "nope"], ["report", trained, "nope"]):
        result = sqml(runner, *args)
        assert result.exit_code == 1
        assert "unknown experiment 'nope'; experiments in this database: 'diabetes', 'iris'" in (
            result.output
        )


def test_train_prints_metrics_and_records_the_run(
    runner: CliRunner, tmp_path: Path, trained: Path
) -> None:
    db = tmp_path / "train.db"
    db.write_bytes(trained.read_bytes())
    result = runner.invoke(
        cli,
        ["train", str(db), "iris", "-t", "classification", "-a", "svc"]
        + ["-d", "dataset_iris", "-y", "target", "--test-size", "0.3"],
    )
    assert result.exit_code == 0, result.output
    run_id, accuracy, test_rows = (
        sqlite3.connect(db)
        .execute(
            "SELECT r.id, m.value, r.test_rows FROM sqml_runs r"
            " JOIN sqml_models o ON o.run_id = r.id"
            " JOIN sqml_metrics m ON m.model_id = o.id AND m.name = 'accuracy'"
            " ORDER BY r.id DESC LIMIT 1"
        )
        .fetchone()
    )
    assert f"run {run_id}," in result.output
    assert 30 < test_rows < 60  # 30% of 150, as decided by the hash of each rowid
    assert any(
        line.split() == ["accuracy", f"{accuracy:.4f}"] for line in result.output.splitlines()
    )


def sql_error(db: Path, sql: str) -> sqlite3.Error:
    """The error the same SQL raises on a registered connection (what the CLI must print)."""
    import sqlite_ml

    conn = sqlite3.connect(db)
    sqlite_ml.register(conn)
    try:
        with pytest.raises(sqlite3.Error) as caught:
            conn.execute(sql).fetchone()
    finally:
        conn.close()
    return caught.value


def test_train_errors_are_the_sql_errors(runner: CliRunner, trained: Path) -> None:
    result = sqml(
        runner, "train", trained, "iris", "-t", "regression", "-a", "ridge", "-d", "dataset_iris",
        "-y", "target",
    )  # fmt: skip
    assert result.exit_code == 1
    error = sql_error(
        trained, "SELECT sqml_train('iris', 'regression', 'ridge', 'dataset_iris', 'target')"
    )
    assert f"Error: {error}" in result.output
    assert "keeps its prediction type" in result.output


def test_train_passes_options_as_the_last_argument(runner: CliRunner, trained: Path) -> None:
    result = sqml(
        runner, "train", trained, "iris", "-t", "classification", "-a", "svc", "-d",
        "dataset_iris", "-y", "target", "--options", '{"hyperparams": {"C": 2}}',
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(trained)
    try:
        (hyperparams,) = conn.execute(
            "SELECT hyperparams FROM sqml_runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    assert json.loads(hyperparams)["C"] == 2


def test_train_reports_a_bad_option_like_sql_does(runner: CliRunner, trained: Path) -> None:
    result = sqml(
        runner, "train", trained, "iris", "-t", "classification", "-a", "svc", "-d",
        "dataset_iris", "-y", "target", "--options", '{"C": 2}',
    )  # fmt: skip
    assert result.exit_code == 1
    error = sql_error(
        trained,
        "SELECT sqml_train('iris', 'classification', 'svc', 'dataset_iris', 'target',"
        " 0.25, 'shuffle', '{\"C\": 2}')",
    )
    assert f"Error: {error}" in result.output
    assert "hyperparams" in result.output  # the message lists the valid option keys


def test_train_shows_the_stages_training_reports(runner: CliRunner, trained: Path) -> None:
    result = sqml(
        runner, "train", trained, "iris", "-t", "classification", "-a", "logistic_regression",
        "-d", "dataset_iris", "-y", "target",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "load done in" in result.stderr and "fit done in" in result.stderr


def test_train_draws_progress_on_stderr(
    runner: CliRunner, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_prepare = training.prepare

    def reporting_prepare(*args: Any, **kwargs: Any) -> Any:
        for done in range(4):
            progress.report("load", done, 3)
        progress.report("a stage nobody planned", 5, 0)
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(training, "prepare", reporting_prepare)
    db = tmp_path / "p.db"
    db.write_bytes(trained.read_bytes())
    result = CliRunner().invoke(
        cli,
        ["train", str(db), "iris", "-t", "classification", "-a", "knn", "-d", "dataset_iris"]
        + ["-y", "target"],
    )
    assert result.exit_code == 0, result.output
    assert "load..." in result.stderr and "load done in" in result.stderr
    assert "a stage nobody planned..." in result.stderr
    assert "accuracy" in result.stdout and "load" not in result.stdout

    failing = CliRunner().invoke(
        cli,
        ["train", str(db), "iris", "-t", "classification", "-a", "logistic_regression"]
        + ["-d", "iris_one_class", "-y", "target"],
    )
    assert failing.exit_code == 1
    assert "fit failed after" in failing.stderr  # the stage that was running says so
    assert "2 classes" in failing.stderr


def test_progress_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    bar = ProgressBar(out, interval=0)
    bar.update("load", 0, 4)
    bar.update("load", 4, 4)
    bar.update("search", 1, 0)
    bar.update("search", 2, 0)
    bar.finish()
    text = out.getvalue()
    assert "load     [############################] 4/4" in text
    assert "search   2" in text
    assert text.endswith("\n") and text.count("\n") == 2  # one finished line per stage
    assert ProgressBar.line("fit", 1, 4, 0.0).startswith("fit      [#######-----")
    assert ProgressBar.line("x", 9, 4, 0.0).count("#") == ProgressBar.WIDTH  # clamped


def test_split_statements() -> None:
    assert split_statements("select 1; select ';' ;\n select 2") == [
        "select 1;",
        "select ';' ;",
        "select 2",
    ]
    assert split_statements("create trigger t after insert on a begin select 1; end;") == [
        "create trigger t after insert on a begin select 1; end;"
    ]


def test_report_is_self_contained_and_escapes_names(runner: CliRunner, tmp_path: Path) -> None:
    db = make_trained_db(tmp_path / "hostile.db", classification=HOSTILE)
    out = tmp_path / "report.html"
    result = sqml(runner, "report", db, HOSTILE, "-o", out)
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "<script" not in html and "window.sqmlPwned" in html
    assert "&lt;script&gt;" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    scored = scalar(
        db, "SELECT count(score) FROM sqml_runs_overview WHERE experiment = ?", (HOSTILE,)
    )
    assert scored == 3 and html.count('<circle class="run-point') == 3
    assert html.count('<path class="failed-run"') == 1 and "This solver needs" in html
    assert "Confusion matrix" in html and html.count('class="cm-cell') == 9
    test_rows = deployed_test_rows(db, HOSTILE)
    assert sum(int(v) for v in _attributes(html, "data-count")) == test_rows < 150
    assert html.count('<path class="curve"') == 6 and "Deployment: deployed:" in html

    regression = tmp_path / "diabetes.html"
    assert sqml(runner, "report", db, "diabetes", "-o", regression).exit_code == 0
    html = regression.read_text()
    test_rows = deployed_test_rows(db, "diabetes")
    assert "Residuals" in html and html.count('<circle class="residual"') == test_rows < 120


def test_compare_writes_two_runs_side_by_side(
    runner: CliRunner, trained: Path, tmp_path: Path
) -> None:
    out = tmp_path / "compare.html"
    result = sqml(runner, "compare", trained, "1", "2", "-o", out)
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "<h1>Run 1 and run 2</h1>" in html and "Both models on run 1" in html
    assert "<script" not in html
    missing = sqml(runner, "compare", trained, "1", "99", "-o", out)
    assert missing.exit_code == 1 and "there is no run 99" in missing.output


def test_report_to_an_unwritable_place(runner: CliRunner, trained: Path, tmp_path: Path) -> None:
    result = sqml(runner, "report", trained, "iris", "-o", tmp_path / "no" / "such" / "r.html")
    assert result.exit_code == 1 and "cannot write" in result.output


def _attributes(html: str, name: str) -> list[str]:
    parts = html.split(f'{name}="')[1:]
    return [part.split('"', 1)[0] for part in parts]


def test_extension_path(runner: CliRunner) -> None:
    result = sqml(runner, "extension-path")
    assert result.exit_code == 0 and Path(result.output.strip()).exists()


def test_extension_path_without_the_native_module(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite_ml

    monkeypatch.delattr(sqlite_ml, "_native", raising=False)
    monkeypatch.setitem(sys.modules, "sqlite_ml._native", None)  # as if never built
    result = sqml(runner, "extension-path")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: sqlite-ml's native extension is not built in this installation" in (
        result.output
    )


def test_demo_command(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    done = sqml(runner, "demo", db)
    assert done.exit_code == 0, done.output
    out = done.stdout
    for title in (
        "Training options",
        "Leaderboard: the sqml_leaderboard view",
        "Deploying by hand",
        "Probabilities, evaluation and feature importance",
        "Evaluation you can trust",
        "Clustering: k-means",
        "Mistakes are SQL errors",
    ):
        assert title in out
    assert "Traceback" not in done.output
    assert scalar(db, "SELECT count(*) FROM sqml_experiments") == 6
    # the gated deployment: ridge passes the gate over the mean, its near-twin does not
    gated = db_rows(
        db,
        "SELECT algorithm, deployed, p_value FROM sqml_leaderboard WHERE experiment = 'gated'"
        " ORDER BY run_id",
    )
    assert [(a, d) for a, d, _ in gated] == [("dummy", 0), ("ridge", 1), ("ridge", 0)]
    assert gated[1][2] < 0.05 < gated[2][2]
    assert "gate passed" in out and "gate refused" in out
    assert "sqml_explain('churn'" in out and "the other features" in out
    assert "sqml_drift('iris', 'new_flowers')" in out
    # the grid search: 3 candidates, each a row of sqml_search_trials
    assert scalar(db, "SELECT count(*) FROM sqml_search_trials") == 3
    assert scalar(db, "SELECT count(*) FROM sqml_runs WHERE split_strategy = 'stratified'") == 2
    strategies = scalar(db, "SELECT group_concat(strategy) FROM sqml_deployments")
    assert "rollback" in strategies and "best_score" in strategies
    clusters = "SELECT prediction_type FROM sqml_experiments WHERE name = 'iris clusters'"
    assert scalar(db, clusters) == "clustering"
    assert "confusion matrix" in out and "true \\ predicted" in out
    assert '{"no": ' in out  # sqml_predict_proba of the churn model
    if expected_mode() == "native":
        assert "JOIN sqml_predict_table('churn', 'customers')" in out
        assert "FROM sqml_test_rows(" in out and "FROM sqml_roc_curve(" in out
    else:
        assert "skipped: sqml_predict_table needs the 'native' binding" in out
    assert f"sqml report {db} churn -o report.html" in out and "/-/sqml" in out
    again = sqml(runner, "demo", db)
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_shell_from_a_pipe(trained: Path, tmp_path: Path) -> None:
    commands = (
        ".tables\n"
        "SELECT name\n  FROM sqml_experiments\n  ORDER BY name;\n"
        ".schema sqml_meta\n"
        "SELECT sqml_predict('nope', '{}');\n"
        "SELECT 40 + 2 AS answer; SELECT 'two' AS second;\n"
        ".quit\n"
        "SELECT 'not reached';\n"
    )
    done = subprocess.run(
        [script("sqml"), "shell", str(trained)],
        input=commands,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1  # one statement failed
    assert "dataset_iris" in done.stdout and "sqml_runs_overview" in done.stdout
    assert "diabetes\n" in done.stdout.replace("  ", "")
    assert "CREATE TABLE sqml_meta" in done.stdout
    assert "Error: unknown experiment 'nope'" in done.stderr
    assert "42" in done.stdout and "two" in done.stdout
    assert "not reached" not in done.stdout


def test_shell_creates_a_new_database(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    done = sqml(
        runner,
        "shell",
        db,
        input="SELECT sqml_load_dataset('iris');\nSELECT count(*) FROM dataset_iris;\n",
    )
    assert done.exit_code == 0, done.output
    assert "new database" in done.stderr and "150" in done.stdout
    assert scalar(db, "SELECT count(*) FROM dataset_iris") == 150


def _read_until(fd: int, marker: bytes, timeout: float = 120) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"did not see {marker!r} in {seen!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_shell_on_a_terminal_keeps_history(trained: Path, tmp_path: Path) -> None:
    history = tmp_path / "history"
    pid, fd = pty.fork()
    if pid == 0:  # child: the real sqml shell on the pseudo-terminal
        os.environ["SQML_HISTORY"] = str(history)
        os.environ["TERM"] = "dumb"
        os.execv(script("sqml"), [script("sqml"), "shell", str(trained)])
    try:
        assert b"sqml> " in _read_until(fd, b"sqml> ")
        os.write(fd, b"SELECT 6 *\n")
        assert b"...> " in _read_until(fd, b"...> ")  # the statement continues
        os.write(fd, b"7 AS product;\n")
        assert b"42" in _read_until(fd, b"sqml> ")
        os.write(fd, b".quit\n")
        _read_until(fd, b"\n", timeout=60)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "SELECT 6 *" in history.read_text() and "7 AS product;" in history.read_text()


def test_shell_prints_each_statement_before_a_later_one_on_the_line_fails(
    trained: Path,
) -> None:
    done = subprocess.run(
        [script("sqml"), "shell", str(trained)],
        input="SELECT 40 + 2 AS answer; SELEC 3; SELECT 'after' AS later;\nSELECT 7 AS seven;\n",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "answer" in done.stdout and "42" in done.stdout  # ran before the error
    assert 'near "SELEC": syntax error' in done.stderr
    assert "after" not in done.stdout  # the rest of that input stops, like sqlite3
    assert "seven" in done.stdout  # the next line runs


def test_query_reads_sql_from_stdin_when_given_dash(trained: Path) -> None:
    done = subprocess.run(
        [script("sqml"), "query", str(trained), "-", "--json"],
        input="SELECT name FROM sqml_experiments ORDER BY name;\n",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"name": "diabetes"}, {"name": "iris"}]


def test_train_clustering_without_a_target(tmp_path: Path, trained: Path) -> None:
    db = tmp_path / "clusters.db"
    db.write_bytes(trained.read_bytes())
    done = subprocess.run(
        [script("sqml"), "train", str(db), "groups", "-t", "clustering", "-a", "kmeans"]
        + ["-d", "dataset_iris", "--no-progress"]
        + ["--options", '{"hyperparams": {"n_clusters": 3}}'],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "experiment groups: run" in done.stdout
    assert scalar(db, "SELECT prediction_type FROM sqml_experiments WHERE name = 'groups'") == (
        "clustering"
    )
    missing = subprocess.run(
        [script("sqml"), "train", str(db), "iris", "-t", "classification", "-a", "svc"]
        + ["-d", "dataset_iris", "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert "--target / -y is required for 'classification'" in missing.stderr
