// 看板 tab of the agent console: headline numbers, charts and the FAQ gap list.
// Data: GET /api/dashboard?days=N; charts: GET /api/dashboard/chart/<name>.png (same code as `make report`).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const CHARTS = [["hourly", "每小时新会话"], ["daily", "每日会话"], ["topics", "热门话题"],
                  ["outcomes", "消息结果"], ["ratings", "满意度"], ["times", "等待与处理时长"]];
  const REASONS = { nlu_fallback: "没听懂", low_confidence: "没听懂并转人工", out_of_scope: "超出范围",
                    deny: "用户说没解决", unhelpful: "用户说没用" };
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  function localTime(iso, zone) {
    return new Date(iso).toLocaleString("zh-CN", { timeZone: zone, hour12: false, year: "numeric", month: "2-digit",
                                                    day: "2-digit", hour: "2-digit", minute: "2-digit" });
  }

  function show(on) {
    $("app-view").classList.toggle("show-dashboard", on);
    $("dashboard-tab").setAttribute("aria-pressed", String(on));
    $("dashboard-tab").textContent = on ? "返回工单" : "看板";
    if (on) load();
  }

  async function load() {
    const days = $("dash-days").value;
    $("dash-error").textContent = "";
    $("dash-report").href = `/api/dashboard/report.html?days=${encodeURIComponent(days)}`;
    try {
      const res = await fetch(`/api/dashboard?days=${encodeURIComponent(days)}`, { credentials: "same-origin" });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
      render(data, days);
    } catch (err) {
      $("dash-error").textContent = `看板加载失败：${err.message}`;
    }
  }

  function render(data, days) {
    const a = data.analytics;
    $("dash-range").textContent = `${localTime(a.since, a.timezone)} — ${localTime(a.until, a.timezone)}`;
    $("dash-cards").innerHTML = data.cards.map((c) => `
      <div class="dash-card" data-card="${esc(c.id)}"><div class="label">${esc(c.label)}</div>
      <div class="value">${esc(c.value)}</div><div class="hint">${esc(c.hint)}</div></div>`).join("");
    const stamp = Date.now();
    $("dash-charts").innerHTML = CHARTS.map(([name, title]) =>
      `<img alt="${esc(title)}" data-chart="${name}" src="/api/dashboard/chart/${name}.png?days=${encodeURIComponent(days)}&t=${stamp}">`).join("");
    $("dash-gap-count").textContent = `${data.gap_groups} 组`;
    $("dash-gaps").innerHTML = data.gaps.map((g) => {
      const others = g.texts.filter((t) => t !== g.example);
      const more = others.length ? `<details><summary>另有 ${others.length} 种问法</summary><ul>${others.map((t) => `<li>${esc(t)}</li>`).join("")}</ul></details>` : "";
      const reasons = Object.entries(g.reasons).map(([k, v]) => `${esc(REASONS[k] || k)} ${v}`).join("，");
      return `<tr data-gap="${esc(g.id)}"><td>${g.count}</td><td>${esc(g.example)}${more}</td><td>${esc(g.topic_title || "—")}</td><td>${reasons}</td></tr>`;
    }).join("") || "<tr><td colspan='4' class='muted'>这段时间没有未解答的问题</td></tr>";
  }

  $("dashboard-tab").addEventListener("click", () => show(!$("app-view").classList.contains("show-dashboard")));
  $("dash-days").addEventListener("change", load);
  $("dash-refresh").addEventListener("click", load);
  $("logout").addEventListener("click", () => show(false));
})();
