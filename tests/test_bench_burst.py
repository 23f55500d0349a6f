"""The peak-day burst of `bot bench` (bot/devtools/bench/burst.py) against a tiny fake REST
server on loopback: everyone starts at once, one message at a time, a new conversation every N
messages, the opening second reported apart from the steady state, failures counted."""
import asyncio
import threading
import time

import pytest
from aiohttp import web

from bot.devtools.bench.burst import (OPENING_SECONDS, BurstResult, Request, burst_verdict, format_rows,
                                      our_burst_conversation, percentile, phase_summary, run_burst,
                                      slowest_lines, stock_burst_conversation, user_plan)


class FakeRest:
    """Answers like Rasa's REST webhook; slow while `slow_until`, 500 for the text 'fail'."""

    def __init__(self, delay: float = 0.0, slow_delay: float = 0.0, slow_for: float = 0.0) -> None:
        self.delay, self.slow_delay, self.slow_for = delay, slow_delay, slow_for
        self.seen = []  # (arrival, sender, message)
        self.in_flight = {}  # sender -> requests being answered
        self.overlaps = 0
        self.started = None

    async def webhook(self, request):
        body = await request.json()
        now = time.perf_counter()
        self.started = self.started or now
        sender = body["sender"]
        self.seen.append((now, sender, body["message"]))
        self.in_flight[sender] = self.in_flight.get(sender, 0) + 1
        if self.in_flight[sender] > 1:
            self.overlaps += 1
        try:
            slow = now - self.started < self.slow_for
            await asyncio.sleep(self.slow_delay if slow else self.delay)
            if body["message"] == "fail":
                return web.json_response({"error": "boom"}, status=500)
            if body["message"] == "yes":  # stock's bot answers some turns with nothing
                return web.json_response([])
            return web.json_response([{"recipient_id": sender, "text": "好的"}])
        finally:
            self.in_flight[sender] -= 1


@pytest.fixture
def fake_server():
    """Start a FakeRest (configured by the test) on a free loopback port in its own thread."""
    started = []

    def start(fake: FakeRest) -> str:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", fake.webhook)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        started.append((loop, runner, thread))
        return f"http://127.0.0.1:{port}/webhooks/rest/webhook"

    yield start
    for loop, runner, thread in started:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_every_user_starts_at_once_and_changes_conversation_every_n_messages(fake_server):
    fake = FakeRest(delay=0.002)
    url = fake_server(fake)
    result = asyncio.run(run_burst(url, users=8, messages=10, per_conversation=4))
    assert len(result.requests) == 80 and result.errors == 0
    firsts = [r for r in result.requests if r.index == 0]
    assert len(firsts) == 8 and max(r.sent_at for r in firsts) < 0.2  # released together
    for user in range(8):
        mine = sorted((r for r in result.requests if r.user == user), key=lambda r: r.index)
        assert [r.index for r in mine] == list(range(10))
        conversations = [r.conversation for r in mine]
        assert len(set(conversations[:4])) == len(set(conversations[4:8])) == len(set(conversations[8:])) == 1
        assert len(set(conversations)) == 3  # 4 + 4 + 2
        for before, after in zip(mine, mine[1:]):  # one at a time: sent after the last answer
            assert after.sent_at >= before.sent_at + before.latency - 1e-6
    assert fake.overlaps == 0
    assert len({sender for _, sender, _ in fake.seen}) == 24  # nobody shares a conversation


def test_the_opening_second_is_reported_apart_from_the_steady_state(fake_server):
    fake = FakeRest(delay=0.03, slow_delay=0.3, slow_for=0.2)  # a stall while everyone opens
    url = fake_server(fake)
    summary = asyncio.run(run_burst(url, users=10, messages=40, per_conversation=8)).summary()
    assert summary["opening"]["messages"] + summary["steady"]["messages"] == summary["messages"] == 400
    assert summary["steady"]["messages"] > 100
    assert summary["opening"]["p99_ms"] >= 250 > summary["steady"]["p99_ms"]
    assert summary["all"]["max_ms"] == summary["opening"]["max_ms"] >= 250
    slowest = summary["all"]["slowest"]
    assert len(slowest) == 5 and all(s["sent_at_s"] < OPENING_SECONDS for s in slowest)
    assert slowest == sorted(slowest, key=lambda s: -s["latency_ms"])
    assert summary["throughput_msg_s"] > 0
    lines = format_rows([{**summary, "bot": "fake", "run": 1}])
    assert len(lines) == 4 and "opening" in lines[2] and "steady" in lines[3]
    assert "sent t=" in slowest_lines({**summary}, "opening")[0]


