"""Channels switched on by configuration alone (issue 17, problem 4): the project's credentials.yml
keeps every channel as a block of `${VAR}` placeholders, and `bot rasa run|shell` gives Rasa the
channels whose variables are set (bot/serving/channel_switch.py, run_files.py).

All set → on (the rendered credentials keep the placeholders, Rasa substitutes them; on a started
server the webhook answers); partly set → the start is refused, naming the missing variables;
unset → off (no block, no route)."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from bot.serving import rasa_cli
from bot.serving.channel_switch import ChannelConfigError, Declaration, switch_channels
from bot.serving.run_files import render_credentials
from tests.conftest import require_model
from tests.fake_telegram import FakeTelegram
from tests.servers import running_assistant

ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS = ROOT / "credentials.yml"
TELEGRAM = "bot.channels.telegram.WalletTelegramInput"
WECHAT = "bot.channels.wechat.WeChatInput"
TELEGRAM_ENV = {"TELEGRAM_TOKEN": "123456789:AAFakeTokenForTests_abcdefghijklmno",
                "TELEGRAM_BOT_USERNAME": "wallet_helper_bot",
                "TELEGRAM_WEBHOOK_URL": "https://bot.example.com/webhooks/telegram/webhook",
                "TELEGRAM_SECRET_TOKEN": "s3cret-Telegram_token"}
WECHAT_ENV = {"WECHAT_APP_ID": "wx1234567890abcdef", "WECHAT_APP_SECRET": "app-secret",
              "WECHAT_TOKEN": "wechat-token", "WECHAT_ENCODING_AES_KEY": "a" * 43}


def project_credentials() -> dict:
    return yaml.safe_load(CREDENTIALS.read_text(encoding="utf-8"))


def switched(environ: dict) -> dict:
    return switch_channels(project_credentials(), environ)[0]


def test_unset_channels_are_off_and_the_others_on():
    channels = switched({})
    assert TELEGRAM not in channels and WECHAT not in channels
    assert "bot.channels.rest.WalletRestInput" in channels
    assert "bot.channels.socketio.WalletSocketIOInput" in channels


def test_telegram_is_on_when_its_variables_are_set():
    channels = switched(TELEGRAM_ENV)
    assert channels[TELEGRAM] == {"access_token": "${TELEGRAM_TOKEN}", "verify": "${TELEGRAM_BOT_USERNAME}",
                                  "webhook_url": "${TELEGRAM_WEBHOOK_URL}", "secret_token": "${TELEGRAM_SECRET_TOKEN}"}
    assert WECHAT not in channels
    # the optional Bot API address is kept when set (else the class's default applies)
    with_api = switched({**TELEGRAM_ENV, "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081"})
    assert with_api[TELEGRAM]["api_base_url"] == "${TELEGRAM_API_BASE_URL}"


@pytest.mark.parametrize("given", ["TELEGRAM_TOKEN", "TELEGRAM_API_BASE_URL"])
def test_telegram_set_in_part_is_refused_with_the_missing_names(given):
    with pytest.raises(ChannelConfigError) as refused:
        switched({given: "value-never-shown"})
    message = str(refused.value)
    (line,) = [line for line in message.splitlines() if TELEGRAM in line]
    missing = line.split(": missing ")[1].split(" (set")[0].split(", ")
    assert line.endswith(f"(set: {given})")
    assert sorted(missing) == sorted({"TELEGRAM_TOKEN", "TELEGRAM_BOT_USERNAME", "TELEGRAM_WEBHOOK_URL",
                                      "TELEGRAM_SECRET_TOKEN"} - {given})
    assert "value-never-shown" not in message  # names only, never values


def test_an_empty_variable_counts_as_unset_except_where_the_channel_allows_it():
    with pytest.raises(ChannelConfigError, match="TELEGRAM_SECRET_TOKEN"):
        switched({**TELEGRAM_ENV, "TELEGRAM_SECRET_TOKEN": " "})
    plain = switched({**WECHAT_ENV, "WECHAT_ENCODING_AES_KEY": ""})  # set but empty: plain mode on purpose
    assert plain[WECHAT]["encoding_aes_key"] == "${WECHAT_ENCODING_AES_KEY}"
    without = dict(WECHAT_ENV)
    del without["WECHAT_ENCODING_AES_KEY"]
    with pytest.raises(ChannelConfigError, match="WECHAT_ENCODING_AES_KEY"):
        switched(without)


def test_a_class_that_declares_nothing_needs_every_variable():
    config = {"some.Channel": {"a": "${A_VAR}", "b": "${B_VAR}"}}
    undeclared = lambda name: Declaration()  # noqa: E731
    assert switch_channels(config, {}, undeclared)[0] == {}
    with pytest.raises(ChannelConfigError, match="B_VAR"):
        switch_channels(config, {"A_VAR": "1"}, undeclared)
    assert switch_channels(config, {"A_VAR": "1", "B_VAR": "2"}, undeclared)[0] == config


def test_rasa_reads_the_rendered_credentials_with_the_secrets_substituted(tmp_path, monkeypatch):
    """The rendered file holds placeholders, not secrets; Rasa's own reader substitutes them."""
    from rasa.shared.utils.io import read_config_file

    dest = render_credentials(CREDENTIALS, tmp_path / "credentials.yml", TELEGRAM_ENV)
    assert dest is not None and oct(dest.stat().st_mode & 0o777) == "0o600"
    assert TELEGRAM_ENV["TELEGRAM_TOKEN"] not in dest.read_text(encoding="utf-8")
    for name, value in TELEGRAM_ENV.items():
        monkeypatch.setenv(name, value)
    config = read_config_file(dest)
    assert config[TELEGRAM]["access_token"] == TELEGRAM_ENV["TELEGRAM_TOKEN"]
    assert config[TELEGRAM]["secret_token"] == TELEGRAM_ENV["TELEGRAM_SECRET_TOKEN"]
    assert WECHAT not in config


