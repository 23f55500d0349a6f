"""Rasa's SQL tracker store that keeps each conversation's tracker between turns.

Stock `SQLTrackerStore` re-reads and re-builds the whole conversation session from the
database on every message and counts the stored events again before every save: in our
profile that was over half of the server's time. This store keeps the tracker in memory and
asks the database one cheap question per turn, "is the newest event id for this conversation
still the one I stored?", so another Rasa instance (scale-out, same database) or a failed turn
is noticed and the tracker is then read the stock way. Same tables, same rows as the stock
store: both can be switched freely.

Configure in endpoints.yml:  tracker_store: {type: bot.serving.tracker_store.CachedSQLTrackerStore, …}
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy.pool import QueuePool

from bot.privacy.masker import mask_text
from bot.config import settings
from bot.security.file_modes import private_sqlite




@dataclass
class _Entry:
    tracker: DialogueStateTracker
    last_id: int  # id of the newest stored event
    stored: int  # how many of tracker.events are stored
    # A new conversation is first saved by Rasa mid-turn (the session start) and kept as the
    # stock store would read it back; the live tracker of that turn is saved again at its end.
    live: Optional[DialogueStateTracker] = None
    live_stored: int = 0


# The pragmas of every connection to a SQLite tracker file (see _use_pooled_sqlite).
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=30000")


class _SqliteFile:
    """The per-turn statements on a SQLite tracker file, on a plain sqlite3 connection per thread.

    Through SQLAlchemy the end-of-turn save (insert, the "did anyone else write?" count, commit)
    and the start-of-turn check cost ~0.4 ms of CPU, ~12 % of the server's CPU per message in
    the burst profile of 2026-11-30, most of it SQLAlchemy's own bookkeeping. Same table, same
    rows, same pragmas (WAL, synchronous=NORMAL: a process crash loses nothing acknowledged),
    one transaction per save as before. Stock reads (a conversation not kept in memory) still
    go through SQLAlchemy.
    """

    def __init__(self, path: str, table: str) -> None:
        self.path = path
        self._local = threading.local()
        columns = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
        self._insert = (f"INSERT INTO {table} ({', '.join(columns)}) "
                        f"VALUES ({', '.join(':' + c for c in columns)})")
        self._newest = f"SELECT max(id + 0) FROM {table} WHERE sender_id = ?"  # + 0: see newest_queries
        self._written = f"SELECT max(id + 0), count(id) FROM {table} WHERE sender_id = ? AND id + 0 > ?"

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # transactions explicit
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            self._local.conn = conn
        return conn

    def newest(self, sender_id: str) -> Optional[int]:
        return self._conn().execute(self._newest, (sender_id,)).fetchone()[0]

    def append(self, sender_id: str, rows: List[Dict[str, Any]], after: int) -> Tuple[Optional[int], int]:
        """Insert after the event id `after`: (newest id, events stored after `after`)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(self._insert, rows)
            newest, written = conn.execute(self._written, (sender_id, after)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return newest, written

    def insert_new(self, sender_id: str, rows: List[Dict[str, Any]]) -> Optional[int]:
        """Insert a conversation's first events unless it has some already: the newest id, or None."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute(self._newest, (sender_id,)).fetchone()[0] is not None:
                conn.execute("ROLLBACK")
                return None
            conn.executemany(self._insert, rows)
            newest = conn.execute(self._newest, (sender_id,)).fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return newest


def newest_queries(table: sa.Table) -> Tuple[Any, Any]:
    """A conversation's newest event id, and (newest id, count) of its events after an id.

    Written `max(id + 0)` and `id + 0 > :after` on purpose: for `max(id) ... WHERE sender_id = ?`
    PostgreSQL may plan a backward walk of the primary key, filtering by sender, which for a new
    conversation (no rows) reads the whole table. It does so whenever its statistics lag behind a
    growing table, as in a peak-day burst: the query took seconds after a few hundred thousand
    events and stalled every turn (docs/performance.md). `id + 0` is not the key, so the plan is
    the sender_id index and a conversation's own rows, whatever the statistics."""
    uid = table.c.id + sa.literal_column("0")
    sender = table.c.sender_id == sa.bindparam("sender_id")
    return (sa.select(sa.func.max(uid)).where(sender),
            sa.select(sa.func.max(uid), sa.func.count(table.c.id)).where(sender, uid > sa.bindparam("after")))


class CachedSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, cached_conversations: Optional[int] = None, **kwargs: Any) -> None:
        if not args:  # Rasa passes endpoints.yml's keys by name: a SQLite file is 0600 before it exists
            names = ("dialect", "host", "port", "db", "username", "password", "login_db", "query")
            private_sqlite(str(self.get_db_url(**{k: kwargs[k] for k in names if k in kwargs})))
        super().__init__(*args, **kwargs)
        self._file: Optional[_SqliteFile] = None
        if self.engine.url.get_backend_name() == "sqlite" and self.engine.url.database not in (None, "", ":memory:"):
            self._use_pooled_sqlite()
            self._file = _SqliteFile(self.engine.url.database, self.SQLEvent.__table__.name)
        size = cached_conversations or settings().tracker_cache_size
        self.cache_size = int(size)
        self._cache: "OrderedDict[str, _Entry]" = OrderedDict()
        table = self.SQLEvent.__table__
        self._newest_sql, self._written_sql = newest_queries(table)

    def _use_pooled_sqlite(self) -> None:
        """Keep SQLite connections open (SQLAlchemy 1.4 reconnects per session for files) and
        use WAL with synchronous=NORMAL: a crash of the process loses nothing; a power cut may
        lose the last turns."""
        engine = sa.create_engine(self.engine.url, poolclass=QueuePool, pool_size=5, max_overflow=10,
                                  connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        self.engine.dispose()
        self.engine = engine
        self.sessionmaker = sa.orm.session.sessionmaker(bind=engine)

    async def retrieve(self, sender_id: str) -> Optional[DialogueStateTracker]:
        entry = self._cache.get(sender_id)
        if entry is not None:
            if self._still_current(entry, sender_id):
                self._cache.move_to_end(sender_id)
                return entry.tracker
            self._cache.pop(sender_id, None)  # changed elsewhere, or a turn failed half-way
        before = self._newest(sender_id)
        if before is None:
            return None  # nothing stored: what the stock store answers, without its session query
        tracker = await super().retrieve(sender_id)
        if tracker is not None and before is not None and self._newest(sender_id) == before:
            self._remember(sender_id, _Entry(tracker, before, len(tracker.events)))
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        entry = self._cache.get(tracker.sender_id)
        if entry is not None and entry.tracker is not tracker and entry.live is tracker:
            await self._save_rest_of_first_turn(entry, tracker)
            return
        if entry is None or entry.tracker is not tracker:
            if not await self._save_new_conversation(tracker):
                await super().save(tracker)  # not read through this cache: the stock way
            return
        await self.stream_events(tracker)
        if self._append(entry, tracker.sender_id, list(tracker.events)[entry.stored:]):
            entry.stored = len(tracker.events)

    async def _save_rest_of_first_turn(self, entry: _Entry, live: DialogueStateTracker) -> None:
        """The end of a new conversation's first turn: store its new events and add them to the
        tracker kept in memory (as the stock store would read them back)."""
        await self.stream_events(live)
        new_events = list(live.events)[entry.live_stored:]
        if self._append(entry, live.sender_id, new_events):
            for event in new_events:
                entry.tracker.update(event)
            entry.stored, entry.live, entry.live_stored = len(entry.tracker.events), None, 0

    def _append(self, entry: _Entry, sender_id: str, new_events: list) -> bool:
        """Store events after the kept ones; False (and the tracker forgotten) unless only this
        turn wrote. The turn holds the conversation's lock (in-memory or Redis) and its tracker
        was checked against the database when read: counting what was written after our last
        event proves nobody else wrote."""
        if not new_events:
            return True
        rows = [self._row(sender_id, event) for event in new_events]
        if self._file is not None:
            newest, written = self._file.append(sender_id, rows, entry.last_id)
        else:
            with self.engine.begin() as conn:
                conn.execute(self.SQLEvent.__table__.insert(), rows)
                newest, written = conn.execute(self._written_sql, {"sender_id": sender_id,
                                                                    "after": entry.last_id}).one()
        if written != len(new_events) or any(isinstance(e, SessionStarted) for e in new_events):
            # someone else wrote too, or a new session began (the stock store reads back
            # only the latest session): read it the stock way next time
            self._cache.pop(sender_id, None)
            return False
        entry.last_id = newest
        return True

    async def _save_new_conversation(self, tracker: DialogueStateTracker) -> bool:
        """A conversation with nothing stored yet: store every event and keep in memory the
        tracker the stock store would read back (only the latest session, via JSON)."""
        if not tracker.events:
            return True
        if self.domain is None:
            return False
        rows = [self._row(tracker.sender_id, event) for event in tracker.events]
        if self._file is not None:
            newest = self._file.insert_new(tracker.sender_id, rows)
            if newest is None:
                return False
            await self.stream_events(tracker)
        else:
            with self.engine.begin() as conn:
                if self._newest_on(conn, tracker.sender_id) is not None:
                    return False
                await self.stream_events(tracker)
                conn.execute(self.SQLEvent.__table__.insert(), rows)
                newest = self._newest_on(conn, tracker.sender_id)
        starts = [r["timestamp"] for r in rows if r["type_name"] == SessionStarted.type_name]
        kept = [json.loads(r["data"]) for r in rows if not starts or r["timestamp"] >= max(starts)]
        read_back = DialogueStateTracker.from_dict(tracker.sender_id, kept, self.domain.slots)
        self._remember(tracker.sender_id, _Entry(read_back, newest, len(read_back.events),
                                                 live=tracker, live_stored=len(tracker.events)))
        return True

    def _newest_on(self, conn, sender_id: str) -> Optional[int]:
        return conn.execute(self._newest_sql, {"sender_id": sender_id}).scalar()

    def _newest(self, sender_id: str) -> Optional[int]:
        if self._file is not None:
            return self._file.newest(sender_id)
        with self.engine.connect() as conn:
            return self._newest_on(conn, sender_id)

    def _still_current(self, entry: _Entry, sender_id: str) -> bool:
        return len(entry.tracker.events) == entry.stored and self._newest(sender_id) == entry.last_id

    def _remember(self, sender_id: str, entry: _Entry) -> None:
        self._cache[sender_id] = entry
        self._cache.move_to_end(sender_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    @staticmethod
    def _row(sender_id: str, event) -> Dict[str, Any]:
        """The same columns the stock store writes."""
        data = masked_event_data(event.as_dict())
        return {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }


def masked_event_data(data: Dict[str, Any]) -> Dict[str, Any]:
    """A user event as stored: secrets masked even when it did not come through our channels
    (Rasa's HTTP API, `rasa shell`); what our channels pass is masked already, so this is cheap."""
    if data.get("event") != "user" or not data.get("text"):
        return data
    text = mask_text(data["text"])
    if text == data["text"]:
        return data
    data = {**data, "text": text}
    parse = data.get("parse_data")
    if isinstance(parse, dict) and isinstance(parse.get("text"), str):
        data["parse_data"] = {**parse, "text": mask_text(parse["text"])}
    return data
