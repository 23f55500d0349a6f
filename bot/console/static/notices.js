// 服务公告 panel of the agent console: current notices, publish one, take one down.
// Uses console.js's `api()` (session cookie + CSRF header); loads when the signed-in view shows.
"use strict";
(function () {
  const byId = (id) => document.getElementById(id);
  const view = byId("app-view");
  let topicsFilled = false;

  function node(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  }

  function render(data) {
    byId("notice-tz").textContent = data.timezone || "北京时间";
    if (!topicsFilled) {
      const select = byId("notice-topic");
      for (const t of data.topics) {
        const option = node("option", "", t.name === "all" ? t.title : `${t.title}（${t.name}）`);
        option.value = t.name;
        select.appendChild(option);
      }
      topicsFilled = true;
    }
    const titles = Object.fromEntries(data.topics.map((t) => [t.name, t.title]));
    const list = byId("notice-list");
    list.textContent = "";
    for (const n of data.notices) {
      const li = node("li", `notice ${n.status}`);
      li.dataset.id = n.id;
      li.appendChild(node("span", "notice-status", n.status_text));
      li.appendChild(node("strong", "", ` #${n.id} ${titles[n.topic] || n.topic} `));
      li.appendChild(node("span", "muted", `${n.starts_at_local} 至 ${n.until_local}${n.created_by ? " · " + n.created_by : ""}`));
      li.appendChild(node("div", "notice-body", n.text));
      const clear = node("button", "notice-clear", "撤下");
      clear.type = "button";
      clear.addEventListener("click", () => act(() => api(`/api/notices/${n.id}`, { method: "DELETE" })));
      li.appendChild(clear);
      list.appendChild(li);
    }
    byId("notice-empty").hidden = data.notices.length > 0;
  }

  async function load() {
    try { render(await api("/api/notices")); } catch (err) { byId("notice-error").textContent = err.message; }
  }

  async function act(fn) {
    byId("notice-error").textContent = "";
    try { await fn(); } catch (err) { byId("notice-error").textContent = err.message; }
    await load();
  }

  byId("notice-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const payload = { topic: byId("notice-topic").value, until: byId("notice-until").value, text: byId("notice-text").value };
    act(async () => {
      await api("/api/notices", { method: "POST", body: JSON.stringify(payload) });
      byId("notice-text").value = ""; byId("notice-until").value = "";
      byId("notice-new").open = false;
    });
  });

  // console.js shows the signed-in view by removing `hidden` from #app-view.
  new MutationObserver(() => { if (!view.hidden) load(); }).observe(view, { attributes: true, attributeFilter: ["hidden"] });
  if (!view.hidden) load();
  setInterval(() => { if (!view.hidden) load(); }, 30000);  // expiry and other agents' changes
})();
