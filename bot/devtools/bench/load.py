"""A bounded load generator for Rasa's REST channel (loopback only).

N simulated users each hold a scripted conversation, one message at a time (a user waits for
the answer before typing the next message), until the time is up; every request's latency and
outcome is recorded.
"""
from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, List, Sequence
from urllib.parse import urlparse

import aiohttp

Script = Sequence[str]


@dataclass
class LoadResult:
    users: int
    seconds: float
    latencies: List[float] = field(default_factory=list)
    errors: int = 0
    empty: int = 0  # answered with an empty list, counted as answered (stock's bot only, see outcome)

    @property
    def messages(self) -> int:
        return len(self.latencies) + self.errors

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def summary(self) -> dict:
        return {
            "users": self.users,
            "messages": self.messages,
            "throughput_msg_s": round(len(self.latencies) / self.seconds, 2) if self.seconds else 0.0,
            "p50_ms": round(self.percentile(50) * 1000, 1),
            "p95_ms": round(self.percentile(95) * 1000, 1),
            "p99_ms": round(self.percentile(99) * 1000, 1),
            "error_rate": round(self.errors / self.messages, 4) if self.messages else 0.0,
            "empty_answers": self.empty,
        }


def outcome(status: int, body: object, empty_ok: bool) -> str:
    """'answered', 'empty' or 'error'. Stock `rasa init` answers some turns with nothing (e.g.
    "yes" where no story goes on: the policy predicts action_listen), a valid 200 with `[]`:
    `empty_ok` counts that as answered. Our assistant always says something, so for it an empty
    answer is an error."""
    if status != 200 or not isinstance(body, list):
        return "error"
    if body:
        return "answered"
    return "empty" if empty_ok else "error"


def _loopback_only(url: str) -> None:
    host = urlparse(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise ValueError(f"benchmarks only target this machine (loopback), not {host!r}")


async def _user(session: aiohttp.ClientSession, url: str, scripts: Callable[[], Script],
                deadline: float, result: LoadResult, empty_ok: bool = False) -> None:
    while time.monotonic() < deadline:
        sender = f"bench-{uuid.uuid4().hex[:12]}"
        for text in scripts():
            if time.monotonic() >= deadline:
                return
            start = time.perf_counter()
            try:
                async with session.post(url, json={"sender": sender, "message": text}) as resp:
                    got = outcome(resp.status, await resp.json(content_type=None), empty_ok)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                got = "error"
            if got == "error":
                result.errors += 1
            else:
                result.latencies.append(time.perf_counter() - start)
                result.empty += got == "empty"


async def run_load(url: str, users: int, seconds: float, scripts: Callable[[], Script],
                   empty_ok: bool = False) -> LoadResult:
    _loopback_only(url)
    result = LoadResult(users=users, seconds=seconds)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=users + 5)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(_user(session, url, scripts, deadline, result, empty_ok) for _ in range(users)))
        result.seconds = time.monotonic() - started
    return result


OUR_FAQ_QUESTIONS = [
    "退款一般几天能到账", "登录的时候一直说密码错误", "付款失败了钱却扣了", "账户被冻结了怎么解冻",
    "验证码收不到怎么办", "怎么换绑银行卡", "app老是闪退", "是不是系统在维护", "有人自称客服要我验证码",
    "支付密码忘了怎么重置", "转账一直在处理中", "怎么投诉商家",
]
OUR_OUT_OF_SCOPE = ["今天天气怎么样", "推荐一只基金", "怎么提高信用额度"]


def our_conversation(rng: random.Random) -> Script:
    """Greeting, 2–4 FAQ questions each answered with 是, sometimes an out-of-scope question last."""
    script = [rng.choice(["你好", "在吗", "您好"])]
    for question in rng.sample(OUR_FAQ_QUESTIONS, rng.randint(2, 4)):
        script += [question, "是"]
    if rng.random() < 0.2:
        script.append(rng.choice(OUR_OUT_OF_SCOPE))  # hands off: the conversation ends here
    return script


def stock_conversation(rng: random.Random) -> Script:
    """The `rasa init` bot's own English small talk."""
    return [rng.choice(["hi", "hello", "hey there"]), rng.choice(["I am sad", "great", "very good"]),
            rng.choice(["yes", "no"]), "are you a bot?", "bye"]


def scripts_for(kind: str, seed: int = 7) -> Callable[[], Script]:
    rng = random.Random(seed)
    make = our_conversation if kind == "ours" else stock_conversation
    return lambda: make(rng)


def process_tree_peak_rss_mb(pid: int) -> float:
    """The largest peak RSS among a server and its worker processes (SANIC_WORKERS)."""
    peaks = [p for p in (peak_rss_mb(q) for q in process_tree(pid)) if p == p]
    return max(peaks) if peaks else float("nan")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def process_tree(pid: int) -> List[int]:
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                for child in handle.read().split():
                    found += process_tree(int(child))
    except OSError:
        pass
    return found


def pids_named(name: str) -> List[int]:
    """Processes whose command name is `name` (PostgreSQL backends, redis-server…)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", encoding="utf-8") as handle:
                    if handle.read().strip() == name:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def cpu_seconds(pids: List[int]) -> float:
    """user + system CPU time of these processes so far (from /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")
