"""Writing from Datasette: ``sqml_train``, ``sqml_load_dataset`` and the other functions
that write, called from Datasette's SQL page or JSON API, for the actors allowed to.

Datasette runs queries on read-only connections (``?mode=ro``). There, each function
that writes is routed (``sqlite_ml.register(..., write_elsewhere=...)``) to a
``DatabaseWriter``: it asks Datasette whether the actor of the request may
(``datasette.permission_allowed(actor, "sqml-train", database)``, so any plugin's
permission hook has its say), then runs the function on a write connection of its own
to the configured database, one call at a time, and returns its answer as the query's
value. The permission is off unless the configuration allows it (the ``train`` allow
block of the plugin's settings; the ``root`` actor is allowed by default).

Knowing the actor inside a SQL function takes three steps, because Datasette resolves
the actor per request but runs the SQL in a thread pool: an ASGI wrapper gives each
request a ``RequestSlot`` in a context variable; every permission check Datasette makes
for the request's actor before running a query (``view-instance``, ``execute-sql``,
``view-query`` for a canned query...) notes that actor in it (two different actors make
it unclear; checks for no actor, which Datasette makes to tell whether a page is
private, are left aside); and the thread pool is made to carry the request's context
into its threads (``contextvars.copy_context``), as ``asyncio.to_thread`` does. A call
with an unclear actor counts as anonymous, refused unless anonymous actors are allowed;
a call from no request at all is refused.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as NoAnswer
from dataclasses import dataclass, field
from typing import Any

import sqlite_ml

from ..errors import SqmlError

PERMISSION = "sqml-train"
PERMISSION_TIMEOUT = 60  # seconds a function that writes waits for Datasette's answer
# How a refusal tells the reader to allow it.
HOW_TO_ALLOW = (
    'allow actors under the plugin\'s settings, e.g. {"plugins": {"sqlite-ml": {"train": '
    '{"id": ["alice"]}}}} in Datasette\'s metadata (or "train": true for everyone, '
    "anonymous users included), or sign in as the root actor (datasette --root)"
)


@dataclass
class RequestSlot:
    """What one request tells the functions it runs: the event loop serving it (where
    permission checks run) and the actor Datasette checked."""

    loop: asyncio.AbstractEventLoop
    actors: list[Any] = field(default_factory=list)

    def note(self, actor: Any) -> None:
        if actor and actor not in self.actors:
            self.actors.append(actor)

    @property
    def actor(self) -> Any:
        """The request's actor: the one Datasette checked permissions for; None
        (anonymous) when it checked none or several. Checks for no actor at all are
        left aside: Datasette makes them too, to tell whether a page is private."""
        return self.actors[0] if len(self.actors) == 1 else None


REQUEST: contextvars.ContextVar[RequestSlot | None] = contextvars.ContextVar(
    "sqlite_ml_datasette_request", default=None
)


def asgi_wrapper(app: Callable[..., Any]) -> Callable[..., Any]:
    """A fresh ``RequestSlot`` for each request (nested internal requests get their own)."""

    async def with_slot(scope: dict[str, Any], receive: Any, send: Any) -> None:
        token = REQUEST.set(RequestSlot(asyncio.get_running_loop()))
        try:
            await app(scope, receive, send)
        finally:
            REQUEST.reset(token)

    return with_slot


def note_actor(actor: Any) -> None:
    slot = REQUEST.get()
    if slot is not None:
        slot.note(actor)


class ContextCarryingExecutor:
    """Datasette's thread pool, submitting each job in a copy of the submitter's context
    (what ``asyncio.to_thread`` does), so a query's functions see its request."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def submit(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        context = contextvars.copy_context()
        return self._inner.submit(context.run, function, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def carry_context(datasette: Any) -> None:
    executor = getattr(datasette, "executor", None)
    if executor is not None and not isinstance(executor, ContextCarryingExecutor):
        datasette.executor = ContextCarryingExecutor(executor)


def _who(actor: Any) -> str:
    if not actor:
        return "anonymous users do not have it"
    name = actor.get("id") if isinstance(actor, dict) else None
    return f"actor {json.dumps(name if name is not None else actor)} does not have it"


def refusal(actor: Any, database: str, function: str = "training") -> str:
    """Why ``actor`` may not write, and how to allow it."""
    return (
        f"{function} writes to database '{database}', which needs the Datasette permission "
        f"'{PERMISSION}'; {_who(actor)}. To let it, {HOW_TO_ALLOW}"
    )


class DatabaseWriter:
    """Runs the functions that write for one Datasette database, on a connection of its
    own, for the actors Datasette allows."""

    def __init__(self, datasette: Any, database: str, path: str):
        self.datasette = datasette
        self.database = database
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __call__(self, function: str, arguments: tuple[Any, ...]) -> Any:
        """A function called from a query on a read-only connection."""
        slot = REQUEST.get()
        if slot is None:
            raise SqmlError(
                f"{function} writes, and from Datasette only for a request whose actor may "
                f"(permission '{PERMISSION}'); this call comes from no request"
            )
        # This thread holds the read connection's SQLite mutex until the call returns (it
        # runs inside the query's step) and now waits on the event loop, then on a
        # training. Datasette leaves cursors of failed queries in reference cycles; a
        # garbage collection elsewhere (the event loop's, a heartbeat thread's) that
        # finalized one of this connection's would wait for that mutex: the event loop
        # stalled for the whole training, or the permission check below answered late.
        # Collected here, by the thread that holds the mutex, they are gone before the
        # wait (and no query can make new ones on this connection meanwhile).
        gc.collect()
        if not self._allowed(slot.loop, slot.actor):
            raise SqmlError(refusal(slot.actor, self.database, function))
        return self.run(function, arguments)

    def _allowed(self, loop: asyncio.AbstractEventLoop, actor: Any) -> bool:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise SqmlError(
                "functions that write cannot run from Datasette without its SQL threads "
                "(setting num_sql_threads is 0); use the default or a number above 0"
            )
        check = self.datasette.permission_allowed(
            actor, PERMISSION, resource=self.database, default=False
        )
        pending = asyncio.run_coroutine_threadsafe(check, loop)
        try:
            return bool(pending.result(timeout=PERMISSION_TIMEOUT))
        except NoAnswer:  # concurrent.futures' own before Python 3.11
            pending.cancel()
            raise SqmlError(
                f"Datasette did not answer whether this actor has the permission "
                f"'{PERMISSION}' within {PERMISSION_TIMEOUT} s (its event loop is busy); "
                "nothing was written: try again"
            ) from None

    def run(self, function: str, arguments: tuple[Any, ...]) -> Any:
        """Run ``function(arguments)`` on the write connection (the caller has checked
        the permission); its answer, or its error in its own words."""
        placeholders = ", ".join("?" for _ in arguments)
        with self._lock:
            conn = self._connection()
            try:
                (value,) = conn.execute(f"SELECT {function}({placeholders})", arguments).fetchone()
            except sqlite3.Error as error:
                raise SqmlError(sqlite_ml.last_error(conn) or str(error)) from None
        return value

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            sqlite_ml.register(conn)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def refuse_elsewhere(database: str, configured: str | None) -> Callable[..., Any]:
    """The functions that write, on a database the plugin does not write to."""

    def refuse(function: str, arguments: tuple[Any, ...]) -> Any:
        where = (
            f"only to database '{configured}' (the sqlite-ml plugin's db setting)"
            if configured
            else "to no database (none is mutable)"
        )
        raise SqmlError(
            f"{function} cannot write to database '{database}' from Datasette: the "
            f"sqlite-ml plugin writes {where}"
        )

    return refuse
