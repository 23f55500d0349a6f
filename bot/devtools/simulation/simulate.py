"""A simulated day of traffic, for demos of the dashboard and for its tests.

    .venv/bin/python -m bot simulate --tracker-db sqlite:///tmp/t.db --handoff-db sqlite:///tmp/h.db
        [--day 2026-11-27] [--conversations 300] [--seed 7] [--model models/wallet.tar.gz]

Every message is a real turn: the trained model is loaded in this process (rasa Agent with our
tracker store and in-process actions) and each message goes through the same channel path as
the REST, socket.io, Telegram and WeChat channels (bot.channels.handoff_flow.handle_message:
masking, hand-off relay, ratings). Simulated users react to what the assistant answers (是/否,
buttons, rephrasing, asking for a person); a simulated support team claims, answers and closes
tickets the way the console does, and users rate them.

Timestamps: the turns run in real time (a few seconds for the whole day), so afterwards each
conversation's rows are moved onto the simulated day. Before every step (a user message, a
claim, a close) the conversation records the pair (real time now, simulated time); every row
the step wrote — tracker events (column and JSON `timestamp`), its ticket's created/claimed/
closed times, ticket messages and audit entries — is then shifted by its step's offset. Nothing
in Rasa is patched. Ticket numbers keep the real date they were created on. Steps that would lie
in the future (claiming after now) are not taken: such tickets stay open, as they would be.

Users: sim_users.py (their words: sim_scripts.py); moving the rows: sim_clock.py.
The support agents used are created when missing ("模拟坐席·…", random passwords, inactive: they
cannot sign in).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional, Tuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.devtools.simulation import scripts as S
from bot.insights.period import local_zone
from bot.devtools.simulation.clock import rewrite_times
from bot.devtools.simulation.users import User
from bot.insights.sources import sqlite_file
from bot.config import ROOT

logger = logging.getLogger(__name__)
DEFAULT_MODEL = ROOT / "models" / "wallet.tar.gz"
AGENT_NAMES = ("模拟坐席·小林", "模拟坐席·小周", "模拟坐席·小陈")
PUSH_CHANNELS = ("socketio", "telegram", "wechat")


@dataclass
class SimulationResult:
    day: str
    conversations: int = 0
    messages: int = 0
    tickets: int = 0
    claimed: int = 0
    closed: int = 0
    rated: int = 0
    cancelled: int = 0
    rate_limited: int = 0
    seconds: float = 0.0


class Assistant:
    """The loaded model behind the channels' message path."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.app = SimpleNamespace(ctx=SimpleNamespace(agent=agent))

    async def say(self, sender: str, channel: str, text: str) -> List[Dict[str, Any]]:
        from rasa.core.channels.channel import CollectingOutputChannel

        from bot.channels.handoff_flow import handle_message
        from bot.security.rate_limit import UNLIMITED

        output = CollectingOutputChannel()
        # a day's hand-offs in a few seconds: the per-minute ticket limits would refuse most of them
        extra = await handle_message(self.app, self.agent.handle_message, text, sender, channel, output,
                                     caller=UNLIMITED)
        return list(output.messages) + list(extra)

    async def append(self, sender: str, events: List[Any]) -> None:
        from bot.channels.handoff_flow import append_events

        await append_events(self.app, sender, events)


