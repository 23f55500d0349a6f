"""Server-issued, signed tokens: widget sessions and the JWT for Rasa's HTTP API.

One secret per installation: WALLET_SECRET_KEY, or var/secret.key (created on first use, mode
0600, shared by every process and instance started from this checkout). Each use gets its own
key derived from it, so a widget token can never pass as an API token.

Derived secrets never travel on a command line (any local account reads /proc/<pid>/cmdline):
`bot rasa run --wallet-jwt` derives the JWT secret inside the Rasa process
(bot/serving/rasa_cli.py), and Rasa and the action server derive the action token each on their
own (bot/security/action_auth.py).
  .venv/bin/python -m bot token api-token    # a JWT for curl against Rasa's API
  .venv/bin/python -m bot token jwt-secret   # the secret itself (to check a JWT by hand)
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import sys
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import jwt

from bot.config import settings

SESSION_TTL_SECONDS = 30 * 24 * 3600
"""A widget keeps its conversation across reloads for this long."""
API_TOKEN_TTL_SECONDS = 3600


def _key_file() -> Path:
    return settings().secret_file


@lru_cache(maxsize=1)
def secret_key() -> bytes:
    from_env = settings().secret_key
    if from_env:
        return from_env.encode()
    path = _key_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:  # O_EXCL: two processes starting at once agree on one key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    for _ in range(50):
        text = path.read_text().strip()
        if text:
            return text.encode()
        time.sleep(0.02)  # the creator is still writing
    raise RuntimeError(f"{path} is empty; delete it or set WALLET_SECRET_KEY")


def derived_key(purpose: str) -> bytes:
    return hmac.new(secret_key(), purpose.encode(), hashlib.sha256).digest()


def _signature(session_id: str, expires: int) -> str:
    mac = hmac.new(derived_key("widget-session"), f"{session_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue_session(now: Optional[float] = None, ttl: int = SESSION_TTL_SECONDS) -> Tuple[str, str]:
    """A new conversation id and the token that proves it was ours to give."""
    session_id = uuid.uuid4().hex
    expires = int((now or time.time()) + ttl)
    return session_id, f"{session_id}.{expires}.{_signature(session_id, expires)}"


def verify_session(token: object, now: Optional[float] = None) -> Optional[str]:
    """The conversation id a token was issued for, or None (forged, altered, expired, junk)."""
    if not isinstance(token, str) or len(token) > 200 or token.count(".") != 2:
        return None
    session_id, expires_text, signature = token.split(".")
    if not (session_id.isalnum() and len(session_id) == 32 and expires_text.isdigit()):
        return None
    expires = int(expires_text)
    if not hmac.compare_digest(signature, _signature(session_id, expires)):
        return None
    return session_id if expires > (now or time.time()) else None


def jwt_secret() -> str:
    """The secret Rasa checks its API's JWTs with (given to Rasa in-process by `--wallet-jwt`)."""
    return derived_key("rasa-api-jwt").hex()


def action_token() -> str:
    """The token Rasa sends the action server (endpoints.yml `action_endpoint.token`)."""
    return derived_key("action-server").hex()


def api_token(username: str = "wallet-console", ttl: int = API_TOKEN_TTL_SECONDS) -> str:
    """A JWT with Rasa's admin role: every conversation, every endpoint of the HTTP API."""
    now = int(time.time())
    payload = {"user": {"username": username, "role": "admin"}, "iat": now, "exp": now + ttl}
    return jwt.encode(payload, jwt_secret(), algorithm="HS256")


def rasa_auth_args() -> list:
    """`bot rasa run` arguments that make its HTTP API require our JWT. Only our flag: the secret
    is derived inside the Rasa process, never put on its command line."""
    return ["--wallet-jwt"]


def api_headers() -> dict:
    return {"Authorization": f"Bearer {api_token()}"}


def main(argv: List[str]) -> int:
    if argv == ["jwt-secret"]:
        print(jwt_secret())
    elif argv == ["api-token"]:
        print(api_token("developer"))
    else:
        print("usage: bot token jwt-secret|api-token", file=sys.stderr)
        return 2
    return 0

