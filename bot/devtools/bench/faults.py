"""A fault under load, recorded: what every simulated user sent, got back, and when.

`bench/load.py` counts answers and errors; a fault test needs more: for each message when it
was sent and answered, the HTTP status or the exception, which instance served it (nginx's
`X-Served-By`) and the answer texts, so that afterwards one can say how many messages failed,
what the client saw, whether each conversation's stored history is exactly what its user saw,
and how long throughput took to come back.

A user whose message fails (a 5xx, a refused connection, a timeout) sends the same message
again with the same `X-Request-ID` after the response's `Retry-After` (else `RETRY_AFTER_S`):
what a client should do with a retryable error (the assistant answers a repeated request id
once, bot/serving/processor.py). After `RETRIES` repeats it gives the message up and starts a
new conversation: that message is counted as lost. Loopback only, like load.py.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import aiohttp

from bot.devtools.bench.load import Script, _loopback_only

RETRY_AFTER_S = 1.0
RETRIES = 5


@dataclass
class Attempt:
    sender: str
    text: str
    request_id: str
    try_no: int
    start: float
    end: float = 0.0
    status: int = 0
    """HTTP status; 0 when no response came (connection refused or reset, timeout)."""
    error: str = ""
    retry_after: float = RETRY_AFTER_S
    served_by: str = ""
    answers: List[str] = field(default_factory=list)
    system_notes: List[str] = field(default_factory=list)
    """Answers the hand-off relay adds (metadata.from "system": acknowledgements, queue notes),
    which are the channel's and not stored as bot messages in the tracker."""

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.answers)


@dataclass
class Recording:
    attempts: List[Attempt] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    def answered_turns(self) -> Dict[str, List[Attempt]]:
        """Per conversation, the successful attempt of each message, in order."""
        out: Dict[str, List[Attempt]] = {}
        for a in sorted(self.attempts, key=lambda a: a.start):
            if a.ok:
                out.setdefault(a.sender, []).append(a)
        return out

    def failed_first_tries(self) -> List[Attempt]:
        return [a for a in self.attempts if a.try_no == 0 and not a.ok]

    def unanswered(self) -> List[Attempt]:
        """Messages no try of which was answered: what a user would have lost."""
        by_id: Dict[str, List[Attempt]] = {}
        for a in self.attempts:
            by_id.setdefault(a.request_id, []).append(a)
        return [tries[-1] for tries in by_id.values() if not any(t.ok for t in tries)]

    def what_clients_saw(self, attempts: Optional[List[Attempt]] = None) -> Dict[str, int]:
        """Failed attempts by what the client got: `HTTP 502`, `timeout`, `connection refused`…"""
        seen: Dict[str, int] = {}
        for a in attempts if attempts is not None else self.attempts:
            if not a.ok:
                key = f"HTTP {a.status}" if a.status else (a.error or "no answer")
                seen[key] = seen.get(key, 0) + 1
        return seen

    def per_second(self, since: float, until: float) -> List[int]:
        """Answered messages in each second from `since` (by answer time)."""
        counts = [0] * max(1, int(until - since + 0.999))
        for a in self.attempts:
            if a.ok and since <= a.end < until:
                counts[int(a.end - since)] += 1
        return counts

    def recovery_seconds(self, fault_at: float, window: float = 3.0, share: float = 0.8,
                         baseline_s: float = 10.0) -> Optional[float]:
        """Seconds from the fault until throughput over `window` s is back to `share` of what it
        was in the `baseline_s` before the fault; None if it never was before the load ended."""
        before = [a for a in self.attempts if a.ok and fault_at - baseline_s <= a.end < fault_at]
        baseline = len(before) / baseline_s
        if baseline <= 0:
            return None
        ends = sorted(a.end for a in self.attempts if a.ok and a.end >= fault_at)
        t = fault_at
        while t + window <= self.ended:
            got = sum(1 for e in ends if t <= e < t + window)
            if got / window >= share * baseline:
                return round(t - fault_at, 1)
            t += 0.5
        return None

    def latency_after(self, fault_at: float, seconds: float) -> float:
        """The slowest successful answer to a message sent in the `seconds` after the fault."""
        slow = [a.end - a.start for a in self.attempts if a.ok and fault_at <= a.start < fault_at + seconds]
        return round(max(slow), 2) if slow else 0.0


async def _send(session: aiohttp.ClientSession, url: str, attempt: Attempt) -> None:
    try:
        async with session.post(url, json={"sender": attempt.sender, "message": attempt.text},
                                headers={"X-Request-ID": attempt.request_id}) as resp:
            attempt.status = resp.status
            attempt.served_by = resp.headers.get("X-Served-By", "")
            try:
                attempt.retry_after = min(5.0, float(resp.headers.get("Retry-After", RETRY_AFTER_S)))
            except ValueError:
                pass
            body = await resp.json(content_type=None)
            if resp.status == 200 and isinstance(body, list):
                messages = [m for m in body if isinstance(m, dict)]
                attempt.answers = [m.get("text", "") for m in messages]
                attempt.system_notes = [m.get("text", "") for m in messages
                                        if (m.get("metadata") or {}).get("from") == "system"]
            elif isinstance(body, dict):
                attempt.error = str(body.get("error", ""))[:120]
    except asyncio.TimeoutError:
        attempt.error = "timeout"
    except aiohttp.ClientConnectorError:
        attempt.error = "connection refused"
    except (aiohttp.ClientError, ValueError) as err:
        attempt.error = type(err).__name__
    attempt.end = time.monotonic()


async def _user(session: aiohttp.ClientSession, url: str, scripts: Callable[[], Script], deadline: float,
                recording: Recording) -> None:
    while time.monotonic() < deadline:
        sender = f"fault-{uuid.uuid4().hex[:12]}"
        for text in scripts():
            if time.monotonic() >= deadline:
                return
            request_id = uuid.uuid4().hex
            for try_no in range(RETRIES + 1):
                attempt = Attempt(sender, text, request_id, try_no, time.monotonic())
                recording.attempts.append(attempt)
                await _send(session, url, attempt)
                if attempt.ok:
                    break
                await asyncio.sleep(attempt.retry_after)
            else:
                break  # the conversation cannot go on: a new one


async def recorded_load(url: str, users: int, seconds: float, scripts: Callable[[], Script],
                        timeout: float = 60.0) -> Recording:
    """`users` simulated users for `seconds`; every attempt is recorded (monotonic clock)."""
    _loopback_only(url)
    recording = Recording(started=time.monotonic())
    connector = aiohttp.TCPConnector(limit=users + 5)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout), connector=connector) as session:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_user(session, url, scripts, deadline, recording) for _ in range(users)))
    recording.ended = time.monotonic()
    return recording
