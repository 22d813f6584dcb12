"""The index: chunks, their vectors (FAISS, exact inner product) and a BM25 keyword index.

On disk an index is a folder holding `CURRENT` (the name of the live build) and one
sub-folder per build with plain files: `params.json` (model, dimensions, chunking
settings, corpus fingerprint, format version, file checksums), `docs.jsonl`,
`chunks.jsonl`, `vectors.npy`, `dense.faiss`, `bm25/` (words), `bm25_bigram/`
(character bigrams) and `bm25_en/` (the English glosses of the words, `gloss.py`). A build is written in a new sub-folder and made live by replacing
`CURRENT` atomically, so a build killed at any point leaves the previous index usable.
`params.json` also records the build's store (`stores.StoreRef`): "embedded" (FAISS and bm25s
of these files) or a Milvus collection, written before the switch and made live after it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .chunk import chunk_document
from .errors import IndexMismatch, IndexMissing, ReportQAError
from .files import file_sha256
from .gloss import gloss_tokens
from .keyword import KeywordIndex, bigrams, tokenize
from .records import Answer, Chunk, Document
from .textnorm import to_simplified

FORMAT_VERSION = 4  # 2: character-bigram BM25 in bm25_bigram/; 3: English-gloss BM25 in bm25_en/; 4: sentence vectors
PIPELINE_VERSION = 2  # bump when cleaning or chunking changes what a corpus turns into
# Up to this many chunks the dense index is exact (about 3 ms a question at 20,000); above, IVF,
# whose recall@10 stays >= 0.99 to 300,000 chunks and 0.98 at a million (eval/performance.md).
EXACT_LIMIT = 20_000
IVF_NPROBE = 32  # lists searched per question


class Encoder(Protocol):
    name: str
    dim: int

    def queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def passages(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    # optional: `sentences(texts, progress)`, the passages' sentences (else `passages` embeds them)


@dataclass(frozen=True)
class BuildSettings:
    """What an index is built with; any change means a rebuild."""

    chunk_size: int = 500  # 250/60 -> 500/100: reports MRR@10 0.918 -> 0.941, CMRC hybrid hit@1 0.869 -> 0.952
    chunk_overlap: int = 100
    context: bool = True  # prefix city and title to what is embedded and keyword-indexed
    simplify_embedded: bool = False  # embed traditional reports in simplified script
    # Every sentence of every passage embedded too, for the reranker's sentence-level similarity
    # (eval/tuning.md: about half its gain; the sentences are short, so indexing takes about twice as long).
    sentence_vectors: bool = True


_SHIPPED = object()  # the index uses the model shipped with reportqa (loaded at its first search)


@dataclass
class Sentences:
    """The sentences of the passages, embedded: row `i` is sentence `start[i]:end[i]` of chunk `chunk[i]`;
    a chunk's sentences are contiguous (`first[c]` to `first[c + 1]`)."""

    vectors: np.ndarray
    chunk: np.ndarray
    start: np.ndarray
    end: np.ndarray
    hashes: list[str]

    @classmethod
    def empty(cls, dim: int) -> Sentences:
        z = np.zeros(0, np.int32)
        return cls(np.zeros((0, dim), np.float32), z, z.copy(), z.copy(), [])

    def __post_init__(self):
        self.first = np.searchsorted(self.chunk, np.arange(int(self.chunk.max()) + 2 if len(self.chunk) else 1))
        self._passages: dict[tuple[int, ...], tuple[np.ndarray, dict[tuple[int, int], int]]] = {}

    def of_chunk(self, row: int) -> slice:
        if row + 1 >= len(self.first):
            return slice(0, 0)
        return slice(int(self.first[row]), int(self.first[row + 1]))

    def of_passage(self, rows: tuple[int, ...], chunks) -> tuple[np.ndarray, dict[tuple[int, int], int]]:
        """The sentence rows of a passage merged from chunk `rows` (`chunks`: the index's), each
        sentence once in text order, and where each sits: {(doc start, doc end): position}.
        Memoised per passage: the same passages come back question after question."""
        key = tuple(rows)
        got = self._passages.get(key)
        if got is None:
            picks, spans = [], {}
            for r in sorted(key, key=lambda r: chunks[r].start):
                c = chunks[r]
                sl = self.of_chunk(r)
                for i, a, b in zip(range(sl.start, sl.stop), self.start[sl].tolist(), self.end[sl].tolist()):
                    span = (c.start + a, c.start + b)
                    if span not in spans:
                        spans[span] = len(picks)
                        picks.append(i)
            got = (np.asarray(picks, np.int64), spans)
            if len(self._passages) >= 2048:  # a bound (a few KB an entry) for a server asked very many questions
                self._passages.clear()
            self._passages[key] = got
        return got


