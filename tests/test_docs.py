"""The manual (docs/ and README.md) is checked against the code.

- every registered SQL function has a heading `` `NAME(...)` `` in docs/functions/, and
  every such heading names a registered function;
- every ``sqml`` subcommand has a heading ``## `sqml NAME` `` in docs/cli.md;
- every fenced block whose info string is exactly ``sql`` runs, page by page and in
  order, on a fresh database file per page. A block ending with a line
  ``-- error: TEXT`` must fail, in its last statement, with a message containing TEXT.
  ``sql native`` blocks run only in the native binding (``sqml_predict_table``);
  ``sql skip`` blocks do not run (the page's prose says why);
- every relative link points to an existing file, and docs/index.md links every page.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import sqlite_ml


def registered_function_names() -> set[str]:
    """The name of every SQL function sqlite-ml registers on a connection."""
    from sqlite_ml.sql.registry import registered_names

    return set(registered_names())


def table_valued_names() -> list[str]:
    from sqlite_ml.sql.registry import table_valued_names as names

    return names()


def cli_group() -> Any:
    """The click group of the ``sqml`` command."""
    from sqlite_ml.faces.cli import cli

    return cli


ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [*sorted(DOCS.rglob("*.md")), README]

RUN, NATIVE, SKIP = "sql", "sql native", "sql skip"
ERROR_LINE = re.compile(r"^\s*--\s*error:\s*(?P<text>.+?)\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+)\s*(?P<info>.*?)\s*$")
HEADING = re.compile(r"^#{1,6}\s+\S.*$")
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    info: str
    code: str
    line: int  # of the opening fence, 1-based


def parse(page: Path) -> tuple[list[str], list[Block]]:
    """The page's heading lines (``## text``) and fenced blocks; a ``#`` in a block is code."""
    headings: list[str] = []
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            if HEADING.match(lines[index]):
                headings.append(lines[index].strip())
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        assert end < len(lines), f"{page.name}:{index + 1}: unclosed code block"
        blocks.append(Block(opening["info"], "\n".join(body), index + 1))
        index = end + 1
    return headings, blocks


def prose(page: Path) -> str:
    """The page without its fenced blocks."""
    lines = page.read_text(encoding="utf-8").splitlines()
    kept: list[str] = []
    fence: str | None = None
    for line in lines:
        opening = FENCE.match(line)
        if fence is None and opening is not None:
            fence = opening["fence"]
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            kept.append(line)
    return "\n".join(kept)


def split_statements(sql: str) -> list[str]:
    """The statements of a block, cut where sqlite3.complete_statement says one ends."""
    statements: list[str] = []
    start = 0
    for index, char in enumerate(sql):
        if char == ";" and sqlite3.complete_statement(sql[start : index + 1]):
            statements.append(sql[start : index + 1].strip())
            start = index + 1
    rest = re.sub(r"/\*.*?\*/", "", re.sub(r"--[^\n]*", "", sql[start:]), flags=re.S)
    assert not rest.strip(), f"incomplete statement (no ';'?): {sql[start:].strip()!r}"
    return statements


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def function_headings() -> list[str]:
    return [heading for page in sorted(DOCS.glob("functions/*.md")) for heading in parse(page)[0]]


# --- every function and subcommand is documented ------------------------------------------


def test_every_sql_function_has_a_heading_in_docs_functions() -> None:
    headings = function_headings()
    undocumented = [
        name
        for name in sorted(registered_function_names())
        if not any(f"`{name}(" in heading for heading in headings)
    ]
    assert not undocumented, f"no heading `NAME(...)` in docs/functions/ for {undocumented}"


