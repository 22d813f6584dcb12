"""Shared fixtures: a deterministic fake encoder and tiny corpora for unit tests;
one real e5-small model per session for the integration tests."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- shared helpers
# Test modules never import each other: what several of them need lives here (`from conftest import ...`).

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ALLOWED_TAGS = {"div", "p", "b", "mark", "ol", "li", "span", "blockquote", "details", "summary", "strong", "a"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call_ask(server: int | str, data: list, endpoint: str = "ask", headers: dict | None = None) -> tuple[str, object]:
    """A Gradio endpoint of the chat server (`ask`, `ask_followup`) over Gradio's REST protocol, sent as
    raw JSON (so lone surrogates travel as `\\ud83d`): ("complete" or "error", its payload). `server`:
    a port on 127.0.0.1, or a base URL."""
    import json

    import httpx

    root = server if isinstance(server, str) else f"http://127.0.0.1:{server}"
    base = f"{root}/gradio_api/call/{endpoint}"
    with httpx.Client(timeout=60) as c:
        r = c.post(base, content=json.dumps({"data": data}), headers={"content-type": "application/json", **(headers or {})})
        assert r.status_code == 200, r.text
        body = c.get(f"{base}/{r.json()['event_id']}").text
    assert "Traceback" not in body
    for block in body.split("\n\n"):
        event, _, payload = block.strip().partition("\ndata:")
        if event in ("event: complete", "event: error"):
            return event.removeprefix("event: "), json.loads(payload)
    raise AssertionError(f"no result: {body[-300:]!r}")


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: install it with `apt-get install chromium fonts-noto-cjk` to run the browser tests")


class Tags(HTMLParser):
    """Every start tag and attribute of a piece of HTML, plus its text."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


# What the model tests embed: questions and passages in both scripts, English, edge cases.
STRINGS = [
    "长治市有多少所校外培训机构纳入了全国平台管理？",
    "忻州學前教育毛入園率是多少",
    "How many full-time teachers does Lüliang have?",
    "全市现有在校生598764人，教职工62192人，专任教师49990人。",
    "義務教育凈入學率達到99.9%，鞏固率持續提升。",
    "ＡＢＣ１２３全角字符和全角标点！？",
    "教育是国之大计、党之大计。",
    "Hello, world!",
    "2024年全市建设普惠性幼儿园6所",
    "課後服務惠及學校481所、學生31萬余名",
    "The quick brown fox jumps over the lazy dog.",
    "「雙減」政策落地見效",
    "专任教师49990人",
    "What is the preschool enrolment rate in Xinzhou?",
    "培训机构……监管平台——综合服务",
    "數字化轉型：智慧教育平台建設",
    "e5 model test 測試 测试",
    "100%",
    "（一）加强党的领导",
    "Changzhi 长治 長治",
    "校外教育培训监管与服务综合平台",
    "吕梁市教育局认真贯彻市委决策部署",
    "☆★◎ symbols ①②③ ℃ ×÷",
    "Ünïcödé naïve café, 3.14159",
]


def unit(x) -> np.ndarray:
    """Rows scaled to unit length (float64)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class FakeEncoder:
    """Bag of character bigrams hashed into 64 dimensions: similar text, similar vector."""

    name = "fake-bigram-64"
    dim = 64

    def __init__(self):
        self.calls = 0
        self.passages_embedded = 0
        self.sentences_embedded = 0

    def _vec(self, text: str) -> np.ndarray:
        from app.textnorm import normalise

        t = re.sub(r"\W+", "", normalise(text))
        v = np.zeros(self.dim, np.float32)
        for i in range(max(len(t) - 1, 1)):
            h = int(hashlib.md5(t[i : i + 2].encode()).hexdigest()[:8], 16)
            v[h % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def queries(self, texts):
        self.calls += 1
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def sentences(self, texts, progress=None):
        """The passages' sentences, counted apart from the passages."""
        self.sentences_embedded += len(texts)
        out = np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        if progress:
            progress(len(texts))
        return out

    def passages(self, texts, progress=None):
        self.calls += 1
        self.passages_embedded += len(texts)
        out = np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        if progress:
            progress(len(texts))
        return out


TINY = {
    "a.txt": "我市全市188所校外培训机构全部纳入“全国校外教育培训监管与服务综合平台”管理。\n2024年全市建设普惠性幼儿园6所。",
    "b.txt": "全市192所培训机构全部纳入平台管理。\n课后服务惠及学校481所、学生31万余名。",
    "c.txt": "目前,全市學前教育毛入園率達到96.7%,義務教育凈入學率達到99.9%。",
}
TINY_MANIFEST = (
    '{"a.txt": {"title": "报告甲", "city": "长治", "source": "甲报", "date": "2024-01-01"},'
    ' "b.txt": {"title": "报告乙", "city": "长治", "source": "乙报"},'
    ' "c.txt": {"title": "報告丙", "city": "忻州", "script": "traditional"}}'
)


@pytest.fixture
def fake_encoder():
    return FakeEncoder()


@pytest.fixture
def encoder(monkeypatch, fake_encoder):
    """Every CLI command gets the same fake encoder: counting what it embeds."""
    from app import cli as cli_module

    monkeypatch.setattr(cli_module, "make_encoder", lambda: fake_encoder)
    return fake_encoder


