"""Changing an index: building it from sources, and updating it after its collection changed.

`update_index` rebuilds the index over a list of documents, reusing the vector of every
passage whose embedded text is unchanged: adding or removing a report embeds only new
passages, and the result is the index a full rebuild would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ReportQAError
from .load import load_corpus
from .records import Document

if TYPE_CHECKING:
    from .collection import Collection
    from .index import BuildSettings, Encoder, ReportIndex



@dataclass
class Update:
    """What `update_index` did: the live index, passages embedded and reused, where it was saved."""

    index: ReportIndex
    embedded: int
    reused: int
    rebuilt: bool
    path: Path | None = None
    problems: list[str] = field(default_factory=list)  # files skipped while loading


@dataclass
class Change:
    """What `add` or `remove` did: the reports concerned and the index update."""

    docs: list[Document]
    update: Update
    kind: str = "added"  # "added", or for a removal "added" (an added report deleted) or "corpus" (a shipped one listed)

    @property
    def index(self) -> ReportIndex:
        return self.update.index


def add(collection: Collection, index_dir: Path, files: list[Path], meta: dict | None = None, *, encoder: Encoder,
        replace: bool = False, old: ReportIndex | None = None, progress: Callable[[int, int], None] | None = None) -> Change:  # fmt: skip
    """Add report `files` to `collection` and update the index in `index_dir`, embedding only new passages.

    `old` is the index already loaded (its vectors are reused); nothing changes if anything fails.
    """
    with index_lock(index_dir):  # a server adding a report meanwhile waits, and the reverse
        pending = collection.prepare(list(files), meta, replace=replace)
        upd = reindex_or_undo(collection, collection.save(pending), lambda: _reindex(collection, index_dir, encoder, old, progress))
    return Change([p.doc for p in pending], upd)


def remove(collection: Collection, index_dir: Path, doc_id: str, *, encoder: Encoder, old: ReportIndex | None = None,
           progress: Callable[[int, int], None] | None = None) -> Change:  # fmt: skip
    """Remove report `doc_id` from `collection` and from the index in `index_dir`."""
    with index_lock(index_dir):
        docs, _ = collection.load()
        doc = next((d for d in docs if d.id == doc_id), None)
        kind, backup = collection.remove(doc_id)
        upd = reindex_or_undo(collection, backup, lambda: _reindex(collection, index_dir, encoder, old, progress))
    return Change([doc] if doc else [], upd, kind)


def _reindex(collection: Collection, index_dir: Path, encoder: Encoder, old: ReportIndex | None, progress) -> Update:
    docs, _ = collection.load()
    return update_index(docs, index_dir, encoder, old=old, progress=progress)


def reindex_or_undo(collection: Collection, backup: list[tuple[Path, bytes | None]], reindex: Callable[[], Update]) -> Update:
    """Run `reindex` after the collection changed; if it fails, undo the change (`backup`, from
    `save` or `remove`) so that collection and index stay as they were."""
    try:
        return reindex()
    except BaseException:
        collection.restore(backup)
        raise


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Held while a process changes the collection and rebuilds the index in `index_dir`, so that
    an addition from the UI and one from `reportqa add` run one after the other, never
    interleaved (each would otherwise save an index without the other's report)."""
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
    progress: Callable[[int, int], None] | None = None,
) -> Update:
    """Build and save the index of `docs`, embedding only passages not in `old` (else the saved index).

    With `if_stale`, an index already built from the same documents and settings is returned as is.
    """
    from .index import BuildSettings, ReportIndex, corpus_fingerprint

    settings = settings or BuildSettings()
    if old is None:
        try:
            old = ReportIndex.load(index_dir, encoder, verify=False)
        except ReportQAError:  # none yet, another model, damaged: embed everything
            old = None
    if old is not None and if_stale and old.build_settings == settings and old.fingerprint == corpus_fingerprint(docs):
        return Update(old, 0, len(old.chunks), rebuilt=False)
    if old is not None:
        reuse = old.vector_cache() if old.encoder.name == encoder.name else {}
    else:  # saved by another version of reportqa, say: its vectors still serve
        reuse = ReportIndex.saved_vectors(index_dir, encoder.name)
    index = ReportIndex.build(docs, encoder, settings, progress=progress, reuse=reuse)
    embedded = sum(h not in reuse for h in index.hashes)
    path = index.save(index_dir)
    return Update(index, embedded, len(index.chunks) - embedded, rebuilt=True, path=path)


def build_from(sources: list[Path], index_dir: Path, encoder: Encoder, *, if_stale: bool = False, exclude=(),
               progress: Callable[[int, int], None] | None = None) -> Update:  # fmt: skip
    """Load, clean, chunk, embed and save the reports of `sources` (less the ids in `exclude`);
    reuses the vectors of unchanged passages. `Update.problems` names each file skipped."""
    docs, problems = load_corpus(sources, exclude=exclude)
    if not docs:
        skipped = "".join(f"\n  skipped: {p}" for p in problems)
        raise ReportQAError(
            f"no readable documents in {', '.join(map(str, sources))}: add .txt/.md/.html/.pdf/.docx reports or a .jsonl corpus{skipped}"
        )
    upd = update_index(docs, index_dir, encoder, if_stale=if_stale, progress=progress)
    upd.problems = problems
    return upd
