"""The action server answers only our Rasa: a shared token on every call.

Anyone on the machine could post a hand-made `next_action=action_handoff` with an invented
tracker to port 5055 and get a top-priority ticket with a fake transcript. Rasa 3.6 can send a
token with every action call (`action_endpoint.token` in endpoints.yml, sent as the `token`
query parameter: `EndpointConfig.combine_parameters` in rasa/utils/endpoints.py), so:

- the token is derived from the installation's secret (`action_token()`, var/secret.key, 0600),
  by Rasa's side and by the action server's side each in its own process;
- `render_endpoints` writes the endpoints file Rasa reads with the token added, 0600 in var/run/
  (bot/serving/rasa_cli.py does it for every `bot rasa run|shell|interactive`): the token is never
  on a command line nor in an environment;
- the action server (`bot actions`, bot/serving/action_server.py) refuses every request without
  the right token with a 401 (`token_matches`: constant-time comparison).
"""
from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

TOKEN_PARAM = "token"
"""The query parameter Rasa puts the token in (`EndpointConfig.token_name`'s default)."""
REFUSAL: Dict[str, Any] = {
    "error": "未授权：动作服务器只接受带有正确令牌（token 参数）的 Rasa 请求",
    "reason": "missing or wrong action server token",
    "status": 401,
}


def token_matches(given: object, expected: str) -> bool:
    """True only for the expected token; compared in constant time (no timing oracle)."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def needs_token(endpoints: Dict[str, Any]) -> bool:
    """An endpoints config whose action server call would go out without a token."""
    action = endpoints.get("action_endpoint") if isinstance(endpoints, dict) else None
    return isinstance(action, dict) and bool(action.get("url")) and not action.get("token")


def render_endpoints(source: Path, dest: Path, token: str) -> Optional[Path]:
    """`source` with `action_endpoint.token` set, written to `dest` (0600); None when `source`
    has no action endpoint or already names a token (then Rasa reads `source` as it is).

    Only the action endpoint changes: `${…}` placeholders stay for Rasa to substitute, relative
    paths (the SQLite tracker store) stay relative to Rasa's working directory, as before."""
    try:
        config = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # Rasa reports the file itself
    if not needs_token(config):
        return None
    config["action_endpoint"] = {**config["action_endpoint"], "token": token}
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"# Rendered from {source} for one Rasa process (action server token added): do not edit.\n")
        yaml.safe_dump(config, handle, allow_unicode=True, sort_keys=False)
    os.chmod(tmp, 0o600)  # also when an older tmp file of another mode was reused
    os.replace(tmp, dest)
    return dest
