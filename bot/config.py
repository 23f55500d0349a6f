"""All of our configuration, read in one place: `assistant.yml` (behaviour) and every `WALLET_*`
environment variable (deployment), as one frozen `Settings` object.

Rasa's own files (config.yml, domain.yml, credentials.yml, endpoints.yml) stay Rasa's; this is
what Rasa does not know about. Modules ask `settings()` (read once, cached) instead of reading
the environment themselves, so `ENVIRONMENT` below is the complete list of knobs; tests that change
the environment call `reload_settings()`. `tests/test_architecture.py` fails when a module outside
this one reads a `WALLET_*` variable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Every environment variable of ours: name -> what it does (docs/configuration.md lists them all).
ENVIRONMENT: Dict[str, str] = {
    "WALLET_SETTINGS": "path of assistant.yml (default: assistant.yml in the project)",
    "WALLET_FAQ": "path of the FAQ file (default data/faq.yml)",
    "WALLET_PROJECT_ROOT": "project the staff tools edit and retrain (default: this checkout)",
    "WALLET_ENDPOINTS": "endpoints.yml the dashboard reads the tracker store from",
    "WALLET_ENTITIES": "entity word lists the NLU reads (default data/entities.yml)",
    "WALLET_DB_URL": "tickets, agents, notices, FAQ changes (overrides handoff.database_url)",
    "WALLET_TRACKER_DB_URL": "tracker store the dashboard reads (default: from endpoints.yml)",
    "WALLET_RASA_URL": "where the console reaches Rasa's HTTP API (overrides handoff.rasa_url)",
    "WALLET_RASA_INSTANCES": "each Rasa server a model switch checks, comma-separated URLs (default: WALLET_RASA_URL)",
    "WALLET_SECRET_KEY": "the installation's signing secret (default: var/secret.key)",
    "WALLET_SECRET_FILE": "where the signing secret is kept (default var/secret.key)",
    "WALLET_EVAL_TSV": "labelled questions the retrain gate evaluates on",
    "WALLET_ACTIONS": "inprocess (default) or server: run actions through the action server",
    "WALLET_PROCESSOR": "fast (default) or stock: Rasa's own message processor",
    "WALLET_INCREMENTAL_STATES": "1 (default) or 0: RulePolicy's states computed once per event",
    "WALLET_PARSE_CACHE": "parsed messages kept per process (default 20000; 0 = off)",
    "WALLET_TRACKER_CACHE": "conversations the tracker store keeps in memory (default 2000)",
    "WALLET_TURN_SLOTS": "user turns in progress per process (default 2; 0 = no gate)",
    "WALLET_BLAS_THREADS": "BLAS/OpenMP threads of a serving process (default 1; 0 = the libraries' own)",
    "WALLET_LOOP_LAG_LOG": "seconds between log lines of the event loop's lag (default 60; 0 = none)",
    "WALLET_SOCKETIO_REDIS": "redis://… relays socket.io pushes between processes",
    "WALLET_PG_URL": "PostgreSQL of the scale-out (default postgresql://postgres@127.0.0.1:5432/test)",
    "WALLET_REDIS_URL": "Redis of workers and the scale-out (default redis://127.0.0.1:6379/1); when set, "
                        "the shared runtime state lives there too (else in process memory)",
    "WALLET_REDIS_PREFIX": "key prefix of the shared runtime state in Redis (default wallet:)",
    "CONSOLE_HOST": "agent console address (default 127.0.0.1)",
    "CONSOLE_PORT": "agent console port (default 5006)",
    # The ports, one source for every file and process (scripts/run.sh reads the same variables).
    "RASA_PORT": "Rasa server port (default 5005): `bot rasa run|shell` without --port, the console's Rasa URL",
    "ACTION_PORT": "action server port (default 5055): `bot actions`, ${ACTION_PORT} in endpoints.yml",
}
DEFAULT_RASA_PORT = 5005
DEFAULT_ACTION_PORT = 5055
DEFAULT_CONSOLE_PORT = 5006


def project_path(env_var: str, default: str) -> Path:
    """A path from an environment variable, else `default` relative to the project root."""
    return _path_of(os.environ.get(env_var), default)


@lru_cache(maxsize=64)
def _path_of(value: Optional[str], default: str) -> Path:
    """Made once per value: the FAQ's path is asked several times per message."""
    return Path(value) if value else ROOT / default


def project_root() -> Path:
    """The project staff tools edit and retrain (WALLET_PROJECT_ROOT; tests use a temp copy)."""
    return project_path("WALLET_PROJECT_ROOT", ".").resolve()


def faq_path() -> Path:
    return project_path("WALLET_FAQ", "data/faq.yml")


def settings_path() -> Path:
    return project_path("WALLET_SETTINGS", "assistant.yml")


def endpoints_path() -> Path:
    return project_path("WALLET_ENDPOINTS", "endpoints.yml")


@dataclass(frozen=True)
class HandoffSettings:
    clarify_enabled: bool = True
    clarify_min_confidence: float = 0.15
    clarify_max_gap: float = 0.25
    recent_messages: int = 10
    database_url: str = "sqlite:///var/wallet.db"
    cancel_phrases: tuple = ("取消转人工",)
    session_ttl_seconds: int = 28800
    rasa_url: str = ""  # empty: http://127.0.0.1:$RASA_PORT (the Rasa server of this machine)


