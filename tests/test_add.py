"""Adding and removing reports: `reportqa add/remove/list`, the added store, incremental updates that equal a
full rebuild, and the UI's "Add a report" panel (no browser). Fake encoder throughout."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import XINZHOU_PAGES, FakeEncoder

from app import cli as cli_module
from app.cli import cli
from app.collection import Collection, update_index
from app.index import ReportIndex
from app.load import load_corpus

QUESTIONS = ["新建公办幼儿园多少所", "乡村教师有多少人", "义务教育巩固率", "长治市校外培训机构纳入平台管理", "课后服务惠及学生"]
LULIANG = [("h", "吕梁市教育工作总结"), "全市义务教育巩固率达到99.2%。", "PAGE", "全市专任教师2.9万人，其中骨干教师3100名。"]


@pytest.fixture
def collection(monkeypatch, tiny_corpus, tmp_path) -> Collection:
    """The default collection: the tiny corpus plus $REPORTQA_DATA (a temp folder, by the autouse fixture)."""
    col = Collection(tiny_corpus, cli_module.default_data())
    monkeypatch.setattr(cli_module, "default_collection", lambda: col)
    return col


@pytest.fixture
def index_dir(runner, encoder, collection, tmp_path) -> Path:
    folder = tmp_path / "idx"
    run(runner, "index", "--index", str(folder))
    return folder


@pytest.fixture
def files(tmp_path, make_pdf, make_docx) -> dict[str, Path]:
    folder = tmp_path / "incoming"
    folder.mkdir()
    return {
        "pdf": make_pdf(folder / "xinzhou2024.pdf", XINZHOU_PAGES, title="忻州市教育发展报告"),
        "docx": make_docx(folder / "luliang.docx", LULIANG, title="吕梁市教育工作总结", created=datetime(2024, 9, 1, tzinfo=UTC)),
    }


def run(runner, *args, code: int = 0):
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def ask_json(runner, index_dir, question) -> dict:
    return json.loads(run(runner, "ask", "--json", "--index", str(index_dir), question).stdout)


# --------------------------------------------------------------------------- add, ask, list


def test_added_pdf_is_answered_with_its_page(runner, encoder, index_dir, files, collection):
    before = encoder.passages_embedded
    out = run(runner, "add", str(files["pdf"]), "--source", "忻州市教育局", "--index", str(index_dir)).stdout
    assert "added xinzhou2024 '忻州市教育发展报告'" in out and "3 pages" in out
    new = ReportIndex.load(index_dir, encoder)
    mine = [c for c in new.chunks if c.doc_id == "xinzhou2024"]
    assert mine and encoder.passages_embedded - before == len(mine)  # only the new report was embedded
    assert f"embedded {len(mine)} passages, reused 3" in out
    for question, page, fact in [("新建公办幼儿园多少所", 2, "23所"), ("乡村教师有多少人", 3, "1.2万人")]:
        top = ask_json(runner, index_dir, question)["passages"][0]
        assert (top["doc_id"], top["page"], top["source"]) == ("xinzhou2024", page, "忻州市教育局")
        assert fact in top["text"]
        doc = new.docs["xinzhou2024"]
        assert doc.text[top["start"] : top["end"]] == top["text"]
    plain = run(runner, "ask", "--index", str(index_dir), "新建公办幼儿园多少所").stdout
    assert "p. 2, chars" in plain
    # reports without pages say so: page null
    assert ask_json(runner, index_dir, "长治市校外培训机构纳入平台管理")["passages"][0]["page"] is None


def test_added_docx_takes_title_and_date_from_the_document(runner, encoder, index_dir, files):
    run(runner, "add", str(files["docx"]), "--index", str(index_dir))
    top = ask_json(runner, index_dir, "专任教师有多少")["passages"][0]
    assert (top["doc_id"], top["title"], top["date"], top["city"], top["page"]) == (
        "luliang",
        "吕梁市教育工作总结",
        "2024-09-01",
        "吕梁",
        2,
    )
    rows = [json.loads(line) for line in run(runner, "list", "--json", "--index", str(index_dir)).stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c", "luliang"]
    row = rows[-1]
    assert (row["title"], row["city"], row["date"], row["pages"]) == ("吕梁市教育工作总结", "吕梁", "2024-09-01", 2)
    assert row["passages"] >= 1
    table = run(runner, "list", "--index", str(index_dir)).stdout.splitlines()
    assert table[0].split() == ["id", "city", "date", "passages", "title"]
    assert any(line.startswith("luliang ") and "吕梁市教育工作总结" in line for line in table)


def test_options_win_over_what_the_document_says(runner, encoder, index_dir, files):
    run(
        runner,
        "add",
        str(files["docx"]),
        "--title",
        "自定标题",
        "--city",
        "忻州",
        "--date",
        "2025-01-01",
        "--index",
        str(index_dir),
    )
    doc = ReportIndex.load(index_dir, encoder).docs["luliang"]
    assert (doc.title, doc.city, doc.date) == ("自定标题", "忻州", "2025-01-01")


def test_html_jsonl_and_several_files_at_once(runner, encoder, index_dir, tmp_path):
    page = tmp_path / "cz-news.html"
    page.write_text(
        "<html><head><title>新闻_长治</title><meta name='PubDate' content='2024-06-01 09:00'></head><body>"
        "<nav>首页 教育</nav><h1>长治市职业教育发展</h1><p>长治市职业院校在校生达到5.6万人。</p></body></html>",
        encoding="utf-8",
    )
    corpus = tmp_path / "more.jsonl"
    corpus.write_text(
        json.dumps({"id": "j1", "title": "报告一", "text": "忻州市特殊教育学校实现县域全覆盖。"}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    out = run(runner, "add", str(page), str(corpus), "--index", str(index_dir)).stdout
    assert "added cz-news '长治市职业教育发展' (长治 · 2024-06-01)" in out and "added j1 '报告一'" in out
    assert ask_json(runner, index_dir, "职业院校在校生")["passages"][0]["doc_id"] == "cz-news"
    assert ask_json(runner, index_dir, "特殊教育学校")["passages"][0]["doc_id"] == "j1"
    assert "首页" not in ReportIndex.load(index_dir, encoder).docs["cz-news"].text


# --------------------------------------------------------------------------- incremental == full rebuild


def _same_index(a: ReportIndex, b: ReportIndex) -> None:
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    assert [c.text for c in a.chunks] == [c.text for c in b.chunks]
    assert a.hashes == b.hashes and a.fingerprint == b.fingerprint
    assert np.allclose(a.vectors, b.vectors, atol=1e-6)
    assert {k: d.to_dict() | {"path": ""} for k, d in a.docs.items()} == {
        k: d.to_dict() | {"path": ""} for k, d in b.docs.items()
    }
    for mode in ("hybrid", "dense", "keyword"):
        for x, y in zip(a.search_many(QUESTIONS, top_k=5, mode=mode), b.search_many(QUESTIONS, top_k=5, mode=mode), strict=True):
            assert [(h.chunk.id, round(h.score, 5)) for h in x.hits] == [(h.chunk.id, round(h.score, 5)) for h in y.hits]
            assert x.answered == y.answered


def test_adding_incrementally_equals_a_full_rebuild(runner, encoder, index_dir, files, tiny_corpus, tmp_path):
    shipped = encoder.passages_embedded
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    after_pdf = encoder.passages_embedded
    run(runner, "add", str(files["docx"]), "--index", str(index_dir))
    incremental = ReportIndex.load(index_dir, encoder)
    count = {d: sum(c.doc_id == d for c in incremental.chunks) for d in ("xinzhou2024", "luliang")}
    assert after_pdf - shipped == count["xinzhou2024"]
    assert encoder.passages_embedded - after_pdf == count["luliang"]

    # The same files simply put in a corpus folder, indexed from scratch with a fresh encoder.
    folder = tmp_path / "all"
    folder.mkdir()
    for f in [*tiny_corpus.iterdir(), *files.values()]:
        (folder / f.name).write_bytes(f.read_bytes())
    docs, problems = load_corpus([folder])
    assert problems == []
    fresh = FakeEncoder()
    full = ReportIndex.build(docs, fresh)
    assert fresh.passages_embedded == len(full.chunks)
    _same_index(incremental, full)


def test_removing_equals_a_build_without_the_report(runner, encoder, index_dir, files, collection, tiny_corpus):
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    embedded = encoder.passages_embedded
    out = run(runner, "remove", "xinzhou2024", "--index", str(index_dir)).stdout
    assert "removed xinzhou2024" in out and "embedded 0 passages" in out
    assert encoder.passages_embedded == embedded  # removing embeds nothing
    assert not collection.added_path("xinzhou2024").exists()
    after = ReportIndex.load(index_dir, encoder)
    docs, _ = load_corpus([tiny_corpus])
    _same_index(after, ReportIndex.build(docs, FakeEncoder()))
    # neither its vectors nor its keywords are left: no passage of it is found
    assert all(p["doc_id"] != "xinzhou2024" for p in ask_json(runner, index_dir, "乡村教师生活补助")["passages"])
    assert after.keyword.scores(["乡村教师"]).max() == 0


def test_removing_a_shipped_report_lists_it_and_the_loader_leaves_it_out(runner, encoder, index_dir, collection, tiny_corpus):
    out = run(runner, "remove", "b", "--index", str(index_dir)).stdout
    assert "removed b (a shipped report" in out
    assert json.loads(collection.removed_path.read_text()) == ["b"]
    assert (tiny_corpus / "b.txt").exists()  # the shipped file stays
    up = run(runner, "index", "--if-stale", "--index", str(index_dir))
    assert "up to date" in up.stderr
    ids = [json.loads(line)["id"] for line in run(runner, "list", "--json", "--index", str(index_dir)).stdout.splitlines()]
    assert ids == ["a", "c"]
    docs, _ = load_corpus([tiny_corpus], exclude={"b"})
    _same_index(ReportIndex.load(index_dir, encoder), ReportIndex.build(docs, FakeEncoder()))
    again = run(runner, "remove", "b", "--index", str(index_dir), code=1)
    assert "already removed" in again.stderr


def test_added_reports_survive_index_if_stale_and_a_rebuild(runner, encoder, index_dir, files, tmp_path):
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    embedded = encoder.passages_embedded
    assert "up to date" in run(runner, "index", "--if-stale", "--index", str(index_dir)).stderr
    assert encoder.passages_embedded == embedded
    other = tmp_path / "fresh-index"
    log = run(runner, "index", "--index", str(other)).stderr
    assert "indexed 4 documents" in log
    assert "xinzhou2024" in ReportIndex.load(other, encoder).docs
    # an explicit --corpus means exactly that corpus
    assert "indexed 1 documents" in run(runner, "index", "--corpus", str(files["pdf"]), "--index", str(other)).stderr


def test_replace_updates_an_added_report_embedding_only_changed_passages(runner, encoder, index_dir, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("长治市教育简报\n全市新建幼儿园6所。\n" + "课后服务覆盖全部义务教育学校。" * 90, encoding="utf-8")
    run(runner, "add", str(f), "--index", str(index_dir))
    again = run(runner, "add", str(f), "--index", str(index_dir), code=1)
    assert "--replace" in again.stderr
    f.write_text("长治市教育简报\n全市新建幼儿园8所。\n" + "课后服务覆盖全部义务教育学校。" * 90, encoding="utf-8")
    before = encoder.passages_embedded
    run(runner, "add", str(f), "--replace", "--index", str(index_dir))
    idx = ReportIndex.load(index_dir, encoder)
    assert "8所" in idx.docs["notes"].text
    assert 0 < encoder.passages_embedded - before < sum(c.doc_id == "notes" for c in idx.chunks)


# --------------------------------------------------------------------------- refusals


def test_files_without_usable_text_are_refused_and_nothing_changes(runner, encoder, index_dir, collection, tmp_path):
    from reportlab.pdfgen import canvas

    scan = tmp_path / "scan.pdf"
    c = canvas.Canvas(str(scan))
    c.rect(10, 10, 100, 100, fill=1)
    c.showPage()
    c.save()
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "menu.html").write_text("<html><body><nav>首页 新闻</nav><script>x()</script></body></html>", encoding="utf-8")
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    before = (index_dir / "CURRENT").read_text()
    for name, why in [
        ("scan.pdf", "no text layer"),
        ("empty.txt", "no usable text"),
        ("menu.html", "no usable text"),
        ("old.doc", "unsupported format"),
    ]:
        result = run(runner, "add", str(tmp_path / name), "--index", str(index_dir), code=1)
        assert name in result.stderr and why in result.stderr, result.stderr
        assert "Traceback" not in result.output
    assert (index_dir / "CURRENT").read_text() == before
    assert not collection.added_dir.exists() or not list(collection.added_dir.iterdir())


def test_one_bad_file_refuses_the_whole_add(runner, encoder, index_dir, files, collection, tmp_path):
    (tmp_path / "empty.txt").write_text(" \n", encoding="utf-8")
    result = run(runner, "add", str(files["pdf"]), str(tmp_path / "empty.txt"), "--index", str(index_dir), code=1)
    assert "empty.txt" in result.stderr
    assert not collection.added_path("xinzhou2024").exists()


def test_ids_and_texts_already_indexed_are_refused(runner, encoder, index_dir, tiny_corpus, tmp_path, files):
    clash = tmp_path / "a.txt"  # the id of a shipped report
    clash.write_text("另一份报告的正文。", encoding="utf-8")
    result = run(runner, "add", str(clash), "--index", str(index_dir), code=1)
    assert "id a is a report in" in result.stderr and "rename" in result.stderr
    copy = tmp_path / "copy-of-b.txt"  # the text of a shipped report under another name
    copy.write_bytes((tiny_corpus / "b.txt").read_bytes())
    result = run(runner, "add", str(copy), "--index", str(index_dir), code=1)
    assert "same text as the report b" in result.stderr
    two = run(runner, "add", str(files["pdf"]), str(files["docx"]), "--title", "一个标题", "--index", str(index_dir), code=1)
    assert "--title names one report" in two.stderr


def test_removing_an_unknown_report_says_how_to_find_ids(runner, encoder, index_dir):
    result = run(runner, "remove", "nope", "--index", str(index_dir), code=1)
    assert "no report with id nope" in result.stderr and "reportqa list" in result.stderr


def test_a_failed_index_update_undoes_the_add(runner, monkeypatch, encoder, index_dir, files, collection):
    def broken(*a, **k):
        raise cli_module.ReportQAError("model missing")

    monkeypatch.setattr("app.collection.update_index", broken)
    result = run(runner, "add", str(files["pdf"]), "--index", str(index_dir), code=1)
    assert "model missing" in result.stderr
    assert not collection.added_path("xinzhou2024").exists()


def test_default_collection_is_the_shipped_corpus_plus_reportqa_data(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real default_collection, with the autouse REPORTQA_DATA
    monkeypatch.setenv("REPORTQA_DATA", str(tmp_path / "data"))
    col = cli_module.default_collection()
    assert col.corpus == cli_module.project_root() / "corpus"
    assert col.added_dir == tmp_path / "data" / "added" and col.removed_path == tmp_path / "data" / "removed.json"


def test_a_broken_removed_json_is_named(collection):
    collection.removed_path.parent.mkdir(parents=True, exist_ok=True)
    collection.removed_path.write_text("{oops")
    with pytest.raises(cli_module.ReportQAError, match="removed.json"):
        collection.load()


# --------------------------------------------------------------------------- the UI panel (no browser)


def _fn(app, name):
    return next(f.fn for f in app.fns.values() if getattr(f.fn, "__name__", "") == name)


def _accordions(app) -> list[str]:
    import gradio as gr

    return [b.label for b in app.blocks.values() if isinstance(b, gr.Accordion)]


def test_ui_add_panel_makes_the_report_searchable_at_once(tiny_corpus, tmp_path, fake_encoder, make_pdf):
    from app import ui

    docs, _ = load_corpus([tiny_corpus])
    folder = tmp_path / "idx"
    index = update_index(docs, folder, fake_encoder).index
    col = Collection(tiny_corpus, tmp_path / "data")
    app = ui.create_app(index, feedback_path=tmp_path / "fb.sqlite3", collection=col, index_dir=folder)
    assert _accordions(app) == ["Add or remove reports (local use)"]
    pdf = make_pdf(tmp_path / "xinzhou2024.pdf", XINZHOU_PAGES, title="忻州市教育发展报告")
    before = fake_encoder.passages_embedded
    message, cities, reports, footer, removable = _fn(app, "on_add")(str(pdf), "", "", "", "忻州市教育局")
    n = sum(c.doc_id == "xinzhou2024" for c in app.live.index.chunks)
    assert n == 1 and message == "added 忻州市教育发展报告 (xinzhou2024): 1 passage; 1 embedded, 3 reused"
    assert fake_encoder.passages_embedded - before == n
    assert ("忻州市教育发展报告 (忻州)", "xinzhou2024") in reports["choices"]
    assert ("忻州市教育发展报告 (忻州)", "xinzhou2024") in removable["choices"]
    assert footer.startswith("4 reports")
    # the next question searches the new index
    _, history, _ = _fn(app, "respond")("新建公办幼儿园多少所", [], {}, 3, "", "")
    reply = history[-1]["content"]
    assert "忻州市教育发展报告" in reply and "p. 2" in reply and "23所" in reply
    assert ReportIndex.load(folder, fake_encoder).docs["xinzhou2024"].pages  # saved for the next start
    # a refused file leaves the index as it was, with the message shown
    (tmp_path / "empty.txt").write_text("")
    message, *_ = _fn(app, "on_add")(str(tmp_path / "empty.txt"), "", "", "", "")
    assert "empty.txt" in message and "no usable text" in message
    assert len(app.live.index.docs) == 4
    assert _fn(app, "on_add")(None, "", "", "", "")[0] == "Choose a report file first."


def test_ui_remove_takes_a_report_out_of_the_live_and_saved_index(tiny_corpus, tmp_path, fake_encoder):
    from app import ui

    docs, _ = load_corpus([tiny_corpus])
    folder = tmp_path / "idx"
    index = update_index(docs, folder, fake_encoder).index
    col = Collection(tiny_corpus, tmp_path / "data")
    app = ui.create_app(index, feedback_path=tmp_path / "fb.sqlite3", collection=col, index_dir=folder)
    victim = sorted(index.docs)[0]
    title = index.docs[victim].title
    message, cities, reports, footer, removable = _fn(app, "on_remove")(victim)
    assert message == f"removed {title} ({victim}); a shipped report, listed in {col.removed_path}; the index holds 2 reports"
    assert victim not in app.live.index.docs and victim not in {c[1] for c in removable["choices"]}
    assert footer.startswith("2 reports") and victim not in {c[1] for c in reports["choices"]}
    assert victim not in ReportIndex.load(folder, fake_encoder).docs
    # an unknown id (say, removed in another tab) is a message, and nothing changes
    message, *_ = _fn(app, "on_remove")(victim)
    assert "already removed" in message and len(app.live.index.docs) == 2
    assert _fn(app, "on_remove")(None)[0] == "Choose a report to remove first."


def test_the_server_picks_up_an_index_rebuilt_by_the_cli(runner, encoder, index_dir, files, tmp_path):
    """`reportqa add` in another process while the app serves: the next search (and page load) sees it."""
    from app import ui

    index = ReportIndex.load(index_dir, encoder)
    app = ui.create_app(index, feedback_path=tmp_path / "fb.sqlite3", index_dir=index_dir)
    app.live.check_every = 0.0
    assert app.live.get() is index  # nothing changed on disk: no reload
    result = runner.invoke(cli, ["add", str(files["pdf"]), "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    cities, reports, footer = _fn(app, "on_load")()
    assert footer.startswith("4 reports") and app.live.index is not index
    _, history, _ = _fn(app, "respond")("新建公办幼儿园多少所", [], {}, 3, "", "")
    assert "23所" in history[-1]["content"]
    # a damaged index on disk keeps the loaded one serving
    (index_dir / "CURRENT").write_text("build-missing\n")
    served = app.live.index
    assert app.live.get() is served


def test_a_reload_never_replaces_an_index_this_process_saved_meanwhile(monkeypatch, encoder, index_dir, tmp_path):
    from app import ui

    index = ReportIndex.load(index_dir, encoder)
    live = ui.LiveIndex(index, index_dir, check_every=0.0)
    (index_dir / "CURRENT").write_text("build-from-the-cli\n")  # the CLI saved another build
    mine, cli_index = object(), object()

    def load(folder, enc, *a, **kw):  # a UI addition lands while the reload reads the CLI's build
        live.swap(mine, "build-mine")
        return cli_index

    monkeypatch.setattr(ReportIndex, "load", load)
    assert live.get() is mine and live.build == "build-mine"

    def broken(folder, enc, *a, **kw):
        raise OSError("build folder deleted meanwhile")

    monkeypatch.setattr(ReportIndex, "load", broken)
    (index_dir / "CURRENT").write_text("build-next\n")
    assert live.get() is mine and live.build == "build-next"  # logged, the loaded index keeps serving


def test_index_lock_serialises_changes_to_an_index(tmp_path):
    import threading

    from app.collection import index_lock

    got = threading.Event()

    def other_process():
        with index_lock(tmp_path / "idx"):
            got.set()

    with index_lock(tmp_path / "idx"):
        t = threading.Thread(target=other_process)
        t.start()
        assert not got.wait(0.3)  # waits while the lock is held
    t.join(5)
    assert got.is_set()


def test_ui_add_panel_only_with_a_collection(tiny_index, tmp_path):
    from app import ui

    app = ui.create_app(tiny_index, feedback_path=tmp_path / "fb.sqlite3")
    assert _accordions(app) == []
    assert "on_add" not in {getattr(f.fn, "__name__", "") for f in app.fns.values()}


def test_launch_offers_the_panel_on_loopback_only_unless_allowed(monkeypatch, tiny_index, tmp_path):
    from app import ui

    seen = {}

    class Stub:
        def launch(self, **kw):
            pass

    def create_app(index, **kw):
        seen.update(kw)
        return Stub()

    monkeypatch.setattr(ui, "create_app", create_app)
    col = Collection(tmp_path, tmp_path / "data")
    for host, allow, shown in [
        ("127.0.0.1", False, True),
        ("localhost", False, True),
        ("0.0.0.0", False, False),
        ("0.0.0.0", True, True),
    ]:
        ui.launch(tiny_index, host=host, collection=col, index_dir=tmp_path / "idx", allow_add=allow)
        assert (seen["collection"] is not None) == shown, host


def test_a_report_added_about_another_city_makes_that_city_covered(fake_encoder, tiny_corpus):
    from app import search as S
    from app.records import Document

    assert S.mentioned_cities("晋城市有多少学校") == (set(), True)
    assert S.mentioned_cities("晋城市有多少学校", {"长治", "晋城"}) == ({"晋城"}, False)
    assert S.mentioned_cities("晉城市有多少學校", {"晋城"}) == ({"晋城"}, False)
    assert S.mentioned_cities("太原市有多少学校", {"晋城"}) == (set(), True)
    docs, _ = load_corpus([tiny_corpus])
    before = ReportIndex.build(docs, fake_encoder).search("晋城市教育经费投入多少")
    assert before.confidence == -1.0 and not before.answered  # a place no report covers
    jc = Document("jc", "晋城市教育简报", "全年教育经费投入68.3亿元，较上年增长6.2%。", city="晋城")
    after = ReportIndex.build([*docs, jc], fake_encoder).search("晋城市教育经费投入多少")
    assert after.hits[0].doc.id == "jc" and after.confidence > 0
