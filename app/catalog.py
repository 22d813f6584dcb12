"""The reports of an index as plain JSON records: what the HTTP API and the MCP server list and
return, so both describe a report the same way (`answer.answer` is their one search)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .index import ReportIndex
    from .records import Document


def report_summary(doc: Document, passages: int) -> dict:
    """One report's metadata: `pages` is its number of pages, None for an unpaged report."""
    return {
        "id": doc.id,
        "title": doc.title,
        "city": doc.city,
        "date": doc.date,
        "source": doc.source,
        "url": doc.url,
        "passages": passages,
        "pages": len(doc.pages) or None,
    }


def list_reports(index: ReportIndex) -> list[dict]:
    """Every report of `index`, by id."""
    counts = index.passage_counts()
    return [report_summary(index.docs[i], counts.get(i, 0)) for i in sorted(index.docs)]


def get_report(index: ReportIndex, report_id: str) -> dict | None:
    """A report's metadata, cleaned text (what offsets refer to), page starts and passage offsets; None if unknown."""
    doc = index.docs.get(report_id)
    if doc is None:
        return None
    passages = [
        {"chunk_id": c.id, "start": c.start, "end": c.end, "page": doc.page_at(c.start)}
        for c in index.chunks
        if c.doc_id == report_id
    ]
    return report_summary(doc, len(passages)) | {"text": doc.text, "page_starts": list(doc.pages),
                                               "passage_offsets": passages}  # fmt: skip
