"""Adding and removing reports: `reportqa add/remove/list/index`, each index's own collection, changes as
transactions (interrupted or killed: no trace), size limits, the migration of `data/added`, incremental
updates that equal a full rebuild, and the chat's panel on the real `changes`. Fake encoder throughout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ROOT, TINY, TINY_MANIFEST, XINZHOU_PAGES, FakeEncoder, write_docx

from app import changes
from app import cli as cli_module
from app.cli import cli
from app.collection import Collection
from app.index import ReportIndex
from app.load import load_corpus

QUESTIONS = ["新建公办幼儿园多少所", "乡村教师有多少人", "义务教育巩固率", "长治市校外培训机构纳入平台管理", "课后服务惠及学生"]
LULIANG = [("h", "吕梁市教育工作总结"), "全市义务教育巩固率达到99.2%。", "PAGE", "全市专任教师2.9万人，其中骨干教师3100名。"]


@pytest.fixture
def collection(monkeypatch, tiny_corpus) -> Collection:
    """What a new index is built from: the tiny corpus (instead of the project's corpus/)."""
    col = Collection.of([tiny_corpus])
    monkeypatch.setattr(cli_module, "default_collection", lambda: col)
    return col


@pytest.fixture
def index_dir(runner, encoder, collection, tmp_path) -> Path:
    folder = tmp_path / "idx"
    run(runner, "index", "--index", str(folder))
    return folder


@pytest.fixture
def project(monkeypatch, tmp_path) -> Path:
    """A checkout of its own: <root>/corpus (the tiny corpus) and <root>/index, the default index."""
    root = tmp_path / "project"
    (root / "corpus").mkdir(parents=True)
    for name, text in TINY.items():
        (root / "corpus" / name).write_text(text, encoding="utf-8")
    (root / "corpus" / "manifest.json").write_text(TINY_MANIFEST, encoding="utf-8")
    monkeypatch.setattr("app.config.project_root", lambda: root)
    return root


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


def ids(index_dir, encoder) -> list[str]:
    return sorted(ReportIndex.load(index_dir, encoder).docs)


def state(index_dir: Path) -> tuple:
    """What a change must leave alone when it fails: the live build, its collection and its files."""
    live = ReportIndex.live_folder(index_dir)
    return (index_dir / "CURRENT").read_text(), Collection.of_index(index_dir), sorted(p.name for p in live.iterdir())


# --------------------------------------------------------------------------- add, ask, list


def test_added_pdf_is_answered_with_its_page(runner, encoder, index_dir, files):
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
    # the report is kept in the build's collection, not in $REPORTQA_DATA
    assert list(new.collection.added) == ["xinzhou2024"] and new.collection.added["xinzhou2024"]["source"] == "忻州市教育局"
    assert {"collection.json", "added.jsonl"} <= set(json.loads((ReportIndex.live_folder(index_dir) / "params.json").read_text())["files"])
    assert not (Path(os.environ["REPORTQA_DATA"]) / "added").exists()


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
    run(runner, "add", str(files["docx"]), "--title", "自定标题", "--city", "忻州", "--date", "2025-01-01", "--index", str(index_dir))
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
    # ... and rebuilding the index from its own collection gives it again, embedding nothing
    embedded = encoder.passages_embedded
    assert "indexed 5 documents" in run(runner, "index", "--index", str(index_dir)).stderr
    assert encoder.passages_embedded == embedded
    _same_index(ReportIndex.load(index_dir, encoder), full)


def test_removing_equals_a_build_without_the_report(runner, encoder, index_dir, files, tiny_corpus):
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    embedded = encoder.passages_embedded
    out = run(runner, "remove", "xinzhou2024", "--index", str(index_dir)).stdout
    assert "removed xinzhou2024" in out and "embedded 0 passages" in out
    assert encoder.passages_embedded == embedded  # removing embeds nothing
    assert Collection.of_index(index_dir).added == {}
    after = ReportIndex.load(index_dir, encoder)
    docs, _ = load_corpus([tiny_corpus])
    _same_index(after, ReportIndex.build(docs, FakeEncoder()))
    # neither its vectors nor its keywords are left: no passage of it is found
    assert all(p["doc_id"] != "xinzhou2024" for p in ask_json(runner, index_dir, "乡村教师生活补助")["passages"])
    assert after.keyword.scores(["乡村教师"]).max() == 0


def test_removing_a_report_of_the_sources_lists_it_and_corpus_brings_it_back(runner, encoder, index_dir, tiny_corpus, files):
    out = run(runner, "remove", "b", "--index", str(index_dir)).stdout
    assert "removed b (a report of the index's sources" in out
    assert Collection.of_index(index_dir).removed == ("b",)
    assert (tiny_corpus / "b.txt").exists()  # the file stays
    up = run(runner, "index", "--if-stale", "--index", str(index_dir))
    assert "up to date" in up.stderr
    ids_ = [json.loads(line)["id"] for line in run(runner, "list", "--json", "--index", str(index_dir)).stdout.splitlines()]
    assert ids_ == ["a", "c"]
    docs, _ = load_corpus([tiny_corpus], exclude={"b"})
    _same_index(ReportIndex.load(index_dir, encoder), ReportIndex.build(docs, FakeEncoder()))
    again = run(runner, "remove", "b", "--index", str(index_dir), code=1)
    assert "already removed" in again.stderr
    clash = run(runner, "add", str(tiny_corpus / "b.txt"), "--index", str(index_dir), code=1)
    assert "removed with `reportqa remove`" in clash.stderr and "reportqa index --corpus" in clash.stderr
    # --corpus sets the sources anew: the removed report is back, the added ones stay (and it says so)
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    log = run(runner, "index", "--corpus", str(tiny_corpus), "--index", str(index_dir)).stderr
    assert "kept the 1 reports added to this index (xinzhou2024)" in log and "indexed again" in log and "(b)" in log
    assert ids(index_dir, encoder) == ["a", "b", "c", "xinzhou2024"]


def test_added_reports_survive_index_if_stale_and_a_rebuild_and_belong_to_their_index(runner, encoder, index_dir, files, tmp_path):
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    embedded = encoder.passages_embedded
    assert "up to date" in run(runner, "index", "--if-stale", "--index", str(index_dir)).stderr
    assert encoder.passages_embedded == embedded
    assert "indexed 4 documents" in run(runner, "index", "--index", str(index_dir)).stderr  # a full rebuild keeps it
    assert encoder.passages_embedded == embedded
    # another, new index is built from the default sources: not with this index's reports
    other = tmp_path / "fresh-index"
    assert "indexed 3 documents" in run(runner, "index", "--index", str(other)).stderr
    assert "xinzhou2024" not in ReportIndex.load(other, encoder).docs
    # --corpus sets the sources of that index: exactly that corpus, as it has no added reports
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
    assert "8所" in idx.docs["notes"].text and "8所" in idx.collection.added["notes"]["text"]
    assert 0 < encoder.passages_embedded - before < sum(c.doc_id == "notes" for c in idx.chunks)


# --------------------------------------------------------------------------- each index its own collection (#12)


def test_a_scratch_copy_of_the_default_index_does_not_leak_into_it(runner, encoder, project, files, tmp_path):
    """#12: `add --index SCRATCH` on a copy, then `index --if-stale` on the default index."""
    default = project / "index"
    run(runner, "index")
    assert ids(default, encoder) == ["a", "b", "c"]
    scratch = tmp_path / "scratch"
    shutil.copytree(default, scratch)
    run(runner, "add", str(files["pdf"]), "--index", str(scratch))
    assert ids(scratch, encoder) == ["a", "b", "c", "xinzhou2024"]
    assert "up to date" in run(runner, "index", "--if-stale").stderr
    assert "indexed 3 documents" in run(runner, "index").stderr  # a full rebuild of the default index too
    assert ids(default, encoder) == ["a", "b", "c"] and Collection.of_index(default).added == {}
    assert not (Path(os.environ["REPORTQA_DATA"]) / "added").exists()
    # the same file added to a second scratch copy: its collection has never seen it
    second = tmp_path / "scratch2"
    shutil.copytree(default, second)
    run(runner, "add", str(files["pdf"]), "--index", str(second))
    assert ids(second, encoder) == ["a", "b", "c", "xinzhou2024"]
    # ... and a removal in one copy is its own too
    run(runner, "remove", "a", "--index", str(second))
    assert ids(scratch, encoder) == ["a", "b", "c", "xinzhou2024"] and ids(default, encoder) == ["a", "b", "c"]
    assert "indexed 4 documents" in run(runner, "index", "--index", str(scratch)).stderr


def test_a_folder_without_a_build_or_without_a_record_is_refused_with_the_fix(runner, encoder, files, tmp_path, tiny_corpus):
    empty = tmp_path / "nothing"
    result = run(runner, "add", str(files["pdf"]), "--index", str(empty), code=1)
    assert f"reportqa index --index {empty}" in result.stderr
    assert "reportqa index --index" in run(runner, "remove", "a", "--index", str(empty), code=1).stderr
    with pytest.raises(cli_module.ReportQAError, match="reportqa index --index"):
        changes.add(empty, [files["pdf"]], encoder=encoder)
    # an index saved by an older reportqa records no collection: rebuilt once, it has one
    old = tmp_path / "old"
    changes.update_index(load_corpus([tiny_corpus])[0], old, encoder)
    result = run(runner, "add", str(files["pdf"]), "--index", str(old), code=1)
    assert "records no collection" in result.stderr and f"reportqa index --index {old}" in result.stderr
    run(runner, "index", "--corpus", str(tiny_corpus), "--index", str(old))
    run(runner, "add", str(files["pdf"]), "--index", str(old))
    assert ids(old, encoder) == ["a", "b", "c", "xinzhou2024"]


def test_a_damaged_collection_record_is_refused_and_nothing_is_lost(runner, encoder, index_dir, files):
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    added = ReportIndex.live_folder(index_dir) / "added.jsonl"
    good = added.read_bytes()
    added.write_bytes(good[:-20])
    for args in (["index"], ["add", str(files["docx"])], ["remove", "a"]):
        result = run(runner, *args, "--index", str(index_dir), code=1)
        assert "added.jsonl is missing or corrupted" in result.stderr, args
    assert "--corpus PATH" in result.stderr
    added.write_bytes(good)  # restored: everything is still there
    assert ids(index_dir, encoder) == ["a", "b", "c", "xinzhou2024"]


# --------------------------------------------------------------------------- a change is a transaction (#12)


class Interrupting(FakeEncoder):
    """Ctrl-C halfway through embedding a batch."""

    def passages(self, texts, progress=None):
        if progress:
            progress(max(1, len(texts) // 2))
        raise KeyboardInterrupt


def test_an_add_interrupted_during_its_embedding_leaves_no_trace(runner, encoder, index_dir, files, monkeypatch):
    before = state(index_dir)
    served = ReportIndex.load(index_dir, encoder)
    with pytest.raises(KeyboardInterrupt):
        changes.add(index_dir, [files["pdf"]], encoder=Interrupting(), old=served)
    assert state(index_dir) == before and sorted(served.docs) == ["a", "b", "c"]
    # the CLI the same way (the `encoder` fixture is what every command embeds with)
    monkeypatch.setattr(cli_module, "make_encoder", Interrupting)
    run(runner, "add", str(files["docx"]), "--index", str(index_dir), code=1)  # click: "Aborted!"
    assert state(index_dir) == before
    monkeypatch.setattr(cli_module, "make_encoder", lambda: encoder)
    embedded = encoder.passages_embedded
    assert "up to date" in run(runner, "index", "--if-stale", "--index", str(index_dir)).stderr
    assert encoder.passages_embedded == embedded and ids(index_dir, encoder) == ["a", "b", "c"]
    # and nothing stands in the way of adding it properly
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    assert ids(index_dir, encoder) == ["a", "b", "c", "xinzhou2024"]


WRITE = Collection.write


def write_then_interrupt(self, folder):
    """`Collection.write` interrupted once it wrote: the build folder is half-written (no params.json)."""
    WRITE(self, folder)
    raise KeyboardInterrupt


def test_an_add_interrupted_while_saving_leaves_the_previous_build_and_the_next_save_cleans_up(runner, encoder, index_dir, files, monkeypatch):
    before = state(index_dir)
    monkeypatch.setattr(Collection, "write", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        changes.add(index_dir, [files["pdf"]], encoder=encoder)
    monkeypatch.setattr(Collection, "write", WRITE)
    assert state(index_dir) == before and list(index_dir.glob(".build-*.tmp"))  # half-written, never live
    assert "up to date" in run(runner, "index", "--if-stale", "--index", str(index_dir)).stderr
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    assert not list(index_dir.glob(".build-*.tmp")) and len(list(index_dir.glob("build-*"))) == 1


def test_a_failed_index_update_changes_nothing(runner, monkeypatch, encoder, index_dir, files):
    before = state(index_dir)

    def broken(*a, **k):
        raise cli_module.ReportQAError("model missing")

    monkeypatch.setattr(ReportIndex, "build", broken)
    result = run(runner, "add", str(files["pdf"]), "--index", str(index_dir), code=1)
    assert "model missing" in result.stderr
    assert "model missing" in run(runner, "remove", "a", "--index", str(index_dir), code=1).stderr
    assert state(index_dir) == before


KILLED_ADD = """
import os, sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from conftest import FakeEncoder
from app import changes
from app.collection import Collection

marker, phase = Path(sys.argv[1]), sys.argv[2]

def stop_here():
    marker.write_text("now")
    time.sleep(60)  # killed meanwhile

class Slow(FakeEncoder):
    def passages(self, texts, progress=None):
        stop_here()

if phase == "saving":
    write = Collection.write
    def write_and_stop(self, folder):
        write(self, folder)
        stop_here()
    Collection.write = write_and_stop
changes.add(Path(sys.argv[3]), [Path(sys.argv[4])], encoder=Slow() if phase == "embedding" else FakeEncoder())
"""


@pytest.mark.parametrize("phase", ["embedding", "saving"])
def test_an_add_killed_with_sigkill_leaves_the_previous_build_live(phase, runner, encoder, index_dir, files, tmp_path):
    before = state(index_dir)
    marker = tmp_path / "marker"
    script = KILLED_ADD.format(tests=str(ROOT / "tests"))
    proc = subprocess.Popen([sys.executable, "-c", script, str(marker), phase, str(index_dir), str(files["pdf"])], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, f"the add ended before reaching {phase}"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert state(index_dir) == before
    assert bool(list(index_dir.glob(".build-*.tmp"))) == (phase == "saving")
    embedded = encoder.passages_embedded
    assert "up to date" in run(runner, "index", "--if-stale", "--index", str(index_dir)).stderr  # the lock died with it
    assert encoder.passages_embedded == embedded
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    assert ids(index_dir, encoder) == ["a", "b", "c", "xinzhou2024"] and not list(index_dir.glob(".build-*.tmp"))


def test_index_lock_serialises_changes_to_an_index(tmp_path):
    import threading

    got = threading.Event()

    def other_process():
        with changes.index_lock(tmp_path / "idx"):
            got.set()

    with changes.index_lock(tmp_path / "idx"):
        t = threading.Thread(target=other_process)
        t.start()
        assert not got.wait(0.3)  # waits while the lock is held
    t.join(5)
    assert got.is_set()


# --------------------------------------------------------------------------- size limits (#12)


def bomb_docx(path: Path, paragraphs: int) -> Path:
    """A valid .docx whose document.xml repeats one paragraph: tiny zipped, huge unzipped."""
    write_docx(path, ["吕梁市教育工作总结"])
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    body = parts["word/document.xml"].decode()
    cut = body.index("<w:sectPr")
    para = "<w:p><w:r><w:t>全市义务教育巩固率达到99.2%，专任教师2.9万人。</w:t></w:r></w:p>"
    parts["word/document.xml"] = (body[:cut] + para * paragraphs + body[cut:]).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def test_a_docx_that_expands_like_a_zip_bomb_is_refused_before_it_is_parsed(runner, encoder, index_dir, tmp_path, monkeypatch):
    bomb = bomb_docx(tmp_path / "bomb.docx", 120_000)  # ~9 MB of XML, 3.6 million characters, ~30 KB zipped
    assert bomb.stat().st_size < 100_000
    before = state(index_dir)

    def parse(*a, **k):
        raise AssertionError("parsed")

    import docx

    real = docx.Document
    monkeypatch.setattr(docx, "Document", parse)
    result = run(runner, "add", str(bomb), "--index", str(index_dir), code=1)
    assert "bomb.docx: word/document.xml expands" in result.stderr and "over the limit of 100 times" in result.stderr
    assert "reportqa add --max-ratio" in result.stderr and "Traceback" not in result.output
    assert state(index_dir) == before
    monkeypatch.setattr(docx, "Document", real)
    # trusted past the ratio, a long one is still over the length limit: refused once that much is read
    long = bomb_docx(tmp_path / "long.docx", 20_000)  # 460,000 characters
    result = run(runner, "add", str(long), "--max-ratio", "100000", "--max-chars", "200000", "--index", str(index_dir), code=1)
    assert "long.docx: more than 200,0" in result.stderr and "over the limit of 200,000" in result.stderr
    assert "reportqa add --max-chars N" in result.stderr
    assert state(index_dir) == before and encoder.passages_embedded == 3


def test_an_over_long_text_is_refused_naming_the_limit_and_the_option(runner, encoder, index_dir, tmp_path):
    before = state(index_dir)
    long = tmp_path / "long.txt"
    long.write_text("长治市教育简报\n" + "课后服务覆盖全部义务教育学校。" * 66_667, encoding="utf-8")  # 1,000,013 characters
    result = run(runner, "add", str(long), "--index", str(index_dir), code=1)
    assert "long.txt: 1,000,013 characters of text, over the limit of 1,000,000" in result.stderr
    assert "reportqa add --max-chars N" in result.stderr
    # the limit is the option's: a shorter report is refused under a lower one, and accepted under a higher one
    short = tmp_path / "short.txt"
    short.write_text("长治市教育简报\n" + "课后服务覆盖全部义务教育学校。" * 200, encoding="utf-8")
    assert "over the limit of 2,000" in run(runner, "add", str(short), "--max-chars", "2000", "--index", str(index_dir), code=1).stderr
    lines = tmp_path / "long.jsonl"
    lines.write_text(json.dumps({"id": "j", "title": "t", "pages": ["教育" * 1500] * 2}, ensure_ascii=False) + "\n", encoding="utf-8")
    result = run(runner, "add", str(lines), "--max-chars", "5000", "--index", str(index_dir), code=1)
    assert "long.jsonl:1: 6,000 characters" in result.stderr
    assert state(index_dir) == before and encoder.passages_embedded == 3  # nothing read was embedded
    run(runner, "add", str(short), "--max-chars", "5000", "--index", str(index_dir))
    assert "short" in ReportIndex.load(index_dir, encoder).docs


# --------------------------------------------------------------------------- refusals


def test_files_without_usable_text_are_refused_and_nothing_changes(runner, encoder, index_dir, tmp_path):
    from reportlab.pdfgen import canvas

    scan = tmp_path / "scan.pdf"
    c = canvas.Canvas(str(scan))
    c.rect(10, 10, 100, 100, fill=1)
    c.showPage()
    c.save()
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "menu.html").write_text("<html><body><nav>首页 新闻</nav><script>x()</script></body></html>", encoding="utf-8")
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")
    before = state(index_dir)
    for name, why in [
        ("scan.pdf", "no text layer"),
        ("empty.txt", "no usable text"),
        ("menu.html", "no usable text"),
        ("old.doc", "unsupported format"),
        ("broken.docx", "not a readable .docx"),
    ]:
        result = run(runner, "add", str(tmp_path / name), "--index", str(index_dir), code=1)
        assert name in result.stderr and why in result.stderr, result.stderr
        assert "Traceback" not in result.output
    assert state(index_dir) == before


def test_one_bad_file_refuses_the_whole_add(runner, encoder, index_dir, files, tmp_path):
    (tmp_path / "empty.txt").write_text(" \n", encoding="utf-8")
    before = state(index_dir)
    result = run(runner, "add", str(files["pdf"]), str(tmp_path / "empty.txt"), "--index", str(index_dir), code=1)
    assert "empty.txt" in result.stderr
    assert state(index_dir) == before


def test_ids_and_texts_already_indexed_are_refused(runner, encoder, index_dir, tiny_corpus, tmp_path, files):
    clash = tmp_path / "a.txt"  # the id of a report of the sources
    clash.write_text("另一份报告的正文。", encoding="utf-8")
    result = run(runner, "add", str(clash), "--index", str(index_dir), code=1)
    assert "id a is a report in" in result.stderr and "rename" in result.stderr
    copy = tmp_path / "copy-of-b.txt"  # the text of a report of the sources under another name
    copy.write_bytes((tiny_corpus / "b.txt").read_bytes())
    result = run(runner, "add", str(copy), "--index", str(index_dir), code=1)
    assert "same text as the report b" in result.stderr
    two = run(runner, "add", str(files["pdf"]), str(files["docx"]), "--title", "一个标题", "--index", str(index_dir), code=1)
    assert "--title names one report" in two.stderr


def test_removing_an_unknown_report_says_how_to_find_ids(runner, encoder, index_dir):
    result = run(runner, "remove", "nope", "--index", str(index_dir), code=1)
    assert "no report with id nope" in result.stderr and "reportqa list" in result.stderr


def test_default_collection_is_the_project_corpus():
    col = cli_module.default_collection()
    assert col == Collection.of([ROOT / "corpus"]) and col.sources == (str(ROOT / "corpus"),)


# --------------------------------------------------------------------------- data/added before round 2 (#12)


def legacy_default_index(project: Path, data: Path, encoder, files) -> None:
    """What an older reportqa left: reports in data/added and data/removed.json, and an index
    folder built from corpus/ plus those, recording no collection."""
    (data / "added").mkdir(parents=True)
    for f in (files["pdf"], files["docx"]):
        (p,) = Collection().prepare([f])
        (data / "added" / f"{p.doc.id}.jsonl").write_text(json.dumps(p.record, ensure_ascii=False) + "\n", encoding="utf-8")
    (data / "removed.json").write_text('["b"]\n', encoding="utf-8")
    (data / "feedback.sqlite3").write_bytes(b"votes")
    docs, problems = load_corpus([project / "corpus", data / "added"], exclude={"b"})
    assert not problems
    changes.update_index(docs, project / "index", encoder)


def test_legacy_added_reports_and_removals_move_into_the_default_index_once(runner, encoder, project, files):
    data = Path(os.environ["REPORTQA_DATA"])
    legacy_default_index(project, data, encoder, files)
    default = project / "index"
    embedded = encoder.passages_embedded
    log = run(runner, "index", "--if-stale").stderr
    assert "moved 2 reports added before (luliang, xinzhou2024) and 1 removed (b)" in log
    assert "up to date" in log and encoder.passages_embedded == embedded  # nothing embedded again
    col = Collection.of_index(default)
    assert sorted(col.added) == ["luliang", "xinzhou2024"] and col.removed == ("b",)
    assert col.sources == (str(project / "corpus"),)
    assert ids(default, encoder) == ["a", "c", "luliang", "xinzhou2024"]
    # the old files are moved aside, not deleted; feedback stays where it is
    assert not (data / "added").exists() and not (data / "removed.json").exists()
    (kept,) = data.glob("added.migrated-*")
    assert sorted(p.name for p in kept.iterdir()) == ["luliang.jsonl", "xinzhou2024.jsonl"]
    assert len(list(data.glob("removed.migrated-*.json"))) == 1 and (data / "feedback.sqlite3").read_bytes() == b"votes"
    # once: the next commands find nothing to move
    assert "moved" not in run(runner, "index", "--if-stale").stderr
    run(runner, "remove", "luliang")
    assert ids(default, encoder) == ["a", "c", "xinzhou2024"]


def test_migration_is_for_the_default_index_only_and_happens_with_add_remove_and_serve(runner, encoder, project, files, tmp_path, monkeypatch):
    data = Path(os.environ["REPORTQA_DATA"])
    legacy_default_index(project, data, encoder, files)
    other = tmp_path / "other"
    run(runner, "index", "--index", str(other))
    run(runner, "remove", "a", "--index", str(other))
    assert (data / "added").is_dir() and ids(other, encoder) == ["b", "c"]  # another index: nothing moved
    # `serve` migrates before serving
    served = {}
    monkeypatch.setattr("app.ui.launch", lambda index, **kw: served.update(index=index))
    log = run(runner, "serve").stderr
    assert "moved 2 reports added before" in log and sorted(served["index"].docs) == ["a", "c", "luliang", "xinzhou2024"]
    assert "moved" not in run(runner, "add", str(tmp_path / "incoming" / "xinzhou2024.pdf"), code=1).stderr


def test_unreadable_legacy_files_are_named_and_kept(runner, encoder, project, files):
    data = Path(os.environ["REPORTQA_DATA"])
    run(runner, "index")
    (data / "added").mkdir(parents=True)
    (p,) = Collection().prepare([files["docx"]])
    (data / "added" / "luliang.jsonl").write_text(json.dumps(p.record, ensure_ascii=False) + "\n", encoding="utf-8")
    (data / "added" / "bad.jsonl").write_text("{oops\n", encoding="utf-8")
    (data / "removed.json").write_text("{not a list", encoding="utf-8")
    log = run(runner, "add", str(files["pdf"])).stderr
    assert "moved 1 reports added before (luliang)" in log
    assert "warning:" in log and "bad.jsonl: not migrated" in log and "removed.json: not migrated" in log
    (kept,) = data.glob("added.migrated-*")
    assert (kept / "bad.jsonl").read_text() == "{oops\n" and next(data.glob("removed.migrated-*.json")).read_text() == "{not a list"
    assert ids(project / "index", encoder) == ["a", "b", "c", "luliang", "xinzhou2024"]


def test_an_interrupted_migration_leaves_the_old_files_and_runs_again(runner, encoder, project, files, monkeypatch):
    data = Path(os.environ["REPORTQA_DATA"])
    legacy_default_index(project, data, encoder, files)
    monkeypatch.setattr(Collection, "write", write_then_interrupt)
    run(runner, "index", "--if-stale", code=1)
    assert (data / "added").is_dir() and Collection.of_index(project / "index") is None
    monkeypatch.setattr(Collection, "write", WRITE)
    assert "moved 2 reports added before" in run(runner, "index", "--if-stale").stderr


# --------------------------------------------------------------------------- the chat's panel on the real changes


def test_the_chat_panel_adds_and_removes_through_changes(tiny_corpus, tmp_path, fake_encoder, make_pdf):
    from app import ui

    folder = tmp_path / "idx"
    index = changes.build_from([tiny_corpus], folder, fake_encoder).index
    chat = ui.ChatUI(index, feedback_path=tmp_path / "fb.sqlite3", index_dir=folder, add_panel=True)
    pdf = make_pdf(tmp_path / "xinzhou2024.pdf", XINZHOU_PAGES, title="忻州市教育发展报告")
    before = fake_encoder.passages_embedded
    message, cities, reports, footer, removable = chat.on_add(str(pdf), "", "", "", "忻州市教育局")
    n = sum(c.doc_id == "xinzhou2024" for c in chat.live.index.chunks)
    assert message.startswith("Added ‘忻州市教育发展报告’") and fake_encoder.passages_embedded - before == n
    assert ("忻州市教育发展报告 (忻州) · added by you", "xinzhou2024") in removable["choices"] and footer.startswith("4 reports")
    saved = ReportIndex.load(folder, fake_encoder)
    assert saved.docs["xinzhou2024"].pages and list(saved.collection.added) == ["xinzhou2024"]
    # a refused file leaves the index as it was, with the message shown
    (tmp_path / "empty.txt").write_text("")
    message, *_ = chat.on_add(str(tmp_path / "empty.txt"), "", "", "", "")
    assert "empty.txt" in message and "no usable text" in message and len(chat.live.index.docs) == 4
    message, *_ = chat.on_remove("a")
    assert message.startswith("‘报告甲’ is a shipped report: it is no longer searched") and "a" not in chat.live.index.docs
    assert Collection.of_index(folder).removed == ("a",) and "a" not in ReportIndex.load(folder, fake_encoder).docs
    assert "already removed" in chat.on_remove("a")[0] and len(chat.live.index.docs) == 3


def test_the_server_picks_up_an_index_rebuilt_by_the_cli(runner, encoder, index_dir, files, tmp_path):
    """`reportqa add` in another process while the app serves: the next search (and page load) sees it."""
    from app import ui

    index = ReportIndex.load(index_dir, encoder)
    chat = ui.ChatUI(index, feedback_path=tmp_path / "fb.sqlite3", index_dir=index_dir)
    chat.live.check_every = 0.0
    assert chat.live.get() is index  # nothing changed on disk: no reload
    run(runner, "add", str(files["pdf"]), "--index", str(index_dir))
    cities, reports, footer = chat.on_load()
    assert footer.startswith("4 reports") and chat.live.index is not index
    _, history, _ = chat.respond("新建公办幼儿园多少所", [], {}, 3, "", "")
    assert "23所" in history[-1]["content"]
    # a damaged index on disk keeps the loaded one serving
    (index_dir / "CURRENT").write_text("build-missing\n")
    served = chat.live.index
    assert chat.live.get() is served


def test_a_reload_never_replaces_an_index_this_process_saved_meanwhile(monkeypatch, encoder, index_dir):
    from app.live import LiveIndex

    index = ReportIndex.load(index_dir, encoder)
    live = LiveIndex(index, index_dir, check_every=0.0)
    (index_dir / "CURRENT").write_text("build-from-the-cli\n")  # the CLI saved another build
    mine, cli_index = SimpleNamespace(encoder=encoder, name="mine"), SimpleNamespace(encoder=encoder, name="cli")

    def load(folder, enc, *a, **kw):  # a UI addition lands while the reload reads the CLI's build
        (index_dir / "CURRENT").write_text("build-mine\n")  # saved, as ReportIndex.save does, then served
        live.swap(mine, "build-mine")
        return cli_index

    monkeypatch.setattr(ReportIndex, "load", load)
    assert live.get() is mine and live.current() == (mine, index_dir / "build-mine")

    tried = []

    def broken(folder, enc, *a, **kw):
        tried.append(folder)
        raise OSError("build folder deleted meanwhile")

    monkeypatch.setattr(ReportIndex, "load", broken)
    (index_dir / "CURRENT").write_text("build-next\n")
    assert live.get() is mine  # logged, the loaded index keeps serving
    # still paired with the build it came from (where the report view finds its kept PDFs), not retried
    assert live.current() == (mine, index_dir / "build-mine") and len(tried) == 1


def test_the_live_index_and_its_build_folder_are_read_together(encoder, index_dir):
    from app.live import LiveIndex

    index = ReportIndex.load(index_dir, encoder)
    live = LiveIndex(index, index_dir, check_every=0.0)
    assert live.current() == (index, ReportIndex.live_folder(index_dir))
    mine, get = SimpleNamespace(encoder=encoder, name="mine"), live.get

    def get_then_swapped():  # a change from the UI lands right after the index is looked up
        found = get()
        live.swap(mine, "build-mine")
        return found

    live.get = get_then_swapped
    assert live.current() == (mine, index_dir / "build-mine")  # never (index, build-mine)
    assert LiveIndex(index).current() == (index, None)  # no folder: no build folder either


def test_a_report_added_about_another_city_makes_that_city_covered(fake_encoder, tiny_corpus):
    from app import query as S
    from app.records import Document

    assert S.mentioned_cities("晋城市有多少学校") == (set(), True)
    assert S.mentioned_cities("晋城市有多少学校", {"长治", "晋城"}) == ({"晋城"}, False)
    assert S.mentioned_cities("晉城市有多少學校", {"晋城"}) == ({"晋城"}, False)
    assert S.mentioned_cities("太原市有多少学校", {"晋城"}) == (set(), True)
    docs, _ = load_corpus([tiny_corpus])
    before = ReportIndex.build(docs, fake_encoder).search("晋城市教育经费投入多少")
    assert before.confidence <= 0.0 and not before.answered  # a place no report covers
    jc = Document("jc", "晋城市教育简报", "全年教育经费投入68.3亿元，较上年增长6.2%。", city="晋城")
    after = ReportIndex.build([*docs, jc], fake_encoder).search("晋城市教育经费投入多少")
    assert after.hits[0].doc.id == "jc" and after.confidence > 0
