"""Where the search reads its rows from: a `Store` answers the three questions the candidates step
asks (the best rows by dense similarity, the best rows by a keyword field's BM25, and the vectors
and keyword scores of given rows), within a `RowFilter`.

`EmbeddedStore` answers them from a loaded `ReportIndex` (FAISS and bm25s, as the search always
did); `MilvusStore` from a Milvus collection, Milvus Lite (`PATH.db`) or a server
(`http://HOST:19530`). Its keyword fields are sparse vectors holding our own BM25 (the jieba
words, the character bigrams and the English glosses of `keyword.py`): each row keeps its terms'
BM25 saturation and the question carries the terms' IDF, so the inner product is the bm25s score
and the ranking is the one of the embedded index (`eval/performance.md`: why not Milvus's own BM25).

`store_candidates` is the search's `candidates` step written against a store.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from . import fusion as F
from .errors import IndexMismatch, IndexMissing, ReportQAError

if TYPE_CHECKING:
    from .index import BuildSettings, ReportIndex, SearchSettings
    from .keyword import KeywordIndex
    from .query import Query
    from .search import Signals

FIELDS = ("word", "bigram", "gloss")  # the keyword fields: KeywordIndex `keyword`, `bigram`, `gloss` of ReportIndex
STORE_FORMAT = 1  # bump when the collection layout changes
MILVUS_HINT = "pip install 'reportqa[milvus]'"
MAX_LIMIT = 16_384  # Milvus's largest top-k
NO_TERM = 2**32 - 2  # sparse dimension of a row without terms: above any vocabulary id


class StoreUnavailable(ReportQAError):
    """The store cannot be reached or its client library is missing."""


# ---------------------------------------------------------------------- filters


def date_span(date: str) -> tuple[int, int]:
    """The days a report's date covers, as YYYYMMDD integers: "2024" is 20240101-20241231,
    "2024-09" 20240901-20240931 (a bound, not a day), "2024-04-18" that day; (0, 0) when undated."""
    m = re.match(r"\s*(\d{4})(?:\D{1,2}(\d{1,2})(?:\D{1,2}(\d{1,2}))?)?", date or "")
    if not m:
        return 0, 0
    y, mo, d = int(m[1]), m[2] and int(m[2]), m[3] and int(m[3])
    if not mo:
        return y * 10000 + 101, y * 10000 + 1231
    if not d:
        return y * 10000 + mo * 100 + 1, y * 10000 + mo * 100 + 31
    return (y * 10000 + mo * 100 + d,) * 2


def _quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a Milvus string literal: double quotes, backslash escapes


@dataclass(frozen=True)
class RowFilter:
    """The rows a search may return: of these cities, of these reports, dated within
    `date_from`..`date_to` (inclusive, "2024", "2024-03" or "2024-03-15"; an undated report is
    outside any date range). Empty fields do not filter."""

    cities: tuple[str, ...] = ()
    reports: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""

    @classmethod
    def of(cls, city: str = "", report: str = "", date_from: str = "", date_to: str = "") -> RowFilter | None:
        """The filter of the search's `city` and `report` arguments; None when nothing is filtered."""
        f = cls((city,) if city else (), (report,) if report else (), date_from, date_to)
        return f if f.active else None

    @property
    def active(self) -> bool:
        return bool(self.cities or self.reports or self.date_from or self.date_to)

    def _dates(self) -> tuple[int | None, int | None]:
        lo = date_span(self.date_from)[0] if self.date_from else None
        hi = date_span(self.date_to)[1] if self.date_to else None
        return lo, hi

    def expression(self) -> str:
        """The filter as a Milvus boolean expression over the collection's scalar fields ("" for none)."""
        parts = []
        if self.cities:
            parts.append(f"city in [{', '.join(map(_quote, self.cities))}]")
        if self.reports:
            parts.append(f"report in [{', '.join(map(_quote, self.reports))}]")
        lo, hi = self._dates()
        if lo is not None or hi is not None:
            parts.append("date_lo > 0")
        if lo is not None:
            parts.append(f"date_hi >= {lo}")
        if hi is not None:
            parts.append(f"date_lo <= {hi}")
        return " and ".join(parts)

    def mask(self, meta: RowMeta) -> np.ndarray:
        """The filter as a boolean row mask."""
        keep = np.ones(len(meta.city), bool)
        if self.cities:
            keep &= np.isin(meta.city, list(self.cities))
        if self.reports:
            keep &= np.isin(meta.report, list(self.reports))
        lo, hi = self._dates()
        if lo is not None or hi is not None:
            keep &= meta.date_lo > 0
        if lo is not None:
            keep &= meta.date_hi >= lo
        if hi is not None:
            keep &= meta.date_lo <= hi
        return keep


