"""Is DIET needed? A plain logistic regression over char TF-IDF and sentence-encoder vectors,
measured on the training data by cross-validation (`python -m bot.devtools.classifier_study`).

Three classifiers on the SAME examples (data/nlu/*.yml, read with Rasa's own YAML reader and
normalised with bot.text.normalize_text, as the pipeline's ChineseNormalizer does):

  a  tfidf      logistic regression on character 1-4-gram TF-IDF
  b  tfidf+enc  the same, with the multilingual USE v3 vector (bot/sentence_vectors.py) appended
  c  enc        logistic regression on the encoder vector alone

Each is scored by stratified 5-fold cross-validation. Inside every outer training fold, the
regularisation C is chosen by an inner stratified CV over C_GRID on that fold alone, so the
outer test fold never influences it (Rasa's own LogisticRegressionClassifier, which the former
BlendedIntentClassifier extended, is fixed at C=1). Variant b is what config.yml now runs
(bot/nlu/plain_classifier.py). Reported: accuracy, macro-F1, and what the
FallbackClassifier (threshold 0.45, ambiguity 0.05) does with the probabilities: the share below
0.45, the share handed off, the accuracy of what is answered, and a 10-bin calibration error;
then the time to train (TF-IDF + the final fit at the chosen C; the encoder needs no training)
and to predict one message (normalise, vectorise, encode, predict).

Scaling of b: both blocks are L2-normalised rows (TfidfVectorizer's norm="l2"; the encoder's
output is unit length), so neither dominates the regression's penalty by its scale alone;
`--encoder-weight` multiplies the encoder block to check how sensitive that choice is.

Duplicates: examples whose normalised text is identical are kept once (the same text in a
training and a test fold would score memory, not generalisation); a text labelled with two
intents is dropped. The counts are printed, with a fingerprint of the data measured.

`--realq PATH` then fits each classifier on all training data (C chosen by CV on the training
data only) and scores a labelled TSV with bot.training.metrics.score, applying what the pipeline
applies after the classifiers (fallback threshold/ambiguity, the scam-signal and empty-message
guards; not the known-questions table). That is a test set: it is only reported, nothing is
chosen on it, and no text of it is printed or saved.

DIET is not cross-validated here (5 folds of DIET training take too long); compare with
`make eval` of the trained Rasa model.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import statistics
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from bot.config import ROOT
from bot.text import has_words, normalize_text

C_GRID = (1, 3, 10, 30, 100, 300)
THRESHOLD = 0.45  # FallbackClassifier in config.yml when the study was made (now 0.55)
AMBIGUITY = 0.05
FALLBACK = "nlu_fallback"
VARIANTS = ("tfidf", "tfidf+enc", "enc")
LABELS = {"tfidf": "a  char 1-4 TF-IDF", "tfidf+enc": "b  TF-IDF + encoder", "enc": "c  encoder only"}


# ---- data --------------------------------------------------------------------------------------

@dataclass
class Dataset:
    texts: List[str]          # normalised
    intents: List[str]
    files: int
    raw_examples: int
    duplicates: int
    conflicting: int
    fingerprint: str


def load_examples(folder: Path) -> Tuple[List[Tuple[str, str]], int]:
    """(text, intent) of every intent example in folder/*.yml, via Rasa's YAML reader."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    pairs: List[Tuple[str, str]] = []
    files = sorted(folder.glob("*.yml"))
    for path in files:
        data = RasaYAMLReader().read(str(path))
        pairs += [(m.get("text"), m.get("intent")) for m in data.intent_examples if m.get("text") and m.get("intent")]
    return pairs, len(files)


def build_dataset(folder: Path) -> Dataset:
    pairs, files = load_examples(folder)
    by_text: Dict[str, set] = {}
    order: List[str] = []
    for text, intent in pairs:
        key = normalize_text(text)
        if not key.strip():
            continue
        if key not in by_text:
            by_text[key] = set()
            order.append(key)
        by_text[key].add(intent)
    kept = [(t, next(iter(by_text[t]))) for t in order if len(by_text[t]) == 1]
    conflicting = sum(len(v) > 1 for v in by_text.values())
    digest = hashlib.sha256("\n".join(f"{i}\t{t}" for t, i in sorted(kept)).encode("utf-8")).hexdigest()[:12]
    return Dataset(
        texts=[t for t, _ in kept], intents=[i for _, i in kept], files=files, raw_examples=len(pairs),
        duplicates=len(pairs) - len(order), conflicting=conflicting, fingerprint=digest,
    )


# ---- features and models -----------------------------------------------------------------------

class Features:
    """Builds the design matrix of a variant from example indices; the TF-IDF vocabulary is
    fitted on the training indices only. The encoder vectors are computed once for every text
    (a pretrained model, nothing is fitted on the data)."""

    def __init__(self, variant: str, texts: Sequence[str], vectors: np.ndarray, encoder_weight: float) -> None:
        self.variant, self.texts, self.vectors, self.weight = variant, list(texts), vectors, encoder_weight
        self.tfidf = None

    def fit(self, idx: Sequence[int]) -> "Features":
        if self.variant != "enc":
            from sklearn.feature_extraction.text import TfidfVectorizer

            # min_df=2: n-grams seen once cannot generalise; dropping them cut the features 4x
            # (51k -> 13k) and the fit time 4x at the same accuracy (measured)
            self.tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, min_df=2)
            self.tfidf.fit([self.texts[i] for i in idx])
        return self

    def matrix(self, texts: Sequence[str], vectors: np.ndarray):
        from scipy.sparse import csr_matrix, hstack

        # float64 with sorted indices: what the regression works on, so it never converts in place
        if self.variant == "enc":
            return np.asarray(vectors, dtype=np.float64)
        sparse = self.tfidf.transform(texts)
        if self.variant == "tfidf":
            return sparse
        both = hstack([sparse, csr_matrix(np.asarray(vectors, dtype=np.float64) * self.weight)], format="csr")
        both.sort_indices()
        return both

    def of(self, idx: Sequence[int]):
        return self.matrix([self.texts[i] for i in idx], self.vectors[list(idx)])


def new_regression(c: float, class_weight: Optional[str]):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000, class_weight=class_weight, solver="lbfgs")


def fit(variant: str, texts, vectors, y: np.ndarray, idx: np.ndarray, c: float, weight: float,
        class_weight: Optional[str]):
    features = Features(variant, texts, vectors, weight).fit(idx)
    model = new_regression(c, class_weight).fit(features.of(idx), y[idx])
    return features, model


def _inner_accuracy(c: float, class_weight: Optional[str], x_train, y_train, x_test, y_test) -> float:
    warnings.filterwarnings("ignore")
    model = new_regression(c, class_weight).fit(x_train, y_train)
    return float(np.mean(model.predict(x_test) == y_test))


def choose_c(variant: str, texts, vectors, y: np.ndarray, idx: np.ndarray, weight: float,
             class_weight: Optional[str], folds: int, seed: int, n_jobs: int = 1) -> Tuple[float, Dict[float, float]]:
    """C with the best mean accuracy of an inner stratified CV on `idx` alone (ties: smaller C)."""
    from sklearn.model_selection import StratifiedKFold

    inner = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(inner.split(idx, y[idx]))
    means: Dict[float, float] = {}
    matrices = []
    for train, test in splits:
        features = Features(variant, texts, vectors, weight).fit(idx[train])
        matrices.append((features.of(idx[train]), y[idx[train]], features.of(idx[test]), y[idx[test]]))
    from joblib import Parallel, delayed

    jobs = [(c, k) for c in C_GRID for k in range(len(matrices))]
    accuracies = Parallel(n_jobs=n_jobs, max_nbytes=None)(
        delayed(_inner_accuracy)(c, class_weight, *matrices[k]) for c, k in jobs
    )
    for c in C_GRID:
        means[c] = statistics.mean(a for (cc, _), a in zip(jobs, accuracies) if cc == c)
    best = max(C_GRID, key=lambda c: (round(means[c], 6), -c))
    return best, means


# ---- scoring -----------------------------------------------------------------------------------

def decide(classes: np.ndarray, proba: np.ndarray) -> List[str]:
    """What FallbackClassifier makes of a distribution: the top intent, or nlu_fallback when
    its probability is below THRESHOLD or within AMBIGUITY of the second."""
    out = []
    for row in proba:
        order = np.argsort(-row)
        top = row[order[0]]
        second = row[order[1]] if len(order) > 1 else 0.0
        out.append(FALLBACK if top < THRESHOLD or top - second < AMBIGUITY else str(classes[order[0]]))
    return out


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |accuracy - mean confidence| per confidence bin, weighted."""
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


@dataclass
class Result:
    variant: str
    gold: List[str] = field(default_factory=list)
    predicted: List[str] = field(default_factory=list)
    confidence: List[float] = field(default_factory=list)
    decided: List[str] = field(default_factory=list)
    chosen_c: List[float] = field(default_factory=list)
    fit_seconds: List[float] = field(default_factory=list)
    search_seconds: List[float] = field(default_factory=list)
    predict_ms: List[float] = field(default_factory=list)

    def summary(self) -> Dict[str, float]:
        from sklearn.metrics import f1_score

        gold, pred = np.array(self.gold), np.array(self.predicted)
        conf = np.array(self.confidence)
        correct = gold == pred
        confident = conf >= THRESHOLD
        answered = np.array([d != FALLBACK for d in self.decided])
        return {
            "accuracy": float(correct.mean()),
            "macro_f1": float(f1_score(gold, pred, average="macro")),
            "below_045": float((~confident).mean()),
            "acc_at_045": float(correct[confident].mean()) if confident.any() else 0.0,
            "handed_off": float((~answered).mean()),
            "answered_acc": float(correct[answered].mean()) if answered.any() else 0.0,
            "wrong_answered": float((~correct & answered).mean()),
            "ece": calibration_error(conf, correct),
        }


def time_single_messages(features: Features, model, raw_texts: Sequence[str], threads: int, with_encoder: bool,
                         limit: int = 200) -> List[float]:
    """Milliseconds per message, one at a time as the server sees them: normalise, encode,
    vectorise, predict."""
    from bot.sentence_vectors import encode

    times = []
    for text in list(raw_texts)[:limit]:
        started = time.perf_counter()
        normalised = normalize_text(text)
        vector = encode([normalised], threads) if with_encoder else np.zeros((1, 512), dtype=np.float32)
        model.predict_proba(features.matrix([normalised], vector))
        times.append((time.perf_counter() - started) * 1000)
    return times


def cross_validate(data: Dataset, vectors: np.ndarray, variants: Sequence[str], args) -> Dict[str, Result]:
    from sklearn.model_selection import StratifiedKFold

    y = np.array(data.intents)
    outer = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    results = {v: Result(v) for v in variants}
    for fold, (train, test) in enumerate(outer.split(np.zeros(len(y)), y), 1):
        for variant in variants:
            r = results[variant]
            started = time.perf_counter()
            c, _ = choose_c(variant, data.texts, vectors, y, train, args.encoder_weight, args.class_weight,
                            args.inner_folds, args.seed + fold, args.jobs)
            r.search_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            features, model = fit(variant, data.texts, vectors, y, train, c, args.encoder_weight, args.class_weight)
            r.fit_seconds.append(time.perf_counter() - started)
            proba = model.predict_proba(features.of(test))
            top = proba.argmax(axis=1)
            r.gold += list(y[test])
            r.predicted += [str(model.classes_[i]) for i in top]
            r.confidence += [float(p) for p in proba.max(axis=1)]
            r.decided += decide(model.classes_, proba)
            r.chosen_c.append(c)
            if fold == 1:
                r.predict_ms = time_single_messages(features, model, [data.texts[i] for i in test], args.threads,
                                                    variant != "tfidf")
            print(f"  fold {fold}/{args.folds} {variant:<10} C={c:<4g} search {r.search_seconds[-1]:5.1f} s, "
                  f"fit {r.fit_seconds[-1]:5.2f} s, accuracy {np.mean(np.array(r.gold[-len(test):]) == np.array(r.predicted[-len(test):])):.3f}",
                  flush=True)
    return results


# ---- the test set (reported only) --------------------------------------------------------------

def realq(data: Dataset, vectors: np.ndarray, variants: Sequence[str], path: Path, args) -> None:
    """Fit on all training data (C by CV on it), predict the TSV, print aggregate scores only."""
    from bot.sentence_vectors import encode
    from bot.security.scam import scam_signals
    from bot.training.evaluate import read_labelled
    from bot.training.metrics import score

    y = np.array(data.intents)
    everything = np.arange(len(y))
    chosen = {}
    for variant in variants:  # every choice is made before the test file is read
        c, means = choose_c(variant, data.texts, vectors, y, everything, args.encoder_weight, args.class_weight,
                            args.folds, args.seed, args.jobs)
        chosen[variant] = c
        grid = "  ".join(f"C={k:g}: {v:.3f}" for k, v in means.items())
        print(f"  {variant:<10} CV accuracy on the training data by C: {grid}  -> C={c:g}")
    rows = read_labelled(path)
    texts = [normalize_text(t) for t, _ in rows]
    gold = [g for _, g in rows]
    test_vectors = encode(texts, args.threads)
    print(f"\nTest set {path.name}: {len(rows)} rows (reported only; nothing above was chosen on it)")
    print(f"{'classifier':<22}{'C':>5}{'accuracy':>10}{'wrong':>8}{'OOS handed off':>16}{'raw top-1 acc':>15}")
    for variant in variants:
        features, model = fit(variant, data.texts, vectors, y, everything, chosen[variant], args.encoder_weight,
                              args.class_weight)
        proba = model.predict_proba(features.matrix(texts, test_vectors))
        predicted = decide(model.classes_, proba)
        raw = [str(model.classes_[i]) for i in proba.argmax(axis=1)]
        for i, text in enumerate(texts):
            if scam_signals(text):
                predicted[i] = "report_fraud"
            if not has_words(text):
                predicted[i] = FALLBACK
        s = score(gold, predicted)
        raw_s = score(gold, raw)
        print(f"{LABELS[variant]:<22}{chosen[variant]:>5g}{s.accuracy:>10.3f}{s.wrong_answer_rate:>8.3f}"
              f"{s.out_of_scope_handed_off:>16.3f}{raw_s.accuracy:>15.3f}")
    print(f"(in scope: {s.in_scope_rows} rows, out_of_scope: {s.out_of_scope_rows} rows; labels the training data "
          f"lacks count as wrong)")


# ---- main --------------------------------------------------------------------------------------

def main(argv: Optional[List[str]] = None) -> int:
    from bot.sentence_vectors import resolve_threads

    parser = argparse.ArgumentParser(prog="python -m bot.devtools.classifier_study", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "nlu"), help="folder of Rasa NLU YAML files")
    parser.add_argument("--folds", type=int, default=5, help="outer CV folds")
    parser.add_argument("--inner-folds", type=int, default=3, help="inner CV folds that choose C")
    parser.add_argument("--encoder-weight", type=float, default=1.0, help="multiplier of the encoder block in b")
    parser.add_argument("--class-weight", default="balanced", choices=["balanced", "none"],
                        help="'balanced' as Rasa's LogisticRegressionClassifier")
    parser.add_argument("--threads", type=int, default=None, help="encoder BLAS threads (default min(2, cores))")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes for the C search (the timed final fits run alone)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--realq", metavar="PATH", help="also fit on all data and score this labelled TSV (test only)")
    args = parser.parse_args(argv)
    args.class_weight = None if args.class_weight == "none" else args.class_weight
    args.threads = resolve_threads(args.threads)
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    warnings.filterwarnings("ignore")
    logging.getLogger("rasa").setLevel(logging.ERROR)

    data = build_dataset(Path(args.data))
    counts = Counter(data.intents)
    print(f"Data: {args.data}: {data.files} files, {data.raw_examples} examples, {len(counts)} intents; "
          f"{data.duplicates} duplicate texts after normalisation kept once, {data.conflicting} texts with two "
          f"intents dropped -> {len(data.texts)} examples (fingerprint {data.fingerprint})")
    print("  smallest intents: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: kv[1])[:4]))

    from bot.sentence_vectors import encode

    started = time.perf_counter()
    vectors = encode(data.texts, args.threads)
    print(f"Encoder: {len(data.texts)} texts in {time.perf_counter() - started:.1f} s (load + batch), "
          f"threads={args.threads}, {os.cpu_count()} cores")
    print(f"\nStratified {args.folds}-fold CV, C from an inner {args.inner_folds}-fold CV over {list(C_GRID)} "
          f"inside each training fold; class_weight={args.class_weight}, encoder weight {args.encoder_weight:g}")
    results = cross_validate(data, vectors, variants, args)

    print(f"\n{'classifier':<22}{'C chosen':>12}{'accuracy':>10}{'macro-F1':>10}{'<0.45':>8}{'acc>=.45':>10}"
          f"{'handoff':>9}{'ans.acc':>9}{'wrong':>7}{'ECE':>7}{'train s':>9}{'+C search':>10}{'ms/msg':>8}")
    for variant in variants:
        r = results[variant]
        s = r.summary()
        cs = ",".join(f"{c:g}" for c in r.chosen_c)
        print(f"{LABELS[variant]:<22}{cs:>12}{s['accuracy']:>10.3f}{s['macro_f1']:>10.3f}{s['below_045']:>8.3f}"
              f"{s['acc_at_045']:>10.3f}{s['handed_off']:>9.3f}{s['answered_acc']:>9.3f}{s['wrong_answered']:>7.3f}"
              f"{s['ece']:>7.3f}{statistics.mean(r.fit_seconds):>9.2f}{statistics.mean(r.search_seconds):>10.1f}"
              f"{statistics.median(r.predict_ms):>8.2f}")
    print("  <0.45: share of predictions with max probability below 0.45; acc>=.45: accuracy of the others;"
          "\n  handoff: share FallbackClassifier hands off (<0.45 or top-2 within 0.05); ans.acc: accuracy of the"
          "\n  answered; wrong: share answered with a wrong intent; ECE: 10-bin calibration error;"
          f"\n  train s: TF-IDF + fit at the chosen C on {args.folds - 1}/{args.folds} of the data; +C search: the inner CV;"
          "\n  ms/msg: median, one message at a time (normalise, encode, vectorise, predict).")

    if args.realq:
        path = Path(args.realq)
        if not path.exists():
            print(f"{path} not found", file=sys.stderr)
            return 1
        print()
        realq(data, vectors, variants, path, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
