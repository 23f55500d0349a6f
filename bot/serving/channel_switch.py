"""Channels switched on by configuration alone: which blocks of credentials.yml one Rasa process gets.

credentials.yml stays Rasa's file, one block per channel class with its secrets as Rasa's
`${VAR}` placeholders (Rasa substitutes them when it reads the file). Stock Rasa refuses to
start when any placeholder is unset, so optional channels used to be commented-out blocks that
an operator had to uncomment: setting the variables alone did nothing. Here, per block:

- no placeholder (REST, the widget): on, as written;
- every variable the channel needs is set: on; an optional key whose variable is not set is left
  out (the class's default applies);
- none of the block's variables is set: off, the block is left out (no route, no start-up call);
- some are set and a needed one is not: the start is refused, naming the missing variables.

What a channel needs is declared by its class (`required_credentials`: the keys it cannot work
without; `credentials_may_be_empty`: required keys whose variable may be set to an empty value,
e.g. WeChat's AES key: empty means plain mode). A class that declares nothing (Rasa's own
channels) needs every variable of its block. Classes are looked up by their dotted name, the way
Rasa loads them. bot/serving/run_files.py writes the result for one process (var/run/).
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


class ChannelConfigError(ValueError):
    """A channel is configured in part: the message names each one and its missing variables."""


@dataclass(frozen=True)
class Declaration:
    required: Tuple[str, ...] = ()
    may_be_empty: Tuple[str, ...] = ()
    declared: bool = False


@dataclass
class ChannelState:
    name: str
    on: bool
    missing: List[str] = field(default_factory=list)
    given: List[str] = field(default_factory=list)


def placeholders(value: Any) -> List[str]:
    """The `${VAR}` names in a value of a block (strings, lists and mappings, in order)."""
    if isinstance(value, str):
        return PLACEHOLDER.findall(value)
    if isinstance(value, dict):
        return [name for item in value.values() for name in placeholders(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in placeholders(item)]
    return []


def declaration(channel: str) -> Declaration:
    """What the class named `channel` (a dotted path) declares; nothing for Rasa's built-in
    names and for names that do not import (Rasa reports those itself)."""
    module, _, name = channel.rpartition(".")
    if not module:
        return Declaration()
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return Declaration()
    required = getattr(cls, "required_credentials", None)
    if required is None:
        return Declaration()
    return Declaration(tuple(required), tuple(getattr(cls, "credentials_may_be_empty", ()) or ()), True)


def _is_set(environ: Mapping[str, str], variable: str, empty_ok: bool) -> bool:
    value = environ.get(variable)
    return value is not None and (empty_ok or value.strip() != "")


def switch_block(channel: str, block: Any, environ: Mapping[str, str],
                 lookup: Callable[[str], Declaration] = declaration) -> Tuple[ChannelState, Optional[Any]]:
    """The state of one channel and the block Rasa gets (None: the channel is off)."""
    if not isinstance(block, dict) or not placeholders(block):
        return ChannelState(channel, True), block
    all_names = placeholders(block)
    given = [name for name in dict.fromkeys(all_names) if _is_set(environ, name, False)]
    if not given:  # off, whatever the class declares (so an unused channel is not even imported)
        return ChannelState(channel, False), None
    decl = lookup(channel)
    required_keys = decl.required if decl.declared else tuple(block)
    needed: List[Tuple[str, bool]] = []  # (variable, may be empty)
    optional: Dict[str, List[str]] = {}
    for key, value in block.items():
        names = placeholders(value)
        if key in required_keys:
            needed += [(name, key in decl.may_be_empty) for name in names]
        elif names:
            optional[key] = names
    missing = list(dict.fromkeys(name for name, empty_ok in needed if not _is_set(environ, name, empty_ok)))
    if missing:
        return ChannelState(channel, False, missing, given), None
    kept = {key: value for key, value in block.items()
            if key not in optional or all(_is_set(environ, name, True) for name in optional[key])}
    return ChannelState(channel, True, [], given), kept


def switch_channels(
    config: Dict[str, Any],
    environ: Mapping[str, str],
    lookup: Callable[[str], Declaration] = declaration,
) -> Tuple[Dict[str, Any], List[ChannelState]]:
    """The credentials Rasa gets and the state of every channel; raises ChannelConfigError when
    a channel is configured in part."""
    result: Dict[str, Any] = {}
    states: List[ChannelState] = []
    for channel, block in (config or {}).items():
        state, kept = switch_block(channel, block, environ, lookup)
        states.append(state)
        if state.on:
            result[channel] = kept
    partial = [s for s in states if s.missing]
    if partial:
        raise ChannelConfigError(refusal(partial))
    return result, states


def refusal(partial: List[ChannelState]) -> str:
    lines = ["渠道配置不完整，服务未启动 (a channel is configured in part; set the missing variables "
             "or unset the ones given to switch it off):"]
    for state in partial:
        lines.append(f"  {state.name}: missing {', '.join(state.missing)} (set: {', '.join(state.given)})")
    return "\n".join(lines)
