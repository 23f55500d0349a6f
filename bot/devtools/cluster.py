"""Start the scale-out setup on this machine: N Rasa servers behind nginx, and the agent console.

Every instance loads the same model, stores conversations in PostgreSQL (our cached SQL tracker
store, which re-checks the newest event id each turn, so instances see each other's writes),
takes each conversation's lock in Redis and keeps its shared state there (bot/shared_state:
dedupe, offered buttons, rate limits, the masker's digit memory; under a key prefix of its own,
removed when the cluster stops). Custom actions run in-process in each instance (`bot/serving`),
so no separate action server is needed; tickets live in the same PostgreSQL.

The agent console talks to Rasa through nginx (any instance will do) and is the model server:
every instance pulls models/wallet.tar.gz of the project from its `GET /model` every
`pull_seconds` (bot/serving/model_pull.py), so a model switch reaches all of them; it knows each
instance's own URL (WALLET_RASA_INSTANCES) to report which model each one serves.

`make scale` (python -m bot scale) runs it in the foreground; tests and `make bench`
use `running_cluster`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional
from urllib.parse import urlparse

import requests

from bot.serving.lock_store import redis_lock_store_yaml
from bot.serving.model_pull import PULL_SECONDS, model_server_yaml
from bot.config import ROOT, settings
from bot.security.tokens import rasa_auth_args

BIN = Path(sys.executable).parent
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.tmpl"
DEFAULT_PG = settings().pg_url
DEFAULT_REDIS = settings().redis_url


def free_port() -> int:
    """A free TCP port on loopback (servers started by tests, benchmarks and the cluster)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if not found:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
    return found


def endpoints_yaml(pg_url: str, redis_url: str, key_prefix: str, model_url: str = "",
                   pull_seconds: int = PULL_SECONDS) -> str:
    pg = urlparse(pg_url)
    models = model_server_yaml(model_url, pull_seconds) if model_url else ""
    return models + (
        "tracker_store:\n"
        "  type: bot.serving.tracker_store.CachedSQLTrackerStore\n"
        "  dialect: postgresql\n"
        f"  url: {pg.hostname or '127.0.0.1'}\n"
        f"  port: {pg.port or 5432}\n"
        f"  db: {pg.path.lstrip('/') or 'postgres'}\n"
        f"  username: {pg.username or 'postgres'}\n"
        + (f"  password: {pg.password}\n" if pg.password else "")
        + redis_lock_store_yaml(redis_url, key_prefix)
    )


