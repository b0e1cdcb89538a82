# SPDX-License-Identifier: GPL-3.0-or-later
"""Wall-clock time per pipeline stage, so a maintainer can see where time goes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class StageTimes:
    """Seconds per stage. Safe to share between threads; stages that run in
    several threads or processes at once add up their times."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add({stage: time.perf_counter() - start})

    def add(self, seconds: Mapping[str, float]) -> None:
        with self._lock:
            self.seconds.update(seconds)
