# SPDX-License-Identifier: GPL-3.0-or-later
"""How a publish run ends: one ``error:`` line and a documented exit code, never a traceback.

Exit codes: 0 ok; 1 a runtime failure (network, Hub, disk, failed tasks); 2 a usage or
input error (options, config file, data paths, input files, output
folder); 130 interrupted (Ctrl-C, SIGINT); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError

from chesspos_positions.executors import StagesError
from chesspos_positions.games import SKIP_REASONS, Summary
from chesspos_positions.sources import InputError, InputUnreachable

from . import interrupts
from .hub import HubUnreachable, PublishError, RepoChangedError, TransportError
from .interrupts import Terminated
from .options import OptionsError
from .output import OutputFolderError

RUNTIME_FAILURE, USAGE_ERROR = 1, 2
INTERRUPTED, TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM

#: For ``--help`` and the README.
EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 runtime failure (network, Hub, disk, failed tasks); 2 usage or input error "
    "(options, config file, data paths, input files, output folder); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM)."
)

#: Skip reasons that are sampling filters, not defects of the games.
_FILTERS = ("elo_filtered", "time_control_filtered")

#: What ends a run with one line instead of a traceback.
_EXPECTED = (KeyboardInterrupt, Terminated, OSError, OptionsError, PublishError, TransportError, StagesError)


def exit_code(error: BaseException) -> int:
    """The exit code for an error that ended the run."""
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(error, Terminated):
        return TERMINATED
    if isinstance(error, RepoChangedError | InputUnreachable | HubUnreachable):
        return RUNTIME_FAILURE
    if isinstance(error, OptionsError | PublishError | InputError | FileNotFoundError | OutputFolderError):
        return USAGE_ERROR
    return RUNTIME_FAILURE


def message(error: BaseException) -> str:
    """The one line printed for an error that ended the run."""
    if isinstance(error, KeyboardInterrupt | Terminated):
        what = "interrupted (Ctrl-C)" if isinstance(error, KeyboardInterrupt) else "terminated (SIGTERM)"
        return f"{what}: no unfinished file was given its final name; a partly pushed release finishes with --resume"
    text = " ".join(str(error).split()) or type(error).__name__  # one line, whatever the library printed
    if isinstance(error, HfHubHTTPError):
        return f"error: the Hub refused a request: {text}"
    if isinstance(error, TransportError):
        return f"error: cannot reach the Hub ({constants.ENDPOINT}): {type(error).__name__}: {text}"
    return f"error: {text}"


def run_reported(work: Callable[[], int]) -> int:
    """Run ``work``; on an expected failure or an interrupt, print one line to stderr and return its exit code.

    A library may turn an interrupt into another exception, or swallow it:
    so once a signal arrived, the run reports the interrupt whatever ended it.
    """
    with interrupts.handled() as received:
        try:
            code = work()
            if not received:
                return code
            error: BaseException = received[0]
        except BaseException as caught:
            if not received and not isinstance(caught, _EXPECTED):
                raise  # a bug: its traceback is the useful report
            error = received[0] if received else caught
    print(message(error), file=sys.stderr)
    return exit_code(error)


def no_positions_message(inputs: list[str], summary: Summary, sampling: str) -> str:
    """Why a run sampled nothing: the games read and skipped by reason, and what to try."""
    counts = summary.as_dict()
    where = ", ".join(inputs)
    if not summary.games_read:
        return f"no positions were sampled: no games were found in {where}"
    skipped = [f"{n} {reason} ({SKIP_REASONS[reason]})" for reason, n in counts["skipped"].items() if n]
    text = (
        f"no positions were sampled from {where}: {summary.games_read} games read, "
        f"{summary.games_kept} kept; skipped: {', '.join(skipped) or 'none'}"
    )
    if sampling != "all" and (any(summary.skipped[f] for f in _FILTERS) or summary.games_kept):
        text += (f". Sampling {sampling!r} filters by Elo, time control and ply: "
                 "try --sampling all to keep every position of every standard game")
    return text
