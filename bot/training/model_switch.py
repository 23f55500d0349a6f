"""Put a new model into service without restarting: Rasa's `PUT /model`, then the files.

The running server loads the candidate first (HTTP API, our JWT). Only when every reachable
server has it does the candidate become `models/wallet.tar.gz` (the old one is kept as
`models/wallet.previous.tar.gz`), so a server that starts later loads the same model. If a
server refuses, the ones that already switched are given the old model back and nothing on
disk changes.

While Rasa loads a model (10–25 s here) its event loop is busy: messages sent meanwhile wait
and are answered afterwards (none is lost), they are not answered in parallel.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

import requests

from bot.security.tokens import api_headers

CURRENT = "models/wallet.tar.gz"
PREVIOUS = "models/wallet.previous.tar.gz"
LOAD_TIMEOUT = 600


class SwitchError(RuntimeError):
    """A server refused the new model; the old one stays in service."""


@dataclass(frozen=True)
class ServerResult:
    url: str
    status: str
    """"loaded", or "unreachable" (not running: it loads models/wallet.tar.gz when it starts)."""

    def as_dict(self) -> dict:
        return {"url": self.url, "status": self.status}


def load_on_server(url: str, model_file: Path) -> str:
    """PUT /model on one Rasa server: "loaded" or "unreachable"; SwitchError when refused."""
    try:
        resp = requests.put(f"{url.rstrip('/')}/model", json={"model_file": str(Path(model_file).resolve())},
                            headers=api_headers(), timeout=LOAD_TIMEOUT)
    except requests.ConnectionError:  # includes ConnectTimeout: nothing listens there
        return "unreachable"
    except requests.Timeout:
        raise SwitchError(f"{url} 加载新模型超时（{LOAD_TIMEOUT} 秒）") from None
    if resp.status_code != 204:
        raise SwitchError(f"{url} 拒绝加载新模型：HTTP {resp.status_code} {resp.text[:300]}")
    return "loaded"


def _copy_atomic(source: Path, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    shutil.copy2(source, tmp)
    os.replace(tmp, target)


def install(root: Path, candidate: Path) -> Path:
    """Make `candidate` the current model file; the current one becomes the previous one."""
    current, previous = root / CURRENT, root / PREVIOUS
    current.parent.mkdir(parents=True, exist_ok=True)
    if current.exists():
        _copy_atomic(current, previous)
    if candidate.resolve().parent.stat().st_dev == current.parent.stat().st_dev:
        os.replace(candidate, current)  # never a moment without a model file
    else:
        _copy_atomic(candidate, current)
    return current


def switch(root: Path, candidate: Path, rasa_urls: Sequence[str]) -> List[ServerResult]:
    """Load `candidate` on every server in `rasa_urls`, then install it as the current model."""
    results: List[ServerResult] = []
    for url in rasa_urls:
        try:
            results.append(ServerResult(url, load_on_server(url, candidate)))
        except SwitchError:
            old = root / CURRENT
            for done in results:
                if done.status == "loaded" and old.exists():
                    try:
                        load_on_server(done.url, old)
                    except SwitchError:
                        pass  # reported with the original error below; that server needs a restart
            raise
    install(root, candidate)
    return results


def restore_previous(root: Path, rasa_urls: Sequence[str]) -> List[ServerResult]:
    """Put the previous model back in service (the current one becomes the previous one)."""
    previous = root / PREVIOUS
    if not previous.exists():
        raise SwitchError(f"{PREVIOUS} 不存在：还没有切换过模型")
    staged = root / "models" / ".restore.tar.gz"
    _copy_atomic(previous, staged)
    try:
        return switch(root, staged, rasa_urls)
    finally:
        staged.unlink(missing_ok=True)  # moved into place on success
