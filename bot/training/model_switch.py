"""Put a new model into service on every Rasa server without restarting.

The candidate becomes `models/wallet.tar.gz` (the old one is kept as
`models/wallet.previous.tar.gz`), then every server listed (the instances of a scale-out, not
nginx: `WALLET_RASA_INSTANCES`) is asked to load it (Rasa's `PUT /model`, our JWT) and its
`GET /status` must report the candidate's `model_id`. If a server refuses, both files are put back
as they were and the servers that already switched are given the old model back.

Where Rasa pulls its model from a model server (several workers or instances:
bot/serving/model_pull.py, the console's `GET /model`), replacing the file is what reaches every
process: each one asks every `wait_time_between_pulls` seconds and loads the new model; a
`PUT /model` makes the process that takes it pull at once. A server whose `/status` still names
the old model after `wait` seconds is reported as "stale" (it keeps pulling).

While Rasa loads a model its event loop is busy: messages sent meanwhile wait and are answered
afterwards (none is lost), they are not answered in parallel.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import requests

from bot.security.tokens import api_headers
from bot.serving.model_pull import model_fingerprint

CURRENT = "models/wallet.tar.gz"
PREVIOUS = "models/wallet.previous.tar.gz"
LOAD_TIMEOUT = 600
STATUS_WAIT = 90.0
"""How long a server may take to report the new model (a pull interval plus loading it)."""


class SwitchError(RuntimeError):
    """A server refused the new model; the old one stays in service."""


@dataclass(frozen=True)
class ServerResult:
    url: str
    status: str
    """"loaded", "stale" (still the old model after the wait; it keeps pulling), or
    "unreachable" (not running: it loads models/wallet.tar.gz when it starts)."""
    model_id: Optional[str] = None
    seconds: Optional[float] = None

    def as_dict(self) -> dict:
        return {"url": self.url, "status": self.status, "model_id": self.model_id, "seconds": self.seconds}


def model_id_of(path: Path) -> str:
    try:
        return model_fingerprint(path)
    except (OSError, ValueError, EOFError, tarfile.TarError) as err:
        raise SwitchError(f"{path} 不是可用的模型文件：{err}") from None


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


def served_model(url: str, timeout: float = 10) -> Optional[str]:
    """The model_id a server reports on GET /status; None when it cannot be reached or has none."""
    try:
        resp = requests.get(f"{url.rstrip('/')}/status", headers=api_headers(), timeout=timeout)
    except requests.RequestException:
        return None
    if resp.status_code != 200:
        return None
    try:
        return resp.json().get("model_id")
    except ValueError:
        return None


def serving(urls: Sequence[str]) -> List[Dict[str, Optional[str]]]:
    """Which model each server serves now: [{url, model_id}] (model_id None: unreachable)."""
    return [{"url": url, "model_id": served_model(url)} for url in urls]


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


def _wait_for(url: str, model_id: str, deadline: float) -> Optional[str]:
    """Poll GET /status until the server reports `model_id` or the deadline; what it reports last."""
    while True:
        served = served_model(url)
        if served == model_id or time.monotonic() >= deadline:
            return served
        time.sleep(1)


class _Backup:
    """The model files as they were, to put back when a server refuses the candidate."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.saved: Dict[str, Optional[Path]] = {}
        for name in (CURRENT, PREVIOUS):
            path = root / name
            if path.exists():
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".switch-backup.", suffix=".tar.gz")
                os.close(fd)
                shutil.copy2(path, tmp)
                self.saved[name] = Path(tmp)
            else:
                self.saved[name] = None

    def restore(self) -> None:
        for name, saved in self.saved.items():
            if saved is not None:
                os.replace(saved, self.root / name)
            else:
                (self.root / name).unlink(missing_ok=True)
        self.saved = {}

    def discard(self) -> None:
        for saved in self.saved.values():
            if saved is not None:
                saved.unlink(missing_ok=True)
        self.saved = {}


def switch(root: Path, candidate: Path, rasa_urls: Sequence[str], wait: float = STATUS_WAIT) -> List[ServerResult]:
    """Install `candidate` as the current model and see every server in `rasa_urls` serve it."""
    new_id = model_id_of(candidate)
    backup = _Backup(root)
    current = install(root, candidate)
    results: List[ServerResult] = []
    started = time.monotonic()
    try:
        for url in rasa_urls:
            status = load_on_server(url, current)
            if status == "unreachable":
                results.append(ServerResult(url, status))
                continue
            served = _wait_for(url, new_id, started + wait)
            results.append(ServerResult(url, "loaded" if served == new_id else "stale", served,
                                        round(time.monotonic() - started, 1)))
    except SwitchError:
        backup.restore()
        old = root / CURRENT
        for done in results:
            if done.status != "unreachable" and old.exists():
                try:
                    load_on_server(done.url, old)
                except SwitchError:
                    pass  # reported with the original error below; that server needs a restart
        raise
    backup.discard()
    return results


def restore_previous(root: Path, rasa_urls: Sequence[str], wait: float = STATUS_WAIT) -> List[ServerResult]:
    """Put the previous model back in service (the current one becomes the previous one)."""
    previous = root / PREVIOUS
    if not previous.exists():
        raise SwitchError(f"{PREVIOUS} 不存在：还没有切换过模型")
    staged = root / "models" / ".restore.tar.gz"
    _copy_atomic(previous, staged)
    try:
        return switch(root, staged, rasa_urls, wait)
    finally:
        staged.unlink(missing_ok=True)  # moved into place on success
