# SPDX-License-Identifier: GPL-3.0-or-later
"""The local output folder: claimed with a marker, filled under temporary names.

A folder is only written into if it is new, empty, or marked by an earlier
run of this tool (:data:`MARKER`); anything else is refused unless the user
passes ``--overwrite``. Shards and the card are written under hidden
temporary names (which ``datasets`` ignores) and renamed only once the card
is written, so an interrupted run leaves nothing that loads as a dataset.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from . import interrupts
from .shards import Shard

#: The file that marks a folder as this tool's output (hidden: ``datasets`` ignores it).
MARKER = ".chesspos-positions"
_MARKER_TEXT = "Written by `python -m builder.publish`; it may replace this folder's contents.\n"
#: Suffix of files not yet complete; with the leading dot, they are hidden from ``datasets``.
PENDING_SUFFIX = ".partial"


class OutputFolderError(OSError):
    """The output folder cannot be used as asked; the message names it and what to do."""


def check_folder(root: Path, overwrite: bool) -> None:
    """Check, leaving nothing behind, that ``root`` may be used as the output folder.

    A folder is accepted if it is missing, empty, or holds :data:`MARKER`;
    with ``overwrite``, any folder is.

    Raises:
        OutputFolderError: if ``root`` is a file, a folder holding other files
            and ``overwrite`` is false, or cannot be written (checked now, not
            after the build).
    """
    if root.exists() and not root.is_dir():
        raise OutputFolderError(f"output folder {str(root)!r} is a file, not a folder: choose another --output-dir")
    # Try the folder, or the nearest folder above it that exists, where the build would create it: with a
    # folder made and removed at once, as permissions alone do not tell (root, read-only or virtual file systems).
    existing = next(folder for folder in (root.absolute(), *root.absolute().parents) if folder.exists())
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".chesspos-probe-", dir=existing))
    except OSError as error:
        raise OutputFolderError(
            f"output folder {str(root)!r} cannot be written ({error.strerror} in {str(existing)!r}): choose another --output-dir"
        ) from error
    if root.is_dir() and not (root / MARKER).is_file() and not overwrite:
        others = sorted((p.name for p in root.iterdir()), key=lambda name: (name.startswith("."), name))
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise OutputFolderError(
                f"output folder {str(root)!r} holds files this tool did not write ({shown}): "
                "choose a new or empty --output-dir, or pass --overwrite to write into it anyway"
            )


def claim_folder(root: Path) -> None:
    """Create ``root`` if needed, mark it as this tool's output, and remove an interrupted run's pending files.

    Raises:
        OutputFolderError: if the folder cannot be written.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
        for leftover in root.rglob(f".*{PENDING_SUFFIX}"):
            leftover.unlink()
    except OSError as error:
        raise OutputFolderError(f"cannot write to output folder {str(root)!r}: {error.strerror or error}") from error


def pending_path(final: Path) -> Path:
    """The hidden temporary name ``final`` is written under until the release is complete."""
    return final.with_name(f".{final.name}{PENDING_SUFFIX}")


def complete(root: Path, shards: list[Shard], card: Path) -> None:
    """Give the shards and then the card (``card``'s pending name) their final names in ``root``.

    Raises:
        KeyboardInterrupt, Terminated: an interrupt arrived earlier and was
            swallowed (CPython ignores exceptions raised in fork hooks): the
            release stays incomplete, as the user asked.
    """
    interrupts.raise_received()
    with interrupts.deferred():  # every final name or none: an interrupt waits for the last rename
        for shard in shards:
            shard.local_path.replace(root / shard.path_in_repo)
        pending_path(card).replace(card)
