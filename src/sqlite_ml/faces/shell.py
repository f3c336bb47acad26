"""``sqml shell``: a small sqlite3-like prompt with every sqml function."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from typing import TextIO

import click

import sqlite_ml

from .statements import iterate_sql
from .text_tables import write_rows

HISTORY_ENV = "SQML_HISTORY"  # overrides ~/.sqml_history


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
