"""Start the real action server and Rasa server for end-to-end tests (free ports, temp DBs).

Every function here that starts a server process says needs("server") (tests/conftest.py): a
test using it without @pytest.mark.server fails. Serving the model also needs "model"."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional

import requests

from bot.devtools.cluster import free_port, wait_up
from bot.security.tokens import rasa_auth_args
from tests.conftest import MODEL, needs, require_model, require_postgres

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def always_open_settings(workdir: Path) -> Path:
    """assistant.yml with support open 24/7, so hand-offs go to the live queue."""
    settings = workdir / "assistant.yml"
    settings.write_text(
        (ROOT / "assistant.yml").read_text(encoding="utf-8").split("support_hours:")[0]
        + "support_hours:\n  timezone: Asia/Shanghai\n  weekly:\n"
        + "".join(f'    {d}: ["00:00", "23:59:59"]\n' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")),
        encoding="utf-8",
    )
    return settings


@contextmanager
def running_assistant(
    workdir: Path,
    db_url: str = "",
    console: bool = True,
    credentials: Optional[str] = None,
    extra_env: Optional[Dict[str, str]] = None,
    tracker_store: str = "bot.serving.tracker_store.CachedSQLTrackerStore",
    endpoints_extra: str = "",
    model: Optional[Path] = None,
) -> Iterator[Dict[str, str]]:
    """Action server, Rasa server (REST channel, HTTP API) and agent console on loopback.

    Started as the launchers start them: Rasa through `bot rasa run … --wallet-jwt` (the JWT secret
    and the action server token never on a command line), the action server as `bot actions`.

    Support hours are 24/7 here (a test settings file), so hand-offs go to the live queue.
    `model`: the model file to serve (default models/wallet.tar.gz of the checkout).
    """
    needs("server")
    if model is None:
        require_model()
    else:
        needs("model")  # a copy of the trained model
    rasa_port, action_port, console_port = free_port(), free_port(), free_port()
    db_url = db_url or f"sqlite:///{workdir / 'tickets.db'}"
    settings = always_open_settings(workdir)
    env = {**os.environ, "WALLET_DB_URL": db_url, "TF_CPP_MIN_LOG_LEVEL": "2",
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "WALLET_SETTINGS": str(settings),
           "WALLET_RASA_URL": f"http://127.0.0.1:{rasa_port}", "PYTHONWARNINGS": "ignore",
           **(extra_env or {})}
    endpoints = workdir / "endpoints.yml"
    endpoints.write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{action_port}/webhook"\n'
        f"tracker_store:\n  type: {tracker_store}\n  dialect: sqlite\n  db: {workdir / 'tracker.db'}\n"
        + endpoints_extra,
        encoding="utf-8",
    )
    procs = []
    try:
        action_log = workdir / "actions.log"
        actions = subprocess.Popen(  # as `make shell` starts it: only Rasa's token is answered
            ["nice", "-n", "10", str(BIN / "python"), "-m", "bot", "actions", "--port", str(action_port)],
            cwd=ROOT, env=env, stdout=open(action_log, "w"), stderr=subprocess.STDOUT,
        )
        procs.append(actions)
        rasa_log = workdir / "rasa.log"
        rasa = subprocess.Popen(
            [str(BIN / "python"), "-m", "bot", "rasa", "run", "-m", str(model or ROOT / "models/wallet.tar.gz"), "--enable-api",
             "-i", "127.0.0.1", "--port", str(rasa_port), "--credentials", credentials or str(ROOT / "credentials.yml"),
             "--endpoints", str(endpoints), *rasa_auth_args()],
            cwd=ROOT, env=env, stdout=open(rasa_log, "w"), stderr=subprocess.STDOUT,
        )
        procs.append(rasa)
        urls = {"rasa": f"http://127.0.0.1:{rasa_port}", "db_url": db_url, "env": env, "workdir": str(workdir),
                "rasa_pid": rasa.pid,
                "rasa_log": str(rasa_log), "action_log": str(action_log)}
        if console:
            console_log = workdir / "console.log"
            console_proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "console", "--port", str(console_port)],
                cwd=ROOT, env=env, stdout=open(console_log, "w"), stderr=subprocess.STDOUT,
            )
            procs.append(console_proc)
            wait_up(f"http://127.0.0.1:{console_port}/health", console_proc, console_log)
            urls.update(console=f"http://127.0.0.1:{console_port}", console_log=str(console_log))
        wait_up(f"http://127.0.0.1:{action_port}/health", actions, action_log)
        wait_up(f"http://127.0.0.1:{rasa_port}/", rasa, rasa_log)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()



@contextmanager
def _running_bot_command(workdir: Path, command: str, env: Dict[str, str], timeout: float = 240) -> Iterator[str]:
    """`python -m bot <command> --port N` with `env` over os.environ, up (GET /health); its URL."""
    needs("server")
    port = free_port()
    log = workdir / f"{command}.log"
    proc = subprocess.Popen([sys.executable, "-m", "bot", command, "--port", str(port)], cwd=ROOT,
                            env={**os.environ, **env}, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        wait_up(f"http://127.0.0.1:{port}/health", proc, log, timeout=timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def running_action_server(workdir: Path, env: Dict[str, str]) -> Iterator[str]:
    """`python -m bot actions` on its own (as `make actions` starts it); its URL."""
    with _running_bot_command(workdir, "actions", env) as url:
        yield url


@contextmanager
def running_console(workdir: Path, env: Dict[str, str], timeout: float = 240) -> Iterator[str]:
    """The agent console on its own (`python -m bot console`); its URL."""
    with _running_bot_command(workdir, "console", env, timeout) as url:
        yield url


@contextmanager
def running_cluster(workdir: Path, **kwargs):
    """bot.devtools.cluster.running_cluster (nginx, Rasa servers on PostgreSQL) for a test."""
    needs("server")
    require_postgres()
    if "model" in kwargs:
        needs("model")
    else:
        require_model()
    from bot.devtools.cluster import running_cluster as start

    with start(workdir, **kwargs) as cluster:
        yield cluster

class ConsoleAgent:
    """A support agent using the console API (signs up if needed, signs in, handles tickets)."""

    def __init__(self, urls: Dict[str, str], name: str = "小王", password: str = "password123") -> None:
        from bot.handoff.agents import AgentStore

        store = AgentStore(urls["db_url"])
        if store.by_name(name) is None:
            store.add(name, password)
        self.base = urls["console"]
        r = requests.post(f"{self.base}/api/login", json={"name": name, "password": password}, timeout=10)
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}

    def post(self, number: str, action: str, **body) -> requests.Response:
        return requests.post(f"{self.base}/api/tickets/{number}/{action}", headers=self.headers,
                             json=body or None, timeout=30)

    def take(self, number: str, text: str) -> None:
        """Claim the ticket and send the user a reply (both must succeed)."""
        assert self.post(number, "claim").status_code == 200
        r = self.post(number, "reply", text=text)
        assert r.status_code == 200 and r.json()["in_tracker"], r.text


PROJECT_DIRS = ("bot", "actions", "data", "scripts")
PROJECT_FILES = ("assistant.yml", "config.yml", "credentials.yml", "domain.yml", "endpoints.yml")


def project_copy(base: Path) -> Path:
    """A checkout to launch from as an operator has one: this code, its own (empty) var/ and logs/
    left 0755 with a 0644 file by an older run under umask 022, models/ 0755 holding a link to the
    trained model, `.venv` linked; Rasa, console and action server ports come from the launcher's
    RASA_PORT, CONSOLE_PORT and ACTION_PORT (endpoints.yml's `${ACTION_PORT}` included).
    `base` and the copy are world-traversable, so only the modes of var/, logs/, models/ and their
    files keep other local accounts out."""
    root = base / "project"
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, root / name)
    (root / ".venv").symlink_to((ROOT / ".venv").resolve())
    for name, old in (("var", "notes.txt"), ("logs", "console.log"), ("models", None)):
        (root / name).mkdir()
        os.chmod(root / name, 0o755)
        if old:
            (root / name / old).write_text("written by an older run\n", encoding="utf-8")
            os.chmod(root / name / old, 0o644)
    (root / "models" / "wallet.tar.gz").symlink_to(MODEL.resolve())
    for path in (base, root):
        os.chmod(path, 0o755)
    return root


def launcher_env(project: Path, **extra: str) -> Dict[str, str]:
    """The environment of an operator's shell: none of the test run's WALLET_*/CONSOLE_* settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WALLET_", "CONSOLE_", "RASA_", "ACTION_")) and k not in ("PYTHONPATH", "WORKERS")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore", **extra}


@contextmanager
def launched(project: Path, env: Dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`scripts/run.sh` of `project` (what `make run` runs after training), stopped like Ctrl-C."""
    needs("server")
    require_model()
    proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=project, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_up(f"http://127.0.0.1:{env['RASA_PORT']}/", proc, log)
        wait_up(f"http://127.0.0.1:{env['CONSOLE_PORT']}/health", proc, log)
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen, timeout: float = 40, how: int = signal.SIGINT) -> None:
    """Stop a launcher and the servers it started (its own process group; SIGINT as Ctrl-C) and
    wait until every one of them has exited."""
    import time

    try:
        os.killpg(proc.pid, how)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.3)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