@dataclass
class RowMeta:
    """What filters read about each row: its report's city, id and date span."""

    city: np.ndarray
    report: np.ndarray
    date_lo: np.ndarray
    date_hi: np.ndarray

    @classmethod
    def of(cls, index: ReportIndex) -> RowMeta:
        docs = [index.docs[c.doc_id] for c in index.chunks]
        spans = np.array([date_span(d.date) for d in docs], np.int64).reshape(-1, 2)
        return cls(np.array([d.city for d in docs], dtype=object), np.array([d.id for d in docs], dtype=object),
                   spans[:, 0], spans[:, 1])  # fmt: skip


Allowed = RowFilter | np.ndarray | None  # a filter, or a row mask (what `answer.row_mask` gives today)


# ---------------------------------------------------------------------- the interface


class Store(Protocol):
    """The rows of one index build, as the search reads them. Rows are the positions of
    `ReportIndex.chunks`; results come best first."""

    def count(self) -> int: ...

    def dense_top(self, qvec: np.ndarray, k: int, allowed: Allowed = None) -> tuple[np.ndarray, np.ndarray]:
        """The `k` allowed rows most similar to the unit vector `qvec` (inner product) and their similarities."""
        ...

    def keyword_top(self, field: str, tokens: Sequence[str], k: int, allowed: Allowed = None) -> tuple[np.ndarray, np.ndarray]:
        """Up to `k` allowed rows with a positive BM25 score for `tokens` in `field`, and the scores."""
        ...

    def keyword_scores(self, field: str, tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """The BM25 scores of `rows` for `tokens` in `field` (0 where none match): the fusion
        min-max normalises each signal over all candidates, so a dense candidate needs its keyword
        score even when it is not among the keyword's best."""
        ...

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of `rows`, in that order (exact similarity of keyword candidates)."""
        ...


def _best_first(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((rows, -scores))  # best first, ties by row
    return rows[order].astype(np.int64), scores[order].astype(np.float32)


class EmbeddedStore:
    """The store of a loaded `ReportIndex`: FAISS for dense, bm25s for keywords (no change of behaviour)."""

    def __init__(self, index: ReportIndex):
        self.index = index
        self._meta: RowMeta | None = None
        self._last: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}  # field -> the last question's score array

    def count(self) -> int:
        return len(self.index.chunks)

    def meta(self) -> RowMeta:
        if self._meta is None:
            self._meta = RowMeta.of(self.index)
        return self._meta

    def mask(self, allowed: Allowed) -> np.ndarray | None:
        """`allowed` as a row mask (None: every row)."""
        if allowed is None or isinstance(allowed, np.ndarray):
            return allowed
        return allowed.mask(self.meta()) if allowed.active else None

    def _keyword(self, field: str) -> KeywordIndex:
        if field not in FIELDS:
            raise ValueError(f"keyword field {field!r}: one of {', '.join(FIELDS)}")
        return {"word": self.index.keyword, "bigram": self.index.bigram, "gloss": self.index.gloss}[field]

    def _scores(self, field: str, tokens: Sequence[str]) -> np.ndarray:
        """bm25s scores of every row; kept for the question's `keyword_scores` call that follows."""
        key = tuple(tokens)
        last = self._last.get(field)
        if last is not None and last[0] == key:
            return last[1]
        scores = self._keyword(field).scores(list(tokens))
        if len(scores) != self.count():
            scores = np.zeros(self.count(), np.float32)
        self._last[field] = (key, scores)
        return scores

    def dense_top(self, qvec, k, allowed=None):
        n = self.count()
        k = min(k, n)
        mask = self.mask(allowed)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if mask is None:
            sims, idx = self.index.dense.search(np.ascontiguousarray(qvec[None, :], np.float32), k)
            ok = idx[0] >= 0
            return _best_first(idx[0][ok], sims[0][ok])
        rows = np.flatnonzero(mask)  # exact over the rows allowed: a filter never loses a passage to an approximate index
        sims = self.index.vectors[rows] @ qvec
        best = F.top_rows(sims, k, positive=False)
        return _best_first(rows[best], sims[best])

    def keyword_top(self, field, tokens, k, allowed=None):
        scores = self._scores(field, tokens)
        mask = self.mask(allowed)
        if mask is not None:
            scores = np.where(mask, scores, 0.0).astype(np.float32)
        best = F.top_rows(scores, k)
        return _best_first(best, scores[best])

    def keyword_scores(self, field, tokens, rows):
        return self._scores(field, tokens)[np.asarray(rows, np.int64)]

    def vectors(self, rows):
        return self.index.vectors[np.asarray(rows, np.int64)]


# ---------------------------------------------------------------------- the candidates step on a store


def store_candidates(store: Store, query: Query, qvec: np.ndarray | None, mode: str, settings: SearchSettings,
                     top_k: int, allowed: Allowed) -> Signals:  # fmt: skip
    """`search.candidates` against `store`: the same `Signals` (per-row arrays, -1 dense and 0
    keyword where not computed). Each signal contributes its best `m` rows, m = max(candidates,
    4 top_k), and every signal is then scored exactly on the union of those rows, which is all the
    fusion, the ordering and the reranker read."""
    from .search import Signals

    n = store.count()
    m = max(settings.candidates, 4 * top_k)
    dense = np.full(n, -1.0, np.float32)
    found = []
    if qvec is not None:
        rows, sims = store.dense_top(qvec, min(m, n), allowed)
        dense[rows] = sims
        found.append(rows)
    fields: list[tuple[str, tuple[str, ...]]] = []
    if mode != "dense":
        fields.append(("word", tuple(query.tokens)))
    if mode == "hybrid":
        fields.append(("bigram", tuple(query.grams)))
        if query.english and settings.w_gloss > 0:
            fields.append(("gloss", tuple(query.english)))
    tops = {f: store.keyword_top(f, toks, m, allowed) for f, toks in fields}
    found += [rows for rows, _ in tops.values()]
    union = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    arrays: dict[str, np.ndarray] = {}
    for f, toks in fields:
        a = np.zeros(n, np.float32)
        rows, scores = tops[f]
        if len(fields) > 1 or qvec is not None:  # other signals' candidates need this signal's score too
            a[union] = store.keyword_scores(f, toks, union) if len(union) else 0.0
        else:
            a[rows] = scores
        arrays[f] = a
    kw = arrays.get("word", np.zeros(n, np.float32))
    return Signals(dense, kw, arrays.get("bigram"), arrays.get("gloss"))


# ---------------------------------------------------------------------- our BM25 as sparse vectors


@dataclass
class SparseBM25:
    """A bm25s index split in two: per row, each term's BM25 saturation tf / (tf + k1 (1 - b + b dl/avgdl))
    (bm25s's Lucene variant); per term, its document frequency. The question's vector holds count x IDF of its terms, so
    the inner product is the bm25s (Lucene variant) score."""

    vocab: dict[str, int]  # term -> id (the bm25s vocabulary id: sparse dimension)
    df: np.ndarray  # documents holding each term
    n: int  # documents
    rows: list[dict[int, float]]  # per row: term id -> saturation

    @classmethod
    def of(cls, keyword: KeywordIndex) -> SparseBM25:
        """From a built or loaded `KeywordIndex` (its bm25s score matrix: CSC, documents x terms)."""
        import scipy.sparse as sp

        bm = keyword.bm25
        if not keyword.n:
            return cls({}, np.zeros(0, np.int64), 0, [])
        s = bm.scores
        data, indices, indptr, n = np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"]), int(s["num_docs"])
        df = np.diff(indptr).astype(np.int64)  # each term occurs once per document that holds it
        sat = data.astype(np.float64) / np.repeat(idf(df, n), df)
        csr = sp.csc_matrix((sat, indices, indptr), shape=(n, len(df))).tocsr()
        rows = [dict(zip(csr.indices[csr.indptr[i] : csr.indptr[i + 1]].tolist(), csr.data[csr.indptr[i] : csr.indptr[i + 1]].tolist()))
                for i in range(n)]  # fmt: skip
        vocab = {t: i for t, i in bm.vocab_dict.items() if i < len(df)}  # bm25s adds "" past the matrix's columns
        return cls(vocab, df, n, rows)

    def query(self, tokens: Sequence[str]) -> dict[int, float]:
        return query_weights(
            tokens, lambda ts: {t: (self.vocab[t], int(self.df[self.vocab[t]])) for t in ts if t in self.vocab}, self.n
        )


def idf(df, n: int):
    """bm25s's IDF (Lucene): log(1 + (N - df + 0.5) / (df + 0.5))."""
    return np.log1p((n - np.asarray(df, np.float64) + 0.5) / (np.asarray(df, np.float64) + 0.5))


def query_weights(tokens: Sequence[str], lookup: Callable[[list[str]], dict[str, tuple[int, int]]], n: int) -> dict[int, float]:
    """The question's sparse vector: term id -> (times the term occurs in `tokens`) x IDF; terms
    outside the vocabulary are left out, as bm25s leaves them out (and counts repeats, as it does)."""
    counts = Counter(tokens)
    found = lookup(list(counts))
    return {tid: counts[t] * math.log1p((n - df + 0.5) / (df + 0.5)) for t, (tid, df) in found.items()}


# ---------------------------------------------------------------------- Milvus


def store_spec(uri: str) -> str:
    """The `--store` value naming `uri`: milvus:PATH.db or milvus://HOST:PORT."""
    return "milvus://" + uri.split("://", 1)[1] if "://" in uri else f"milvus:{uri}"


def parse_store(spec: str) -> str | None:
    """The Milvus URI of a `--store` value (None for the embedded store): `milvus:PATH.db` is a
    Milvus Lite file, `milvus://HOST:19530` (or `milvus+https://HOST:PORT`) a server."""
    if spec in ("", "embedded", "faiss"):
        return None
    if spec.startswith("milvus://"):
        return "http://" + spec[len("milvus://") :]
    if spec.startswith("milvus+https://"):
        return "https://" + spec[len("milvus+https://") :]
    if spec.startswith("milvus:"):
        path = spec[len("milvus:") :]
        if not path.endswith(".db"):
            raise ValueError(f"--store {spec}: a Milvus Lite store is a file ending in .db (milvus:PATH.db)")
        return path
    raise ValueError(f"--store {spec!r}: use milvus:PATH.db (Milvus Lite) or milvus://HOST:19530 (a Milvus server)")


@dataclass(frozen=True)
class StoreRef:
    """Where an index build's rows are searched, as its params.json records it: the embedded store
    (`spec` "embedded") or a Milvus collection (`spec` milvus:PATH.db with an absolute path, or
    milvus://HOST:PORT; `name` the alias the index's builds go live under; `collection` this build's)."""

    spec: str = "embedded"
    name: str = ""
    collection: str = ""

    @classmethod
    def of(cls, spec: str, folder: Path | None = None) -> StoreRef:
        """The store a `--store` value names for the index in `folder` (a Milvus Lite path made
        absolute, so that the index opens from any directory; the alias named after the folder,
        so that two index folders sharing one Milvus never replace each other's builds)."""
        uri = parse_store(spec)
        if uri is None:
            return cls()
        if "://" not in uri:
            uri = str(Path(uri).expanduser().resolve())
        name = ""
        if folder is not None:
            import hashlib

            name = "reportqa_" + hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:12]
        return cls(store_spec(uri), name or "reportqa")

    @classmethod
    def from_params(cls, params: dict) -> StoreRef:
        got = params.get("store") or {}
        return cls(got.get("spec", "embedded"), got.get("name", ""), got.get("collection", "")) if isinstance(got, dict) else cls()

    @property
    def embedded(self) -> bool:
        return parse_store(self.spec) is None

    @property
    def uri(self) -> str | None:
        return parse_store(self.spec)

    def to_params(self) -> dict:
        return {"spec": self.spec} if self.embedded else {"spec": self.spec, "name": self.name, "collection": self.collection}

    def check(self) -> None:
        """Connect now (the client kept for the build): Milvus unreachable or the extra missing is
        said before anything is embedded."""
        if not self.embedded:
            client(self.uri)

    def create(self, index: ReportIndex, progress: Callable[[int, int], None] | None = None) -> MilvusStore:
        """The collection of `index` written (not yet live: `MilvusStore.make_live` after the local switch)."""
        return MilvusStore.create(self.uri, index, name=self.name, live=False, progress=progress, client=client(self.uri))

    def open(self, index: ReportIndex) -> Store:
        """The store `index` searches: checked against its model, dimension, settings and corpus."""
        if self.embedded:
            return EmbeddedStore(index)
        dim = int(index.vectors.shape[1]) if index.vectors.size else index.encoder.dim
        return MilvusStore.open(self.uri, model=index.encoder.name, dim=dim, settings=index.build_settings,
                                fingerprint=index.fingerprint, name=self.name, collection=self.collection or None,
                                client=client(self.uri))  # fmt: skip


