"""The index a running server searches: swapped for the one a change from the UI saved, and
reloaded when another process (`reportqa add`, `remove` or `index`) rebuilt it on disk."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .index import ReportIndex


class LiveIndex:
    """The index the app searches; `swap` serves one this process rebuilt, from the next search on.

    Given the index `folder`, `get()` also notices an index replaced on disk by another process
    (`reportqa add`, `remove` or `index` while the server runs) and loads it, checking at most
    every `check_every` seconds. The request that notices waits for the load (a fraction of a
    second for the shipped reports); the others keep searching the index they had.
    """

    def __init__(self, index: ReportIndex, folder: Path | str | None = None, check_every: float = 2.0):
        self.index = index
        self.lock = threading.Lock()  # one change (add, remove) at a time; searches never wait for it
        self.folder = Path(folder) if folder is not None else None
        self.check_every = check_every
        self.build = self._current()  # the build folder `index` came from
        self._seen = self.build  # the last build CURRENT named that was loaded or tried (a broken one is not retried)
        self._checked = time.monotonic()
        self._reloading = threading.Lock()
        self._state = threading.Lock()  # `index` and `build` change together

    def _current(self) -> str | None:
        try:
            return (self.folder / "CURRENT").read_text().strip() if self.folder is not None else None
        except OSError:
            return None

    def get(self) -> ReportIndex:
        """The index to search now: reloaded first when the one on disk has changed."""
        if self.folder is None or time.monotonic() - self._checked < self.check_every:
            return self.index
        if not self._reloading.acquire(blocking=False):
            return self.index  # another request is loading it
        try:
            self._checked = time.monotonic()
            seen, build = self._seen, self._current()
            if build and build != seen:
                from .index import ReportIndex

                try:
                    index = ReportIndex.load(self.folder, self.index.encoder)
                except Exception as e:  # damaged, half-written or deleted meanwhile: keep serving ours
                    print(f"reportqa: keeping the loaded index; {self.folder} could not be loaded: {e}", flush=True)
                    index = None
                with self._state:
                    if self._seen == seen:  # not swapped meanwhile for one this process saved
                        if index is not None:  # else the index kept is still the one of self.build
                            self.index, self.build = index, build
                        self._seen = build
        finally:
            self._reloading.release()
        return self.index

    def current(self) -> tuple[ReportIndex, Path | None]:
        """The index to search now (as `get()`) and the build folder it was loaded from (None when
        unknown), read together: a swap or reload in between cannot pair one build's index with
        another build's folder (where the report view finds an added report's PDF)."""
        self.get()
        with self._state:
            index, build = self.index, self.build
        return index, (self.folder / build if self.folder is not None and build else None)

    def swap(self, index: ReportIndex, build: str | None) -> None:
        """Serve `index`, which this process has just saved to the folder as `build`."""
        with self._state:
            self.index, self.build = index, build
            self._seen = build
