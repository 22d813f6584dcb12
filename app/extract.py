"""Extraction: a report file of any supported format to its text, its own metadata and its pages.

`extract(path)` reads `.txt`, `.md`, `.html`/`.htm`, `.pdf` (the text layer) and `.docx`.
The text is as found, before cleaning (`clean.py` is the next stage); `meta` holds the
title and date the file itself carries; `pages` holds the text of each page for formats
that have pages (PDF; DOCX with page breaks), else it is empty. Given `Limits` (as
`reportqa add` does), a file with more text than one report plausibly has, or a .docx
that expands like a zip bomb, is refused before it is parsed or as soon as it is seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

from .errors import CorpusError


class Extracted(NamedTuple):
    """What a file says: `text` (pages joined by newlines), `meta` (title, date) and `pages`."""

    text: str
    meta: dict
    pages: list[str]


# --------------------------------------------------------------------------- limits

CHARS_PER_PASSAGE = 400  # new characters per passage: 500 with 100 of overlap (BuildSettings)
RATIO_FLOOR = 1 << 20  # a zip entry expanding to less than 1 MiB is too small to matter, whatever its ratio
XML_FLOOR = 16 << 20  # .docx XML allowed whatever max_chars: python-docx's blank template alone has ~40 KB
XML_PER_CHAR = 64  # bytes of .docx XML per character of text allowed beyond XML_FLOOR (markup is 5-30)


@dataclass(frozen=True)
class Limits:
    """How big one added report may be; `reportqa add --max-chars N --max-ratio R` raises them."""

    # 1,000,000 characters: 175 times the longest shipped report (5,702), about 2,500 passages, some
    # five minutes of embedding on two CPU cores (9 passages/s, eval/performance.md). The 40-million-
    # character .docx of issue #12 would have been 100,000 passages: hours.
    max_chars: int = 1_000_000
    # 100x: the XML of real .docx files deflates 5-20x (text and repeated markup; images do not
    # deflate at all), while a zip bomb expands hundreds to a thousand times (deflate's maximum).
    max_ratio: float = 100.0


def check_length(chars: int, where: str, limits: Limits, *, more: bool = False) -> None:
    """Refuse text over `limits.max_chars`, naming the limit and the option that raises it."""
    if chars <= limits.max_chars:
        return
    raise CorpusError(
        f"{where}: {'more than ' if more else ''}{chars:,} characters of text, over the limit of {limits.max_chars:,} "
        f"for one report (about {-(-chars // CHARS_PER_PASSAGE):,} passages to embed); if it is one report, raise the "
        f"limit with `reportqa add --max-chars N` (N above its length)"
    )


def check_zip(path: Path, limits: Limits) -> None:
    """Refuse a .docx whose entries expand more than `limits.max_ratio` times, or to more XML than
    `limits.max_chars` of text needs, from the sizes its zip directory declares, before parsing.
    (zipfile never inflates an entry beyond its declared size: a lying directory fails its CRC.)"""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CorpusError(f"{path}: not a readable .docx file ({e.__class__.__name__}: {e}); save it again as .docx") from e
    for e in entries:
        if e.file_size > RATIO_FLOOR and e.file_size > limits.max_ratio * max(e.compress_size, 1):
            ratio = e.file_size / max(e.compress_size, 1)
            raise CorpusError(
                f"{path}: {e.filename} expands {ratio:,.0f} times when unzipped ({e.compress_size:,} to {e.file_size:,} "
                f"bytes), over the limit of {limits.max_ratio:g} times: a zip bomb rather than a report? If you trust "
                f"the file, raise the limit with `reportqa add --max-ratio {int(ratio) + 1}`"
            )
    xml = sum(e.file_size for e in entries if e.filename.endswith((".xml", ".rels")))
    if xml > XML_FLOOR + limits.max_chars * XML_PER_CHAR:
        raise CorpusError(
            f"{path}: {xml:,} bytes of XML when unzipped, more than the text limit of {limits.max_chars:,} characters "
            f"can need; if it is one report, raise the limit with `reportqa add --max-chars N`"
        )


# --------------------------------------------------------------------------- plain text

# What Big5 bytes read as GB18030 (or GBK bytes read as Big5) turn into: kana, bopomofo,
# box drawing, CJK squares and private-use characters, rare in a real report.
MISREAD = re.compile("[\u2500-\u259f\u3040-\u312f\u3300-\u33ff\ue000-\uf8ff\uff61-\uff9f]")


def decode(data: bytes, name: str = "file") -> str:
    """Bytes to text: UTF-8 (BOM or not), else GB18030 or Big5, whichever reads as Chinese; refuses binary data."""
    if b"\x00" in data[:4096]:
        raise CorpusError(f"{name}: looks binary (NUL bytes), not a text report")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    best: tuple[int, str] | None = None
    for enc in ("utf-8", "gb18030", "big5"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        # gb18030 decodes almost anything; count control characters as a sanity check.
        bad = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
        if bad > max(2, len(text) // 1000):
            continue
        if enc == "utf-8":
            return text
        # Big5 bytes decode as GB18030 without error, into nonsense: keep Big5 when
        # it reads with clearly fewer misread characters.
        misread = len(MISREAD.findall(text))
        if best is None or misread * 2 < best[0]:
            best = (misread, text)
        if not misread:
            break
    if best is None:
        raise CorpusError(f"{name}: not UTF-8, GB18030 or Big5 text; convert it to UTF-8 and index again")
    return best[1]


# --------------------------------------------------------------------------- dates

DATE = re.compile(r"((?:19|20)\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)")
MONTH = re.compile(r"((?:19|20)\d{2})\s*[-/.年]\s*(\d{1,2})(?:\s*月|(?![\d/.-]))")
# A date a page states as its own: "发布时间：2024-04-18", "日期：2024年4月18日".
LABELLED_DATE = re.compile(
    r"(?:发布时间|發布時間|发布日期|發布日期|发稿时间|日期|时间|時間|Date|Published)\s*[:：]?\s*(?=(?:19|20)\d{2})", re.I
)


def norm_date(value) -> str:
    """A date, datetime or string as `YYYY-MM-DD` (or `YYYY-MM`); "" when it holds none."""
    if isinstance(value, (date, datetime)):
        return value.strftime("%Y-%m-%d")
    s = str(value or "")
    m = DATE.search(s)
    if m and 1 <= int(m[2]) <= 12 and 1 <= int(m[3]) <= 31:
        return f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}"
    m = MONTH.search(s)
    if m and 1 <= int(m[2]) <= 12:
        return f"{m[1]}-{int(m[2]):02d}"
    return ""


def stated_date(text: str, head: int = 500) -> str:
    """The date a report gives as its own near its top ("发布时间：…"), or ""."""
    m = LABELLED_DATE.search(text[:head])
    return norm_date(text[m.end() : m.end() + 20]) if m else ""


# --------------------------------------------------------------------------- txt and md


def _txt(path: Path, limits: Limits | None = None) -> Extracted:
    text = decode(path.read_bytes(), str(path))
    return Extracted(text, {"date": stated_date(text)}, [])


FRONT_MATTER = re.compile(r"\A\ufeff?---\s*\n(.*?)\n---\s*\n", re.S)
MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _md(path: Path, limits: Limits | None = None) -> Extracted:
    text = decode(path.read_bytes(), str(path))
    meta: dict = {}
    m = FRONT_MATTER.match(text)
    if m:  # YAML-style front matter: only the simple `key: value` lines are read
        for line in m[1].splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("title", "date") and value.strip():
                meta[key.strip().lower()] = value.strip().strip("\"'")
        text = text[m.end() :]
    heading = MD_HEADING.search(text)
    meta.setdefault("title", heading[1] if heading else "")
    text = MD_HEADING.sub(r"\1", text)  # headings without their markers
    meta["date"] = norm_date(meta.get("date")) or stated_date(text)
    return Extracted(text, meta, [])


# --------------------------------------------------------------------------- html

DROP = {"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form", "iframe",
        "button", "select", "textarea", "canvas", "object"}  # fmt: skip
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
BLOCK = {"address", "article", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure", "h1", "h2", "h3",
         "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre", "section", "table", "tbody", "thead", "tr", "ul"}  # fmt: skip
# Page furniture that sites mark with a class or id rather than an element.
NOISE = re.compile(r"(?:^|[\s_-])(?:nav|navbar|menu|breadcrumbs?|crumbs?|footer|sidebar|share|comments?|related|"
                   r"copyright|advert|ads|toolbar|topbar)(?:$|[\s_-])", re.I)  # fmt: skip
NOISE_ROLES = ("navigation", "banner", "contentinfo")
DATE_META = ("article:published_time", "og:published_time", "pubdate", "publishdate", "publish_date", "publish-date",
             "date", "dc.date", "dc.date.issued", "dcterms.created", "dcterms.date", "firstpublishedtime")  # fmt: skip


class _HTMLText(HTMLParser):
    """Visible text by blocks, leaving out scripts, navigation, headers, footers and asides."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.all: list[str] = []
        self.main: list[str] = []  # inside the first <article> or <main>
        self.skip, self.skip_depth = "", 0
        self.main_tag, self.main_depth, self.main_done = "", 0, False
        self.title, self.in_title = "", False
        self.h1: list[tuple[bool, str]] = []  # (inside main, text) of each <h1>
        self.in_h1 = False
        self.meta: dict[str, str] = {}
        self.time = ""

    def _out(self, s: str) -> None:
        self.all.append(s)
        if self.main_tag:
            self.main.append(s)

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): v or "" for k, v in attrs}
        if tag == "meta":
            key = (a.get("property") or a.get("name") or a.get("itemprop") or "").lower()
            if key and a.get("content"):
                self.meta.setdefault(key, a["content"].strip())
            return
        if tag == "time" and a.get("datetime") and not self.time:
            self.time = a["datetime"]
        if tag == "title" and not self.skip and not self.title:
            self.in_title = True
        if self.skip:
            self.skip_depth += tag == self.skip
            return
        noise = NOISE.search(f"{a.get('class', '')} {a.get('id', '')}") or a.get("role") in NOISE_ROLES
        if tag in DROP or (noise and tag not in VOID and tag not in ("html", "body", "article", "main")):
            self.skip, self.skip_depth = tag, 1
            return
        if tag in ("article", "main") and not self.main_tag and not self.main_done:
            self.main_tag, self.main_depth = tag, 0
        if tag == self.main_tag:
            self.main_depth += 1
        if tag == "h1":
            self.in_h1 = True
            self.h1.append((bool(self.main_tag), ""))
        if tag in BLOCK:
            self._out("\n")
        elif tag in ("td", "th"):
            self._out(" ")

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if self.skip:
            if tag == self.skip:
                self.skip_depth -= 1
                if not self.skip_depth:
                    self.skip = ""
            return
        if tag == "h1":
            self.in_h1 = False
        if tag in BLOCK:
            self._out("\n")
        if tag == self.main_tag:
            self.main_depth -= 1
            if not self.main_depth:
                self.main_tag, self.main_done = "", True

    def handle_data(self, data):
        if self.in_title:
            self.title += data
            return
        if self.skip:
            return
        data = re.sub(r"\s+", " ", data)  # HTML source line breaks are spaces; blocks make the lines
        if self.in_h1 and self.h1:
            inside, text = self.h1[-1]
            self.h1[-1] = (inside, text + data)
        self._out(data)


