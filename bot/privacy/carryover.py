"""Numbers typed over two (or more) consecutive messages of one conversation.

"卡号 6222 0212 3456" and then "7890 123": neither message alone is a card number, together they
are. The channels mask each message before anything stores it, so to see the whole number the
masker needs the trailing digits of the user's previous message. They are kept here: only the
digits of the trailing run (at most MAX_DIGITS) and a one-word hint of what the words before it
called it (card, ID, phone, order), per conversation, for TTL_SECONDS, for at most
MAX_CONVERSATIONS conversations, in this process's memory.

When the previous digits and the start of the new message form a card, ID or mobile number, the
part in the new message is masked (with the label of the whole number, e.g. [卡号尾号0123]).
The earlier part was stored before we could know (the tracker, the ticket transcript and the
logs have it as it was masked then): it is masked only when its own words said what it was
("卡号 6222 0212 3456" is masked as a card fragment by the masker itself); a bare "6222 0212
3456" followed by the rest stays in the earlier message. docs/trust.md says so.

`RecentDigits` is the storage interface: the in-process `InMemoryRecentDigits` here, and
`SharedRecentDigits` on the shared state (bot/shared_state: Redis when WALLET_REDIS_URL is set, so
the next message may reach any worker or instance). What it holds are fragments of secrets: the
TTL is short, and in Redis the value is sealed (AES-GCM, a key derived from the installation's
secret) and the key is a hash of the conversation id, so a Redis snapshot or `MONITOR` shows
neither digits nor whose they were.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Protocol, Tuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.privacy import masker
from bot.privacy.masker import Finding, Masked
from bot.shared_state import Forget, Get, Put, SharedState

TTL_SECONDS = 120.0
"""A number is typed on in the next message within seconds; two minutes is generous."""
MAX_CONVERSATIONS = 10_000
MAX_DIGITS = 19
"""The longest number we look for (a 19-digit card); older digits cannot be part of one."""


@dataclass(frozen=True)
class Tail:
    digits: str
    """The digits at the very end of the previous message(s), separators dropped."""
    hint: str = ""
    """What the words before them called them: card, id_number, phone, order or ''."""


class RecentDigits(Protocol):
    """Per-conversation memory of the previous message's trailing digits (expires by itself)."""

    def get(self, conversation: str) -> Optional[Tail]: ...

    def put(self, conversation: str, tail: Tail) -> None: ...

    def forget(self, conversation: str) -> None: ...


class InMemoryRecentDigits:
    """RecentDigits in this process: bounded (least recently written goes first) and TTL'd."""

    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_conversations: int = MAX_CONVERSATIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.max_conversations = max_conversations
        self.clock = clock
        self._items: "OrderedDict[str, Tuple[float, Tail]]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conversation: str) -> Optional[Tail]:
        with self._lock:
            item = self._items.get(conversation)
            if item is None:
                return None
            if item[0] <= self.clock():
                del self._items[conversation]
                return None
            return item[1]

    def put(self, conversation: str, tail: Tail) -> None:
        with self._lock:
            self._items.pop(conversation, None)
            self._items[conversation] = (self.clock() + self.ttl, tail)
            while len(self._items) > self.max_conversations:
                self._items.popitem(last=False)

    def forget(self, conversation: str) -> None:
        with self._lock:
            self._items.pop(conversation, None)

    def __len__(self) -> int:
        return len(self._items)


class SharedRecentDigits:
    """RecentDigits on a shared state (every process sees the same memory).

    `seal_key` (32 bytes): seal the digits (AES-GCM) before they leave the process; None keeps
    them as they are (a state in this process's memory). `read` and `tail` let a caller fetch the
    memory together with other state in one round trip (bot/channels/handoff_flow.py)."""

    def __init__(self, state: SharedState, seal_key: Optional[bytes] = None, ttl_seconds: float = TTL_SECONDS) -> None:
        self.state, self.ttl = state, ttl_seconds
        self._aead = AESGCM(seal_key) if seal_key is not None else None

    def key(self, conversation: str) -> str:
        return "carry:" + hashlib.sha256(conversation.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def read(self, conversation: str) -> Get:
        return Get(self.key(conversation))

    def tail(self, stored: Optional[str]) -> Optional[Tail]:
        """The Tail a `read` returned (None for nothing, or for anything that does not open)."""
        if not stored:
            return None
        try:
            raw = stored.encode("ascii")
            if self._aead is not None:
                sealed = base64.b64decode(raw, validate=True)
                raw = self._aead.decrypt(sealed[:12], sealed[12:], b"carryover")
            data = json.loads(raw)
            return Tail(str(data["d"]), str(data.get("h", "")))
        except (ValueError, KeyError, TypeError, InvalidTag):
            return None

    def _value(self, tail: Tail) -> str:
        raw = json.dumps({"d": tail.digits, "h": tail.hint}).encode("ascii")
        if self._aead is None:
            return raw.decode("ascii")
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, raw, b"carryover")).decode("ascii")

    def get(self, conversation: str) -> Optional[Tail]:
        return self.tail(self.state.run(self.read(conversation))[0])

    def put(self, conversation: str, tail: Tail) -> None:
        self.state.run(Put(self.key(conversation), self._value(tail), self.ttl))

    def forget(self, conversation: str) -> None:
        self.state.run(Forget(self.key(conversation)))


