"""Versioned FAQ changes (bot/authoring/changes.py) on a temp copy of the project: add a training
example, draft a topic, history, rollback, and `bot faq check` over the results."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import yaml

from bot.authoring.changes import FAQ_FILE, STAFF_NLU_FILE, ChangeError, FaqChanges
from bot.faq.check import check_project
from bot.faq.model import load_faq
from bot.authoring.yaml_blocks import append_to_section, scalar
from tests.conftest import ROOT

OUR_QUESTION = "绑了卡为什么付不了商城里的订单"  # written for this test, not from ../shared/eval


@pytest.fixture
def project(tmp_path) -> Path:
    """The files the loop edits and `bot faq check` reads, copied: the real data/ is never touched."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(ROOT / "data", root / "data")
    for name in ("domain.yml", "config.yml"):
        shutil.copy2(ROOT / name, root / name)
    return root


@pytest.fixture
def changes(project, sqlite_url) -> FaqChanges:
    return FaqChanges(project, sqlite_url)


def _examples(root: Path) -> dict:
    data = yaml.safe_load((root / STAFF_NLU_FILE).read_text(encoding="utf-8"))
    return {b["intent"]: [line[2:] for line in b["examples"].splitlines()] for b in data["nlu"]}


def test_add_example_creates_the_staff_file_and_appends_per_topic(changes, project):
    baseline = check_project(project)
    first = changes.add_example("payment_failure", OUR_QUESTION, by="小王")
    changes.add_example("payment_failure", "商城下单一直扣款失败怎么回事", by="小王")
    changes.add_example("refund", "退回来的钱在零钱明细里找不到", by="小李")
    assert _examples(project) == {
        "payment_failure": [OUR_QUESTION, "商城下单一直扣款失败怎么回事"],
        "refund": ["退回来的钱在零钱明细里找不到"],
    }
    text = (project / STAFF_NLU_FILE).read_text(encoding="utf-8")
    assert text.startswith("# 客服同事添加的训练例句") and text.count("- intent: payment_failure") == 1
    assert first.action == "add_example" and first.author == "小王" and OUR_QUESTION in first.summary
    assert first.files[STAFF_NLU_FILE]["before"] is None
    assert check_project(project) == baseline  # the new file passes the project check


@pytest.mark.parametrize("variant", [OUR_QUESTION, f"  {OUR_QUESTION}  ", "綁了卡為什麼付不了商城裡的訂單"])
def test_duplicates_after_normalisation_are_refused(changes, variant):
    changes.add_example("payment_failure", OUR_QUESTION, by="小王")
    with pytest.raises(ChangeError) as err:
        changes.add_example("payment_failure", variant, by="小王")
    assert err.value.status == 409 and "已经有这个例句" in err.value.message


def test_an_example_another_intent_owns_is_refused(changes, project):
    owned = yaml.safe_load((project / "data/nlu/change_account_info.yml").read_text(encoding="utf-8"))["nlu"][0]
    example = owned["examples"].splitlines()[0][2:]
    with pytest.raises(ChangeError) as err:
        changes.add_example("refund", example, by="小王")
    assert owned["intent"] in err.value.message
    assert not (project / STAFF_NLU_FILE).exists()


@pytest.mark.parametrize("topic, text, by, expected", [
    ("no_such_topic", OUR_QUESTION, "小王", "没有这个话题"),
    ("greet", OUR_QUESTION, "小王", "没有这个话题"),
    ("refund", "   ", "小王", "不能为空"),
    ("refund", "🙂🙂", "小王", "不能为空"),
    ("refund", OUR_QUESTION, " ", "操作人"),
    ("refund", "退款 [订单](order_id) 在哪看", "小王", "实体标注"),
    ("refund", "退" * 201, "小王", "太长"),
])
def test_bad_input_is_refused_with_a_reason(changes, project, topic, text, by, expected):
    with pytest.raises(ChangeError) as err:
        changes.add_example(topic, text, by=by)
    assert expected in err.value.message and err.value.status == 400
    assert not (project / STAFF_NLU_FILE).exists()
    assert changes.history() == []


