"""Plain sqlite3 connections (one per thread) for the reads asked on every user message.

The hand-off relay asks the project database two yes/no questions per message ("anything for
this conversation?" before Rasa, "an agent's message waiting?" after it), and on the SQLite file
they run on the event loop. Through SQLAlchemy each cost ~0.35 ms of CPU (pool checkout, result
objects, reset on return), about a fifth of the server's CPU per message in the burst profile of
2026-11-30; the same SELECT on a kept sqlite3 connection costs a few tens of microseconds.

Only reads, only for SQLite files (`None` for anything else: PostgreSQL keeps the engine), in
autocommit mode so no read transaction outlives its statement: with WAL each statement sees the
newest committed data, as through the engine. Writes keep going through SQLAlchemy.
"""
from __future__ import annotations

import sqlite3
import threading
from typing import Any, Callable, Mapping, Optional, Tuple

from sqlalchemy.engine import Engine

Reader = Callable[[str, Mapping[str, Any]], Optional[Tuple[Any, ...]]]


def sqlite_file(engine: Engine) -> Optional[str]:
    """The database file of a SQLite engine, or None (another database, or in memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def first_row_reader(engine: Engine, busy_timeout_s: float = 30.0) -> Optional[Reader]:
    """`read(sql, params)` -> the first row of a SELECT (named `:params`), on this thread's own
    connection to the engine's SQLite file; None when the engine is not a SQLite file."""
    path = sqlite_file(engine)
    if path is None:
        return None
    local = threading.local()

    def read(sql: str, params: Mapping[str, Any]) -> Optional[Tuple[Any, ...]]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
        return conn.execute(sql, params).fetchone()

    return read
