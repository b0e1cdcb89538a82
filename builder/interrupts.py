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
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived: raised like KeyboardInterrupt, so that cleanup runs."""


_received: list[BaseException] = []
#: Inside :func:`deferred`: interrupts are recorded, not raised.
_deferring = False
#: Inside :func:`handled`: processes forked now die of SIGTERM by the kernel's default action.
_handling = False


def _after_fork_in_child() -> None:
    # A Python handler runs only once the main thread runs bytecode again: in a
    # pool worker blocked on its task queue's lock while another of its threads
    # takes the signal, it never runs, the worker outlives a pool's terminate(),
    # and the pool waits for it for ever. The default action needs no thread.
    if _handling:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def handled() -> Iterator[list[BaseException]]:
    """Within the block, SIGINT raises KeyboardInterrupt and SIGTERM :class:`Terminated`, in this process only.

    Processes forked meanwhile (workers, a multiprocessing manager) ignore
    Ctrl-C, which reaches the whole process group: this process stops them.
    They die of SIGTERM, as a pool's ``terminate`` expects, since a stopping
    pool waits for them. Yields the list of interrupts received, first first.
    One swallowed where CPython cannot raise it prints no traceback.
    """
    global _handling
    main_pid = os.getpid()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != main_pid:  # Ctrl-C in a forked process (SIGTERM is the default action there)
            return
        interrupt = KeyboardInterrupt() if signum == signal.SIGINT else Terminated()
        _received.append(interrupt)
        if not _deferring:
            raise interrupt

    previous_hook = sys.unraisablehook

    def on_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
        # An interrupt raised where CPython cannot pass it on (a weakref
        # callback, a __del__) is swallowed, and would print a traceback; it is
        # recorded, and raise_received stops the run with its one line.
        if not any(unraisable.exc_value is interrupt for interrupt in _received):
            previous_hook(unraisable)

    _received.clear()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    sys.unraisablehook = on_unraisable
    _handling = True
    try:
        yield _received
    finally:
        _handling = False
        sys.unraisablehook = previous_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def held() -> Iterator[None]:
    """Run a call into a library that starts threads and signal handlers (polars) without losing an interrupt.

    Within the block, SIGINT and SIGTERM wait: threads started meanwhile
    inherit that mask, so they never take a signal meant for the main thread.
    At the end, Python's handlers are installed again, then the signals are
    let through, and one that arrived meanwhile is delivered. polars installs
    its own SIGINT handler when it is imported; under it, Ctrl-C no longer
    interrupts the main thread's blocking reads, so a publish waiting for a
    Hub commit would not stop until the commit ended. Only the main thread
    can install handlers: if polars is first imported in another thread,
    its handler stays until a later block on the main thread ends.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        try:
            # Only the main thread may install handlers; other threads only hold the signals.
            if threading.current_thread() is threading.main_thread():
                for sig in signals:
                    handler = signal.getsignal(sig)
                    if handler is not None:  # None: not installed from Python, so nothing to restore
                        signal.signal(sig, handler)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def deferred() -> Iterator[None]:
    """Run a few steps that must all happen or none: an interrupt meanwhile is raised as the block ends.

    Unlike :func:`held`, this does not depend on which thread the signal
    reaches: Python runs its handler in the main thread, which records it.
    """
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    raise_received()


def raise_received() -> None:
    """Raise the first interrupt received within :func:`handled`, if any, even if it was raised and swallowed."""
    if _received:
        raise _received[0]