def _lines(parts: list[str]) -> str:
    return "\n".join(ln.strip() for ln in "".join(parts).splitlines() if ln.strip())


def html_text(markup: str) -> Extracted:
    """The main text of an HTML page with its title and date."""
    p = _HTMLText()
    p.feed(markup)
    p.close()
    main, everything = _lines(p.main), _lines(p.all)
    text = main if len(main) >= 50 else everything
    h1 = [t.strip() for inside, t in p.h1 if t.strip()]
    h1_main = [t.strip() for inside, t in p.h1 if inside and t.strip()]
    page_title = re.split(r"\s*[_|｜]\s*|\s+[-–—]\s+", re.sub(r"\s+", " ", p.title).strip())[0]
    title = next(iter(h1_main + h1), "") or p.meta.get("og:title", "") or page_title
    published = next((p.meta[k] for k in DATE_META if p.meta.get(k)), "") or p.time
    day = norm_date(published) or stated_date(text)
    if not day:  # a dateline right under the title
        m = DATE.search(text[:200])
        day = norm_date(m[0]) if m else ""
    return Extracted(text, {"title": title.strip(), "date": day}, [])


def _html(path: Path, limits: Limits | None = None) -> Extracted:
    return html_text(decode(path.read_bytes(), str(path)))


# --------------------------------------------------------------------------- pdf

