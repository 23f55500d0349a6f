"""RulePolicy's per-prediction work done once: dialogue states per event, rules by their length.

Before every prediction RulePolicy asks the domain for the states of the whole conversation so
far (`Domain.states_for_tracker_history`), and Rasa answers by replaying every event from the
start of the session into a fresh tracker. A turn predicts two or three times, so each turn
replayed the conversation two or three times over: in our py-spy profile (50 users) that replay
was an eighth of the server's CPU, and it grows with the length of the conversation.

The state before an action depends only on the events before it, so they are kept with the
conversation's tracker (together with the replayed tracker where the replay stopped) and only
the events added since are replayed. The cached part is used only while the tracker's applied
events still start with exactly the same event objects; a rewind, a restart, a new session or a
copied tracker starts over the stock way. Callers get copies: Rasa's featurizers edit states.

Matching rules (`RulePolicy._get_possible_keys`) walked the whole conversation backwards and
re-checked every rule at every state, although a rule of k states is decided by the last k
states (Rasa's own check answers "applicable" for every older one). It now looks only at the
last states, as many as the longest rule has, and remembers the answer for those states: users
walk the same few paths, so the same recent states come back all the time.
`WALLET_INCREMENTAL_STATES=0` turns both off.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import PREVIOUS_ACTION
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import ActionExecuted, Event
from rasa.shared.core.trackers import DialogueStateTracker
from bot.config import settings

_MEMO_ATTRIBUTE = "_wallet_states_memo"
_stock = Domain.states_for_tracker_history
_stock_possible_keys = RulePolicy._get_possible_keys


@dataclass
class _Replay:
    """Where the replay of one conversation stopped, for one combination of arguments."""

    tracker: DialogueStateTracker
    events: List[Event] = field(default_factory=list)  # the applied events replayed so far
    states: List[State] = field(default_factory=list)  # the state before each replayed action
    last_ml_action_sub_state: Optional[Dict[str, Any]] = None
    turn_was_hidden: bool = False


def enabled() -> bool:
    return settings().incremental_states


def _copy(state: State) -> State:
    return {key: dict(sub) if isinstance(sub, dict) else sub for key, sub in state.items()}


def _key(domain: Domain, omit_unset_slots: bool, ignore_rule_only_turns: bool,
         rule_only_data: Optional[Dict[str, Any]]) -> Tuple:
    rule_only = repr(sorted((rule_only_data or {}).items())) if ignore_rule_only_turns else ""
    return id(domain), omit_unset_slots, ignore_rule_only_turns, rule_only


def _step(domain: Domain, replay: _Replay, states: List[State], tracker: DialogueStateTracker,
          hide_rule_turn: bool, omit_unset_slots: bool, ignore_rule_only_turns: bool,
          rule_only_data: Optional[Dict[str, Any]]) -> None:
    """One iteration of Rasa 3.6's loop in `Domain.states_for_tracker_history`, unchanged."""
    if ignore_rule_only_turns:
        if not replay.turn_was_hidden:
            replay.last_ml_action_sub_state = domain._get_prev_action_sub_state(tracker)
        if not tracker.followup_action and not tracker.latest_action_name == tracker.active_loop_name:
            replay.turn_was_hidden = hide_rule_turn
        if replay.turn_was_hidden:
            return
    state = domain.get_active_state(tracker, omit_unset_slots=omit_unset_slots)
    if ignore_rule_only_turns:
        domain._remove_rule_only_features(state, rule_only_data)
        if states:
            domain._substitute_rule_only_user_input(state, states[-1])
        if replay.last_ml_action_sub_state:
            state[PREVIOUS_ACTION] = replay.last_ml_action_sub_state
    states.append(domain._clean_state(state))


def states_for_tracker_history(
    self: Domain,
    tracker: DialogueStateTracker,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[str, Any]] = None,
) -> List[State]:
    args = (omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    memos: Dict[Tuple, _Replay] = tracker.__dict__.setdefault(_MEMO_ATTRIBUTE, {})
    key = _key(self, *args)
    applied = tracker.applied_events()
    replay = memos.get(key)
    if replay is None or len(replay.events) > len(applied) or any(
            a is not b for a, b in zip(replay.events, applied)):
        replay = memos[key] = _Replay(tracker.init_copy())
    for event in applied[len(replay.events):]:
        if isinstance(event, ActionExecuted):
            _step(self, replay, replay.states, replay.tracker, event.hide_rule_turn, *args)
        replay.tracker.update(event)
        replay.events.append(event)
    # the state after the last event is not kept: the next event changes it
    states = [_copy(s) for s in replay.states]
    final = _Replay(replay.tracker, last_ml_action_sub_state=replay.last_ml_action_sub_state,
                    turn_was_hidden=replay.turn_was_hidden)
    _step(self, final, states, replay.tracker, False, *args)
    return states


def _longest_rule(policy: RulePolicy, lookup: Dict[str, str]) -> int:
    known = policy.__dict__.setdefault("_wallet_longest_rule", {})
    entry = known.get(id(lookup))
    if entry is None or entry[0] is not lookup or entry[1] != len(lookup):
        longest = max((len(policy._rule_key_to_state(key)) for key in lookup), default=0)
        entry = known[id(lookup)] = (lookup, len(lookup), longest)
    return entry[2]


MATCH_MEMO_SIZE = 20_000


def _frozen(state: State) -> Tuple:
    return tuple(sorted((kind, tuple(sorted(sub.items())) if isinstance(sub, dict) else sub)
                        for kind, sub in state.items()))


def get_possible_keys(self: RulePolicy, lookup: Dict[str, str], states: List[State]):
    """Rasa 3.6's `_get_possible_keys` over the states a rule can still tell apart, memoised."""
    if not lookup:
        return set()
    recent = states[-_longest_rule(self, lookup):]
    memo: "OrderedDict[Tuple, frozenset]" = self.__dict__.setdefault("_wallet_rule_matches", OrderedDict())
    try:
        key = (id(lookup), len(lookup), tuple(_frozen(s) for s in recent))
        hash(key)
    except TypeError:  # an unhashable value in a state: just compute
        key = None
    if key is not None and key in memo:
        memo.move_to_end(key)
        return set(memo[key])
    possible_keys = set(lookup.keys())
    for i, state in enumerate(reversed(recent)):
        possible_keys = {rule for rule in possible_keys if self._is_rule_applicable(rule, i, state)}
    if key is not None:
        memo[key] = frozenset(possible_keys)
        while len(memo) > MATCH_MEMO_SIZE:
            memo.popitem(last=False)
    return possible_keys


def install() -> None:
    """Replace Rasa's methods for this process (the server: training is left alone)."""
    if enabled() and Domain.states_for_tracker_history is _stock:
        Domain.states_for_tracker_history = states_for_tracker_history
        RulePolicy._get_possible_keys = get_possible_keys


def uninstall() -> None:
    Domain.states_for_tracker_history = _stock
    RulePolicy._get_possible_keys = _stock_possible_keys