_SHARED = InMemoryRecentDigits()
_UNREAD: Any = object()


def shared_recent_digits() -> RecentDigits:
    """The process's memory used by the channels."""
    return _SHARED


def mask_in_conversation(text: str, conversation: str, memory: Optional[RecentDigits] = None,
                         previous: Any = _UNREAD) -> Masked:
    """mask(text), and the start of the message masked when it completes a number begun at the
    end of the conversation's previous message.

    `previous`: what `memory` holds for the conversation, when the caller has read it already
    (with other state, in one round trip); then memory is written only when it changes."""
    memory = _SHARED if memory is None else memory
    if not isinstance(text, str):
        return masker.mask(text)
    scan = masker.scan(text)
    if not masker.has_digits(scan.norm):  # most messages: nothing to continue, nothing to keep
        if conversation and (previous is _UNREAD or previous is not None):
            memory.forget(conversation)
        return masker.build(scan.source, scan.findings)
    findings: List[Finding] = list(scan.findings)
    if previous is _UNREAD:
        previous = memory.get(conversation) if conversation else None
    held = previous
    edges = masker.with_numeral_edges(scan.norm)  # 四九八 at the start is digits here
    completed = False
    if previous is not None:
        joined = _joined_finding(scan, edges, previous)
        if joined is not None:
            findings = masker.resolve([joined] + [f for f in findings if not (f.start < joined.end and joined.start < f.end)])
            completed = True
    tail = None if completed else _tail_of(edges, previous)
    if conversation:
        if tail is not None:
            memory.put(conversation, tail)
        elif held is not None:
            memory.forget(conversation)
    return masker.build(scan.source, findings)


def _joined_finding(scan: "masker.Scan", edges: str, previous: Tail) -> Optional[Finding]:
    lead = masker.leading_run(edges)
    if lead is None:
        return None
    start, end, digits = lead
    joined = previous.digits + digits
    hit = masker.classify_digits(joined, hint=previous.hint) or _named_whole(joined, previous.hint)
    if hit is None or masker.is_quantity(scan.norm, end):
        return None
    kind, replacement = hit
    whole = any(f.start <= start and end <= f.end for f in scan.findings)
    if whole and previous.hint != kind and not (kind == "id_number" and len(joined) == 18):
        # the start of this message is a number by itself, and neither the earlier words nor an
        # ID number's check character say it belongs to the earlier digits
        return None
    return Finding(kind, start, end, replacement)


def _named_whole(digits: str, hint: str) -> Optional[Tuple[str, str]]:
    """A number the earlier words named ("卡号 6222 0212 3456", then "7890 123") that has the
    length of one, even when its check digit is wrong: what the user meant is still a secret."""
    if not digits[:-1].isdigit():
        return None
    if hint == "card" and 13 <= len(digits) <= 19 and digits.isdigit():
        return "card", f"[卡号尾号{digits[-4:]}]"
    if hint == "id_number" and len(digits) in (15, 18):
        return "id_number", masker.LABELS["id_number"]
    if hint == "phone" and len(digits) == 11 and digits.isdigit() and digits[0] == "1":
        return "phone", f"[手机尾号{digits[-4:]}]"
    return None


def _tail_of(edges: str, previous: Optional[Tail]) -> Optional[Tail]:
    """The trailing digit run to remember (also when it is a number by itself: 16 digits that pass
    Luhn may be the start of a 19-digit card)."""
    run = masker.trailing_run(edges)
    if run is None:
        return None
    start, end, digits, hint = run
    if start == masker.leading_space(edges) and previous is not None:
        # the whole message is digits: it may be the middle of a number typed in three parts
        digits, hint = previous.digits + digits, hint or previous.hint
    if len(digits) > MAX_DIGITS:
        digits = digits[-MAX_DIGITS:]
    return Tail(digits, hint)
