"""The model server of Rasa's model pulling: `GET /model` serves models/wallet.tar.gz.

Every Rasa process with `models: {url: http://<console>/model, wait_time_between_pulls: N}` in
its endpoints.yml (workers, the scale-out: bot/devtools/cluster.py, scripts/run.sh) asks here
every N seconds whether the model changed, so a switch (`bot faq retrain`, the console's
retraining, `--restore-previous`) that replaces models/wallet.tar.gz of the project reaches every
process within N seconds plus the time to load it (bot/serving/model_pull.py).

  GET /model             the current model, `ETag: "<model_id>"`; 304 when `If-None-Match`
                         names it already (most pulls); 404 when there is no model file
  GET /model/processes   which model each pulling process serves (its last pull), newest first

Loopback only, and never through a proxy (`X-Forwarded-For`/`X-Real-IP` present → 403): the
model is not for strangers. Rasa instances on other hosts need their own authenticated file
server (Rasa's `models:` block takes `token:` and headers); see docs/operations.md.
"""
from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import tarfile
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

from sanic import Sanic, response
from sanic.request import Request

from bot.serving.model_pull import PROCESS_HEADER, etag, model_fingerprint, model_id_in

logger = logging.getLogger(__name__)
MODEL_FILE = "models/wallet.tar.gz"
MAX_PROCESSES = 256


def from_this_host(request: Request) -> bool:
    """A loopback peer that no proxy forwarded."""
    try:
        peer = ipaddress.ip_address(request.ip)
    except ValueError:
        return False
    return peer.is_loopback and not request.headers.get("x-forwarded-for") and not request.headers.get("x-real-ip")


def _read_current(path: Path) -> Optional[Tuple[bytes, str]]:
    """The file's bytes and their model_id, read once (a switch may replace the file meanwhile)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data, model_id_in(io.BytesIO(data), str(path))


def register_model_server(app: Sanic, root: Callable[[], Path]) -> None:
    pulls: Dict[str, Dict] = {}

    def record(request: Request, fingerprint: str) -> None:
        """The process's If-None-Match is the fingerprint of the model it serves: an ETag of ours
        (quoted), or at its first pull a random id of Rasa's (no model from here yet: None)."""
        name = (request.headers.get(PROCESS_HEADER) or "")[:200]
        if not name:
            return
        served = fingerprint[1:-1] if len(fingerprint) > 2 and fingerprint[0] == fingerprint[-1] == '"' else None
        pulls[name] = {"process": name, "model_id": served, "seen": time.time()}
        if len(pulls) > MAX_PROCESSES:
            for old in sorted(pulls, key=lambda k: pulls[k]["seen"])[: len(pulls) - MAX_PROCESSES]:
                pulls.pop(old, None)

    @app.get("/model")
    async def model(request: Request):
        if not from_this_host(request):
            return response.json({"error": "模型只提供给本机的 Rasa 进程", "status": 403}, status=403)
        path = root() / MODEL_FILE
        try:
            current = await asyncio.to_thread(model_fingerprint, path)
        except FileNotFoundError:
            return response.json({"error": f"{MODEL_FILE} 不存在", "status": 404}, status=404)
        except (OSError, ValueError, EOFError, tarfile.TarError) as err:  # Rasa keeps its model and asks again
            logger.error("cannot serve %s: %s", path, err)
            return response.json({"error": f"{MODEL_FILE} 无法读取：{err}", "status": 503}, status=503)
        sent = request.headers.get("if-none-match", "")
        if sent == etag(current):
            record(request, sent)
            return response.empty(status=304, headers={"ETag": etag(current)})
        try:
            found = await asyncio.to_thread(_read_current, path)
        except (OSError, ValueError, EOFError, tarfile.TarError) as err:
            logger.error("cannot serve %s: %s", path, err)
            return response.json({"error": f"{MODEL_FILE} 无法读取：{err}", "status": 503}, status=503)
        if found is None:
            return response.json({"error": f"{MODEL_FILE} 不存在", "status": 404}, status=404)
        data, model_id = found
        # What it serves from now on (Rasa loads what it downloaded); recorded at its next pull.
        record(request, sent)
        return response.raw(data, content_type="application/gzip",
                            headers={"ETag": etag(model_id), "filename": "wallet.tar.gz"})

    @app.get("/model/processes")
    async def processes(request: Request):
        if not from_this_host(request):
            return response.json({"error": "只对本机开放", "status": 403}, status=403)
        try:
            current = await asyncio.to_thread(model_fingerprint, root() / MODEL_FILE)
        except (OSError, ValueError, EOFError, tarfile.TarError):
            current = None
        now = time.time()
        rows = [{**p, "current": p["model_id"] == current, "seconds_ago": round(now - p["seen"], 1)}
                for p in sorted(pulls.values(), key=lambda p: -p["seen"])]
        return response.json({"model_id": current, "processes": rows})
