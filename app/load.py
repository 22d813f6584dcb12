"""Loading: folders of report files and `.jsonl` corpora into `Document` records.

Files of every format `extract.py` reads (.txt, .md, .html, .pdf, .docx) are loaded;
a folder may hold a `manifest.json` mapping file names to title, city, source, date
and script, which win over what a file says of itself. Text files are decoded as UTF-8
(with or without BOM), then GB18030, then Big5; a file that is none of these, is binary
or yields no text is reported by name and skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

from .clean import clean_pages, clean_text
from .errors import CorpusError
from .extract import READERS, decode, extract
from .records import Document

__all__ = ["decode", "document_from_file", "document_from_jsonl", "file_doc_id", "load_corpus", "make_document"]

TEXT_SUFFIXES = set(READERS)  # every format extract() reads
CITIES = ("长治", "忻州", "吕梁", "長治", "呂梁")


def guess_script(text: str) -> str:
    """'traditional' when the text changes under traditional-to-simplified conversion often."""
    from .textnorm import to_simplified

    sample = text[:4000]
    changed = sum(1 for a, b in zip(sample, to_simplified(sample), strict=False) if a != b)
    return "traditional" if changed > len(sample) * 0.03 else "simplified"


def guess_city(text: str) -> str:
    counts = {c: text.count(c) for c in CITIES}
    best = max(counts, key=counts.get)
    if not counts[best]:
        return ""
    from .textnorm import to_simplified

    return to_simplified(best)


def make_document(doc_id: str, raw: str, meta: dict, path: str = "", pages: list[str] | None = None) -> Document:
    """Clean `raw` (or its `pages`, keeping where each starts) into a `Document`; metadata from `meta`, else guessed."""
    starts: list[int] = []
    if pages:
        text, starts = clean_pages(pages)
    else:
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
        pages=starts,
    )


def document_from_file(path: Path, meta: dict | None = None, doc_id: str | None = None) -> Document:
    """One report file as a `Document`: `meta` (a manifest's, the user's) wins over what the file says."""
    ex = extract(path)
    given = {k: v for k, v in (meta or {}).items() if v}
    return make_document(doc_id or file_doc_id(path), ex.text, ex.meta | given, str(path), pages=ex.pages or None)


def file_doc_id(path: Path) -> str:
    """A report's id from its file name: the stem, with anything but word characters, dots and dashes as `_`."""
    return re.sub(r"[^\w.-]+", "_", Path(path).stem)


def document_from_jsonl(obj: dict, where: str) -> Document:
    """One `.jsonl` line as a `Document`: `id` and `text`, or `pages` (one string a page), plus metadata."""
    doc_id, pages = str(obj["id"]), obj.get("pages")
    if pages is not None:
        if not isinstance(pages, list) or not all(isinstance(p, str) for p in pages):
            raise TypeError("pages is not a list of strings")
        text = "\n".join(pages)
    else:
        text = obj["text"]
    if not isinstance(text, str):
        raise TypeError("text is not a string")
    return make_document(doc_id, text, obj, where, pages=pages or None)


def load_jsonl(path: Path) -> tuple[list[Document], list[str]]:
    docs, problems = [], []
    for n, line in enumerate(decode(path.read_bytes(), str(path)).splitlines(), 1):
        if not line.strip():
            continue
        try:
            docs.append(document_from_jsonl(json.loads(line), f"{path}:{n}"))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            problems.append(f"{path}:{n}: skipped ({e.__class__.__name__}: {e}); each line needs id, title, text (or pages)")
        except CorpusError as e:
            problems.append(f"{e}; skipped")
    return docs, problems


def load_corpus(paths: list[Path], exclude: Iterable[str] = ()) -> tuple[list[Document], list[str]]:
    """Documents from folders, files and `.jsonl` corpora, plus one message per skipped file.

    Documents whose id is in `exclude` (reports removed with `reportqa remove`) are left out.
    """
    exclude = set(exclude)
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
                if file_doc_id(f) in exclude:
                    continue
                try:
                    docs.append(document_from_file(f, manifest.get(f.name, {})))
                except CorpusError as e:
                    problems.append(f"{e}; skipped")
    seen: dict[str, str] = {}
    unique = []
    for d in docs:
        if d.id in exclude:
            continue
        h = hashlib.sha256(d.text.encode()).hexdigest()
        if d.id in seen or h in seen.values():
            problems.append(f"{d.path or d.id}: duplicate of an earlier document; skipped")
            continue
        seen[d.id] = h
        unique.append(d)
    return unique, problems
