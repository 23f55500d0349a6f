"""Which web pages may open the widget's socket, and a clear log line when one may not.

python-engineio refuses a page of another origin with a bare 400 (the browser shows only a
console error, the server logs it once and then only at INFO). We give engineio this check as
its `cors_allowed_origins` callable instead of a list, so a refusal is logged as a warning that
names the origin and the setting to change. Allowed: the server's own origin (as seen by the
browser, also behind a proxy that sets X-Forwarded-Proto/-Host) and every origin listed in
`cors_allowed_origins` of the socket.io channel in credentials.yml (`"*"` allows all).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterable, Optional

logger = logging.getLogger(__name__)
SETTING = "cors_allowed_origins (bot.channels.socketio.WalletSocketIOInput in credentials.yml)"
LOG_EVERY_SECONDS = 60.0
"""A refused origin is logged at most once a minute (a page retries its handshake every few seconds)."""
_MAX_REMEMBERED = 1000


def _first(value: str) -> str:
    return value.split(",")[0].strip()


def own_origins(environ: Dict[str, Any]) -> set:
    """The server's own origin as the browser sees it (engineio's same-origin rule)."""
    scheme, host = environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST")
    if not scheme or not host:
        return set()
    origins = {f"{scheme}://{host}"}
    if "HTTP_X_FORWARDED_PROTO" in environ or "HTTP_X_FORWARDED_HOST" in environ:
        origins.add(f"{_first(environ.get('HTTP_X_FORWARDED_PROTO', scheme))}://"
                    f"{_first(environ.get('HTTP_X_FORWARDED_HOST', host))}")
    return origins


class OriginCheck:
    """engineio's `cors_allowed_origins(origin, environ) -> bool`, logging what it refuses."""

    def __init__(self, allowed: Optional[Iterable[str]] = None) -> None:
        self.allowed = {str(o).rstrip("/") for o in (allowed or ())}
        self._logged: Dict[str, float] = {}

    def __call__(self, origin: Optional[str], environ: Optional[Dict[str, Any]] = None) -> bool:
        if not origin:  # not a browser page (engineio also asks without one, for CORS headers)
            return False
        if "*" in self.allowed or origin.rstrip("/") in self.allowed or origin in own_origins(environ or {}):
            return True
        self._log_refusal(origin)
        return False

    def _log_refusal(self, origin: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(origin, -LOG_EVERY_SECONDS) < LOG_EVERY_SECONDS:
            return
        if len(self._logged) >= _MAX_REMEMBERED:
            self._logged.clear()
        self._logged[origin] = now
        logger.warning("socket.io: refused a page from origin %r (a chat widget on another site?). "
                       "To allow it, add %r to %s.", origin[:200], origin[:200], SETTING)
