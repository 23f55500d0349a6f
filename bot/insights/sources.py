"""Where the dashboard reads from: Rasa's tracker store and the hand-off database.

The tracker store is configured for Rasa in endpoints.yml (SQLite by default, PostgreSQL in
scale-out); the dashboard reads the same tables with SQLAlchemy Core, so it follows that file
unless WALLET_TRACKER_DB_URL (or an explicit URL) says otherwise. A SQLite file that does not
exist is never created here: no file means no conversations yet.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Union

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from bot.config import ROOT, endpoints_path, settings

EngineOrUrl = Union[Engine, str]

# The columns of Rasa's SQLTrackerStore table that the dashboard reads.
EVENTS = sa.Table(
    "events", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)

_ENV_VAR = re.compile(r"\$\{([^}]+)\}")


def _expand(value):
    """Rasa's `${VAR}` substitution in endpoints.yml values."""
    if isinstance(value, str):
        return _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), ""), value)
    return value


def tracker_url_from_endpoints(path: Optional[Path] = None) -> str:
    """The SQLAlchemy URL of the SQL tracker store configured in endpoints.yml."""
    path = path or endpoints_path()
    raw = {}
    if path.exists():
        raw = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("tracker_store") or {}
    raw = {k: _expand(v) for k, v in raw.items()}
    dialect = raw.get("dialect") or "sqlite"
    db = str(raw.get("db") or "rasa.db")
    host = raw.get("url")
    if dialect == "sqlite":
        file = Path(db)
        return f"sqlite:///{file if file.is_absolute() else ROOT / file}"
    if host and "://" in str(host):
        return str(host)
    port = raw.get("port")
    url = sa.engine.URL.create(dialect, username=raw.get("username"), password=raw.get("password"),
                               host=host, port=int(port) if port else None, database=db,
                               query=raw.get("query") or {})
    return url.render_as_string(hide_password=False)


def tracker_db_url() -> str:
    """WALLET_TRACKER_DB_URL, else the tracker store of endpoints.yml."""
    return settings().tracker_db_url or tracker_url_from_endpoints()


def handoff_db_url() -> str:
    from bot.config import handoff_settings

    return handoff_settings().database_url


def sqlite_file(url: str) -> Optional[Path]:
    """The file of a sqlite:/// URL (None for other databases and in-memory SQLite)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def tracker_engine(source: EngineOrUrl) -> Optional[Engine]:
    """An engine on the tracker store; None when it is a SQLite file that does not exist
    or has no events table yet (no conversation stored)."""
    engine = source if isinstance(source, Engine) else None
    if engine is None:
        file = sqlite_file(str(source))
        if file is not None and not file.exists():
            return None
        engine = _engine(str(source))
    if not sa.inspect(engine).has_table("events"):
        return None
    return engine


_ENGINES: dict = {}


def _engine(url: str) -> Engine:
    """One engine per URL per process (the console asks on every dashboard request)."""
    if url not in _ENGINES:
        kwargs = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        _ENGINES[url] = sa.create_engine(url, **kwargs)
    return _ENGINES[url]


def handoff_engine(source: Optional[EngineOrUrl]) -> Optional[Engine]:
    """The hand-off database (Alembic-migrated by engine_for), or None when not wanted."""
    if source is None:
        return None
    if isinstance(source, Engine):
        return source
    from bot.db.engine import engine_for

    return engine_for(str(source))
