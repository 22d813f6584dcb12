"""The collection of an index: what it is built from, recorded inside each of its builds.

A `Collection` is the base `sources` (corpus folders and `.jsonl` files; by default the
project's `corpus/`), the reports added with `reportqa add` (each kept, already extracted,
as the `.jsonl` record `prepare` makes: its text or pages and its metadata) and the ids of
reports removed with `reportqa remove`. `ReportIndex.save` writes it into the build folder
(`collection.json`, `added.jsonl`, checksummed in `params.json` with the other files) and
`ReportIndex.load` reads it back, so an index and its collection are switched live together
by the atomic rename of `CURRENT`, and two index folders never share an added report.
An added PDF's file itself is kept too (`originals/SHA256.pdf` beside `added.jsonl`, named by
its record's `original`), so that the report view can show the page a passage is on; each new build
links it from the build before (copies it where it cannot). The kept PDFs are not checksummed with the
build: each record's `original_sha256` guards its file, checked when a page is shown (pdfpage.py).

A collection is a value: `with_added`, `without` and `with_sources` return a new one;
changing an index's collection (lock, rebuild, switch) is `changes.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import CorpusError, IndexMismatch
from .extract import Limits, check_length
from .load import document_from_jsonl, file_doc_id, load_corpus
from .records import Document

META_KEYS = ("title", "city", "date", "source", "url", "script")
RECORD_FILE = "collection.json"  # sources and removed ids
ADDED_FILE = "added.jsonl"  # one record per added report, a `.jsonl` corpus of its own
ORIGINALS = "originals"  # the added PDFs, one file a report, named by the record's "original"
RECORD_VERSION = 1

Loaded = tuple[list[Document], list[str]]  # documents, and one message per file skipped


@dataclass(frozen=True)
class Pending:
    """A report ready to be added: the `.jsonl` record to keep and the `Document` it loads as."""

    record: dict
    doc: Document
    file: str
    original: Path | None = None  # the file to keep (an added PDF), else None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _carry(src: Path, dest: Path) -> None:
    """Put a kept PDF into the new build `dest` is in. One from a build of the same index folder is
    hard-linked (no copy of up to 100 MB per build; a kept file is never written in place, so the builds
    sharing it cannot change it), else copied: the file being added (the user's, which may change), or
    one where a link cannot be made (another file system, or one without links)."""
    build = dest.parent.parent
    if src.parent.name == ORIGINALS and src.parent.parent.parent.resolve() == build.parent.resolve():
        try:
            os.link(src, dest)
            return
        except OSError:
            pass
    shutil.copyfile(src, dest)


def _safe(name) -> str:
    """A kept original's file name as its record gives it, refused unless it is a plain name."""
    name = str(name)
    if not name or name != Path(name).name or name.startswith("."):
        raise ValueError(f"the kept file {name!r} is not a plain file name")
    return name


def _where(record: dict) -> str:
    """The `Document.path` of an added report: the file it came from."""
    return f"added:{record.get('file') or record['id']}"


@dataclass(frozen=True)
class Collection:
    """What an index holds: the reports of `sources`, less the ids in `removed`, plus the `added` records."""

    sources: tuple[str, ...] = ()  # absolute paths
    added: dict[str, dict] = field(default_factory=dict)  # id -> the record `prepare` made
    removed: tuple[str, ...] = ()  # sorted
    # id -> where the kept original of an added report is now (the file being added, or the build it
    # was read from); `write` copies it. Not part of the value: the record names it with its checksum.
    originals: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, sources, removed=()) -> Collection:
        """A collection of `sources` (folders and files) without added reports."""
        return cls(tuple(os.path.abspath(s) for s in sources), {}, tuple(sorted(set(removed))))

    # ------------------------------------------------------------------ the documents

    def base(self) -> Loaded:
        """The reports of `sources`, removed ones included (their ids stay taken)."""
        return load_corpus([Path(s) for s in self.sources]) if self.sources else ([], [])

    def documents(self, base: Loaded | None = None) -> Loaded:
        """The documents to index: `base` (else read from `sources`) less the removed, then the added
        reports by id. An added report whose id or text a base report has (the corpus changed after
        it was added) is skipped with a message, as a duplicate in a corpus is."""
        docs, problems = base if base is not None else self.base()
        gone = set(self.removed)
        out = [d for d in docs if d.id not in gone]
        problems = list(problems)
        ids, texts = {d.id for d in out}, {_sha(d.text) for d in out}
        for doc_id in sorted(self.added):
            if doc_id in gone:
                continue
            record = self.added[doc_id]
            try:
                d = document_from_jsonl(record, _where(record))
            except (CorpusError, ValueError, KeyError, TypeError) as e:
                problems.append(f"added report {doc_id}: {e}; skipped")
                continue
            if d.id in ids or _sha(d.text) in texts:
                problems.append(f"{d.path}: same id or text as a report of {', '.join(self.sources)}; skipped "
                                f"(`reportqa remove {d.id}` takes the added one out)")  # fmt: skip
                continue
            ids.add(d.id)
            texts.add(_sha(d.text))
            out.append(d)
        return out, problems

    # ------------------------------------------------------------------ adding

    def prepare(self, files: list[Path], meta: dict | None = None, *, replace: bool = False,
                limits: Limits | None = Limits(), base: Loaded | None = None) -> list[Pending]:  # fmt: skip
        """Extract and clean `files` without storing anything.

        `meta` (title, city, date, source, url) wins over what a file says of itself.
        Raises `CorpusError` listing every file that yields no usable text, is of an
        unsupported format, is over `limits`, or whose id or text this collection already
        holds (an added report's id is fine with `replace`). `base`: `self.base()`, if read already.
        """
        given = {k: str(v).strip() for k, v in (meta or {}).items() if v and str(v).strip()}
        pending: list[Pending] = []
        problems: list[str] = []
        for f in map(Path, files):
            try:
                if f.suffix.lower() == ".jsonl":
                    pending += self._from_jsonl(f, given, limits)
                else:
                    pending.append(self._from_file(f, given, limits))
            except CorpusError as e:
                problems.append(str(e))
        if "title" in given and len(pending) + len(problems) > 1:
            problems.append("--title names one report: add the files one at a time to give each its title")
        if pending:
            problems += self._conflicts(pending, replace, base if base is not None else self.base())
        if problems:
            raise CorpusError("cannot add: " + "\n".join(problems) if len(problems) > 1 else f"cannot add {problems[0]}")
        return pending

    def with_added(self, pending: list[Pending]) -> Collection:
        """This collection with the `pending` reports added (replacing added ones of the same id)."""
        ids = {p.doc.id for p in pending}
        kept = {k: v for k, v in self.originals.items() if k not in ids}
        return replace(self, added=self.added | {p.doc.id: p.record for p in pending},
                       originals=kept | {p.doc.id: str(p.original) for p in pending if p.original is not None})  # fmt: skip

    def original(self, doc_id: str) -> Path | None:
        """The kept file of added report `doc_id` (its PDF), or None when none is kept. The file may
        since have gone or changed: `original_sha256` in its record tells."""
        name = (self.added.get(doc_id) or {}).get("original")
        where = self.originals.get(doc_id)
        return Path(where) if name and where else None

    def _record(self, doc_id: str, raw: dict, given: dict, file: str) -> Pending:
        record = {"id": doc_id} | {k: raw[k] for k in META_KEYS if raw.get(k)} | given
        if raw.get("pages"):
            record["pages"] = raw["pages"]
        else:
            record["text"] = raw.get("text", "")
        record["file"] = file
        try:
            doc = document_from_jsonl(record, _where(record))
        except CorpusError as e:
            raise CorpusError(f"{file}: no usable text after cleaning (is it empty, or only navigation?)") from e
        # Kept with every value resolved, so the report loads later exactly as shown now.
        record |= {k: getattr(doc, k) for k in META_KEYS if getattr(doc, k)}
        record["added"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        return Pending(record, doc, file)

    def _from_file(self, f: Path, given: dict, limits: Limits | None) -> Pending:
        from .extract import extract

        ex = extract(f, limits)
        raw = {k: v for k, v in ex.meta.items() if v} | ({"pages": ex.pages} if ex.pages else {"text": ex.text})
        doc_id = file_doc_id(f)
        if f.suffix.lower() != ".pdf":
            return self._record(doc_id, raw, given, f.name)
        from .files import file_sha256

        # the PDF itself, kept for its pages (`original`), named by its checksum: always a plain name
        pending, sha = self._record(doc_id, raw, given, f.name), file_sha256(f)
        pending.record.update(original=f"{sha}.pdf", original_sha256=sha)
        return replace(pending, original=f)

    def _from_jsonl(self, f: Path, given: dict, limits: Limits | None) -> list[Pending]:
        from .extract import decode

        out = []
        for n, line in enumerate(decode(f.read_bytes(), str(f)).splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                doc_id = str(obj["id"])
                if not isinstance(obj.get("text", ""), str) or not isinstance(obj.get("pages", []), list):
                    raise TypeError("text must be a string and pages a list of strings")
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise CorpusError(f"{f}:{n}: {e.__class__.__name__}: {e}; each line needs id, title, text (or pages)") from e
            if limits is not None:
                check_length(sum(map(len, obj.get("pages") or [])) or len(obj.get("text", "")), f"{f}:{n}", limits)
            out.append(self._record(doc_id, obj, given, f"{f.name}:{n}"))
        if not out:
            raise CorpusError(f"{f}: no reports in it")
        return out

    def _conflicts(self, pending: list[Pending], replace: bool, base: Loaded) -> list[str]:
        owner = {d.id: d for d in base[0]}  # removed reports too: their ids stay taken
        current, _ = self.documents(base)
        texts = {_sha(d.text): d.id for d in current}
        problems, ids, batch = [], set(), {}
        for p in pending:
            i, name = p.doc.id, p.file
            if i in ids:
                problems.append(f"{name}: two reports would have the id {i}; rename one")
            ids.add(i)
            added = i in self.added
            if added and not replace:
                problems.append(f"{name}: a report with id {i} was added before; pass --replace to update it or remove it first")
            elif not added and i in owner:
                where = (
                    "removed with `reportqa remove`; `reportqa index --corpus` with the index's sources brings it back"
                    if i in self.removed
                    else "already indexed"
                )
                problems.append(f"{name}: id {i} is a report in {owner[i].path} ({where}); rename the file")
            h = _sha(p.doc.text)
            same = texts.get(h) or batch.get(h)
            if same and same != i:
                problems.append(f"{name}: same text as the report {same}, already indexed")
            batch[h] = i
        return problems

    # ------------------------------------------------------------------ removing, new sources

    def without(self, doc_id: str, base: Loaded | None = None) -> tuple[Collection, str, Document]:
        """This collection without report `doc_id`: (collection, "added" or "corpus", the report).

        An added report's record goes; a report of the sources is listed in `removed` (its file stays).
        """
        docs, _ = self.documents(base)
        doc = next((d for d in docs if d.id == doc_id), None)
        if doc is None:
            if doc_id in self.removed:
                raise CorpusError(f"report {doc_id} is already removed from this index")
            raise CorpusError(f"no report with id {doc_id}; `reportqa list` shows the ids")
        if len(docs) == 1:
            raise CorpusError(f"{doc_id} is the only report left; an index needs at least one")
        if doc.path.startswith("added:") and doc_id in self.added:
            return replace(self, added={k: v for k, v in self.added.items() if k != doc_id}), "added", doc
        return replace(self, removed=tuple(sorted({*self.removed, doc_id}))), "corpus", doc

    def with_sources(self, sources) -> Collection:
        """The same added reports over other base `sources`; removals, which named reports of the old
        sources, are forgotten."""
        return replace(Collection.of(sources), added=self.added, originals=self.originals)

    # ------------------------------------------------------------------ disk

    def write(self, folder: Path) -> None:
        """Write the record into a build folder (`ReportIndex.save` does, before checksumming)."""
        folder = Path(folder)
        head = {"version": RECORD_VERSION, "sources": list(self.sources), "removed": list(self.removed),
                "added": sorted(self.added)}  # fmt: skip
        (folder / RECORD_FILE).write_text(json.dumps(head, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        with (folder / ADDED_FILE).open("w", encoding="utf-8") as f:
            for doc_id in sorted(self.added):
                f.write(json.dumps(self.added[doc_id], ensure_ascii=False) + "\n")
        for doc_id in sorted(self.added):
            src, name = self.original(doc_id), self.added[doc_id].get("original")
            if src is not None and src.is_file():  # gone (the build it was in deleted by hand): the view says so
                (folder / ORIGINALS).mkdir(exist_ok=True)
                _carry(src, folder / ORIGINALS / _safe(name))

    @classmethod
    def read(cls, folder: Path) -> Collection | None:
        """The record in a build folder; None for a build saved without one (by an older reportqa)."""
        folder = Path(folder)
        if not (folder / RECORD_FILE).exists():
            return None
        fix = f"restore {folder.parent} from a copy, or rebuild it with `reportqa index --index {folder.parent} --corpus PATH`"
        try:
            head = json.loads((folder / RECORD_FILE).read_text("utf-8"))
            if head.get("version", 0) > RECORD_VERSION:
                raise IndexMismatch(f"{folder / RECORD_FILE} was written by a newer reportqa (version {head['version']}); upgrade reportqa")
            lines = (folder / ADDED_FILE).read_text("utf-8").splitlines() if (folder / ADDED_FILE).exists() else []
            added = {str(r["id"]): r for r in map(json.loads, filter(str.strip, lines))}
            kept = {k: str(folder / ORIGINALS / _safe(r["original"])) for k, r in added.items() if r.get("original")}
            col = cls(tuple(map(str, head["sources"])), added, tuple(sorted(map(str, head["removed"]))), kept)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise IndexMismatch(f"the collection record in {folder} cannot be read ({e.__class__.__name__}: {e}): {fix}") from e
        if sorted(added) != sorted(map(str, head.get("added", sorted(added)))):
            raise IndexMismatch(f"the collection record in {folder} is inconsistent ({ADDED_FILE} vs {RECORD_FILE}): {fix}")
        return col

    @classmethod
    def of_index(cls, index_dir: Path) -> Collection | None:
        """The collection of the live build in `index_dir`, its checksums verified; None when that
        build has no record. Raises `IndexMissing` (naming `reportqa index --index DIR`) without a build."""
        from .files import file_sha256
        from .index import ReportIndex

        live = ReportIndex.live_folder(index_dir)
        digests = ReportIndex.read_params(index_dir).get("files", {})
        for name in (RECORD_FILE, ADDED_FILE):
            p = live / name
            if name in digests and (not p.exists() or file_sha256(p) != digests[name]):
                raise IndexMismatch(
                    f"{p} is missing or corrupted: restore {index_dir} from a copy, "
                    f"or rebuild it with `reportqa index --index {index_dir} --corpus PATH`"
                )
        return cls.read(live)