_CLIENTS: dict[str, object] = {}


def client(uri: str):
    """One pymilvus client per URI in this process (Milvus Lite serves one process, and a server
    that adds a report writes through the connection it searches with)."""
    if uri not in _CLIENTS:
        _CLIENTS[uri] = connect(uri)
    return _CLIENTS[uri]


def connect(uri: str, timeout: float = 10.0):
    """A pymilvus `MilvusClient` on `uri`, or a `StoreUnavailable` naming the fix."""
    try:
        from pymilvus import MilvusClient, MilvusException
    except ImportError as e:
        raise StoreUnavailable(f"the Milvus store needs pymilvus, which is not installed: {MILVUS_HINT}") from e
    lite = "://" not in uri
    if lite:
        Path(uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        try:
            import milvus_lite  # noqa: F401
        except ImportError as e:
            raise StoreUnavailable(f"a Milvus Lite store ({uri}) needs milvus-lite, which is not installed: {MILVUS_HINT}") from e
    try:
        return MilvusClient(uri=str(Path(uri).expanduser().resolve()) if lite else uri, timeout=timeout)
    except MilvusException as e:
        if lite:
            raise StoreUnavailable(f"cannot open the Milvus Lite store {uri} ({e.message}); Milvus Lite serves one process at a time: "
                                   "stop the other one, or run a Milvus server and use --store milvus://HOST:19530") from e  # fmt: skip
        raise StoreUnavailable(f"cannot reach Milvus at {uri} ({e.message}): start the server (docker compose up -d with "
                               "milvus-standalone) or check HOST:PORT, or use --store milvus:PATH.db for Milvus Lite") from e  # fmt: skip


def _sparse_field(field: str) -> str:
    return f"sp_{field}"


class MilvusStore:
    """A reportqa index build in Milvus: collection `<name>_<build hash>`, searched through the
    alias `<name>` (switched in one step when a new build is complete), and its vocabulary in
    `<collection>_vocab`. Fields: `id` (the row, int64 primary key), `chunk` (its `doc_id#n`),
    `vec` (FLOAT_VECTOR, inner product: FLAT up to `index.EXACT_LIMIT` rows, IVF_FLAT above),
    `sp_word`, `sp_bigram`, `sp_gloss` (SPARSE_FLOAT_VECTOR, inner product), and `city`,
    `report`, `date_lo`, `date_hi` for filters. The collection's properties record the model, its
    dimension, the build settings and the corpus fingerprint; `open` refuses another model's."""

    VOCAB_CACHE = 200_000  # vocabulary entries kept in memory (the questions' terms repeat)

    def __init__(self, client, uri: str, name: str, collection: str, props: dict):
        self.client = client
        self.uri = uri
        self.name = name
        self.collection = collection
        self.props = props
        self.bm25 = json.loads(props.get("reportqa.bm25", "{}"))  # field -> {"n": documents}
        self.rows = int(props.get("reportqa.rows", 0))
        self.nprobe = int(props.get("reportqa.nprobe", 32))
        self._vocab: dict[str, tuple[int, int] | None] = {}

    @property
    def spec(self) -> str:
        return store_spec(self.uri)

    # -------------------------------------------------------------- build

    @classmethod
    def create(cls, uri: str, index: ReportIndex, *, name: str = "reportqa", batch: int = 256, live: bool = True,
               progress: Callable[[int, int], None] | None = None, client=None) -> MilvusStore:  # fmt: skip
        """Write `index` into a new collection (a complete collection of the same build is reused)
        and, if `live`, `make_live` it. With `live=False` the caller switches when its own build is
        switched (`ReportIndex.save`: after `CURRENT`), so an interrupted build changes neither."""
        from .index import EXACT_LIMIT, IVF_NPROBE

        client = client or connect(uri)
        build = _build_props(index)
        collection = f"{name}_{build['reportqa.build_hash']}"
        _check_name(name)
        if client.has_collection(collection):
            props = client.describe_collection(collection).get("properties", {})
            if props.get("reportqa.complete") == "1" and client.has_collection(collection + "_vocab"):
                client.load_collection(collection)
                client.load_collection(collection + "_vocab")
                store = cls(client, uri, name, collection, props)
                if live:
                    store.make_live()
                return store
            _drop(client, collection)
        n = len(index.chunks)
        sparse = {f: SparseBM25.of(k) for f, k in zip(FIELDS, (index.keyword, index.bigram, index.gloss))}
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39)) if n > EXACT_LIMIT else 0
        props = build | {"reportqa.bm25": json.dumps({f: {"n": s.n} for f, s in sparse.items()}),
                         "reportqa.nprobe": str(IVF_NPROBE), "reportqa.complete": "0"}  # fmt: skip
        _create_collection(
            client, collection, int(index.vectors.shape[1]) if index.vectors.size else index.encoder.dim, nlist, props
        )
        meta = RowMeta.of(index)
        for s in range(0, n, batch):
            rows = []
            for i in range(s, min(s + batch, n)):
                row = {"id": i, "chunk": index.chunks[i].id, "vec": index.vectors[i].tolist(), "city": meta.city[i],
                       "report": meta.report[i], "date_lo": int(meta.date_lo[i]), "date_hi": int(meta.date_hi[i])}  # fmt: skip
                for f, sv in sparse.items():
                    # Milvus refuses an empty sparse row (bm25s gives an empty text its "\u2205" term, but a field
                    # may have no index at all): a dimension no question asks for stands in
                    row[_sparse_field(f)] = sv.rows[i] if i < len(sv.rows) and sv.rows[i] else {NO_TERM: 1.0}
                rows.append(row)
            client.insert(collection, rows)
            if progress:
                progress(min(s + batch, n), n)
        _write_vocab(client, collection, sparse, batch=4096)
        client.flush(collection)
        client.flush(collection + "_vocab")
        client.alter_collection_properties(collection, {"reportqa.complete": "1"})
        props["reportqa.complete"] = "1"
        store = cls(client, uri, name, collection, props)
        if live:
            store.make_live()
        return store

    def make_live(self) -> None:
        """Point the alias `name` at this build in one step, then drop the earlier builds of `name`."""
        _switch_alias(self.client, self.name, self.collection)
        for old in self.client.list_collections():
            if re.fullmatch(rf"{self.name}_[0-9a-f]{{16}}", old) and old != self.collection:
                _drop(self.client, old)

    @classmethod
    def open(cls, uri: str, *, model: str, dim: int | None = None, settings: BuildSettings | None = None,
             fingerprint: str | None = None, name: str = "reportqa", collection: str | None = None,
             client=None) -> MilvusStore:  # fmt: skip
        """The live build of `name` at `uri` (or the build `collection`, as an index's params.json
        records it); refuses one made with another model, dimension, settings, corpus
        (`fingerprint`, the local index's) or store format."""
        client = client or connect(uri)
        spec = store_spec(uri)
        fix = f"rebuild it with `reportqa index --store {spec}`"
        if collection is not None and not client.has_collection(collection):
            raise IndexMismatch(
                f"the Milvus collection {collection!r} of this index is not at {uri} (dropped or another server): {fix}"
            )
        collection = collection or _alias_target(client, name) or (name if client.has_collection(name) else None)
        if collection is None:
            raise IndexMissing(f"no reportqa collection {name!r} at {uri}: build one with `reportqa index --store {spec}`")
        props = client.describe_collection(collection).get("properties", {})
        if props.get("reportqa.format") != str(STORE_FORMAT):
            raise IndexMismatch(f"the Milvus collection {collection!r} at {uri} has store format {props.get('reportqa.format')}, "
                                f"this reportqa reads {STORE_FORMAT}: {fix}")  # fmt: skip
        if props.get("reportqa.complete") != "1":
            raise IndexMismatch(f"the Milvus collection {collection!r} at {uri} is incomplete (a build was interrupted): {fix}")
        if props.get("reportqa.model") != model:
            raise IndexMismatch(f"the Milvus collection {collection!r} at {uri} was built with model {props.get('reportqa.model')!r}, "
                                f"not {model!r}: {fix}")  # fmt: skip
        if dim is not None and props.get("reportqa.dim") != str(dim):
            raise IndexMismatch(f"the Milvus collection {collection!r} at {uri} holds {props.get('reportqa.dim')}-dimensional vectors, "
                                f"the model gives {dim}: {fix}")  # fmt: skip
        if settings is not None and json.loads(props.get("reportqa.settings", "null")) != asdict(settings):
            raise IndexMismatch(f"the Milvus collection {collection!r} at {uri} was built with other settings "
                                f"{props.get('reportqa.settings')}: {fix}")  # fmt: skip
        if fingerprint is not None and props.get("reportqa.fingerprint") != fingerprint:
            raise IndexMismatch(
                f"the Milvus collection {collection!r} at {uri} holds another build of the corpus than the local index: {fix}"
            )
        client.load_collection(collection)
        client.load_collection(collection + "_vocab")
        return cls(client, uri, name, collection, props)

    @classmethod
    def for_index(cls, uri: str, index: ReportIndex, name: str = "reportqa") -> MilvusStore:
        """`open` checked against a loaded index: its model, dimension, settings and corpus."""
        return cls.open(uri, model=index.encoder.name, dim=int(index.vectors.shape[1]) if index.vectors.size else index.encoder.dim,
                        settings=index.build_settings, fingerprint=index.fingerprint, name=name)  # fmt: skip

    # -------------------------------------------------------------- search

    def count(self) -> int:
        return self.rows

    def _filter(self, allowed: Allowed) -> str:
        if allowed is None:
            return ""
        if isinstance(allowed, np.ndarray):
            return mask_expression(allowed)
        return allowed.expression()

    def _search(self, data, field: str, k: int, allowed: Allowed, params: dict) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        res = self.client.search(self.collection, data=[data], anns_field=field, limit=k, filter=self._filter(allowed),
                                 search_params={"metric_type": "IP", "params": params}, output_fields=["id"])  # fmt: skip
        hits = res[0] if res else []
        rows = np.array([h["id"] for h in hits], np.int64)
        return _best_first(rows, np.array([h["distance"] for h in hits], np.float32))

    def dense_top(self, qvec, k, allowed=None):
        return self._search(
            np.asarray(qvec, np.float32).tolist(), "vec", min(k, self.rows, MAX_LIMIT), allowed, {"nprobe": self.nprobe}
        )

    def _lookup(self, field: str, tokens: list[str]) -> dict[str, tuple[int, int]]:
        """Term -> (id, document frequency) of `field`'s vocabulary, from the cache or one `get`."""
        prefix = f"{field}\t"
        todo = [t for t in tokens if prefix + t not in self._vocab]
        if todo:
            got = {r["key"]: (int(r["tid"]), int(r["df"])) for r in self.client.get(self.collection + "_vocab", ids=[prefix + t for t in todo],
                                                                                  output_fields=["key", "tid", "df"])}  # fmt: skip
            if len(self._vocab) > self.VOCAB_CACHE:
                self._vocab.clear()
            for t in todo:
                self._vocab[prefix + t] = got.get(prefix + t)
        return {t: v for t in tokens if (v := self._vocab.get(prefix + t)) is not None}

    def _query(self, field: str, tokens: Sequence[str]) -> dict[int, float]:
        if field not in FIELDS:
            raise ValueError(f"keyword field {field!r}: one of {', '.join(FIELDS)}")
        n = int(self.bm25.get(field, {}).get("n", 0))
        return query_weights(tokens, lambda ts: self._lookup(field, ts), n) if n and tokens else {}

    def keyword_top(self, field, tokens, k, allowed=None):
        q = self._query(field, tokens)
        if not q:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows, scores = self._search(q, _sparse_field(field), min(k, self.rows, MAX_LIMIT), allowed, {})
        keep = scores > 0
        return rows[keep], scores[keep]

    def _get(self, rows: np.ndarray, field: str) -> dict[int, object]:
        if not len(rows):
            return {}
        got = self.client.get(self.collection, ids=[int(r) for r in rows], output_fields=["id", field])
        return {int(r["id"]): r[field] for r in got}

    def keyword_scores(self, field, tokens, rows):
        # Scored by Milvus over just these rows (one filtered search: the sparse inner-product index
        # is exact), rather than their sparse vectors fetched and multiplied here (3x the time).
        rows = np.asarray(rows, np.int64)
        q = self._query(field, tokens)
        if not q or not len(rows):
            return np.zeros(len(rows), np.float32)
        got: dict[int, float] = {}
        for s in range(0, len(rows), MAX_LIMIT):
            part = rows[s : s + MAX_LIMIT].tolist()
            res = self.client.search(self.collection, data=[q], anns_field=_sparse_field(field), limit=len(part),
                                     filter=f"id in {part}", search_params={"metric_type": "IP", "params": {}},
                                     output_fields=["id"])  # fmt: skip
            got |= {int(h["id"]): float(h["distance"]) for h in (res[0] if res else [])}
        return np.array([got.get(r, 0.0) for r in rows.tolist()], np.float32)

    def vectors(self, rows):
        rows = np.asarray(rows, np.int64)
        got = self._get(rows, "vec")
        dim = int(self.props.get("reportqa.dim", 0))
        return np.array([got[r] for r in rows.tolist()], np.float32).reshape(len(rows), dim)


