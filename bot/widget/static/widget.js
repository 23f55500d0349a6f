/*
 * 钱包小助手 in-app chat widget. Embed with:
 *   <script>window.WalletChatConfig = { serverUrl: "https://bot.example.com", title: "钱包小助手",
 *                                       color: "#1677ff", greeting: "您好，有什么可以帮您？" };</script>
 *   <script src="https://bot.example.com/webhooks/socketio/widget.js"></script>
 * Talks to Rasa's socket.io channel; everything it needs is served by the same server.
 */
(function () {
  "use strict";
  var cfg = Object.assign({ serverUrl: "", title: "钱包小助手", color: "#1677ff",
                            greeting: "您好，我是钱包小助手，请问遇到了什么问题？", open: false },
                          window.WalletChatConfig || {});
  var base = (cfg.serverUrl || (document.currentScript && new URL(document.currentScript.src).origin) || "").replace(/\/$/, "");
  var KEY = "walletChat:" + base;
  var store = { get: function (k) { try { return JSON.parse(localStorage.getItem(KEY + k)); } catch (e) { return null; } },
                set: function (k, v) { try { localStorage.setItem(KEY + k, JSON.stringify(v)); } catch (e) {} } };

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;
    return node;
  }

  var css = el("link", { rel: "stylesheet", href: base + "/webhooks/socketio/widget.css" });
  document.head.appendChild(css);
  var root = el("div", { id: "wallet-chat", "data-state": "closed" });
  root.style.setProperty("--wc-color", cfg.color);
  var launcher = el("button", { type: "button", class: "wc-launcher", "aria-label": "打开" + cfg.title, "aria-expanded": "false" }, "客服");
  var panel = el("section", { class: "wc-panel", role: "dialog", "aria-label": cfg.title });
  var header = el("header", { class: "wc-header" });
  header.appendChild(el("span", { class: "wc-title" }, cfg.title));
  var status = el("span", { class: "wc-status", "aria-live": "polite" }, "连接中…");
  header.appendChild(status);
  var close = el("button", { type: "button", class: "wc-close", "aria-label": "关闭" }, "×");
  header.appendChild(close);
  var log = el("ol", { class: "wc-log", "aria-live": "polite", "aria-label": "对话记录" });
  var typing = el("div", { class: "wc-typing", hidden: "" }, "对方正在输入…");
  var form = el("form", { class: "wc-form" });
  var input = el("input", { type: "text", class: "wc-input", "aria-label": "输入消息", placeholder: "输入您的问题，回车发送", maxlength: "2000", autocomplete: "off" });
  var send = el("button", { type: "submit", class: "wc-send" }, "发送");
  form.appendChild(input); form.appendChild(send);
  panel.appendChild(header); panel.appendChild(log); panel.appendChild(typing); panel.appendChild(form);
  root.appendChild(launcher); root.appendChild(panel);
  document.body.appendChild(root);

  var history = store.get("history") || [];
  var typingTimer = null;

  function linkify(container, text) {
    var parts = String(text).split(/(https?:\/\/[^\s<>"'）)]+)/g);
    parts.forEach(function (part, i) {
      if (i % 2 === 1) {
        var a = el("a", { href: part, target: "_blank", rel: "noopener noreferrer" }, part);
        container.appendChild(a);
      } else {
        var lines = part.split("\n");
        lines.forEach(function (line, j) {
          if (j > 0) container.appendChild(el("br"));
          container.appendChild(document.createTextNode(line));
        });
      }
    });
  }

  function render(msg, live) {
    var li = el("li", { class: "wc-msg wc-" + msg.from });
    if (msg.from === "agent") li.appendChild(el("span", { class: "wc-badge" }, "人工客服 " + (msg.agent || "")));
    var bubble = el("div", { class: "wc-bubble" });
    linkify(bubble, msg.text);
    li.appendChild(bubble);
    if (msg.buttons && msg.buttons.length) {
      var group = el("div", { class: "wc-buttons", role: "group", "aria-label": "快捷回复" });
      msg.buttons.forEach(function (b) {
        var btn = el("button", { type: "button", class: "wc-button" }, b.title);
        btn.disabled = !live;
        btn.addEventListener("click", function () {
          Array.prototype.forEach.call(group.querySelectorAll("button"), function (x) { x.disabled = true; });
          sendMessage(b.payload, b.title);
        });
        group.appendChild(btn);
      });
      li.appendChild(group);
    }
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }

  function remember(msg) {
    history.push(msg);
    if (history.length > 200) history = history.slice(-200);
    store.set("history", history);
  }

  function add(msg) { remember(msg); render(msg, true); }

  function showTyping(on) {
    typing.hidden = !on;
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(function () { typing.hidden = true; }, 15000);
  }

  history.forEach(function (m, i) { render(m, i === history.length - 1); });
  if (!history.length) add({ from: "bot", text: cfg.greeting });

  var sessionId = store.get("session");
  var socket = window.io(base, { path: "/socket.io", transports: ["websocket", "polling"],
                                 reconnection: true, reconnectionDelay: 500, reconnectionDelayMax: 5000 });
  socket.on("connect", function () {
    status.textContent = "在线";
    root.setAttribute("data-connected", "true");
    // The server signs the conversation id; the token, not the id, proves it is ours.
    socket.emit("session_request", { token: store.get("token") });
  });
  socket.on("disconnect", function () { status.textContent = "连接已断开，正在重连…"; root.setAttribute("data-connected", "false"); });
  socket.on("session_token", function (data) {
    if (!data || typeof data.token !== "string") return;
    if (sessionId && data.session_id !== sessionId) { history.length = 0; store.set("history", history); }  // a new conversation
    sessionId = data.session_id;
    store.set("session", sessionId);
    store.set("token", data.token);
    root.setAttribute("data-session", sessionId);
  });
  socket.on("bot_uttered", function (data) {
    showTyping(false);
    var text = data.text || "";
    var from = (data.metadata && data.metadata.from) || "bot";
    var agent = data.metadata && data.metadata.agent;
    var m = /^【人工客服 ([^】]*)】([\s\S]*)$/.exec(text);
    if (m) { from = "agent"; agent = m[1]; text = m[2]; }
    var buttons = (data.quick_replies || data.buttons || []).map(function (b) { return { title: b.title, payload: b.payload }; });
    add({ from: from === "system" ? "bot" : from, agent: agent, text: text, buttons: buttons });
  });

  function sendMessage(payload, shown) {
    var text = String(payload || "").trim();
    if (!text || !sessionId) return;
    Array.prototype.forEach.call(log.querySelectorAll(".wc-button"), function (b) { b.disabled = true; });
    add({ from: "user", text: shown || text });
    showTyping(true);
    socket.emit("user_uttered", { message: text });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value;
    input.value = "";
    sendMessage(text);
  });

  // Service notices (outage, maintenance) as a banner above the conversation: fetched when the
  // chat opens and every minute while it is open; hidden when there is none.
  var noticeBar = el("div", { class: "wc-notice", role: "status", hidden: "" });
  panel.insertBefore(noticeBar, log);
  var noticeTimer = null;
  function noticeUntil(iso) {  // "02:00" today, else "11月11日 02:00" (the server's local time)
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::\d{2})?([+-])(\d{2}):(\d{2})$/.exec(iso || "");
    if (!m) return "";
    var offset = (m[6] === "-" ? -1 : 1) * (parseInt(m[7], 10) * 60 + parseInt(m[8], 10));
    var today = new Date(Date.now() + offset * 60000).toISOString().slice(0, 10);
    var clock = m[4] + ":" + m[5];
    return today === m[1] + "-" + m[2] + "-" + m[3] ? clock : parseInt(m[2], 10) + "月" + parseInt(m[3], 10) + "日 " + clock;
  }
  function showNotices(notices) {
    noticeBar.textContent = "";
    notices.forEach(function (n) {
      if (!n || typeof n.text !== "string") return;
      var until = noticeUntil(n.until);
      noticeBar.appendChild(el("p", { class: "wc-notice-item" }, "【服务公告】" + n.text + (until ? "（预计 " + until + " 恢复）" : "")));
    });
    noticeBar.hidden = !noticeBar.childNodes.length;
  }
  function refreshNotices() {
    if (!window.fetch) return;
    fetch(base + "/webhooks/socketio/notices", { credentials: "omit", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d && Array.isArray(d.notices)) showNotices(d.notices); })
      .catch(function () {});  // offline: keep what is shown
  }

  function setOpen(open) {
    root.setAttribute("data-state", open ? "open" : "closed");
    launcher.setAttribute("aria-expanded", String(open));
    store.set("open", open);
    if (open) { input.focus(); log.scrollTop = log.scrollHeight; } else { launcher.focus(); }
    clearInterval(noticeTimer);
    if (open) { refreshNotices(); noticeTimer = setInterval(refreshNotices, cfg.noticeRefreshMs || 60000); }
  }
  launcher.addEventListener("click", function () { setOpen(true); });
  close.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") setOpen(false); });
  setOpen(cfg.open || store.get("open") || false);
  window.WalletChat = { open: function () { setOpen(true); }, close: function () { setOpen(false); }, send: sendMessage };
})();
