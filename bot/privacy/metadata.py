"""Mask a message's `metadata` (the integrator's JSON object) like its text, before it is stored.

Every string in it, keys included, at any depth, goes through the masker's public `mask()`:
a card number or a phone in `metadata` is as secret as in the message. Numbers, booleans and
null are kept as they are (digits alone are not masked in text either: bot/privacy/masker.py).
"""
from __future__ import annotations

from typing import Any, Set, Tuple

from bot.privacy.masker import mask


def mask_values(value: Any) -> Tuple[Any, Tuple[str, ...]]:
    """(the value with every string masked, the kinds of what was found)."""
    kinds: Set[str] = set()
    return _masked(value, kinds), tuple(sorted(kinds))


def _masked(value: Any, kinds: Set[str]) -> Any:
    if isinstance(value, str):
        masked = mask(value)
        kinds.update(masked.kinds)
        return masked.text
    if isinstance(value, dict):
        return {_masked(str(k), kinds): _masked(v, kinds) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v, kinds) for v in value]
    return value
