"""Acceptance checks on the five reports with the real model."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.model


def test_index_holds_the_five_reports(real_index):
    assert len(real_index.docs) == 5
    assert {d.city for d in real_index.docs.values()} == {"长治", "忻州", "吕梁"}
    for c in real_index.chunks:
        assert real_index.docs[c.doc_id].text[c.start : c.end] == c.text


def test_conflicting_counts_are_both_cited(real_index):
    ans = real_index.search("长治市有多少所校外培训机构纳入了全国平台管理？", top_k=5)
    with_188 = [h for h in ans.hits if "188所" in h.chunk.text]
    with_192 = [h for h in ans.hits if "192所" in h.chunk.text]
    assert with_188 and with_192, [h.chunk.text[:40] for h in ans.hits]
    assert any(a.doc.id != b.doc.id for a in with_188 for b in with_192)
    assert ans.answered


def test_english_question_finds_the_chinese_figure(real_index):
    ans = real_index.search("How many full-time teachers does Lüliang have?", top_k=3)
    assert any("49990" in h.chunk.text for h in ans.hits), [h.chunk.text[:40] for h in ans.hits]


def test_traditional_question_gets_the_answer_first(real_index):
    ans = real_index.search("忻州學前教育毛入園率是多少", top_k=5)
    top = ans.hits[0]
    assert "96.7%" in top.chunk.text
    assert top.doc.city == "忻州"
    s, e = top.highlight
    assert "96.7%" in top.chunk.text[s:e]


def test_question_about_another_city_is_not_answered(real_index):
    ans = real_index.search("太原市有多少所幼儿园？", top_k=5)
    assert not ans.answered
