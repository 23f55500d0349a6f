"""Draft topics: new FAQ topics support staff propose in the `drafts:` section of data/faq.yml.

A draft has a name, a title, an answer and example questions. The assistant does not serve it:
the FAQ loader reads only `topics:`, and a topic needs an intent in domain.yml, training
examples and a rule (bot/topics.py is the contract) — a developer adds those, then moves the
draft under `topics:`. Keeping drafts in the FAQ file lets staff write them where they write
every other answer, and lets `bot faq check` hold them to the same rules (safe answers, no links
to look-alike domains, valid placeholders, examples that no other intent already owns).
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Set

from bot.privacy.secrets import asks_for_secret
from bot.security.scam import lookalike_links
from bot.text import normalize_text

DRAFTS_KEY = "drafts"
DRAFT_FIELDS = {"title", "answer", "examples", "by", "created"}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{2,47}$")
MAX_TITLE = 40
MAX_ANSWER = 2000
MAX_EXAMPLE = 200


@dataclass(frozen=True)
class Draft:
    name: str
    title: str
    answer: str
    examples: List[str]
    by: str = ""
    created: str = ""


def draft_problems(name: str, raw: Any, taken_names: Set[str],
                   owned_examples: Mapping[str, str]) -> List[str]:
    """What is wrong with one draft, each phrased for the staff member who wrote it.

    `taken_names`: intents and other drafts the name must not clash with;
    `owned_examples`: normalised example text -> intent or draft that already has it.
    """
    where = f"draft '{name}'"
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return [f"{where}: 名称只能用小写英文字母、数字和下划线，以字母开头，3–48 个字符（例如 card_limit）"]
    if name in taken_names:
        return [f"{where}: 名称已被现有意图或其他草稿使用"]
    if not isinstance(raw, dict):
        return [f"{where}: 必须是 title / answer / examples 的映射"]
    problems = []
    unknown = set(raw) - DRAFT_FIELDS
    if unknown:
        problems.append(f"{where}: 未知字段 {sorted(unknown)}；允许的字段：{sorted(DRAFT_FIELDS)}")
    for key, limit in (("title", MAX_TITLE), ("answer", MAX_ANSWER)):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: 字段 '{key}' 不能为空")
            continue
        if len(value.strip()) > limit:
            problems.append(f"{where}: 字段 '{key}' 太长（最多 {limit} 字）")
        try:
            list(string.Formatter().parse(value))
        except ValueError as exc:
            problems.append(f"{where}: 字段 '{key}' 的 {{占位符}} 写法有误：{exc}")
        phrase = asks_for_secret(value)
        if phrase:
            problems.append(f"{where}: 字段 '{key}' 向用户索要敏感信息（{phrase!r}）：小助手绝不索要密码、验证码或卡号")
        for host in lookalike_links(value):
            problems.append(f"{where}: 字段 '{key}' 的链接“{host}”像是仿冒官方的域名：请只使用官方域名")
    examples = raw.get("examples")
    if not isinstance(examples, list) or not examples:
        problems.append(f"{where}: 字段 'examples' 至少要有一个例句")
        return problems
    seen: Set[str] = set()
    for example in examples:
        if not isinstance(example, str) or not example.strip():
            problems.append(f"{where}: 字段 'examples' 里有空的例句")
            continue
        if len(example) > MAX_EXAMPLE:
            problems.append(f"{where}: 例句太长（最多 {MAX_EXAMPLE} 字）：{example[:20]}…")
        key = normalize_text(example)
        if key in seen:
            problems.append(f"{where}: 例句重复：{example}")
        elif key in owned_examples:
            problems.append(f"{where}: 例句已属于 '{owned_examples[key]}'：{example}")
        seen.add(key)
    return problems


def raw_drafts(faq_raw: Any) -> Dict[str, Any]:
    """The `drafts:` mapping of a loaded FAQ document ({} when absent or empty)."""
    if not isinstance(faq_raw, dict):
        return {}
    drafts = faq_raw.get(DRAFTS_KEY)
    return drafts if isinstance(drafts, dict) else {}


def check_drafts(faq_raw: Any, faq_file: Path, intents: Iterable[str],
                 nlu_owners: Mapping[str, str]) -> List[str]:
    """Problems of the whole `drafts:` section (used by `bot faq check`)."""
    if isinstance(faq_raw, dict) and faq_raw.get(DRAFTS_KEY) is not None and \
            not isinstance(faq_raw.get(DRAFTS_KEY), dict):
        return [f"{faq_file}: drafts: 必须是 草稿名称: {{title, answer, examples}} 的映射"]
    drafts = raw_drafts(faq_raw)
    problems = []
    owned = dict(nlu_owners)
    taken = set(intents)
    for name, raw in drafts.items():
        problems += [f"{faq_file}: {p}" for p in draft_problems(str(name), raw, taken, owned)]
        taken.add(str(name))
        if isinstance(raw, dict) and isinstance(raw.get("examples"), list):
            for example in raw["examples"]:
                if isinstance(example, str) and example.strip():
                    owned.setdefault(normalize_text(example), f"draft {name}")
    return problems


def parse_drafts(faq_raw: Any) -> List[Draft]:
    """Drafts as objects (only the well-formed ones; `check_drafts` reports the rest)."""
    out = []
    for name, raw in raw_drafts(faq_raw).items():
        if not isinstance(raw, dict):
            continue
        examples = [e for e in raw.get("examples") or [] if isinstance(e, str)]
        out.append(Draft(str(name), str(raw.get("title") or ""), str(raw.get("answer") or "").strip(),
                         examples, str(raw.get("by") or ""), str(raw.get("created") or "")))
    return out
