"""Extraction of .pdf, .docx, .html, .md and .txt reports (files made on the fly), page offsets,
and loading folders of mixed formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import XINZHOU_PAGES

from app.clean import clean_pages, clean_text
from app.errors import CorpusError
from app.extract import Limits, extract, html_text, norm_date, stated_date
from app.load import document_from_file, load_corpus
from app.records import Document

# --------------------------------------------------------------------------- pdf


def test_pdf_text_pages_title_and_date(tmp_path, make_pdf):
    f = make_pdf(tmp_path / "xz.pdf", XINZHOU_PAGES, title="忻州市教育发展报告（2024）")
    text, meta, pages = extract(f)
    assert len(pages) == 3
    assert "全市新建公办幼儿园23所" in pages[1] and "乡村教师" in pages[2]
    assert text == "\n".join(pages)
    assert meta["title"] == "忻州市教育发展报告（2024）"
    assert meta["date"] == datetime.now().strftime("%Y-%m-%d")  # reportlab stamps the creation date
    assert "- 2 -" not in text  # printed page numbers go


def test_pdf_pages_are_exact_offsets_in_the_cleaned_text(tmp_path, make_pdf):
    doc = document_from_file(make_pdf(tmp_path / "xz.pdf", XINZHOU_PAGES))
    assert len(doc.pages) == 3 and doc.pages[0] == 0
    assert doc.text.count("忻州市教育局") == 1  # the running header, once
    for page, sentence in [(1, "全市共有各级各类学校1268所"), (2, "全市新建公办幼儿园23所"), (3, "全市乡村教师达到1.2万人")]:
        at = doc.text.index(sentence)
        assert doc.page_at(at) == page
        assert doc.pages[page - 1] <= at < (doc.pages[page] if page < 3 else len(doc.text))
    assert doc.title == "忻州市教育局"  # no title in the metadata: the first line
    assert doc.city == "忻州"


def test_pdf_without_a_text_layer_or_damaged_is_refused_by_name(tmp_path):
    from reportlab.pdfgen import canvas

    scan = tmp_path / "scan.pdf"
    c = canvas.Canvas(str(scan))
    c.rect(50, 50, 200, 200, fill=1)  # an image-only page, as a scan would be
    c.showPage()
    c.save()
    with pytest.raises(CorpusError, match=r"scan\.pdf.*no text layer.*OCR"):
        extract(scan)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot really a pdf\x00\x01")
    with pytest.raises(CorpusError, match=r"broken\.pdf.*not a readable PDF"):
        extract(broken)


# --------------------------------------------------------------------------- docx


def test_docx_title_date_tables_and_page_breaks(tmp_path, make_docx):
    f = make_docx(
        tmp_path / "ll.docx",
        [
            ("h", "吕梁市教育工作总结"),
            "全市义务教育巩固率达到99.2%。",
            "PAGE",
            "全市专任教师2.9万人。",
            [["项目", "数量"], ["幼儿园", "412所"]],
        ],
        title="吕梁市2024年教育工作总结",
        created=datetime(2024, 9, 1, 8, 0, tzinfo=UTC),
    )
    text, meta, pages = extract(f)
    assert meta == {"title": "吕梁市2024年教育工作总结", "date": "2024-09-01"}
    assert len(pages) == 2 and "巩固率" in pages[0] and "专任教师" in pages[1]
    assert "幼儿园 | 412所" in pages[1]
    doc = document_from_file(f)
    assert doc.page_at(doc.text.index("全市专任教师")) == 2 and doc.page_at(0) == 1


def test_docx_title_falls_back_to_the_first_heading_and_ignores_the_template_date(tmp_path, make_docx):
    f = make_docx(tmp_path / "x.docx", ["前言。", ("h", "长治市课后服务报告"), "课后服务惠及学生31万名。"])
    _, meta, pages = extract(f)
    assert meta["title"] == "长治市课后服务报告"
    assert meta["date"] == ""  # python-docx's blank template says 2013: not the report's date
    assert pages == []  # no page breaks: unpaged


def test_damaged_docx_is_refused_by_name(tmp_path):
    f = tmp_path / "bad.docx"
    f.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(CorpusError, match=r"bad\.docx.*not a readable \.docx"):
        extract(f)


# --------------------------------------------------------------------------- html

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<title>“双减”小切口撬动基础教育大发展_长治市人民政府</title>
<meta property="article:published_time" content="2024-04-18T08:30:00+08:00">
<script>var ad = "广告脚本";</script><style>.x{color:red}</style></head>
<body><header><h1>长治市人民政府门户网站</h1></header>
<nav><a href="/">首页</a> <a href="/news">要闻</a></nav>
<div class="breadcrumb">首页 &gt; 教育 &gt; 正文</div>
<article><h1>“双减”小切口撬动基础教育大发展</h1>
<p>全市192所培训机构
   全部纳入平台管理。</p><p>课后服务惠及学校481所、学生31万余名。</p></article>
<aside>相关推荐：其他新闻标题</aside><div id="share-bar">分享到微信</div>
<footer>版权所有 长治市人民政府</footer><script>track()</script></body></html>"""