def test_personal_data_is_masked_before_it_is_stored(changes, project):
    change = changes.add_example("refund", "我手机13812345678的退款到哪了", by="小王")
    stored = (project / STAFF_NLU_FILE).read_text(encoding="utf-8")
    assert "13812345678" not in stored
    assert "[手机尾号5678]" in stored
    assert "13812345678" not in change.summary


def test_draft_topic_goes_into_a_drafts_section_and_keeps_comments(changes, project):
    before = (project / FAQ_FILE).read_text(encoding="utf-8")
    baseline = check_project(project)
    change = changes.draft_topic(
        "card_limit", "银行卡限额", "每张卡的限额由发卡行设定：\n1. 在「银行卡」详情查看；\n2. 需要更高限额请联系发卡行。",
        ["银行卡每天最多能付多少", "快捷支付限额怎么提高"], by="小王")
    changes.draft_topic("points_expiry", "积分过期", "积分在「我的 → 积分」查看有效期。", ["积分什么时候过期"], by="小李")
    after = (project / FAQ_FILE).read_text(encoding="utf-8")
    assert after.startswith(before.rstrip("\n"))  # every comment and line of the staff file survives
    raw = yaml.safe_load(after)
    assert raw["drafts"]["card_limit"]["examples"] == ["银行卡每天最多能付多少", "快捷支付限额怎么提高"]
    assert raw["drafts"]["card_limit"]["answer"].startswith("每张卡的限额由发卡行设定：\n1.")
    assert raw["drafts"]["points_expiry"]["by"] == "小李"
    assert "card_limit" not in load_faq(project / FAQ_FILE).topics  # not served
    assert check_project(project) == baseline
    assert change.action == "draft_topic" and "card_limit" in change.summary


@pytest.mark.parametrize("name, title, answer, examples, expected", [
    ("refund", "退款", "答案", ["例句一"], "已被现有意图"),
    ("Card-Limit", "限额", "答案", ["例句一"], "名称只能用"),
    ("card_limit", "限额", "请提供您的验证码，我们帮您查询", ["例句一"], "敏感信息"),
    ("card_limit", "限额", "答案 {brand", ["例句一"], "占位符"),
    ("card_limit", "", "答案", ["例句一"], "'title' 不能为空"),
    ("card_limit", "限额", "答案", [], "至少要有一个例句"),
    ("card_limit", "限额", "答案", ["转人工"], "已属于 'contact_human'"),
])
def test_bad_drafts_are_refused(changes, project, name, title, answer, examples, expected):
    before = (project / FAQ_FILE).read_text(encoding="utf-8")
    with pytest.raises(ChangeError) as err:
        changes.draft_topic(name, title, answer, examples, by="小王")
    assert expected in err.value.message
    assert (project / FAQ_FILE).read_text(encoding="utf-8") == before


def test_a_draft_name_cannot_be_used_twice(changes):
    changes.draft_topic("card_limit", "银行卡限额", "答案", ["银行卡每天最多能付多少"], by="小王")
    with pytest.raises(ChangeError, match="已被现有意图或其他草稿使用"):
        changes.draft_topic("card_limit", "另一个", "答案", ["另一个例句"], by="小王")


def test_history_lists_who_when_what_newest_first(changes):
    changes.add_example("refund", "退回来的钱在零钱明细里找不到", by="小李")
    changes.draft_topic("card_limit", "银行卡限额", "答案", ["银行卡每天最多能付多少"], by="小王")
    history = changes.history()
    assert [(c.author, c.action) for c in history] == [("小王", "draft_topic"), ("小李", "add_example")]
    assert all(c.created_at is not None for c in history)
    assert history[0].as_dict()["files"] == [FAQ_FILE]


