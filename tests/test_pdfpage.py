"""The page of a PDF report in the report view (app/pdfpage.py, views.page_html): an added PDF is kept
in the collection of its index and carried from build to build, the page a passage is on is rendered
(lazily, cached) as a PNG, and a file gone, changed or broken gives a message instead. Fake encoder."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import numpy as np
import pytest
from conftest import Tags, write_pdf

from app import changes, ui, views
from app.collection import ORIGINALS, Collection
from app.index import ReportIndex
from app.pdfpage import WIDTH, PageError, PdfSource, _file_sha256, _render, page_png, pdf_of
from app.records import Document

# three pages of different lines, each long enough for passages of its own
PAGES = [[f"忻州市第{p}页第{i}行：全市新建公办幼儿园{p}{i}所，新增学位{p}{i}00个。" for i in range(30)] for p in (1, 2, 3)]


class Req:
    def __init__(self, **query):
        self.query_params = query


@pytest.fixture
def added(tiny_corpus, fake_encoder, tmp_path):
    """An index folder of the tiny corpus with a three-page Chinese PDF added; the PDF added is deleted."""
    folder = tmp_path / "idx"
    changes.build_from([tiny_corpus], folder, fake_encoder)
    (tmp_path / "upload").mkdir()
    pdf = write_pdf(tmp_path / "upload" / "xinzhou.pdf", PAGES, title="忻州市<b>教育</b>报告")
    data = pdf.read_bytes()
    changes.add(folder, [pdf], encoder=fake_encoder)
    pdf.unlink()  # the view reads the copy the index keeps
    return folder, data


def live(folder):
    return ReportIndex.live_folder(folder)


def text(markup: str) -> str:
    return "".join(Tags(markup).text)


def png_of(markup: str) -> bytes:
    [src] = [a["src"] for t, a in Tags(markup).tags if t == "img"]
    assert src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def reference(data: bytes, page: int) -> np.ndarray:
    """Page `page` rendered by pypdfium2 directly, as the view should show it."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    p = pdf[page - 1]
    out = np.asarray(p.render(scale=WIDTH / p.get_width()).to_pil().convert("RGB"))
    pdf.close()
    return out


def test_an_added_pdf_is_kept_in_its_index_and_carried_to_the_next_build(added, fake_encoder, tmp_path):
    folder, data = added
    col = Collection.of_index(folder)
    record = col.added["xinzhou"]
    kept = live(folder) / ORIGINALS / record["original"]
    assert kept.read_bytes() == data and col.original("xinzhou") == kept
    # guarded by the record's checksum when shown, not checksummed with the build (read at every load)
    assert record["original_sha256"] == hashlib.sha256(data).hexdigest()
    assert not [f for f in ReportIndex.read_params(folder)["files"] if f.startswith(ORIGINALS)]
    first, inode = live(folder), kept.stat().st_ino
    other = tmp_path / "note.txt"
    other.write_text("晋城市2024年教育工作简报\n全市新建公办幼儿园15所。", encoding="utf-8")
    changes.add(folder, [other], encoder=fake_encoder)
    assert live(folder) != first and not first.exists()  # a new build, the old one gone
    carried = live(folder) / ORIGINALS / record["original"]
    assert carried.read_bytes() == data and carried.stat().st_ino == inode  # linked, not copied again
    changes.remove(folder, "xinzhou", encoder=fake_encoder)
    assert not (live(folder) / ORIGINALS).exists()  # removed with its report


def test_the_report_view_of_a_pdf_shows_the_page_its_passage_is_on(added, fake_encoder, tmp_path):
    folder, data = added
    index = ReportIndex.load(folder, fake_encoder)
    doc = index.docs["xinzhou"]
    chunks = sorted((c for c in index.chunks if c.doc_id == "xinzhou"), key=lambda c: c.n)
    on = {doc.page_at(c.start): c for c in reversed(chunks)}  # the first passage starting on each page
    assert set(on) == {1, 2, 3}
    c = ui.ChatUI(index, feedback_path=tmp_path / "fb.sqlite3", index_dir=folder)
    shown = {p: c.on_report("zh", Req(report="xinzhou", passage=str(ch.n)))["value"] for p, ch in on.items()}
    for p, markup in shown.items():
        assert f"PDF 原件第 {p} 页" in text(markup) and f"第 {p} 页" in markup
        got = pixels(png_of(markup))
        assert got.shape[1] == WIDTH and np.array_equal(got, reference(data, p))  # that very page
    assert not np.array_equal(pixels(png_of(shown[1])), pixels(png_of(shown[3])))
    alt = next(a["alt"] for t, a in Tags(shown[2]).tags if t == "img")
    assert alt == "《忻州市<b>教育</b>报告》PDF 原件第 2 页的图像" and "<b>教育" not in shown[2]  # escaped
    english = c.on_report("en", Req(report="xinzhou", passage=str(on[3].n)))["value"]
    assert "Page 3 of the PDF" in english
    # a report from no PDF: its text only
    assert "<img" not in c.on_report("zh", Req(report="a", passage="0"))["value"]


