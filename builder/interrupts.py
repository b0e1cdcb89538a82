# SPDX-License-Identifier: GPL-3.0-or-later
"""Ctrl-C and SIGTERM: turned into exceptions at points where raising is safe.

Inside :func:`deferred` (a shard being written) a signal is only recorded and
raised when the block ends: raised inside pyarrow's writer, the exception
would be swallowed or printed as a traceback by pyarrow itself.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived: raised like KeyboardInterrupt, so that cleanup runs."""


_state = threading.local()
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
        if getattr(_state, "deferring", 0):
            _state.pending = interrupt
        else:
            raise interrupt

    _received.clear()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield _received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold back an interrupt arriving within the block (in the main thread) until the block ends."""
    _state.deferring = getattr(_state, "deferring", 0) + 1
    try:
        yield
    finally:
        _state.deferring -= 1
        pending = getattr(_state, "pending", None)
        if pending is not None and not _state.deferring:
            _state.pending = None
            raise pending


def raise_received() -> None:
    """Raise the first interrupt received within :func:`handled`, if any, even if it was raised and swallowed."""
    if _received:
        raise _received[0]
