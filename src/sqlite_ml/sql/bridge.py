"""The Python side of the native scoring functions (``csrc/bridge.h``).

The C scorer answers ``sqml_predict``, ``sqml_predict_batch``, ``sqml_predict_proba`` and
``sqml_predict_table`` for models stored in the native format, without Python. What it
hands over comes here: a call of a function it does not answer (a model Python serves,
an error the Python side words, a near tie), the native form of a model stored without
one, the rows of ``sqml_predict_table`` for a model Python serves, and the rows of the
table-valued functions Python computes (``csrc/rows.c``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..sqlite.binders import error_reporter
from ..sqlite.rows import plain_rows

# What csrc/table.c calls for a row it cannot decide exactly (not an SQL function).
EXACT_ROW = "sqml exact row"


class NativeBridge:
    """What the native functions of one connection call; kept by SQLite (the C side
    releases it when the connection closes), it keeps the session alive that long, and
    the host's connection object too (``keep``)."""

    def __init__(self, session: Any, handle: int, keep: Any = None):
        # session: the connection's sql.session.Session (not imported: it makes bridges)
        self.session = session
        self.handle = handle
        self._keep = keep

    def function(self, name: str) -> Callable[..., Any]:
        if name == EXACT_ROW:
            return self.exact_row
        return self.session.calls[name]

    def exact_row(self, experiment: Any, *values: Any) -> Any:
        """One row's prediction from its SQL values in training order, by the Python side's
        exact path (what a table row too close to call natively gets)."""
        session = self.session
        conn = session.conn
        with plain_rows(conn):
            return session.deployed.model_for(conn, experiment).predict_values(values)

    def reporter(self, name: str) -> Callable[[BaseException], str]:
        return error_reporter(self.session, name)

    def native_form(self, model_id: int) -> bytes | str:
        """The native form of a stored model (compiled now if it has none), or the reason
        Python serves it."""
        from ..ops.native_forms import native_form_bytes
        from ..ops.prediction import model_by_id

        conn = self.session.conn
        with plain_rows(conn):
            model = model_by_id(conn, model_id)
        assert model.serving is not None
        return native_form_bytes(model.serving)

    def table(
        self,
        experiment: Any,
        source: Any,
        key_column: Any,
        with_probabilities: bool,
        row_id_constrained: bool,
    ) -> Iterator[Any]:
        """The rows of ``sqml_predict_table`` for a model Python serves."""
        from ..ops.table_prediction import predictions

        session = self.session
        conn = session.conn
        with plain_rows(conn):
            model = session.deployed.model_for(conn, experiment)
            return predictions(
                conn,
                model,
                source,
                self.handle,
                with_probabilities,
                key_column=key_column,
                row_id_constrained=row_id_constrained,
            )

    def rows(self, name: str, *args: Any) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of table-valued function ``name`` (a ``registry.RowsFunction``) for
        its SQL arguments, in chunks of row tuples."""
        return self.session.row_tables[name][4](*args)
