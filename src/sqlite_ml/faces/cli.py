"""The ``sqml`` command: SQL with every sqml function, training with a progress bar,
the leaderboard, runs, an HTML report and the demo.

Every command opens the database with Python's ``sqlite3`` and registers the functions
(``sqlite_ml.register``), so a command fails exactly as the same SQL would. Only ``shell``
and ``demo`` create a database file that does not exist yet (as the ``sqlite3`` shell does);
the other commands stop with exit status 1, so a mistyped path never leaves an empty file.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

import sqlite_ml

from ..errors import SqmlError
from ..ops import progress
from .shell import Shell
from .statements import failure, run_sql
from .text_tables import format_table, write_rows

if TYPE_CHECKING:
    from ..ops.insights import Experiment

# The commands import the domain (and through it numpy) when they run, so that
# ``sqml --help`` and ``sqml query`` start without loading any machine-learning library.


# --- opening databases --------------------------------------------------------------------


def open_database(path: str, *, create: bool = False) -> sqlite3.Connection:
    """A registered autocommit connection; a missing file is an error unless ``create``.

    The schema is not created here: the first function that writes creates it, so reading
    commands leave a database without sqml tables as it was."""
    if path != ":memory:" and not create and not Path(path).is_file():
        what = "is a directory, not" if Path(path).is_dir() else "does not exist; expected"
        raise click.ClickException(f"{path} {what} a SQLite database file")
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        sqlite_ml.register(conn, create_schema=False)
    except (sqlite3.Error, SqmlError) as error:
        raise click.ClickException(f"cannot open {path} as a SQLite database: {error}") from None
    return conn


@contextmanager
def database(path: str, *, create: bool = False) -> Iterator[sqlite3.Connection]:
    conn = open_database(path, create=create)
    try:
        yield conn
    finally:
        conn.close()


# --- output -------------------------------------------------------------------------------


def _output_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--csv", "output", flag_value="csv", help="Comma-separated values with a header row."
    )(function)
    function = click.option(
        "--json", "output", flag_value="json", help="A JSON array of objects, one per row."
    )(function)
    return click.option(
        "--table",
        "output",
        flag_value="table",
        default=True,
        help="An aligned text table (the default).",
    )(function)


# --- the commands -------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(sqlite_ml.__version__, prog_name="sqml")
def cli() -> None:
    """Machine learning inside SQLite: sqml_* SQL functions from the command line.

    Every command takes the path of a SQLite database file first.
    """


@cli.command()
@click.argument("db")
@click.argument("sql")
@_output_options
def query(db: str, sql: str, output: str) -> None:
    """Run SQL against DB with every sqml function available.

    Several statements separated by ';' run in order; the rows of the last one that
    returns rows are printed. SQL given as '-' is read from standard input.

    \b
    Examples:
      sqml query demo.db "SELECT experiment, algorithm, score FROM sqml_runs_overview"
      echo "SELECT count(*) FROM sqml_runs" | sqml query demo.db -
    """
    if sql == "-":
        sql = sys.stdin.read()
    with database(db) as conn:
        results = run_sql(conn, sql)
    if results:
        headers, rows = results[-1]
        write_rows(sys.stdout, headers, rows, output)


@cli.command()
@click.argument("db")
def shell(db: str) -> None:
    """An interactive SQL prompt on DB with every sqml function available.

    Statements end with ';' and may span several lines. Dot commands: .tables,
    .schema [TABLE], .help, .quit. History is kept in ~/.sqml_history. Creates DB
    when it does not exist (like the sqlite3 shell). With input from a pipe, it runs
    the statements and exits with status 1 if any failed.
    """
    created = db != ":memory:" and not Path(db).exists()
    with database(db, create=True) as conn:
        if created:
            click.echo(f"(new database {db})", err=True)
        status = Shell(conn, sys.stdin, sys.stdout).run()
    sys.exit(status)


@cli.command()
@click.argument("db")
@click.argument("experiment")
@click.option(
    "--type",
    "-t",
    "prediction_type",
    required=True,
    help="classification, regression or clustering.",
)
@click.option("--algorithm", "-a", required=True, help="e.g. svc, random_forest, ridge.")
@click.option("--dataset", "-d", required=True, help="Table or view holding the data.")
@click.option("--target", "-y", help="Column to predict (leave out for clustering).")
@click.option("--test-size", type=float, help="Share of rows held out for scoring [0.25].")
@click.option("--split", "split_strategy", help="Split strategy ['shuffle'].")
@click.option("--options", help="Training options as a JSON object (sqml_train's last argument).")
@click.option("--no-progress", is_flag=True, help="Do not draw the progress bar.")
def train(
    db: str,
    experiment: str,
    prediction_type: str,
    algorithm: str,
    dataset: str,
    target: str | None,
    test_size: float | None,
    split_strategy: str | None,
    options: str | None,
    no_progress: bool,
) -> None:
    """Train a model on a table of DB, as SELECT sqml_train(...) does.

    Shows a progress bar on stderr while the data loads, the model fits and (when a
    search is asked for) the candidates are tried; then prints the run's metrics.

    \b
    Examples:
      sqml train demo.db iris -t classification -a svc -d dataset_iris -y target
      sqml train demo.db groups -t clustering -a kmeans -d dataset_iris
    """
    if target is None and prediction_type != "clustering":
        raise click.UsageError(
            f"option --target / -y is required for {prediction_type!r}; "
            "only clustering trains without a target"
        )
    arguments: list[Any] = [experiment, prediction_type, algorithm, dataset, target]
    # Later SQL arguments are positional: earlier optional ones take sqml_train's defaults.
    tail: list[Any] = [test_size, split_strategy, options]
    while tail and tail[-1] is None:
        tail.pop()
    defaults = [0.25, "shuffle"]
    arguments += [defaults[i] if value is None else value for i, value in enumerate(tail)]
    placeholders = ", ".join("?" for _ in arguments)
    bar = ProgressBar(sys.stderr, enabled=not no_progress)
    with database(db) as conn, progress.listening(bar.update):
        try:
            (text,) = conn.execute(f"SELECT sqml_train({placeholders})", arguments).fetchone()
        except (sqlite3.Error, SqmlError) as error:
            bar.finish(failed=True)
            raise failure(conn, error) from None
        bar.finish()
    result = json.loads(text)
    deployed = "deployed" if result.get("deployed") else "not deployed (an earlier model is better)"
    click.echo(
        f"experiment {result.get('experiment_name')!s}: run {result.get('run_id')}, "
        f"model {result.get('model_id')}, {result.get('algorithm')}, {deployed}"
    )
    metrics = result.get("metrics") or {}
    rows = [(name, value) for name, value in metrics.items()]
    click.echo(format_table(["metric", "value"], rows, digits=4))


@cli.command()
@click.argument("db")
@_output_options
def experiments(db: str, output: str) -> None:
    """The leaderboard: every model of every experiment, best first.

    One row per model: its rank in the experiment, algorithm, its value of the
    experiment's deciding metric (named: accuracy for classification's score, r2 for
    regression's, or the metric chosen), other metrics, whether it is deployed (*) and,
    in json and csv, how its automatic deployment was decided.
    """
    with database(db) as conn:
        require_sqml_tables(conn, db)
        from ..ops import insights

        entries = insights.leaderboard(conn)
    if output == "table" and not entries:
        click.echo("No models trained yet.")
        return
    if output == "table":
        rows = [
            (
                entry.experiment,
                entry.rank,
                "*" if entry.deployed else " ",
                entry.algorithm,
                f"{entry.metric_label} {entry.score:.4f}" if entry.score is not None else "NULL",
                " ".join(f"{k}={v:.3g}" for k, v in sorted(entry.metrics.items())),
                entry.run_id,
                entry.model_id,
            )
            for entry in entries
        ]
        headers = ["experiment", "rank", "", "algorithm", "score", "metrics", "run", "model"]
        click.echo(format_table(headers, rows))
        return
    headers = [
        "experiment",
        "rank",
        "deployed",
        "algorithm",
        "metric",
        "score",
        "metrics",
        "hyperparams",
        "run_id",
        "model_id",
        "created_at",
        "decision",
        "p_value",
        "improvement_interval",
    ]
    records = [
        (
            e.experiment,
            e.rank,
            e.deployed,
            e.algorithm,
            e.metric,
            e.score,
            json.dumps(e.metrics) if output == "csv" else e.metrics,
            json.dumps(e.hyperparams) if output == "csv" else e.hyperparams,
            e.run_id,
            e.model_id,
            e.created_at,
            e.decision,
            e.p_value,
            json.dumps(e.improvement_interval) if output == "csv" else e.improvement_interval,
        )
        for e in entries
    ]
    write_rows(sys.stdout, headers, records, output)


@cli.command()
@click.argument("db")
@click.argument("experiment")
@_output_options
def runs(db: str, experiment: str, output: str) -> None:
    """Every run of EXPERIMENT, oldest first, failed ones included."""
    with database(db) as conn:
        require_sqml_tables(conn, db)
        info = _experiment(conn, experiment)
    headers = ["run", "started", "algorithm", "status", "score", "deployed", "fit_s", "error"]
    rows = [
        (
            run.run_id,
            run.created_at,
            run.algorithm,
            run.status,
            run.score,
            run.deployed if output != "table" else ("*" if run.deployed else " "),
            run.fit_time,
            run.error,
        )
        for run in info.runs
    ]
    if output == "table":
        headers[4] = f"score ({info.metric})"
        click.echo(format_table(headers, rows))
    else:
        write_rows(sys.stdout, headers, rows, output)


@cli.command()
@click.argument("db")
@click.argument("experiment")
@click.option(
    "--output", "-o", "path", default="report.html", show_default=True, help="HTML file to write."
)
def report(db: str, experiment: str, path: str) -> None:
    """Write a self-contained HTML report of EXPERIMENT (opens offline, no script).

    Runs with their deciding metric over time, split, hyperparameters and deployment
    decisions; the deployed model on its run's test rows: confusion matrix and ROC /
    precision-recall curves (classification) or residual plot (regression); feature
    importances where the model has them.
    """
    from . import pages

    with database(db) as conn:
        require_sqml_tables(conn, db)
        try:
            html = pages.report(conn, experiment)
        except (sqlite3.Error, SqmlError) as error:
            raise failure(conn, error) from None
    _write_html(path, html)


@cli.command()
@click.argument("db")
@click.argument("first", type=int)
@click.argument("second", type=int)
@click.option(
    "--output", "-o", "path", default="compare.html", show_default=True, help="HTML file to write."
)
def compare(db: str, first: int, second: int, path: str) -> None:
    """Write an HTML page comparing runs FIRST and SECOND side by side.

    Their split, hyperparameters, deployment decisions and metrics, and both models
    scored on FIRST's test rows (opens offline, no script).
    """
    from . import pages

    with database(db) as conn:
        require_sqml_tables(conn, db)
        try:
            html = pages.comparison_report(conn, first, second)
        except (sqlite3.Error, SqmlError) as error:
            raise failure(conn, error) from None
    _write_html(path, html)


def _write_html(path: str, html: str) -> None:
    try:
        Path(path).write_text(html, encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
    click.echo(f"wrote {path} ({len(html.encode('utf-8'))} bytes)")


@cli.command()
@click.argument("db")
@click.argument("experiment")
@click.option("--output", "-o", "path", required=True, help="File to write (e.g. model.onnx).")
@click.option(
    "--format",
    "-f",
    "export_format",
    default="onnx",
    show_default=True,
    help="Export format (onnx is the only one).",
)
def export(db: str, experiment: str, path: str, export_format: str) -> None:
    """Write EXPERIMENT's deployed model (or a model id) as an ONNX file, as
    SELECT sqml_export_model(EXPERIMENT, 'onnx') does.

    The graph takes one input per feature column and is checked against the model
    on held-out rows before it is written; needs pip install 'sqlite-ml[onnx]'.

    \b
    Examples:
      sqml export demo.db churn -o churn.onnx
      sqml export demo.db 7 -o model-7.onnx
    """
    with database(db) as conn:
        require_sqml_tables(conn, db)
        try:
            (data,) = conn.execute(
                "SELECT sqml_export_model(?, ?)", (experiment, export_format)
            ).fetchone()
        except (sqlite3.Error, SqmlError) as error:
            raise failure(conn, error) from None
    try:
        Path(path).write_bytes(data)
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
    click.echo(f"wrote {path} ({len(data)} bytes)")


@cli.command()
@click.argument("db")
def demo(db: str) -> None:
    """Create DB (a new file) and run the end-to-end demo in it (what `make demo` runs)."""
    from . import demo as demo_module

    if Path(db).exists():
        raise click.ClickException(
            f"{db} already exists; the demo writes a fresh database: remove it or pick another path"
        )
    demo_module.run(Path(db))


@cli.command("extension-path")
def extension_path() -> None:
    """Print the path of sqlite-ml's native SQLite extension (for .load / load_extension)."""
    from ..sqlite.native import extension_path as path_of_extension

    try:
        click.echo(path_of_extension())
    except SqmlError as error:
        raise click.ClickException(error.message) from None


