"""Pure functions of score fusion and of turning ranked rows into passages: min-max fusion,
the adaptive dense weight, partial sorts, and merging overlapping chunks."""

from __future__ import annotations

import numpy as np

from .records import Chunk


def minmax(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi - lo < 1e-9 else (x - lo) / (hi - lo)


def top_rows(x: np.ndarray, k: int, positive: bool = True) -> np.ndarray:
    """Indices of the `k` highest entries of `x` (only those above 0 if `positive`)."""
    k = min(k, len(x))
    if k <= 0:
        return np.zeros(0, np.int64)
    rows = np.argpartition(-x, k - 1)[:k]
    return rows[x[rows] > 0] if positive else rows


def ranked(scores: np.ndarray, m: int) -> np.ndarray:
    """Rows of the `m` best scores, best first, ties in row order: the head of a stable full
    sort, without sorting every row of a large index."""
    if m >= len(scores):
        return np.argsort(-scores, kind="stable")
    if m <= 0:
        return np.zeros(0, np.int64)
    kth = np.partition(-scores, m - 1)[m - 1]
    better = np.flatnonzero(-scores < kth)
    better = better[np.argsort(-scores[better], kind="stable")]
    tied = np.flatnonzero(-scores == kth)[: m - len(better)]  # in row order, as a stable sort leaves them
    return np.concatenate([better, tied])


def dense_weight(coverage: float, w_max: float, w_min: float) -> float:
    """Weight of the dense score: `w_max` when the best keyword passage holds none of the
    question's words, falling linearly to `w_min` when it holds them all."""
    return w_max - (w_max - w_min) * min(max(coverage, 0.0), 1.0)


def fuse_candidates(dense: np.ndarray, keyword: np.ndarray, bigram: np.ndarray, w_dense: float, w_bigram: float,
                    gloss: np.ndarray | None = None, w_gloss: float = 0.0) -> np.ndarray:  # fmt: skip
    """Min-max normalised fusion over candidate rows only (the union of each signal's best):
    the scale of each signal is then the same whatever the size of the corpus.
    The keyword side mixes word BM25 and character-bigram BM25 by `w_bigram`, and for an
    English question the English-gloss BM25 by `w_gloss`."""
    kw = (1 - w_bigram) * minmax(keyword) + w_bigram * minmax(bigram)
    if gloss is not None and w_gloss > 0:
        kw = (1 - w_gloss) * kw + w_gloss * minmax(gloss)
    return w_dense * minmax(dense) + (1 - w_dense) * kw


def distinct(order: list[int], chunks: list[Chunk], k: int, merge_up_to: int = 0) -> list[list[int]]:
    """Group the best rows of `order` into at most `k` passages that never overlap.

    A row overlapping an earlier pick of the same report is merged into it while the
    merged stretch stays within `merge_up_to` characters, else skipped: the same text
    is never shown twice, and an answer in the overlapping neighbour is not lost.
    """
    groups: list[list[int]] = []
    spans: list[tuple[str, int, int]] = []
    for i in order:
        c = chunks[i]
        hit = [g for g, (d, s, e) in enumerate(spans) if d == c.doc_id and c.start < e and s < c.end]
        if hit:
            g = hit[0]
            d, s, e = spans[g]
            if len(hit) == 1 and max(e, c.end) - min(s, c.start) <= merge_up_to:
                groups[g].append(i)
                spans[g] = (d, min(s, c.start), max(e, c.end))
            continue
        if len(groups) == k:
            break
        groups.append([i])
        spans.append((c.doc_id, c.start, c.end))
    return groups


def merged_chunk(rows: list[int], chunks: list[Chunk], doc_text: str) -> Chunk:
    """One passage covering the chunks in `rows` (contiguous after merging)."""
    if len(rows) == 1:
        return chunks[rows[0]]
    parts = sorted((chunks[i] for i in rows), key=lambda c: c.start)
    start, end = parts[0].start, max(c.end for c in parts)
    cid = f"{parts[0].doc_id}#" + "+".join(str(c.n) for c in parts)
    return Chunk(cid, parts[0].doc_id, parts[0].n, doc_text[start:end], start, end)
