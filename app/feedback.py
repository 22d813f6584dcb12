"""Votes on answers (thumbs up or down in the chat), kept in a SQLite file.

`feedback_record` is what a vote stores: the question, the verdict and the passages shown;
`FeedbackStore` writes it, one transaction a vote, safely from many threads and processes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from .records import Answer

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,          -- UTC, ISO 8601
    question TEXT NOT NULL,
    vote INTEGER NOT NULL,          -- 1 thumbs up, -1 thumbs down, 0 withdrawn
    answered INTEGER NOT NULL,      -- what the app said: 1 answered, 0 "do not seem to answer"
    filters TEXT NOT NULL,          -- JSON: top_k, city, doc_id
    passages TEXT NOT NULL          -- JSON list of {rank, doc_id, chunk_id, score}, as shown
);
CREATE TABLE IF NOT EXISTS feedback_passage (
    feedback_id INTEGER NOT NULL REFERENCES feedback(id),
    rank INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (feedback_id, rank)
);
"""


class FeedbackStore:
    """Votes on answers in a SQLite file: one connection per write, WAL, and a lock across threads."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; the mode sticks to the file
            db.executescript(SCHEMA)
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        # the timeout covers other processes writing the same file; threads queue on the lock
        return sqlite3.connect(self.path, timeout=30)

    def add(self, record: dict, vote: int) -> int:
        """Store one vote on the answer `record` (see `feedback_record`); returns its row id."""
        passages = record.get("passages", [])
        with self._lock:
            db = self._connect()
            try:
                with db:  # one transaction: the vote and its passages, or nothing
                    cur = db.execute(
                        "INSERT INTO feedback (created, question, vote, answered, filters, passages) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            record.get("question", ""),
                            int(vote),
                            int(bool(record.get("answered"))),
                            json.dumps(record.get("filters", {}), ensure_ascii=False),
                            json.dumps(passages, ensure_ascii=False),
                        ),
                    )
                    row = int(cur.lastrowid)
                    db.executemany(
                        "INSERT INTO feedback_passage (feedback_id, rank, doc_id, chunk_id, score) VALUES (?, ?, ?, ?, ?)",
                        [(row, p["rank"], p["doc_id"], p["chunk_id"], p["score"]) for p in passages],
                    )
            finally:
                db.close()
        return row

    def rows(self) -> list[dict]:
        """All votes, oldest first, with their passages decoded."""
        db = self._connect()
        try:
            db.row_factory = sqlite3.Row
            out = [dict(r) for r in db.execute("SELECT * FROM feedback ORDER BY id")]
        finally:
            db.close()
        for r in out:
            r["filters"] = json.loads(r["filters"])
            r["passages"] = json.loads(r["passages"])
        return out


def feedback_record(answer: Answer, filters: dict | None = None) -> dict:
    """What a vote on `answer` stores: the question, the verdict and the passages shown."""
    return {
        "question": answer.question,
        "answered": answer.answered,
        # a follow-up's vote is on the text searched: it is kept with the filters (stored as JSON)
        "filters": (filters or {}) | ({"searched": answer.searched} if answer.rewritten else {}),
        "passages": [
            {"rank": r, "doc_id": h.doc.id, "chunk_id": h.chunk.id, "score": round(h.score, 6)}
            for r, h in enumerate(answer.hits, 1)
        ],
    }


def vote_value(liked) -> int:
    """Gradio's `LikeData.liked` as a vote: True up, False down, anything else (an undo) 0."""
    return 1 if liked is True else -1 if liked is False else 0