class Simulation:
    def __init__(self, assistant: Assistant, handoff_url: str, rng: random.Random, tz: ZoneInfo,
                 now: datetime) -> None:
        from bot.faq.store import shared_store
        from bot.handoff.store import ticket_store
        from bot.handoff.hours import support_hours

        self.assistant, self.rng, self.tz, self.now = assistant, rng, tz, now
        self.store = ticket_store(handoff_url)
        self.faq = shared_store().get()
        self.hours = support_hours()
        self.agents = support_agents(handoff_url)
        self.result = SimulationResult(day="")
        self.tickets_seen: set = set()

    async def conversation(self, user: User, scenario: str) -> None:
        from bot.security.rate_limit import RateLimited

        try:
            await getattr(user, scenario)()
            if user.ticket:
                await self.support(user)
        except RateLimited:
            self.result.rate_limited += 1

    def _wait_seconds(self, created: datetime) -> float:
        opening = self.hours.next_opening(created)
        if opening is not None:  # after hours: picked up once people are back
            return (opening - created).total_seconds() + self.rng.uniform(60, 2400)
        busy = 2.5 if created.astimezone(self.tz).hour in (10, 11, 19, 20, 21) else 1.0
        return self.rng.uniform(30, 420) * busy

    def _handling_seconds(self) -> float:
        return self.rng.uniform(1800, 3600) if self.rng.random() < 0.05 else self.rng.uniform(150, 1200)

    async def support(self, user: User) -> None:
        """The support team's side of a ticket: claim, answer, close; the user's rating."""
        from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationResumed

        from bot.handoff.relay import rating_buttons

        number, created = user.ticket["number"], user.t
        if user.sent <= 5 and self.rng.random() < 0.35:
            await user.say(self.rng.choice(S.WAITING))
        claim_at = created + timedelta(seconds=self._wait_seconds(created))
        if (claim_at - created).total_seconds() > 180 and self.rng.random() < 0.1:
            user.t = max(user.t, created + timedelta(seconds=self.rng.uniform(90, 170)))
            await user.say(self.rng.choice(S.CANCEL))
            self.result.cancelled += 1
            return
        if claim_at > self.now:
            return  # nobody has picked it up yet
        agent = self.rng.choice(self.agents)
        user.clock.mark(max(claim_at, user.t))
        self.store.claim(number, agent["id"])
        self.store.audit(agent["name"], "claim", number)
        self.result.claimed += 1
        push = user.channel in PUSH_CHANNELS
        reply_at = max(claim_at, user.t) + timedelta(seconds=self.rng.uniform(20, 90))
        user.clock.mark(reply_at)
        text = self.rng.choice(S.AGENT_REPLIES)
        self.store.add_message(number, "agent", text, agent_name=agent["name"], to_deliver=not push)
        await self.assistant.append(user.sender, [BotUttered(
            f"【人工客服 {agent['name']}】{text}" if push else text,
            metadata={"from": "agent", "agent": agent["name"], "ticket": number})])
        self.store.audit(agent["name"], "reply", number)
        user.t = reply_at + timedelta(seconds=self.rng.uniform(30, 120))
        await user.say(f"订单号是 2026{self.rng.randint(10**9, 10**10 - 1)}")
        close_at = max(claim_at + timedelta(seconds=self._handling_seconds()), user.t)
        if close_at > self.now:
            return  # still being handled
        user.clock.mark(close_at)
        self.store.close(number, agent["id"], self.rng.choice(S.CLOSE_NOTES))
        closing, rating = self.faq.message("agent_closed"), self.faq.message("rating_ask")
        self.store.add_message(number, "system", closing, to_deliver=not push)
        self.store.add_message(number, "system", rating, to_deliver=not push, buttons=rating_buttons())
        await self.assistant.append(user.sender, [
            ConversationResumed(), BotUttered(closing, metadata={"from": "system"}),
            BotUttered(rating, data={"buttons": rating_buttons()}, metadata={"from": "system"}),
            ActionExecuted("action_listen")])
        self.store.audit(agent["name"], "close", number)
        self.result.closed += 1
        user.t = close_at + timedelta(seconds=self.rng.uniform(20, 120))
        user.ticket = None
        if self.rng.random() < 0.8:
            score = self.rng.choices(list(S.RATING_WEIGHTS), weights=list(S.RATING_WEIGHTS.values()))[0]
            await user.say(self.rng.choice(S.RATING_TEXTS[score]))
            self.result.rated += 1
            if user.sent <= 5 and self.rng.random() < 0.2 and not user.ticket:
                await user.ask(user.question()[1], satisfied=True)


def support_agents(handoff_url: str) -> List[Dict[str, Any]]:
    """The simulated support team, created when missing; inactive, so nobody can sign in as them."""
    from bot.handoff.agents import AgentStore
    from bot.db.engine import engine_for
    from bot.db.models import Agent

    store = AgentStore(handoff_url)
    agents = [store.by_name(name) or store.add(name, secrets.token_urlsafe(24)) for name in AGENT_NAMES]
    with engine_for(handoff_url).begin() as conn:
        conn.execute(sa.update(Agent.__table__).where(Agent.__table__.c.name.in_(AGENT_NAMES)).values(active=False))
    return agents


def start_times(day: date, count: int, rng: random.Random, tz: ZoneInfo, now: datetime) -> List[datetime]:
    """Conversation starts over the local day following HOURLY_PROFILE (none in the future)."""
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    hours = rng.choices(range(24), weights=S.HOURLY_PROFILE, k=count)
    starts = [(midnight + timedelta(hours=h, seconds=rng.uniform(0, 3600))).astimezone(timezone.utc) for h in hours]
    return sorted(t for t in starts if t < now - timedelta(minutes=5))