def test_bot_rasa_run_refuses_a_channel_set_in_part(tmp_path, monkeypatch):
    monkeypatch.setattr(rasa_cli, "rendered_dir", lambda: tmp_path / "run")
    for name in (*TELEGRAM_ENV, "TELEGRAM_API_BASE_URL", *WECHAT_ENV, "WECHAT_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WECHAT_APP_ID", "wx1234567890abcdef")
    with pytest.raises(SystemExit) as refused:
        rasa_cli.rasa_argv(["run", "--credentials", str(CREDENTIALS)])
    assert "WECHAT_APP_SECRET" in str(refused.value) and "WECHAT_TOKEN" in str(refused.value)
    monkeypatch.delenv("WECHAT_APP_ID")
    args = rasa_cli.rasa_argv(["run", "--credentials", str(CREDENTIALS)])
    rendered = yaml.safe_load(Path(args[args.index("--credentials") + 1]).read_text(encoding="utf-8"))
    assert WECHAT not in rendered and TELEGRAM not in rendered


# ---- on a started server ---------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.model
def test_setting_telegrams_variables_alone_switches_it_on_and_unsetting_them_off(tmp_path, monkeypatch):
    """The project's own credentials.yml, unchanged: with Telegram's variables exported its webhook
    route exists, the bot checks itself with the (fake) Bot API and answers an update; with them
    unset there is no route and the server runs on. WeChat, unset both times, is off both times."""
    require_model()
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "WECHAT_")):
            monkeypatch.delenv(name)
    for name in ("on", "off"):
        (tmp_path / name).mkdir()
    fake = FakeTelegram(TELEGRAM_ENV["TELEGRAM_TOKEN"], TELEGRAM_ENV["TELEGRAM_BOT_USERNAME"]).start()
    try:
        on = {**TELEGRAM_ENV, "TELEGRAM_API_BASE_URL": fake.url}
        with running_assistant(tmp_path / "on", credentials=str(CREDENTIALS), extra_env=on, console=False) as urls:
            assert requests.get(f"{urls['rasa']}/webhooks/telegram/", timeout=10).status_code == 200
            assert requests.get(f"{urls['rasa']}/webhooks/wechat/", timeout=10).status_code == 404
            fake.wait_for(lambda: fake.calls_to("setWebhook"))
            assert fake.calls_to("setWebhook")[0]["url"] == TELEGRAM_ENV["TELEGRAM_WEBHOOK_URL"]
            assert fake.calls_to("getMe")
            chat = {"id": 5001, "type": "private", "first_name": "小明"}
            update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "退款多久到账", "chat": chat,
                                                  "from": {"id": 5001, "is_bot": False, "first_name": "小明"}}}
            r = requests.post(f"{urls['rasa']}/webhooks/telegram/webhook", json=update, timeout=60,
                              headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_ENV["TELEGRAM_SECRET_TOKEN"]})
            assert r.status_code == 200
            fake.wait_for(lambda: any("工作日" in t for t in fake.texts(5001)), 60)
        with running_assistant(tmp_path / "off", credentials=str(CREDENTIALS), console=False) as urls:
            assert requests.get(f"{urls['rasa']}/webhooks/telegram/", timeout=10).status_code == 404
            assert requests.get(f"{urls['rasa']}/webhooks/wechat/", timeout=10).status_code == 404
            user = f"u-{uuid.uuid4().hex[:8]}"
            r = requests.post(f"{urls['rasa']}/webhooks/rest/webhook", json={"sender": user, "message": "你好"},
                              timeout=60)
            assert r.status_code == 200 and r.json(), r.text  # no optional channel: the server runs all the same
    finally:
        fake.stop()


@pytest.mark.server
def test_a_channel_set_in_part_stops_the_start_with_the_missing_names(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WECHAT_"))}
    env.update(TELEGRAM_TOKEN=TELEGRAM_ENV["TELEGRAM_TOKEN"], PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-m", "bot", "rasa", "run", "--credentials", str(CREDENTIALS),
                           "--port", "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    for name in ("TELEGRAM_BOT_USERNAME", "TELEGRAM_WEBHOOK_URL", "TELEGRAM_SECRET_TOKEN"):
        assert name in done.stderr, done.stderr[-2000:]
    assert TELEGRAM_ENV["TELEGRAM_TOKEN"] not in done.stderr + done.stdout


def test_without_a_credentials_file_rasa_keeps_its_own_fallback(tmp_path, monkeypatch):
    """No credentials.yml: `bot rasa run` leaves Rasa its REST fallback; `bot rasa shell` still
    gets our REST channel and the terminal."""
    monkeypatch.setattr(rasa_cli, "rendered_dir", lambda: tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    assert "--credentials" not in rasa_cli.rasa_argv(["run"])
    args = rasa_cli.rasa_argv(["shell"])
    rendered = yaml.safe_load(Path(args[args.index("--credentials") + 1]).read_text(encoding="utf-8"))
    assert list(rendered) == [rasa_cli.REST_CHANNEL, rasa_cli.TERMINAL_CHANNEL]
