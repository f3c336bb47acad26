"""Running SQL text as the ``sqml`` command and its shell do: statement by statement, the
rows of each as soon as it has run, and a failure as the command's error."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import click

from ..errors import SqmlError
from .text_tables import sql_error_text


def failure(conn: sqlite3.Connection, error: sqlite3.Error | SqmlError) -> click.ClickException:
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
            raise failure(conn, error) from None


def run_sql(conn: sqlite3.Connection, text: str) -> list[tuple[list[str], list[Any]]]:
    """Run every statement of ``text``; the column names and rows of each that has some."""
    return list(iterate_sql(conn, text))
