"""Chunking: a document into overlapping passages along Chinese sentence boundaries."""

from __future__ import annotations

from .records import Chunk, Document

SEPARATORS = ["\n", "。", "！", "？", "；", "!", "?", ";", "，", ",", ""]
_SEP_CHARS = frozenset("".join(SEPARATORS))
_BEAM = 32  # placements kept per piece; more than one only in runs of bare punctuation


def _probe(text: str) -> str:
    """`text` with every non-separator character replaced by one that encodes its position.

    The splitter sees the same separators and lengths, so it cuts the probe exactly
    where it cuts the text, but a probe piece holding any non-separator occurs only
    once (in texts under 900,000 characters).
    """
    return "".join(ch if ch in _SEP_CHARS else chr(0x20000 + i % 0xE0000) for i, ch in enumerate(text))


def _starts(probe: str, pieces: list[str], overlap: int) -> list[int]:
    """Where each piece starts in `probe`.

    The splitter's pieces tile the text in order: each starts after the previous
    one's start, at most `overlap` characters before its end and not after it, and
    the last ends the text. Pieces of bare punctuation can fit in more than one
    place, so every fitting placement is followed and one that tiles the text kept.
    """
    if not pieces:
        return []
    layers: list[dict[int, int]] = [{0: -1}]  # start of piece k -> start of piece k-1 it follows
    for k in range(1, len(pieces)):
        prev_len, piece, here = len(pieces[k - 1]), pieces[k], {}
        for p in layers[-1]:
            end = p + prev_len
            s = probe.find(piece, max(p + 1, end - overlap), end + len(piece))
            while s != -1:
                here.setdefault(s, p)
                s = probe.find(piece, s + 1, end + len(piece))
        if len(here) > _BEAM:
            keep = sorted(here)
            here = {s: here[s] for s in keep[: _BEAM // 2] + keep[-_BEAM // 2 :]}
        layers.append(here)
    ends = [s for s in layers[-1] if s + len(pieces[-1]) == len(probe)]
    if not ends:  # pragma: no cover - only if a new splitter stops tiling the text
        raise AssertionError("chunk offsets: the splitter's pieces do not tile the text")
    starts = [ends[0]]
    for k in range(len(pieces) - 1, 0, -1):
        starts.append(layers[k][starts[-1]])
    return starts[::-1]


def chunk_document(doc: Document, size: int = 250, overlap: int = 60) -> list[Chunk]:
    """Passages of at most `size` characters that overlap by about `overlap`; offsets exact."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=False,
    )
    # Not langchain's `add_start_index`: it searches the text from a guessed offset
    # and, where text repeats, lands on an earlier copy (wrong citations, text left out).
    probe = _probe(doc.text)
    pieces = splitter.split_text(probe)
    chunks: list[Chunk] = []
    for piece, start in zip(pieces, _starts(probe, pieces, overlap), strict=True):
        raw = doc.text[start : start + len(piece)]
        # Trim the paragraph breaks a passage starts or ends with; offsets follow.
        text = raw.strip()
        if not text:
            continue
        start += len(raw) - len(raw.lstrip())
        chunks.append(Chunk(f"{doc.id}#{len(chunks)}", doc.id, len(chunks), text, start, start + len(text)))
    return chunks
