"""Pure functions of search: fusion over candidates, the adaptive dense weight, and the refusal
decision (coverage, content bigrams, city contrast)."""

from __future__ import annotations

import numpy as np
import pytest

from app import answerability as A
from app import figures as FG
from app import fusion as F
from app import query as Q
from app.highlight import highlight
from app.keyword import bigrams
from app.query import parse_query


def _highlight(text, question, terms=None):
    return highlight(text, parse_query(question, terms=terms or ()))


def test_place_tokens_are_city_names_and_their_pieces():
    assert Q.is_place_token("长治市") and Q.is_place_token("州市") and Q.is_place_token("changzhi")
    assert not Q.is_place_token("幼儿园") and not Q.is_place_token("入学率")


def test_coverage_weighs_words_no_passage_has_as_rarest():
    idf = {"教师": 0.5}
    assert A.coverage(["教师", "工资"], "全市教师5000人", idf) == pytest.approx(0.5 / 1.5)
    assert A.coverage(["教师", "工资"], "全市教师5000人", idf, unknown=3.0) == pytest.approx(0.5 / 3.5)
    assert A.coverage([], "全市教师", idf) == 0.0


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("忻州高中阶段毛入学率是多少？", "rate"),
        ("長治校外培訓平台交易資金占全省比例是多少？", "rate"),
        ("What share of Xinzhou's schools are covered?", "rate"),
        ("What is Xinzhou's preschool gross enrolment rate?", "rate"),
        ("目前学校男女生比例是多少？", "rate"),
        ("东罗马帝国的领土减少多少比例?", "rate"),
        ("建築物的容積率之利用程度與什麼有關？", None),  # about a rate, not its value
        ("毛利元为什么决定率领部队支援战争？", None),  # 率领: to lead
        ("鳥撞問題造成的經濟損失高達多少美元?", "money"),
        ("长治学院一年学费多少钱？", "money"),
        ("忻州资金监管平台的交易金额是多少？", "money"),
        ("乡镇寄宿制学校已经完成改造几所？", "figure"),
        ("How many primary schools are there in Lüliang?", "figure"),
        ("What is the myopia rate among Changzhi students?", "rate"),
        ("What did Changzhi do to share quality education resources?", None),  # share, the verb
        ("What has Changzhi done to improve the rate of teachers taking part in training?", None),
        ("投資移民的投資金額為甚麼不能是購樓款?", None),  # about a sum, not its amount
        ("吕梁这几年怎么解决教师不足", None),
        ("很多大学生去吕梁当老师吗", None),
        ("一共有多少个单元？", "figure"),  # 单元 is no sum of money
        ("长治市中小学教师平均月工资是多少元？", "money"),
        ("吕梁的老师去本地景区玩需要买门票吗", None),
        ("长治几乎所有学校都开足体育课了吗", None),
    ],
)
def test_asked_figure(question, kind):
    assert FG.asked_figure(question) == kind


def test_figure_coverage_counts_only_sentences_with_the_figure_asked_for():
    idf = {"幼儿园": 1.0, "学校": 1.0}
    text = "大力新建公办学校(幼儿园)。全市覆盖学校369所。入园率达到96.7%。"
    # kindergartens are named, but not next to any figure: nothing covered
    assert A.figure_coverage(["幼儿园"], text, "figure", idf) == 0.0
    assert A.coverage(["幼儿园"], text, idf) == 1.0
    assert A.figure_coverage(["学校"], text, "figure", idf) == 1.0
    assert A.figure_coverage(["学校"], text, "rate", idf) == 0.0  # 369所 is no percentage
    assert A.figure_coverage(["入园"], text, "rate", idf) == 1.0
    assert A.figure_coverage(["学校"], "全市共有學校三所。", "figure", idf) == 1.0  # Chinese numerals, traditional text
    assert A.figure_coverage(["学校"], "交易资金1138万元。", "money", idf) == 0.0
    assert A.figure_coverage(["学校"], "学校交易资金很多,学校有300名学生。", "money", idf) == 0.0  # no amount
    for money in ("1138万元", "100多万元", "两千万元", "2.3亿", "80億美元", "5000新台幣"):
        assert A.figure_coverage(["资金"], f"交易资金{money}。", "money", idf) == 1.0, money
    for figure in ("二十余所", "三千多名", "第七", "十几所"):
        assert A.figure_coverage(["学校"], f"学校{figure}。", "figure", idf) == 1.0, figure
    assert A.figure_coverage([], text, "figure", idf) == 0.0
    for rate in ("学校男女生比例约为1：7", "学校减少了四分之三", "学校占三成", "学校占一半", "学校近视率5‰", "学校收视率为7.07"):
        assert A.figure_coverage(["学校"], rate + "。", "rate", idf) == 1.0, rate  # ratios, fractions and bare rates too
    assert A.figure_coverage(["学校"], "学校男女生比例逐年下降。", "rate", idf) == 0.0
    assert A.figure_coverage(["学校"], "学校损失高达80億美元。", "money", idf) == 1.0