@contextmanager
def _environment(handoff_url: str) -> Iterator[None]:
    """Actions in this process, writing tickets to `handoff_url`; restored afterwards."""
    from bot.config import reload_settings

    keys = ("WALLET_DB_URL", "WALLET_ACTIONS", "WALLET_PROCESSOR")
    before = {k: os.environ.get(k) for k in keys}
    os.environ.update(WALLET_DB_URL=handoff_url, WALLET_ACTIONS="inprocess", WALLET_PROCESSOR="fast")
    reload_settings()
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reload_settings()


def load_assistant(model: Path, tracker_url: str) -> Tuple[Assistant, sa.engine.Engine]:
    from bot.serving.early_imports import import_skops
    from bot.serving.patches import install

    import_skops()  # before TensorFlow: see early_imports.py
    install()
    from rasa.core.agent import Agent
    from rasa.core.lock_store import InMemoryLockStore

    from rasa.utils.log_utils import configure_structlog

    from bot.serving.processor import ensure_fast_processor
    from bot.serving.tracker_store import CachedSQLTrackerStore

    configure_structlog(max(logging.WARNING, logging.getLogger().level))  # Rasa's debug lines print user texts
    file = sqlite_file(tracker_url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    store = CachedSQLTrackerStore(dialect=sa.engine.make_url(tracker_url).get_backend_name(), host=tracker_url)
    agent = Agent.load(str(model), tracker_store=store, lock_store=InMemoryLockStore())
    ensure_fast_processor(agent)
    return Assistant(agent), store.engine


def simulate_day(tracker_url: str, handoff_url: str, day: Optional[date] = None, conversations: int = 300,
                 seed: int = 7, model: Path = DEFAULT_MODEL) -> SimulationResult:
    """Drive a day of conversations through the real model; returns what happened."""
    if not Path(model).exists():
        raise FileNotFoundError(f"{model} is missing: run `make train`")
    tz = local_zone()
    now = datetime.now(timezone.utc)
    day = day or (now.astimezone(tz).date() - timedelta(days=1))
    rng = random.Random(seed)
    began = time.monotonic()
    with _environment(handoff_url):
        from bot.db.engine import engine_for

        assistant, tracker = load_assistant(Path(model), tracker_url)
        sim = Simulation(assistant, handoff_url, rng, tz, now)
        sim.result.day = day.isoformat()
        run = secrets.token_hex(3)
        starts = start_times(day, conversations, rng, tz, now)
        users = [User(sim, f"sim-{day:%Y%m%d}-{run}-{i:04d}",
                      rng.choices(list(S.CHANNEL_WEIGHTS), weights=list(S.CHANNEL_WEIGHTS.values()))[0], start)
                 for i, start in enumerate(starts)]
        scenarios = rng.choices(list(S.SCENARIO_WEIGHTS), weights=list(S.SCENARIO_WEIGHTS.values()), k=len(users))

        async def drive() -> None:
            for user, scenario in zip(users, scenarios):
                await sim.conversation(user, scenario)

        asyncio.run(drive())
        handoff = engine_for(handoff_url)
        for user in users:
            rewrite_times(tracker, handoff, user.sender, user.clock)
    sim.result.conversations = len(users)
    sim.result.tickets = len(sim.tickets_seen)
    sim.result.seconds = round(time.monotonic() - began, 1)
    return sim.result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot simulate",
                                     description="a simulated day of conversations through the real model")
    parser.add_argument("--tracker-db", required=True, help="tracker store URL to write to (e.g. sqlite:///var/demo_tracker.db)")
    parser.add_argument("--handoff-db", required=True, help="hand-off database URL to write to")
    parser.add_argument("--day", help="local date to simulate (default: yesterday)")
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    args = parser.parse_args(argv)
    if not 1 <= args.conversations <= 5000:
        print("error: --conversations must be 1–5000", file=sys.stderr)
        return 2
    try:
        day = date.fromisoformat(args.day) if args.day else None
    except ValueError:
        print(f"error: --day must be a date like 2026-11-27, not {args.day!r}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    for name in ("rasa", "tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        result = simulate_day(args.tracker_db, args.handoff_db, day, args.conversations, args.seed, Path(args.model))
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(result), ensure_ascii=False))
    return 0

