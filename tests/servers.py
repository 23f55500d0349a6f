"""Start the real action server and Rasa server for end-to-end tests (free ports, temp DBs)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} died:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not up after {timeout}s:\n{log.read_text()[-3000:]}")


@contextmanager
def running_assistant(workdir: Path) -> Iterator[Dict[str, str]]:
    """Action server + Rasa server (REST channel, HTTP API) on loopback; yields their URLs."""
    rasa_port, action_port = free_port(), free_port()
    db_url = f"sqlite:///{workdir / 'tickets.db'}"
    env = {**os.environ, "WALLET_DB_URL": db_url, "TF_CPP_MIN_LOG_LEVEL": "2",
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    endpoints = workdir / "endpoints.yml"
    endpoints.write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{action_port}/webhook"\n'
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {workdir / 'tracker.db'}\n",
        encoding="utf-8",
    )
    procs = []
    try:
        action_log = workdir / "actions.log"
        actions = subprocess.Popen(
            [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(action_port)],
            cwd=ROOT, env=env, stdout=open(action_log, "w"), stderr=subprocess.STDOUT,
        )
        procs.append(actions)
        rasa_log = workdir / "rasa.log"
        rasa = subprocess.Popen(
            [str(BIN / "rasa"), "run", "-m", str(ROOT / "models/wallet.tar.gz"), "--enable-api",
             "-i", "127.0.0.1", "--port", str(rasa_port), "--credentials", str(ROOT / "credentials.yml"),
             "--endpoints", str(endpoints)],
            cwd=ROOT, env=env, stdout=open(rasa_log, "w"), stderr=subprocess.STDOUT,
        )
        procs.append(rasa)
        wait_for(f"http://127.0.0.1:{action_port}/health", actions, action_log)
        wait_for(f"http://127.0.0.1:{rasa_port}/", rasa, rasa_log)
        yield {"rasa": f"http://127.0.0.1:{rasa_port}", "db_url": db_url,
               "rasa_log": str(rasa_log), "action_log": str(action_log)}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
