"""The package's shape: imports run one way through the layers, and nothing imports in a
cycle. Read from the source (every import statement, inside functions too), so a lazy
import cannot hide an edge.

    faces -> (the public API: sqlite_ml, sqlite_ml.native) -> sql -> ops -> {ml, db} -> sqlite

plus the leaf modules (errors, names, scoring, jsontext, _version, estimators, preprocessing,
the compiled _native), which import no other layer. ml and db are peers: neither imports the
other. A module may import any layer below its own, never one above.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "sqlite_ml"

LEAVES = {
    "errors",
    "names",
    "scoring",
    "jsontext",
    "_version",
    "estimators",
    "preprocessing",
    "_native",
}
PUBLIC_API = {"__init__", "native"}  # sqlite_ml and its documented sqlite_ml.native
RANKS = {"leaf": 0, "sqlite": 1, "ml": 2, "db": 2, "ops": 3, "sql": 4, "api": 5, "faces": 6}
PEERS = {frozenset({"ml", "db"})}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(("sqlite_ml", *parts)).removesuffix(".__init__")
        found[name] = path
    return found


def layer(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or (len(parts) == 1 and parts[0] in PUBLIC_API):
        return "api"
    if parts[0] in RANKS:  # a layer's package or one of its modules
        return parts[0]
    if len(parts) == 1:
        assert parts[0] in LEAVES, f"{module}: a top-level module must be a leaf or public API"
        return "leaf"
    raise AssertionError(f"{module}: in no layer (a new folder needs a rank here)")


def imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The sqlite_ml modules ``module`` imports (``from . import x`` resolves to the
    module x when there is one, else to the package)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "sqlite_ml" or target.startswith("sqlite_ml."):
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                yield target


def graph() -> dict[str, set[str]]:
    found = modules()
    known = {*found, "sqlite_ml._native"}  # the compiled extension, a leaf
    edges: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        for target in imported(name, path, known):
            if target != name:
                edges[name].add(target)
    for targets in edges.values():
        targets.discard("sqlite_ml._native")  # imports nothing of ours: no cycle through it
    return edges


def test_every_import_goes_down_the_layers() -> None:
    wrong = []
    for source, targets in graph().items():
        here = layer(source)
        for target in targets:
            there = layer(target)
            if here == there:
                continue
            if frozenset({here, there}) in PEERS or RANKS[there] >= RANKS[here]:
                wrong.append(f"{source} ({here}) imports {target} ({there})")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    # Tarjan's strongly connected components: any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_rule_catches_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks above would fail on a package that broke the rule (they can fail)."""
    fake = tmp_path / "sqlite_ml"
    for relative in ("__init__.py", "errors.py", "ml/__init__.py", "sql/__init__.py"):
        (fake / relative).parent.mkdir(parents=True, exist_ok=True)
        (fake / relative).write_text("")
    (fake / "ml" / "bad.py").write_text("from ..sql import thing\n")
    (fake / "sql" / "thing.py").write_text("from ..ml import bad\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    with pytest.raises(AssertionError, match="sqlite_ml.ml.bad \\(ml\\) imports sqlite_ml.sql"):
        test_every_import_goes_down_the_layers()
    with pytest.raises(AssertionError, match="import cycles"):
        test_there_is_no_import_cycle()


HEAVY = ("numpy", "scipy", "sklearn", "xgboost", "lightgbm", "skops", "pandas")


def test_importing_and_registering_load_no_machine_learning_library(tmp_path: Path) -> None:
    code = """
import sqlite3, sys
import sqlite_ml
conn = sqlite3.connect(sys.argv[1])
sqlite_ml.register(conn)
conn.execute("SELECT sqml_version(), count(*) FROM sqml_runs").fetchall()
from sqlite_ml.faces import cli
print(sorted(name for name in sys.modules if name.split(".")[0] in sys.argv[2:]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "light.db"), *HEAVY],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout
