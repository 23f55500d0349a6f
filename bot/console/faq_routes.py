"""Console API of the FAQ improvement loop (every route needs a signed-in agent; changes need CSRF).

  GET  /api/faq/topics                     topics examples can be added to (name, title)
  GET  /api/faq/questions                  each topic's specific questions (id, question), phrasings go there
  GET  /api/faq/gaps?days=7                grouped questions the assistant could not answer, each with the
                                           closest specific question (`suggested_question`, or null)
  POST /api/faq/examples   {topic, text}   add a training example (masked; needs retraining)
  POST /api/faq/phrasings  {question_id, text}   add a wording to a specific question (masked; live at the
                                           FAQ's next hot reload, no retraining)
  POST /api/faq/drafts     {name, title, answer, examples}   draft a new topic (not served)
  GET  /api/faq/changes                    history: who changed what and when
  POST /api/faq/changes/<id>/rollback {force}
  GET  /api/faq/retrain                    the last retraining job (state and numbers)
  POST /api/faq/retrain    {full}          start one in the background (409 when one runs)

The author of a change is the signed-in agent. Refusals come back as 4xx with the Chinese reason.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional

from sanic import Sanic, response
from sanic.request import Request

from bot.errors import StaffError
from bot.authoring.changes import EXAMPLE_TOPICS, FAQ_FILE, FaqChanges
from bot.faq.model import Faq, FaqError, load_faq
from bot.training.retrain import job_status, start_job
from bot.config import project_root, rasa_instances

MAX_ROW_ID = 2**63 - 1
MAX_GAPS = 50


def with_suggestions(rows: List[Dict[str, Any]], faq: Optional[Faq]) -> List[Dict[str, Any]]:
    """Gap rows, each with `suggested_question`: the specific question closest to its example
    ({id, topic, question}), or None (nothing close enough, or no FAQ to rank against)."""
    from bot.faq.match import closest_questions

    for row in rows:
        found = closest_questions(faq, row["example"], count=1) if faq is not None else []
        row["suggested_question"] = ({"id": found[0].id, "topic": found[0].topic, "question": found[0].question}
                                     if found else None)
    return rows


def register_faq_routes(app: Sanic, authenticated: Callable, body: Callable[[Request], Dict[str, Any]],
                        database_url: str) -> None:
    root = project_root()
    changes = FaqChanges(root, database_url)

    def served_faq() -> Optional[Faq]:
        """The FAQ the assistant answers from (hot reloaded); None when it cannot be loaded."""
        from bot.faq.store import shared_store

        try:
            return shared_store().get()
        except (FaqError, OSError):
            return None

    @app.get("/api/faq/topics")
    @authenticated
    async def faq_topics(_: Request):
        try:
            titles = {name: t.title for name, t in load_faq(root / "data" / "faq.yml").topics.items()}
        except FaqError:
            titles = {}
        titles["out_of_scope"] = "不属于本助手（转人工）"
        return response.json({"topics": [{"name": n, "title": titles.get(n, n)} for n in EXAMPLE_TOPICS]})

    @app.get("/api/faq/questions")
    @authenticated
    async def faq_questions(_: Request):
        try:
            faq = await asyncio.to_thread(load_faq, root / FAQ_FILE)
        except FaqError as err:
            raise StaffError(f"{FAQ_FILE} 现在通不过检查，请先修好（make check）：{err.where}: {err.problem}", 409)
        return response.json({"topics": [
            {"name": t.name, "title": t.title, "questions": [{"id": q.id, "question": q.question} for q in t.questions]}
            for t in faq.topics.values() if t.questions]})

    @app.get("/api/faq/gaps")
    @authenticated
    async def faq_gaps_route(request: Request):
        from bot.insights.gaps import faq_gaps
        from bot.insights.sources import tracker_db_url

        try:
            days = int(request.args.get("days", "7"))
        except ValueError:
            raise StaffError("days 必须是整数")
        if not 1 <= days <= 90:
            raise StaffError("days 必须在 1 到 90 之间")
        since = datetime.now(timezone.utc) - timedelta(days=days)
        groups = await asyncio.to_thread(faq_gaps, tracker_db_url(), since, None)
        rows = [g.as_dict() for g in groups[:MAX_GAPS]]
        rows = await asyncio.to_thread(lambda: with_suggestions(rows, served_faq()))
        return response.json({"gaps": rows})

    @app.post("/api/faq/examples")
    @authenticated
    async def faq_add_example(request: Request):
        data = body(request)
        topic, text = data.get("topic"), data.get("text")
        if not isinstance(topic, str) or not isinstance(text, str):
            raise StaffError("topic 和 text 必须是字符串")
        change = await asyncio.to_thread(changes.add_example, topic, text, request.ctx.agent["name"])
        return response.json({"change": change.as_dict()})

    @app.post("/api/faq/phrasings")
    @authenticated
    async def faq_add_phrasing(request: Request):
        data = body(request)
        question_id, text = data.get("question_id"), data.get("text")
        if not isinstance(question_id, str) or not isinstance(text, str):
            raise StaffError("question_id 和 text 必须是字符串")
        change = await asyncio.to_thread(changes.add_phrasing, question_id, text, request.ctx.agent["name"])
        return response.json({"change": change.as_dict()})

    @app.post("/api/faq/drafts")
    @authenticated
    async def faq_draft_topic(request: Request):
        data = body(request)
        fields = [data.get(k) for k in ("name", "title", "answer")]
        examples = data.get("examples")
        if not all(isinstance(f, str) for f in fields) or not isinstance(examples, list):
            raise StaffError("name、title、answer 必须是字符串，examples 必须是列表")
        change = await asyncio.to_thread(changes.draft_topic, *fields, examples, request.ctx.agent["name"])
        return response.json({"change": change.as_dict()})

    @app.get("/api/faq/changes")
    @authenticated
    async def faq_history(_: Request):
        found = await asyncio.to_thread(changes.history, 50)
        return response.json({"changes": [c.as_dict() for c in found]})

    @app.post("/api/faq/changes/<change_id:int>/rollback")
    @authenticated
    async def faq_rollback(request: Request, change_id: int):
        if not 1 <= change_id <= MAX_ROW_ID:  # the database cannot even look such a number up
            raise StaffError(f"没有编号为 {str(change_id)[:20]} 的变更", 404)
        force = body(request).get("force", False)
        if not isinstance(force, bool):
            raise StaffError("force 必须是 true 或 false")
        change = await asyncio.to_thread(changes.rollback, change_id, request.ctx.agent["name"], force)
        return response.json({"change": change.as_dict()})

    @app.get("/api/faq/retrain")
    @authenticated
    async def faq_retrain_status(_: Request):
        return response.json({"job": await asyncio.to_thread(job_status, root)})

    @app.post("/api/faq/retrain")
    @authenticated
    async def faq_retrain_start(request: Request):
        full = body(request).get("full", False)
        if not isinstance(full, bool):
            raise StaffError("full 必须是 true 或 false")
        job = await asyncio.to_thread(start_job, root, request.ctx.agent["name"], list(rasa_instances()), None, full)
        return response.json({"job": job}, status=202)
