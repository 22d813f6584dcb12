"""Loading: encodings, bad files reported by name, .jsonl corpora, manifests."""

from __future__ import annotations

import json

import pytest

from app.errors import CorpusError
from app.load import decode, guess_city, guess_script, load_corpus

SIMPLIFIED = "长治市全市188所校外培训机构全部纳入“全国校外教育培训监管与服务综合平台”管理。"
TRADITIONAL = "忻州市學前教育毛入園率達到96.7%，義務教育鞏固率持續提升，辦學條件明顯改善。"
BODY = "我市大力推进义务教育优质均衡发展，组建45个城乡义务教育学校共同体。"


# --------------------------------------------------------------------------- decode


@pytest.mark.parametrize("text", [SIMPLIFIED, TRADITIONAL, "English and 中文 mixed, 2024年。"])
@pytest.mark.parametrize("codec", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_decode_round_trips_unicode_and_gb_codecs(text, codec):
    assert decode(text.encode(codec), "x.txt") == text


@pytest.mark.parametrize(
    "text", [TRADITIONAL, "臺灣與香港的學校教育發展綜述：師資隊伍建設。", "長治市教育局關於課後服務的報告。"]
)
def test_decode_reads_big5_as_big5(text):
    # Big5 bytes also decode as GB18030 without an error, into nonsense.
    data = text.encode("big5")
    assert decode(data, "x.txt") == text


def test_decode_keeps_gbk_text_with_greek_and_symbols():
    text = "教育αβγ系数提升，Ⅰ级①②，温度25℃×2。"
    assert decode(text.encode("gbk"), "x.txt") == text


def test_decode_refuses_binary_and_names_the_file():
    with pytest.raises(CorpusError, match=r"report\.pdf.*binary"):
        decode(b"%PDF-1.4\x00\x01\x02\x03binary", "report.pdf")


def test_decode_refuses_control_character_noise():
    noise = bytes(range(1, 32)) * 20
    with pytest.raises(CorpusError, match="noise.txt"):
        decode(noise, "noise.txt")


# --------------------------------------------------------------------------- load_corpus on a messy folder


@pytest.fixture
def messy(tmp_path):
    root = tmp_path / "reports"
    root.mkdir()
    (root / "good.txt").write_text(SIMPLIFIED + "\n" + BODY, encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.md").write_text("\n  \n\t\n", encoding="utf-8")
    (root / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (root / "gbk.txt").write_bytes(("忻州市教育局报告。\n" + BODY).encode("gbk"))
    (root / "big5.txt").write_bytes(("呂梁市教育報告：呂梁市。\n" + TRADITIONAL).encode("big5"))
    (root / "endings.txt").write_bytes("第一段：长治市教育。\r\n第二段：课后服务。\r第三段：学生。\n".encode())
    (root / "zz_copy_of_good.txt").write_text(SIMPLIFIED + "\n" + BODY, encoding="utf-8")
    (root / "page.html").write_text(
        "<html><head><script>document.write('广告')</script><style>p{}</style></head>"
        "<body><h1>长治日报</h1><p>“双减”小切口撬动基础教育大发展&nbsp;全市192所培训机构全部纳入平台管理。</p></body></html>",
        encoding="utf-8",
    )
    (root / "notes.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # not a report type: ignored
    (root / ".hidden.txt").write_text("隐藏文件。", encoding="utf-8")
    return root


def test_messy_folder_loads_the_good_and_reports_the_bad(messy):
    docs, problems = load_corpus([messy])
    by_id = {d.id: d for d in docs}
    assert set(by_id) == {"big5", "endings", "gbk", "good", "page"}
    assert by_id["gbk"].text.startswith("忻州市教育局报告。")
    assert TRADITIONAL in by_id["big5"].text
    assert by_id["endings"].text == "第一段：长治市教育。\n第二段：课后服务。\n第三段：学生。"
    page = by_id["page"].text
    assert "全市192所培训机构全部纳入平台管理。" in page
    assert "广告" not in page and "<" not in page and "document.write" not in page
    text = "\n".join(problems)
    for name in ("empty.txt", "blank.md", "binary.txt", "zz_copy_of_good.txt"):
        assert name in text, f"{name} not reported: {problems}"
    assert len(problems) == 4
    assert "duplicate" in next(p for p in problems if "zz_copy_of_good.txt" in p)
    assert "binary" in next(p for p in problems if "binary.txt" in p)
    assert not any("good.txt" in p and "zz_copy_of" not in p for p in problems)


def test_city_and_script_are_guessed_without_a_manifest(messy):
    docs, _ = load_corpus([messy])
    by_id = {d.id: d for d in docs}
    assert by_id["good"].city == "长治"
    assert by_id["big5"].city == "吕梁"  # 呂梁 in the text, simplified in the record
    assert by_id["big5"].script == "traditional"
    assert by_id["good"].script == "simplified"
    assert by_id["good"].title == SIMPLIFIED[:60]


def test_guessers_on_plain_strings():
    assert guess_city("呂梁市、呂梁市和长治市") == "吕梁"
    assert guess_city("太原市") == ""
    assert guess_script(TRADITIONAL * 3) == "traditional"
    assert guess_script(SIMPLIFIED * 3) == "simplified"


def test_single_file_path_loads(tmp_path):
    f = tmp_path / "one.txt"
    f.write_text(BODY, encoding="utf-8")
    docs, problems = load_corpus([f])
    assert [d.id for d in docs] == ["one"] and problems == []


def test_missing_path_raises_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "reports"
    with pytest.raises(CorpusError) as e:
        load_corpus([missing])
    assert str(missing) in str(e.value)
    assert "--corpus" in str(e.value)


def test_broken_manifest_raises_naming_it(tmp_path):
    (tmp_path / "a.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CorpusError, match="manifest.json"):
        load_corpus([tmp_path])


def test_manifest_metadata_is_applied(tiny_corpus):
    docs, problems = load_corpus([tiny_corpus])
    assert problems == []
    by_id = {d.id: d for d in docs}
    a = by_id["a"]
    assert (a.title, a.city, a.source, a.date) == ("报告甲", "长治", "甲报", "2024-01-01")
    assert (by_id["b"].title, by_id["b"].source, by_id["b"].date) == ("报告乙", "乙报", "")
    assert (by_id["c"].title, by_id["c"].city, by_id["c"].script) == ("報告丙", "忻州", "traditional")
    assert a.path.endswith("a.txt")


# --------------------------------------------------------------------------- .jsonl corpora


def test_jsonl_corpus_loads_and_reports_broken_lines(tmp_path):
    f = tmp_path / "corpus.jsonl"
    lines = [
        json.dumps(
            {"id": "r1", "title": "报告一", "city": "长治", "source": "日报", "date": "2024", "text": SIMPLIFIED},
            ensure_ascii=False,
        ),
        "{this is not json",
        "",
        json.dumps({"id": "r2", "title": "報告二", "text": TRADITIONAL}, ensure_ascii=False),
        json.dumps({"title": "no id", "text": BODY}, ensure_ascii=False),
        json.dumps({"id": "r3", "text": 42}),
        json.dumps({"id": "r4", "text": "   "}),
    ]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs, problems = load_corpus([f])
    assert [d.id for d in docs] == ["r1", "r2"]
    r1 = docs[0]
    assert (r1.title, r1.city, r1.source, r1.date, r1.text) == ("报告一", "长治", "日报", "2024", SIMPLIFIED)
    assert docs[1].city == "忻州" and docs[1].script == "traditional"
    assert len(problems) == 4
    for n in (2, 5, 6, 7):
        assert any(f"corpus.jsonl:{n}" in p for p in problems), (n, problems)


def test_jsonl_inside_a_folder_and_duplicate_ids_across_sources(tmp_path):
    (tmp_path / "r1.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "more.jsonl").write_text(
        json.dumps({"id": "r1", "title": "同名", "text": SIMPLIFIED}, ensure_ascii=False), encoding="utf-8"
    )
    docs, problems = load_corpus([tmp_path])
    assert len(docs) == 1
    assert len(problems) == 1 and "duplicate" in problems[0]