def sentence_hash(text: str) -> str:
    return hashlib.sha256(("sentence\0" + text).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SearchSettings:
    """How a question is answered; tuned with `reportqa eval`."""

    # Fusion: min-max over the candidates of all signals, dense weight from keyword coverage,
    # word + bigram BM25 (eval/tuning.md: RRF and score fusion over all rows measured worse)
    w_dense_max: float = 0.75  # "adaptive": dense weight when the best keyword passage has none of the question's words
    w_dense_min: float = 0.35  # ... and when it has them all
    w_bigram: float = 0.5  # share of character-bigram BM25 in the keyword side
    w_gloss: float = 0.5  # English questions: share of English-gloss BM25 in the keyword side
    candidates: int = 50  # best rows taken from each signal
    translate: bool = True  # English questions get Chinese keyword terms from CC-CEDICT
    dense_terms: bool = True  # ... and those terms appended to the embedded question
    merge_overlaps: bool = True  # an overlapping neighbour extends a passage instead of being dropped
    city_first: bool = True  # passages from a city the question names rank first
    w_coverage: float = 0.3  # weight of keyword coverage in the answerability confidence
    figure_check: bool = True  # a question asking for a figure is covered by sentences holding one
    w_contrast: float = 1.0  # weight of the city contrast beyond `contrast_margin` (a penalty)
    contrast_margin: float = 0.2  # answerable questions of eval/questions.jsonl stay below 0.04
    contrast_passages: int = 5  # best passages of the other cities compared with the named city's
    rerank: bool = True  # the learned reranker and answerability model (trust.py), in the hybrid mode
    rerank_candidates: int = 20  # passages it reorders (10 would save 2 ms but ranked and refused worse: eval/tuning.md)
    # the learned path's highlight: each sentence's lexical score (relative to the passage's best) plus
    # this weight times its vector similarity to the question (relative to the best); 0: lexical only
    sentence_sim_weight: float = 2.0
    answer_threshold: float | None = None  # minimum confidence for `answered`; None: the model's (else search.HAND_THRESHOLD)

    def overridden(self, pairs: Sequence[str]) -> SearchSettings:
        """These settings with `NAME=VALUE` pairs applied (`reportqa eval --set`, for ablations)."""
        from dataclasses import fields, replace

        types = {f.name: f.type for f in fields(self)}
        changes = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in types:
                raise ValueError(f"--set takes NAME=VALUE with NAME one of {', '.join(types)}; got {pair!r}")
            kind = types[name] if isinstance(types[name], str) else types[name].__name__
            kind = kind.split(" | ")[0]  # an optional value: its type
            try:
                if kind == "bool":
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                        raise ValueError(value)
                    changes[name] = value.lower() in ("true", "1", "yes", "on")
                else:
                    changes[name] = {"int": int, "float": float}.get(kind, str)(value)
            except ValueError:
                raise ValueError(f"--set {name}: {value!r} is not a {kind}") from None
        return replace(self, **changes)


def context_text(chunk: Chunk, doc: Document, settings: BuildSettings) -> str:
    """What is embedded and keyword-indexed for a chunk: its report's city and title, then the text."""
    text = chunk.text
    if settings.context and doc.city:
        text = text.replace("我市", f"我市（{doc.city}市）")
        text = f"{doc.city}市｜{doc.title}\n{text}"
    elif settings.context:
        text = f"{doc.title}\n{text}"
    if settings.simplify_embedded:
        text = to_simplified(text)
    return text


def corpus_fingerprint(docs: list[Document]) -> str:
    h = hashlib.sha256(f"pipeline-{PIPELINE_VERSION}".encode())
    for d in sorted(docs, key=lambda d: d.id):
        h.update(json.dumps(d.to_dict() | {"path": ""}, ensure_ascii=False, sort_keys=True).encode())
    return h.hexdigest()


def dense_index(vectors: np.ndarray, dim: int | None = None, exact_limit: int | None = None, nprobe: int | None = None):
    """A FAISS inner-product index over unit `vectors`: exact (flat) up to `exact_limit` rows, IVF above.

    The IVF has about 4 sqrt(n) lists, trained on a sample of 64 vectors per list (k-means
    on all of a million vectors takes minutes on two cores).
    """
    import faiss

    exact_limit = EXACT_LIMIT if exact_limit is None else exact_limit
    nprobe = IVF_NPROBE if nprobe is None else nprobe
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    d = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else dim
    if n <= exact_limit:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))  # faiss wants >= 39 training points per list
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.max_points_per_centroid = 64
        index.train(vectors)
        index.nprobe = min(nprobe, nlist)
    if n:
        index.add(vectors)
    return index


