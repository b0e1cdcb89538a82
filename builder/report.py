# SPDX-License-Identifier: GPL-3.0-or-later
"""The summary a publish run prints: what was read, kept and written, and how to load it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from chesspos_positions.configs import Config
from chesspos_positions.games import Summary
from chesspos_positions.generation import SPLITS

from .shards import Shard


def summary_text(
    config: Config,
    shards: list[Shard],
    summary: Summary,
    partial: str | None,
    local: Path | None,
    pushed: tuple[str, str | None, str | None] | None,
    timings: Mapping[str, float] | None,
) -> str:
    """The run's summary.

    Args:
        config: the config that was built.
        shards: the release's shards.
        summary: the games read, kept and skipped.
        partial: the sentence naming the partial batches, if any.
        local: the output folder, if the user asked for one.
        pushed: ``(endpoint, repo, tag)`` of the push, if any.
        timings: the seconds per stage, if asked for (``--profile``).
    """
    counts = summary.as_dict()
    name = "" if config.name == "default" else f", {config.name!r}"
    lines = [
        "",
        "chesspos-positions publish summary",
        f"  games read {counts['games_read']}, kept {counts['games_kept']}, skipped {counts['games_skipped']}",
    ]
    lines += [f"    skipped {reason}: {n}" for reason, n in counts["skipped"].items() if n]
    for split in SPLITS:
        own = [s for s in shards if s.split == split]
        lines.append(
            f"  {config.folder}{split}: {sum(s.num_examples for s in own)} samples in {len(own)} shards, "
            f"{sum(s.size for s in own)} bytes"
        )
    total = sum(s.num_examples for s in shards)
    size = sum(s.size for s in shards)
    lines.append(f"  written: {size} bytes, {size / max(total, 1):.1f} bytes/sample")
    if partial:
        lines.append(f"  note: {partial}")
    if local is not None:
        lines.append(f"  local copy: {local.resolve()}")
        lines.append(f"  load it: load_dataset({str(local)!r}{name}, streaming=True)")
    if pushed is not None:
        endpoint, repo, tag = pushed
        lines.append(f"  pushed: {endpoint}/datasets/{repo} (tag {tag})")
        lines.append(f"  load it: load_dataset({repo!r}{name}, streaming=True, revision={tag!r})")
    if timings is not None:
        lines.append("  stage timings (s; stages run in parallel add up their times):")
        lines += [f"    {stage}: {seconds:.2f}" for stage, seconds in timings.items()]
    return "\n".join(lines)
