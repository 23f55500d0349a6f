"""The one place where our changes to Rasa's internals are switched on: `install()`.

Every Rasa server we start runs `bot rasa …` (bot/serving/rasa_cli.py), which calls `install()`
before Rasa reads its command line. Nothing is patched by importing a module.

- Always: `rasa.core.run.configure_app` is wrapped so every `rasa run` app gets the guard of its
  HTTP API (bot/security/api_guard.py: clear 400s instead of Rasa's 500s for bad bodies, 401s for
  JWTs that are not HS256, lack `exp` or live longer than 24 h; it is given the app's
  `jwt_secret`). It is a security measure, uses only that public function, and so does not
  depend on the version.
- Always: `rasa.core.agent.load_agent` is wrapped (model_pull.py) so a process whose model
  server cannot be reached at its start serves its local model instead of none, and names
  itself when it pulls (which process serves which model). It uses only that public function.
- The speed-ups rely on private members of Rasa 3.6 (`PRIVATE_MEMBERS`), so `install()` first
  checks the Rasa version and that every one of them is still there. On any other version it
  installs none of them, logs why, and Rasa runs its stock code: slower, the same answers (the
  speed-ups are equivalence-tested against the stock path in tests/test_serving.py and
  tests/test_rule_states.py). They are:
- `Domain.states_for_tracker_history`, `RulePolicy._get_possible_keys`: dialogue states once per
  event (rule_states.py);
- the fast message processor, swapped in when the server has loaded a model (processor.py);
- `Event.resolve_by_type`: the class of each event type name remembered (`event_types_remembered`);
- `Policy.format_tracker_states`: only when its debug line is logged (`debug_states_only_when_logged`);
- `DialogueStateTracker.applied_events`: kept up to date as events arrive (applied_events.py);
- `Agent._create_tracker_store`: tracker store errors propagate instead of Rasa's silent fallback
  (`tracker_store_errors_raise` below).
"""
from __future__ import annotations

import logging
from typing import Optional, Tuple

logger = logging.getLogger(__name__)

SUPPORTED_RASA_VERSIONS: Tuple[str, ...] = ("3.6.21",)

# (module, object, member): private members of Rasa our patches call or replace.
PRIVATE_MEMBERS: Tuple[Tuple[str, str, str], ...] = (
    ("rasa.shared.core.domain", "Domain", "_get_prev_action_sub_state"),
    ("rasa.shared.core.domain", "Domain", "_remove_rule_only_features"),
    ("rasa.shared.core.domain", "Domain", "_substitute_rule_only_user_input"),
    ("rasa.shared.core.domain", "Domain", "_clean_state"),
    ("rasa.shared.core.domain", "Domain", "states_for_tracker_history"),
    ("rasa.core.policies.rule_policy", "RulePolicy", "_get_possible_keys"),
    ("rasa.core.policies.rule_policy", "RulePolicy", "_rule_key_to_state"),
    ("rasa.core.processor", "MessageProcessor", "_get_action"),
    ("rasa.core.processor", "MessageProcessor", "_run_action"),
    ("rasa.core.processor", "MessageProcessor", "_log_action_on_tracker"),
    ("rasa.core.processor", "MessageProcessor", "_log_slots"),
    ("rasa.core.processor", "MessageProcessor", "should_predict_another_action"),
    ("rasa.core.processor", "MessageProcessor", "execute_side_effects"),
    ("rasa.core.processor", "MessageProcessor", "run_action_extract_slots"),
    ("rasa.engine.runner.dask", "DaskGraphRunner", "_build_dask_graph"),
    ("rasa.core.agent", "Agent", "_create_tracker_store"),
    ("rasa.shared.core.events", "Event", "resolve_by_type"),
)

_state: Optional[bool] = None  # None: not asked yet; True: installed; False: refused


