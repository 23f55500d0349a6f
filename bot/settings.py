"""Behaviour settings from `config/assistant.yml`, with environment overrides."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from bot.paths import ROOT, settings_path


@dataclass(frozen=True)
class HandoffSettings:
    clarify_enabled: bool = True
    clarify_min_confidence: float = 0.15
    clarify_max_gap: float = 0.25
    recent_messages: int = 10
    database_url: str = "sqlite:///var/wallet.db"
    cancel_phrases: tuple = ("取消转人工",)
    session_ttl_seconds: int = 28800
    rasa_url: str = "http://127.0.0.1:5005"


def _absolute_sqlite(url: str) -> str:
    """Relative SQLite paths are relative to the project root, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        path = ROOT / url[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return url


@lru_cache(maxsize=1)
def _raw_settings() -> dict:
    path: Path = settings_path()
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@lru_cache(maxsize=1)
def handoff_settings() -> HandoffSettings:
    raw = _raw_settings().get("handoff") or {}
    known = {k: v for k, v in raw.items() if k in HandoffSettings.__dataclass_fields__}
    if "cancel_phrases" in known:
        known["cancel_phrases"] = tuple(known["cancel_phrases"])
    settings = HandoffSettings(**known)
    url = os.environ.get("WALLET_DB_URL") or settings.database_url
    rasa_url = os.environ.get("WALLET_RASA_URL") or settings.rasa_url
    return HandoffSettings(**{**settings.__dict__, "database_url": _absolute_sqlite(url), "rasa_url": rasa_url})


@lru_cache(maxsize=1)
def support_hours():
    from bot.handoff.hours import SupportHours

    return SupportHours.from_config(_raw_settings().get("support_hours"))
