"""Rasa's MessageProcessor with our shortcuts: in-process actions, the parse cache, a
graph runner without dask and dialogue states computed once per event (rule_states.py).

Everything else (sessions, policies, slots, events, tracker store, locks) is Rasa's own code,
so a conversation's events are the same as with the stock processor.

Two copies Rasa makes on every action are left out where they change nothing: the tracker
copy (a replay of the whole session) that `_run_action` hands to an action so that the policy's
events can be dropped on a rejection, when the policy added no events and the action only
reads the tracker (ours in-process, `utter_…`, `action_listen`); and the deep copies of the
events made for a debug log line (structlog renders at the call, so nothing needs freezing).

One addition: a message whose id is already in its conversation is answered from the tracker,
not processed again. Behind nginx a message's id is the request's `X-Request-ID` (nginx's
`$request_id`, or the client's own); when the instance handling it dies mid-turn, nginx sends
the same request to another instance, and a client that got a retryable error sends it again.
If the first attempt had already stored its turn, the repeat gets that turn's answers (the bot
messages after the user message, as Rasa sent them) and nothing is stored twice. Checked under
the conversation's lock, on the tracker Rasa reads anyway (no extra query).
"""
from __future__ import annotations

import gc
import logging
import weakref
from contextvars import ContextVar
from typing import Any, Callable, Dict, List, Optional

import rasa.core.actions.action
from rasa.core.actions.action import ActionBotResponse, ActionListen, RemoteAction
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, OutputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.core.nlg import NaturalLanguageGenerator
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.processor import structlogger
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_EXTRACT_SLOTS
from rasa.shared.core.events import ActionExecutionRejected, BotUttered, Event, UserUttered
from rasa.shared.constants import UTTER_PREFIX
from rasa.shared.core.trackers import DialogueStateTracker

from bot.serving.graph_runner import SequentialGraphRunner
from bot.serving.loop_lag import start_monitor
from bot.serving import gc_pauses, native_threads
from bot.serving.inprocess_actions import InProcessAction, executor, inprocess_enabled
from bot.serving.parse_cache import ParseCache, cache_size
from bot.serving import patches
from bot.config import settings

logger = logging.getLogger(__name__)

REPEAT_WINDOW = 200
"""How many of a conversation's latest events are searched for a repeated message id."""
_checking: ContextVar[Optional[List[Optional[str]]]] = ContextVar("wallet_repeat_check", default=None)
_repeated: "weakref.WeakSet[UserMessage]" = weakref.WeakSet()


def was_repeated(message: UserMessage) -> bool:
    """Whether `message` was answered from the tracker as a repeat (so the caller, e.g. the
    hand-off relay, must not store it again either)."""
    return message in _repeated


class AlreadyAnswered(Exception):
    """The message was handled before (same message id): these were its answers."""

    def __init__(self, messages: List[Dict[str, Any]]) -> None:
        super().__init__("message handled before")
        self.messages = messages


def earlier_answers(tracker: DialogueStateTracker, message_id: Optional[str]) -> Optional[List[Dict[str, Any]]]:
    """The bot messages that followed the user message `message_id` (None: not in the tracker)."""
    if not message_id:
        return None
    events = list(tracker.events)[-REPEAT_WINDOW:]
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if isinstance(event, UserUttered) and event.message_id == message_id:
            answers = []
            for later in events[index + 1:]:
                if isinstance(later, UserUttered):
                    break
                if isinstance(later, BotUttered):
                    answers.append(later.message())
            return answers
    return None


async def send_again(output: OutputChannel, sender_id: str, messages: List[Dict[str, Any]]) -> None:
    for message in messages:
        await output.send_response(sender_id, dict(message))


