// FAQ 改进 panel of the agent console: unanswered questions, add a training example or a phrasing
// of a specific question (live without retraining), draft a topic, change history with rollback,
// retrain + status. Uses console.js's `api()` (session cookie + CSRF header); loads when the panel
// is opened and refreshes while a job runs. User text only ever goes into textContent and option
// labels, never into HTML.
"use strict";
(function () {
  const byId = (id) => document.getElementById(id);
  const view = byId("app-view");
  const panel = byId("faq-loop-panel");
  const STATE = { queued: "排队中", training: "训练中", evaluating: "评测中", switched: "已切换到新模型",
                  refused: "评测变差，未切换（仍用旧模型）", failed: "失败" };
  const ACTIVE = ["queued", "training", "evaluating"];
  let topics = [], questions = [], timer = null;  // questions: [{name, title, questions: [{id, question}]}]

  function node(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  }

  function topicSelect(selected) {
    const select = node("select");
    for (const t of topics) {
      const option = node("option", "", `${t.title}（${t.name}）`);
      option.value = t.name;
      if (t.name === selected) option.selected = true;
      select.appendChild(option);
    }
    return select;
  }

  function questionText(id) {
    for (const t of questions) for (const q of t.questions) if (q.id === id) return q.question;
    return id;
  }

  // Every specific question, grouped by topic, `topic`'s group first; `suggested` preselected when
  // it is one of them, else a placeholder that names the topic (no question is guessed for the lead).
  function questionSelect(topic, suggested) {
    const select = node("select", "gap-question");
    const own = questions.find((t) => t.name === topic);
    const placeholder = node("option", "", own ? `选择「${own.title}」的具体问题…` : "选择具体问题…");
    placeholder.value = "";
    select.appendChild(placeholder);
    const ordered = own ? [own, ...questions.filter((t) => t !== own)] : questions;
    for (const t of ordered) {
      const group = node("optgroup");
      group.label = `${t.title}（${t.name}）`;
      for (const q of t.questions) {
        const option = node("option", "", q.question);
        option.value = q.id;
        if (q.id === suggested) option.selected = true;
        group.appendChild(option);
      }
      select.appendChild(group);
    }
    return select;
  }

  function say(message, ok) {
    byId("faq-loop-error").textContent = ok ? "" : message;
    byId("faq-loop-ok").textContent = ok ? message : "";
  }

  function local(iso) {
    return iso ? new Date(iso).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) : "—";
  }

  function numbers(n) {
    return `准确率 ${n.accuracy.toFixed(3)} · 答错率 ${n.wrong_answer_rate.toFixed(3)} · 超范围转人工 ${n.out_of_scope_handed_off.toFixed(3)}`;
  }

  function renderJob(job) {
    const details = byId("retrain-details");
    details.textContent = "";
    if (!job) { byId("retrain-status").textContent = "还没有重训练任务"; byId("retrain-start").disabled = false; return; }
    byId("retrain-status").textContent = `任务 ${job.id}：${STATE[job.state] || job.state}（${job.by || "—"}，${local(job.created_at)}）`;
    const lines = [];
    if (job.mode) lines.push(`训练方式：${job.mode === "finetune" ? "快速更新" : "完整训练"}${job.train_seconds ? "，" + job.train_seconds + " 秒" : ""}${job.mode_note ? "（" + job.mode_note + "）" : ""}`);
    if (job.current) lines.push("当前模型：" + numbers(job.current));
    if (job.candidate) lines.push("新模型：" + numbers(job.candidate));
    for (const r of job.reasons || []) lines.push(r);
    if (job.error) lines.push("错误：" + job.error);
    for (const line of lines) details.appendChild(node("li", "", line));
    const running = ACTIVE.includes(job.state);
    byId("retrain-start").disabled = running;
    clearTimeout(timer);
    if (running) timer = setTimeout(loadJob, 5000);
  }

  function renderGaps(gaps) {
    const list = byId("gap-list");
    list.textContent = "";
    byId("gap-empty").hidden = gaps.length > 0;
    for (const g of gaps.slice(0, 15)) {
      const li = node("li");
      li.appendChild(node("strong", "", `×${g.count} `));
      li.appendChild(node("span", "", g.example));
      const suggested = g.suggested_question;
      const topic = g.topic || (suggested && suggested.topic);  // no guess: the closest question's topic
      li.appendChild(node("span", "muted", `（小助手猜：${g.topic || "无"}${suggested ? "；最接近的问题：" + suggested.question : ""}）`));
      const row = node("div", "gap-add");
      const select = topicSelect(topic);
      const add = node("button", "", "加为例句");
      add.type = "button";
      add.addEventListener("click", () => addExample(select.value, g.example));
      row.append(select, add);
      li.appendChild(row);
      if (questions.length) {
        const phrasingRow = node("div", "gap-add gap-phrasing");
        let question = questionSelect(topic, suggested && suggested.id);
        select.addEventListener("change", () => {  // another topic: offer its questions first
          const chosen = questions.find((t) => t.name === select.value);
          if (chosen && chosen.questions.some((q) => q.id === question.value)) return;
          const fresh = questionSelect(select.value, suggested && suggested.topic === select.value ? suggested.id : null);
          question.replaceWith(fresh);
          question = fresh;
        });
        const addPhrasingButton = node("button", "", "加为该问题的问法");
        addPhrasingButton.type = "button";
        addPhrasingButton.title = "不用重新训练，几秒内生效";
        addPhrasingButton.addEventListener("click", () => {
          if (!question.value) { say("请先选择具体问题"); question.focus(); return; }
          addPhrasing(question.value, g.example);
        });
        phrasingRow.append(question, addPhrasingButton);
        li.appendChild(phrasingRow);
      }
      list.appendChild(li);
    }
  }

  function renderChanges(changes) {
    const body = byId("change-body");
    body.textContent = "";
    for (const c of changes) {
      const tr = node("tr", c.rolled_back_by ? "undone" : "");
      tr.append(node("td", "", `#${c.id}`), node("td", "", local(c.created_at)), node("td", "", c.author),
                node("td", "", c.summary + (c.rolled_back_by ? `（已被 #${c.rolled_back_by} 回滚）` : "")));
      const cell = node("td");
      if (!c.rolled_back_by) {
        const undo = node("button", "", "回滚");
        undo.type = "button";
        undo.addEventListener("click", () => rollback(c.id));
        cell.appendChild(undo);
      }
      tr.appendChild(cell);
      body.appendChild(tr);
    }
  }

  async function loadJob() {
    try { renderJob((await api("/api/faq/retrain")).job); } catch (err) { say(err.message); }
  }

  async function load() {
    try {
      if (!topics.length) {
        topics = (await api("/api/faq/topics")).topics;
        const select = byId("example-topic");
        select.replaceWith(Object.assign(topicSelect(), { id: "example-topic" }));
      }
      if (!questions.length) {
        try { questions = (await api("/api/faq/questions")).topics; }
        catch (err) { say(err.message); }  // the rest of the page still works
      }
      // The change list first: after an FAQ edit the gap list waits for the server to re-index the
      // FAQ's wordings (seconds), the change (and its rollback button) should not.
      const gaps = api("/api/faq/gaps");
      gaps.catch(() => {});  // awaited below
      renderChanges((await api("/api/faq/changes")).changes);
      renderGaps((await gaps).gaps);
      await loadJob();
    } catch (err) { say(err.message); }
  }

  async function addExample(topic, text) {
    try {
      const { change } = await api("/api/faq/examples", { method: "POST", body: JSON.stringify({ topic, text }) });
      say(`已记录 #${change.id}：${change.summary}。点「重新训练并切换」后生效。`, true);
      await load();
      return true;
    } catch (err) { say(err.message); return false; }
  }

  async function addPhrasing(questionId, text) {
    try {
      const { change } = await api("/api/faq/phrasings", { method: "POST", body: JSON.stringify({ question_id: questionId, text }) });
      say(`已加入问题「${questionText(questionId)}」的问法，无需重新训练即可生效（变更 #${change.id}，可在变更记录里回滚）`, true);
      await load();
      return true;
    } catch (err) { say(err.message); return false; }
  }

  async function rollback(id, force = false) {
    try {
      const { change } = await api(`/api/faq/changes/${id}/rollback`, { method: "POST", body: JSON.stringify({ force }) });
      say(`已回滚：#${change.id} ${change.summary}`, true);
    } catch (err) {
      if (!force && /--force/.test(err.message) && window.confirm(err.message.replace("请加 --force", "确定覆盖吗？"))) return rollback(id, true);
      say(err.message);
    }
    await load();
  }

  byId("example-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await addExample(byId("example-topic").value, byId("example-text").value)) byId("example-text").value = "";
  });

  byId("draft-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const payload = { name: byId("draft-name").value.trim(), title: byId("draft-title").value, answer: byId("draft-answer").value,
                      examples: byId("draft-examples").value.split("\n").map((s) => s.trim()).filter(Boolean) };
    try {
      const { change } = await api("/api/faq/drafts", { method: "POST", body: JSON.stringify(payload) });
      say(`已保存草稿 #${change.id}。草稿不会自动上线：请开发同事加上意图、训练例句和规则。`, true);
      byId("draft-form").reset();
      byId("draft-new").open = false;
      await load();
    } catch (err) { say(err.message); }
  });

  byId("retrain-start").addEventListener("click", async () => {
    byId("retrain-start").disabled = true;
    const full = byId("retrain-full").checked;
    try { renderJob((await api("/api/faq/retrain", { method: "POST", body: JSON.stringify({ full }) })).job); say("已开始重新训练，完成后自动评测并决定是否切换。", true); }
    catch (err) { say(err.message); byId("retrain-start").disabled = false; }
  });

  panel.addEventListener("toggle", () => { if (panel.open && !view.hidden) load(); });
})();
