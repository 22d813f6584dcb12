"""Loading: folders of report files and `.jsonl` corpora into `Document` records.

A folder may hold a `manifest.json` mapping file names to title, city, source, date
and script. Files are decoded as UTF-8 (with or without BOM), then GB18030, then
Big5; a file that is none of these, or is binary, is reported by name and skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .clean import clean_text
from .errors import CorpusError
from .records import Document

TEXT_SUFFIXES = {".txt", ".md", ".html", ".htm"}
CITIES = ("长治", "忻州", "吕梁", "長治", "呂梁")


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


def guess_script(text: str) -> str:
    """'traditional' when the text changes under traditional-to-simplified conversion often."""
    from .textnorm import to_simplified

    sample = text[:4000]
    changed = sum(1 for a, b in zip(sample, to_simplified(sample)) if a != b)
    return "traditional" if changed > len(sample) * 0.03 else "simplified"


def guess_city(text: str) -> str:
    counts = {c: text.count(c) for c in CITIES}
    best = max(counts, key=counts.get)
    if not counts[best]:
        return ""
    from .textnorm import to_simplified

    return to_simplified(best)


def make_document(doc_id: str, raw: str, meta: dict, path: str = "") -> Document:
    text = clean_text(raw)
    if not text.strip():
        raise CorpusError(f"{path or doc_id}: no usable text after cleaning")
    first_line = text.split("\n", 1)[0][:60]
    return Document(
        id=doc_id,
        title=str(meta.get("title") or first_line),
        text=text,
        city=str(meta.get("city") or guess_city(text)),
        date=str(meta.get("date") or ""),
        source=str(meta.get("source") or ""),
        url=str(meta.get("url") or ""),
        script=str(meta.get("script") or guess_script(text)),
        path=path,
    )


def _doc_id(path: Path) -> str:
    return re.sub(r"[^\w.-]+", "_", path.stem)


def load_jsonl(path: Path) -> tuple[list[Document], list[str]]:
    docs, problems = [], []
    for n, line in enumerate(decode(path.read_bytes(), str(path)).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            doc_id, text = str(obj["id"]), obj["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            docs.append(make_document(doc_id, text, obj, f"{path}:{n}"))
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{path}:{n}: skipped ({e.__class__.__name__}: {e}); each line needs id, title, text")
        except CorpusError as e:
            problems.append(f"{e}; skipped")
    return docs, problems


def load_corpus(paths: list[Path]) -> tuple[list[Document], list[str]]:
    """Documents from folders, files and `.jsonl` corpora, plus one message per skipped file."""
    docs: list[Document] = []
    problems: list[str] = []
    for root in map(Path, paths):
        if not root.exists():
            raise CorpusError(f"{root}: no such file or folder; pass --corpus with a folder of reports or a .jsonl file")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        manifest: dict = {}
        if root.is_dir() and (root / "manifest.json").exists():
            try:
                manifest = json.loads((root / "manifest.json").read_text("utf-8"))
            except ValueError as e:
                raise CorpusError(f"{root / 'manifest.json'}: not valid JSON ({e}); fix or delete it") from e
        for f in files:
            if f.name == "manifest.json" or f.name.startswith("."):
                continue
            if f.suffix.lower() == ".jsonl":
                more, bad = load_jsonl(f)
                docs += more
                problems += bad
            elif f.suffix.lower() in TEXT_SUFFIXES:
                try:
                    docs.append(make_document(_doc_id(f), decode(f.read_bytes(), str(f)), manifest.get(f.name, {}), str(f)))
                except CorpusError as e:
                    problems.append(f"{e}; skipped")
                except OSError as e:
                    problems.append(f"{f}: cannot read ({e.strerror}); skipped")
    seen: dict[str, str] = {}
    unique = []
    for d in docs:
        h = hashlib.sha256(d.text.encode()).hexdigest()
        if d.id in seen or h in seen.values():
            problems.append(f"{d.path or d.id}: duplicate of an earlier document; skipped")
            continue
        seen[d.id] = h
        unique.append(d)
    return unique, problems