@pytest.fixture
def runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in TINY.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "manifest.json").write_text(TINY_MANIFEST, encoding="utf-8")
    return folder


@pytest.fixture
def tiny_index(tiny_corpus, fake_encoder):
    from app.index import ReportIndex
    from app.load import load_corpus

    docs, problems = load_corpus([tiny_corpus])
    assert not problems
    index = ReportIndex.build(docs, fake_encoder)
    # The hand-set path: the shipped model reads the real e5's similarities, not the fake encoder's
    # (tests/test_trust.py gives the tiny index a model of its own).
    index.trust = None
    return index


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Nothing a test does lands in the user's folders; the real model cache is shared."""
    monkeypatch.setenv("REPORTQA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("REPORTQA_CACHE", os.environ.get("REPORTQA_CACHE", str(Path.home() / ".cache" / "reportqa")))


@pytest.fixture(scope="session")
def real_encoder():
    """The real e5-small, dequantised once into the shared cache and loaded once per session."""
    from app.config import Config
    from app.model import Embedder

    enc = Embedder(Config.from_env(os.environ).models)
    enc.model  # noqa: B018 - load now, once
    return enc


@pytest.fixture(scope="session")
def real_index(real_encoder, tmp_path_factory):
    """The five reports indexed with the real model (vectors reused from the project index when present)."""
    from app.changes import build_from

    folder = tmp_path_factory.mktemp("index")
    project = ROOT / "index"
    if (project / "CURRENT").exists():
        import shutil

        shutil.copytree(project, folder, dirs_exist_ok=True)
    return build_from([ROOT / "corpus"], folder, real_encoder, if_stale=True).index


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance (two CPUs) for the session: starting one takes about 3 s. The workers
    unpickle the test encoders by module name and import this worktree's `app`: both folders go on
    their path."""
    try:
        import ray
    except ImportError:
        pytest.skip("ray is not installed: pip install 'reportqa[ray]'")
    path = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


# --------------------------------------------------------------------------- PDF and DOCX made on the fly

XINZHOU_PAGES = [
    ["忻州市教育局", "忻州市教育发展报告", "一、总体情况", "全市共有各级各类学校1268所，在校学生42.6万人。", "- 1 -"],
    ["忻州市教育局", "二、学前教育", "全市新建公办幼儿园23所，新增学位6900个。", "- 2 -"],
    ["忻州市教育局", "三、教师队伍", "全市乡村教师达到1.2万人，享受乡村教师生活补助。", "- 3 -"],
]


def write_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    """A PDF with a Chinese text layer, one list of lines a page (reportlab's built-in CID font: no font file)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    if title:
        c.setTitle(title)
    for lines in pages:
        c.setFont("STSong-Light", 12)
        for i, line in enumerate(lines):
            c.drawString(50, 800 - 22 * i, line)
        c.showPage()
    c.save()
    return path


def write_docx(path: Path, blocks: list, title: str = "", created=None) -> Path:
    """A .docx: each block a paragraph (str), a heading (("h", text)), a page break ("PAGE") or a table (list of rows)."""
    import docx

    d = docx.Document()
    d.core_properties.title = title
    if created is not None:
        d.core_properties.created = created
    for b in blocks:
        if b == "PAGE":
            d.add_page_break()
        elif isinstance(b, tuple):
            d.add_heading(b[1], 1)
        elif isinstance(b, list):
            table = d.add_table(rows=len(b), cols=len(b[0]))
            for r, row in enumerate(b):
                for col, text in enumerate(row):
                    table.cell(r, col).text = text
        else:
            d.add_paragraph(b)
    d.save(str(path))
    return path


@pytest.fixture
def make_pdf():
    return write_pdf


@pytest.fixture
def make_docx():
    return write_docx


def tiny_models(seed: int = 0):
    """A ranker and an answerability model fitted on random rows of the right widths."""
    import lightgbm as lgb

    from app import features as FT

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, len(FT.FEATURES)))
    y = (X[:, 0] > 0).astype(int)  # the fused score decides
    params = {"objective": "lambdarank", "num_leaves": 4, "min_data_in_leaf": 5, "verbose": -1, "seed": 1, "deterministic": True,
              "num_threads": 1, "label_gain": [0, 1]}  # fmt: skip
    ranker = lgb.train(params, lgb.Dataset(X, y, group=[10] * 20), 5)
    L = rng.normal(size=(200, len(FT.LIST_FEATURES)))
    ans = lgb.train({"objective": "binary", "num_leaves": 4, "min_data_in_leaf": 5, "verbose": -1, "seed": 1, "num_threads": 1},
                    lgb.Dataset(L, (L[:, 0] > 0).astype(int)), 5)  # fmt: skip
    return ranker, ans


def tiny_trust(seed: int = 0):
    """A fixed `trust.Trust` of `tiny_models` (the shipped model changes when it is retrained)."""
    from app import trust

    ranker, ans = tiny_models(seed)
    return trust.Trust(ranker, ans, np.array([-1.0, 0.0, 1.0]), np.array([0.1, 0.5, 0.9]), 0.5)