def mask_expression(mask: np.ndarray) -> str:
    """A row mask as a Milvus expression over `id`: runs of allowed rows as ranges (a filter by
    city, report or date allows whole reports, whose rows are consecutive), or the ids themselves
    when they are scattered; "" when every row is allowed."""
    rows = np.flatnonzero(mask)
    if len(rows) == len(mask):
        return ""
    if not len(rows):
        return "id in []"
    cut = np.flatnonzero(np.diff(rows) > 1)
    starts, ends = np.r_[rows[0], rows[cut + 1]], np.r_[rows[cut], rows[-1]]
    if 2 * len(starts) >= len(rows):
        return f"id in {rows.tolist()}"
    return " or ".join(f"(id >= {a} and id <= {b})" for a, b in zip(starts.tolist(), ends.tolist()))


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,150}", name):
        raise ValueError(f"Milvus collection name {name!r}: letters, digits and underscores, not starting with a digit")


def _build_props(index: ReportIndex) -> dict[str, str]:
    import hashlib

    settings = asdict(index.build_settings)
    dim = int(index.vectors.shape[1]) if index.vectors.size else index.encoder.dim
    key = json.dumps([STORE_FORMAT, index.encoder.name, dim, settings, index.fingerprint], sort_keys=True)
    return {"reportqa.format": str(STORE_FORMAT), "reportqa.model": index.encoder.name, "reportqa.dim": str(dim),
            "reportqa.settings": json.dumps(settings, sort_keys=True), "reportqa.fingerprint": index.fingerprint,
            "reportqa.rows": str(len(index.chunks)), "reportqa.build_hash": hashlib.sha256(key.encode()).hexdigest()[:16]}  # fmt: skip


