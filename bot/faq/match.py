"""Which specific question of a topic a message asks.

The classifier picks the topic; within it, every specific question is scored against the
message by its best wording (the question or one of its phrasings): a blend of the cosine of
character 1–3-gram TF-IDF vectors (same words) and the cosine of the pretrained sentence
encoder's vectors (same meaning in other words; bot/sentence_vectors.py), `TFIDF_WEIGHT` to the
first. The topic as a whole competes too, through its overview phrasings ("提现", "转账的问题"):
a message that merely names the topic ("提现" scores 0.57 against "提现失败怎么办" but 1.0 against
the title) gets the overview with the closest questions as "您是不是想问" buttons, as does one
whose best question scores below `MIN_SCORE`. Otherwise the best question is answered; when the
runner-up has at least `CLOSE_RATIO` of its probability (a close call), it rides along as a button.

The index is built from the FAQ file itself, so a question staff add with its phrasings is
served at the next hot reload, without retraining (vectors of wordings seen before are kept, so a
reload encodes only what is new). The weight and thresholds were chosen by leave-one-out over the
FAQ's own phrasings (a phrasing taken out and ranked against the rest): top-1 0.52 with TF-IDF
alone, 0.65 blended. Demanding a margin bought precision only by giving the overview instead
(at 0.06: answered 0.40, wrong 0.09, overview 0.51 of the left-out phrasings), so a close call
is answered with its alternatives shown instead. The order comes from a logistic regression per
topic over the same features (TF-IDF beside the sentence vector, C=10), fitted on the topic's
wordings at each (re)load (0.4 s for all topics on the 2-core machine under load): leave-one-out top-1 0.71 against 0.66 for the
nearest wording (522 phrasings then); the similarity still decides answer versus overview.
`make eval` reports the result on our separate question-level test set
(tests/data/faq_question_tests.yml), which none of these choices looked at; nothing here is
tuned on ../shared/eval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import warnings

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from bot.faq.model import Faq, Question
from bot.sentence_vectors import encode
from bot.text import normalize_text

TFIDF_WEIGHT = 0.3
MIN_SCORE = 0.4
CLASSIFIER_C = 10.0
CLOSE_RATIO = 0.5  # a runner-up with at least half the answered question's probability is a close call
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
    score: float  # similarity of the best wording (0..1): decides answer vs overview
    probability: float = 0.0  # the topic's question classifier: decides the order


def question_classifier(features, labels: List[str]) -> Optional[LogisticRegression]:
    """A logistic regression over one topic's wordings (None for a topic with one question)."""
    if len(set(labels)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # liblinear: 0.4 s for all 23 topics; lbfgs ranked the test set the same in 4.5 s, which a
        # hot reload would spend inside a user's turn
        return LogisticRegression(C=CLASSIFIER_C, solver="liblinear").fit(features, labels)


class QuestionIndex:
    """TF-IDF rows for every wording of every specific question, grouped by topic."""

    def __init__(self, faq: Faq) -> None:
        self.faq = faq
        texts: List[str] = []
        self._owners: List[Optional[Question]] = []  # None: a topic's overview phrasing
        self._rows: Dict[str, List[int]] = {}
        self._overview_rows: Dict[str, List[int]] = {}
        for topic in faq.topics.values():
            for question in topic.questions:
                for text in (question.question, *question.phrasings):
                    self._rows.setdefault(topic.name, []).append(len(texts))
                    texts.append(normalize_text(text))
                    self._owners.append(question)
            if topic.questions:
                for text in topic.overview_phrasings:
                    self._overview_rows.setdefault(topic.name, []).append(len(texts))
                    texts.append(normalize_text(text))
                    self._owners.append(None)
        self._vectorizer: Optional[TfidfVectorizer] = None
        if texts:
            self._vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
            self._matrix = self._vectorizer.fit_transform(texts)
            self._meaning = sentence_vectors(texts)
        # Each group of rows a message is scored against (one topic's questions, its overview
        # phrasings, every question), cut out once here: cutting them per message (fancy
        # indexing of both matrices) was most of a pick's time (bench profile, 2026-11-30).
        self._blocks: Dict[Tuple[str, ...], Tuple[List[int], Any, np.ndarray]] = {}
        if self._vectorizer is not None:
            groups = {("questions", t): rows for t, rows in self._rows.items()}
            groups.update({("overview", t): rows for t, rows in self._overview_rows.items()})
            groups[("all",)] = [row for rows in self._rows.values() for row in rows]
            self._blocks = {key: (rows, self._matrix[rows], np.ascontiguousarray(self._meaning[rows]))
                            for key, rows in groups.items() if rows}
        self._last: Tuple[Optional[str], Optional[_Query]] = (None, None)
        self._tfidf: Optional[_TfidfRow] = None
        self._classifiers: Dict[str, Optional[LogisticRegression]] = {
            topic: question_classifier(self._features(rows), [self._owners[r].id for r in rows])
            for topic, rows in self._rows.items()}

    def _features(self, rows: List[int]):
        """Stored wordings' rows: TF-IDF beside the sentence vector."""
        return hstack([self._matrix[rows], csr_matrix(self._meaning[rows])]).tocsr()

    def _query(self, text: str) -> "_Query":
        """The message's vectors, computed once: a pick asks for the topic's ranking and its
        overview score of the same message (the last message's are kept)."""
        last_text, last = self._last
        if last is not None and last_text == text:
            return last
        normal = normalize_text(text)
        if self._tfidf is None:
            self._tfidf = _TfidfRow(self._vectorizer)
        indices, values = self._tfidf(normal)
        query = _Query(indices, values, encode([normal], ENCODER_THREADS)[0], self._tfidf.size)
        query.words_dense = self._tfidf.dense(indices, values)
        self._last = (text, query)
        return query

    def rank(self, topic: str, text: str) -> List[Match]:
        """The topic's questions, most probable first, each with its best wording's score."""
        matches = self._rank(("questions", topic), text)
        classifier = self._classifiers.get(topic)
        if classifier is None or not matches:
            return matches
        probability = dict(zip(classifier.classes_, classifier.predict_proba(self._query(text).features())[0]))
        matches = [Match(m.question, m.score, float(probability.get(m.question.id, 0.0))) for m in matches]
        return sorted(matches, key=lambda m: -m.probability)

    def rank_all(self, text: str) -> List[Match]:
        """Every topic's questions, best first (for a message no topic was sure of)."""
        return self._rank(("all",), text)

    def overview_score(self, topic: str, text: str) -> float:
        """How closely the message just names the topic (its best overview phrasing's score)."""
        block = self._blocks.get(("overview", topic))
        return float(self._scores(block, text).max()) if block is not None else 0.0

    def _scores(self, block, text: str) -> np.ndarray:
        _, words, meaning = block
        query = self._query(text)
        return TFIDF_WEIGHT * (words @ query.words_dense) + (1 - TFIDF_WEIGHT) * (meaning @ query.meaning)

    def _rank(self, key: Tuple[str, ...], text: str) -> List[Match]:
        block = self._blocks.get(key)
        if block is None:
            return []
        best: Dict[str, Match] = {}
        for row, score in zip(block[0], self._scores(block, text)):
            question = self._owners[row]
            if question is not None and (question.id not in best or score > best[question.id].score):
                best[question.id] = Match(question, float(score))
        return sorted(best.values(), key=lambda m: -m.score)


class _TfidfRow:
    """The fitted vectorizer's `transform` of one text, without its per-call overhead.

    sklearn's transform checks the fit, builds a count matrix, multiplies it by the IDF as a
    diagonal matrix and normalises it, with a dozen sparse-matrix objects on the way: ~0.3 ms,
    about 8 % of the server's CPU per message in the burst profile of 2026-11-30. Here the same
    arithmetic on one text: the analyzer's n-grams counted against the vocabulary, 1 + log(count)
    (sublinear tf), times the IDF, divided by the L2 norm summed in the order sklearn sums it
    (its product leaves the indices in descending order). The result is the same to the bit
    (tests/test_faq_match.py compares it with the vectorizer's).
    """

    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        self.analyze = vectorizer.build_analyzer()
        self.vocabulary = vectorizer.vocabulary_
        self.idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        self.size = len(self.idf)

    def __call__(self, normal: str) -> Tuple[np.ndarray, np.ndarray]:
        """(indices in descending order, values): the text's TF-IDF row as sklearn stores it."""
        counts: Dict[int, int] = {}
        vocabulary = self.vocabulary
        for gram in self.analyze(normal):
            j = vocabulary.get(gram)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        indices = np.array(sorted(counts, reverse=True), dtype=np.int32)
        values = np.array([counts[j] for j in indices.tolist()], dtype=np.float64)
        np.log(values, out=values)
        values += 1.0
        values *= self.idf[indices]
        total = 0.0
        for value in values.tolist():
            total += value * value
        if total != 0.0:
            values /= np.sqrt(total)
        return indices, values

    def dense(self, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
        row = np.zeros(self.size, dtype=np.float64)
        row[indices] = values
        return row


class _Query:
    """One message as the index compares it: TF-IDF (as stored by sklearn, and dense) and
    sentence vector."""

    __slots__ = ("indices", "values", "size", "words_dense", "meaning", "_features")

    def __init__(self, indices: np.ndarray, values: np.ndarray, meaning: np.ndarray, size: int = 0) -> None:
        self.indices, self.values, self.meaning = indices, values, meaning
        self.size = size
        self.words_dense = None
        self._features = None

    def features(self):
        """The question classifiers' input, TF-IDF beside the sentence vector, as
        `hstack([tfidf, csr_matrix(meaning)]).tocsr()` stores it (same entries, same order)."""
        if self._features is None:
            nonzero = np.flatnonzero(self.meaning)
            indices = np.concatenate([self.indices, self.size + nonzero]).astype(np.int32)
            data = np.concatenate([self.values, self.meaning[nonzero].astype(np.float64)])
            self._features = csr_matrix((data, indices, np.array([0, len(data)], dtype=np.int32)),
                                        shape=(1, self.size + len(self.meaning)))
        return self._features


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
                  min_score: float = MIN_SCORE) -> Tuple[Optional[Question], List[Match]]:
    """(the question asked, or None for the overview; the topic's questions ranked)."""
    index = index_for(faq)
    ranked = index.rank(topic, text)
    if not ranked:
        return None, []
    top = ranked[0]
    specific = top.score >= min_score and top.score > index.overview_score(topic, text)
    return (top.question if specific else None), ranked


def close_calls(ranked: List[Match], ratio: float = CLOSE_RATIO, count: int = SUGGESTIONS - 1) -> List[Question]:
    """The runners-up nearly as probable as the answered question: shown beside its answer."""
    if not ranked:
        return []
    return [m.question for m in ranked[1:1 + count] if m.probability >= ratio * ranked[0].probability]
