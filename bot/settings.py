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


def _absolute_sqlite(url: str) -> str:
    """Relative SQLite paths are relative to the project root, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        path = ROOT / url[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return url


@lru_cache(maxsize=1)
def handoff_settings() -> HandoffSettings:
    path: Path = settings_path()
    raw = {}
    if path.exists():
        with open(path, encoding="utf-8") as handle:
            raw = (yaml.safe_load(handle) or {}).get("handoff") or {}
    known = {k: v for k, v in raw.items() if k in HandoffSettings.__dataclass_fields__}
    settings = HandoffSettings(**known)
    url = os.environ.get("WALLET_DB_URL") or settings.database_url
    return HandoffSettings(**{**settings.__dict__, "database_url": _absolute_sqlite(url)})
