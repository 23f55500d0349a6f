"""One BLAS/OpenMP thread for a serving process.

A user turn does small matrix-vector products (the FAQ question matcher scores a message against
a topic's ~60 wordings; the classifier's features). numpy's OpenBLAS splits each of them over
one thread per core, and between calls its extra thread spins waiting for the next one: on the
2-core machine, a process that serves one turn at a time gained nothing from it and lost a core's
share. Measured in the 50-user burst (bot/devtools/bench/burst.py, same run, load average 4-5):
throughput 88 / 63 / 88 msg/s with the libraries' default (2 threads) against 109 / 84 / 107
with one; one 63-row product took 0.24 ms with two threads and 0.01 ms with one; the spinning
thread used 0.4-1.7 s of CPU per 1,000 messages.

Training and evaluation keep the libraries' defaults (they multiply big matrices): only the
server calls `limit()`, once it has loaded its model. `WALLET_BLAS_THREADS` sets the count (default
1; 0 leaves the libraries' own). The sentence encoder applies its own limit around each call
(bot/sentence_vectors.py), which restores this one afterwards.
"""
from __future__ import annotations

import logging
from typing import Optional

from bot.config import settings

logger = logging.getLogger(__name__)

_applied: Optional[int] = None


def limit() -> Optional[int]:
    """Limit BLAS and OpenMP pools of this process to `WALLET_BLAS_THREADS` (once); the count
    applied, or None when left alone."""
    global _applied
    threads = settings().blas_threads
    if threads <= 0:
        return None
    if _applied != threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)  # not a context: stays for the life of the process
        _applied = threads
        logger.debug("BLAS/OpenMP threads limited to %d", threads)
    return threads