def test_content_bigrams_drop_cities_question_words_and_digits():
    assert Q.content_bigrams("長治市高中階段毛入學率是多少？") == {"高中", "中阶", "阶段", "段毛", "毛入", "入学", "学率"}
    assert Q.content_bigrams("吕梁2024年招聘教师") == {"年招", "招聘", "聘教", "教师"}
    assert Q.content_bigrams("How many teachers?") == frozenset()


def test_bigram_coverage():
    grams = Q.content_bigrams("入学率是多少")
    assert A.bigram_coverage(grams, "義務教育淨入學率達到99.9%") == 1.0
    assert A.bigram_coverage(grams, "入学人数") == 0.5
    assert A.bigram_coverage(frozenset(), "入学率") == 0.0


def test_city_contrast_is_positive_when_only_another_city_has_the_fact():
    grams = Q.content_bigrams("长治市高中阶段毛入学率是多少？")
    named = ["长治市高中阶段教育普及程度不断提高。"]
    others = ["忻州市高中阶段毛入学率达到95%。", "吕梁市新建学校3所。"]
    assert A.city_contrast(grams, named, others) == pytest.approx(1.0 - 3 / 7)
    assert A.city_contrast(grams, others[:1], named) < 0  # the named city has it: negative
    assert A.city_contrast(grams, named, []) == 0.0


def test_top_rows_keeps_the_best_positive_rows():
    x = np.array([0.0, 3.0, 1.0, 2.0, 0.0], np.float32)
    assert sorted(F.top_rows(x, 2)) == [1, 3]
    assert sorted(F.top_rows(x, 10)) == [1, 2, 3]  # zeros are not candidates
    assert sorted(F.top_rows(-x, 2, positive=False)) == [0, 4]
    assert len(F.top_rows(x, 0)) == 0


def test_dense_weight_falls_with_keyword_coverage():
    assert F.dense_weight(0.0, 0.75, 0.35) == pytest.approx(0.75)
    assert F.dense_weight(1.0, 0.75, 0.35) == pytest.approx(0.35)
    assert F.dense_weight(0.5, 0.75, 0.35) == pytest.approx(0.55)
    assert F.dense_weight(1.5, 0.75, 0.35) == pytest.approx(0.35)  # clipped


def test_fuse_candidates_normalises_each_signal_over_the_candidates():
    dense = np.array([0.90, 0.85, 0.80], np.float32)
    kw = np.array([0.0, 10.0, 5.0], np.float32)
    bg = np.array([0.0, 4.0, 8.0], np.float32)
    got = F.fuse_candidates(dense, kw, bg, w_dense=0.5, w_bigram=0.5)
    assert np.allclose(got, [0.5, 0.25 + 0.25 + 0.125, 0.125 + 0.25])
    # the scale of the scores does not matter, only their spread over the candidates
    assert np.allclose(F.fuse_candidates(dense * 10 - 3, kw * 7, bg * 0.1, 0.5, 0.5), got)
    assert np.argmax(F.fuse_candidates(dense, kw, bg, 1.0, 0.5)) == 0
    assert np.argmax(F.fuse_candidates(dense, kw, bg, 0.0, 0.0)) == 1
    assert np.argmax(F.fuse_candidates(dense, kw, bg, 0.0, 1.0)) == 2


def test_bigrams_fold_script_and_drop_punctuation():
    assert bigrams("學前教育，毛入園率") == ["学前", "前教", "教育", "育毛", "毛入", "入园", "园率"]
    assert bigrams("园") == []


def test_bigram_index_saves_without_idf_table(tmp_path):
    from app.keyword import KeywordIndex

    ki = KeywordIndex()
    ki.index([bigrams("普惠性幼儿园"), bigrams("课后服务")])
    ki.save(tmp_path / "bg", idf=False)
    assert not (tmp_path / "bg" / "idf.json").exists()
    back = KeywordIndex.load(tmp_path / "bg", 2)
    assert back.idf == {}
    assert np.allclose(back.scores(bigrams("幼儿园")), ki.scores(bigrams("幼儿园")))
    assert np.argmax(back.scores(bigrams("幼儿园"))) == 0