class FastMessageProcessor(MessageProcessor):
    parse_cache: ParseCache
    domain_dict: Dict[str, Any]
    inprocess: bool

    @classmethod
    def adopt(cls, processor: MessageProcessor) -> "FastMessageProcessor":
        """The same processor (model, stores, endpoints), with our shortcuts."""
        fast = cls.__new__(cls)
        fast.__dict__.update(processor.__dict__)
        fast.parse_cache = ParseCache(cache_size())
        fast.domain_dict = processor.domain.as_dict()
        fast.inprocess = inprocess_enabled()
        if type(processor.graph_runner) is DaskGraphRunner:
            fast.graph_runner = SequentialGraphRunner.adopt(processor.graph_runner)
        return fast

    async def handle_message(self, message: UserMessage) -> Optional[List[Dict[str, Any]]]:
        """Rasa's, except that a repeated message id is answered from the tracker (see above)."""
        token = _checking.set([message.message_id])
        try:
            return await super().handle_message(message)
        except AlreadyAnswered as done:
            _repeated.add(message)
            logger.info("message %s of %s was handled before: its answers sent again", message.message_id,
                        message.sender_id)
            await send_again(message.output_channel, message.sender_id, done.messages)
            if isinstance(message.output_channel, CollectingOutputChannel):
                return message.output_channel.messages
            return None
        finally:
            _checking.reset(token)

    async def fetch_tracker_and_update_session(self, sender_id: str, output_channel: Optional[OutputChannel] = None,
                                               metadata: Optional[Dict] = None) -> DialogueStateTracker:
        tracker = await super().fetch_tracker_and_update_session(sender_id, output_channel, metadata)
        pending = _checking.get()
        if pending and pending[0]:  # the first read of this message's turn (handle_message)
            message_id, pending[0] = pending[0], None
            earlier = earlier_answers(tracker, message_id)
            if earlier is not None:
                raise AlreadyAnswered(earlier)
        return tracker

    def _inprocess(self, action):
        name = action.name() if action is not None else None
        if self.inprocess and isinstance(action, RemoteAction) and name in executor().actions:
            return InProcessAction(name, self.domain_dict)
        return action

    @staticmethod
    def _reads_only(action: Any) -> bool:
        """Actions that only read the tracker they are given (no copy needed to protect it)."""
        return type(action) in (InProcessAction, ActionBotResponse, ActionListen)

    async def _run_action(self, action: rasa.core.actions.action.Action, tracker: DialogueStateTracker,
                          output_channel: OutputChannel, nlg: NaturalLanguageGenerator,
                          prediction: PolicyPrediction) -> bool:
        """Rasa 3.6.21's `_run_action`; the temporary tracker is the tracker itself when the
        policy added no events and the action only reads it."""
        try:
            if not prediction.events and self._reads_only(action):
                temporary_tracker = tracker
            else:
                temporary_tracker = tracker.copy()
                temporary_tracker.update_with_events(prediction.events, self.domain)
            events = await action.run(output_channel, nlg, temporary_tracker, self.domain)
        except rasa.core.actions.action.ActionExecutionRejection:
            events = [ActionExecutionRejected(action.name(), prediction.policy_name, prediction.max_confidence)]
            tracker.update(events[0])
            return self.should_predict_another_action(action.name())
        except Exception:
            logger.exception(f"Encountered an exception while running action '{action.name()}'."
                             "Bot will continue, but the actions events are lost. "
                             "Please check the logs of your action server for more information.")
            events = []
        self._log_action_on_tracker(tracker, action, events, prediction)
        if any(isinstance(e, UserUttered) for e in events):
            logger.debug(f"A `UserUttered` event was returned by executing action '{action.name()}'. "
                         f"This will run the default action '{ACTION_EXTRACT_SLOTS}'.")
            tracker = await self.run_action_extract_slots(output_channel, tracker)
        if action.name() != ACTION_LISTEN_NAME and not action.name().startswith(UTTER_PREFIX):
            self._log_slots(tracker)
        await self.execute_side_effects(events, tracker, output_channel)
        return self.should_predict_another_action(action.name())

    def _log_action_on_tracker(self, tracker: DialogueStateTracker, action: rasa.core.actions.action.Action,
                               events: Optional[List[Event]], prediction: PolicyPrediction) -> None:
        """Rasa 3.6.21's, without deep copies of the events for its debug log lines."""
        if events is None:
            events = []
        if not any(isinstance(event, ActionExecutionRejected) for event in events):
            structlogger.debug("processor.actions.policy_prediction", prediction_events=prediction.events)
            tracker.update_with_events(prediction.events, self.domain)
            tracker.update(action.event_for_successful_execution(prediction))
        structlogger.debug("processor.actions.log", action_name=action.name(), rasa_events=events)
        tracker.update_with_events(events, self.domain)

    def _get_action(self, action_name: str):
        return self._inprocess(super()._get_action(action_name))

    def predict_next_with_tracker_if_should(self, tracker: DialogueStateTracker):
        action, prediction = super().predict_next_with_tracker_if_should(tracker)
        return self._inprocess(action), prediction

    async def parse_message(
        self,
        message: UserMessage,
        tracker: Optional[DialogueStateTracker] = None,
        only_output_properties: bool = True,
    ) -> Dict[str, Any]:
        text = message.text or ""
        if not (only_output_properties and ParseCache.cacheable(text)):
            return await super().parse_message(message, tracker, only_output_properties)
        cached = self.parse_cache.get(text)
        if cached is not None:
            return cached
        parse_data = await super().parse_message(message, tracker, only_output_properties)
        self.parse_cache.put(text, parse_data)
        return parse_data


def fast_processor_enabled() -> bool:
    """WALLET_PROCESSOR=stock runs Rasa's own processor (for comparisons and bisecting)."""
    return settings().fast_processor


def ensure_fast_processor(agent: Optional[Agent]) -> None:
    """Give a (newly) loaded model our processor; cheap when it already has it."""
    if not (patches.installed() and fast_processor_enabled()) or agent is None or agent.processor is None or isinstance(agent.processor, FastMessageProcessor):
        return
    agent.processor = FastMessageProcessor.adopt(agent.processor)
    # The loaded model (TensorFlow, spaCy, jieba's dictionary) is millions of long-lived
    # objects; without this every full garbage collection walks them all mid-request.
    gc.collect()
    gc.freeze()


async def warm_up(agent: Optional[Agent], prepare: Optional[Callable[[], Any]] = None) -> None:
    """What each server process would otherwise do on its first messages, done before it takes
    traffic: import and register our actions, let `prepare` open the hand-off database and
    read the FAQ, and run the NLU pipeline once. With several workers the ones that had no
    warm-up request stalled all their first users for about a second."""
    if inprocess_enabled():  # else the action server runs them: nothing to register here
        executor()
    if prepare is not None:
        prepare()
    if agent is not None and agent.processor is not None:
        await agent.processor.parse_message(UserMessage("你好"), None, only_output_properties=False)


def install_on_start(blueprint, prepare: Optional[Callable[[], Any]] = None) -> None:
    """Swap in our processor as soon as the server has loaded the model (also for calls of
    Rasa's HTTP API that come before any chat message), give it one BLAS thread
    (native_threads.py), warm it up, start measuring its event loop's lag (loop_lag.py) and
    move its full garbage collections to quiet moments (gc_pauses.py)."""

    @blueprint.listener("after_server_start")
    async def _fast_processor(app, _loop) -> None:
        start_monitor()
        native_threads.limit()
        agent = getattr(app.ctx, "agent", None)
        ensure_fast_processor(agent)
        try:
            await warm_up(agent, prepare)
        except Exception:  # a cold first message is slower, not wrong
            logger.exception("warm-up failed; the first messages will be slower")
        gc_pauses.start(settings().gc_schedule)  # after the warm-up's garbage, before any user
