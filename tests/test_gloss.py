"""English on the document side: the CC-CEDICT glosses of a passage's words as an English keyword field."""

from __future__ import annotations

from app.gloss import chinese_to_english, english_words, gloss_tokens, stem
from app.keyword import KeywordIndex, tokenize


def test_stem_folds_both_sides_to_one_key():
    assert stem("Enrolment") == stem("enrollments") == "enrollment"
    assert stem("teachers") == stem("teacher") == "teacher"
    assert stem("schools") == "school" and stem("class") == "class" and stem("bus") == "bus"
    assert stem("universities") == "university"


def test_english_words_drop_function_words_and_fold_the_umlaut():
    assert english_words("How many teachers does Lüliang have?") == ["teacher", "luliang"]


def test_glosses_of_chinese_words_come_from_cedict():
    table = chinese_to_english()
    assert "preschool" in table["学前教育"] and "teacher" in table["教师"]
    assert not any(w.startswith("cl") and ":" in w for ws in list(table.values())[:2000] for w in ws)


def test_an_english_question_meets_the_chinese_passage_through_the_glosses():
    passages = ["全市学前教育毛入园率达到96.7%。", "全市共有专任教师49990人。", "推进校外培训机构监管。"]
    index = KeywordIndex()
    index.index([gloss_tokens(tokenize(p)) for p in passages])
    scores = index.scores(english_words("How many full-time teachers are there?"))
    assert scores.argmax() == 1 and scores[1] > 0
    assert index.scores(english_words("preschool education")).argmax() == 0
