"""The FAQ gap list: what users asked that the assistant could not answer, grouped.

A question is a gap when the assistant
- did not understand it (`nlu_fallback`: below the confidence threshold, whether it then asked
  which topic or handed off),
- judged it out of scope (`out_of_scope`), or
- answered it and the user said the answer did not help (否 to "这个回答解决您的问题了吗？", or
  没用 and the like).

Similar questions are grouped: question words (怎么, 在哪里, 可以, 吗 …) are set aside, the rest
becomes character uni+bigram TF-IDF vectors, and greedily (most asked wording first) each
question joins the group whose centroid is most similar (cosine at or above `threshold`), else
starts one. So "可以充美元吗" and "能不能充值美元" land together, "积分在哪里兑换" and
"数字人民币在哪里开通" do not. Groups come most asked first; ties by example text.

    from bot.insights.gaps import faq_gaps
    for group in faq_gaps("sqlite:///var/rasa_tracker.db", since, until):
        group.example, group.count, group.topic, group.texts   # and group.as_dict()

Texts are masked (bot/privacy/masker.py) before anything else sees them.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Optional, Sequence

from bot.insights.sources import EngineOrUrl
from bot.insights.turns import Turn, read_turns, window
from bot.privacy.masker import mask_text
from bot.text import has_words, normalize_text
from bot.topics import FALLBACK_INTENT

DEFAULT_THRESHOLD = 0.3
# Words every question has: left out of the similarity, so groups form around what is asked about.
QUESTION_WORDS = ("请问", "怎么样", "怎么", "怎样", "如何", "为什么", "在哪里", "在哪儿", "哪里", "哪儿",
                  "可不可以", "可以", "能不能", "能否", "是不是", "有没有", "支持", "一下", "什么", "我的",
                  "我们", "你们", "帮我", "给我", "吗", "呢", "吧", "啊", "呀", "了", "的", "是", "我", "你",
                  "能", "要", "想", "会", "在", "有", "用", "和", "把", "被", "一个", "一张", "一部",
                  "那个", "这个", "东西", "事情", "搞", "弄")
_QUESTION_WORDS = re.compile("|".join(sorted(map(re.escape, QUESTION_WORDS), key=len, reverse=True)))
REASON_TITLES = {"nlu_fallback": "没听懂", "low_confidence": "没听懂并转人工", "out_of_scope": "超出范围",
                 "deny": "用户说没解决", "unhelpful": "用户说没用"}


@dataclass(frozen=True)
class GapQuestion:
    """One unanswered or unhelpfully answered question."""

    text: str  # masked
    topic: Optional[str]  # what the assistant guessed (None: no guess)
    reason: str  # nlu_fallback | low_confidence | out_of_scope | deny | unhelpful
    sender_id: str
    timestamp: float


@dataclass
class GapGroup:
    """Similar questions. `texts`: each distinct wording once, most asked first."""

    id: str  # stable for the same example text: use it to refer to a group
    count: int  # how many times these questions were asked
    example: str
    topic: Optional[str]  # the topic the assistant guessed most often for them
    texts: List[str] = field(default_factory=list)
    reasons: Dict[str, int] = field(default_factory=dict)
    topics: Dict[str, int] = field(default_factory=dict)  # every guessed topic with its count
    conversations: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def faq_gaps(engine_or_url: EngineOrUrl, since: Optional[datetime] = None, until: Optional[datetime] = None,
             threshold: float = DEFAULT_THRESHOLD) -> List[GapGroup]:
    """Grouped gap questions of the tracker store in [since, until) (default: last 7 days)."""
    start, end = window(since, until)
    return group_questions(gap_questions(read_turns(engine_or_url, start, end)), threshold)


def gap_questions(turns: Sequence[Turn]) -> List[GapQuestion]:
    """The gap questions among user turns (see the module docstring)."""
    out: List[GapQuestion] = []
    for turn in turns:
        if turn.outcome in ("to_agent", "relay") or not _is_question(turn.text):
            continue
        reason = None
        if turn.intent == FALLBACK_INTENT:
            reason = "low_confidence" if turn.outcome == "handed_off" else "nlu_fallback"
        elif turn.intent == "out_of_scope":
            reason = "out_of_scope"
        elif turn.outcome == "answered" and turn.resolved is False:
            reason = turn.feedback or "deny"
        if reason:
            topic = turn.intent if reason in ("deny", "unhelpful", "out_of_scope") else turn.guess
            out.append(GapQuestion(mask_text(turn.text), topic, reason, turn.sender_id, turn.timestamp))
    return out


def _is_question(text: str) -> bool:
    """Words, not a button payload or an emoji."""
    return bool(text) and not text.lstrip().startswith("/") and has_words(normalize_text(text))


def _key(text: str) -> str:
    """The wording without case, spaces, punctuation or traditional characters."""
    return "".join(ch for ch in normalize_text(text) if unicodedata.category(ch)[0] in "LN")


def group_questions(questions: Sequence[GapQuestion], threshold: float = DEFAULT_THRESHOLD) -> List[GapGroup]:
    """Greedy grouping by TF-IDF cosine similarity; deterministic for the same questions."""
    if not questions:
        return []
    by_key: Dict[str, List[GapQuestion]] = defaultdict(list)
    for q in questions:
        by_key[_key(q.text)].append(q)
    # Most asked wording first, so it seeds its group; ties by text for a stable order.
    keys = sorted(by_key, key=lambda k: (-len(by_key[k]), k))
    vectors = _vectors(keys)
    members: List[List[int]] = []
    centroids = []
    for i in range(len(keys)):
        best, best_score = None, threshold
        for g, centroid in enumerate(centroids):
            score = float(vectors[i].dot(centroid))
            if score >= best_score:
                best, best_score = g, score
        if best is None:
            members.append([i])
            centroids.append(vectors[i].copy())
        else:
            members[best].append(i)
            centroids[best] = _unit(sum(vectors[j] for j in members[best]))
    groups = [_group([keys[i] for i in idx], by_key) for idx in members]
    return sorted(groups, key=lambda g: (-g.count, g.example))


def _vectors(keys: List[str]):
    """L2-normalised TF-IDF rows (numpy) over character uni- and bigrams."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    content = [_QUESTION_WORDS.sub("", key) or key for key in keys]
    matrix = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True).fit_transform(content)
    return list(matrix.toarray())


