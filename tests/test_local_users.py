"""Trust against other accounts of the same machine (issue 16, round two, findings 1 and 4).

- No secret on a command line or in an environment another account can read: Rasa gets the JWT
  secret and the action server token inside its own process (bot/serving/rasa_cli.py).
- var/, logs/, models/ owner-only: folders 0700, databases, keys, logs 0600, also what an older
  run left behind (bot/security/file_modes.py, umask 077 in every launcher).
- The action server answers only Rasa: the token of endpoints.yml's action endpoint, checked in
  constant time (bot/serving/action_server.py, bot/security/action_auth.py).

The checks "as another account" really run as `nobody` (runuser) against servers started by
scripts/run.sh, the way `make run` and `make shell` start them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import pty
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests
import yaml

from bot.db.engine import engine_for
from bot.security import action_auth
from bot.security.file_modes import private_project, private_sqlite
from bot.security.tokens import action_token, jwt_secret
from bot.serving import rasa_cli
from bot.devtools.cluster import free_port, wait_up
from tests.conftest import needs, require_model
from tests.servers import launched, launcher_env, project_copy, running_action_server, stop_group

# ---- owner-only files ---------------------------------------------------------------------------


@pytest.fixture
def lax_umask():
    """The umask most accounts have (022): what we create must be owner-only regardless."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_old_files_become_owner_only_and_links_are_not_followed(tmp_path, lax_umask):
    outside = tmp_path / "system-file"
    outside.write_text("not ours to change")
    os.chmod(outside, 0o644)
    root = tmp_path / "project"
    (root / "var" / "retrain").mkdir(parents=True)
    (root / "var" / "wallet.db").write_text("")
    (root / "var" / "retrain" / "job.json").write_text("{}")
    (root / "var" / "python").symlink_to(outside)
    (root / "models").mkdir()
    (root / "models" / "wallet.tar.gz").write_text("")
    for path in (root / "var", root / "var" / "retrain", root / "models"):
        os.chmod(path, 0o755)
    changed = private_project(root)
    assert changed == 6  # three folders, three files; logs/ is new (0700) and the link untouched
    assert os.umask(0o022) == 0o077  # the process's umask is now owner-only
    for path in (root / "var", root / "var" / "retrain", root / "models", root / "logs"):
        assert mode(path) == 0o700, path
    for path in (root / "var" / "wallet.db", root / "var" / "retrain" / "job.json", root / "models" / "wallet.tar.gz"):
        assert mode(path) == 0o600, path
    assert mode(outside) == 0o644  # a link under var/ is never followed


def test_a_linked_models_folder_is_left_alone(tmp_path):
    elsewhere = tmp_path / "shared-models"
    elsewhere.mkdir()
    os.chmod(elsewhere, 0o755)
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "models").symlink_to(elsewhere)
    private_project(root)
    assert mode(elsewhere) == 0o755


def test_sqlite_databases_are_created_owner_only(tmp_path, lax_umask):
    """Tickets, transcripts and agents' password hashes: 0600 from the first byte, WAL too."""
    url = f"sqlite:///{tmp_path / 'new' / 'wallet.db'}"
    engine = engine_for(url)
    from bot.handoff.agents import AgentStore

    AgentStore(url).add("小王", "password123")
    files = sorted(p.name for p in (tmp_path / "new").iterdir())
    assert "wallet.db" in files and "wallet.db-wal" in files, files
    assert all(mode(tmp_path / "new" / name) == 0o600 for name in files), {n: oct(mode(tmp_path / "new" / n)) for n in files}
    engine.dispose()


def test_an_old_world_readable_database_is_tightened(tmp_path, lax_umask):
    db = tmp_path / "old.db"
    db.write_text("")
    (tmp_path / "old.db-wal").write_text("")
    os.chmod(db, 0o644)
    os.chmod(tmp_path / "old.db-wal", 0o644)
    assert private_sqlite(f"sqlite:///{db}") == db
    assert mode(db) == mode(tmp_path / "old.db-wal") == 0o600
    assert private_sqlite("sqlite://") is None and private_sqlite("postgresql://u@h/db") is None


