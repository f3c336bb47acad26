"""Datasette plugin (entry point ``sqml`` in group ``datasette``).

- ``prepare_connection``: every ``sqml_*`` function on every connection Datasette opens.
  Those are mostly read-only (``?mode=ro``, ``?immutable=1``): there, the functions that
  write (``sqml_train``, ``sqml_load_dataset``, ...) go through the plugin's writer
  (``datasette_writes.py``), which runs them on a write connection of its own to the
  configured database for the actors Datasette allows (permission ``sqml-train``), and
  refuses them on any other database.
- ``startup``: creates the sqml tables in the configured database through its write
  connection. Setting ``db`` in the plugin configuration names it (``sqlite-ml``, or
  datasette-ml's ``datasette-ml`` key, whose default is ``sqml``); the default is the
  first mutable file database. An unknown database stops Datasette.
- ``permission_allowed``: answers ``sqml-train`` from the ``train`` allow block of the
  settings (the root actor when there is none); notes the actor of each query for the
  writer.
- ``/-/sqml``: a dashboard of every experiment (runs, metrics, deployment, a chart of the
  score of every run) and, for actors allowed to train, a form that trains (posting to
  ``/-/sqml-train``); ``/-/sqml/{experiment}`` (or ``/-/sqml?experiment=NAME``, used
  for the names '.' and '..'): one experiment with the deployed model's
  confusion matrix or residual plot and ROC / precision-recall curves on its test rows,
  and feature importances where available; ``/-/sqml?compare=A,B``: runs A and B side
  by side (linked from each run as "compare with deployed").
"""

from __future__ import annotations

import asyncio
import weakref
from html import escape
from typing import Any
from urllib.parse import quote, unquote, urlencode

from datasette import hookimpl
from datasette.utils import actor_matches_allow
from datasette.utils.asgi import Response

import sqlite_ml

from ..errors import SqmlError
from ..ops import insights
from . import datasette_train, datasette_writes, pages
from .datasette_writes import PERMISSION, DatabaseWriter, refuse_elsewhere
from .plugin_hosts import register_on_host

PLUGIN = "sqlite-ml"
DATASETTE_ML = "datasette-ml"  # the plugin built on sqlite-ml 0.1.2, whose settings we read
DATASETTE_ML_DEFAULT_DB = "sqml"
TRAIN_PATH = "/-/sqml-train"

# One writer per Datasette instance (tests and embedders run several in a process).
_writers: weakref.WeakKeyDictionary[Any, DatabaseWriter] = weakref.WeakKeyDictionary()


def settings(datasette: Any) -> dict[str, Any]:
    """The plugin's settings: ours, over datasette-ml's (so its users' metadata works)."""
    theirs = datasette.plugin_config(DATASETTE_ML)
    ours = datasette.plugin_config(PLUGIN)
    merged = {**(theirs or {}), **(ours or {})}
    if ours is None and theirs is not None:
        merged.setdefault("db", DATASETTE_ML_DEFAULT_DB)
    return merged


def configured_database(datasette: Any) -> Any | None:
    """The database holding the experiments: the plugin's ``db`` setting, else the first
    mutable file database, else the first file database; None when there is none."""
    name = settings(datasette).get("db")
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


def _writable(datasette: Any) -> Any | None:
    """The configured database when the plugin can write to it."""
    try:
        db = configured_database(datasette)
    except SqmlError:
        return None  # startup says so and stops Datasette
    return db if db is not None and db.is_mutable and not db.is_memory else None


def writer_for(datasette: Any) -> DatabaseWriter | None:
    db = _writable(datasette)
    if db is None:
        return None
    writer = _writers.get(datasette)
    if writer is None or writer.database != db.name:
        writer = _writers[datasette] = DatabaseWriter(datasette, db.name, str(db.path))
    return writer


@hookimpl
def prepare_connection(conn: Any, database: str, datasette: Any) -> None:
    # Setting vectors: true in the plugin configuration loads sqlite-vec too.
    setting = settings(datasette).get("vectors")
    vectors = setting is True or str(setting).strip().lower() in ("1", "true", "yes", "on")
    writer = writer_for(datasette)
    if writer is not None and writer.database == database:
        register_on_host(conn, "Datasette", vectors, writer)
    else:
        target = writer.database if writer is not None else None
        register_on_host(conn, "Datasette", vectors, refuse_elsewhere(database, target))