# Page numbers a PDF prints in its margins: "- 3 -", "第 3 页", "第3页 共12页", "3 / 12", "Page 3".
PAGE_NUMBER = re.compile(
    r"^\s*(?:[-—–]\s*\d+\s*[-—–]|第\s*\d+\s*页(?:\s*[,，/]?\s*共\s*\d+\s*页)?|\d+\s*/\s*\d+|Page\s+\d+(?:\s+of\s+\d+)?)\s*$",
    re.I | re.M,
)
FILE_TITLE = re.compile(r"\.(?:docx?|pdf|wps|txt)$|^(?:untitled|无标题|microsoft word)", re.I)


def _pdf(path: Path, limits: Limits | None = None) -> Extracted:
    import pypdf

    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise CorpusError(f"{path}: the PDF is password-protected; save an unprotected copy and add that")
        pages, chars = [], 0
        for page in reader.pages:
            pages.append(PAGE_NUMBER.sub("", page.extract_text() or ""))
            chars += len(pages[-1])
            if limits is not None:  # stop reading at once: a long PDF takes long to extract
                check_length(chars, f"{path} (at page {len(pages)})", limits, more=len(pages) < len(reader.pages))
        info = reader.metadata or {}
        title = str(info.get("/Title") or "").strip()
        try:
            created = norm_date(info.creation_date) if hasattr(info, "creation_date") else ""
        except ValueError:  # a malformed date string in the metadata
            created = ""
    except CorpusError:
        raise
    except Exception as e:  # noqa: BLE001 - pypdf raises many kinds on a damaged file; all mean "cannot read it"
        raise CorpusError(f"{path}: not a readable PDF ({e.__class__.__name__}: {e})") from e
    if not "".join(pages).strip():
        raise CorpusError(f"{path}: the PDF has no text layer (a scan?); run OCR on it first, then add the result")
    if FILE_TITLE.search(title):
        title = ""
    return Extracted("\n".join(pages), {"title": title, "date": created}, pages)


