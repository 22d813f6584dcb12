"""Follow-up questions: what `followup.resolve` rewrites, what it leaves alone (every question of
the evaluation, whatever came before), its limits, and the follow-up evaluation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from app.followup import MAX_TURNS, Resolution, resolve
from app.followup_eval import evaluate_conversations, load_conversations

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = ROOT / "eval" / "conversations.jsonl"


def _questions() -> list[str]:
    return [
        json.loads(line)["question"]
        for name in ("questions.jsonl", "heldout.jsonl")
        for line in (ROOT / "eval" / name).read_text("utf-8").splitlines()
        if line.strip()
    ]


# --------------------------------------------------------------------------- each kind on tiny cases

CASES = [
    # city: the follow-up's city replaces the previous one, in the previous question's spelling
    ("长治市有多少所校外培训机构纳入了全国平台管理？", "那吕梁呢？", "吕梁市有多少所校外培训机构纳入了全国平台管理？", "city"),
    ("长治注销了多少所学科类培训机构？", "忻州呢", "忻州注销了多少所学科类培训机构？", "city"),
    ("长治市有多少所幼儿园？", "那吕梁有多少呢？", "吕梁市有多少所幼儿园？", "city"),
    ("长治市有多少所幼儿园？", "吕梁的情况呢？", "吕梁市有多少所幼儿园？", "city"),
    ("长治市有多少所幼儿园？", "那太原呢？", "太原市有多少所幼儿园？", "city"),
    ("认定扶持的普惠性民办幼儿园受益幼儿有多少名？", "那吕梁呢？", "吕梁认定扶持的普惠性民办幼儿园受益幼儿有多少名？", "city"),
    # year
    ("吕梁市2023年一共补充了多少名义务教育教师？", "那2024年呢？", "吕梁市2024年一共补充了多少名义务教育教师？", "year"),
    ("长治市有多少所幼儿园？", "2023年呢", "长治市2023年有多少所幼儿园？", "year"),
    # aspect: the thing asked replaces the previous subject, its measure word dropped
    ("长治市有多少所幼儿园？", "专任教师呢？", "长治市有多少专任教师？", "aspect"),
    ("吕梁市专任教师有多少人？", "教职工呢？", "吕梁市教职工有多少？", "aspect"),
    ("忻州学前教育毛入园率是多少？", "那义务教育净入学率呢？", "忻州义务教育净入学率是多少？", "aspect"),
    ("长治市有多少所中小学被认定为足球特色学校？", "依法治校示范校呢？", "长治市有多少依法治校示范校？", "aspect"),
    ("长治创建了多少所省级“平安校园”？", "县级的呢？", "长治创建了多少所县级“平安校园”？", "aspect"),
    ("长治市有多少所幼儿园？", "那吕梁的小学呢？", "吕梁市有多少小学？", "city+aspect"),
    # pronoun: the previous question's subject in front
    (
        "长治有几所学校的网络学习空间应用案例被评为优秀？",
        "具体是哪些？",
        "长治学校的网络学习空间应用案例被评为优秀，具体是哪些？",
        "pronoun",
    ),
    ("吕梁有多少所特殊教育学校？", "它们分别在哪里？", "吕梁特殊教育学校，它们分别在哪里？", "pronoun"),
    ("吕梁现在有各级各类学校多少所？", "其中幼儿园有多少所？", "吕梁现在有各级各类学校，其中幼儿园有多少所？", "pronoun"),
    ("长治的托管帮扶项目有哪些？", "还有哪些？", "长治的托管帮扶项目，还有哪些？", "pronoun"),
    # traditional script: the previous question's script is kept, the follow-up's words as typed
    ("長治市成立了多少個各類興趣小組？", "那呂梁呢？", "呂梁市成立了多少個各類興趣小組？", "city"),
    ("忻州市取締了多少所無證黑機構？", "那长治呢？", "長治市取締了多少所無證黑機構？", "city"),
    ("長治市成立了多少個各類興趣小組？", "那忻州呢？", "忻州市成立了多少個各類興趣小組？", "city"),
    ("呂梁市專任教師有多少人？", "教職工呢？", "呂梁市教職工有多少？", "aspect"),
    # English, in the previous question's language
    (
        "How many full-time teachers are there in Lüliang?",
        "What about Xinzhou?",
        "How many full-time teachers are there in Xinzhou?",
        "city",
    ),
    (
        "How many full-time teachers are there in Lüliang?",
        "那长治呢？",
        "How many full-time teachers are there in Changzhi?",
        "city",
    ),
    ("长治注销了多少所学科类培训机构？", "What about Xinzhou?", "忻州注销了多少所学科类培训机构？", "city"),
    ("长治注销了多少所学科类培训机构？", "And for Luliang?", "吕梁注销了多少所学科类培训机构？", "city"),
    (
        "What proportion of teachers in Changzhi have taken part in training?",
        "And in Lüliang?",
        "What proportion of teachers in Lüliang have taken part in training?",
        "city",
    ),  # fmt: skip
    ("How many teachers did Lüliang recruit in 2024?", "And in 2023?", "How many teachers did Lüliang recruit in 2023?", "year"),
    ("吕梁市2023年一共补充了多少名义务教育教师？", "How about 2024?", "吕梁市2024年一共补充了多少名义务教育教师？", "year"),
    (
        "How many kindergartens does Lüliang have?",
        "What about primary schools?",
        "How many primary schools does Lüliang have?",
        "aspect",
    ),
    (
        "What is Xinzhou's preschool gross enrolment rate?",
        "And the senior high school gross enrolment rate?",
        "What is Xinzhou's senior high school gross enrolment rate?",
        "aspect",
    ),  # fmt: skip
    ("长治市有多少所幼儿园？", "What about full-time teachers?", "full-time teachers in Changzhi?", "aspect"),
    (
        "How many special education schools are there in Lüliang?",
        "Where are they?",
        "How many special education schools are there in Lüliang? Where are they?",
        "pronoun",
    ),  # fmt: skip
]


@pytest.mark.parametrize("previous,message,searched,kind", CASES)
def test_follow_up_is_merged_with_the_previous_question(previous, message, searched, kind):
    r = resolve(message, [previous])
    assert r == Resolution(searched, True, kind, previous)


def test_chains_resolve_the_history_left_to_right():
    history = ["长治市有多少所幼儿园？", "专任教师呢？"]
    r = resolve("那吕梁呢？", history)
    assert (r.searched, r.previous) == ("吕梁市有多少专任教师？", "长治市有多少专任教师？")
    assert resolve("What about Xinzhou?", [*history, "那吕梁呢？"]).searched == "忻州市有多少专任教师？"


def test_the_most_recent_standalone_question_is_the_one_merged():
    r = resolve("那吕梁呢？", ["长治市有多少所幼儿园？", "忻州高中阶段毛入学率是多少？"])
    assert r.searched == "吕梁高中阶段毛入学率是多少？"


@pytest.mark.parametrize(
    "message",
    [
        "吕梁有多少所幼儿园呢？",  # names its own subject and asks: a question of its own
        "吕梁",  # a bare name is a search of its own
        "那吕梁有多少所幼儿园？",
        "乡镇寄宿制学校已经完成改造几所？",
        "长治建设的“五个校园”具体是哪五个？",
        "How many kindergartens does Lüliang have?",
        "And how many primary schools does Lüliang have?",
        "谢谢",
        "",
        "   ",
    ],
)
def test_standalone_messages_are_not_rewritten(message):
    assert resolve(message, ["长治市有多少所幼儿园？"]) == Resolution(message)


# --------------------------------------------------------------------------- the property that matters most


def test_no_evaluation_question_is_rewritten_whatever_came_before():
    questions = _questions()
    assert len(questions) >= 140
    for q in questions:
        for h in questions:
            if h != q:
                assert resolve(q, [h]).searched == q, (h, q)


def test_no_evaluation_question_is_rewritten_after_long_or_follow_up_histories():
    questions = _questions()
    followups = [c.question for c in load_conversations(CONVERSATIONS)]
    rng = random.Random(15)
    for q in questions:
        for _ in range(5):
            history = rng.sample(questions, rng.randint(1, 25))
            history += rng.sample(followups, rng.randint(0, 3))  # a conversation ending in follow-ups
            rng.shuffle(history)
            assert resolve(q, history) == Resolution(q), (history, q)


# --------------------------------------------------------------------------- limits


def test_only_the_last_twenty_turns_count():
    followups = ["那吕梁呢？", "忻州呢？"] * (MAX_TURNS // 2)
    assert len(followups) == MAX_TURNS
    kept = resolve("那长治呢？", ["长治市有多少所幼儿园？", *followups[1:]])
    assert kept.searched == "长治市有多少所幼儿园？" and kept.rewritten
    dropped = resolve("那长治呢？", ["长治市有多少所幼儿园？", *followups])  # the subject is 21 turns back
    assert dropped == Resolution("那长治呢？")


def test_a_follow_up_with_no_earlier_question_is_searched_as_typed():
    assert resolve("那吕梁呢？", []) == Resolution("那吕梁呢？")
    assert resolve("专任教师呢？", ["", "  ", "那吕梁呢？"]) == Resolution("专任教师呢？")


@pytest.mark.parametrize("bad", [None, 3, ["长治"], b"\xe9\x95\xbf"])
def test_a_history_item_that_is_not_a_string_is_a_type_error_naming_it(bad):
    with pytest.raises(TypeError, match="history item 1 "):
        resolve("那吕梁呢？", ["长治市有多少所幼儿园？", bad])
    with pytest.raises(TypeError, match="history item 0 "):
        resolve("长治市有多少所幼儿园？", [bad])  # checked even when the question stands alone


def test_a_question_that_is_not_a_string_is_a_type_error():
    with pytest.raises(TypeError, match="question"):
        resolve(None, [])


def test_a_city_of_an_added_report_is_a_place_like_ours():
    r = resolve("那晋阳呢？", ["长治市有多少所幼儿园？"], known_cities=["长治", "晋阳"])
    assert r.searched == "晋阳市有多少所幼儿园？" and r.kind == "city"
    assert resolve("那晋阳呢？", ["长治市有多少所幼儿园？"]).kind == "aspect"  # unknown: a thing, not a place


# --------------------------------------------------------------------------- the conversations and their evaluation


def test_conversations_are_well_formed_and_resolve_as_expected():
    from app.evaluate import is_hit
    from app.load import load_corpus

    convs = load_conversations(CONVERSATIONS)
    kinds = [c.kind for c in convs]
    assert len(convs) >= 36 and len({c.id for c in convs}) == len(convs)
    for kind in ("city_swap", "aspect_swap", "year_swap", "pronoun", "english"):
        assert kinds.count(kind) >= 6, kind
    assert kinds.count("unanswerable") >= 5
    docs, _ = load_corpus([ROOT / "corpus"])
    for c in convs:
        assert bool(c.evidence) == (c.kind != "unanswerable"), c.id
        for ev in c.evidence:
            assert any(is_hit(d.text, [ev]) for d in docs), (c.id, ev)
        assert all(resolve(h, []) == Resolution(h) for h in c.history)
        r = resolve(c.question, list(c.history), known_cities=["长治", "忻州", "吕梁"])
        assert r.searched == c.expected_searched, c.id
        assert r.rewritten


def test_evaluate_conversations_on_a_tiny_index(tiny_index):
    from app.followup_eval import Conversation

    convs = [
        Conversation("t1", "city_swap", ("忻州學前教育毛入園率是多少？",), "那长治呢？", "长治學前教育毛入園率是多少？", ()),
        Conversation(
            "t2",
            "aspect_swap",
            ("长治有多少所校外培训机构纳入平台管理？",),
            "课后服务呢？",
            "长治有多少课后服务？",
            ("惠及学校481所",),
        ),
    ]
    calls = []

    def answer_fn(index, text, *, top_k, history, settings):
        from app.answer import answer

        ans = answer(index, text, top_k=top_k, history=history, settings=settings)
        calls.append(ans.searched)
        return ans

    out = evaluate_conversations(tiny_index, convs, answer_fn)
    assert set(out) >= {"n", "resolved", "as_typed", "expected", "resolution"}
    assert out["resolution"] == {"as_expected": 1.0, "unexpected": []}
    assert "长治有多少课后服务？" in calls and "课后服务呢？" in calls
    for name in ("resolved", "as_typed", "expected"):
        m = out[name]
        assert (m["answerable"], m["unanswerable"]) == (1, 1)
        assert 0 <= m["hit@1"] <= m["hit@5"] <= 1 and 0 <= m["refused"] <= 1
        assert set(m["per_kind"]) == {"city_swap", "aspect_swap"}
    assert out["resolved"]["hit@5"] == 1.0


# Measured on the five reports (eval/conversations.jsonl, 41 answerable, 9 unanswerable) through the answer path, with
# the learned reranker (features v2, a named city's passages first): resolved hit@1 0.902, hit@5 1.000, 7/9 refused,
# 0 wrongly refused; as typed hit@1 0.268, hit@5 0.732 (`reportqa eval` writes them into eval/report.md). The floors
# are #15's targets.
FLOORS = {"hit@1": 0.85, "hit@5": 0.95}


@pytest.mark.model
def test_resolution_lifts_follow_ups_on_the_real_index(real_index):
    out = evaluate_conversations(real_index, load_conversations(CONVERSATIONS))
    res, raw = out["resolved"], out["as_typed"]
    for k, floor in FLOORS.items():
        assert res[k] >= floor, f"resolved follow-ups {k} {res[k]:.3f} fell below {floor}"
        assert res[k] > raw[k] + 0.2
    assert out["resolution"]["unexpected"] == []  # the answer path searched each one as the conversation expects
    # with the learned confidence (issue #13): 7/9 refused (the standalone unanswerable questions: 7/15, 3/5 out of fold)
    assert res["refused"] >= 6 / 9 - 1e-9
    assert res["wrongly_refused"] <= raw["wrongly_refused"]


@pytest.mark.model
def test_no_standalone_question_is_rewritten_through_the_answer_path(real_index):
    from app.evaluate import load_questions
    from app.followup_eval import standalone_check

    followups = [c.question for c in load_conversations(CONVERSATIONS)]
    for name in ("questions.jsonl", "heldout.jsonl"):
        qs = load_questions(ROOT / "eval" / name)
        out = standalone_check(real_index, qs, followups)
        assert out["rewritten"] == [] and out["answered"] == len(qs) and out["pairs"] == len(qs) * (len(qs) - 1), name


def test_the_eval_section_reports_follow_ups_and_standalone_questions(tiny_index, tmp_path):
    from app.evaluate import Question
    from app.followup_eval import report_lines

    path = tmp_path / "conversations.jsonl"
    convs = [
        {"id": "t1", "kind": "city_swap", "history": ["忻州學前教育毛入園率是多少？"], "question": "那长治呢？",
         "expected_searched": "长治學前教育毛入園率是多少？", "evidence": []},
        {"id": "t2", "kind": "aspect_swap", "history": ["长治有多少所校外培训机构纳入平台管理？"], "question": "课后服务呢？",
         "expected_searched": "长治有多少课后服务？", "evidence": ["惠及学校481所"]},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in convs), "utf-8")
    sets = {"reports": [Question("q1", "长治有多少所校外培训机构纳入平台管理？", "city", []), Question("q2", "课后服务惠及多少学校", "factoid", [])]}
    said = []
    out, lines = report_lines(tiny_index, path, sets, echo=said.append)
    text = "\n".join(lines)
    assert out["standalone"]["reports"] == {"questions": 2, "pairs": 2, "answered": 2, "rewritten": []}
    assert text.startswith("## Follow-up conversations (2: 1 answerable, 1 not)")
    assert "| resolved | 1 | 1.000 | 1.000 |" in text and "| aspect_swap | 1 | 1.00 / 1.00 |" in text
    assert "- reports: 2 questions, 2 pairs, 0 rewritten." in text and "Resolved exactly as expected: 1.000." in text
    assert said and "standalone rewritten=0" in said[0]


def test_the_standalone_check_names_a_question_that_would_be_rewritten(tiny_index):
    from app.evaluate import Question
    from app.followup_eval import standalone_check

    qs = [Question("q1", "长治有多少所幼儿园？", "city", []), Question("q2", "那吕梁呢？", "city", [])]
    assert standalone_check(tiny_index, qs)["rewritten"] == ["q2"]
