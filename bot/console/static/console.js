// 钱包小助手 agent console: sign-in, live queue (server-sent events), ticket handling.
"use strict";
const $ = (id) => document.getElementById(id);
const ROLE = { user: "用户", bot: "小助手", agent: "客服", system: "系统" };
const REASON = { contact_human: "用户要求人工", low_confidence: "小助手没把握", out_of_scope: "超出范围",
                 not_solved: "回答没解决", scam_signal: "疑似诈骗" };
const STATUS = { open: "待接手", claimed: "处理中", closed: "已结单", cancelled: "用户已取消" };
let me = null, current = null, events = null, csrf = "";

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf };
  const res = await fetch(path, { credentials: "same-origin", headers, ...options });
  const data = await res.json().catch(() => ({}));
  if (data.csrf) csrf = data.csrf;  // from /api/login and /api/me
  if (res.status === 401 && path !== "/api/login") { showLogin(); }
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

function waited(seconds) {
  if (seconds < 60) return `${seconds} 秒`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} 分钟` : `${Math.floor(m / 60)} 小时 ${m % 60} 分`;
}

function showLogin() {
  me = null; if (events) { events.close(); events = null; }
  $("login-view").hidden = false; $("app-view").hidden = true; $("who").hidden = true;
  $("login-name").focus();
}

async function showApp(agent) {
  me = agent;
  $("login-view").hidden = true; $("app-view").hidden = false; $("who").hidden = false;
  $("agent-name").textContent = `坐席：${agent.name}`;
  const { agents } = await api("/api/agents");
  $("transfer-to").innerHTML = agents.filter((a) => a.name !== agent.name)
    .map((a) => `<option>${escapeHtml(a.name)}</option>`).join("");
  listen();
}

function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function renderQueue(tickets) {
  $("queue-empty").hidden = tickets.length > 0;
  $("queue-body").innerHTML = tickets.map((t) => `
    <tr tabindex="0" data-number="${escapeHtml(t.number)}" class="p${t.priority}${current === t.number ? " selected" : ""}">
      <td>${escapeHtml(t.number)}</td><td>${escapeHtml(t.priority_label)}</td><td>${escapeHtml(t.topic)}</td>
      <td>${t.confidence == null ? "—" : (t.confidence * 100).toFixed(0) + "%"}</td>
      <td>${escapeHtml(REASON[t.reason] || t.reason)}</td><td>${escapeHtml(t.channel)}</td>
      <td>${waited(t.waiting_seconds)}</td>
      <td>${escapeHtml(STATUS[t.status] || t.status)}${t.agent ? "（" + escapeHtml(t.agent) + "）" : ""}</td>
    </tr>`).join("");
  for (const row of $("queue-body").querySelectorAll("tr")) {
    row.addEventListener("click", () => openTicket(row.dataset.number));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") openTicket(row.dataset.number); });
  }
}

function listen() {
  if (events) events.close();
  events = new EventSource("/api/events");
  events.addEventListener("queue", (e) => {
    renderQueue(JSON.parse(e.data));
    $("live").classList.remove("off");
    if (current) refreshTicket();
  });
  events.addEventListener("logout", showLogin);  // the session ended (logout elsewhere, expiry, disabled)
  events.onerror = () => { $("live").classList.add("off"); };
}

async function openTicket(number) {
  current = number;
  for (const row of $("queue-body").querySelectorAll("tr")) row.classList.toggle("selected", row.dataset.number === number);
  await refreshTicket();
  $("ticket").hidden = false;
}

async function refreshTicket() {
  try {
    const data = await api(`/api/tickets/${encodeURIComponent(current)}`);
    const t = data.ticket;
    $("t-number").textContent = t.number;
    $("t-meta").textContent = `${data.topic} · ${REASON[t.reason] || t.reason} · ${t.channel} · 会话 ${t.conversation_id}`;
    $("t-status").textContent = (STATUS[t.status] || t.status) + (t.agent ? `（${t.agent}）` : "");
    const mine = t.status === "claimed" && me && t.agent_id === me.id;
    $("claim").disabled = t.status !== "open";
    $("transfer").disabled = !mine;
    for (const el of $("reply-form").elements) el.disabled = !mine;
    for (const el of $("close-form").elements) el.disabled = !mine;
    $("transcript").innerHTML = data.transcript.map((m) =>
      `<li class="${m.role}"><span class="who">${ROLE[m.role] || m.role}${m.agent ? " " + escapeHtml(m.agent) : ""}</span>${escapeHtml(m.text)}</li>`).join("");
    $("transcript").scrollTop = $("transcript").scrollHeight;
    $("suggestions").innerHTML = data.suggestions.map((s) =>
      `<li>${escapeHtml(s.title)}（${(s.confidence * 100).toFixed(0)}%）</li>`).join("") || "<li class='muted'>无</li>";
    $("faq-answer").textContent = data.faq_answer || "（该话题没有 FAQ 回答）";
    $("use-faq").disabled = !mine || !data.faq_answer;
  } catch (err) { $("ticket-error").textContent = err.message; }
}

async function act(fn) {
  $("ticket-error").textContent = "";
  try { await fn(); await refreshTicket(); } catch (err) { $("ticket-error").textContent = err.message; }
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  try {
    const data = await api("/api/login", { method: "POST", body: JSON.stringify({ name: $("login-name").value, password: $("login-password").value }) });
    $("login-password").value = "";
    showApp(data.agent);
  } catch (err) { $("login-error").textContent = err.message; }
});
$("logout").addEventListener("click", async () => { await api("/api/logout", { method: "POST" }).catch(() => {}); showLogin(); });
$("claim").addEventListener("click", () => act(() => api(`/api/tickets/${encodeURIComponent(current)}/claim`, { method: "POST" })));
$("transfer").addEventListener("click", () => act(() => api(`/api/tickets/${encodeURIComponent(current)}/transfer`,
  { method: "POST", body: JSON.stringify({ agent: $("transfer-to").value }) })));
$("reply-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("reply-text").value;
  act(async () => { await api(`/api/tickets/${encodeURIComponent(current)}/reply`, { method: "POST", body: JSON.stringify({ text }) }); $("reply-text").value = ""; });
});
$("reply-text").addEventListener("keydown", (e) => { if (e.key === "Enter" && e.ctrlKey) $("reply-form").requestSubmit(); });
$("close-form").addEventListener("submit", (e) => {
  e.preventDefault();
  act(async () => { await api(`/api/tickets/${encodeURIComponent(current)}/close`, { method: "POST", body: JSON.stringify({ note: $("close-note").value }) }); $("close-note").value = ""; });
});
$("use-faq").addEventListener("click", () => { $("reply-text").value = $("faq-answer").textContent; $("reply-text").focus(); });

api("/api/me").then((d) => showApp(d.agent)).catch(() => showLogin());