def test_the_tracker_store_file_is_owner_only(tmp_path, lax_umask):
    from rasa.shared.core.domain import Domain

    from bot.serving.tracker_store import CachedSQLTrackerStore

    db = tmp_path / "tracker" / "rasa_tracker.db"
    store = CachedSQLTrackerStore(domain=Domain.empty(), dialect="sqlite", db=str(db))
    assert mode(db) == 0o600
    store.engine.dispose()


# ---- secrets reach Rasa in-process --------------------------------------------------------------


@pytest.fixture
def rendered(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    monkeypatch.setattr(rasa_cli, "rendered_dir", lambda: folder)
    return folder


def test_our_jwt_flag_becomes_rasas_option_inside_the_process(rendered):
    args = rasa_cli.rasa_argv(["run", "--enable-api", "--wallet-jwt", "--port", "5005"])
    assert "--wallet-jwt" not in args
    assert args[args.index("--jwt-secret") + 1] == jwt_secret()
    assert args[args.index("--jwt-method") + 1] == "HS256"


def endpoints_of(args: list) -> str:
    """The endpoints file Rasa is given (`--endpoints x` or `--endpoints=x`)."""
    if "--endpoints" in args:
        return args[args.index("--endpoints") + 1]
    return next(a.split("=", 1)[1] for a in args if a.startswith("--endpoints="))


def test_rasa_reads_endpoints_with_the_action_token(tmp_path, rendered):
    source = tmp_path / "endpoints.yml"
    source.write_text('action_endpoint:\n  url: "http://${ACTION_HOST}:5055/webhook"\n'
                      "tracker_store:\n  type: x.Store\n  db: var/rasa_tracker.db\n", encoding="utf-8")
    for given in (["--endpoints", str(source)], [f"--endpoints={source}"]):
        args = rasa_cli.rasa_argv(["shell", "-m", "models/wallet.tar.gz", *given])
        dest = Path(endpoints_of(args))
        assert dest.parent == rendered and dest.name == f"endpoints.{os.getpid()}.yml"
        assert mode(dest) == 0o600 and mode(rendered) == 0o700
        config = yaml.safe_load(dest.read_text(encoding="utf-8"))
        assert config["action_endpoint"] == {"url": "http://${ACTION_HOST}:5055/webhook", "token": action_token()}
        assert config["tracker_store"]["db"] == "var/rasa_tracker.db"  # relative to Rasa's directory, as before
        assert "${ACTION_HOST}" in dest.read_text(encoding="utf-8")  # Rasa still substitutes it
    assert "token" not in source.read_text(encoding="utf-8")  # the checked-in file is unchanged


def test_endpoints_without_an_action_server_or_with_a_token_are_used_as_they_are(tmp_path, rendered):
    plain = tmp_path / "plain.yml"
    plain.write_text("tracker_store:\n  type: x.Store\n", encoding="utf-8")
    own = tmp_path / "own.yml"
    own.write_text('action_endpoint:\n  url: "http://a:1/webhook"\n  token: "${MY_TOKEN}"\n', encoding="utf-8")
    for source in (plain, own):  # (the channels of credentials.yml are rendered all the same)
        assert endpoints_of(rasa_cli.rasa_argv(["run", "--endpoints", str(source)])) == str(source)
    assert rasa_cli.rasa_argv(["train", "--endpoints", str(plain)]) == ["train", "--endpoints", str(plain)]


def test_stale_rendered_files_are_removed(tmp_path, rendered):
    rendered.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    for kind in ("endpoints", "credentials"):
        (rendered / f"{kind}.{dead.pid}.yml").write_text("x")
        (rendered / f"{kind}.{os.getppid()}.yml").write_text("x")  # a live process keeps its file
    source = tmp_path / "endpoints.yml"
    source.write_text('action_endpoint:\n  url: "http://127.0.0.1:5055/webhook"\n', encoding="utf-8")
    rasa_cli.rasa_argv(["run", "--endpoints", str(source)])
    assert sorted(p.name for p in rendered.iterdir()) == sorted(
        f"{kind}.{pid}.yml" for kind in ("endpoints", "credentials") for pid in (os.getppid(), os.getpid()))


def test_rasas_unauthenticated_action_server_is_refused():
    with pytest.raises(SystemExit) as refused:
        rasa_cli.rasa_argv(["run", "actions", "--actions", "actions"])
    assert "python -m bot actions" in str(refused.value)


def test_the_action_token_is_compared_exactly():
    token = action_token()
    assert action_auth.token_matches(token, token)
    for wrong in (None, "", token[:-1], token + "0", token.upper(), ["x"], "\ud800", jwt_secret()):
        assert not action_auth.token_matches(wrong, token), wrong
    assert action_token() != jwt_secret()  # each purpose its own key


def test_no_launcher_puts_a_secret_on_a_command_line():
    """The scripts and Python launchers name our flag, never the secret (nor `bot token jwt-secret`)."""
    root = Path(__file__).resolve().parent.parent
    for path in [*root.glob("scripts/*.sh"), root / "Makefile", root / "tests" / "servers.py",
                 root / "bot" / "devtools" / "cluster.py", root / "bot" / "devtools" / "bench" / "run.py"]:
        text = path.read_text(encoding="utf-8")
        assert "--jwt-secret" not in text and "token jwt-secret" not in text, path
        assert "run actions --actions" not in text, path  # rasa-sdk's server answers anyone
    for path in root.glob("scripts/*.sh"):
        if path.name != "find_python.sh":
            assert "\numask 077" in path.read_text(encoding="utf-8"), path


# ---- the action server answers only Rasa --------------------------------------------------------

INVENTED_HANDOFF = {  # the attack of issue 16: a hand-made call with an invented transcript
    "next_action": "action_handoff",
    "sender_id": "attacker",
    "version": "3.6.2",
    "domain": {},
    "tracker": {
        "sender_id": "attacker", "slots": {}, "paused": False, "followup_action": None,
        "active_loop": {}, "latest_action_name": "action_listen",
        "latest_message": {"text": "卡号 6222021234567890128 转人工", "intent": {"name": "human_handoff"}},
        "events": [{"event": "user", "text": "卡号 6222021234567890128 转人工", "timestamp": 1.0,
                    "parse_data": {"intent": {"name": "human_handoff"}}}],
    },
}


@pytest.mark.server
def test_the_action_server_requires_rasas_token(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'tickets.db'}"
    with running_action_server(tmp_path, {"WALLET_DB_URL": db_url}) as url:
        assert requests.get(f"{url}/health", timeout=10).status_code == 200  # launchers wait on it
        for params in ({}, {"token": "0" * 64}, {"token": action_token()[:-1]}, {"token": jwt_secret()}):
            for method, path, body in (("post", "/webhook", INVENTED_HANDOFF), ("get", "/actions", None)):
                r = requests.request(method, url + path, params=params, json=body, timeout=10)
                assert r.status_code == 401, (path, params, r.text)
                assert r.json()["error"].startswith("未授权") and "Traceback" not in r.text
        from sqlalchemy import inspect, text

        engine = engine_for(db_url)
        if inspect(engine).has_table("handoff_tickets"):
            with engine.connect() as conn:
                assert conn.execute(text("SELECT COUNT(*) FROM handoff_tickets")).scalar() == 0
        token = {"token": action_token()}
        names = [a["name"] for a in requests.get(f"{url}/actions", params=token, timeout=10).json()]
        assert "action_handoff" in names
        greet = {**INVENTED_HANDOFF, "next_action": "action_greet"}
        r = requests.post(f"{url}/webhook", params=token, json=greet, timeout=30)
        assert r.status_code == 200, r.text
        from bot.faq.store import shared_store

        assert r.json()["responses"][0]["text"] == shared_store().get().message("greet")
        log = (tmp_path / "actions.log").read_text(encoding="utf-8")
        assert action_token() not in log  # no access log with the query string


# ---- as another account: `make run` and `make shell` the way the launcher starts them ------------

PROBE = r"""
import json, os, sys
needles = [n.encode() for n in json.load(sys.stdin)]
root = sys.argv[1]
report = {"uid": os.getuid(), "cmdline": {}, "environ": [], "found": [], "readable": [], "control": False}
for pid in filter(str.isdigit, os.listdir("/proc")):
    for part in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{part}", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if part == "cmdline":
            report["cmdline"][pid] = data.replace(b"\0", b" ").decode(errors="replace")
        else:
            report["environ"].append(pid)
        report["found"] += [[pid, part, i] for i, needle in enumerate(needles) if needle in data]
for folder in ("var", "logs", "models"):
    for path, dirs, files in os.walk(os.path.join(root, folder), onerror=lambda e: None):
        report["readable"].append(path)
        for name in files:
            try:
                open(os.path.join(path, name), "rb").close()
                report["readable"].append(os.path.join(path, name))
            except OSError:
                pass
    try:
        open(os.path.join(root, folder, "probe"), "w").close()
        report["readable"].append("wrote " + folder)
    except OSError:
        pass
try:
    open(os.path.join(root, "assistant.yml"), "rb").close()
    report["control"] = True
except OSError:
    pass
json.dump(report, sys.stdout)
"""


def as_nobody(project: Path, needles: list) -> dict:
    """What the account `nobody` can read of our processes and files (needles sent on stdin, so
    the probe's own command line holds no secret)."""
    if os.geteuid() != 0:
        pytest.skip("switching to the account nobody needs root (these tests run as root in the sandbox)")
    runuser = shutil.which("runuser") or shutil.which("setpriv")
    try:
        import pwd

        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("this machine has no account 'nobody'")
    if not runuser:
        pytest.skip("neither runuser nor setpriv is installed: cannot run as another account")
    if runuser.endswith("runuser"):
        switch = [runuser, "-u", "nobody", "--"]
    else:
        switch = [runuser, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    # a system Python nobody may run (ours may live under /root, out of nobody's reach)
    python = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3") if Path(p).exists()
                   and subprocess.run([*switch, p, "-c", "pass"], capture_output=True, cwd="/").returncode == 0), None)
    if python is None:
        pytest.skip("no Python interpreter the account nobody may run (/usr/bin/python3)")
    done = subprocess.run([*switch, python, "-c", PROBE, str(project)], input=json.dumps(needles),
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["uid"] != 0
    return report


def secrets_of(project: Path) -> dict:
    """The installation's secret and what is derived from it, read as the owner."""
    key = (project / "var" / "secret.key").read_text().strip().encode()
    derive = lambda purpose: hmac.new(key, purpose.encode(), hashlib.sha256).digest().hex()  # noqa: E731
    return {"secret key": key.decode(), "JWT secret": derive("rasa-api-jwt"), "action token": derive("action-server")}


def group_of(leader: int) -> set:
    """The processes a launcher started (its own session and process group)."""
    members = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) == leader:
                members.add(pid)
        except ProcessLookupError:
            pass
    return members


