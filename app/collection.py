"""The collection: the shipped reports in `corpus/` plus the reports added and removed locally.

An added report is stored, already extracted, as one `.jsonl` line in
`<data>/added/<doc_id>.jsonl` (its text, or its pages, and its metadata), so
`reportqa index` reads the added folder like any `.jsonl` corpus and added reports survive
`index --if-stale` and restarts. Removing an added report deletes its file; removing a
shipped report lists its id in `<data>/removed.json`, which the loader honours (delete the
id there to bring the report back).

Changing a collection and its index together is `changes.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import CorpusError
from .load import document_from_jsonl, file_doc_id, load_corpus
from .records import Document

META_KEYS = ("title", "city", "date", "source", "url", "script")


@dataclass(frozen=True)
class Pending:
    """A report ready to be stored: the `.jsonl` line to write and the `Document` it loads as."""

    record: dict
    doc: Document
    file: str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Collection:
    """The reports `reportqa index` indexes by default: `corpus` plus `data/added`, less `data/removed.json`."""

    corpus: Path
    data: Path

    @property
    def added_dir(self) -> Path:
        return Path(self.data) / "added"

    @property
    def removed_path(self) -> Path:
        return Path(self.data) / "removed.json"

    def removed(self) -> set[str]:
        """Ids of shipped reports removed with `reportqa remove`."""
        if not self.removed_path.exists():
            return set()
        try:
            ids = json.loads(self.removed_path.read_text("utf-8"))
        except ValueError as e:
            raise CorpusError(f"{self.removed_path}: not valid JSON ({e}); fix it or delete it to restore every report") from e
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise CorpusError(f"{self.removed_path}: must be a JSON list of report ids; fix it or delete it")
        return set(ids)

    def added_path(self, doc_id: str) -> Path:
        return self.added_dir / f"{doc_id}.jsonl"

    def sources(self) -> list[Path]:
        """What to load: the shipped corpus, then the added reports."""
        return [Path(self.corpus)] + ([self.added_dir] if self.added_dir.is_dir() else [])

    def load(self) -> tuple[list[Document], list[str]]:
        """The documents to index, and one message per file skipped."""
        return load_corpus(self.sources(), exclude=self.removed())

    # ------------------------------------------------------------------ adding

    def prepare(self, files: list[Path], meta: dict | None = None, *, replace: bool = False) -> list[Pending]:
        """Extract and clean `files` without storing anything.

        `meta` (title, city, date, source, url) wins over what a file says of itself.
        Raises `CorpusError` listing every file that yields no usable text, is of an
        unsupported format, or whose id or text is already indexed (an added report's id
        is fine with `replace`).
        """
        given = {k: str(v).strip() for k, v in (meta or {}).items() if v and str(v).strip()}
        pending: list[Pending] = []
        problems: list[str] = []
        for f in map(Path, files):
            try:
                if f.suffix.lower() == ".jsonl":
                    pending += self._from_jsonl(f, given)
                else:
                    pending.append(self._from_file(f, given))
            except CorpusError as e:
                problems.append(str(e))
        if "title" in given and len(pending) + len(problems) > 1:
            problems.append("--title names one report: add the files one at a time to give each its title")
        problems += self._conflicts(pending, replace)
        if problems:
            raise CorpusError("cannot add: " + "\n".join(problems) if len(problems) > 1 else f"cannot add {problems[0]}")
        return pending

    def _record(self, doc_id: str, raw: dict, given: dict, file: str) -> Pending:
        record = {"id": doc_id} | {k: raw[k] for k in META_KEYS if raw.get(k)} | given
        if raw.get("pages"):
            record["pages"] = raw["pages"]
        else:
            record["text"] = raw.get("text", "")
        where = f"{self.added_path(doc_id)}:1"
        try:
            doc = document_from_jsonl(record, where)
        except CorpusError as e:
            raise CorpusError(f"{file}: no usable text after cleaning (is it empty, or only navigation?)") from e
        # Stored with every value resolved, so the report loads later exactly as shown now.
        record |= {k: getattr(doc, k) for k in META_KEYS if getattr(doc, k)}
        record |= {"file": file, "added": time.strftime("%Y-%m-%dT%H:%M:%S")}
        return Pending(record, doc, file)

    def _from_file(self, f: Path, given: dict) -> Pending:
        from .extract import extract

        ex = extract(f)
        raw = {k: v for k, v in ex.meta.items() if v} | ({"pages": ex.pages} if ex.pages else {"text": ex.text})
        return self._record(file_doc_id(f), raw, given, f.name)

    def _from_jsonl(self, f: Path, given: dict) -> list[Pending]:
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
            out.append(self._record(doc_id, obj, given, f"{f.name}:{n}"))
        if not out:
            raise CorpusError(f"{f}: no reports in it")
        return out

    def _conflicts(self, pending: list[Pending], replace: bool) -> list[str]:
        everything, _ = load_corpus(self.sources())  # removed reports too: their ids stay taken
        owner = {d.id: d for d in everything}
        current, _ = self.load()
        texts = {_sha(d.text): d.id for d in current}
        removed = self.removed()
        problems, ids, batch = [], set(), {}
        for p in pending:
            i, name = p.doc.id, p.file
            if i in ids:
                problems.append(f"{name}: two reports would have the id {i}; rename one")
            ids.add(i)
            added = self.added_path(i).exists()
            if added and not replace:
                problems.append(f"{name}: a report with id {i} was added before; pass --replace to update it or remove it first")
            elif not added and i in owner:
                where = "removed with `reportqa remove`" if i in removed else "already indexed"
                problems.append(f"{name}: id {i} is a report in {owner[i].path or self.corpus} ({where}); rename the file")
            h = _sha(p.doc.text)
            same = texts.get(h) or batch.get(h)
            if same and same != i:
                problems.append(f"{name}: same text as the report {same}, already indexed")
            batch[h] = i
        return problems

    def save(self, pending: list[Pending]) -> list[tuple[Path, bytes | None]]:
        """Store the reports; returns what `restore` needs to undo it."""
        self.added_dir.mkdir(parents=True, exist_ok=True)
        return [_write(self.added_path(p.doc.id), json.dumps(p.record, ensure_ascii=False) + "\n") for p in pending]

    # ------------------------------------------------------------------ removing

    def remove(self, doc_id: str) -> tuple[str, list[tuple[Path, bytes | None]]]:
        """Remove a report: ("added", undo) after deleting an added one, ("corpus", undo) after listing a shipped one."""
        current, _ = self.load()
        if doc_id not in {d.id for d in current}:
            if doc_id in self.removed():
                raise CorpusError(f"report {doc_id} is already removed (listed in {self.removed_path})")
            raise CorpusError(f"no report with id {doc_id}; `reportqa list` shows the ids")
        if len(current) == 1:
            raise CorpusError(f"{doc_id} is the only report left; an index needs at least one")
        path = self.added_path(doc_id)
        if path.exists():
            backup = [(path, path.read_bytes())]
            path.unlink()
            return "added", backup
        ids = sorted(self.removed() | {doc_id})
        Path(self.data).mkdir(parents=True, exist_ok=True)
        return "corpus", [_write(self.removed_path, json.dumps(ids, ensure_ascii=False, indent=1) + "\n")]

    @staticmethod
    def restore(backup: list[tuple[Path, bytes | None]]) -> None:
        """Undo `save` or `remove` (when the index could not be updated)."""
        for path, data in backup:
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)


def _write(path: Path, text: str) -> tuple[Path, bytes | None]:
    old = path.read_bytes() if path.exists() else None
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path, old