def test_a_page_is_rendered_once_then_cached(added):
    folder, data = added
    record = Collection.of_index(folder).added["xinzhou"]
    source = PdfSource(live(folder) / ORIGINALS / record["original"], record["original_sha256"])
    _render.cache_clear()
    _file_sha256.cache_clear()
    first = page_png(source, 2)
    assert page_png(source, 2) is first and _render.cache_info().hits == 1
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    page_png(source, 3)  # another page: rendered, the file not hashed again
    assert (_render.cache_info().misses, _file_sha256.cache_info().misses, _file_sha256.cache_info().hits) == (2, 1, 1)
    # a file changed in place (another mtime) is hashed again and refused
    source.path.write_bytes(data.replace(b"/Producer", b"/Producxr"))
    st = source.path.stat()
    os.utime(source.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(PageError) as e:
        page_png(source, 1)
    assert e.value.kind == "changed" and _file_sha256.cache_info().misses == 2


def test_an_index_whose_kept_pdf_was_deleted_still_loads_answers_and_says_so(added, fake_encoder, tmp_path):
    from app.answer import answer

    folder, data = added
    (live(folder) / ORIGINALS / Collection.of_index(folder).added["xinzhou"]["original"]).unlink()
    index = ReportIndex.load(folder, fake_encoder)  # verified: the other files are checksummed still
    assert "xinzhou" in index.docs and answer(index, "忻州市新建公办幼儿园多少所").hits
    assert Collection.of_index(folder).added["xinzhou"]
    c = ui.ChatUI(index, feedback_path=tmp_path / "fb.sqlite3", index_dir=folder)
    n = max(ch.n for ch in index.chunks if ch.doc_id == "xinzhou")
    markup = c.on_report("zh", Req(report="xinzhou", passage=str(n)))["value"]
    assert "<img" not in markup and "rq-here" in markup
    assert "找不到这份报告的 PDF 文件，无法显示页面。" in text(markup)
    # the next build carries what is left and still loads
    other = tmp_path / "note.txt"
    other.write_text("晋城市2024年教育工作简报\n全市新建公办幼儿园15所。", encoding="utf-8")
    changes.add(folder, [other], encoder=fake_encoder)
    assert len(ReportIndex.load(folder, fake_encoder).docs) == len(index.docs) + 1


def test_a_missing_changed_or_broken_pdf_gives_a_message_instead_of_an_image(added, fake_encoder, tmp_path):
    folder, data = added
    index = ReportIndex.load(folder, fake_encoder)
    build = live(folder)
    kept = build / ORIGINALS / index.collection.added["xinzhou"]["original"]
    n = max(c.n for c in index.chunks if c.doc_id == "xinzhou")

    def view(lang="zh", idx=index, doc_id="xinzhou", passage=n):
        markup = views.report_html(idx, doc_id, passage, lang, build)
        assert "<img" not in markup and "rq-here" in markup  # the text is still shown
        return text(markup)

    changed = data.replace(b"/Producer", b"/Producxr")
    assert changed != data
    kept.write_bytes(changed)
    assert "这份报告的 PDF 文件在添加后被改动过，不显示页面。" in view()
    kept.unlink()
    assert "找不到这份报告的 PDF 文件，无法显示页面。" in view()
    assert "The PDF file of this report cannot be found, so its page cannot be shown." in view("en")

    # a corpus PDF that is not one, and a page the file does not have
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    doc = Document("bad", "坏文件", "第一页。\n第二页。", path=str(bad), pages=(0, 5))
    broken = ReportIndex.build([doc], fake_encoder)
    assert "这份报告的 PDF 文件无法读取，无法显示页面。" in view(idx=broken, doc_id="bad", passage=0)
    one = write_pdf(tmp_path / "one.pdf", PAGES[:1])  # one page, for a report of two
    two = "第一页。" + "甲" * 600 + "\n第二页。" + "乙" * 600
    short = ReportIndex.build([Document("short", "一页", two, path=str(one), pages=(0, two.index("\n") + 1))], fake_encoder)
    assert pdf_of(short, "short") == PdfSource(one)
    assert "<img" in views.report_html(short, "short", 0, "en")  # page 1 is there
    last = max(c.n for c in short.chunks)
    assert "Page 2 of the PDF" in view("en", idx=short, doc_id="short", passage=last)
    assert "The PDF has no page 2." in view("en", idx=short, doc_id="short", passage=last)
    with pytest.raises(PageError) as e:
        page_png(pdf_of(short, "short"), 2)
    assert e.value.kind == "no_page" and "has 1 pages, not page 2" in str(e.value)

    # an added PDF from before the file was kept
    old = Document("old", "旧报告", "第一页。", path="added:old.pdf", pages=(0,))
    assert "用“替换”重新添加它即可" in view(idx=ReportIndex.build([old], fake_encoder), doc_id="old", passage=0)


def test_a_grey_page_is_kept_exactly_and_a_page_in_colour_as_256_colours():
    from PIL import Image, ImageDraw

    from app.pdfpage import _png

    grey = Image.new("RGB", (300, 400), "white")
    ImageDraw.Draw(grey).text((20, 20), "p. 2", fill=(90, 90, 90))
    back = Image.open(io.BytesIO(_png(grey)))
    assert back.mode == "L" and np.array_equal(np.asarray(back.convert("RGB")), np.asarray(grey))
    colour = grey.copy()
    ImageDraw.Draw(colour).rectangle((50, 100, 250, 300), fill=(200, 30, 30))
    back = Image.open(io.BytesIO(_png(colour)))
    assert back.mode == "P" and np.abs(np.asarray(back.convert("RGB"), int)[200, 150] - (200, 30, 30)).max() <= 8