def refusal() -> Optional[str]:
    """Why the patches cannot be installed on this Rasa, or None when they can."""
    import importlib

    import rasa

    if rasa.__version__ not in SUPPORTED_RASA_VERSIONS:
        return (f"Rasa {rasa.__version__} is not a version these speed-ups were written for "
                f"({', '.join(SUPPORTED_RASA_VERSIONS)})")
    for module, owner, member in PRIVATE_MEMBERS:
        target = importlib.import_module(module)
        if owner is not None:
            target = getattr(target, owner, None)
        if target is None or not hasattr(target, member):
            return f"{module}.{owner + '.' if owner else ''}{member} is missing"
    return None


def install() -> bool:
    """Install the API guard and, on a Rasa we know, the speed-ups (once); False and a warning
    when the speed-ups were refused."""
    global _state
    if _state is not None:
        return _state
    _guard_rasa_api()
    from bot.serving import model_pull

    model_pull.install()
    reason = refusal()
    if reason is not None:
        logger.warning("钱包小助手: Rasa speed-ups NOT installed: %s. "
                       "Running Rasa's stock code (slower, same answers).", reason)
        _state = False
        return False
    from bot.serving import rule_states

    rule_states.install()
    tracker_store_errors_raise()
    event_types_remembered()
    debug_states_only_when_logged()
    from bot.serving import applied_events

    applied_events.install()
    _state = True
    return True


def event_types_remembered() -> None:
    """`Event.resolve_by_type` walks every subclass of Event for each event it reads (every action
    result, every tracker read the stock way): ~3 % of a server's time under load. The class found
    for a type name is remembered; names not found go the stock way (a subclass defined later
    is still found)."""
    from rasa.shared.core.events import Event

    stock = Event.resolve_by_type
    found: dict = {}

    def resolve_by_type(type_name, default=None):
        cls = found.get(type_name)
        if cls is None:
            cls = stock(type_name, default)
            if cls is not None and cls is not default:
                found[type_name] = cls
        return cls

    Event.resolve_by_type = staticmethod(resolve_by_type)


def debug_states_only_when_logged() -> None:
    """RulePolicy formats the dialogue states into a string (and deep-copies it) for one debug
    log line on every prediction, logged or not (~2 % under load): only when debug is logged."""
    from rasa.core.policies.policy import Policy

    stock = Policy.format_tracker_states
    rule_logger = logging.getLogger("rasa.core.policies.rule_policy")

    def format_tracker_states(states):
        return stock(states) if rule_logger.isEnabledFor(logging.DEBUG) else ""

    Policy.format_tracker_states = staticmethod(format_tracker_states)


def _raise(error: Exception) -> None:
    raise error


def tracker_store_errors_raise() -> None:
    """Rasa wraps every tracker store in `FailSafeTrackerStore`, which turns a database error
    into "no tracker yet" on reading and into an in-memory copy nobody reads again on saving, and
    answers as if nothing happened. Measured with a PostgreSQL restart under load: a message
    retried just after the restart met a dropped pooled connection, was answered without its
    conversation's history (a 200 with the wrong answer) and its turn was stored over the old
    one, the user's message lost. With `on_tracker_store_error` (Rasa's own hook) raising, the
    error reaches the channel, which answers 503 with Retry-After (bot/channels/rest.py)."""
    from rasa.core.agent import Agent
    from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore

    def _create_tracker_store(store, domain):
        if store is not None:
            store.domain = domain
        else:
            store = InMemoryTrackerStore(domain)
        return FailSafeTrackerStore(store, on_tracker_store_error=_raise)

    Agent._create_tracker_store = staticmethod(_create_tracker_store)


def _guard_rasa_api() -> None:
    """Wrap rasa.core.run.configure_app so every `rasa run` app gets our API guard."""
    import inspect

    import rasa.core.run as run
    from sanic import response

    from bot.security.api_guard import guard_middleware

    original = run.configure_app
    signature = inspect.signature(original)

    def configure_app(*args, **kwargs):
        app = original(*args, **kwargs)
        given = signature.bind_partial(*args, **kwargs).arguments  # Rasa passes jwt_secret by position
        app.register_middleware(guard_middleware(response.json, given.get("jwt_secret")), "request")
        return app

    run.configure_app = configure_app


def installed() -> bool:
    """True once `install()` has installed the speed-ups (the fast processor asks this)."""
    return bool(_state)
