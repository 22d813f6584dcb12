"""Pure functions behind the refusal decision: coverage, content bigrams, city contrast."""

from __future__ import annotations

import pytest

from app import search as S


def test_place_tokens_are_city_names_and_their_pieces():
    assert S.is_place_token("长治市") and S.is_place_token("州市") and S.is_place_token("changzhi")
    assert not S.is_place_token("幼儿园") and not S.is_place_token("入学率")


def test_coverage_weighs_words_no_passage_has_as_rarest():
    idf = {"教师": 0.5}
    assert S.coverage(["教师", "工资"], "全市教师5000人", idf) == pytest.approx(0.5 / 1.5)
    assert S.coverage(["教师", "工资"], "全市教师5000人", idf, unknown=3.0) == pytest.approx(0.5 / 3.5)
    assert S.coverage([], "全市教师", idf) == 0.0


def test_content_bigrams_drop_cities_question_words_and_digits():
    assert S.content_bigrams("長治市高中階段毛入學率是多少？") == {"高中", "中阶", "阶段", "段毛", "毛入", "入学", "学率"}
    assert S.content_bigrams("吕梁2024年招聘教师") == {"年招", "招聘", "聘教", "教师"}
    assert S.content_bigrams("How many teachers?") == frozenset()


def test_bigram_coverage():
    grams = S.content_bigrams("入学率是多少")
    assert S.bigram_coverage(grams, "義務教育淨入學率達到99.9%") == 1.0
    assert S.bigram_coverage(grams, "入学人数") == 0.5
    assert S.bigram_coverage(frozenset(), "入学率") == 0.0


def test_city_contrast_is_positive_when_only_another_city_has_the_fact():
    grams = S.content_bigrams("长治市高中阶段毛入学率是多少？")
    named = ["长治市高中阶段教育普及程度不断提高。"]
    others = ["忻州市高中阶段毛入学率达到95%。", "吕梁市新建学校3所。"]
    assert S.city_contrast(grams, named, others) == pytest.approx(1.0 - 3 / 7)
    assert S.city_contrast(grams, others[:1], named) < 0  # the named city has it: negative
    assert S.city_contrast(grams, named, []) == 0.0
