"""Chunking: a document into overlapping passages along Chinese sentence boundaries."""

from __future__ import annotations

from .records import Chunk, Document

SEPARATORS = ["\n", "。", "！", "？", "；", "!", "?", ";", "，", ",", ""]


def chunk_document(doc: Document, size: int = 250, overlap: int = 60) -> list[Chunk]:
    """Passages of at most `size` characters that overlap by about `overlap`; offsets exact."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=False,
        add_start_index=True,
    )
    chunks: list[Chunk] = []
    for piece in splitter.create_documents([doc.text]):
        text = piece.page_content
        start = piece.metadata["start_index"]
        # Trim the paragraph breaks a passage starts or ends with; offsets follow.
        lead = len(text) - len(text.lstrip())
        text = text.strip()
        if not text:
            continue
        start += lead
        assert doc.text[start : start + len(text)] == text
        chunks.append(Chunk(f"{doc.id}#{len(chunks)}", doc.id, len(chunks), text, start, start + len(text)))
    return chunks