# --------------------------------------------------------------------------- docx

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
TEMPLATE_DATE = datetime(2013, 12, 23, 23, 15)  # python-docx's blank template: not the report's date


def _docx(path: Path, limits: Limits | None = None) -> Extracted:
    import docx
    from docx.table import Table

    if limits is not None:
        check_zip(path, limits)
    try:
        doc = docx.Document(str(path))
    except Exception as e:  # noqa: BLE001 - zipfile, lxml and python-docx each raise their own on a bad file
        raise CorpusError(f"{path}: not a readable .docx file ({e.__class__.__name__}: {e}); save it again as .docx") from e
    pages: list[list[str]] = [[]]
    heading = ""
    chars = 0
    # Style names by id, read once: python-docx's `Paragraph.style` scans every style on each call
    # (1 ms a paragraph: a minute for a 50,000-paragraph report).
    style_names = {s.style_id: s.name or "" for s in doc.styles}

    def out(text: str) -> None:
        nonlocal chars
        pages[-1].append(text)
        chars += len(text)

    def new_page() -> None:
        # Word writes both an explicit break and, after it, where it last broke the page: count one
        if "".join(pages[-1]).strip():
            pages.append([])

    for block in doc.iter_inner_content():
        if limits is not None:  # stop at once rather than read the rest of a huge document
            check_length(chars, str(path), limits, more=True)
        if isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
                for cell in row.cells:
                    t = cell.text.strip()
                    if t and (not cells or cells[-1] != t):  # a merged cell repeats its text
                        cells.append(t)
                out(" | ".join(cells) + "\n")
            continue
        if not heading and block.text.strip():
            style = style_names.get(block._p.style, "") if block._p.style else ""
            if style.lower().startswith(("title", "heading", "标题")):
                heading = block.text.strip()
        for el in block._p.iter():
            tag = el.tag.removeprefix(W)
            if tag == "t":
                out(el.text or "")
            elif tag == "tab":
                out("\t")
            elif tag in ("br", "cr"):
                if el.get(f"{W}type") == "page":
                    new_page()
                else:
                    out("\n")
            elif tag == "lastRenderedPageBreak":
                new_page()
        out("\n")
    texts = ["".join(p) for p in pages]
    props = doc.core_properties
    created = props.created
    day = norm_date(created) if created and created.replace(tzinfo=None) != TEMPLATE_DATE else ""
    title = (props.title or "").strip() or heading
    return Extracted("\n".join(texts), {"title": title, "date": day or stated_date(texts[0])}, texts if len(texts) > 1 else [])


# --------------------------------------------------------------------------- dispatch

READERS = {".txt": _txt, ".text": _txt, ".md": _md, ".markdown": _md, ".html": _html, ".htm": _html, ".pdf": _pdf, ".docx": _docx}
FORMATS = ".txt, .md, .html, .pdf, .docx (or a .jsonl corpus)"


def extract(path: Path | str, limits: Limits | None = None) -> Extracted:
    """Text, metadata and pages of one report file; raises `CorpusError` naming the file.

    With `limits`, a file over them is refused (`reportqa add`); `reportqa index` reads its corpus without.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        hint = "; save it as .docx" if path.suffix.lower() in (".doc", ".wps") else ""
        raise CorpusError(f"{path}: unsupported format {path.suffix or '(none)'}{hint}; reportqa reads {FORMATS}")
    try:
        out = reader(path, limits)
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from e
    if limits is not None:
        check_length(len(out.text), str(path), limits)
    return out
