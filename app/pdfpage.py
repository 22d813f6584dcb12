"""A page of a PDF report as a PNG, for the report view (pypdfium2, which ships its own PDFium).

`pdf_of(index, doc_id, build)` finds the PDF a report came from: the copy the collection of the
index keeps of an added PDF (collection.py; in the live build folder `build` when given), or the
corpus file a report was loaded from. `page_png(source, page)` renders one page when first asked
(never at import or when a report is added) and keeps the last `CACHE` pages rendered, keyed by
the file's path, size and modification time (its checksum too, read once per file so keyed).
Whatever goes wrong (the file gone, changed since it was added, not a readable PDF, no such page) is a `PageError` whose `kind` the view turns into a
message, shown instead of an image.
"""

from __future__ import annotations

import functools
import io
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import ReportQAError

WIDTH = 900  # pixels across: readable beside the text; some 20 KB of PNG for a page of text (`_png`)
MAX_HEIGHT = 3000  # pixels down, whatever the page's shape (a long strip is scaled down to it)
CACHE = 32  # pages kept rendered
_PDFIUM = threading.Lock()  # PDFium is not thread-safe: one call into it at a time


class PageError(ReportQAError):
    """No page to show; `kind` is one of "not_kept", "missing", "changed", "broken", "no_page"."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class PdfSource:
    """Where a report's PDF is: `path` (None when it was not kept) and the SHA-256 its record gives."""

    path: Path | None
    sha256: str = ""


def pdf_of(index, doc_id: str, build: Path | None = None) -> PdfSource | None:
    """The PDF report `doc_id` came from; None when it came from no PDF."""
    col = getattr(index, "collection", None)
    record = (col.added.get(doc_id) if col is not None else None) or {}
    if record.get("original"):
        found = [p for p in (build / "originals" / str(record["original"]) if build else None, col.original(doc_id)) if p]
        here = next((p for p in found if p.is_file()), found[0] if found else None)
        return PdfSource(here, str(record.get("original_sha256") or ""))
    doc = index.docs.get(doc_id)
    if doc is None or not doc.path.lower().endswith(".pdf"):
        return None
    if doc.path.startswith("added:"):  # added before the collection kept the file itself
        return PdfSource(None)
    return PdfSource(Path(doc.path))


def page_png(source: PdfSource, page: int, width: int = WIDTH) -> bytes:
    """Page `page` (1-based) of `source` as a PNG `width` pixels across; raises `PageError`."""
    if source.path is None:
        raise PageError("not_kept")
    try:
        st = source.path.stat()
    except OSError as e:
        raise PageError("missing", str(source.path)) from e
    return _render(str(source.path), st.st_size, st.st_mtime_ns, source.sha256, int(page), int(width))


@functools.lru_cache(maxsize=CACHE)
def _render(path: str, size: int, mtime: int, sha256: str, page: int, width: int) -> bytes:
    """The PNG (cached by path, size and mtime, so a changed file is read again); errors are not cached."""
    import pypdfium2 as pdfium

    if sha256 and _file_sha256(path, size, mtime) != sha256:
        raise PageError("changed", path)
    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(path)
        except (pdfium.PdfiumError, OSError, ValueError) as e:
            raise PageError("broken", f"{path}: {e}") from e
        try:
            if not 1 <= page <= len(pdf):
                raise PageError("no_page", f"{path} has {len(pdf)} pages, not page {page}")
            p = pdf[page - 1]
            w, h = p.get_size()
            image = p.render(scale=min(width / max(w, 1), MAX_HEIGHT / max(h, 1))).to_pil()
        except pdfium.PdfiumError as e:
            raise PageError("broken", f"{path}: {e}") from e
        finally:
            pdf.close()
    return _png(image)


@functools.lru_cache(maxsize=CACHE)
def _file_sha256(path: str, size: int, mtime: int) -> str:
    """The file's SHA-256, read once per (path, size, mtime): a PDF of up to 100 MB is not read again
    for each new page asked, and a changed file (another size or mtime) is."""
    from .files import file_sha256

    return file_sha256(path)


def _png(image) -> bytes:
    """A PNG small enough to send inline: a grey page (most report pages) as 8-bit grey, lossless; a page
    in colour as 256 colours (a preview: 10-50 KB instead of some 450 KB of RGB for a page of text)."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(image.convert("RGB"))
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    image = image.convert("L") if grey else image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=6)
    return out.getvalue()
