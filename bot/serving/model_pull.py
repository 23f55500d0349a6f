"""Every Rasa process serves the current model: Rasa's model server, made safe to start with.

With several workers or instances, `PUT /model` reaches one process. Rasa's own answer is the
model server: with `models: {url: …, wait_time_between_pulls: N}` in endpoints.yml each
process (each Sanic worker too) asks the URL every N seconds with `If-None-Match: <the
fingerprint it serves>`, gets 304 while nothing changed, and downloads and loads the model when
the `ETag` changed (rasa/core/agent.py `load_from_server`). Our model server is the agent
console's `GET /model` (bot/console/model_server.py), loopback only; its ETag is the model's
`model_id`, the id `GET /status` reports, so a process's fingerprint is the model it serves.

Two gaps in Rasa's version are closed here (`install()`, called by patches.install()):
- with a model server configured Rasa ignores `-m`: a process started while the server is
  unreachable would serve no model at all. It now loads the local file it was started with
  (with that file's model_id as its fingerprint, so the next pull of the same model is a 304);
- each process names itself (`X-Wallet-Process: host:pid`) when it pulls, so the model server
  can tell which process serves which model (workers share one port, `GET /status` reaches
  one of them at random).
A pulled model gets a new message processor, and with it our fast processor a new, empty parse
cache (bot/serving/processor.py): no answer of the old model is served from the cache.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Optional, Tuple

logger = logging.getLogger(__name__)

PROCESS_HEADER = "X-Wallet-Process"
PULL_SECONDS = 5
"""How often each process asks the model server whether the model changed (a 304 mostly)."""


def model_server_yaml(url: str, pull_seconds: int = PULL_SECONDS) -> str:
    """The `models:` block of endpoints.yml: pull the model from `url` (workers, the scale-out)."""
    return f"models:\n  url: {url}\n  wait_time_between_pulls: {int(pull_seconds)}\n"


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def etag(model_id: str) -> str:
    """The model server's ETag of a model, and so the fingerprint of a process serving it."""
    return f'"{model_id}"'


def model_fingerprint(path: Path) -> str:
    """The `model_id` in a Rasa model archive's metadata.json (what `GET /status` reports).

    Read once per file version (path, inode, size, mtime): a switch replaces the file."""
    st = os.stat(path)
    return _model_id(str(Path(path).resolve()), (st.st_ino, st.st_size, st.st_mtime_ns))


@lru_cache(maxsize=16)
def _model_id(path: str, _version: Tuple[int, int, int]) -> str:
    with open(path, "rb") as handle:
        return model_id_in(handle, path)


def model_id_in(handle: BinaryIO, name: str = "model") -> str:
    """The model_id of the Rasa model archive read from `handle`."""
    with tarfile.open(fileobj=handle, mode="r:gz") as tar:
        for member in tar:
            if member.name.lstrip("./") == "metadata.json":
                found = tar.extractfile(member)
                if found is not None:
                    model_id = json.load(found).get("model_id")
                    if isinstance(model_id, str) and model_id:
                        return model_id
                break
    raise ValueError(f"{name}: no model_id in metadata.json (not a Rasa model?)")


def install() -> None:
    """Wrap `rasa.core.agent.load_agent` (the start of every `rasa run` process and PUT /model)."""
    import rasa.core.agent as agent_module

    original = agent_module.load_agent
    if getattr(original, "_wallet_model_pull", False):
        return

    async def load_agent(model_path: Optional[str] = None, model_server: Any = None,
                         remote_storage: Optional[str] = None, endpoints: Any = None, loop: Any = None):
        server = (endpoints.model if endpoints is not None and endpoints.model else None) or model_server
        if server is not None:
            server.headers = {**(server.headers or {}), PROCESS_HEADER: process_name()}
        agent = await original(model_path=model_path, model_server=model_server, remote_storage=remote_storage,
                               endpoints=endpoints, loop=loop)
        if server is not None and agent.processor is None and model_path and os.path.isfile(model_path):
            logger.warning("model server %s gave no model: serving the local %s until it does",
                           server.url, model_path)
            agent.load_model(model_path, fingerprint=etag(model_fingerprint(Path(model_path))))
        return agent

    load_agent._wallet_model_pull = True  # type: ignore[attr-defined]
    agent_module.load_agent = load_agent
