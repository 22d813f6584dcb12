"""clean_text on small strings, on the real corpus, and as a property over any text."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.clean import (
    _rare,
    clean_pages,
    clean_text,
    cut_tail,
    join_broken_lines,
    repair_mojibake,
    strip_html,
    strip_pinyin,
)
from app.load import load_corpus

ROOT = Path(__file__).resolve().parent.parent

BODY = "教育是城市持续发展的基石，也是幸福指数的民生面孔。" * 10  # a real body: well over 200 characters


# --------------------------------------------------------------------------- pinyin and mojibake


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("教育系統(tǒng)一領導", "教育系統一領導"),
        ("創(chuàng)新和改革", "創新和改革"),
        ("發(fā)展", "發展"),
        ("全角括號（tǒng）也去掉：統（tǒng）一", "全角括號也去掉：統一"),
        ("統 (tǒng)一", "統一"),  # an OCR space before the annotation
    ],
)
def test_pinyin_annotations_are_removed(raw, expected):
    assert clean_text(raw) == expected


def test_parentheses_that_are_not_pinyin_stay():
    # No tone mark, or not after a Chinese character: ordinary brackets, kept.
    assert clean_text("各縣(市、區)中小學校") == "各縣(市、區)中小學校"
    assert clean_text("長治市(changzhi)教育") == "長治市(changzhi)教育"
    assert clean_text("Note (tǒng) here") == "Note (tǒng) here"


def test_strip_pinyin_alone():
    assert strip_pinyin("統(tǒng)一") == "統一"


# Mojibake made here by reading known text wrong, the two ways a report's bytes get misread.


def _read_late(text: str, i: int) -> str:
    """`text` whose character i was lost: that pair shown as '?', the rest read one GBK byte late."""
    return text[:i] + "?" + text[i:].encode("gbk")[1:].decode("gbk", errors="replace")


def _byte_lost(text: str, at: int) -> str:
    """`text` as GBK with byte `at` lost, read back as Python reads it (U+FFFD where it cannot)."""
    data = text.encode("gbk")
    return (data[:at] + data[at + 1 :]).decode("gbk", errors="replace")


@pytest.mark.parametrize(
    "text, i, expected",
    [
        ("各地教職員工待遇得到保障。", 1, "各□教職員工待遇得到保障。"),  # ...T: back in step at a letter
        ("全市共有幼兒園七百餘所。", 2, "全市□有幼兒園七百餘所。"),
        ("市委宣讲团成员作专题报告。", 5, "市委宣讲团□员作专题报告□"),  # the last pair lost its 。
        ("新建学校二十所，新增学位一万个。", 12, "新建学校二十所，新增学位□万个□"),
    ],
)
def test_a_run_read_one_byte_late_is_read_again_in_step(text, i, expected):
    garbled = _read_late(text, i)
    assert garbled != text and "?" in garbled
    assert repair_mojibake(garbled) == expected


def test_a_lost_byte_before_a_replacement_character_is_read_again():
    text = "完善教师工资待遇相关长效机制，确保义务教育教师平均工资收入水平。"
    garbled = _byte_lost(text, 15)  # 遇 loses its first byte: 酉喙爻ばЩ until the reading fails
    assert "ばЩ" in garbled
    assert repair_mojibake(garbled) == "完善教师工资待□相关长效□制，确保义务教育教师平均工资收入水平。"


def test_utf8_read_as_gbk_is_read_again():
    garbled = "学校教育".encode().decode("gbk")  # UTF-8 bytes read as GBK
    assert garbled == "瀛︽牎鏁欒偛"
    assert repair_mojibake(f"全市{garbled}质量提升。") == "全市学校教育质量提升。"
    # an odd number of bytes: the last character is cut short, its rest unreadable (U+FFFD)
    garbled = "加强教师队伍建设".encode().decode("gbk", errors="replace")
    assert garbled.endswith("\ufffd")
    assert repair_mojibake(f"全市{garbled}。") == "全市加强教师队伍建□。"


def test_pinyin_after_a_spot_and_fullwidth_marks_folded_to_ascii():
    # 學校”創(chuàng)建 read one byte late after 學, the "(" swallowed, then ！ folded to !
    late = _read_late("學校”創", 1)[:-1]  # "學?！眲": the last lead byte is lost with the "("
    garbled = late.replace("！", "!") + "?chuàng)建活動"
    assert repair_mojibake(garbled) == "學□”□建活動"


def test_unreadable_spots_become_a_mark():
    assert clean_text("教育\ufffd發展") == "教育□發展"
    assert clean_text("全市共有，?學校") == "全市共有，□學校"  # no question mark after a comma
    assert clean_text("?開頭") == "□開頭"


@pytest.mark.parametrize(
    "text",
    ["才从何而来?这背后离不开一代代教师", "你好吗?我很好。", "问:什么?答:没有", "a.php?id=3", "为什么?", "Why? Because."],
)
def test_question_marks_stay(text):
    assert repair_mojibake(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "怎么办?忻州市五寨县",
        "什么原因?岢岚县的学校减少了",
        "学校在哪?隰县第一小学",
        "为什么?浍河两岸的村小撤并了",
        "去哪里?鄱阳湖边的学校",
        "怎么办？忻州市五寨县",  # a fullwidth question mark
        "学校在哪？隰县第一小学",
        "人在哪?亳州、涿州、郯城、莒县、盱眙、歙县、婺源、郴州、嵊州、涪陵都有",
        "为何?邛崃市、儋州市的教师工资",
        "第一问?黟县。第二问?荥阳。",
    ],
)
def test_a_question_mark_before_a_rare_but_real_character_stays_with_it(text):
    # a place name whose first character is rare in jieba's dictionary is not mojibake:
    # no reading improves it, so neither the question mark nor anything after it goes
    for i, ch in enumerate(text[:-1]):
        if ch in "?？":
            assert _rare(text[i + 1]), text[i + 1]  # the case under test
    assert repair_mojibake(text) == text
    assert clean_text(text) == text


def test_cleaning_takes_linear_time_in_question_marks():
    import time

    # questions, a rare place name after one, a mark nothing reads, and cheap `?` in a link:
    # ~60k `?` in 500 KB, where rebuilding the output at each one took ~10x longer than the rest
    para = "人才从何而来?这背后是教师。怎么办?忻州市五寨县，教育\ufffd發展。见a.php?id=3?b=4?c=5?d=6。\n"

    def seconds(n: int) -> float:
        text = (para * (n // len(para) + 1))[:n]
        t0 = time.perf_counter()
        clean_text(text)
        return time.perf_counter() - t0

    big = (para * (500_000 // len(para) + 1))[:500_000]
    assert big.count("?") >= 20_000
    clean_text(para * 50)  # jieba loaded, caches warm
    ratio = seconds(500_000) / seconds(125_000)
    if ratio >= 8:  # the machine is shared: measured again before failing
        ratio = min(ratio, seconds(500_000) / seconds(125_000))
    assert ratio < 8, f"4x the text took {ratio:.1f}x the time (quadratic would be ~16x)"


def test_chinese_text_with_letters_stays():
    for text in ["采用AI技术的课堂", "教育部发布了K12标准", "全市共有学校1372所"]:
        assert repair_mojibake(text) == text


# --------------------------------------------------------------------------- junk tails


@pytest.mark.parametrize(
    "marker",
    [
        "相关推荐",
        "特别声明：以上内容(如有图片或视频亦包括在内)为自媒体平台用户上传",
        "Copyright © 2024 长治日报社",
        "3 上一篇   下一篇 4",
        "版权所有 翻印必究",
        "热点推荐",
    ],
)
def test_junk_tail_after_a_body_is_dropped(marker):
    raw = f"{BODY}\n{marker}\n曼联1-2不敌对手\n网友热议"
    out = clean_text(raw)
    assert out == BODY
    for junk in (marker.split()[0], "曼联", "网友热议"):
        assert junk not in out


def test_marker_before_any_body_does_not_cut_the_report():
    # A report that mentions 相关推荐 first is not all tail: nothing real is lost.
    out = clean_text("相关推荐\n正文很短。")
    assert "正文很短。" in out


def test_cut_tail_needs_min_body():
    lines = ["短", "相关推荐", "尾巴"]
    assert cut_tail(lines) == lines
    assert cut_tail(lines, min_body=1) == ["短"]


# --------------------------------------------------------------------------- navigation lines


def test_navigation_lines_are_dropped():
    raw = "\n".join(
        [
            "网易首页 > 网易号 > 正文 申请入驻",
            "欢迎来到长治日报",
            "01:要闻",
            "~~~",
            "司法部表彰先进集体~~~",
            "0",
            "分享至",
            "12",
            "长治市大力推进义务教育均衡发展。",
            "（责任编辑：王某）",
            "放大 缩小 默认",
        ]
    )
    assert clean_text(raw) == "长治市大力推进义务教育均衡发展。"


def test_numbers_inside_sentences_stay():
    assert clean_text("组建45个城乡义务教育学校共同体。\n2024") == "组建45个城乡义务教育学校共同体。"


def test_short_repeated_lines_are_kept_once():
    assert clean_text("花海寻春\n正文一。\n花海寻春\n正文二。") == "花海寻春\n正文一。\n正文二。"


# --------------------------------------------------------------------------- OCR line breaks


OCR = (
    "教育是国之大计、党之大计。在资源型\n"
    "欠发达的吕梁市，教育曾一度成为突出的民\n"
    "生短板。对此，吕梁市委、市政府始终把教\n"
    "育摆在优先发展的战略位置，特别是党的十\n"
    "八届三中全会以来，成效显著。"
)


def test_ocr_broken_lines_are_joined():
    assert clean_text(OCR) == OCR.replace("\n", "")


def test_headings_in_normal_prose_are_not_joined():
    prose = (
        "全市义务教育优质均衡发展水平持续稳步提升\n"  # a heading: 20 characters, no full stop
        "市、县两级均成立了党委教育工作领导小组，成立了市委教育工委。\n"
        "全市新建改扩建学校二十所，新增学位一万余个，办学条件明显改善。\n"
        "教师交流轮岗制度全面推行，城乡教师结构不断优化提升。"
    )
    assert clean_text(prose) == prose
    assert join_broken_lines(prose.split("\n")) == prose.split("\n")


def test_blank_lines_between_ocr_fragments_do_not_stop_the_join():
    raw = OCR.replace("\n", "\n\n")
    assert clean_text(raw) == OCR.replace("\n", "")


# Headings in an OCR'd column: the body lines below are broken at 18 characters.
COLUMN = [
    "教师队伍建设是教育发展的第一资源，全市",
    "持续深化教师管理体制改革，取得明显成效。",
]


def test_a_long_heading_ends_where_the_next_sentence_begins():
    heading = "多措并举提升教师待遇保障水平切实稳定队伍"  # 20 characters, no punctuation
    paragraph = "全市建立中小学教师工资长效联动机制，教师平均工资收入水平不低于公务员，并逐年提高乡村教师生活补助标准。"
    out = clean_text("\n".join([*COLUMN, heading, paragraph]))
    assert out.split("\n") == [COLUMN[0] + COLUMN[1], heading, paragraph]


def test_a_title_and_subtitle_keep_their_space_and_end_before_the_column():
    heading = "多措并举强保障\u3000切实提升教师待遇"  # title, space, subtitle: 16 characters
    column = ["全市建立中小学教师工资长效联动机制确保", "教师平均工资收入水平不低于公务员。"]
    out = clean_text("\n".join([*COLUMN, heading, *column]))
    assert out.split("\n") == [COLUMN[0] + COLUMN[1], "多措并举强保障 切实提升教师待遇", column[0] + column[1]]
    assert clean_text("下好“改革棋”  答好“创新卷”") == "下好“改革棋” 答好“创新卷”"
    assert clean_text("教育 发展") == "教育发展"  # not a title: the OCR's space goes


def test_a_short_heading_after_an_unfinished_line_is_not_run_into_it():
    raw = "\n".join([COLUMN[0], "加强师德师风建设", "坚持把师德师风作为评价教师的第一标准，", "全面推进。", *COLUMN])
    lines = clean_text(raw).split("\n")
    assert "加强师德师风建设" in lines
    assert not any(ln.endswith("全市加强师德师风建设") for ln in lines)


def test_the_first_line_of_a_paragraph_without_punctuation_is_still_joined():
    # no punctuation in its first 18 characters, but the next line is the same column, not a paragraph
    raw = "\n".join(["全市义务教育优质均衡发展水平稳步提升城乡", "差距不断缩小，群众满意度明显提高。", *COLUMN])
    assert clean_text(raw).split("\n")[0] == "全市义务教育优质均衡发展水平稳步提升城乡差距不断缩小，群众满意度明显提高。"


def test_a_short_line_that_finishes_a_word_is_joined():
    raw = "\n".join(
        ["推进义务教育优质均衡发展是一项严", "肃的政治任务", "也是一项重大的民生工程，全市上下", "齐心协力推进落实。"]
    )
    lines = clean_text(raw).split("\n")
    assert lines[0].startswith("推进义务教育优质均衡发展是一项严肃的政治任务") and "肃的政治任务" not in lines


@pytest.mark.parametrize("junk", ["报日梁在", "在城日级"])
def test_ocr_junk_at_the_top_of_a_page_goes(junk):
    body = "\n".join(COLUMN)
    assert clean_text(f"{junk}\n{body}") == COLUMN[0] + COLUMN[1]
    text, starts = clean_pages([body, f"{junk}\n{body}"])
    assert junk not in text and len(starts) == 2


@pytest.mark.parametrize("line", ["花海寻春", "教育新飞跃", "赵雪宏", "长治日报", "欧阳春晓", "一、总体情况"])
def test_real_short_lines_at_the_top_of_an_ocr_page_stay(line):
    assert clean_text("\n".join([line, *COLUMN])).split("\n")[0] == line


def test_junk_like_lines_stay_where_the_text_is_not_an_ocr_or_not_at_the_top():
    prose = "全市新建改扩建学校二十所，新增学位一万余个。\n教师交流轮岗制度全面推行。"
    assert clean_text(f"报日梁在\n{prose}").startswith("报日梁在\n")  # lines are not broken: no OCR
    assert "报日梁在" in clean_text("\n".join([*COLUMN, "报日梁在", *COLUMN]))


# --------------------------------------------------------------------------- spaces, HTML


def test_spaces_between_chinese_characters_go_but_english_keeps_its_spaces():
    out = clean_text("全市教育系统 开展 党的二十届 三中全会精神宣讲 and English words stay")
    assert out == "全市教育系统开展党的二十届三中全会精神宣讲 and English words stay"


def test_ideographic_and_nbsp_spaces_between_chinese_go():
    assert clean_text("校长周\u3000帆、马\u00a0瑞 教\t育") == "校长周帆、马瑞教育"


def test_runs_of_spaces_in_english_become_one():
    assert clean_text("Notice:   the   content") == "Notice: the content"


def test_html_tags_and_scripts_are_stripped_and_entities_unescaped():
    raw = (
        "<html><head><style>p{color:red}</style><script>var x = '<b>';alert(1)</script></head>"
        "<body><p>教育&amp;发展</p><p>10&nbsp;%&lt;20%</p></body></html>"
    )
    out = clean_text(raw)
    assert "alert" not in out and "color" not in out and "<p>" not in out
    assert out == "教育&发展10\u00a0%<20%"
    assert clean_text("<p>第一段。</p>\n<p>第二段。</p>") == "第一段。\n第二段。"


def test_strip_html_leaves_plain_text_alone():
    text = "a > b 且 c < d"
    assert strip_html(text) == text


def test_form_feeds_and_unicode_line_separators_end_lines():
    # pdftotext puts a form feed between pages; a line of it alone is blank.
    assert clean_text("第一页。\f第二页。\n\x0c\n\u2028第三段。\x0b") == "第一页。\n第二页。\n第三段。"


def test_windows_and_old_mac_line_endings_and_bom():
    assert clean_text("\ufeff第一段。\r\n第二段。\r第三段。") == "第一段。\n第二段。\n第三段。"


# --------------------------------------------------------------------------- the real corpus


@pytest.fixture(scope="module")
def corpus_docs():
    docs, problems = load_corpus([ROOT / "corpus"])
    assert problems == []
    return {d.id[:3]: d for d in docs}


def test_real_corpus_has_five_documents(corpus_docs):
    assert sorted(corpus_docs) == ["000", "001", "002", "003", "004"]


@pytest.mark.parametrize(
    "junk", ["曼联", "相关推荐", "Copyright", "网易首页", "(tǒng)", "(chuàng)", "~~~", "分享至", "上一篇", "学?", "學?", "\ufffd"]
)
def test_real_corpus_has_no_junk(corpus_docs, junk):
    for d in corpus_docs.values():
        assert junk not in d.text, f"{d.id} still contains {junk!r}"


def test_real_corpus_keeps_the_facts(corpus_docs):
    assert "专任教师49990人" in corpus_docs["004"].text  # across an OCR line break in the raw file
    assert "188所" in corpus_docs["000"].text
    assert "192所" in corpus_docs["002"].text or "192所" in corpus_docs["003"].text
    assert "96.7%" in corpus_docs["001"].text
    assert "創新" in corpus_docs["001"].text  # 創(chuàng)新 repaired, still traditional
    assert "當□公務員平均工資" in corpus_docs["001"].text  # read again in step; 地 is lost
    assert not corpus_docs["004"].text.startswith("在梁日级")  # OCR junk at the top
    assert "福利待遇\n吕梁市建立" in corpus_docs["004"].text  # a heading ends where its sentence begins


@pytest.mark.parametrize("questions", ["questions.jsonl", "heldout.jsonl"])
def test_every_evidence_string_of_the_evaluation_is_in_the_cleaned_corpus(corpus_docs, questions):
    from app.evaluate import is_hit, load_questions

    for q in load_questions(ROOT / "eval" / questions):
        for ev in q.evidence:
            assert any(is_hit(d.text, [ev]) for d in corpus_docs.values()), f"{q.id}: {ev}"


def test_real_corpus_has_no_blank_lines(corpus_docs):
    for d in corpus_docs.values():
        assert all(line.strip() for line in d.text.split("\n")), d.id


# --------------------------------------------------------------------------- properties

PIECES = st.sampled_from(
    [
        *"教育是国之大计。，！？；：“”（）()~> \n\t\r\u3000012abcXYZ",
        "統(tǒng)",
        "學?!眲?chuàng)",
        "\n相关推荐\n",
        "\nCopyright\n",
        "网易首页 > 网易号 > 正文",
        "分享至",
        "<p>",
        "&amp;",
        BODY,
    ]
)
ANY_TEXT = st.text(max_size=400) | st.lists(PIECES, max_size=60).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_TEXT)
def test_clean_text_never_crashes_and_leaves_no_blank_lines(raw):
    out = clean_text(raw)
    assert isinstance(out, str)
    assert "\r" not in out
    for line in out.split("\n") if out else []:
        assert line.strip(), repr(out)
        assert line == line.strip()


# Idempotence does not hold in general, so it is not asserted on arbitrary text: one pass
# can make new input for the next (`&amp;lt;` -> `&lt;` -> `<`; joining OCR lines can make
# a line that looks like navigation, `0000000000000>㐀` + `0>`). What does hold: cleaning
# only removes, but for mojibake read again (tested above on its own). Without entities and
# with mojibake left as it is, the output's non-space characters are a subsequence of the input's.
def _is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(ch in it for ch in small)


def _ink(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_TEXT.filter(lambda t: "&" not in t))
def test_clean_text_only_removes(raw):
    with mock.patch("app.clean.repair_mojibake", lambda text: text):
        out = clean_text(raw)
    assert _is_subsequence(_ink(out), _ink(raw))


def test_clean_text_is_idempotent_on_the_real_reports(corpus_docs):
    for d in corpus_docs.values():
        assert clean_text(d.text) == d.text, d.id