def nginx_conf(workdir: Path, host: str, port: int, backends: List[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in backends)
    return NGINX_TEMPLATE.read_text(encoding="utf-8").format(workdir=workdir, host=host, port=port, servers=servers)


def wait_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240) -> float:
    """Seconds until `url` answers below 500; fails with the log's tail if `proc` dies or hangs."""
    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return time.time() - start
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not up after {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


@dataclass
class Cluster:
    url: str
    workdir: Path
    instances: List[Dict] = field(default_factory=list)
    db_url: str = ""
    env: Dict[str, str] = field(default_factory=dict)
    nginx_pid: int = 0
    console: str = ""
    """The agent console (and model server), or "" when started without it."""
    console_pid: int = 0
    project_root: Path = ROOT

    def stop_instance(self, index: int) -> None:
        """Stop one Rasa server the way an orchestrator does (SIGTERM, in-flight requests finish)."""
        proc = self.instances[index]["proc"]
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()

    def kill_instance(self, index: int) -> None:
        """kill -9 one Rasa server: no goodbye, locks and requests in flight left behind."""
        proc = self.instances[index]["proc"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def start_instance(self, index: int, wait: bool = True) -> float:
        """Start a stopped or killed instance again, as it was (same port: nginx takes it back
        by itself once its fail_timeout is over); seconds until it answers."""
        inst = self.instances[index]
        if inst["proc"].poll() is None:
            raise RuntimeError(f"instance {index} is still running")
        started = time.time()
        inst["proc"] = subprocess.Popen(inst["command"], cwd=ROOT, env=inst["env"],
                                        stdout=open(inst["log"], "a"), stderr=subprocess.STDOUT)
        inst["pid"] = inst["proc"].pid
        if wait:
            wait_up(inst["url"] + "/", inst["proc"], inst["log"])
        return time.time() - started


@contextmanager
def temporary_schema(pg_url: str = DEFAULT_PG, prefix: str = "wallet_scale") -> Iterator[str]:
    """A fresh PostgreSQL schema for one run (tests, benchmarks), dropped afterwards."""
    import psycopg2

    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(pg_url)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        conn.cursor().execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


def _schema_env(pg_url: str, schema: Optional[str]) -> Dict[str, str]:
    return {"POSTGRESQL_SCHEMA": schema} if schema else {}


@contextmanager
def running_cluster(
    workdir: Path,
    instances: int = 2,
    pg_url: str = DEFAULT_PG,
    redis_url: str = DEFAULT_REDIS,
    schema: Optional[str] = None,
    port: Optional[int] = None,
    host: str = "127.0.0.1",
    model: Optional[Path] = None,
    settings: Optional[Path] = None,
    credentials: Path = ROOT / "credentials.yml",
    project_root: Optional[Path] = None,
    console: bool = True,
    extra_env: Optional[Dict[str, Optional[str]]] = None,
    pull_seconds: int = PULL_SECONDS,
    instance_env: Optional[List[Dict[str, str]]] = None,
) -> Iterator[Cluster]:
    """nginx on `port` in front of `instances` Rasa servers, and the console; everything stops on exit.

    `schema`: a PostgreSQL schema for the tracker and ticket tables (tests use a fresh one).
    `credentials`: the channels the instances run (tests).
    `project_root`: the project whose models/wallet.tar.gz is served and switched (default this
    checkout; tests use a copy). `model`: what the instances load when the model server cannot
    be reached at their start (default: the project's current model). `console=False`: no
    console, so no model server (each instance keeps the model it started with).
    `extra_env`: more environment for every process (e.g. WALLET_REDIS_URL; None unsets one); `instance_env`: for
    each instance in turn (e.g. {"SANIC_WORKERS": "2"} for one of them).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / "nginx_tmp" / sub).mkdir(parents=True, exist_ok=True)
    root = Path(project_root or ROOT)
    model = Path(model or root / "models" / "wallet.tar.gz")
    prefix = f"wallet{uuid.uuid4().hex[:8]}"
    port = port or free_port()
    rasa_ports = [free_port() for _ in range(instances)]
    console_port = free_port() if console else 0
    model_url = f"http://127.0.0.1:{console_port}/model" if console else ""
    endpoints = workdir / "endpoints.yml"
    endpoints.write_text(endpoints_yaml(pg_url, redis_url, prefix, model_url, pull_seconds), encoding="utf-8")
    db_url = pg_url + (f"?options=-csearch_path%3D{schema}" if schema else "")
    env = {**os.environ, "WALLET_DB_URL": db_url, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
           "WALLET_SOCKETIO_REDIS": redis_url,
           # the instances' shared state (bot/shared_state), under this cluster's own key prefix
           "WALLET_REDIS_URL": redis_url, "WALLET_REDIS_PREFIX": f"{prefix}:",
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1", **_schema_env(pg_url, schema)}
    if settings:
        env["WALLET_SETTINGS"] = str(settings)
    if project_root:
        env.update(WALLET_PROJECT_ROOT=str(root), WALLET_FAQ=str(root / "data" / "faq.yml"))
    for name, value in (extra_env or {}).items():  # None: not set for these processes
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    cluster = Cluster(url=f"http://{host}:{port}", workdir=workdir, db_url=db_url, env=env, project_root=root)
    nginx_proc = console_proc = None
    from bot.db.engine import engine_for

    engine_for(db_url)  # ticket tables migrated once, before the servers race to do it
    try:
        if console:
            log = workdir / "console.log"
            console_env = {**env, "WALLET_RASA_URL": cluster.url,
                           "WALLET_RASA_INSTANCES": ",".join(f"http://127.0.0.1:{p}" for p in rasa_ports)}
            console_proc = subprocess.Popen(
                [str(BIN / "python"), "-m", "bot", "console", "--host", "127.0.0.1", "--port", str(console_port)],
                cwd=ROOT, env=console_env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
            cluster.console, cluster.console_pid = f"http://127.0.0.1:{console_port}", console_proc.pid
            cluster.env["WALLET_RASA_INSTANCES"] = console_env["WALLET_RASA_INSTANCES"]
            wait_up(cluster.console + "/health", console_proc, log)
        for i, rasa_port in enumerate(rasa_ports):
            log = workdir / f"rasa{i + 1}.log"
            command = [str(BIN / "python"), "-m", "bot", "rasa", "run", "-m", str(model), "--enable-api",
                       "-i", "127.0.0.1", "--port", str(rasa_port), "--credentials", str(credentials),
                       "--endpoints", str(endpoints), *rasa_auth_args()]
            inst_env = {**env, "WALLET_RASA_URL": f"http://127.0.0.1:{rasa_port}",
                        **((instance_env or [])[i] if i < len(instance_env or []) else {})}
            proc = subprocess.Popen(command, cwd=ROOT, env=inst_env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
            cluster.instances.append({"url": f"http://127.0.0.1:{rasa_port}", "port": rasa_port,
                                      "proc": proc, "pid": proc.pid, "log": log, "command": command, "env": inst_env})
        for inst in cluster.instances:
            inst["startup_s"] = round(wait_up(inst["url"] + "/", inst["proc"], inst["log"]), 1)
        conf = workdir / "nginx.conf"
        conf.write_text(nginx_conf(workdir, host, port, rasa_ports), encoding="utf-8")
        nginx_proc = subprocess.Popen([nginx_binary(), "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"],
                                      stdout=open(workdir / "nginx.log", "w"), stderr=subprocess.STDOUT)
        cluster.nginx_pid = nginx_proc.pid
        wait_up(cluster.url + "/", nginx_proc, workdir / "nginx_error.log", timeout=30)
        yield cluster
    finally:
        if nginx_proc:
            nginx_proc.terminate()
        for inst in cluster.instances:
            if inst["proc"].poll() is None:
                inst["proc"].terminate()
        if console_proc:
            console_proc.terminate()
        others = [nginx_proc, console_proc]
        for proc in [i["proc"] for i in cluster.instances] + [p for p in others if p]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        _drop_keys(redis_url, prefix)


def _drop_keys(redis_url: str, prefix: str) -> None:
    """The cluster's keys in Redis (locks, shared state): they would expire, but go at once."""
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run the scale-out setup locally (Ctrl-C stops it).")
    parser.add_argument("--instances", type=int, default=int(os.environ.get("SCALE_INSTANCES", 2)))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SCALE_PORT", 8080)))
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="wallet-scale-"))
    print(f"==> starting {args.instances} Rasa servers (PostgreSQL {args.pg}, Redis {args.redis}); logs in {workdir}")
    with running_cluster(workdir, args.instances, args.pg, args.redis, port=args.port) as cluster:
        for inst in cluster.instances:
            print(f"    Rasa {inst['url']} (pid {inst['pid']}, up in {inst['startup_s']} s)")
        print(f"    agent console and model server {cluster.console} (instances pull {cluster.console}/model)")
        print(f"==> nginx on {cluster.url}: POST {cluster.url}/webhooks/rest/webhook   Ctrl-C stops everything")
        try:
            while all(i["proc"].poll() is None for i in cluster.instances):
                time.sleep(1)
            print("a Rasa server stopped; see its log in", workdir)
        except KeyboardInterrupt:
            pass
    return 0

