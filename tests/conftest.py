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
    from bot.config import reload_settings

    monkeypatch.setenv("WALLET_DB_URL", sqlite_url)
    reload_settings()
    yield sqlite_url
    reload_settings()


@pytest.fixture(autouse=True, scope="session")
def _no_project_database(tmp_path_factory):
    """Tests never read or write the project's own var/wallet.db (FAQ answers now look up
    service notices there): the default database of a test run is a temporary file."""
    import os

    from bot.config import reload_settings

    previous = os.environ.get("WALLET_DB_URL")
    os.environ["WALLET_DB_URL"] = f"sqlite:///{tmp_path_factory.mktemp('db') / 'wallet.db'}"
    reload_settings()
    yield
    if previous is None:
        os.environ.pop("WALLET_DB_URL", None)
    else:
        os.environ["WALLET_DB_URL"] = previous
    reload_settings()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh schema in the machine's PostgreSQL for this test run, dropped afterwards."""
    require_postgres()
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


def require_postgres() -> None:
    """Tests on PostgreSQL fail (not skip) without it: `make test` expects it. Marked `postgres`."""
    needs("postgres")
    if not postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (make test expects it)")


def require_model() -> None:
    """Tests of the trained assistant fail (not skip) without it: `make test` trains it first.
    Every use of the model goes through here, so the test must be marked `model`."""
    needs("model")
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` (make test does it for you)")


def load_agent():
    """The trained model as a Rasa Agent (a test that loads it is marked `model`)."""
    require_model()
    from rasa.core.agent import Agent

    return Agent.load(str(MODEL))


@pytest.fixture(autouse=True)
def _fresh_settings():
    """A test that changes the environment (monkeypatch.setenv + reload_settings()) leaves no
    cached settings behind for the next one."""
    yield
    from bot.config import reload_settings

    reload_settings()


# ---- markers, enforced at run time --------------------------------------------------------------
# The lanes (`make test-fast`: no marker; `make test`: the rest) select by marker, so a marker
# must never be missing. Each resource calls needs(<marker>) when a test uses it, and a test
# without the marker fails there, in whatever lane or selection it runs. tests/test_markers.py
# lists the tests under each marker (reports/markers.txt).

RESOURCES = {
    "model": "it uses the trained model (models/wallet.tar.gz)",
    "server": "it starts a server process (Rasa, action server or agent console)",
    "browser": "it drives Chromium (tests/browser.py)",
    "postgres": "it uses PostgreSQL at 127.0.0.1:5432",
}
_running = {"item": None}
_fixtures_in_setup: List[Any] = []  # (FixtureDef, SubRequest) being set up, outermost first
_cached_needs: Dict[Any, List[Any]] = {}  # FixtureDef of a module/session fixture -> [(cache key, marker)]
COLLECTED = pytest.StashKey[list]()  # every collected test, before -m / -k deselect any


def needs(marker: str) -> None:
    """Fail the running test unless it is marked `marker` (called by every resource)."""
    for fixturedef, request in _fixtures_in_setup:
        if fixturedef.scope != "function":  # cached: later tests get it without calling needs()
            _cached_needs.setdefault(fixturedef, []).append((fixturedef.cache_key(request), marker))
    _check(_running["item"], marker)


def _check(item, marker: str) -> None:
    if item is not None and item.get_closest_marker(marker) is None:
        pytest.fail(f"mark this test @pytest.mark.{marker}: {RESOURCES[marker]} ({item.nodeid})", pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    config.stash[COLLECTED] = list(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # a hook, not an autouse fixture: module and session fixtures are set up before any
    # function-scoped autouse fixture, and they are where the servers and the model are started
    _running["item"] = item
    _guard_agent_load()


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    _fixtures_in_setup.append((fixturedef, request))
    yield
    _fixtures_in_setup.pop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    """A module or session fixture that needed a resource when it was set up for an earlier
    test needs the same marker on every later test that gets it from the cache."""
    _guard_agent_load()
    request = getattr(item, "_request", None)
    for fixturedef in getattr(request, "_fixture_defs", {}).values():
        cached = getattr(fixturedef, "cached_result", None)
        for key, marker in _cached_needs.get(fixturedef, ()) if cached else ():
            if _same(key, cached[1]):  # this parameter of the fixture (e.g. not its sqlite variant)
                _check(item, marker)


def _same(a, b) -> bool:
    try:
        return a is b or bool(a == b)
    except Exception:
        return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield
    _running["item"] = None


def _guard_agent_load() -> None:
    """Rasa's Agent.load, once imported, also says needs("model") (a model loaded in-process
    without require_model(), e.g. inside bot/ code a test calls)."""
    import sys

    agent_module = sys.modules.get("rasa.core.agent")
    if agent_module is None or getattr(agent_module.Agent.load, "_needs_model", False):
        return
    load = agent_module.Agent.load

    def guarded(*args, **kwargs):
        needs("model")
        return load(*args, **kwargs)

    guarded._needs_model = True
    agent_module.Agent.load = staticmethod(guarded)


def topic_answers(faq, topic: str) -> set:
    """Every text an FAQ topic can answer with: its overview, a specific question's answer, or an
    entity variant of either (filled in, as users see them)."""
    t = faq.topics[topic]
    owners = [t, *t.questions]
    return {faq.fill(o.answer) for o in owners} | {
        faq.fill(a) for o in owners for a in (o.variants.answers.values() if o.variants else ())}
