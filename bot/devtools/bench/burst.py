"""The peak-day burst: every simulated user opens a new conversation at the same instant.

`make bench`'s steady load (load.py) starts its users one after another as fast as the client
can, and each keeps chatting; at peak, users are not that polite. Here N users are released
together (one barrier), each sends `messages` messages one at a time (waiting for each answer),
starting a new conversation every `per_conversation` messages (fewer than the per-conversation
rate limit's burst, so nothing is refused for speed). Every request's send time (from the
release) and latency are kept, so the opening second and the steady state that follows can be
reported apart, with the slowest requests named: a stall of the opening burst shows up there
even when the whole run's percentiles hide it.
"""
from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import aiohttp
import requests

from bot.devtools.bench.load import OUR_FAQ_QUESTIONS, OUR_OUT_OF_SCOPE, _loopback_only, outcome

OPENING_SECONDS = 1.0  # requests sent before this (after the release) are "the opening"
SLOWEST = 5  # slowest requests listed per phase


@dataclass(frozen=True)
class Request:
    user: int
    index: int  # 0-based position in the user's messages
    conversation: str
    text: str
    sent_at: float  # seconds after the release
    latency: float  # seconds; NaN when it failed
    ok: bool
    empty: bool = False  # answered with nothing (stock's bot; load.outcome)


@dataclass
class BurstResult:
    users: int
    requests: List[Request] = field(default_factory=list)
    seconds: float = 0.0  # from the release to the last answer

    @property
    def errors(self) -> int:
        return sum(1 for r in self.requests if not r.ok)

    def phase(self, name: str) -> List[Request]:
        if name == "opening":
            return [r for r in self.requests if r.sent_at < OPENING_SECONDS]
        if name == "steady":
            return [r for r in self.requests if r.sent_at >= OPENING_SECONDS]
        return list(self.requests)

    def summary(self) -> Dict:
        """Whole run, opening second and steady state: counts, p50/p95/p99/max, slowest."""
        answered = sum(1 for r in self.requests if r.ok)
        out: Dict = {"users": self.users, "messages": len(self.requests), "errors": self.errors,
                     "empty_answers": sum(1 for r in self.requests if r.empty),
                     "seconds": round(self.seconds, 2),
                     "throughput_msg_s": round(answered / self.seconds, 2) if self.seconds else 0.0}
        for name in ("all", "opening", "steady"):
            out[name] = phase_summary(self.phase(name))
        return out


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank on the sorted values (the same rule as load.LoadResult)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def phase_summary(requests: List[Request], slowest: int = SLOWEST) -> Dict:
    latencies = [r.latency for r in requests if r.ok]
    worst = sorted((r for r in requests if r.ok), key=lambda r: r.latency, reverse=True)[:slowest]
    return {
        "messages": len(requests),
        "errors": sum(1 for r in requests if not r.ok),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else float("nan"),
        "slowest": [{"latency_ms": round(r.latency * 1000, 1), "sent_at_s": round(r.sent_at, 3),
                     "user": r.user, "index": r.index, "text": r.text} for r in worst],
    }


def our_burst_conversation(rng: random.Random, length: int) -> List[str]:
    """A greeting, FAQ questions each answered 是, and in one conversation of five the last
    message out of scope (a hand-off; what follows it goes to the ticket)."""
    script = [rng.choice(["你好", "在吗", "您好"])]
    questions = rng.sample(OUR_FAQ_QUESTIONS, len(OUR_FAQ_QUESTIONS))
    while len(script) < length:
        script += [questions.pop(), "是"]
        if not questions:
            questions = rng.sample(OUR_FAQ_QUESTIONS, len(OUR_FAQ_QUESTIONS))
    script = script[:length]
    if rng.random() < 0.2:
        script[-1] = rng.choice(OUR_OUT_OF_SCOPE)
    return script


def stock_burst_conversation(rng: random.Random, length: int) -> List[str]:
    """The `rasa init` bot's small talk, repeated up to `length` messages."""
    script: List[str] = []
    while len(script) < length:
        script += [rng.choice(["hi", "hello", "hey there"]), rng.choice(["I am sad", "great", "very good"]),
                   rng.choice(["yes", "no"]), "are you a bot?", "bye"]
    return script[:length]