def test_failed_answers_are_errors_not_latencies(fake_server):
    fake = FakeRest()
    url = fake_server(fake)

    def plan(_rng, length):
        return ["你好", "fail", "是", "好的"][:length]

    import bot.devtools.bench.burst as burst

    original = burst.our_burst_conversation
    burst.our_burst_conversation = plan
    try:
        result = asyncio.run(run_burst(url, users=3, messages=8, per_conversation=4))
    finally:
        burst.our_burst_conversation = original
    summary = result.summary()
    assert summary["errors"] == 6 and summary["messages"] == 24
    failed = [r for r in result.requests if not r.ok]
    assert all(r.text == "fail" and r.latency != r.latency for r in failed)  # NaN, left out
    assert summary["all"]["errors"] == 6
    assert all(s["text"] != "fail" for s in summary["all"]["slowest"])


def test_an_empty_answer_counts_as_answered_for_stock_and_as_an_error_for_ours(fake_server):
    """Stock `rasa init` answers "yes" outside its stories with `[]` (a valid 200); ours must
    always say something. Both load generators use the same rule (load.outcome)."""
    from bot.devtools.bench.load import run_load

    url = fake_server(FakeRest())
    result = asyncio.run(run_burst(url, users=8, messages=5, per_conversation=5, kind="stock"))
    stock, yeses = result.summary(), [r for r in result.requests if r.text == "yes"]
    assert stock["messages"] == 40 and stock["errors"] == 0 and stock["empty_answers"] == len(yeses) > 0
    assert all(r.ok and r.empty and r.latency >= 0 for r in yeses)
    ours = asyncio.run(run_load(url, 2, 0.3, lambda: ["你好", "yes"]))
    assert ours.errors > 0 and ours.empty == 0 and ours.summary()["error_rate"] == pytest.approx(0.5, abs=0.05)
    theirs = asyncio.run(run_load(url, 2, 0.3, lambda: ["hi", "yes"], empty_ok=True))
    # every "yes" is empty; each of the 2 users may be stopped by the deadline between "hi" and "yes"
    assert theirs.errors == 0 and theirs.summary()["empty_answers"] == theirs.empty > 0
    assert len(theirs.latencies) // 2 - 2 <= theirs.empty <= len(theirs.latencies) // 2 + 1


def test_only_this_machine_is_benchmarked():
    with pytest.raises(ValueError):
        asyncio.run(run_burst("http://example.com/webhooks/rest/webhook", users=1))


def test_scripts_fit_the_rate_limit_and_hand_off_sometimes():
    import random

    rng = random.Random(3)
    plans = [user_plan(our_burst_conversation, rng, 20, 8) for _ in range(50)]
    assert all(len(p) == 20 for p in plans)
    for plan in plans:
        sizes = {}
        for conversation, _ in plan:
            sizes[conversation] = sizes.get(conversation, 0) + 1
        assert list(sizes.values()) == [8, 8, 4]  # under the per-conversation burst of 10
    conversations = [[t for c, t in plan if c == cid] for plan in plans for cid in dict.fromkeys(c for c, _ in plan)]
    assert all(c[0] in ("你好", "在吗", "您好") for c in conversations)
    handed_off = sum(1 for c in conversations if c[-1] in ("今天天气怎么样", "推荐一只基金", "怎么提高信用额度"))
    assert 0 < handed_off < len(conversations) / 2
    assert stock_burst_conversation(rng, 8)[:1][0] in ("hi", "hello", "hey there")


def _row(bot, users, p99, throughput, errors=0, run=1):
    phase = {"p99_ms": p99, "messages": 10, "errors": errors, "p50_ms": 1, "p95_ms": 1, "max_ms": p99, "slowest": []}
    return {"bot": bot, "users": users, "run": run, "throughput_msg_s": throughput, "errors": errors,
            "all": phase, "opening": phase, "steady": phase}


def test_the_verdict_counts_runs_and_compares_with_stock_in_the_same_run():
    rows = [_row("ours", 50, 420, 300, run=1), _row("ours", 50, 510, 280, run=2), _row("ours", 50, 480, 310, run=3),
            _row("ours", 200, 1900, 290, errors=0), _row("stock", 50, 2500, 28), _row("stock", 50, 2600, 30, run=2),
            _row("stock", 50, 2400, 29, run=3), _row("stock", 200, 9000, 25, errors=3)]
    report = burst_verdict(rows, users=50, p99_ms=500, ratio=10)
    assert report["ours"]["p99_ms_runs"] == [420, 510, 480]
    assert report["ours"]["runs_within_p99"] == 2
    assert report["ours"]["ratio_throughput"] == round(300 / 29, 2)
    assert report["ours"]["errors_by_users"] == {50: 0, 200: 0}
    assert report["stock"]["errors_by_users"][200] == 3 and "ratio_throughput" not in report["stock"]


def test_percentiles_and_phases_by_hand():
    assert percentile([], 99) != percentile([], 99)  # NaN
    assert percentile([1, 2, 3, 4], 50) in (2, 3) and percentile([5], 99) == 5
    requests = [Request(0, i, "c", "x", sent_at=0.1 * i, latency=0.01 * (i + 1), ok=True) for i in range(20)]
    result = BurstResult(users=1, requests=requests, seconds=2.2)
    assert len(result.phase("opening")) == 10 and len(result.phase("steady")) == 10
    assert phase_summary(result.phase("steady"))["max_ms"] == 200.0