def test_rollback_restores_the_texts_as_a_new_change(changes, project):
    faq_before = (project / FAQ_FILE).read_text(encoding="utf-8")
    example = changes.add_example("refund", "退回来的钱在零钱明细里找不到", by="小李")
    draft = changes.draft_topic("card_limit", "银行卡限额", "答案", ["银行卡每天最多能付多少"], by="小王")

    undo = changes.rollback(draft.id, by="组长")
    assert (project / FAQ_FILE).read_text(encoding="utf-8") == faq_before
    assert undo.action == "rollback" and undo.author == "组长" and f"#{draft.id}" in undo.summary
    assert changes.get(draft.id).rolled_back_by == undo.id
    with pytest.raises(ChangeError, match="已经被"):
        changes.rollback(draft.id, by="组长")

    changes.rollback(example.id, by="组长")  # the staff file did not exist before: removed again
    assert not (project / STAFF_NLU_FILE).exists()
    assert [c.action for c in changes.history()] == ["rollback", "rollback", "draft_topic", "add_example"]


def test_rolling_back_a_rollback_reapplies_the_change(changes, project):
    draft = changes.draft_topic("card_limit", "银行卡限额", "答案", ["银行卡每天最多能付多少"], by="小王")
    with_draft = (project / FAQ_FILE).read_text(encoding="utf-8")
    undo = changes.rollback(draft.id, by="组长")
    changes.rollback(undo.id, by="组长")
    assert (project / FAQ_FILE).read_text(encoding="utf-8") == with_draft
    assert changes.get(draft.id).rolled_back_by is None


def test_rollback_refuses_when_the_file_changed_since_unless_forced(changes, project):
    first = changes.add_example("refund", "退回来的钱在零钱明细里找不到", by="小李")
    changes.add_example("refund", "退款显示成功但是余额没变", by="小王")
    with pytest.raises(ChangeError) as err:
        changes.rollback(first.id, by="组长")
    assert err.value.status == 409 and STAFF_NLU_FILE in err.value.message and "--force" in err.value.message
    forced = changes.rollback(first.id, by="组长", force=True)
    assert not (project / STAFF_NLU_FILE).exists()
    assert "退款显示成功但是余额没变" in forced.files[STAFF_NLU_FILE]["before"]  # kept: can be rolled back


def test_rollback_of_an_unknown_change_is_a_404(changes):
    with pytest.raises(ChangeError) as err:
        changes.rollback(999, by="组长")
    assert err.value.status == 404


def test_concurrent_additions_are_all_kept(changes, project):
    texts = [f"退款第{n}次申请还是没到账" for n in "一二三四五六"]
    errors = []

    def add(text):
        try:
            changes.add_example("refund", text, by="小王")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(_examples(project)["refund"]) == sorted(texts)
    assert len(changes.history()) == len(texts)


def test_check_reports_hand_written_bad_drafts(project):
    baseline = check_project(project)
    with open(project / FAQ_FILE, "a", encoding="utf-8") as handle:
        handle.write("\ndrafts:\n  card_limit:\n    title: 限额\n    answer: 请把验证码发给我们\n"
                     "    examples: []\n    colour: red\n")
    new = [p for p in check_project(project) if p not in baseline]
    assert any("敏感信息" in p for p in new)
    assert any("至少要有一个例句" in p for p in new)
    assert any("未知字段" in p for p in new)
    assert all("card_limit" in p for p in new)


def test_check_reports_examples_of_intents_outside_the_contract(project):
    (project / STAFF_NLU_FILE).write_text('version: "3.1"\nnlu:\n- intent: card_limit\n  examples: |\n    - 限额\n',
                                         encoding="utf-8")
    assert any("card_limit" in p and "topic contract" in p for p in check_project(project))


def test_an_empty_inline_drafts_section_is_extended():
    doc = "# comment\ntopics: {}\ndrafts: {}  # staff\n"
    out = append_to_section(doc, "drafts", "  x:\n    title: t\n")
    assert yaml.safe_load(out)["drafts"] == {"x": {"title": "t"}}
    assert out.startswith("# comment\ntopics: {}\n")


@pytest.mark.parametrize("text", ["简单", "a: b # c", '"引号" \'单引号\'', "  前导空格\n第二行", "行一\n\n行三",
                                  "{brand} 占位", "- 列表开头", "尾部空格  \n下一行"])
