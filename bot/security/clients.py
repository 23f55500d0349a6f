"""Who is calling: a user's address (through our proxy) or a local tool.

Callers from a trusted proxy address (loopback by default) without an X-Forwarded-For header are
local tools and back ends on this host: the app's server, `make bench`, the agent console. What
nginx forwards carries the user's address in X-Forwarded-For (deploy/nginx.conf.tmpl sets it on
every location, /socket.io/ included; it is believed only from a trusted proxy address),
so users behind the proxy are never mistaken for local tools.
"""
from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any, Dict, Optional

from bot.config import settings

DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")


@lru_cache(maxsize=1)
def security_settings() -> Dict[str, Any]:
    return dict(settings().security)


def trusted_proxies() -> tuple:
    return tuple(security_settings().get("trusted_proxies") or DEFAULT_TRUSTED_PROXIES)


def client_address(peer: Optional[str], forwarded_for: Optional[str]) -> Optional[str]:
    """The user's address: the peer, or the rightmost forwarded hop our proxies did not add.

    None for a local tool (a trusted proxy's address without a forwarded address)."""
    trusted = set(trusted_proxies())
    if peer not in trusted:
        return peer
    if not forwarded_for:
        return None
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop if _valid_ip(hop) else "invalid-forwarded-for"
    return None


def is_local_tool(peer: Optional[str], forwarded_for: Optional[str]) -> bool:
    return client_address(peer, forwarded_for) is None


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def widget_address(peer: Optional[str], forwarded_for: Optional[str]) -> str:
    """The address a widget (socket.io) user's limits count: the user's address behind our
    proxy, else the peer itself. A socket.io client is always a user's browser, never a back
    end, so a trusted proxy's address without X-Forwarded-For is not exempt here: it is counted
    as one client (all users behind a proxy that forgets the header share one budget)."""
    return client_address(peer, forwarded_for) or peer or "unknown"
