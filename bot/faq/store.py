"""The FAQ as the action server sees it: loaded at start, reloaded when the file changes.

Fixing an answer therefore needs no retraining and no restart (it is live within a second). A broken edit keeps the last
good FAQ in service (and logs why) instead of taking the assistant down.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from functools import lru_cache
from typing import Optional, Tuple

from bot.faq.model import Faq, FaqError, load_faq

logger = logging.getLogger(__name__)


class FaqStore:
    """`check_every`: seconds between looks at the file (every message asks for the FAQ)."""

    def __init__(self, path: Path, check_every: float = 1.0) -> None:
        self.path = Path(path)
        self.check_every = check_every
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self._faq: Optional[Faq] = None
        self._stamp: Optional[Tuple[int, int]] = None
        self.get()  # fail fast at start-up when the FAQ is broken

    def _file_stamp(self) -> Tuple[int, int]:
        st = os.stat(self.path)
        return st.st_mtime_ns, st.st_size

    def get(self) -> Faq:
        now = time.monotonic()
        if self._faq is not None and now - self._checked < self.check_every:
            return self._faq
        self._checked = now
        stamp = self._file_stamp()
        if stamp == self._stamp and self._faq is not None:
            return self._faq
        with self._lock:
            if stamp != self._stamp or self._faq is None:
                try:
                    self._faq = load_faq(self.path)
                    logger.info("FAQ loaded from %s", self.path)
                except FaqError:
                    if self._faq is None:
                        raise
                    logger.exception("FAQ edit rejected, keeping the previous version")
                self._stamp = stamp
        return self._faq


@lru_cache(maxsize=4)
def _store_for(path: str) -> FaqStore:
    return FaqStore(Path(path))


def shared_store() -> FaqStore:
    """The process's store of the FAQ file in use (WALLET_FAQ or data/faq.yml): one watcher for
    the actions, the channels, the console and the dashboard of a process."""
    from bot.config import faq_path

    return _store_for(str(faq_path()))
