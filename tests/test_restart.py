"""Nothing is lost across a restart of the Rasa server, the action server and the console
(tickets in PostgreSQL here, the tracker in the SQLite tracker store)."""
import uuid

import pytest
import requests

from bot.security.tokens import api_headers
from bot.handoff.agents import AgentStore
from bot.handoff.store import TicketStore
from tests.conftest import require_model
from tests.servers import running_assistant

pytestmark = [pytest.mark.server, pytest.mark.model, pytest.mark.postgres]


def chat(urls, sender, message):
    r = requests.post(f"{urls['rasa']}/webhooks/rest/webhook", json={"sender": sender, "message": message}, timeout=60)
    assert r.status_code == 200
    return "\n".join(m.get("text", "") for m in r.json())


def test_everything_survives_a_restart_of_every_process(tmp_path, postgres_url):
    require_model()
    user = f"restart-{uuid.uuid4().hex[:8]}"
    with running_assistant(tmp_path, db_url=postgres_url) as urls:
        AgentStore(postgres_url).add("值班员", "password123")
        chat(urls, user, "我的账户被冻结了")
        assert "工单" in chat(urls, user, "转人工")
        number = TicketStore(postgres_url).active_ticket(user)["number"]
        chat(urls, user, "这是我补充的情况：昨天开始的")

    with running_assistant(tmp_path, db_url=postgres_url) as urls:  # every process is new
        token = requests.post(f"{urls['console']}/api/login", json={"name": "值班员", "password": "password123"},
                              timeout=10).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        view = requests.get(f"{urls['console']}/api/tickets/{number}", headers=headers, timeout=10).json()
        said = [m["text"] for m in view["transcript"] if m["role"] == "user"]
        assert "我的账户被冻结了" in said and "这是我补充的情况：昨天开始的" in said
        assert view["ticket"]["priority"] == 3 or view["ticket"]["intent"] == "account_frozen"
        assert "工单" in chat(urls, user, "还在吗")  # still paused: acknowledged, not answered by the FAQ
        assert requests.post(f"{urls['console']}/api/tickets/{number}/claim", headers=headers, timeout=10).ok
        assert requests.post(f"{urls['console']}/api/tickets/{number}/reply", headers=headers,
                             json={"text": "您好，正在为您申请解冻"}, timeout=10).json()["in_tracker"]
        assert "正在为您申请解冻" in chat(urls, user, "好的")
        tracker = requests.get(f"{urls['rasa']}/conversations/{user}/tracker", headers=api_headers(), timeout=10).json()
        texts = [e.get("text") for e in tracker["events"] if e["event"] in ("user", "bot")]
        assert texts.index("我的账户被冻结了") < texts.index("还在吗") < texts.index("您好，正在为您申请解冻")