def test_html_main_text_without_navigation_scripts_or_furniture():
    text, meta, pages = html_text(PAGE)
    assert text == "“双减”小切口撬动基础教育大发展\n全市192所培训机构 全部纳入平台管理。\n课后服务惠及学校481所、学生31万余名。"
    assert meta == {"title": "“双减”小切口撬动基础教育大发展", "date": "2024-04-18"}
    assert pages == []
    for junk in ("广告脚本", "首页", "相关推荐", "分享到", "版权所有", "门户网站", "track"):
        assert junk not in text


def test_html_without_article_keeps_the_body_and_reads_title_and_dateline():
    page = (
        "<html><head><title>忻州教育新闻 - 忻州新闻网</title></head><body><div class='nav'>首页 新闻</div>"
        "<div class='content'><p>发布时间：2024年3月5日</p><p>忻州市学前教育毛入园率达到96.7%。</p></div></body></html>"
    )
    text, meta, _ = html_text(page)
    assert text == "发布时间：2024年3月5日\n忻州市学前教育毛入园率达到96.7%。"
    assert meta == {"title": "忻州教育新闻", "date": "2024-03-05"}


# --------------------------------------------------------------------------- md and txt


def test_markdown_heading_title_front_matter_and_markers(tmp_path):
    f = tmp_path / "r.md"
    f.write_text("---\ndate: 2024-05-06\n---\n# 吕梁教育新飞跃\n\n## 一、概况\n全市专任教师2.9万人。\n", encoding="utf-8")
    text, meta, pages = extract(f)
    assert meta == {"title": "吕梁教育新飞跃", "date": "2024-05-06"}
    assert "#" not in text and "一、概况" in text and "date:" not in text
    assert document_from_file(f).title == "吕梁教育新飞跃"


def test_txt_keeps_its_text_and_reads_a_stated_date(tmp_path):
    f = tmp_path / "r.txt"
    f.write_text("长治市教育简报\n发布日期：2023-12-01\n全市新建幼儿园6所。", encoding="utf-8")
    text, meta, pages = extract(f)
    assert (text, meta, pages) == ("长治市教育简报\n发布日期：2023-12-01\n全市新建幼儿园6所。", {"date": "2023-12-01"}, [])
    assert document_from_file(f).title == "长治市教育简报"  # the first line


@pytest.mark.parametrize(
    "value, want",
    [
        ("2024-04-18T08:30:00+08:00", "2024-04-18"),
        ("2024年4月8日", "2024-04-08"),
        ("2024/4/8", "2024-04-08"),
        ("D:20240418", ""),
        ("2024年9月", "2024-09"),
        ("no date", ""),
        ("2024-13-40", ""),
        (datetime(2024, 1, 2), "2024-01-02"),
        (None, ""),
    ],
)
def test_norm_date(value, want):
    assert norm_date(value) == want


def test_stated_date_only_near_the_top():
    assert stated_date("时间：2024-01-02 正文") == "2024-01-02"
    assert stated_date("正文" * 300 + "日期：2024-01-02") == ""
    assert stated_date("全市2024年新建学校") == ""  # a year in a sentence is not the report's date


def test_unsupported_formats_say_what_is_read(tmp_path):
    for name in ("old.doc", "sheet.xlsx", "noext"):
        f = tmp_path / name
        f.write_bytes(b"data")
        with pytest.raises(CorpusError, match=r"unsupported format.*\.pdf, \.docx"):
            extract(f)
    with pytest.raises(CorpusError, match="save it as .docx"):
        extract(tmp_path / "old.doc")


# --------------------------------------------------------------------------- cleaning page by page


def test_clean_pages_of_one_page_is_clean_text():
    raw = "花海寻春\n正文一。\n\n花海寻春\n正文二。\n3\n相关推荐\n" + "长" * 10
    assert clean_pages([raw]) == (clean_text(raw), [0])


def test_clean_pages_cuts_each_pages_footer_not_the_rest_of_the_report():
    body = "全市教育事业稳步发展，各项指标持续向好。" * 12  # over 200 characters before the footer
    pages = [body + "\n版权所有 忻州市教育局", "第二页的内容。\n版权所有 忻州市教育局", "第三页的内容。"]
    text, starts = clean_pages(pages)
    assert "版权所有" not in text.split("\n")[0]
    assert "第二页的内容。" in text and "第三页的内容。" in text
    assert [text[s : s + 3] for s in starts] == [body[:3], "第二页", "第三页"]


def test_pages_with_no_text_left_point_at_the_next_page():
    text, starts = clean_pages(["第一页。", "  \n1\n", "第三页。"])
    assert text == "第一页。\n第三页。"
    assert starts == [0, 5, 5]
    doc = Document("d", "t", text, pages=starts)
    assert doc.page_at(text.index("第三页")) == 3 and doc.page_at(0) == 1
    assert Document("d", "t", text).page_at(3) is None


