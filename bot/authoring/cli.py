"""`bot faq …` commands of the FAQ improvement loop: gaps, add-example, draft-topic, history,
rollback, retrain. Exit codes: 0 done, 1 refused or failed (the reason on stderr), 2 bad input."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List, Optional

LOCAL_TZ = timezone(timedelta(hours=8))  # support works in Asia/Shanghai time


def add_loop_commands(faq) -> None:
    """Register the loop's sub-commands on the `bot faq` sub-parser group."""
    gaps = faq.add_parser("gaps", help="list grouped questions the assistant could not answer")
    gaps.add_argument("--days", type=int, default=7, help="look back this many days (default 7)")
    gaps.add_argument("--tracker-db", help="tracker store URL (default: endpoints.yml / WALLET_TRACKER_DB_URL)")
    gaps.add_argument("--limit", type=int, default=30)
    gaps.add_argument("--json", action="store_true")

    add = faq.add_parser("add-example", help="add a question as a training example of a topic (needs retrain)")
    add.add_argument("topic")
    add.add_argument("text")
    add.add_argument("--by", required=True, help="who makes the change")

    phrasing = faq.add_parser("add-phrasing",
                              help="add a wording to a specific FAQ question (served at once, no retraining)")
    phrasing.add_argument("question_id", help="e.g. withdrawal.arrival_time")
    phrasing.add_argument("text")
    phrasing.add_argument("--by", required=True, help="who makes the change")

    draft = faq.add_parser(
        "draft-topic",
        help="draft a new topic in data/faq.yml (not answered until a developer adds intent, examples, rule)")
    draft.add_argument("name", help="lower-case name, e.g. card_limit")
    draft.add_argument("--title", required=True)
    draft.add_argument("--answer", required=True)
    draft.add_argument("--example", action="append", default=[], required=True, help="repeat for more")
    draft.add_argument("--by", required=True)

    history = faq.add_parser("history", help="who changed what and when")
    history.add_argument("--limit", type=int, default=30)
    history.add_argument("--json", action="store_true")

    rollback = faq.add_parser("rollback", help="undo a change (recorded as a new change)")
    rollback.add_argument("id", type=int)
    rollback.add_argument("--by", required=True)
    rollback.add_argument("--force", action="store_true", help="also when the files changed since")

    retrain = faq.add_parser("retrain", help="retrain, evaluate and switch the running model if not worse")
    retrain.add_argument("--wait", action="store_true", help="run in the foreground until it ends")
    retrain.add_argument("--rasa-url", action="append", default=None,
                         help="running Rasa server(s) to switch and report, each instance of a scale-out "
                              "(default: WALLET_RASA_INSTANCES, else handoff.rasa_url / WALLET_RASA_URL)")
    retrain.add_argument("--tolerance", type=float, default=None,
                         help="how much each eval number may get worse (default: retrain.tolerance, 0)")
    retrain.add_argument("--full", action="store_true",
                         help="train from scratch (default: fast fine-tune of the current model when possible)")
    retrain.add_argument("--by", default="cli")
    retrain.add_argument("--status", action="store_true",
                         help="only show the last job and which model each Rasa server serves now")
    retrain.add_argument("--restore-previous", action="store_true",
                         help="put the model from before the last switch back in service (no training)")


def loop_command(args) -> Optional[int]:
    """Run a loop sub-command; None when `args` is not one of them."""
    handlers = {"gaps": _gaps, "add-example": _add_example, "add-phrasing": _add_phrasing, "draft-topic": _draft_topic,
                "history": _history, "rollback": _rollback, "retrain": _retrain}
    handler = handlers.get(getattr(args, "faq_command", None))
    if handler is None:
        return None
    from bot.authoring.changes import ChangeError
    from bot.training.retrain import RetrainError

    try:
        return handler(args)
    except (ChangeError, RetrainError) as err:
        print(f"拒绝：{err.message}", file=sys.stderr)
        return 1


def _root() -> Path:
    from bot.config import project_root

    return project_root()