def user_plan(make: Callable[[random.Random, int], List[str]], rng: random.Random, messages: int,
              per_conversation: int, prefix: str = "burst") -> List[tuple]:
    """(conversation id, text) for each of one user's messages: a new conversation every
    `per_conversation` messages."""
    plan: List[tuple] = []
    while len(plan) < messages:
        conversation = f"{prefix}-{uuid.uuid4().hex[:12]}"
        for text in make(rng, min(per_conversation, messages - len(plan))):
            plan.append((conversation, text))
    return plan


async def _user(session: aiohttp.ClientSession, url: str, user: int, plan: List[tuple],
                release: asyncio.Event, clock: Dict[str, float], out: List[Request], empty_ok: bool) -> None:
    await release.wait()
    for index, (conversation, text) in enumerate(plan):
        start = time.perf_counter()
        try:
            async with session.post(url, json={"sender": conversation, "message": text}) as resp:
                got = outcome(resp.status, await resp.json(content_type=None), empty_ok)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            got = "error"
        end = time.perf_counter()
        ok = got != "error"
        out.append(Request(user, index, conversation, text, start - clock["release"],
                           end - start if ok else float("nan"), ok, got == "empty"))


async def run_burst(url: str, users: int, messages: int = 20, per_conversation: int = 8,
                    kind: str = "ours", seed: int = 11, timeout: float = 60) -> BurstResult:
    """Release `users` users at once against a REST webhook on this machine."""
    _loopback_only(url)
    rng = random.Random(seed)
    make = our_burst_conversation if kind == "ours" else stock_burst_conversation
    plans = [user_plan(make, rng, messages, per_conversation) for _ in range(users)]
    result = BurstResult(users=users)
    release, clock = asyncio.Event(), {"release": 0.0}
    connector = aiohttp.TCPConnector(limit=users + 5)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout), connector=connector) as session:
        tasks = [asyncio.create_task(_user(session, url, i, plan, release, clock, result.requests, kind == "stock"))
                 for i, plan in enumerate(plans)]
        await asyncio.sleep(0)  # every user is waiting at the barrier
        clock["release"] = time.perf_counter()
        release.set()
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - clock["release"]
    return result


@dataclass
class BurstPlan:
    """Which bursts each bot gets (`bot bench --burst 50,200 --burst-runs 3`); `rows` collects
    the results of every bot."""

    sizes: List[int]
    runs: int = 1
    messages: int = 20
    per_conversation: int = 8
    rows: List[Dict] = field(default_factory=list)


def loop_lag_of(lag_url: Optional[str], seconds: float) -> Optional[Dict]:
    """The server's event-loop lag and full garbage collections over the last `seconds` (our
    health endpoint), or None."""
    if not lag_url:
        return None
    try:
        health = requests.get(lag_url, params={"lag_window": f"{seconds:.1f}"}, timeout=10).json()
        return {**(health.get("loop_lag") or {}), "gc": health.get("gc")}
    except (requests.RequestException, ValueError, AttributeError):
        return None


def run_bursts(url: str, bot: str, kind: str, plan: BurstPlan, lag_url: Optional[str] = None) -> List[Dict]:
    """Every burst of the plan against one server, one after another (each with new users)."""
    rows = []
    for users in plan.sizes:
        for run in range(1, plan.runs + 1):
            result = asyncio.run(run_burst(url, users, plan.messages, plan.per_conversation, kind=kind, seed=10 + run))
            row = {"bot": bot, "run": run, **result.summary(), "load_avg_1m": round(os.getloadavg()[0], 2),
                   "loop_lag": loop_lag_of(lag_url, result.seconds)}
            rows.append(row)
            lag = row["loop_lag"] or {}
            print(f"  {bot:<8} burst {users:>3} users, run {run}: {row['throughput_msg_s']} msg/s, p99 "
                  f"{row['all']['p99_ms']} ms (opening {row['opening']['p99_ms']}, steady {row['steady']['p99_ms']}), "
                  f"errors {row['errors']}{empty_note(row)}, loop lag p99 {lag.get('p99_ms', '-')} ms max {lag.get('max_ms', '-')} ms, "
                  f"full GCs {(lag.get('gc') or {}).get('full_collections', '-')} "
                  f"(longest {(lag.get('gc') or {}).get('full_max_ms', '-')} ms), load {row['load_avg_1m']}", flush=True)
    plan.rows.extend(rows)
    return rows


