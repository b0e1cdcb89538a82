# SPDX-License-Identifier: GPL-3.0-or-later
"""What a release may push, and pushing it: one commit per batch, then the card.

:mod:`.hub` talks to the Hub (auth, listing, commits with retries); this
module decides: whether a release may go on top of what the repo holds, and
which commits it needs, so that a rerun or a ``--resume`` never publishes a
file twice or overwrites other content.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
from huggingface_hub import HfApi
from huggingface_hub.errors import BadRequestError
from huggingface_hub.utils.sha import git_hash  # the blob id the Hub lists for regular files

from chesspos_positions.builder import ChessposPositionsConfig
from chesspos_positions.configs import CONFIG_OF_FOLDER

from . import hub
from .hub import PublishError, RepoState
from .shards import Shard, file_sha256, same_rows, shard_path

logger = logging.getLogger(__name__)


def check_release(state: RepoState, repo: str, config: ChessposPositionsConfig, tag: str | None, resume: bool) -> str:
    """Check that this release fits on what ``repo`` holds; return its tag (``tag``, or the next ``vN``).

    Raises:
        PublishError: the release would drop batches, an earlier one of this
            config was interrupted (and ``resume`` is not set), one of another
            config was interrupted, the shard names would change width, or
            ``tag`` exists.
    """
    if state.batches > config.batches:
        raise PublishError(
            f"{repo} already holds {state.batches} batches; --batches {config.batches} would drop some. "
            f"Ask for at least {state.batches}."
        )
    interrupted = state.interrupted()
    for folder, (batches, tagged) in interrupted.items():
        if folder != state.folder and folder in CONFIG_OF_FOLDER:
            # Its batches are not in the card yet: this release's card and tag would hold them as they are.
            name = CONFIG_OF_FOLDER[folder]
            raise PublishError(
                f"{repo}: the last release of config {name!r} was interrupted ({batches} batches on main, {tagged} at "
                f"its newest tag). Finish it first: rerun it with --config-name {name} --resume and its original "
                "options; then publish this one."
            )
    if state.folder in interrupted and not resume:
        batches, tagged = interrupted[state.folder]
        raise PublishError(
            f"{repo} holds {batches} batches but its newest tag covers {tagged}: "
            "an earlier release was interrupted. Rerun it with --resume (same options)."
        )
    width = len(Path(shard_path(config.spec, "train", 1, config.batches)).stem.removeprefix("batch_"))
    if state.name_widths - {width}:
        # Renaming batch_999 to batch_0999 would publish every earlier shard twice.
        raise PublishError(
            f"{repo} names its shards with {max(state.name_widths)}-digit batch numbers, but "
            f"--batches {config.batches} needs {width} digits: publish past that in a new repo"
        )
    if tag is None:
        return hub.next_version_tag(state.tags)
    if tag in state.tags:
        raise PublishError(f"tag {tag!r} already exists on {repo}; choose another --tag")
    return tag


def push_batch(
    api: HfApi, repo: str, state: RepoState, index: int, pair: list[Shard], head: str | None
) -> tuple[str | None, list[Shard]]:
    """Commit one batch's shards unless the repo already holds them; return the new head and the batch's shards.

    The repo holds a batch when it has both shards byte for byte, or with the
    same rows: an earlier version of the writer wrote other bytes for the same
    rows, and a release it made must still take a rerun or another batch.
    Then the repo's files replace the local ones, so the output folder and
    the card's sizes are those of the release as published.

    Raises:
        PublishError: the repo holds one of these paths with other content.
    """
    remote = {s.path_in_repo: state.files.get(s.path_in_repo) for s in pair}
    if all(remote[s.path_in_repo] == s.sha256 for s in pair):
        logger.info("batch %d is already on %s; not uploading it again", index, repo)
        return head, pair
    held = [s for s in pair if remote[s.path_in_repo] is not None]
    if held:
        if len(held) == len(pair) and all(_take_if_same_rows(api, repo, state, s) for s in held):
            logger.info("batch %d is already on %s, with the same rows in other bytes; not uploading it again", index, repo)
            return head, [replace(s, size=s.local_path.stat().st_size, sha256=file_sha256(s.local_path)) for s in pair]
        raise PublishError(
            f"{repo} holds {', '.join(s.path_in_repo for s in held)} with other content than "
            "these options and seed produce: it was published with other settings. Nothing was overwritten; "
            "use the original options, or another repo."
        )
    rows = {s.split: s.num_examples for s in pair}
    message = f"Add batch {index:03d} ({rows['train']} train, {rows['test']} test rows)"
    return hub.commit(api, repo, [(s.path_in_repo, s.local_path) for s in pair], message, head), pair


def _take_if_same_rows(api: HfApi, repo: str, state: RepoState, shard: Shard) -> bool:
    """If the repo's file at the shard's path holds the shard's features and rows, put it in the shard's place.

    False if it holds other rows, or is no Parquet file at all.
    """
    # Not into the Hub cache: a release's shards would stay there, gigabytes of them.
    with tempfile.TemporaryDirectory() as scratch:
        held = Path(hub.download(api, repo, shard.path_in_repo, state.head, Path(scratch)))
        try:
            same = same_rows(shard.local_path, held)
        except (pa.ArrowException, OSError):  # not Parquet, or damaged: other content
            return False
        if same:
            shard.local_path.unlink()  # a hard link to the work folder's shard: not written through
            shutil.copyfile(held, shard.local_path)
        return same


def push_card(api: HfApi, repo: str, state: RepoState, card_path: Path, tag: str, head: str | None) -> str | None:
    """Commit the card, unless the repo's head already holds it; return the new head.

    Raises:
        PublishError: if the Hub refuses the card's metadata, saying that the batches are on the repo and how to finish.
    """
    if state.files.get("README.md") == git_hash(card_path.read_bytes()) and head == state.head:
        return head
    try:
        return hub.commit(api, repo, [("README.md", card_path)], f"Update dataset card for {tag}", head)
    # huggingface_hub validates a README before committing it (a ValueError); the commit may still be refused (400).
    except (BadRequestError, ValueError) as error:
        reason = " ".join(str(error).split())
        raise PublishError(
            f"the Hub refused the dataset card of {repo}: {reason}. The batches are on the repo, without card or "
            f"tag: rerun with --resume and an option the Hub accepts (--license, or pretty_name in the --config "
            "file) to commit the card and tag"
        ) from error