def _local(iso_or_dt) -> str:
    if not iso_or_dt:
        return "—"
    value = iso_or_dt if isinstance(iso_or_dt, datetime) else datetime.fromisoformat(str(iso_or_dt).rstrip("Z"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _gaps(args) -> int:
    from bot.insights.gaps import faq_gaps
    from bot.insights.sources import tracker_db_url

    if args.days <= 0:
        print("--days 必须是正数", file=sys.stderr)
        return 2
    since = datetime.now(timezone.utc) - timedelta(days=args.days)
    groups = faq_gaps(args.tracker_db or tracker_db_url(), since, None)[: max(1, args.limit)]
    if args.json:
        print(json.dumps([g.as_dict() for g in groups], ensure_ascii=False, indent=1))
        return 0
    if not groups:
        print(f"最近 {args.days} 天没有没答上的问题")
        return 0
    for g in groups:
        print(f"[{g.id}] ×{g.count}  {g.example}  （小助手猜：{g.topic or '无'}）")
        for text in g.texts[1:6]:
            print(f"      · {text}")
    print("\n把问题加到话题：bot faq add-example 话题 \"问题\" --by 姓名；然后 bot faq retrain")
    return 0


def _add_example(args) -> int:
    from bot.authoring.changes import FaqChanges

    change = FaqChanges(_root()).add_example(args.topic, args.text, args.by)
    print(f"#{change.id} {change.summary}")
    print("重新训练后生效：bot faq retrain（或坐席台「FAQ 改进 → 重新训练」）")
    return 0


def _add_phrasing(args) -> int:
    from bot.authoring.changes import FaqChanges

    change = FaqChanges(_root()).add_phrasing(args.question_id, args.text, args.by)
    print(f"#{change.id} {change.summary}")
    print("已生效：FAQ 文件热加载后（约 1 秒）这种说法就会得到这个问题的回答，无需重新训练")
    return 0


def _draft_topic(args) -> int:
    from bot.authoring.changes import FaqChanges

    change = FaqChanges(_root()).draft_topic(args.name, args.title, args.answer, args.example, args.by)
    print(f"#{change.id} {change.summary}")
    print("草稿不会自动上线：需要开发同事加上意图、训练例句和规则后，小助手才会回答这个话题。")
    return 0


def _history(args) -> int:
    from bot.authoring.changes import FaqChanges

    changes = FaqChanges(_root()).history(max(1, args.limit))
    if args.json:
        print(json.dumps([c.as_dict() for c in changes], ensure_ascii=False, indent=1))
        return 0
    if not changes:
        print("还没有变更记录")
    for c in changes:
        undone = f"  （已被 #{c.rolled_back_by} 回滚）" if c.rolled_back_by else ""
        print(f"#{c.id}  {_local(c.created_at)}  {c.author}  {c.summary}{undone}")
    return 0


def _rollback(args) -> int:
    from bot.authoring.changes import FaqChanges

    change = FaqChanges(_root()).rollback(args.id, args.by, force=args.force)
    print(f"#{change.id} {change.summary}")
    if any(path.startswith("data/nlu/") for path in change.files):
        print("训练例句的回滚要重新训练后才生效：bot faq retrain")
    return 0


SERVER_STATUS = {"loaded": "已加载新模型", "stale": "仍是旧模型（会继续拉取新模型）",
                 "unreachable": "未运行，下次启动时加载"}


def print_serving(root: Path, urls: List[str]) -> None:
    """Which model each Rasa server serves now (GET /status), and each process that pulls from
    the model server (the console's /model/processes, when it runs on this host)."""
    from bot.training.model_switch import CURRENT, model_id_of, serving

    try:
        current: Optional[str] = model_id_of(root / CURRENT)
    except Exception:
        current = None
    print(f"当前模型文件 {CURRENT}：{current or '无'}")
    for row in serving(urls):
        mark = "未运行或无法访问" if row["model_id"] is None else (
            "当前模型" if row["model_id"] == current else "不是当前模型")
        print(f"  {row['url']}: {row['model_id'] or '—'}（{mark}）")
    processes = _model_server_processes()
    for p in processes:
        mark = "当前模型" if p.get("model_id") == current else "不是当前模型"
        print(f"  进程 {p['process']}: {p.get('model_id') or '—'}（{mark}，{p['seconds_ago']} 秒前拉取）")


def _model_server_processes() -> List[dict]:
    import requests

    from bot.config import settings

    url = f"http://{settings().console_host}:{settings().console_port}/model/processes"
    try:
        return requests.get(url, timeout=3).json().get("processes") or []
    except (requests.RequestException, ValueError, AttributeError):
        return []


def print_job(state: Optional[dict]) -> None:
    if not state:
        print("还没有重训练任务")
        return
    print(f"任务 {state['id']}：{state['state']}（发起：{state.get('by') or '—'}，"
          f"{_local(state.get('created_at'))}）")
    if state.get("mode"):
        print(f"  训练方式：{'快速更新（微调）' if state['mode'] == 'finetune' else '完整训练'}"
              f"{'，' + str(state['train_seconds']) + ' 秒' if state.get('train_seconds') else ''}"
              f"{'（' + state['mode_note'] + '）' if state.get('mode_note') else ''}")
    for name, title in (("current", "当前模型"), ("candidate", "新模型")):
        numbers = state.get(name)
        if numbers:
            print(f"  {title}：准确率 {numbers['accuracy']:.3f}  答错率 {numbers['wrong_answer_rate']:.3f}  "
                  f"超范围转人工 {numbers['out_of_scope_handed_off']:.3f}")
    for reason in state.get("reasons") or []:
        print(f"  {reason}")
    for server in state.get("servers") or []:
        print(f"  {server['url']}: {SERVER_STATUS.get(server['status'], server['status'])}"
              f"{'（模型 ' + server['model_id'] + '）' if server.get('model_id') else ''}"
              f"{'，' + str(server['seconds']) + ' 秒' if server.get('seconds') is not None else ''}")
    if state.get("error"):
        print(f"  错误：{state['error']}")
    print(f"  日志：{state.get('log')}")


def _retrain(args) -> int:
    from bot.training.retrain import job_status, run_job, start_job
    from bot.config import rasa_instances

    root = _root()
    urls: List[str] = args.rasa_url or list(rasa_instances())
    if args.status:
        print_job(job_status(root))
        print_serving(root, urls)
        return 0
    if args.tolerance is not None and not 0 <= args.tolerance < 1:
        print("--tolerance 必须在 0 到 1 之间", file=sys.stderr)
        return 2
    if args.restore_previous:
        from bot.training.model_switch import SwitchError, restore_previous

        try:
            servers = restore_previous(root, urls)
        except SwitchError as err:
            print(f"拒绝：{err}", file=sys.stderr)
            return 1
        for server in servers:
            print(f"{server.url}: {'已加载之前的模型' if server.status == 'loaded' else SERVER_STATUS[server.status]}"
                  f"{'（模型 ' + server.model_id + '）' if server.model_id else ''}")
        print("已恢复之前的模型（models/wallet.tar.gz）；刚才的模型保存在 models/wallet.previous.tar.gz")
        return 0
    if args.wait:
        state = run_job(root, None, urls, args.tolerance, by=args.by, echo=print, full=args.full)
    else:
        state = start_job(root, args.by, urls, args.tolerance, full=args.full)
        print(f"已在后台开始重训练（任务 {state['id']}）。查看进度：bot faq retrain --status")
        return 0
    print_job(state)
    return 0 if state["state"] == "switched" else 1