@dataclass(frozen=True)
class Settings:
    handoff: HandoffSettings
    # Sections of assistant.yml whose owners parse them (bot.handoff.hours, bot.security, …).
    support_hours: Dict[str, Any] = field(default_factory=dict)
    scam: Dict[str, Any] = field(default_factory=dict)
    security: Dict[str, Any] = field(default_factory=dict)
    retrain: Dict[str, Any] = field(default_factory=dict)
    # The environment (see ENVIRONMENT).
    tracker_db_url: str = ""
    secret_key: str = ""
    secret_file: Path = ROOT / "var" / "secret.key"
    eval_tsv: str = ""
    inprocess_actions: bool = True
    fast_processor: bool = True
    incremental_states: bool = True
    parse_cache_size: int = 20000
    tracker_cache_size: int = 2000
    turn_slots: int = 2
    loop_lag_log_seconds: int = 60
    gc_schedule: bool = True
    blas_threads: int = 1
    socketio_redis: str = ""
    rasa_instances: tuple = ()
    pg_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/1"
    shared_redis_url: str = ""
    """WALLET_REDIS_URL as set (empty when unset): where bot/shared_state keeps what every
    process must see alike; empty = this process's memory (the embedded default)."""
    redis_prefix: str = "wallet:"
    console_host: str = "127.0.0.1"
    console_port: int = DEFAULT_CONSOLE_PORT
    rasa_port: int = DEFAULT_RASA_PORT
    action_port: int = DEFAULT_ACTION_PORT


def _absolute_sqlite(url: str) -> str:
    """Relative SQLite paths are relative to the project root, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        path = ROOT / url[len(prefix):]
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # var/: owner-only
        return prefix + str(path)
    return url


def _yaml_settings() -> dict:
    path = settings_path()
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    try:
        return max(minimum, int(_env(name, str(default))))
    except ValueError:
        return default


def _handoff(raw: dict, rasa_port: int) -> HandoffSettings:
    known = {k: v for k, v in (raw or {}).items() if k in {f.name for f in fields(HandoffSettings)}}
    if "cancel_phrases" in known:
        known["cancel_phrases"] = tuple(known["cancel_phrases"])
    base = HandoffSettings(**known)
    url = _env("WALLET_DB_URL", base.database_url)
    rasa_url = _env("WALLET_RASA_URL", base.rasa_url or f"http://127.0.0.1:{rasa_port}")
    return HandoffSettings(**{**base.__dict__, "database_url": _absolute_sqlite(url), "rasa_url": rasa_url})


def load_settings() -> Settings:
    raw = _yaml_settings()
    rasa_port = _env_int("RASA_PORT", DEFAULT_RASA_PORT, minimum=1)
    return Settings(
        handoff=_handoff(raw.get("handoff") or {}, rasa_port),
        support_hours=dict(raw.get("support_hours") or {}),
        scam=dict(raw.get("scam") or {}),
        security=dict(raw.get("security") or {}),
        retrain=dict(raw.get("retrain") or {}),
        tracker_db_url=_env("WALLET_TRACKER_DB_URL"),
        secret_key=_env("WALLET_SECRET_KEY"),
        secret_file=Path(_env("WALLET_SECRET_FILE") or ROOT / "var" / "secret.key"),
        eval_tsv=_env("WALLET_EVAL_TSV"),
        inprocess_actions=_env("WALLET_ACTIONS", "inprocess").lower() != "server",
        fast_processor=_env("WALLET_PROCESSOR", "fast").lower() != "stock",
        incremental_states=_env("WALLET_INCREMENTAL_STATES", "1") != "0",
        parse_cache_size=_env_int("WALLET_PARSE_CACHE", Settings.parse_cache_size),
        tracker_cache_size=_env_int("WALLET_TRACKER_CACHE", Settings.tracker_cache_size, minimum=1),
        turn_slots=_env_int("WALLET_TURN_SLOTS", Settings.turn_slots),
        blas_threads=_env_int("WALLET_BLAS_THREADS", Settings.blas_threads),
        loop_lag_log_seconds=_env_int("WALLET_LOOP_LAG_LOG", Settings.loop_lag_log_seconds),
        gc_schedule=_env("WALLET_GC_SCHEDULE", "1") != "0",
        socketio_redis=_env("WALLET_SOCKETIO_REDIS"),
        rasa_instances=tuple(u.strip().rstrip("/") for u in _env("WALLET_RASA_INSTANCES").split(",") if u.strip()),
        pg_url=_env("WALLET_PG_URL", Settings.pg_url),
        redis_url=_env("WALLET_REDIS_URL", Settings.redis_url),
        shared_redis_url=_env("WALLET_REDIS_URL"),
        redis_prefix=_env("WALLET_REDIS_PREFIX", Settings.redis_prefix),
        console_host=_env("CONSOLE_HOST", Settings.console_host),
        console_port=_env_int("CONSOLE_PORT", DEFAULT_CONSOLE_PORT, minimum=1),
        rasa_port=rasa_port,
        action_port=_env_int("ACTION_PORT", DEFAULT_ACTION_PORT, minimum=1),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process (read on first use)."""
    return load_settings()


def reload_settings() -> Settings:
    """Read assistant.yml and the environment again (tests, tools that change the environment)."""
    settings.cache_clear()
    return settings()


def handoff_settings() -> HandoffSettings:
    return settings().handoff


def rasa_instances() -> tuple:
    """Every Rasa server of this installation (a scale-out lists each instance, not nginx)."""
    return settings().rasa_instances or (settings().handoff.rasa_url,)
