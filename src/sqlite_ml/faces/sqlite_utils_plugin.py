"""sqlite-utils plugin (entry point ``sqml`` in group ``sqlite_utils``).

- ``prepare_connection``: every ``sqml_*`` function on the connections sqlite-utils opens,
  so ``sqlite-utils query DB "SELECT sqml_train(...)"`` works. sqlite-utils opens databases
  for all kinds of work, so nothing is written until a function that writes runs (it
  creates the sqml tables then).
- ``register_commands``: ``sqlite-utils sqml ...``, the same subcommands as ``sqml``.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from . import cli as sqml_cli
from .plugin_hosts import register_on_host


@sqlite_utils.hookimpl
def prepare_connection(conn: Any) -> None:
    register_on_host(conn, "sqlite-utils")


@sqlite_utils.hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(sqml_cli.cli, name="sqml")
