"""Database engine per URL, brought to the newest schema with Alembic on first use."""
from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from bot.security.file_modes import private_sqlite

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_migrate_lock = threading.Lock()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision (idempotent)."""
    config = alembic_config(str(engine.url))
    with _migrate_lock, engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # several servers may start at once
            connection.execute(text("SELECT pg_advisory_xact_lock(804215)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    # A ping before each checkout finds connections a database server dropped; a SQLite file
    # has no server, and the ping was a third of the relay's per-message SQL (py-spy).
    kwargs = {"future": True, "pool_pre_ping": not url.startswith("sqlite")}
    if url.startswith("sqlite"):
        private_sqlite(url)  # tickets, transcripts, agents' password hashes: owner-only (0600)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if ":memory:" not in url and url.rstrip("/") != "sqlite:":
            # SQLAlchemy 1.4 opens a new file connection (and re-runs the pragmas) per
            # checkout by default; the relay queries it on every message.
            kwargs.update(poolclass=QueuePool, pool_size=5, max_overflow=10)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # several processes share the file
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    migrate(engine)
    return engine
