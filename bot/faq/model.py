"""Load `data/faq.yml` into typed objects, with errors that name file, topic and field."""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

from bot.privacy.secrets import asks_for_secret
from bot.text import normalize_text
from bot.topics import FAQ_TOPICS, MUST_OFFER_HUMAN

REQUIRED_MESSAGES = (
    "greet", "goodbye", "thank", "bot_challenge", "ask_resolved", "resolved", "affirm_other",
    "deny_other", "handoff_opened", "handoff_exists", "clarify", "empty_input", "emoji_only",
    "too_long", "button_yes", "button_no", "button_human", "handoff_queue", "handoff_after_hours",
    "handoff_ack", "handoff_cancelled", "agent_closed", "rating_ask", "rating_thanks", "not_solved_offer",
    "secret_warning", "rate_limited", "did_you_mean", "not_understood", "not_understood_again", "out_of_scope",
    "queued_answer_note",
)


class FaqError(ValueError):
    """A problem in the FAQ file, phrased for the support staff who edit it."""

    def __init__(self, path: Path, where: str, problem: str) -> None:
        super().__init__(f"{path}: {where}: {problem}")
        self.path, self.where, self.problem = path, where, problem


@dataclass(frozen=True)
class Variants:
    entity: str
    answers: Dict[str, str]


def _variant(variants: Optional[Variants], entities: List[Mapping[str, Any]]) -> Optional[str]:
    if variants:
        for ent in entities:
            if ent.get("entity") == variants.entity:
                text = variants.answers.get(str(ent.get("value")))
                if text:
                    return text
    return None


@dataclass(frozen=True)
class Question:
    """A specific question within a topic ("提现多久到账"), answered precisely."""
    id: str
    topic: str
    question: str
    phrasings: List[str]
    answer: str
    related: List[str] = field(default_factory=list)
    variants: Optional[Variants] = None

    def answer_for(self, entities: List[Mapping[str, Any]]) -> str:
        return _variant(self.variants, entities) or self.answer


@dataclass(frozen=True)
class Topic:
    name: str
    title: str
    answer: str
    related: List[str] = field(default_factory=list)
    offer_human: bool = False
    urgent: Optional[str] = None
    variants: Optional[Variants] = None
    questions: List[Question] = field(default_factory=list)
    # Short ways users name the topic as a whole ("提现", "转账的问题"): a message that is closer
    # to these than to any specific question gets the overview (bot/faq/match.py).
    overview_phrasings: List[str] = field(default_factory=list)

    def answer_for(self, entities: List[Mapping[str, Any]]) -> str:
        """The variant matching an extracted entity value, else the general answer (overview)."""
        return _variant(self.variants, entities) or self.answer


@dataclass(frozen=True)
class Faq:
    settings: Dict[str, str]
    messages: Dict[str, str]
    topics: Dict[str, Topic]

    def fill(self, text: str, **values: Any) -> str:
        """Fill {brand}, other settings and call-specific placeholders."""
        return string.Formatter().vformat(text, (), _Defaults({**self.settings, **values}))

    def message(self, key: str, **values: Any) -> str:
        return self.fill(self.messages[key], **values)

    def question(self, question_id: str) -> Optional[Question]:
        topic = self.topics.get(question_id.split(".", 1)[0])
        return next((q for q in topic.questions if q.id == question_id), None) if topic else None


