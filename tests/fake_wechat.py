"""A local stand-in for api.weixin.qq.com (token + customer-service messages), and helpers that
build requests the way WeChat's servers do (signatures, AES safe mode)."""
from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import parse_qs, urlparse

from bot.channels.wechat import WeChatInput


class PlainWeChatInput(WeChatInput):
    """A second 公众号 in plain (明文) mode on the same Rasa server, so one server tests both modes."""

    @classmethod
    def name(cls) -> str:
        return "wechat_plain"


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 of the sorted, concatenated strings."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signed_query(token: str, timestamp: Optional[int] = None, **extra: str) -> Dict[str, str]:
    ts, nonce = str(int(time.time()) if timestamp is None else timestamp), secrets.token_hex(5)
    return {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce, **extra}


def text_xml(openid: str, content: str, msg_id: int, to: str = "gh_wallet") -> str:
    return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def media_xml(openid: str, kind: str, msg_id: int, to: str = "gh_wallet") -> str:
    body = {"image": "<PicUrl><![CDATA[http://mmbiz.example/p.jpg]]></PicUrl><MediaId><![CDATA[m1]]></MediaId>",
            "voice": "<MediaId><![CDATA[m2]]></MediaId><Format><![CDATA[amr]]></Format>",
            "location": "<Location_X>31.23</Location_X><Location_Y>121.47</Location_Y><Scale>15</Scale>"
                        "<Label><![CDATA[上海市]]></Label>"}[kind]
    return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{body}"
            f"<MsgId>{msg_id}</MsgId></xml>")


def event_xml(openid: str, event: str, to: str = "gh_wallet") -> str:
    return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event></xml>")


class FakeWeChat:
    """`GET /cgi-bin/token` and `POST /cgi-bin/message/custom/send`, with WeChat's error codes.

    Only the newest token is valid (as after a refresh elsewhere); `expire_token()` makes the next
    send fail with 42001 so the client must refresh.
    """

    def __init__(self, app_id: str, app_secret: str) -> None:
        self.app_id, self.app_secret = app_id, app_secret
        self.token_requests = 0
        self.sends: List[Dict[str, Any]] = []
        self.refused: List[int] = []
        self._token: Optional[str] = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeWeChat":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def expire_token(self) -> None:
        self._token = None

    def texts_to(self, openid: str) -> List[str]:
        with self._lock:
            return [s["text"]["content"] for s in self.sends if s.get("touser") == openid]

    def wait_for_text(self, openid: str, predicate: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [t for t in self.texts_to(openid) if predicate(t)]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no matching custom/send to {openid}; got {self.texts_to(openid)}")

    def _token_response(self, query: Dict[str, str]) -> Dict[str, Any]:
        if query.get("grant_type") != "client_credential" or query.get("appid") != self.app_id:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if query.get("secret") != self.app_secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        with self._lock:
            self.token_requests += 1
            self._token = f"ACCESS_TOKEN_{self.token_requests}_{secrets.token_hex(4)}"
        return {"access_token": self._token, "expires_in": 7200}

    def _send_response(self, query: Dict[str, str], raw: bytes) -> Dict[str, Any]:
        if query.get("access_token") != self._token:
            code = 42001 if query.get("access_token", "").startswith("ACCESS_TOKEN_") else 40001
            self.refused.append(code)
            return {"errcode": code, "errmsg": "access_token expired" if code == 42001 else "invalid credential"}
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            return {"errcode": 47001, "errmsg": "data format error"}
        if body.get("msgtype") != "text" or not body.get("text", {}).get("content") or not body.get("touser"):
            return {"errcode": 44002, "errmsg": "empty post data"}
        with self._lock:
            self.sends.append(body)
        return {"errcode": 0, "errmsg": "ok"}

    def _handler(self) -> type:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, data: Dict[str, Any]) -> None:
                out = json.dumps(data, ensure_ascii=False).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def _query(self) -> Dict[str, str]:
                return {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}

            def do_GET(self) -> None:  # noqa: N802
                if urlparse(self.path).path == "/cgi-bin/token":
                    return self._reply(fake._token_response(self._query()))
                self._reply({"errcode": 404, "errmsg": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if urlparse(self.path).path == "/cgi-bin/message/custom/send":
                    return self._reply(fake._send_response(self._query(), raw))
                self._reply({"errcode": 404, "errmsg": "not found"})

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
