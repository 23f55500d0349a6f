"""Where the project's files live, overridable by environment for tests and deployments."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project_path(env_var: str, default: str) -> Path:
    """A path from an environment variable, else `default` relative to the project root."""
    value = os.environ.get(env_var)
    return Path(value) if value else ROOT / default


def project_root() -> Path:
    """The project staff tools edit and retrain (WALLET_PROJECT_ROOT; tests use a temp copy)."""
    return project_path("WALLET_PROJECT_ROOT", ".").resolve()


def faq_path() -> Path:
    return project_path("WALLET_FAQ", "data/faq.yml")


def settings_path() -> Path:
    return project_path("WALLET_SETTINGS", "config/assistant.yml")
