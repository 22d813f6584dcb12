"""Where things live: the environment and the command line turned into paths and the encoder.

Only `cli.py` and `bootstrap.py` read the environment; they hand it to `Config.from_env`,
and every other module receives paths and objects as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


def project_root() -> Path:
    """The checkout: corpus/, eval/, index/ and the default data/ live here."""
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Config:
    """Paths and runtime choices of one run of reportqa."""

    root: Path
    corpus: Path  # the shipped reports
    data: Path  # feedback (and, before round 2, the added reports: see `legacy_collection`)
    index: Path  # the default index folder
    cache: Path  # the dequantised model and its ONNX export
    backend: str = "onnx"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, index: Path | None = None) -> Config:
        """$REPORTQA_DATA (else <project>/data), $REPORTQA_CACHE (else ~/.cache/reportqa),
        $REPORTQA_BACKEND (onnx, onnx-int8 or torch); `index` from the command line, else <project>/index."""
        from .model import DEFAULT_BACKEND

        root = project_root()
        return cls(
            root=root,
            corpus=root / "corpus",
            data=Path(env["REPORTQA_DATA"]) if env.get("REPORTQA_DATA") else root / "data",
            index=Path(index) if index else root / "index",
            cache=Path(env["REPORTQA_CACHE"]) if env.get("REPORTQA_CACHE") else Path.home() / ".cache" / "reportqa",
            backend=env.get("REPORTQA_BACKEND") or DEFAULT_BACKEND,
        )

    def with_index(self, index: Path | None) -> Config:
        return replace(self, index=Path(index)) if index else self

    @property
    def models(self) -> Path:
        return self.cache / "models"

    @property
    def feedback(self) -> Path:
        return self.data / "feedback.sqlite3"

    @property
    def is_default_index(self) -> bool:
        return self.index.resolve() == (self.root / "index").resolve()

    def encoder(self):
        """e5-small on the chosen runtime (loaded lazily, at its first use)."""
        from .model import Embedder

        return Embedder(self.models, backend=self.backend)