def test_scalars_read_back_exactly(text):
    assert yaml.safe_load("k:" + scalar(text, 2))["k"].strip("\n") == text.strip("\n")


def test_cli_add_example_history_and_rollback(project, handoff_db, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("WALLET_PROJECT_ROOT", str(project))
    assert main(["faq", "add-example", "refund", "退回来的钱在零钱明细里找不到", "--by", "小李"]) == 0
    assert "#1" in capsys.readouterr().out
    assert main(["faq", "add-example", "refund", "退回来的钱在零钱明细里找不到", "--by", "小李"]) == 1
    assert "已经有这个例句" in capsys.readouterr().err
    assert main(["faq", "history"]) == 0
    assert "小李" in capsys.readouterr().out
    assert main(["faq", "rollback", "1", "--by", "组长"]) == 0
    assert not (project / STAFF_NLU_FILE).exists()
    assert main(["faq", "draft-topic", "card_limit", "--title", "银行卡限额", "--answer", "答案",
                 "--example", "银行卡每天最多能付多少", "--by", "小王"]) == 0
    assert "不会自动上线" in capsys.readouterr().out
    main(["faq", "check"])
    assert "card_limit" not in capsys.readouterr().out  # the draft passes the project check


def test_add_phrasing_to_a_specific_question_is_served_without_retraining(changes, project):
    from bot.faq.match import pick_question

    faq_file = project / "data" / "faq.yml"
    before = faq_file.read_text(encoding="utf-8")
    wording = "钱从钱包转出去到卡上得等几个钟头"  # written for this test
    change = changes.add_phrasing("withdrawal.arrival_time", wording, by="小王")
    faq = load_faq(faq_file)
    assert faq.question("withdrawal.arrival_time").phrasings[-1] == wording
    picked, _ = pick_question(faq, "withdrawal", wording)
    assert picked is not None and picked.id == "withdrawal.arrival_time"
    after = faq_file.read_text(encoding="utf-8")
    assert after.replace(f'          - "{wording}"\n', "", 1) == before  # one line added, nothing else moved
    assert change.action == "add_phrasing" and change.files["data/faq.yml"]["before"] == before
    changes.rollback(change.id, by="小王")
    assert faq_file.read_text(encoding="utf-8") == before


def test_a_phrasing_of_another_question_or_an_unknown_id_is_refused(changes):
    taken = load_faq(ROOT / "data" / "faq.yml").question("withdrawal.arrival_time").phrasings[0]
    with pytest.raises(ChangeError, match="不能添加"):
        changes.add_phrasing("top_up.not_credited", taken, by="小王")
    with pytest.raises(ChangeError, match="没有这个具体问题"):
        changes.add_phrasing("withdrawal.nope", "随便一句话", by="小王")


def test_a_phrasing_is_refused_when_its_question_has_it_or_another_topic_trains_on_it(changes, project):
    faq_file = project / FAQ_FILE
    question = load_faq(faq_file).question("withdrawal.arrival_time")
    for same in (question.question, f" {question.phrasings[0]} "):
        with pytest.raises(ChangeError, match="已经有这个问法") as err:
            changes.add_phrasing("withdrawal.arrival_time", same, by="小王")
        assert err.value.status == 409
    changes.add_example("refund", OUR_QUESTION, by="小王")
    with pytest.raises(ChangeError, match="refund 的训练例句") as err:
        changes.add_phrasing("withdrawal.arrival_time", OUR_QUESTION, by="小王")
    assert err.value.status == 409
    assert [c.action for c in changes.history()] == ["add_example"]


def test_a_phrasing_on_a_broken_faq_file_is_a_409_not_a_crash(changes, project):
    faq_file = project / FAQ_FILE
    faq_file.write_text(faq_file.read_text(encoding="utf-8").replace("question:", "questoin:", 1), encoding="utf-8")
    with pytest.raises(ChangeError, match="通不过检查") as err:
        changes.add_phrasing("withdrawal.arrival_time", "提现要等几天", by="小王")
    assert err.value.status == 409 and changes.history() == []
