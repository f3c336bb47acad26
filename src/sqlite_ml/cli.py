"""The ``sqml`` command: SQL with every sqml function, training with a progress bar,
the leaderboard, runs, an HTML report and the demo.

Every command opens the database with Python's ``sqlite3`` and registers the functions
(``sqlite_ml.register``), so a command fails exactly as the same SQL would. Only ``shell``
and ``demo`` create a database file that does not exist yet (as the ``sqlite3`` shell does);
the other commands stop with exit status 1, so a mistyped path never leaves an empty file.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click

import sqlite_ml

from . import insights, progress
from .demo import format_table, sql_error_text
from .errors import SqmlError

HISTORY_ENV = "SQML_HISTORY"  # overrides ~/.sqml_history


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


def _failure(conn: sqlite3.Connection, error: sqlite3.Error | SqmlError) -> click.ClickException:
    if isinstance(error, SqmlError):
        return click.ClickException(error.message)
    return click.ClickException(sql_error_text(conn, error))


def split_statements(text: str) -> list[str]:
    """SQL text cut into complete statements (a trailing one without ';' included)."""
    statements, start = [], 0
    for index, char in enumerate(text):
        if char == ";" and sqlite3.complete_statement(text[start : index + 1]):
            statement = text[start : index + 1].strip()
            if statement != ";":
                statements.append(statement)
            start = index + 1
    rest = text[start:].strip()
    if rest:
        statements.append(rest)
    return statements


# --- output -------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$base64": True, "encoded": base64.b64encode(value).decode("ascii")}
    return value


def write_rows(
    out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[Any]], output: str
) -> None:
    if output == "json":
        records = [
            {header: _json_value(value) for header, value in zip(headers, row, strict=True)}
            for row in rows
        ]
        out.write(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    elif output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        for row in rows:
            writer.writerow(
                base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for v in row
            )
    else:
        out.write(format_table(list(headers), rows, digits=None) + "\n")


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


def iterate_sql(conn: sqlite3.Connection, text: str) -> Iterator[tuple[list[str], list[Any]]]:
    """Run the statements of ``text`` one by one, yielding the column names and rows of
    each that has some as soon as it has run (the rows of earlier statements reach the
    caller before a later statement fails)."""
    for statement in split_statements(text):
        try:
            cursor = conn.execute(statement)
            if cursor.description is not None:
                yield [d[0] for d in cursor.description], cursor.fetchall()
        except (sqlite3.Error, SqmlError) as error:
            raise _failure(conn, error) from None


def run_sql(conn: sqlite3.Connection, text: str) -> list[tuple[list[str], list[Any]]]:
    """Run every statement of ``text``; the column names and rows of each that has some."""
    return list(iterate_sql(conn, text))


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
            raise _failure(conn, error) from None
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

    One row per model: its rank in the experiment, algorithm, score (accuracy for
    classification, r2 for regression), other metrics and whether it is deployed (*).
    """
    with database(db) as conn:
        require_sqml_tables(conn, db)
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
                f"{entry.metric} {entry.score:.4f}" if entry.score is not None else "NULL",
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

    Runs and their scores over time, the deployed model's confusion matrix
    (classification) or residual plot (regression) and feature importances where the
    model has them.
    """
    from . import dashboard

    with database(db) as conn:
        require_sqml_tables(conn, db)
        try:
            html = dashboard.report(conn, experiment)
        except (sqlite3.Error, SqmlError) as error:
            raise _failure(conn, error) from None
    try:
        Path(path).write_text(html, encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
    click.echo(f"wrote {path} ({len(html.encode('utf-8'))} bytes)")


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
    try:
        from . import native  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        raise click.ClickException(
            "the native SQLite extension is not built in this installation of sqlite-ml "
            "(no sqlite_ml.native module)"
        ) from None
    try:
        click.echo(native.extension_path())
    except (OSError, RuntimeError) as error:
        raise click.ClickException(
            f"the native SQLite extension is not available: {error}"
        ) from None


def require_sqml_tables(conn: sqlite3.Connection, path: str) -> None:
    if not insights.has_sqml_tables(conn):
        raise click.ClickException(
            f"{path} has no sqlite-ml experiments (no sqml_experiments table); "
            "train a model first, e.g. sqml train --help"
        )


def _experiment(conn: sqlite3.Connection, name: str) -> insights.Experiment:
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


# --- the shell ----------------------------------------------------------------------------

SHELL_HELP = """\
Enter SQL statements ending with ';' (they may span several lines).
  .tables           list tables and views
  .schema [NAME]    show the CREATE statements (of NAME only when given)
  .help             this text
  .quit             leave (also .exit or end of input)"""


class Shell:
    """A small sqlite3-like prompt; readline history when input is a terminal."""

    def __init__(self, conn: sqlite3.Connection, stdin: TextIO, stdout: TextIO):
        self.conn = conn
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = stdin.isatty()
        self.failed = False

    def run(self) -> int:
        history = self._start_history() if self.interactive else None
        if self.interactive:
            self.stdout.write(
                f"sqlite-ml {sqlite_ml.__version__} shell; .help for help, .quit to leave\n"
            )
        buffer = ""
        try:
            while True:
                try:
                    line = self._read(buffer)
                except EOFError:
                    if self.interactive:
                        self.stdout.write("\n")
                    break
                except KeyboardInterrupt:
                    self.stdout.write("\n")
                    buffer = ""
                    continue
                if not buffer and line.strip().startswith("."):
                    if not self.dot_command(line.strip()):
                        break
                    continue
                buffer += line + "\n"
                if sqlite3.complete_statement(buffer):
                    self.execute(buffer)
                    buffer = ""
            if buffer.strip():
                self.error(f"incomplete statement at end of input: {buffer.strip()}")
        finally:
            if history is not None:
                history()
        return 1 if self.failed and not self.interactive else 0

    def _read(self, buffer: str) -> str:
        if self.interactive:
            return input("   ...> " if buffer else "sqml> ")
        line = self.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    def _start_history(self) -> Callable[[], None] | None:
        try:
            import readline
        except ImportError:
            return None
        path = os.environ.get(HISTORY_ENV) or os.path.expanduser("~/.sqml_history")
        try:
            readline.read_history_file(path)
        except OSError:
            pass
        readline.set_history_length(1000)

        def save() -> None:
            try:
                readline.write_history_file(path)
            except OSError as error:
                self.stdout.write(f"(history not saved to {path}: {error})\n")

        return save

    def error(self, message: str) -> None:
        self.failed = True
        self.stdout.flush()
        sys.stderr.write(f"Error: {message}\n")
        sys.stderr.flush()

    def execute(self, text: str) -> None:
        try:
            for headers, rows in iterate_sql(self.conn, text):
                write_rows(self.stdout, headers, rows, "table")
                self.stdout.flush()
        except click.ClickException as error:
            self.error(error.message)
        self.stdout.flush()

    def dot_command(self, line: str) -> bool:
        """Run a dot command; False when the shell should end."""
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        if command in (".quit", ".exit", ".q"):
            return False
        if command == ".help":
            self.stdout.write(SHELL_HELP + "\n")
        elif command == ".tables":
            names = [
                row[0]
                for row in self.conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                    " AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            self.stdout.write("  ".join(names) + ("\n" if names else ""))
        elif command == ".schema":
            sql = "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"
            params: tuple[str, ...] = ()
            if argument:
                sql += " AND tbl_name = ?"
                params = (argument,)
            for (text,) in self.conn.execute(sql + " ORDER BY type DESC, name", params):
                self.stdout.write(text + ";\n")
        else:
            self.error(f"unknown command {command}; try .help")
        self.stdout.flush()
        return True


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``sqml``."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # non-ASCII names on a non-UTF-8 terminal
    cli.main(args=list(argv) if argv is not None else None, prog_name="sqml")


if __name__ == "__main__":
    main()
