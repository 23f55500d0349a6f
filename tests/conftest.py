"""Shared fixtures: tracker builders (as in Rasa's financial-demo), temp databases, the model."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "wallet.tar.gz"
POSTGRES_URL = os.environ.get("WALLET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def make_tracker(
    text: str = "",
    intent: Optional[str] = None,
    confidence: float = 0.95,
    ranking: Optional[List[Dict[str, Any]]] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    slots: Optional[Dict[str, Any]] = None,
    sender_id: str = "test-user",
    channel: str = "rest",
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence} if intent else {},
        "intent_ranking": ranking if ranking is not None else ([{"name": intent, "confidence": confidence}] if intent else []),
        "entities": entities or [],
    }
    events = list(events or []) + [
        {"event": "user", "text": text, "parse_data": latest, "input_channel": channel}
    ]
    return Tracker(sender_id, slots or {}, latest, events, False, None, {}, "action_listen")


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tickets.db'}"


@pytest.fixture
def handoff_db(monkeypatch, sqlite_url):
    """Point the actions' hand-off store at a fresh SQLite file."""
    from bot import settings

    monkeypatch.setenv("WALLET_DB_URL", sqlite_url)
    settings.handoff_settings.cache_clear()
    yield sqlite_url
    settings.handoff_settings.cache_clear()


@pytest.fixture(autouse=True, scope="session")
def _no_project_database(tmp_path_factory):
    """Tests never read or write the project's own var/wallet.db (FAQ answers now look up
    service notices there): the default database of a test run is a temporary file."""
    import os

    from bot import settings

    previous = os.environ.get("WALLET_DB_URL")
    os.environ["WALLET_DB_URL"] = f"sqlite:///{tmp_path_factory.mktemp('db') / 'wallet.db'}"
    settings.handoff_settings.cache_clear()
    yield
    if previous is None:
        os.environ.pop("WALLET_DB_URL", None)
    else:
        os.environ["WALLET_DB_URL"] = previous
    settings.handoff_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh schema in the machine's PostgreSQL for this test run, dropped afterwards."""
    if not postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (make test expects it)")
    import uuid

    import psycopg2

    schema = f"wallet_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(POSTGRES_URL)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE SCHEMA "{schema}"')
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    conn.cursor().execute(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()


def postgres_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(POSTGRES_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


def require_model() -> None:
    """Tests of the trained assistant fail (not skip) without it: `make test` trains it first."""
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` (make test does it for you)")


@pytest.fixture(scope="session")
def agent():
    """The trained model, loaded once (`make test` trains it first)."""
    require_model()
    import asyncio
    import logging

    from rasa.core.agent import Agent

    logging.getLogger("rasa").setLevel(logging.WARNING)
    loaded = Agent.load(str(MODEL))

    class Parser:
        def parse(self, text):
            return asyncio.run(loaded.parse_message(text))

    return Parser()
