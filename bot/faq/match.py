"""Which specific question of a topic a message asks.

The classifier picks the topic; within it, every specific question is scored against the
message by its best wording (the question or one of its phrasings): a blend of the cosine of
character 1–3-gram TF-IDF vectors (same words) and the cosine of the pretrained sentence
encoder's vectors (same meaning in other words; bot/sentence_vectors.py), `TFIDF_WEIGHT` to the
first. A question is answered when it scores at least `MIN_SCORE` and beats the runner-up by
`MIN_MARGIN`; otherwise the topic's overview is given with the closest questions as
"您是不是想问" buttons.

The index is built from the FAQ file itself, so a question staff add with its phrasings is
served at the next hot reload, without retraining (vectors of wordings seen before are kept, so a
reload encodes only what is new). The weight and thresholds were chosen by leave-one-out over the
FAQ's own phrasings (a phrasing taken out and ranked against the rest): top-1 0.52 with TF-IDF
alone, 0.65 blended; the margin is what buys precision. `make eval` reports them on our separate question-level test set
(tests/data/faq_question_tests.yml); nothing here is tuned on ../shared/eval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.faq.model import Faq, Question
from bot.sentence_vectors import encode
from bot.text import normalize_text

TFIDF_WEIGHT = 0.3
MIN_SCORE = 0.4
MIN_MARGIN = 0.06
SUGGESTIONS = 3
ENCODER_THREADS = 1  # one message at a time; more threads only contend with the rest of the turn

_vectors: Dict[str, np.ndarray] = {}  # normalised wording -> sentence vector, across reloads


def sentence_vectors(texts: List[str]) -> np.ndarray:
    new = [t for t in dict.fromkeys(texts) if t not in _vectors]
    for text, vector in zip(new, encode(new, ENCODER_THREADS)):
        _vectors[text] = vector
    return np.stack([_vectors[t] for t in texts]) if texts else np.zeros((0, 512), dtype=np.float32)


@dataclass(frozen=True)
class Match:
    question: Question
    score: float


class QuestionIndex:
    """TF-IDF rows for every wording of every specific question, grouped by topic."""

    def __init__(self, faq: Faq) -> None:
        self.faq = faq
        texts: List[str] = []
        self._owners: List[Question] = []
        self._rows: Dict[str, List[int]] = {}
        for topic in faq.topics.values():
            for question in topic.questions:
                for text in (question.question, *question.phrasings):
                    self._rows.setdefault(topic.name, []).append(len(texts))
                    texts.append(normalize_text(text))
                    self._owners.append(question)
        self._vectorizer: Optional[TfidfVectorizer] = None
        if texts:
            self._vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
            self._matrix = self._vectorizer.fit_transform(texts)
            self._meaning = sentence_vectors(texts)

    def rank(self, topic: str, text: str) -> List[Match]:
        """The topic's questions, best first, each with its best wording's score."""
        return self._rank([topic], text)

    def rank_all(self, text: str) -> List[Match]:
        """Every topic's questions, best first (for a message no topic was sure of)."""
        return self._rank(list(self._rows), text)

    def _rank(self, topics: List[str], text: str) -> List[Match]:
        rows = [row for topic in topics for row in self._rows.get(topic, ())]
        if not rows or self._vectorizer is None:
            return []
        normal = normalize_text(text)
        words = (self._matrix[rows] @ self._vectorizer.transform([normal]).T).toarray().ravel()
        meaning = self._meaning[rows] @ encode([normal], ENCODER_THREADS)[0]
        scores = TFIDF_WEIGHT * words + (1 - TFIDF_WEIGHT) * meaning
        best: Dict[str, Match] = {}
        for row, score in zip(rows, scores):
            question = self._owners[row]
            if question.id not in best or score > best[question.id].score:
                best[question.id] = Match(question, float(score))
        return sorted(best.values(), key=lambda m: -m.score)


_cache: List[QuestionIndex] = []


def index_for(faq: Faq) -> QuestionIndex:
    """The index of this FAQ object (rebuilt when the store hands out a reloaded FAQ)."""
    if not _cache or _cache[0].faq is not faq:
        _cache[:] = [QuestionIndex(faq)]
    return _cache[0]


def closest_questions(faq: Faq, text: str, count: int = SUGGESTIONS, min_score: float = 0.45) -> List[Question]:
    """The specific questions nearest to a message the classifier did not understand."""
    return [m.question for m in index_for(faq).rank_all(text)[:count] if m.score >= min_score]


def pick_question(faq: Faq, topic: str, text: str,
                  min_score: float = MIN_SCORE, min_margin: float = MIN_MARGIN) -> Tuple[Optional[Question], List[Match]]:
    """(the question clearly asked, or None; the topic's questions ranked)."""
    ranked = index_for(faq).rank(topic, text)
    if not ranked:
        return None, []
    top = ranked[0]
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    clear = top.score >= min_score and top.score - runner_up >= min_margin
    return (top.question if clear else None), ranked