# --------------------------------------------------------------------------- loading mixed folders


def test_a_folder_of_mixed_formats_loads_and_bad_files_are_named(tmp_path, make_pdf, make_docx):
    folder = tmp_path / "mixed"
    folder.mkdir()
    make_pdf(folder / "xz.pdf", XINZHOU_PAGES)
    make_docx(folder / "ll.docx", [("h", "吕梁市教育工作总结"), "全市专任教师2.9万人。"])
    (folder / "cz.html").write_text(PAGE, encoding="utf-8")
    (folder / "note.md").write_text("# 标题\n长治市教育简报正文。", encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 junk")
    (folder / "empty.docx").write_bytes(b"")
    (folder / "manifest.json").write_text(json.dumps({"ll.docx": {"title": "清单标题", "city": "吕梁"}}), encoding="utf-8")
    docs, problems = load_corpus([folder])
    by_id = {d.id: d for d in docs}
    assert set(by_id) == {"xz", "ll", "cz", "note"}
    assert by_id["ll"].title == "清单标题"  # the manifest wins over the document
    assert by_id["cz"].date == "2024-04-18" and by_id["cz"].title.startswith("“双减”")
    assert len(by_id["xz"].pages) == 3 and by_id["cz"].pages == ()
    assert len(problems) == 2
    assert any("broken.pdf" in p for p in problems) and any("empty.docx" in p for p in problems)


def test_jsonl_lines_may_give_pages(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(
        json.dumps({"id": "p", "title": "分页", "pages": ["第一页。", "第二页。"]}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (doc,), problems = load_corpus([f])
    assert problems == [] and doc.text == "第一页。\n第二页。" and doc.pages == (0, 5)


def test_index_round_trips_pages_and_reads_old_indexes_without_them(tmp_path, fake_encoder, make_pdf):
    from app.index import ReportIndex

    docs, _ = load_corpus(
        [
            make_pdf(tmp_path / "xz.pdf", XINZHOU_PAGES),
        ]
    )
    folder = tmp_path / "idx"
    live = ReportIndex.build(docs, fake_encoder).save(folder)
    back = ReportIndex.load(folder, fake_encoder)
    assert back.docs["xz"].pages == docs[0].pages and back.docs["xz"] == docs[0]
    # An index written before pages existed: no such key in docs.jsonl.
    lines = [json.loads(ln) for ln in (live / "docs.jsonl").read_text("utf-8").splitlines()]
    (live / "docs.jsonl").write_text("".join(json.dumps({k: v for k, v in d.items() if k != "pages"}) + "\n" for d in lines))
    old = ReportIndex.load(folder, fake_encoder, verify=False)
    assert old.docs["xz"].pages == () and old.docs["xz"].page_at(10) is None


# --------------------------------------------------------------------------- limits (reportqa add)


def test_limits_pass_real_reports_and_refuse_what_is_over_them(tmp_path, make_pdf, make_docx):
    pdf = make_pdf(tmp_path / "xz.pdf", XINZHOU_PAGES)
    docx = make_docx(tmp_path / "r.docx", [("h", "吕梁市教育工作总结"), "全市专任教师2.9万人。", [["学校", "数量"], ["小学", "120"]]])
    txt = tmp_path / "r.txt"
    txt.write_text("长治市教育简报\n" + "课后服务覆盖全部义务教育学校。" * 20, encoding="utf-8")
    for f in (pdf, docx, txt):
        assert extract(f, Limits()) == extract(f)  # the defaults leave a real report alone
    with pytest.raises(CorpusError, match=r"r\.txt: 308 characters of text, over the limit of 100 .*--max-chars"):
        extract(txt, Limits(max_chars=100))
    # a PDF stops being read at the page that goes over
    with pytest.raises(CorpusError, match=r"xz\.pdf \(at page 2\): more than \d+ characters"):
        extract(pdf, Limits(max_chars=60))  # page 1 has 52
    with pytest.raises(CorpusError, match=r"r\.docx: .*over the limit of 10 "):
        extract(docx, Limits(max_chars=10))


def test_a_docx_zip_bomb_is_refused_from_its_zip_directory(tmp_path):
    import zipfile

    from conftest import write_docx

    f = write_docx(tmp_path / "bomb.docx", ["吕梁"])
    with zipfile.ZipFile(f) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    parts["word/media/pad.bin"] = b"\0" * (3 << 20)  # 3 MiB of zeros: deflates about 1000 times
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    with pytest.raises(CorpusError, match=r"word/media/pad\.bin expands [\d,]+ times .* limit of 100 times.*--max-ratio \d+"):
        extract(f, Limits())
    assert extract(f, Limits(max_ratio=5000)).text.strip() == "吕梁"
    assert extract(f).text.strip() == "吕梁"  # `reportqa index` reads its corpus without limits
    with pytest.raises(CorpusError, match="not a readable .docx"):
        (tmp_path / "no.docx").write_bytes(b"PK not a zip")
        extract(tmp_path / "no.docx", Limits())
