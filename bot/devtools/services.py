"""A private Redis and PostgreSQL for fault tests: started on free ports, restarted at will.

The fault tests restart Redis and PostgreSQL under load. The machine's own servers are shared
(other test runs, other tools), so these are separate server processes in a temporary folder,
on loopback, stopped and removed afterwards. PostgreSQL will not run as root: when this runs as
root the data folder belongs to the `postgres` account and the server runs under it (runuser).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from bot.devtools.cluster import free_port

PG_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def redis_binary() -> Optional[str]:
    return shutil.which("redis-server")


def pg_bin(name: str) -> Optional[str]:
    for folder in PG_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def _wait(check, what: str, timeout: float = 30) -> float:
    start = time.time()
    while time.time() - start < timeout:
        if check():
            return time.time() - start
        time.sleep(0.05)
    raise TimeoutError(f"{what} not up after {timeout} s")


class PrivateRedis:
    """redis-server on a free loopback port, no persistence (a restart starts empty, the harder case)."""

    def __init__(self, workdir: Path) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.binary, self.workdir, self.port = binary, Path(workdir), free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> float:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=open(self.workdir / "redis.log", "a"), stderr=subprocess.STDOUT)
        return _wait(self.ping, "redis-server")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def restart(self, down_for: float = 0.0) -> float:
        """Stop, stay down `down_for` seconds, start; seconds until it answers again."""
        self.stop()
        time.sleep(down_for)
        return self.start()


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb, trust auth on loopback) with database `test`."""

    def __init__(self, workdir: Optional[Path] = None) -> None:
        """`workdir`: where the cluster lives (default: a new folder in the temp dir). As root it
        is always a new folder of its own, owned by `postgres` (which must reach it)."""
        for name in ("initdb", "pg_ctl", "postgres"):
            if pg_bin(name) is None:
                raise RuntimeError(f"PostgreSQL's {name} is not installed")
        self.as_root = os.geteuid() == 0
        if workdir is None or self.as_root:
            workdir = Path(tempfile.mkdtemp(prefix="wallet-pg-"))
        self.workdir, self.port = Path(workdir), free_port()
        self.data = self.workdir / "pgdata"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/test"

    def _run(self, args: List[str], **kwargs) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return subprocess.run(prefix + args, check=True, capture_output=True, text=True, **kwargs)

    def init(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            shutil.chown(self.workdir, "postgres", "postgres")
            os.chmod(self.workdir, 0o700)
        self._run([pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--no-sync"])
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.workdir}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")

    def start(self) -> float:
        started = time.time()
        self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.workdir / "postgres.log"), "-w", "start"])
        _wait(self.ready, "PostgreSQL")
        return time.time() - started

    def ready(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.url.rsplit("/", 1)[0] + "/postgres", connect_timeout=1).close()
            return True
        except psycopg2.Error:
            return False

    def create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.url.rsplit("/", 1)[0] + "/postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE test")
        conn.close()

    def stop(self, mode: str = "fast") -> None:
        """`fast`: what a restart by an operator does (clients are disconnected); `immediate`: a crash."""
        if (self.data / "postmaster.pid").exists():
            self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def restart(self, down_for: float = 0.0, mode: str = "fast") -> float:
        self.stop(mode)
        time.sleep(down_for)
        return self.start()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)