class _Defaults(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _text(path: Path, where: str, value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FaqError(path, where, f"field '{name}' must be non-empty text")
    _check_placeholders(path, where, name, value)
    return value.strip()


def _check_placeholders(path: Path, where: str, name: str, value: str) -> None:
    try:
        list(string.Formatter().parse(value))
    except ValueError as exc:
        raise FaqError(path, where, f"field '{name}' has a broken {{placeholder}}: {exc}") from None


def _mapping(path: Path, where: str, value: Any) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise FaqError(path, where, "must be a mapping (key: value)")
    return value


def _variants(path: Path, where: str, raw: Any) -> Optional[Variants]:
    if raw is None:
        return None
    v = _mapping(path, f"{where} field 'variants'", raw)
    entity = _text(path, where, v.get("entity"), "variants.entity")
    answers = _mapping(path, f"{where} field 'variants.answers'", v.get("answers"))
    return Variants(entity, {str(k): _text(path, where, a, f"variants.answers.{k}") for k, a in answers.items()})


QUESTION_FIELDS = {"id", "question", "phrasings", "answer", "related", "variants"}


def _question(path: Path, topic: str, index: int, raw: Any) -> Question:
    where = f"topic '{topic}' question {index + 1}"
    raw = _mapping(path, where, raw)
    unknown = set(raw) - QUESTION_FIELDS
    if unknown:
        raise FaqError(path, where, f"unknown field(s) {sorted(unknown)}; allowed: {sorted(QUESTION_FIELDS)}")
    qid = raw.get("id")
    if not isinstance(qid, str) or not re.fullmatch(rf"{re.escape(topic)}\.[a-z0-9_]+", qid):
        raise FaqError(path, where, f"field 'id' must look like '{topic}.some_name' (lower-case, digits, _)")
    where = f"question '{qid}'"
    phrasings = raw.get("phrasings") or []
    if not isinstance(phrasings, list) or not all(isinstance(p, str) and p.strip() for p in phrasings):
        raise FaqError(path, where, "field 'phrasings' must be a list of texts")
    related = raw.get("related") or []
    if not isinstance(related, list) or not all(isinstance(r, str) for r in related):
        raise FaqError(path, where, "field 'related' must be a list of question ids")
    return Question(
        id=qid, topic=topic,
        question=_text(path, where, raw.get("question"), "question"),
        phrasings=[p.strip() for p in phrasings],
        answer=_text(path, where, raw.get("answer"), "answer"),
        related=list(related),
        variants=_variants(path, where, raw.get("variants")),
    )


def _topic(path: Path, name: str, raw: Any) -> Topic:
    where = f"topic '{name}'"
    raw = _mapping(path, where, raw)
    known = {"title", "answer", "related", "offer_human", "urgent", "variants", "questions", "overview_phrasings"}
    unknown = set(raw) - known
    if unknown:
        raise FaqError(path, where, f"unknown field(s) {sorted(unknown)}; allowed: {sorted(known)}")
    related = raw.get("related") or []
    if not isinstance(related, list) or not all(isinstance(r, str) for r in related):
        raise FaqError(path, where, "field 'related' must be a list of topic names")
    for other in related:
        if other not in FAQ_TOPICS:
            raise FaqError(path, where, f"field 'related' names unknown topic '{other}'")
    offer_human = raw.get("offer_human", False)
    if not isinstance(offer_human, bool):
        raise FaqError(path, where, "field 'offer_human' must be true or false")
    if name in MUST_OFFER_HUMAN and not offer_human:
        raise FaqError(path, where, "field 'offer_human' must be true for this topic")
    urgent = raw.get("urgent")
    if name == "report_fraud" and not urgent:
        raise FaqError(path, where, "field 'urgent' (safety steps shown first) is required")
    questions_raw = raw.get("questions") or []
    if not isinstance(questions_raw, list):
        raise FaqError(path, where, "field 'questions' must be a list")
    title = _text(path, where, raw.get("title"), "title")
    overview = raw.get("overview_phrasings") or []
    if not isinstance(overview, list) or not all(isinstance(p, str) and p.strip() for p in overview):
        raise FaqError(path, where, "field 'overview_phrasings' must be a list of texts")
    return Topic(
        name=name,
        title=title,
        answer=_text(path, where, raw.get("answer"), "answer"),
        related=list(related),
        offer_human=offer_human,
        urgent=_text(path, where, urgent, "urgent") if urgent else None,
        variants=_variants(path, where, raw.get("variants")),
        questions=[_question(path, name, i, q) for i, q in enumerate(questions_raw)],
        overview_phrasings=[p.strip() for p in overview] or title_names(title),
    )


def title_names(title: str) -> List[str]:
    """A title and its parts ("账户/资金被冻结" -> itself, "账户", "资金被冻结"): the default overview phrasings."""
    parts = [p.strip() for p in re.split(r"[/／]", title) if p.strip()]
    return list(dict.fromkeys([title.replace(" ", ""), *parts]))


def parse_faq(path: Path, raw: Any) -> Faq:
    raw = _mapping(path, "top level", raw)
    settings = _mapping(path, "settings", raw.get("settings"))
    if not str(settings.get("brand") or "").strip():
        raise FaqError(path, "settings", "field 'brand' must be set")
    messages = _mapping(path, "messages", raw.get("messages"))
    for key in REQUIRED_MESSAGES:
        _text(path, f"message '{key}'", messages.get(key), key)
    for key in ("handoff_opened", "handoff_exists", "handoff_ack"):
        if "{ticket}" not in messages[key]:
            raise FaqError(path, f"message '{key}'", "must contain the {ticket} placeholder")
    topics_raw = _mapping(path, "topics", raw.get("topics"))
    for name in topics_raw:
        if name not in FAQ_TOPICS:
            raise FaqError(path, f"topic '{name}'", f"is not a known topic; known: {list(FAQ_TOPICS)}")
    missing = [t for t in FAQ_TOPICS if t not in topics_raw]
    if missing:
        raise FaqError(path, "topics", f"missing answers for topic(s) {missing}")
    faq = Faq(
        settings={k: str(v) for k, v in settings.items()},
        messages={k: str(v).strip() for k, v in messages.items()},
        topics={name: _topic(path, name, topics_raw[name]) for name in FAQ_TOPICS},
    )
    _check_questions(path, faq)
    for where, text in faq_texts(faq):
        phrase = asks_for_secret(text)
        if phrase:
            raise FaqError(path, where, f"asks the user for a secret ({phrase!r}): the assistant never asks for "
                                        "passwords, codes or card numbers")
    return faq


def _check_questions(path: Path, faq: Faq) -> None:
    """Unique ids, related ids that exist, and no question or phrasing shared by two entries
    (the same words would then have two answers)."""
    owners: Dict[str, str] = {}
    ids = {q.id for t in faq.topics.values() for q in t.questions}
    seen: set = set()
    for topic in faq.topics.values():
        for q in topic.questions:
            if q.id in seen:
                raise FaqError(path, f"question '{q.id}'", "the id is used twice")
            seen.add(q.id)
            for other in q.related:
                if other not in ids:
                    raise FaqError(path, f"question '{q.id}'", f"field 'related' names unknown question '{other}'")
            for text in [q.question, *q.phrasings]:
                key = normalize_text(text)
                if owners.get(key, q.id) != q.id:
                    raise FaqError(path, f"question '{q.id}'", f"phrasing '{text}' is also one of '{owners[key]}'")
                owners[key] = q.id


def faq_texts(faq: Faq):
    """(where, text) of everything the FAQ can say to a user."""
    for key, text in faq.messages.items():
        yield f"message '{key}'", text
    for topic in faq.topics.values():
        yield f"topic '{topic.name}' field 'answer'", topic.answer
        if topic.urgent:
            yield f"topic '{topic.name}' field 'urgent'", topic.urgent
        for value, text in (topic.variants.answers.items() if topic.variants else ()):
            yield f"topic '{topic.name}' field 'variants.answers.{value}'", text
        for q in topic.questions:
            yield f"question '{q.id}' field 'answer'", q.answer
            for value, text in (q.variants.answers.items() if q.variants else ()):
                yield f"question '{q.id}' field 'variants.answers.{value}'", text


def load_faq(path: Path) -> Faq:
    """Read and validate the FAQ file; raises FaqError naming file, topic and field."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except FileNotFoundError:
        raise FaqError(path, "file", "not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise FaqError(path, where, f"malformed YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_faq(path, raw)
