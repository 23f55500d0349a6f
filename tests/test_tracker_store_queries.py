"""The cached tracker store's per-turn question ("is the newest event id still mine?") stays an
index look-up of one conversation's rows on PostgreSQL, even when the planner's statistics lag
behind a growing table, as they do in a peak-day burst (bot/serving/tracker_store.py
newest_queries). Before, `max(id) WHERE sender_id = ?` walked the primary key backwards over the
whole table for every new conversation, and the scale-out's 200-user bursts slowed down run after
run (143 -> 68 -> 61 msg/s, p99 2.2 -> 12.1 s)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore

from bot.serving.tracker_store import newest_queries

pytestmark = pytest.mark.postgres


@pytest.fixture
def stale_events(postgres_url):
    """Rasa's events table, analysed while small, then grown by 100,000 rows of 3,000 other
    conversations (autovacuum has not looked again)."""
    engine = sa.create_engine(postgres_url)
    table = SQLTrackerStore.SQLEvent.__table__
    table.metadata.create_all(engine, tables=[table])
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) "
                             "SELECT 'warm-' || (g / 30), 'user', g, '{}' FROM generate_series(1, 300) g"))
        conn.execute(sa.text("ANALYZE events"))
        conn.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) "
                             "SELECT 'burst-' || (g / 33), 'user', g, '{}' FROM generate_series(1, 100000) g"))
    yield engine, table
    engine.dispose()


def _plan(conn, query, **params) -> str:
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": False})
    rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", params).fetchall()
    return "\n".join(r[0] for r in rows)


def test_the_newest_id_of_a_new_conversation_is_not_a_walk_of_the_whole_table(stale_events):
    engine, table = stale_events
    newest, written = newest_queries(table)
    naive = sa.select(sa.func.max(table.c.id)).where(table.c.sender_id == sa.bindparam("sender_id"))
    with engine.connect() as conn:
        # the trap is real on this server: the plain max(id) walks the key backwards
        assert "Backward using events_pkey" in _plan(conn, naive, sender_id="burst-new")
        for query, params in ((newest, {"sender_id": "burst-new"}), (newest, {"sender_id": "burst-77"}),
                              (written, {"sender_id": "burst-77", "after": 50_000}),
                              (written, {"sender_id": "burst-new", "after": 10})):
            plan = _plan(conn, query, **params)
            assert "events_pkey" not in plan and "sender_id" in plan, plan
        # and the answers are the same as the plain query's
        assert conn.execute(newest, {"sender_id": "burst-new"}).scalar() is None
        last = conn.execute(naive, {"sender_id": "burst-77"}).scalar()
        assert conn.execute(newest, {"sender_id": "burst-77"}).scalar() == last
        assert tuple(conn.execute(written, {"sender_id": "burst-77", "after": last - 3})) == ((last, 3),)
