"""A test-only web site that hosts a stock chat widget, as an integrator's site would: its own
origin (not the Rasa server's), a page with the widget's released UMD file and its documented
config, nothing from a CDN (every file is under tests/vendor/).

The widgets are test fixtures, not product code: the Rasa server never serves them
(tests/test_stock_widgets.py checks).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator

from bot.devtools.cluster import free_port

VENDOR = Path(__file__).resolve().parent / "vendor"
TYPES = {".js": "application/javascript; charset=utf-8", ".html": "text/html; charset=utf-8",
         ".css": "text/css; charset=utf-8"}

RASA_WEBCHAT_PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>示例商城 · rasa-webchat 1.0.1</title>
<style>body {{ font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", sans-serif; margin: 24px; }}</style></head>
<body>
<h1>示例商城</h1><p>这个页面用 rasa-webchat 1.0.1（npm 发布的 lib/index.js，未改动）接入钱包小助手。</p>
<script src="/vendor/rasa-webchat/index.js"></script>
<script>
  // The widget's documented embedding (its README), with our server's address.
  window.WebChat.default({{
    socketUrl: {socket_url},
    socketPath: "/socket.io/",{init_payload}
    title: "钱包小助手",
    customData: {{ language: "zh" }}
  }}, null);
</script>
</body>
</html>
"""


def rasa_webchat_page(socket_url: str, init_payload: str = "/get_started") -> str:
    """rasa-webchat's README snippet; `init_payload` "" leaves `initPayload` out."""
    import json

    init = f"\n    initPayload: {json.dumps(init_payload)}," if init_payload else ""
    return RASA_WEBCHAT_PAGE.format(socket_url=json.dumps(socket_url), init_payload=init)


class _Site(ThreadingHTTPServer):
    daemon_threads = True
    pages: Dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    server: _Site

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path in self.server.pages:
            return self._send(self.server.pages[path].encode("utf-8"), TYPES[".html"])
        if path.startswith("/vendor/"):
            file = (VENDOR / path[len("/vendor/"):]).resolve()
            if VENDOR in file.parents and file.is_file() and file.suffix in TYPES:
                return self._send(file.read_bytes(), TYPES[file.suffix])
        self._send(b"not found", "text/plain; charset=utf-8", 404)

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@contextmanager
def host_site() -> Iterator[_Site]:
    """The integrator's site on 127.0.0.1 (a free port): `site.origin`, `site.pages[path] = html`."""
    port = free_port()
    site = _Site(("127.0.0.1", port), _Handler)
    site.pages = {}
    site.origin = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.shutdown()
        site.server_close()


def credentials_allowing(workdir: Path, origin: str) -> Path:
    """The project's credentials.yml with `origin` in the socket.io channel's cors_allowed_origins
    (what docs/channels.md tells an integrator to add)."""
    from tests.servers import ROOT

    import re

    text = (ROOT / "credentials.yml").read_text(encoding="utf-8")
    text, found = re.subn(r"(?m)^(  cors_allowed_origins:).*$", rf'\1 ["{origin}"]', text)
    assert found == 1, "credentials.yml has no cors_allowed_origins for the socket.io channel"
    path = workdir / "credentials.yml"
    path.write_text(text, encoding="utf-8")
    return path