def require_sqml_tables(conn: sqlite3.Connection, path: str) -> None:
    from ..ops import insights

    if not insights.has_sqml_tables(conn):
        raise click.ClickException(
            f"{path} has no sqlite-ml experiments (no sqml_experiments table); "
            "train a model first, e.g. sqml train --help"
        )


def _experiment(conn: sqlite3.Connection, name: str) -> Experiment:
    from ..ops import insights

    try:
        return insights.experiment(conn, name)
    except SqmlError as error:
        raise click.ClickException(error.message) from None


# --- the progress bar ---------------------------------------------------------------------


class ProgressBar:
    """Draws ``progress.report`` calls on a terminal: one line per stage, redrawn in place.

    Stages are whatever the training reports ('load', 'fit', 'search', ...); a total of 0
    means unknown and shows a counter instead of a bar. Off a terminal, it writes one
    line when a stage starts and one when it ends, so logs stay readable."""

    WIDTH = 28

    def __init__(self, out: TextIO, enabled: bool = True, interval: float = 0.1):
        self.out = out
        self.enabled = enabled
        self.interactive = enabled and out.isatty()
        self.interval = interval
        self.stage: str | None = None
        self.started = 0.0
        self.drawn = 0.0
        self.last = (0, 0)

    def update(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if stage != self.stage:
            self._end_stage()
            self.stage, self.started, self.drawn = stage, now, 0.0
            if not self.interactive:
                self.out.write(f"{stage}...\n")
        self.last = (done, total)
        finished = total > 0 and done >= total
        if self.interactive and (finished or now - self.drawn >= self.interval):
            self.out.write("\r" + self.line(stage, done, total, now - self.started) + "\x1b[K")
            self.drawn = now
        self.out.flush()

    @classmethod
    def line(cls, stage: str, done: int, total: int, elapsed: float) -> str:
        if total > 0:
            share = min(max(done / total, 0.0), 1.0)
            filled = round(share * cls.WIDTH)
            bar = "#" * filled + "-" * (cls.WIDTH - filled)
            return f"{stage:<8} [{bar}] {done}/{total} {elapsed:5.1f}s"
        return f"{stage:<8} {done} {elapsed:5.1f}s"

    def _end_stage(self, failed: bool = False) -> None:
        if self.stage is None:
            return
        done, total = self.last
        elapsed = time.monotonic() - self.started
        if self.interactive:
            line = self.line(self.stage, done, total, elapsed) + (" failed" if failed else "")
            self.out.write("\r" + line + "\x1b[K\n")
        else:
            self.out.write(
                f"{self.stage} {'failed after' if failed else 'done in'} {elapsed:.1f}s\n"
            )
        self.stage = None

    def finish(self, failed: bool = False) -> None:
        if self.enabled:
            self._end_stage(failed)
            self.out.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``sqml``."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # non-ASCII names on a non-UTF-8 terminal
    cli.main(args=list(argv) if argv is not None else None, prog_name="sqml")


if __name__ == "__main__":
    main()