def test_ranked_is_the_head_of_a_stable_full_sort():
    rng = np.random.default_rng(0)
    for n, m in [(1, 1), (10, 3), (100, 50), (100, 100), (100, 150), (1000, 7)]:
        scores = rng.integers(0, 5, n).astype(np.float32)  # many ties
        assert F.ranked(scores, m).tolist() == np.argsort(-scores, kind="stable")[:m].tolist()
    assert len(F.ranked(np.ones(3, np.float32), 0)) == 0
    sparse = np.full(1000, -1.0, np.float32)  # candidates only, as adaptive fusion leaves it
    sparse[[5, 700, 42]] = [0.5, 0.9, 0.5]
    assert F.ranked(sparse, 5).tolist() == [700, 5, 42, 0, 1]


def test_highlight_picks_the_sentence_sharing_most_with_the_question():
    text = "全市新建幼儿园15所。专任教师2.9万人，骨干教师3100名。义务教育巩固率99.2%。"
    s, e = _highlight(text, "吕梁有多少专任教师")
    assert text[s:e] == "专任教师2.9万人，骨干教师3100名。"
    assert _highlight(text, "How many teachers", ["教师"]) == (s, e)  # English, by its Chinese terms


def test_highlight_weighs_the_passages_topic_less_than_what_is_asked_about_it():
    text = "阵内智则（1974年2月22日－），日本喜剧演员及主持。阵内智则出生于兵库县。目前担任《Docking48》主持。"
    s, e = _highlight(text, "阵内智则目前担任什么节目的主持人？")
    assert text[s:e] == "目前担任《Docking48》主持。"  # the name, in two sentences of three, tells less


def test_highlight_prefers_a_sentence_with_the_figure_asked_for():
    text = "学校改造全部完成。其中已完成改造6所。"
    s, e = _highlight(text, "学校已经完成改造几所？")
    assert text[s:e] == "其中已完成改造6所。"
    s, e = _highlight(text, "学校改造完成了吗？")  # no figure asked: the words decide
    assert text[s:e] == "学校改造全部完成。"


def test_sentences_with_finds_each_word_in_the_sentences_that_hold_it():
    from app.highlight import sentence_index, sentences_with

    text = "全市幼儿园15所。幼儿园教师3100名；小学教师2万人。"
    words = ["幼儿园", "教师", "小学", "高中", "所。幼"]  # the last spans two sentences: in neither
    got = sentences_with(text, words)
    assert got.tolist() == [[w in s.norm for w in words] for s in sentence_index(text)]
    assert got.tolist() == [[True, False, False, False, False], [True, True, False, False, False], [False, True, True, False, False]]


def test_blended_highlight_lets_the_sentence_vectors_decide_what_the_words_do_not():
    from app.highlight import blended_highlight, sentence_scores

    text = "学校改造全部完成。全市投入资金3亿元。"
    question = "这项工作靠什么支撑？"  # no word of either sentence
    lex = sentence_scores(text, parse_query(question))
    assert text[slice(*_highlight(text, question))] == "学校改造全部完成。"  # the words alone: the first
    assert text[slice(*blended_highlight(text, lex, np.array([0.80, 0.86]), 2.0))] == "全市投入资金3亿元。"
    assert blended_highlight(text, lex, np.array([0.80, 0.86]), 0.0) == _highlight(text, question)  # weight 0: words only
    assert blended_highlight(text, lex, np.array([0.80, np.nan]), 2.0) == _highlight(text, question)  # a sentence without a vector
    # a clear lexical match outweighs a small gap in similarity
    lex = sentence_scores(text, parse_query("学校改造完成了吗？"))
    assert text[slice(*blended_highlight(text, lex, np.array([0.84, 0.86]), 2.0))] == "学校改造全部完成。"


def test_highlight_breaks_a_tie_by_the_first_sentence_whatever_the_hash_seed():
    import os
    import subprocess
    import sys

    code = ("from app.highlight import highlight; from app.query import parse_query; "
            "print(highlight('长治教育大讲堂。吕梁教育大讲堂。', parse_query('教育大讲堂 长治 吕梁')))")  # fmt: skip
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=os.environ | {"PYTHONHASHSEED": str(seed)}).stdout.strip() for seed in range(6)}  # fmt: skip
    assert seen == {"(0, 8)"}


def test_settings_overridden_by_name_for_ablations():
    from app.index import SearchSettings

    got = SearchSettings().overridden(["city_first=false", "w-coverage=0.4", "candidates=20"])
    assert (got.city_first, got.w_coverage, got.candidates) == (False, 0.4, 20)
    assert got.answer_threshold == SearchSettings().answer_threshold
    with pytest.raises(ValueError, match="one of .*city_first"):
        SearchSettings().overridden(["nope=1"])
    with pytest.raises(ValueError, match="not a bool"):
        SearchSettings().overridden(["city_first=maybe"])
    with pytest.raises(ValueError, match="not a int"):
        SearchSettings().overridden(["candidates=many"])