def test_the_list_of_functions_is_what_a_connection_has(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "functions.db")
    try:
        sqlite_ml.register(conn)
        try:
            names = {row[0] for row in conn.execute("SELECT name FROM pragma_function_list")}
            modules = {row[0] for row in conn.execute("SELECT name FROM pragma_module_list")}
        except sqlite3.Error:
            pytest.skip("this SQLite has no pragma_function_list")
    finally:
        conn.close()
    has = {name for name in names | modules if name.startswith("sqml_")}
    expected = registered_function_names()
    if "sqml_predict_table" not in modules:  # not in the capi and stdlib bindings
        expected = expected - set(table_valued_names())
    assert has == expected


def test_every_function_heading_names_a_registered_function() -> None:
    named = {
        name for heading in function_headings() for name in re.findall(r"(sqml_\w+)\(", heading)
    }
    unknown = sorted(named - registered_function_names())
    assert not unknown, f"docs/functions/ documents functions that do not exist: {unknown}"


def test_every_subcommand_has_a_heading_in_docs_cli() -> None:
    headings = parse(DOCS / "cli.md")[0]
    commands = set(cli_group().commands)
    missing = sorted(name for name in commands if f"## `sqml {name}`" not in headings)
    assert not missing, f"docs/cli.md has no heading ## `sqml NAME` for {missing}"
    documented = {m[1] for line in headings if (m := re.fullmatch(r"## `sqml ([\w-]+)`", line))}
    assert documented <= commands, (
        f"docs/cli.md documents unknown commands: {documented - commands}"
    )


# --- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_point_to_existing_files(page: Path) -> None:
    broken = []
    for match in LINK.finditer(prose(page)):
        target = match["target"].split("#", 1)[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # an anchor, or a URL
            continue
        if not (page.parent / target).exists():
            broken.append(match["target"])
    assert not broken, f"{page_id(page)} links to missing files: {broken}"


def test_the_index_links_every_page_and_the_readme_links_the_index() -> None:
    index = DOCS / "index.md"
    linked = {
        (DOCS / match["target"].split("#", 1)[0]).resolve() for match in LINK.finditer(prose(index))
    }
    unlinked = [page_id(page) for page in PAGES[:-1] if page != index and page not in linked]
    assert not unlinked, f"docs/index.md does not link {unlinked}"
    assert "](docs/index.md)" in README.read_text(encoding="utf-8")


# --- the SQL examples run -------------------------------------------------------------------


def run_block(conn: sqlite3.Connection, where: str, block: Block) -> None:
    lines = block.code.rstrip().splitlines()
    expected = ERROR_LINE.match(lines[-1]) if lines else None
    statements = split_statements("\n".join(lines[:-1] if expected else lines))
    assert statements, f"{where}: a block without statements"
    for number, statement in enumerate(statements, 1):
        try:
            conn.execute(statement).fetchall()
        except sqlite3.Error as error:
            message = f"{error} | {sqlite_ml.last_error(conn)}"
            if expected is None:
                pytest.fail(f"{where}: {statement!r} failed: {message}")
            assert number == len(statements), (
                f"{where}: {statement!r} failed before the block's last statement: {message}"
            )
            assert expected["text"] in message, (
                f"{where}: expected an error containing {expected['text']!r}, got {message}"
            )
            return
    if expected is not None:
        pytest.fail(f"{where}: expected an error containing {expected['text']!r}; none came")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_sql_examples_run(page: Path, tmp_path: Path) -> None:
    blocks = [block for block in parse(page)[1] if block.info.split()[:1] == ["sql"]]
    unknown = [f"line {b.line}: {b.info!r}" for b in blocks if b.info not in (RUN, NATIVE, SKIP)]
    assert not unknown, (
        f"{page_id(page)}: unknown info strings {unknown}; use sql, sql native or sql skip"
    )
    conn = sqlite3.connect(tmp_path / "docs.db")
    try:
        sqlite_ml.register(conn)
        native = sqlite_ml.binding_mode(conn) == "native"
        for block in blocks:
            if block.info == RUN or (block.info == NATIVE and native):
                run_block(conn, f"{page_id(page)}:{block.line}", block)
    finally:
        conn.close()
