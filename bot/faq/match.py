"""Which specific question of a topic a message asks.

The classifier picks the topic; within it, every specific question is scored by the cosine of
character 1–3-gram TF-IDF vectors (over the normalised text) between the message and the
question's wording and each of its phrasings, the best one counting. A question is answered
when it scores at least `MIN_SCORE` and beats the runner-up by `MIN_MARGIN`; otherwise the
topic's overview is given with the closest questions as "您是不是想问" buttons.

The index is built from the FAQ file itself, so a question staff add with its phrasings is
served at the next hot reload, without retraining. The thresholds were chosen by leave-one-out
over the FAQ's own phrasings (a phrasing taken out and ranked against the rest): the margin is
what buys precision. `make eval` reports them on our separate question-level test set
(tests/data/faq_question_tests.yml); nothing here is tuned on ../shared/eval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from sklearn.feature_extraction.text import TfidfVectorizer

from bot.faq.model import Faq, Question
from bot.text import normalize_text

MIN_SCORE = 0.2
MIN_MARGIN = 0.1
SUGGESTIONS = 3


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

    def rank(self, topic: str, text: str) -> List[Match]:
        """The topic's questions, best first, each with its best wording's score."""
        rows = self._rows.get(topic)
        if not rows or self._vectorizer is None:
            return []
        vector = self._vectorizer.transform([normalize_text(text)])
        scores = (self._matrix[rows] @ vector.T).toarray().ravel()
        best: Dict[str, Match] = {}
        for row, score in zip(rows, scores):
            question = self._owners[row]
            if question.id not in best or score > best[question.id].score:
                best[question.id] = Match(question, float(score))
        return sorted(best.values(), key=lambda m: -m.score)


    def rank_all(self, text: str) -> List[Match]:
        """Every topic's questions, best first (for a message no topic was sure of)."""
        return sorted((m for topic in self._rows for m in self.rank(topic, text)), key=lambda m: -m.score)


_cache: List[QuestionIndex] = []


def index_for(faq: Faq) -> QuestionIndex:
    """The index of this FAQ object (rebuilt when the store hands out a reloaded FAQ)."""
    if not _cache or _cache[0].faq is not faq:
        _cache[:] = [QuestionIndex(faq)]
    return _cache[0]


def closest_questions(faq: Faq, text: str, count: int = SUGGESTIONS, min_score: float = 0.2) -> List[Question]:
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
