"""The files one Rasa process reads, rendered for that process (var/run/, 0600, removed at exit
by bot/serving/rasa_cli.py).

- endpoints: the action server token added (bot/security/action_auth.py: never on a command line
  nor in an environment) and `${ACTION_PORT}` in the action server's URL replaced by the port of
  bot/config.py (ACTION_PORT, default 5055), so the port has one source: two instances with two
  ACTION_PORTs call their own action servers;
- credentials: the channels switched on by their variables (bot/serving/channel_switch.py),
  plus what the caller adds (`bot rasa shell`: the terminal channel).

`${…}` placeholders Rasa substitutes stay placeholders (no secret is written), relative paths
(the SQLite tracker store) stay relative to Rasa's working directory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import yaml

from bot.security.action_auth import needs_token
from bot.serving.channel_switch import switch_channels

ACTION_PORT_PLACEHOLDER = "${ACTION_PORT}"


def write_private(dest: Path, source: str, config: Dict[str, Any]) -> Path:
    """`config` as YAML at `dest`, mode 0600, written whole (a reader never sees half a file)."""
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"# Rendered from {source} for one Rasa process: do not edit.\n")
        yaml.safe_dump(config, handle, allow_unicode=True, sort_keys=False)
    os.chmod(tmp, 0o600)  # also when an older tmp file of another mode was reused
    os.replace(tmp, dest)
    return dest


def _load(source: Path) -> Optional[Any]:
    try:
        return yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # Rasa reports the file itself


def render_endpoints(source: Path, dest: Path, token: str, action_port: int) -> Optional[Path]:
    """`source` with the action server's token and port, written to `dest`; None when nothing
    changes (no action endpoint, or one with its own token and a literal port): then Rasa reads
    `source` as it is."""
    config = _load(source)
    action = config.get("action_endpoint") if isinstance(config, dict) else None
    if not isinstance(action, dict) or not action.get("url"):
        return None
    rendered = dict(action)
    if needs_token(config):
        rendered["token"] = token
    url = str(action["url"])
    if ACTION_PORT_PLACEHOLDER in url:
        rendered["url"] = url.replace(ACTION_PORT_PLACEHOLDER, str(action_port))
    if rendered == action:
        return None
    return write_private(dest, str(source), {**config, "action_endpoint": rendered})


def render_credentials(source: Optional[Path], dest: Path, environ: Mapping[str, str],
                       extra: Optional[Dict[str, Any]] = None) -> Optional[Path]:
    """The channels of `source` (None: no credentials file) that are switched on, plus `extra`,
    written to `dest`; None when that is `source` unchanged. Raises ChannelConfigError."""
    if source is None and not extra:
        return None  # Rasa's own fallback (its REST channel) stays
    config = _load(source) if source is not None else {}
    if config is None and source is not None and source.exists():
        return None  # unreadable or broken YAML: Rasa's own error is clearer
    channels, _ = switch_channels(config if isinstance(config, dict) else {}, environ)
    for name, block in (extra or {}).items():
        channels.setdefault(name, block)
    if source is not None and channels == config:
        return None
    return write_private(dest, str(source or "(no credentials file)"), channels)