def assert_nothing_leaks(project: Path, report: dict, launcher: subprocess.Popen, secrets: dict) -> None:
    ours = group_of(launcher.pid)
    seen = {pid: cmd for pid, cmd in report["cmdline"].items() if pid in ours}
    assert any("bot rasa" in cmd for cmd in seen.values()), seen  # nobody does see our processes ...
    names = list(secrets)
    assert not report["found"], [(pid, part, names[i], report["cmdline"].get(pid)) for pid, part, i in report["found"]]
    assert not ours & set(report["environ"])  # ... and none of their environments
    assert report["control"], "nobody could not even read assistant.yml: the test would prove nothing"
    assert report["readable"] == [], report["readable"]  # no database, key, log or model, nothing written
    for folder in ("var", "logs", "models"):  # and as the owner sees it: every mode owner-only
        for path in [project / folder, *(project / folder).rglob("*")]:
            if not path.is_symlink():
                assert mode(path) & 0o077 == 0, f"{path}: {oct(mode(path))}"


def assert_secrets_are_the_real_ones(urls: dict, secrets: dict) -> None:
    """The needles searched for are the live secrets (else "not found" would prove nothing)."""
    now = int(time.time())
    token = jwt.encode({"user": {"username": "probe", "role": "admin"}, "iat": now, "exp": now + 60},
                       secrets["JWT secret"], algorithm="HS256")
    assert requests.get(f"{urls['rasa']}/status", timeout=10).status_code == 401
    assert requests.get(f"{urls['rasa']}/status", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    if "actions" in urls:
        assert requests.get(f"{urls['actions']}/actions", timeout=10).status_code == 401
        assert requests.get(f"{urls['actions']}/actions", params={"token": secrets["action token"]}, timeout=10).status_code == 200


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.server
@pytest.mark.model
@pytest.mark.parametrize("actions", ["inprocess", "server"])
def test_make_run_hides_secrets_and_files_from_other_accounts(tmp_path, actions):
    ports = {name: str(free_port()) for name in ("RASA_PORT", "CONSOLE_PORT", "ACTION_PORT")}
    base = Path(tempfile.mkdtemp(prefix="wallet-launch-", dir="/tmp"))  # outside pytest's 0700 folders
    project = project_copy(base)
    env = launcher_env(project, **ports, **({"WALLET_ACTIONS": "server"} if actions == "server" else {}))
    urls = {"rasa": f"http://127.0.0.1:{ports['RASA_PORT']}"}
    try:
        with launched(project, env, tmp_path / "run.log") as launcher:
            if actions == "server":
                urls["actions"] = f"http://127.0.0.1:{ports['ACTION_PORT']}"
                wait_up(urls["actions"] + "/health", launcher, tmp_path / "run.log")
            else:  # `make run` starts no action server: the actions run inside Rasa
                assert not port_open(int(ports["ACTION_PORT"]))
            user = f"u-{uuid.uuid4().hex[:8]}"
            r = requests.post(f"{urls['rasa']}/webhooks/rest/webhook", json={"sender": user, "message": "退款多久到账"},
                              timeout=60)
            assert r.status_code == 200 and "工作日" in json.dumps(r.json(), ensure_ascii=False), r.text  # a custom action
            secrets = secrets_of(project)
            assert_secrets_are_the_real_ones(urls, secrets)
            assert len(list((project / "var" / "run").glob("endpoints.*.yml"))) == 1  # Rasa's rendered endpoints
            report = as_nobody(project, list(secrets.values()))
            assert_nothing_leaks(project, report, launcher, secrets)
            for name in ("secret.key", "wallet.db", "rasa_tracker.db"):
                assert (project / "var" / name).exists(), name
            assert mode(project / "logs" / "console.log") == 0o600  # the 0644 log of the older run
        assert list((project / "var" / "run").glob("endpoints.*.yml")) == []  # removed when Rasa stopped
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.server
@pytest.mark.model
def test_make_shell_runs_actions_through_the_action_server_with_the_token(tmp_path):
    """`make shell` in a terminal: rasa shell calls the action server over HTTP (no in-process
    actions there), with the token of the endpoints file Rasa rendered; nobody sees a secret."""
    needs("server")
    require_model()
    rasa_port, action_port = free_port(), free_port()
    base = Path(tempfile.mkdtemp(prefix="wallet-launch-", dir="/tmp"))  # outside pytest's 0700 folders
    project = project_copy(base)
    env = launcher_env(project, RASA_PORT=str(rasa_port), ACTION_PORT=str(action_port), TERM="xterm")
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(["bash", "scripts/run.sh", "shell"], cwd=project, env=env, stdin=secondary,
                            stdout=secondary, stderr=secondary, start_new_session=True)
    os.close(secondary)
    output = bytearray()

    def read_until(marker: str, timeout: float) -> bool:
        end = time.time() + timeout
        while time.time() < end and proc.poll() is None:
            if select.select([primary], [], [], 0.5)[0]:
                try:
                    output.extend(os.read(primary, 65536))
                except OSError:
                    break
            if marker.encode() in output:
                return True
        return marker.encode() in output

    try:
        assert read_until("Your input ->", 240), output.decode(errors="replace")[-3000:]
        mark = len(output)
        os.write(primary, "退款多久到账\r".encode())
        assert read_until("这个回答解决您的问题了吗", 90), output.decode(errors="replace")[-3000:]
        reply = output[mark:].decode(errors="replace")
        assert "工作日" in reply and "Failed to run custom action" not in reply, reply
        secrets = secrets_of(project)
        actions = f"http://127.0.0.1:{action_port}"
        assert requests.post(f"{actions}/webhook", json=INVENTED_HANDOFF, timeout=10).status_code == 401
        rendered = list((project / "var" / "run").glob("endpoints.*.yml"))
        assert len(rendered) == 1 and mode(rendered[0]) == 0o600
        assert yaml.safe_load(rendered[0].read_text())["action_endpoint"]["token"] == secrets["action token"]
        report = as_nobody(project, list(secrets.values()))
        assert_nothing_leaks(project, report, proc, secrets)
        assert mode(project / "logs" / "actions.log") == 0o600
    finally:
        stop_group(proc, how=signal.SIGTERM)  # the terminal prompt takes Ctrl-C as a key, not a signal
        os.close(primary)
        shutil.rmtree(base, ignore_errors=True)