@hookimpl
def startup(datasette: Any) -> Any:
    async def create_schema() -> None:
        db = configured_database(datasette)
        datasette_writes.carry_context(datasette)
        if db is None or not db.is_mutable:
            return
        await db.execute_write_fn(lambda conn: sqlite_ml.register(conn), block=True)

    return create_schema


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    return datasette_writes.asgi_wrapper


@hookimpl
def permission_allowed(datasette: Any, actor: Any, action: str, resource: Any) -> bool | None:
    if action != PERMISSION:  # Datasette checks the request's actor before a query runs
        datasette_writes.note_actor(actor)
        return None
    allow = settings(datasette).get("train")
    if allow is None:  # not configured: the root actor only
        return True if isinstance(actor, dict) and actor.get("id") == "root" else None
    return bool(actor_matches_allow(actor, allow))


async def may_train(datasette: Any, request: Any, db: Any) -> bool:
    """Whether the request's actor may train on ``db`` (the database the plugin writes)."""
    writable = _writable(datasette)
    if writable is None or writable is not db:
        return False
    return bool(
        await datasette.permission_allowed(request.actor, PERMISSION, resource=writable.name)
    )


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
    return await _index_page(datasette, request)


async def _index_page(
    datasette: Any,
    request: Any,
    values: dict[str, str] | None = None,
    message: str = "",
    status: int = 200,
) -> Response:
    db = await _database(datasette, request)
    if db is None:
        body = "<h1>sqlite-ml experiments</h1><p class='empty'>No database to read.</p>"
    else:
        body = await db.execute_fn(
            lambda conn: pages.overview(
                conn, lambda name: _link(datasette, name), _compare_link(datasette)
            )
        )
        if await may_train(datasette, request, db):
            datasets, algorithms = await db.execute_fn(datasette_train.choices)
            token = request.scope["csrftoken"]() if "csrftoken" in request.scope else ""
            action = datasette.urls.path(TRAIN_PATH)
            form = datasette_train.form(action, token, datasets, algorithms, values, message)
            title_end = body.find("</p>") + len("</p>")  # after the title and its count
            body = body[:title_end] + form + body[title_end:]
    header = _header(datasette, db, "index")
    return Response.html(pages.page("sqlite-ml experiments", body, header), status=status)


async def train_from_form(datasette: Any, request: Any) -> Response:
    """POST /-/sqml-train: train as the form asks, for an actor allowed to."""
    db = await _database(datasette, request)
    if request.method != "POST":
        return Response.redirect(datasette.urls.path("/-/sqml"))
    writer = writer_for(datasette)
    if writer is None or not await may_train(datasette, request, db):
        who = datasette_writes.refusal(request.actor, db.name if db is not None else "")
        body = f"<h1>Forbidden</h1><p>{escape(who)}</p>"
        return Response.html(pages.page("sqlite-ml: forbidden", body), status=403)
    posted = dict(await request.post_vars())
    arguments = datasette_train.sqml_train_arguments(posted)
    try:
        answer = await asyncio.to_thread(writer.run, "sqml_train", arguments)
    except SqmlError as error:
        return await _index_page(datasette, request, posted, error.message, status=400)
    link = _link(datasette, str(arguments[0]))
    run = datasette_train.run_id_of(answer)
    separator = "&" if "?" in link else "?"
    return Response.redirect(link + (f"{separator}trained={run}" if run is not None else ""))


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
    trained = request.args.get("trained")
    if trained:  # back from the train form: say what the new run did
        info = await db.execute_fn(lambda conn: insights.experiment(conn, name))
        body = datasette_train.trained_notice(info, trained) + body
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
        (r"^/-/sqml-train$", train_from_form),
        (r"^/-/sqml/(?P<experiment>.+)$", dashboard_experiment),
    ]


@hookimpl
def menu_links(datasette: Any) -> list[dict[str, str]]:
    return [{"href": datasette.urls.path("/-/sqml"), "label": "sqlite-ml experiments"}]
