"""`DialogueStateTracker.applied_events`, kept up to date as events arrive instead of recomputed.

Rasa recomputes the applied events (the session's events without the reverted ones) from the
whole tracker each time it is asked, several times per turn (the dialogue states, the session
check, the verbosity of the state sent to actions), each time with an `isinstance` check of every
event against abstract classes: ~8 % of a server's time under load, growing with the session.

Here each tracker remembers how many of its events it has applied and the result. When only
events that Rasa's loop would simply append have arrived since (no restart, session start,
rewind, or active-loop event, and no execution of an action that was an active loop), the result
is the remembered list plus those events; anything else is computed Rasa's way. The tracker's
events are only ever appended to (a rewind is an event too), and the remembered count is
checked against the identity of its last event, so a tracker whose events were replaced is
recomputed. Equivalence with Rasa's method: tests/test_applied_events.py.
"""
from __future__ import annotations

from itertools import islice
from typing import Any, List, Tuple

from rasa.shared.core.events import (ActionExecuted, ActionReverted, ActiveLoop, Restarted, SessionStarted,
                                     UserUtteranceReverted)
from rasa.shared.core.trackers import DialogueStateTracker

_MEMO = "_wallet_applied_events"
_RESETS = (Restarted, SessionStarted, ActionReverted, UserUtteranceReverted, ActiveLoop)
_stock = DialogueStateTracker.applied_events


def applied_events(self: DialogueStateTracker) -> List[Any]:
    events = self.events
    count = len(events)
    memo: Tuple[int, Any, List[Any], frozenset] = self.__dict__.get(_MEMO)
    if memo is not None and count >= memo[0] and (memo[0] == 0 or events[memo[0] - 1] is memo[1]):
        seen, _, applied, loops = memo
        if count == seen:
            return list(applied)
        fresh = list(islice(events, seen, count))
        if not any(isinstance(e, _RESETS) or loops and isinstance(e, ActionExecuted) and e.action_name in loops
                   for e in fresh):
            applied = applied + fresh
            self.__dict__[_MEMO] = (count, events[-1], applied, loops)
            return list(applied)
    applied = _stock(self)
    loops = frozenset(e.name for e in events if isinstance(e, ActiveLoop) and e.name)
    self.__dict__[_MEMO] = (count, events[-1] if count else None, applied, loops)
    return list(applied)


def install() -> None:
    DialogueStateTracker.applied_events = applied_events