def _create_collection(client, collection: str, dim: int, nlist: int, props: dict) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("chunk", DataType.VARCHAR, max_length=1024)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    for f in FIELDS:
        schema.add_field(_sparse_field(f), DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("city", DataType.VARCHAR, max_length=256)
    schema.add_field("report", DataType.VARCHAR, max_length=1024)
    schema.add_field("date_lo", DataType.INT64)
    schema.add_field("date_hi", DataType.INT64)
    ip = client.prepare_index_params()
    if nlist:
        ip.add_index("vec", index_type="IVF_FLAT", metric_type="IP", params={"nlist": nlist})
    else:
        ip.add_index("vec", index_type="FLAT", metric_type="IP")
    for f in FIELDS:
        ip.add_index(_sparse_field(f), index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    # The indexes are created without waiting for them (sync=False): pymilvus's wait asks for a
    # timestamp Milvus Lite does not implement; `load_collection` is what makes them searchable.
    client.create_collection(collection, schema=schema, properties=props)
    client.create_index(collection, ip, sync=False)
    client.load_collection(collection)

    vocab = client.create_schema(auto_id=False, enable_dynamic_field=False)
    vocab.add_field("key", DataType.VARCHAR, is_primary=True, max_length=2048)  # "<field>\t<term>"
    vocab.add_field("tid", DataType.INT64)
    vocab.add_field("df", DataType.INT64)
    vocab.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
    vip = client.prepare_index_params()
    vip.add_index("v", index_type="FLAT", metric_type="L2")
    if client.has_collection(collection + "_vocab"):
        client.drop_collection(collection + "_vocab")
    client.create_collection(collection + "_vocab", schema=vocab)
    client.create_index(collection + "_vocab", vip, sync=False)
    client.load_collection(collection + "_vocab")


def _write_vocab(client, collection: str, sparse: dict[str, SparseBM25], batch: int) -> None:
    rows = [
        {"key": f"{f}\t{t}", "tid": tid, "df": int(s.df[tid]), "v": [0.0, 0.0]}
        for f, s in sparse.items()
        for t, tid in s.vocab.items()
    ]
    for s in range(0, len(rows), batch):
        client.insert(collection + "_vocab", rows[s : s + batch])


def _alias_target(client, alias: str) -> str | None:
    """The collection `alias` points to, None when there is no such alias (asked without an
    error: pymilvus logs every failed call at ERROR level)."""
    if alias not in client.list_aliases().get("aliases", []):
        return None
    return client.describe_alias(alias)["collection_name"]


def _switch_alias(client, alias: str, collection: str) -> None:
    current = _alias_target(client, alias)
    if current is None:
        client.create_alias(collection, alias)
    elif current != collection:
        client.alter_alias(collection, alias)


def _drop(client, collection: str) -> None:
    for c in (collection, collection + "_vocab"):
        if client.has_collection(c):
            client.drop_collection(c)