class ReportIndex:
    """All retrieval state: `build`, `save`, `load`, `search`."""

    collection = None  # the `Collection` (collection.py) it was built from, saved and loaded with it

    def __init__(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, keyword: KeywordIndex,
                 encoder: Encoder, build: BuildSettings, fingerprint: str, hashes: list[str], bigram: KeywordIndex,
                 gloss: KeywordIndex | None = None, dense=None, sentences: Sentences | None = None):  # fmt: skip
        self.docs = {d.id: d for d in docs}
        self.chunks = chunks
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.keyword = keyword
        self.bigram = bigram  # BM25 over character bigrams, same rows
        self.gloss = gloss if gloss is not None else KeywordIndex()  # BM25 over English glosses, same rows
        self.sentences = sentences if sentences is not None else Sentences.empty(encoder.dim)
        self._trust = _SHIPPED  # the learned reranker and answerability model: the shipped one unless set
        self.encoder = encoder
        self.build_settings = build
        self.fingerprint = fingerprint
        self.hashes = hashes
        self.store_ref = None  # where the search reads its rows (`stores.StoreRef`); None: the embedded store
        self._store = None
        # `dense`: the saved FAISS index, read back by `load` so an IVF is not trained again
        self.dense = dense if dense is not None else dense_index(self.vectors, encoder.dim)
        self.max_idf = max(keyword.idf.values(), default=1.0)  # the weight of a word no passage has
        names = sorted({d.city for d in self.docs.values()})
        self.city_codes = {c: i for i, c in enumerate(names)}  # each chunk's city as a small int, for masks
        self.chunk_city = np.array([self.city_codes[self.docs[c.doc_id].city] for c in chunks], np.int32)

    @property
    def store(self):
        """What the search reads its rows from (`stores.Store`): FAISS and bm25s of this index unless
        it was built with `--store milvus:...`; opened on first use (a Milvus store is connected then)."""
        if self._store is None:
            from .stores import EmbeddedStore

            self._store = EmbeddedStore(self) if self.store_ref is None else self.store_ref.open(self)
        return self._store

    @property
    def trust(self):
        """The learned reranker and answerability model searches use (`trust.py`); None: the hand-set path."""
        if self._trust is _SHIPPED:
            from .trust import shipped

            self._trust = shipped()
        return self._trust

    @trust.setter
    def trust(self, model) -> None:
        self._trust = model

    # ------------------------------------------------------------------ build

    @classmethod
    def build(cls, docs: list[Document], encoder: Encoder, settings: BuildSettings = BuildSettings(),
              progress: Callable[[int, int], None] | None = None,
              reuse: dict[str, np.ndarray] | None = None) -> ReportIndex:  # fmt: skip
        """Chunk, embed and index `docs`. Vectors in `reuse` (content hash -> vector) are not re-embedded."""
        chunks: list[Chunk] = []
        texts: list[str] = []
        by_id = {d.id: d for d in docs}
        for d in docs:
            for c in chunk_document(d, settings.chunk_size, settings.chunk_overlap):
                chunks.append(c)
                texts.append(context_text(c, d, settings))
        hashes = [hashlib.sha256(t.encode()).hexdigest()[:32] for t in texts]
        reuse = reuse or {}
        s_chunk, s_start, s_end, s_texts = [], [], [], []
        if settings.sentence_vectors:
            from .highlight import sentences

            for row, c in enumerate(chunks):
                for a, b in sentences(c.text):
                    if c.text[a:b].strip():
                        s_chunk.append(row), s_start.append(a), s_end.append(b), s_texts.append(c.text[a:b].strip())
        s_hashes = [sentence_hash(t) for t in s_texts]
        todo = [i for i, h in enumerate(hashes) if h not in reuse]
        s_todo = sorted({h: i for i, h in enumerate(s_hashes) if h not in reuse}.values(), key=lambda i: len(s_texts[i]))
        vectors = np.zeros((len(chunks), encoder.dim), np.float32)
        for i, h in enumerate(hashes):
            if h in reuse:
                vectors[i] = reuse[h]
        total = len(chunks) + len(set(s_hashes))
        done = total - len(todo) - len(s_todo)
        if progress:
            progress(done, total)

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        if todo:
            vectors[todo] = encoder.passages([texts[i] for i in todo], progress=step)
        embed_sentences = getattr(encoder, "sentences", encoder.passages)
        fresh = dict(zip((s_hashes[i] for i in s_todo), embed_sentences([s_texts[i] for i in s_todo], progress=step))) if s_todo else {}
        s_vectors = np.array([reuse[h] if h in reuse else fresh[h] for h in s_hashes], np.float32).reshape(len(s_hashes), encoder.dim)
        sents = Sentences(s_vectors, np.array(s_chunk, np.int32), np.array(s_start, np.int32), np.array(s_end, np.int32), s_hashes)
        tokens = [tokenize(t) for t in texts]
        keyword = KeywordIndex()
        keyword.index(tokens)
        bigram = KeywordIndex()
        bigram.index([bigrams(t) for t in texts])
        gloss = KeywordIndex()
        gloss.index([gloss_tokens(t) for t in tokens])
        return cls(list(by_id.values()), chunks, vectors, keyword, encoder, settings, corpus_fingerprint(docs), hashes,
                   bigram=bigram, gloss=gloss, sentences=sents)  # fmt: skip

    # ------------------------------------------------------------------ disk

    def params(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.encoder.name,
            "dim": int(self.vectors.shape[1]) if self.vectors.size else self.encoder.dim,
            "build": asdict(self.build_settings),
            "corpus_fingerprint": self.fingerprint,
            "documents": len(self.docs),
            "chunks": len(self.chunks),
            "sentences": len(self.sentences.hashes),
            "trust": _trust_params(),
            "store": self.store_ref.to_params() if self.store_ref is not None else {"spec": "embedded"},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def save(self, folder: Path) -> Path:
        """Write a new build under `folder` and make it the live one atomically."""
        import faiss

        from .collection import ORIGINALS

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"build-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.time_ns() % 10**9:09d}-{self.fingerprint[:8]}"
        tmp = folder / f".{name}.tmp"
        tmp.mkdir()
        with (tmp / "docs.jsonl").open("w", encoding="utf-8") as f:
            for d in self.docs.values():
                f.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")
        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as f:
            for c, h in zip(self.chunks, self.hashes):
                f.write(json.dumps(c.to_dict() | {"hash": h}, ensure_ascii=False) + "\n")
        np.save(tmp / "vectors.npy", self.vectors)
        st = self.sentences
        np.save(tmp / "sentences.npy", st.vectors)
        np.savez(tmp / "sentence_spans.npz", chunk=st.chunk, start=st.start, end=st.end)
        (tmp / "sentence_hashes.txt").write_text("\n".join(st.hashes), encoding="utf-8")
        faiss.write_index(self.dense, str(tmp / "dense.faiss"))
        self.keyword.save(tmp / "bm25")
        self.bigram.save(tmp / "bm25_bigram", idf=False)
        self.gloss.save(tmp / "bm25_en", idf=False)
        if self.collection is not None:  # switched live with the index, checksummed with it (but its kept PDFs)
            self.collection.write(tmp)
        milvus = None
        if self.store_ref is not None and not self.store_ref.embedded:  # written now, live after `CURRENT`
            from dataclasses import replace

            milvus = self.store_ref.create(self)
            self.store_ref = replace(self.store_ref, collection=milvus.collection)
        # not the kept PDFs (collection.ORIGINALS): each record's `original_sha256` guards its file, checked when
        # a page is shown, so that one gone or changed loses its pages only, and loads never read them all
        files = sorted(p for p in tmp.rglob("*") if p.is_file() and p.relative_to(tmp).parts[0] != ORIGINALS)
        params = self.params() | {"files": {str(p.relative_to(tmp)): file_sha256(p) for p in files}}
        (tmp / "params.json").write_text(json.dumps(params, indent=2, ensure_ascii=False))
        os.replace(tmp, folder / name)
        pointer = folder / ".CURRENT.tmp"
        pointer.write_text(name + "\n")
        os.replace(pointer, folder / "CURRENT")  # the atomic switch
        if milvus is not None:
            milvus.make_live()  # the Milvus alias follows; earlier builds of this index are dropped
            self._store = milvus
        for old in folder.glob("build-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        for old in folder.glob(".build-*.tmp"):
            if old != tmp:
                shutil.rmtree(old, ignore_errors=True)
        return folder / name

    @staticmethod
    def live_folder(folder: Path) -> Path:
        folder = Path(folder)
        pointer = folder / "CURRENT"
        if not pointer.exists():
            raise IndexMissing(f"no index in {folder}: build one with `reportqa index --index {folder}`")
        live = folder / pointer.read_text().strip()
        if not (live / "params.json").exists():
            raise IndexMismatch(
                f"the index in {folder} is damaged (missing {live.name}); rebuild it with `reportqa index --index {folder}`"
            )
        return live

    @staticmethod
    def read_params(folder: Path) -> dict:
        live = ReportIndex.live_folder(folder)
        try:
            return json.loads((live / "params.json").read_text())
        except ValueError as e:
            raise IndexMismatch(f"{live / 'params.json'} is damaged; rebuild with `reportqa index --index {folder}`") from e

    @classmethod
    def load(cls, folder: Path, encoder: Encoder, settings: BuildSettings | None = None, verify: bool = True) -> ReportIndex:
        """Load the live build; refuse one made with another model, settings or format, or damaged."""
        import faiss

        from .collection import Collection

        folder = Path(folder)
        live = cls.live_folder(folder)
        params = cls.read_params(folder)
        fix = f"rebuild it with `reportqa index --index {folder}`"
        if params.get("format_version") != FORMAT_VERSION:
            raise IndexMismatch(
                f"the index in {folder} has format {params.get('format_version')}, this reportqa reads {FORMAT_VERSION}: {fix}"
            )
        if params.get("model") != encoder.name:
            raise IndexMismatch(
                f"the index in {folder} was built with model {params.get('model')!r}, not {encoder.name!r}: {fix}"
            )
        if settings is not None and params.get("build") != asdict(settings):
            raise IndexMismatch(f"the index in {folder} was built with other settings {params.get('build')}: {fix}")
        if verify:
            for rel, digest in params.get("files", {}).items():
                p = live / rel
                if not p.exists() or file_sha256(p) != digest:
                    raise IndexMismatch(f"index file {p} is missing or corrupted: {fix}")
        try:
            docs = [Document(**json.loads(ln)) for ln in (live / "docs.jsonl").read_text("utf-8").splitlines()]
            rows = [json.loads(ln) for ln in (live / "chunks.jsonl").read_text("utf-8").splitlines()]
            hashes = [r.pop("hash") for r in rows]
            chunks = [Chunk(**r) for r in rows]
            vectors = np.load(live / "vectors.npy", allow_pickle=False)
            sents = _load_sentences(live)
            keyword = KeywordIndex.load(live / "bm25", len(chunks))
            bigram = KeywordIndex.load(live / "bm25_bigram", len(chunks))
            collection = Collection.read(live)
            gloss = KeywordIndex.load(live / "bm25_en", len(chunks))
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise IndexMismatch(f"the index in {folder} cannot be read ({e}): {fix}") from e
        if len(vectors) != len(chunks) or (len(chunks) and vectors.shape[1] != params.get("dim")):
            raise IndexMismatch(f"the index in {folder} is inconsistent (vectors vs chunks): {fix}")
        dense = None
        if len(vectors) > EXACT_LIMIT and (live / "dense.faiss").exists():  # an IVF: read it rather than train again
            dense = faiss.read_index(str(live / "dense.faiss"))
            if dense.ntotal != len(vectors):
                dense = None
        self = cls(docs, chunks, vectors, keyword, encoder, BuildSettings(**params["build"]), params["corpus_fingerprint"], hashes,
                   dense=dense, bigram=bigram, gloss=gloss, sentences=sents)  # fmt: skip
        self.collection = collection
        self.store_ref = _store_ref(params)
        return self

    @staticmethod
    def saved_vectors(folder: Path, model: str) -> dict[str, np.ndarray]:
        """Content hash -> vector from the index saved in `folder` if `model` made it, whatever its
        format or settings (the hash covers the embedded text): what an index that cannot be
        loaded any more still spares a rebuild. Empty when there is nothing usable."""
        try:
            live = ReportIndex.live_folder(folder)
            params = ReportIndex.read_params(folder)
            if params.get("model") != model:
                return {}
            digests = params.get("files", {})
            if any(file_sha256(live / f) != digests.get(f) for f in ("chunks.jsonl", "vectors.npy")):
                return {}  # damaged: its vectors are not to be trusted
            lines = (live / "chunks.jsonl").read_text("utf-8").splitlines()
            hashes = [json.loads(ln)["hash"] for ln in lines]
            vectors = np.load(live / "vectors.npy", allow_pickle=False)
            out = dict(zip(hashes, vectors)) if len(vectors) == len(hashes) else {}
            if out and (live / "sentences.npy").exists() and file_sha256(live / "sentences.npy") == digests.get("sentences.npy"):
                st = _load_sentences(live)
                out.update(zip(st.hashes, st.vectors))
        except (OSError, ValueError, TypeError, KeyError, IndexMismatch, IndexMissing):
            return {}
        return out

    def passage_counts(self) -> dict[str, int]:
        """Passages per report id."""
        from collections import Counter

        return dict(Counter(c.doc_id for c in self.chunks))

    def vector_cache(self) -> dict[str, np.ndarray]:
        """Content hash -> vector, for rebuilding without re-embedding unchanged passages."""
        out = {h: self.vectors[i] for i, h in enumerate(self.hashes)}
        out.update(zip(self.sentences.hashes, self.sentences.vectors))
        return out

    # ------------------------------------------------------------------ search

    def queries(self, questions: Sequence[str], settings: SearchSettings = SearchSettings()) -> list:
        """The questions parsed for this index: English ones get Chinese terms from its vocabulary."""
        from .query import parse_query

        known = self.city_codes.keys()  # reports added about other cities count as covered
        return [parse_query(q, self.keyword.idf, known, translate=settings.translate, dense_terms=settings.dense_terms)
                for q in questions]  # fmt: skip

    def search_many(self, questions: Sequence[str], top_k: int = 5, mode: str = "hybrid",
                    settings: SearchSettings = SearchSettings(), mask: np.ndarray | None = None) -> list[Answer]:  # fmt: skip
        """Answer several questions (only from the rows in `mask`, when given); queries are embedded in one batch."""
        from .search import search

        return search(self, self.queries(questions, settings), top_k, mode, settings, mask)

    def search(self, question: str, top_k: int = 5, mode: str = "hybrid", settings: SearchSettings = SearchSettings(),
               mask: np.ndarray | None = None) -> Answer:  # fmt: skip
        return self.search_many([question], top_k, mode, settings, mask)[0]


def _store_ref(params: dict):
    """The store params.json records; None for the embedded one (an index of before #17 records none)."""
    from .stores import StoreRef

    ref = StoreRef.from_params(params)
    return None if ref.embedded else ref


def _load_sentences(live: Path) -> Sentences:
    vectors = np.load(live / "sentences.npy", allow_pickle=False)
    spans = np.load(live / "sentence_spans.npz", allow_pickle=False)
    text = (live / "sentence_hashes.txt").read_text("utf-8")
    hashes = text.split("\n") if text else []
    if not (len(vectors) == len(hashes) == len(spans["chunk"])):
        raise ValueError("sentence vectors and spans differ in length")
    return Sentences(vectors.astype(np.float32), spans["chunk"], spans["start"], spans["end"], hashes)


def _trust_params() -> dict | None:
    """The ranking model searches of this index use: its hash and feature version (provenance)."""
    from .trust import shipped

    try:
        model = shipped()
    except ReportQAError as e:  # recorded, not fatal: the search refuses it with the fix
        return {"error": str(e)}
    return {"sha256": model.sha256, "feature_version": model.feature_version} if model else None