def _unit(vector):
    import numpy as np

    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _group(keys: List[str], by_key: Dict[str, List[GapQuestion]]) -> GapGroup:
    questions = [q for k in keys for q in by_key[k]]
    wordings: Counter = Counter()
    first_text: Dict[str, str] = {}
    for k in keys:
        first = min(by_key[k], key=lambda q: q.timestamp)
        first_text[k] = first.text
        wordings[k] = len(by_key[k])
    ordered = sorted(keys, key=lambda k: (-wordings[k], len(first_text[k]), first_text[k]))
    example = first_text[ordered[0]]
    topics = Counter(q.topic for q in questions if q.topic)
    topic = min(topics.items(), key=lambda item: (-item[1], item[0]))[0] if topics else None
    return GapGroup(
        id=hashlib.sha1(_key(example).encode("utf-8")).hexdigest()[:10],
        count=len(questions),
        example=example,
        topic=topic,
        texts=[first_text[k] for k in ordered],
        reasons=dict(sorted(Counter(q.reason for q in questions).items(), key=lambda item: (-item[1], item[0]))),
        topics=dict(sorted(topics.items(), key=lambda item: (-item[1], item[0]))),
        conversations=len({q.sender_id for q in questions}),
        first_seen=min(q.timestamp for q in questions),
        last_seen=max(q.timestamp for q in questions),
    )
