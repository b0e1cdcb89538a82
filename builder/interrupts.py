# SPDX-License-Identifier: GPL-3.0-or-later
"""Ctrl-C and SIGTERM: turned into exceptions, and remembered.

An exception raised by a signal handler can be swallowed (CPython ignores
exceptions raised in fork hooks, and a library may catch it): every
interrupt is also recorded, so :func:`raise_received` stops the release
before it is complete however the exception itself fared.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived: raised like KeyboardInterrupt, so that cleanup runs."""


_received: list[BaseException] = []


@contextmanager
def handled() -> Iterator[list[BaseException]]:
    """Within the block, SIGINT raises KeyboardInterrupt and SIGTERM :class:`Terminated`, in this process only.

    Processes forked meanwhile (workers, a multiprocessing manager) ignore
    Ctrl-C, which reaches the whole process group: this process stops them.
    They die of SIGTERM, as a pool's ``terminate`` expects, since a stopping
    pool waits for them. Yields the list of interrupts received, first first.
    """
    main_pid = os.getpid()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != main_pid:
            if signum == signal.SIGTERM:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        interrupt = KeyboardInterrupt() if signum == signal.SIGINT else Terminated()
        _received.append(interrupt)
        raise interrupt

    _received.clear()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield _received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def raise_received() -> None:
    """Raise the first interrupt received within :func:`handled`, if any, even if it was raised and swallowed."""
    if _received:
        raise _received[0]
