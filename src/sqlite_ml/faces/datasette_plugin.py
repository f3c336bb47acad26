"""Datasette plugin (entry point ``sqml`` in group ``datasette``).

- ``prepare_connection``: every ``sqml_*`` function on every connection Datasette opens.
  Those are mostly read-only (``?mode=ro``, ``?immutable=1``), so nothing is written
  there; a function that writes creates the schema when it first runs.
- ``startup``: creates the sqml tables in the configured database through its write
  connection. Setting ``db`` in the ``sqlite-ml`` plugin configuration names it; the
  default is the first mutable file database.
- ``/-/sqml``: a dashboard of every experiment (runs, metrics, deployment, a chart of the
  score of every run); ``/-/sqml/{experiment}`` (or ``/-/sqml?experiment=NAME``, used
  for the names '.' and '..'): one experiment with the deployed model's
  confusion matrix or residual plot and ROC / precision-recall curves on its test rows,
  and feature importances where available; ``/-/sqml?compare=A,B``: runs A and B side
  by side (linked from each run as "compare with deployed").
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote, unquote, urlencode

from datasette import hookimpl
from datasette.utils.asgi import Response

import sqlite_ml

from ..errors import SqmlError
from . import pages
from .plugin_hosts import register_on_host

PLUGIN = "sqlite-ml"


@hookimpl
def prepare_connection(conn: Any, database: str, datasette: Any) -> None:
    register_on_host(conn, "Datasette")


def configured_database(datasette: Any) -> Any | None:
    """The database holding the experiments: the plugin's ``db`` setting, else the first
    mutable file database, else the first file database; None when there is none."""
    config = datasette.plugin_config(PLUGIN) or {}
    name = config.get("db")
    if name is not None:
        if name not in datasette.databases:
            available = ", ".join(n for n in datasette.databases if n != "_internal")
            raise SqmlError(
                f"sqlite-ml plugin setting db={name!r} names no attached database; "
                f"available: {available or 'none'}"
            )
        return datasette.databases[name]
    files = [
        db
        for db_name, db in datasette.databases.items()
        if db_name != "_internal" and not db.is_memory
    ]
    # An immutable database can still be read (a published one with its experiments).
    return next((db for db in files if db.is_mutable), files[0] if files else None)


@hookimpl
def startup(datasette: Any) -> Any:
    async def create_schema() -> None:
        db = configured_database(datasette)
        if db is None or not db.is_mutable:
            return
        await db.execute_write_fn(lambda conn: sqlite_ml.register(conn), block=True)

    return create_schema


# Path segments that clients (browsers, curl, httpx) remove before sending, even escaped
# as %2E: experiments with these names are linked with a query string instead.
DOT_SEGMENTS = (".", "..")


def _link(datasette: Any, name: str) -> str:
    if name in DOT_SEGMENTS:
        return str(datasette.urls.path("/-/sqml?" + urlencode({"experiment": name})))
    return str(datasette.urls.path("/-/sqml/" + quote(name, safe="")))


def _header(datasette: Any, db: Any, here: str) -> str:
    home = datasette.urls.instance()
    parts = [f'<a href="{home}">home</a>']
    if db is not None:
        parts.append(f'<a href="{datasette.urls.database(db.name)}">{escape(db.name)}</a>')
    if here != "index":
        parts.append(f'<a href="{datasette.urls.path("/-/sqml")}">experiments</a>')
    separator = " \u203a "
    return f'<nav class="muted">{separator.join(parts)}</nav>'


async def _database(datasette: Any, request: Any) -> Any:
    db = configured_database(datasette)
    await datasette.ensure_permissions(
        request.actor,
        ["view-instance", *([("view-database", db.name)] if db is not None else [])],
    )
    return db


def _compare_link(datasette: Any) -> pages.CompareLink:
    def link(first: int, second: int) -> str:
        return str(datasette.urls.path("/-/sqml?" + urlencode({"compare": f"{first},{second}"})))

    return link


async def dashboard_index(datasette: Any, request: Any) -> Response:
    if "experiment" in request.args:  # /-/sqml?experiment=NAME (see DOT_SEGMENTS)
        return await _experiment_page(datasette, request, request.args["experiment"])
    if "compare" in request.args:  # /-/sqml?compare=A,B: two runs side by side
        return await _comparison_page(datasette, request, request.args["compare"])
    db = await _database(datasette, request)
    if db is None:
        body = "<h1>sqlite-ml experiments</h1><p class='empty'>No database to read.</p>"
    else:
        body = await db.execute_fn(
            lambda conn: pages.overview(
                conn, lambda name: _link(datasette, name), _compare_link(datasette)
            )
        )
    header = _header(datasette, db, "index")
    return Response.html(pages.page("sqlite-ml experiments", body, header))


async def dashboard_experiment(datasette: Any, request: Any) -> Response:
    return await _experiment_page(datasette, request, unquote(request.url_vars["experiment"]))


async def _experiment_page(datasette: Any, request: Any, name: str) -> Response:
    db = await _database(datasette, request)
    header = _header(datasette, db, "experiment")
    if db is None:
        return _not_found(header, "No database to read.")
    try:
        body = await db.execute_fn(lambda conn: pages.details(conn, name, _compare_link(datasette)))
    except SqmlError as error:
        return _not_found(header, error.message)
    return Response.html(pages.page(f"sqlite-ml: {name}", body, header))


async def _comparison_page(datasette: Any, request: Any, runs: str) -> Response:
    db = await _database(datasette, request)
    header = _header(datasette, db, "comparison")
    if db is None:
        return _not_found(header, "No database to read.")
    parts = runs.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        return _not_found(header, f"compare takes two run ids, as compare=3,5; got {runs!r}")
    first, second = (int(part) for part in parts)
    try:
        body = await db.execute_fn(
            lambda conn: pages.comparison(conn, first, second, lambda n: _link(datasette, n))
        )
    except SqmlError as error:
        return _not_found(header, error.message)
    return Response.html(pages.page(f"sqlite-ml: run {first} and run {second}", body, header))


def _not_found(header: str, message: str) -> Response:
    body = f"<h1>Not found</h1><p>{escape(message)}</p>"
    return Response.html(pages.page("sqlite-ml: not found", body, header), status=404)


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (r"^/-/sqml$", dashboard_index),
        (r"^/-/sqml/(?P<experiment>.+)$", dashboard_experiment),
    ]


@hookimpl
def menu_links(datasette: Any) -> list[dict[str, str]]:
    return [{"href": datasette.urls.path("/-/sqml"), "label": "sqlite-ml experiments"}]
