"""Plain records that flow through the pipeline: documents -> chunks -> hits."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Document:
    """One cleaned report. `text` is what users are shown and what offsets refer to."""

    id: str
    title: str
    text: str
    city: str = ""
    date: str = ""
    source: str = ""
    url: str = ""
    script: str = "simplified"
    path: str = ""
    pages: tuple[int, ...] = ()  # where each page (of a PDF, say) starts in `text`; empty when the source has none

    def __post_init__(self):
        object.__setattr__(self, "pages", tuple(self.pages))  # a JSON list read back stays hashable

    def to_dict(self) -> dict:
        return asdict(self) | {"pages": list(self.pages)}

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character `offset` of `text`, or None for an unpaged document."""
        if not self.pages:
            return None
        return max(bisect_right(self.pages, offset), 1)


@dataclass(frozen=True)
class Chunk:
    """A passage: `doc.text[start:end] == text`; `id` is `doc_id#n`, shared by every index."""

    id: str
    doc_id: str
    n: int
    text: str
    start: int
    end: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Hit:
    """One retrieved passage with its report, fused score and answering sentence."""

    chunk: Chunk
    doc: Document
    score: float
    highlight: tuple[int, int] = (0, 0)
    signals: dict = field(default_factory=dict)

    @property
    def page(self) -> int | None:
        """The page of the answering sentence (else of the passage's start); None for an unpaged report."""
        s, e = self.highlight
        return self.doc.page_at(self.chunk.start + (s if 0 <= s < e else 0))


SURE = 0.5  # a calibrated confidence from which the first passage more likely answers than not
POSSIBLE = 0.5  # a "possible answer" when not answered: a confidence of at least this share of the threshold


@dataclass
class Answer:
    """The passages found for one question; `answered` is False when none seems relevant."""

    question: str
    hits: list[Hit]
    answered: bool
    seconds: float
    notice: str = ""
    confidence: float = 0.0
    answer: str | None = None  # the value asked for, verbatim from the first passage (`answerline.answer_value`)
    searched: str = ""  # the question as searched: a follow-up merged with the earlier turns (`followup.resolve`)
    calibrated: bool = False  # `confidence` is the learned model's probability that passage 1 answers
    threshold: float | None = None  # the confidence `answered` was judged by (None: not searched)

    def __post_init__(self):
        if not self.searched:
            self.searched = self.question

    @property
    def sure(self) -> bool:
        """Whether an answer may be vouched for: its confidence is no probability (the hand-set path,
        where `answered` is all there is), or one of at least `SURE`. Under it, the reports more
        likely do not answer, even above the threshold (set low, not to refuse answerable questions)."""
        return not self.calibrated or self.confidence >= SURE

    def verdict(self, threshold: float | None = None) -> str:
        """`answer`, `possible` or `none`: answered and `sure`; answered but not sure, or not answered
        with a confidence of at least `POSSIBLE` of the threshold (`threshold`, else the one the
        search judged by; none without one); or not found."""
        if self.answered and self.hits:
            return "answer" if self.sure else "possible"
        threshold = self.threshold if threshold is None else threshold
        if self.hits and threshold is not None and threshold > 0 and self.confidence >= POSSIBLE * threshold:
            return "possible"
        return "none"

    @property
    def rewritten(self) -> bool:
        """Whether the search was for another text than the question (a follow-up resolved)."""
        return self.searched != self.question

    def to_json(self, qid: str | None = None) -> dict:
        """The public JSON object of `reportqa ask --json`."""
        return {
            "id": qid,
            "question": self.question,
            "answered": self.answered,
            "answer": self.answer,
            "passages": [
                {
                    "rank": r,
                    "doc_id": h.doc.id,
                    "title": h.doc.title,
                    "city": h.doc.city,
                    "text": h.chunk.text,
                    "start": h.chunk.start,
                    "end": h.chunk.end,
                    "score": round(h.score, 6),
                    "highlight": list(h.highlight),
                    "source": h.doc.source,
                    "date": h.doc.date,
                    "chunk_id": h.chunk.id,
                    "page": h.page,
                }
                for r, h in enumerate(self.hits, 1)
            ],
            "notice": self.notice,
            "confidence": round(min(max(float(self.confidence), 0.0), 1.0), 4),  # probability that passage 1 answers
            "seconds": round(self.seconds, 4),
            "searched": self.searched,  # equal to "question" unless it was a follow-up
            "state": self.verdict(),  # what the chat shows: answer, possible (check the passages) or none
        }
