"""`make shell` in a terminal, the whole flow (issue 17, problem 2): scripts/run.sh shell, as an
operator starts it, driven through a pseudo-terminal like a person at the keyboard.

A question is answered; 转人工 opens a ticket and says the place in the queue; an agent's reply
from the console shows up in the terminal by itself (polled); 取消转人工 gives the conversation
back to the assistant; a second hand-off closed by the agent asks for the rating, and "5" is
thanked. The tickets are in var/shell.db, never in var/wallet.db; nothing says "warning"; /stop,
Ctrl-C and Ctrl-D end the shell, its action server and its console; a channel switched on by its
variables (Telegram) runs beside the terminal. (pexpect is not in the venv: `pty` directly;
the test answers the terminal's cursor-position requests as a real terminal does.)
"""
from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from bot.devtools.cluster import free_port
from bot.handoff.store import TicketStore
from tests.conftest import needs, require_model
from tests.fake_telegram import FakeTelegram
from tests.servers import ConsoleAgent, always_open_settings, launcher_env, project_copy, stop_group

pytestmark = [pytest.mark.server, pytest.mark.model]

UP, ENTER = "\x1b[A", "\r"
CURSOR_POSITION_REQUEST = b"\x1b[6n"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A process on a pseudo-terminal: what it printed, what the user types."""

    def __init__(self, argv, cwd: Path, env) -> None:
        self.primary, secondary = pty.openpty()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=secondary, stdout=secondary,
                                     stderr=secondary, start_new_session=True)
        os.close(secondary)
        self.raw = bytearray()
        self.answered = 0

    def pump(self, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            if not select.select([self.primary], [], [], 0.2)[0]:
                if self.proc.poll() is not None:
                    return
                continue
            try:
                self.raw.extend(os.read(self.primary, 65536))
            except OSError:
                return
            while self.raw.count(CURSOR_POSITION_REQUEST) > self.answered:  # a real terminal answers
                os.write(self.primary, b"\x1b[1;1R")
                self.answered += 1

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "")

    def mark(self) -> int:
        return len(self.text)

    def wait_for(self, marker: str, since: int, timeout: float) -> str:
        """The output since `since` once it contains `marker` (fails with the output's end)."""
        end = time.time() + timeout
        while time.time() < end:
            if marker in self.text[since:]:
                return self.text[since:]
            if self.proc.poll() is not None:
                break
            self.pump(0.5)
        pytest.fail(f"{marker!r} not shown within {timeout} s; the terminal's last output:\n{self.text[-3000:]}")

    def type(self, keys: str) -> None:
        os.write(self.primary, keys.encode("utf-8"))

    def choosing(self) -> bool:
        """Is the last prompt a button choice (questionary's select), not `Your input ->`?"""
        return self.text.rfind("(Use arrow keys)") > self.text.rfind("Your input ->")

    def say(self, text: str, expect: str, timeout: float = 90) -> str:
        """Type a message (at a button choice, first take its last entry, "Type out your own
        message...") and wait for `expect` in what comes back."""
        if self.choosing():
            since = self.mark()
            self.type(UP)  # the list wraps round to its last entry
            self.pump(0.5)
            self.type(ENTER)
            self.wait_for("Your input ->", since, 30)
        since = self.mark()
        self.type(text + ENTER)
        return self.wait_for(expect, since, timeout)


def group_gone(leader: int, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        try:
            os.killpg(leader, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.3)
    return False


def test_make_shell_runs_the_whole_hand_off_flow_quietly(tmp_path):
    needs("server")
    require_model()
    ports = {name: str(free_port()) for name in ("RASA_PORT", "ACTION_PORT", "CONSOLE_PORT")}
    base = Path(tempfile.mkdtemp(prefix="wallet-shell-", dir="/tmp"))
    project = project_copy(base)
    always_open_settings(project)  # the project's assistant.yml: support open 24/7, live queue
    env = launcher_env(project, **ports, TERM="xterm")
    shell_db = f"sqlite:///{project / 'var' / 'shell.db'}"
    term = Terminal(["bash", "scripts/run.sh", "shell"], project, env)
    try:
        term.wait_for("Your input ->", 0, 300)
        reply = term.say("退款多久到账", "这个回答解决您的问题了吗")
        assert "工作日" in reply, reply

        reply = term.say("转人工", "您前面还有")  # the ticket and the place in the queue
        (first,) = re.findall(r"工单号：(T\d+)", reply)
        store = TicketStore(shell_db)
        assert [t["number"] for t in store.queue()] == [first]
        assert not (project / "var" / "wallet.db").exists()  # the real ticket database is untouched

        agent = ConsoleAgent({"db_url": shell_db, "console": f"http://127.0.0.1:{ports['CONSOLE_PORT']}"})
        since = term.mark()
        agent.take(first, "您好，我是小王，正在帮您查退款")
        assert "【人工客服 小王】您好，我是小王" in term.wait_for("正在帮您查退款", since, 30)  # nothing typed

        term.say("取消转人工", "已为您取消转人工")
        assert store.get(first)["status"] == "cancelled"
        reply = term.say("提现多久到账", "这个回答解决您的问题了吗")  # the assistant answers again
        assert "转给人工客服" not in reply, reply

        reply = term.say("转人工", "您前面还有")
        (second,) = re.findall(r"工单号：(T\d+)", reply)
        since = term.mark()
        agent.take(second, "已为您处理好了")
        assert agent.post(second, "close", note="退款已到账").status_code == 200
        asked = term.wait_for("5 分", since, 30)  # the prompt, then its buttons (printed after the text)
        assert "已为您处理好了" in asked and "5 分" in asked
        term.say("5", "感谢您的评价")
        assert store.get(second)["rating"] == 5

        since = term.mark()
        term.type("/stop" + ENTER)
        end = time.time() + 90
        while term.proc.poll() is None and time.time() < end:
            term.pump(0.5)
        assert term.proc.returncode == 0, term.text[since:]
        assert group_gone(term.proc.pid, 30), "the action server or the console outlived the shell"
        output = term.text
        assert "warning" not in output.lower(), [line for line in output.splitlines() if "arning" in line]
        assert "Traceback" not in output and "Failed to run custom action" not in output
    finally:
        stop_group(term.proc, how=signal.SIGTERM)
        os.close(term.primary)
        (tmp_path / "shell.txt").write_text(term.text, encoding="utf-8")
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("key", ["\x03", "\x04"], ids=["ctrl-c", "ctrl-d"])
def test_ctrl_c_and_ctrl_d_end_the_shell_and_everything_it_started(key):
    """As in `rasa shell`: Ctrl-C or Ctrl-D at the prompt ends the chat, the server, and (the
    launcher's trap) the action server and the console beside it. Telegram, switched on by its
    variables (a local fake Bot API), runs beside the terminal meanwhile."""
    needs("server")
    require_model()
    ports = {name: str(free_port()) for name in ("RASA_PORT", "ACTION_PORT", "CONSOLE_PORT")}
    base = Path(tempfile.mkdtemp(prefix="wallet-shell-", dir="/tmp"))
    project = project_copy(base)
    fake = FakeTelegram("123456789:AAFakeTokenForTests_abcdefghijklmno").start()
    telegram = {"TELEGRAM_TOKEN": fake.token, "TELEGRAM_BOT_USERNAME": fake.username,
                "TELEGRAM_WEBHOOK_URL": "https://bot.example.com/webhooks/telegram/webhook",
                "TELEGRAM_SECRET_TOKEN": "s3cret-Telegram_token", "TELEGRAM_API_BASE_URL": fake.url}
    term = Terminal(["bash", "scripts/run.sh", "shell"], project,
                    launcher_env(project, **ports, **telegram, TERM="xterm"))
    try:
        term.wait_for("Your input ->", 0, 300)
        assert requests.get(f"http://127.0.0.1:{ports['RASA_PORT']}/webhooks/telegram/", timeout=10).status_code == 200
        fake.wait_for(lambda: fake.calls_to("setWebhook"))
        term.type(key)
        end = time.time() + 90
        while term.proc.poll() is None and time.time() < end:
            term.pump(0.5)
        assert term.proc.returncode == 0, term.text[-2000:]
        assert group_gone(term.proc.pid, 30), "the action server or the console outlived the shell"
        assert "Traceback" not in term.text and "warning" not in term.text.lower()
    finally:
        stop_group(term.proc, how=signal.SIGTERM)
        os.close(term.primary)
        fake.stop()
        shutil.rmtree(base, ignore_errors=True)
