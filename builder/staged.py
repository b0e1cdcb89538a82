# SPDX-License-Identifier: GPL-3.0-or-later
"""The shards of a release, built in stages by an executor: Encode, Plan, Write.

:mod:`chesspos_positions.steps` holds the stages; this module adds the last
one, which writes each batch's shards, and runs the three with the executor
the options ask for (:mod:`chesspos_positions.executors`). The shards are
byte for byte those of writing :meth:`ChessposPositions.generate_batches`
in one process.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from datatrove.data import DocumentsPipeline

from chesspos_positions.configs import Config
from chesspos_positions.executors import ExecutorSettings, Stage, StagesError, run_stages
from chesspos_positions.games import Summary
from chesspos_positions.generation import SPLITS
from chesspos_positions.steps import (
    Job,
    JobStep,
    WorkFolder,
    assemble_batch,
    encode_and_plan,
    forget_changed_inputs,
    load_plan,
    raise_needed_input_failure,
    read_json,
    source_digests,
    write_json,
)
from chesspos_positions.timing import StageTimes

from . import output
from .options import PublishOptions
from .shards import Shard, shard_path, write_shard

logger = logging.getLogger(__name__)


class WriteStep(JobStep):
    """Task ``rank`` writes the shards of planned batch ``rank + 1`` (nothing if the input ran out before it)."""

    name = "write shards"

    def __init__(self, job: Job, folder: WorkFolder, config: Config) -> None:
        super().__init__(job, folder)
        self.config = config

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        planned = {b.index: b for b in load_plan(self.folder).batches}.get(rank + 1)
        if planned is None:
            return data
        with self.track_time("batch"):
            batch = assemble_batch(self.job, self.folder, planned)
            shards = [write_shard(getattr(batch, split), self.config, self.folder.root / "shards",
                                  shard_path(self.config, split, batch.index, self.job.batches)) for split in SPLITS]
        write_json(_record(self.folder, batch.index), [{**asdict(s), "local_path": str(s.local_path)} for s in shards])
        self.stat_update("rows", value=sum(s.num_examples for s in shards))
        return data


def _record(folder: WorkFolder, index: int) -> Path:
    return folder.root / "shards" / f"batch_{index}.json"


@dataclass
class Built:
    """What the stages made: the shards in the output folder, in batch order, the counts, and per input
    file its sha256 (None for a file the batches did not need, which no task read) and size."""

    shards: list[Shard]
    summary: Summary
    partial: str | None
    sources: list[tuple[str | None, int]]


@contextmanager
def work_folder(options: PublishOptions) -> Iterator[WorkFolder]:
    """``--workdir``, kept; or, for local runs without one, a temporary folder removed at the end.

    The temporary folder is kept when tasks failed: the error names it, for
    its logs and as the ``--workdir`` of a rerun that skips the finished tasks.
    """
    if options.workdir is not None:
        yield WorkFolder(Path(options.workdir).resolve())
        return
    scratch = tempfile.mkdtemp(prefix="chesspos-work-")
    try:
        yield WorkFolder(Path(scratch))
    except StagesError as error:
        raise StagesError(f"{error} The temporary work folder {scratch} is kept for that: delete it when done.") from error
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)


def build_shards(options: PublishOptions, urls: list[str], root: Path, times: StageTimes) -> Built:
    """Run Encode, Plan and Write on inputs ``urls`` with the options' executor; place the shards under ``root``.

    ``root`` is claimed as the output folder (:func:`.output.claim_folder`)
    only once every shard is written: a bad input leaves no folder behind.

    Raises:
        chesspos_positions.sources.InputError: an input is unreadable, truncated or corrupt (names it).
        chesspos_positions.sources.InputUnreachable: a remote input cannot be reached (names it).
        chesspos_positions.steps.WorkFolderError: ``--workdir`` holds a build with other options.
        chesspos_positions.executors.StagesError: tasks failed (the message says how to resume).
        chesspos_positions.executors.ExecutorSetupError: the executor cannot run as asked.
        chesspos_positions.executors.StagesPending: Slurm jobs are submitted and not waited for.
    """
    config = options.builder_config()
    spec = config.spec
    job = config.job(urls, options.unit_bytes)
    with work_folder(options) as folder:
        settings = ExecutorSettings(options.executor, folder.root, options.num_proc, options.slurm or {},  # type: ignore[arg-type]
                                    options.ray_address, wait=not options.no_wait)
        # The stages first: a job they refuse (too many units) must not claim the folder.
        write = Stage("write", WriteStep(job, folder, spec), job.batches, needed=lambda: len(load_plan(folder).batches))
        stages = [*encode_and_plan(job, folder, settings, digest=True), write]
        folder.claim({**job.describe(), "config": spec.name})
        for url in forget_changed_inputs(job, folder, settings):
            logger.warning("input %s changed since the work folder last read it: reading it afresh", url)
        with times.time("build (encode, plan, write)"):
            try:
                run_stages(stages, settings)
            except StagesError:
                # On Slurm, the Plan task stops at an input the Encode tasks could not read: report that input.
                raise_needed_input_failure(job, folder, settings)
                raise
        plan = load_plan(folder)
        times.add(plan.times.seconds)
        output.claim_folder(root)
        shards = []
        for planned in plan.batches:
            for record in read_json(_record(folder, planned.index)):
                target = output.pending_path(root / record["path_in_repo"])
                _place(Path(record["local_path"]), target)
                shards.append(Shard(**{**record, "local_path": target}))
        partial = None
        # Once the input runs out, every batch left is partial: one split's rows can run out a batch before the other's.
        if short := [b for b in plan.batches if b.partial]:
            shown = "; ".join(f"batch {b.index} ({b.rows('train')} train, {b.rows('test')} test rows)" for b in short)
            partial = (f"the input ran out: {plan.batches[-1].index} of {job.batches} batches were made, and "
                       f"{'these are' if len(short) > 1 else 'this one is'} partial: {shown}")
        return Built(shards, plan.summary, partial, source_digests(job, folder, plan))


def _place(source: Path, target: Path) -> None:
    """Put a finished shard into the output folder under its pending name: a hard link where possible, else a copy.

    A pending name only becomes final once the whole release is written
    (:func:`.output.complete`), and a rerun clears pending leftovers: a copy
    cut short here is never published.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