def empty_note(row: Dict) -> str:
    """', N empty answers' for a bot that answered some turns with nothing (stock), else ''."""
    return f", {row['empty_answers']} empty answers" if row.get("empty_answers") else ""


def format_rows(rows: List[Dict]) -> List[str]:
    """The burst table: one line per bot, user count, run and phase."""
    lines = [f"{'bot':<9}{'users':>6}{'run':>4}{'phase':>9}{'msgs':>6}{'msg/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
             f"{'p99 ms':>9}{'max ms':>9}{'errors':>7}{'lag p99':>8}"]
    for row in rows:
        lag = (row.get("loop_lag") or {}).get("p99_ms", "-")
        for name in ("all", "opening", "steady"):
            phase = row[name]
            rate = row["throughput_msg_s"] if name == "all" else ""
            lines.append(f"{row['bot']:<9}{row['users']:>6}{row.get('run', 1):>4}{name:>9}{phase['messages']:>6}{rate:>8}"
                         f"{phase['p50_ms']:>9}{phase['p95_ms']:>9}{phase['p99_ms']:>9}{phase['max_ms']:>9}"
                         f"{phase['errors']:>7}{lag if name == 'all' else '':>8}")
    return lines


def slowest_lines(row: Dict, phase: str = "all", limit: Optional[int] = None) -> List[str]:
    return [f"    {s['latency_ms']:>8} ms  sent t={s['sent_at_s']:.3f} s  user {s['user']} msg {s['index']}: {s['text']}"
            for s in row[phase]["slowest"][:limit]]


def burst_verdict(rows: List[Dict], users: int, p99_ms: float, ratio: float) -> Dict:
    """Per bot at `users`: each run's whole-run p99 against `p99_ms`; at every size, errors;
    each of our bots' median throughput over stock's (same run, same bursts)."""
    report: Dict = {}
    stock = [r["throughput_msg_s"] for r in rows if r["bot"] == "stock" and r["users"] == users]
    for bot in dict.fromkeys(r["bot"] for r in rows):
        mine = [r for r in rows if r["bot"] == bot]
        at = [r for r in mine if r["users"] == users]
        line: Dict = {"p99_ms_runs": [r["all"]["p99_ms"] for r in at],
                      "runs_within_p99": sum(1 for r in at if r["all"]["p99_ms"] <= p99_ms),
                      "errors_by_users": {u: sum(r["errors"] for r in mine if r["users"] == u)
                                          for u in dict.fromkeys(r["users"] for r in mine)},
                      "p99_ms_by_users": {u: [r["all"]["p99_ms"] for r in mine if r["users"] == u]
                                          for u in dict.fromkeys(r["users"] for r in mine)}}
        if at and stock and bot != "stock":
            line["throughput_runs"] = [r["throughput_msg_s"] for r in at]
            line["stock_throughput_runs"] = stock
            line["ratio_throughput"] = round(statistics.median(line["throughput_runs"]) / statistics.median(stock), 2)
        report[bot] = line
    report["targets"] = {"users": users, "p99_ms": p99_ms, "ratio": ratio}
    return report


def print_burst_verdict(report: Dict) -> None:
    t = report["targets"]
    for bot, v in report.items():
        if bot == "targets":
            continue
        runs = len(v["p99_ms_runs"])
        print(f"\n{bot} (burst):")
        if runs:
            print(f"  p99 at {t['users']} users over each whole run {v['p99_ms_runs']} ms <= {t['p99_ms']:.0f}: "
                  f"{v['runs_within_p99']} of {runs} runs ({'met' if v['runs_within_p99'] == runs else 'MISSED'})")
        for users, p99s in v["p99_ms_by_users"].items():
            errors = v["errors_by_users"][users]
            print(f"  {users} users: p99 {p99s} ms, errors {errors} ({'none' if not errors else 'SOME'})")
        if "ratio_throughput" in v:
            r = v["ratio_throughput"]
            print(f"  throughput at {t['users']} users {v['throughput_runs']} msg/s vs stock {v['stock_throughput_runs']}: "
                  f"median {r:.2f}x >= {t['ratio']:.0f}x: {'met' if r >= t['ratio'] else 'MISSED'}")
