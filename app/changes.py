"""Changing an index and its collection: one transaction each (lock, rebuild, switch, or nothing).

An index folder's live build holds the index and the `Collection` it was built from
(collection.py). `add` and `remove` read that collection under the folder's lock, make the
new one, rebuild the index over it (embedding only passages not embedded before: the result
is the index a full rebuild gives) and save both in a new build that `CURRENT` switches to
atomically. Nothing is written anywhere else, so a change refused, failed or killed at any
point (Ctrl-C, kill, time-out) leaves the previous build, and its collection, live; the
half-written build folder is cleared by the next save. `build_from` and `rebuild` are
`reportqa index`; `migrate_legacy` moves the collection kept in `data/` before round 2.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .collection import Collection, Loaded
from .errors import IndexMismatch, IndexMissing, ReportQAError
from .extract import Limits
from .records import Document

if TYPE_CHECKING:
    from .index import BuildSettings, Encoder, ReportIndex
    from .stores import StoreRef

Progress = Callable[[int, int], None]


@dataclass
class Update:
    """What `update_index` did: the live index, passages embedded and reused, where it was saved."""

    index: ReportIndex
    embedded: int
    reused: int
    rebuilt: bool
    path: Path | None = None
    problems: list[str] = field(default_factory=list)  # files skipped while loading
    notes: list[str] = field(default_factory=list)  # what the caller should tell the user (reports kept, ...)


@dataclass
class Change:
    """What `add` or `remove` did: the reports concerned and the index update."""

    docs: list[Document]
    update: Update
    kind: str = "added"  # "added"; for a removal "added" (an added report's record deleted) or "corpus" (a source's report listed)

    @property
    def index(self) -> ReportIndex:
        return self.update.index


# --------------------------------------------------------------------------- adding and removing


def add(index_dir: Path, files: list[Path], meta: dict | None = None, *, encoder: Encoder, replace: bool = False,
        old: ReportIndex | None = None, progress: Progress | None = None, limits: Limits | None = Limits()) -> Change:  # fmt: skip
    """Add report `files` to the index in `index_dir` and to its collection, embedding only new passages.

    `meta` (title, city, date, source, url) wins over what the files say; `replace` updates
    reports added before under the same id; `limits` refuses oversized files before anything
    is done. `old`, an index already loaded (the one a server serves), lends its vectors.
    Raises `ReportQAError` (and changes nothing) on a refused file or a folder without a build.
    """
    with index_lock(index_dir):  # a server adding a report meanwhile waits, and the reverse
        col = live_collection(index_dir)
        base = col.base()
        pending = col.prepare(list(files), meta, replace=replace, limits=limits, base=base)
        upd = _commit(col.with_added(pending), index_dir, encoder, base=base, old=old, progress=progress)
    return Change([p.doc for p in pending], upd, "added")


def remove(index_dir: Path, doc_id: str, *, encoder: Encoder, old: ReportIndex | None = None,
           progress: Progress | None = None) -> Change:  # fmt: skip
    """Remove report `doc_id` from the index in `index_dir` and its collection (embeds nothing).

    An added report's record is deleted; a report of the sources is listed as removed (its file stays).
    """
    with index_lock(index_dir):
        col = live_collection(index_dir)
        base = col.base()
        new, kind, doc = col.without(doc_id, base)
        upd = _commit(new, index_dir, encoder, base=base, old=old, progress=progress)
    return Change([doc], upd, kind)


def live_collection(index_dir: Path) -> Collection:
    """The collection of the live build in `index_dir`; a clear error when there is no build or no record."""
    col = Collection.of_index(index_dir)  # IndexMissing: "build one with `reportqa index --index DIR`"
    if col is None:
        raise IndexMismatch(
            f"the index in {index_dir} was built by an older reportqa and records no collection: rebuild it once "
            f"with `reportqa index --index {index_dir}` (add --corpus PATH if it was not built from corpus/)"
        )
    return col


# --------------------------------------------------------------------------- reportqa index


def build_from(sources: list[Path], index_dir: Path, encoder: Encoder, *, if_stale: bool = False, exclude=(),
               keep_added: bool = False, progress: Progress | None = None, store: StoreRef | None = None) -> Update:  # fmt: skip
    """Index the reports of `sources` (less the ids in `exclude`) in `index_dir`, reusing the vectors
    of unchanged passages; `Update.problems` names each file skipped.

    With `keep_added` (`reportqa index --corpus`), the reports added to that index stay, on top of
    the new sources (said in `Update.notes`); without, the index holds exactly `sources` (the evaluation).
    `store`: where the search reads the rows (`reportqa index --store`); None keeps the index's.
    """
    with index_lock(index_dir):
        col, notes = Collection.of(sources, exclude), []
        if keep_added:
            try:
                live = Collection.of_index(index_dir)
            except IndexMissing:
                live = None
            except IndexMismatch as e:  # asked for after `rebuild` refused: the damaged build's reports are gone
                live = None
                notes.append(f"the collection of the index could not be read ({e}); it holds the reports of --corpus only")
            if live is not None:
                col = replace(live.with_sources(sources), removed=col.removed)
                if live.added:
                    notes.append(f"kept the {len(live.added)} reports added to this index ({', '.join(sorted(live.added))}); "
                                 "`reportqa remove ID` takes one out")  # fmt: skip
                back = sorted(set(live.removed) - set(col.removed))
                if back:
                    notes.append(f"--corpus sets the sources anew: reports removed before are indexed again if they "
                                 f"are among them ({', '.join(back)})")  # fmt: skip
        upd = _commit(col, index_dir, encoder, if_stale=if_stale, progress=progress, store=store)
    upd.notes = notes + upd.notes
    return upd


def rebuild(index_dir: Path, encoder: Encoder, *, default: Collection, if_stale: bool = False,
            progress: Progress | None = None, store: StoreRef | None = None) -> Update:  # fmt: skip
    """Rebuild the index in `index_dir` from its own collection (sources + added − removed), re-reading
    the sources; `default` (the project's corpus, say) for a folder with no build or no record yet."""
    with index_lock(index_dir):
        try:
            col = Collection.of_index(index_dir)
        except IndexMissing:
            col = None
        except IndexMismatch as e:  # not rebuilt from `default`: its added reports would be lost unseen
            raise IndexMismatch(
                f"{e}. Nothing was changed; `reportqa index --index {index_dir} --corpus PATH` rebuilds it from PATH "
                "alone (the reports added to it are lost with the damaged build)"
            ) from e
        upd = _commit(col or default, index_dir, encoder, if_stale=if_stale, progress=progress, store=store)
    return upd


# --------------------------------------------------------------------------- the commit


def _commit(col: Collection, index_dir: Path, encoder: Encoder, *, base: Loaded | None = None, if_stale: bool = False,
            old: ReportIndex | None = None, progress: Progress | None = None, store: StoreRef | None = None) -> Update:  # fmt: skip
    """Index the documents of `col` and save the index with `col` in one new build (the switch)."""
    docs, problems = col.documents(base)
    if not docs:
        raise ReportQAError(
            "".join(f"{p}\n" for p in problems) + f"no readable documents in {', '.join(col.sources) or 'the collection'}: "
            "add .txt/.md/.html/.pdf/.docx reports or a .jsonl corpus"
        )
    upd = update_index(docs, index_dir, encoder, old=old, if_stale=if_stale, progress=progress, collection=col, store=store)
    upd.problems = problems
    return upd


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Held while a process changes the index in `index_dir`, so that an addition from the UI and
    one from `reportqa add` run one after the other, never interleaved (each would otherwise save
    an index without the other's report). Not re-entrant: the functions here take it themselves."""
    folder = Path(index_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock between processes
        yield
        return
    with open(folder / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def update_index(
    docs: list[Document],
    index_dir: Path,
    encoder: Encoder,
    settings: BuildSettings | None = None,
    *,
    old: ReportIndex | None = None,
    if_stale: bool = False,
    progress: Progress | None = None,
    collection: Collection | None = None,
    store: StoreRef | None = None,
) -> Update:
    """Build and save the index of `docs` (recording `collection` in the build), embedding only
    passages not in `old` nor in the saved index. `store`: where its rows are searched (a Milvus
    collection is written with the build and goes live with it); None keeps the saved index's.

    With `if_stale`, an index already built from the same documents, settings, collection and
    store is returned as is. Callers changing a collection hold `index_lock`.
    """
    from .index import BuildSettings, ReportIndex, corpus_fingerprint

    settings = settings or BuildSettings()
    loaded = old is None
    if loaded:
        try:
            old = ReportIndex.load(index_dir, encoder, verify=False)
        except ReportQAError:  # none yet, another model, damaged: embed everything
            old = None
    if store is None:  # the store the folder's index records (read apart: `old` may be another model's)
        store = old.store_ref if old is not None else _saved_store(index_dir)
    store = None if store is None or store.embedded else store
    same_store = (store.spec if store else "embedded") == (old.store_ref.spec if old is not None and old.store_ref else "embedded")
    if (old is not None and if_stale and old.build_settings == settings and old.fingerprint == corpus_fingerprint(docs)
            and (collection is None or old.collection == collection) and same_store):  # fmt: skip
        return Update(old, 0, len(old.chunks), rebuilt=False)
    # What the folder holds (saved by another process since `old` was loaded, or by another
    # version of reportqa) and what `old` holds: neither is embedded again.
    reuse = {} if loaded and old is not None else ReportIndex.saved_vectors(index_dir, encoder.name)
    if old is not None and old.encoder.name == encoder.name:
        reuse |= old.vector_cache()
    index = ReportIndex.build(docs, encoder, settings, progress=progress, reuse=reuse)
    index.collection = collection
    index.store_ref = store
    embedded = sum(h not in reuse for h in index.hashes)
    path = index.save(index_dir)
    return Update(index, embedded, len(index.chunks) - embedded, rebuilt=True, path=path)


def _saved_store(index_dir: Path) -> StoreRef | None:
    """The store recorded by the live build in `index_dir`, None when there is none or it cannot be read."""
    from .index import ReportIndex
    from .stores import StoreRef

    try:
        return StoreRef.from_params(ReportIndex.read_params(index_dir))
    except ReportQAError:
        return None


# --------------------------------------------------------------------------- data/ before round 2


def migrate_legacy(data_dir: Path, index_dir: Path, encoder: Encoder, *, default: Collection,
                   progress: Progress | None = None) -> str | None:  # fmt: skip
    """Move the collection kept in `data_dir` before round 2 (`added/*.jsonl`, `removed.json`) into
    the collection of the index in `index_dir` (the default index), once; returns what was done,
    or None when there was nothing to do.

    One transaction, as `add`: the index is saved with its collection, then the old files are
    moved aside (`added.migrated-<time>/`, `removed.migrated-<time>.json`), never deleted; killed
    before, it runs again next time. The collection is the index's (`default` for a folder without
    a build, or with a build recording none) plus the old files. Unreadable old files are named
    in the message and moved aside with the rest. Without old files nothing is read or written.
    """
    data = Path(data_dir)
    added_dir, removed_path = data / "added", data / "removed.json"
    if not (added_dir.is_dir() or removed_path.exists()):
        return None
    with index_lock(index_dir):
        try:
            live = Collection.of_index(index_dir)
        except IndexMissing:
            live = None
        records, removed, skipped = _read_legacy(added_dir, removed_path)
        col = live or default
        new = replace(col, added={**records, **col.added}, removed=tuple(sorted({*col.removed, *removed})))
        if live is None or new != live:
            upd = _commit(new, index_dir, encoder, progress=progress)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved = []
        if added_dir.is_dir():
            os.replace(added_dir, data / f"added.migrated-{stamp}")
            moved.append(str(data / f"added.migrated-{stamp}"))
        if removed_path.exists():
            os.replace(removed_path, data / f"removed.migrated-{stamp}.json")
            moved.append(str(data / f"removed.migrated-{stamp}.json"))
    lines = [
        f"moved {len(records)} reports added before ({', '.join(sorted(records)) or 'none'}) and {len(removed)} removed "
        f"({', '.join(sorted(removed)) or 'none'}) from {data} into the collection of the index in {index_dir}, "
        f"which keeps them from now on; the old files are kept in {' and '.join(moved)}"
    ]
    if live is None or new != live:
        lines.append(f"the index holds {len(upd.index.docs)} reports ({upd.embedded} passages embedded) -> {upd.path}")
    lines += [f"warning: {s}" for s in skipped]
    return "\n".join(lines)


def _read_legacy(added_dir: Path, removed_path: Path) -> tuple[dict[str, dict], set[str], list[str]]:
    """The records of `data/added/*.jsonl` and the ids of `data/removed.json`, and what could not be read."""
    records: dict[str, dict] = {}
    removed: set[str] = set()
    skipped: list[str] = []
    for f in sorted(added_dir.glob("*.jsonl")) if added_dir.is_dir() else []:
        try:
            for n, line in enumerate(f.read_text("utf-8").splitlines(), 1):
                if line.strip():
                    rec = json.loads(line)
                    if not isinstance(rec, dict) or "id" not in rec or not isinstance(rec.get("text", rec.get("pages")), (str, list)):
                        raise ValueError(f"line {n} has no id and text (or pages)")
                    rec.setdefault("file", f.name)
                    records.setdefault(str(rec["id"]), rec)
        except (OSError, ValueError) as e:
            skipped.append(f"{f}: not migrated ({e.__class__.__name__}: {e}); add it again with `reportqa add` once fixed")
    if removed_path.exists():
        try:
            ids = json.loads(removed_path.read_text("utf-8"))
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ValueError("not a JSON list of report ids")
            removed = set(ids)
        except (OSError, ValueError) as e:
            skipped.append(f"{removed_path}: not migrated ({e.__class__.__name__}: {e}); `reportqa remove ID` removes a report")
    return records, removed, skipped
