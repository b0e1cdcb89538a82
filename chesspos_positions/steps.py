# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure stages of a build at scale: Encode, Plan, and assembling a batch.

Each stage reads and writes files in a work folder, so any executor can run
it anywhere the folder is reachable, and a rerun skips what is done:

1. :func:`encode_item` (one task per :class:`~chesspos_positions.units.WorkItem`)
   writes, per work unit, its sampled, split, encoded rows as Arrow IPC files
   (any config's columns pass through) and its counts. A unit whose counts
   file exists is done.
2. :func:`make_plan` (one cheap, sequential task) reads the counts in unit
   order and computes, by prefix sums, which rows of which unit land in which
   batch and split: exactly what :class:`~chesspos_positions.generation.BatchAssembler`
   does with the same rows, so quotas, carry-over and partial last batches
   keep their meaning.
3. :func:`assemble_batch` (one task per batch) gathers a batch's slices and
   shuffles them with ``(seed, batch, split)``, as the assembler does.

The output is the sequential path's, row for row: rows do not depend on how
the input was cut into units (sampling is seeded per game), and the plan
keeps the global game order.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import reprlib
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Final

import fsspec
import pyarrow as pa
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from . import rows as rows_
from .executors import ExecutorSettings, ExecutorSetupError, Stage, forget_tasks, run_stages
from .games import Summary
from .generation import (
    GAMES_PER_UNIT,
    SPLITS,
    Batch,
    WorkUnit,
    encode_unit,
    quotas,
    shuffle_rows,
)
from .sampling import Sampling
from .sources import InputError, InputMissing, InputUnreachable, file_digest
from .timing import StageTimes
from .units import UNIT_BYTES, Chunk, WorkItem, chunk_count, plan_work, read_chunks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """What a build computes: its inputs and every setting the rows depend on."""

    urls: tuple[str, ...]
    sampling: Sampling
    seed: int
    train_ratio: float
    batches: int
    batch_size: int
    unit_bytes: int = UNIT_BYTES
    kind: rows_.RowKind = "position"  # what the rows hold (see :mod:`.rows`)

    def work_items(self) -> list[WorkItem]:
        """The Encode tasks, in a fixed order (a function of the inputs and ``unit_bytes`` only)."""
        return plan_work(list(self.urls), self.unit_bytes)

    def describe(self) -> dict[str, object]:
        """The job as plain data, with each input's size: two jobs with equal descriptions give equal rows
        (from inputs unchanged in between: see :func:`forget_changed_inputs`)."""
        data = asdict(self)
        data["urls"] = [[url, _size(url)] for url in self.urls]
        return data


#: What file systems report of a file's version: modification times (local, S3, HTTP), ETags, git blob ids (hf://).
_VERSION_KEYS: Final = ("mtime", "LastModified", "last_modified", "Last-Modified", "ETag", "etag", "blob_id")


def _version(url: str) -> list[object]:
    """An input's size and what its file system says of its version (None where it says nothing)."""
    fs, path = fsspec.core.url_to_fs(url)
    info = fs.info(path)
    version = next((info[key] for key in _VERSION_KEYS if info.get(key)), None)
    return [int(info["size"]), None if version is None else str(version)]


def _size(url: str) -> int:
    fs, path = fsspec.core.url_to_fs(url)
    return int(fs.size(path))


class WorkFolderError(ValueError):
    """The work folder holds a build with other options."""


@dataclass(frozen=True)
class WorkFolder:
    """Where the stages keep their files."""

    root: Path

    def claim(self, description: dict[str, object]) -> None:
        """Record the build this folder is for; refuse a folder used for another one.

        Raises:
            WorkFolderError: the folder's ``job.json`` describes other options or inputs (names them).
        """
        path = self.root / "job.json"
        wanted = json.loads(json.dumps(description, sort_keys=True))
        if path.exists():
            held = read_json(path)
            if held != wanted:
                differ = sorted(k for k in held.keys() | wanted.keys() if held.get(k) != wanted.get(k))
                shown = "; ".join(line for key in differ for line in _differences(key, held.get(key), wanted.get(key)))
                raise WorkFolderError(
                    f"work folder {self.root} holds a build with other {', '.join(differ)} ({shown}): rerun with the "
                    "options it was made with, or use another --workdir"
                )
            return
        write_json(path, wanted)

    def unit(self, file: int, chunk: int, kind: str) -> Path:
        """``units/FFFFF/CCCCCCC.{train,test}.arrow`` and ``.json`` (the unit's counts)."""
        return self.units(file) / f"{chunk:07d}.{kind}"

    def chunk_count(self, file: int) -> Path:
        """How many chunks a compressed file has (written once it was streamed whole)."""
        return self.units(file) / "chunks.json"

    def source(self, file: int) -> Path:
        """The sha256 and size of an input file, as stored (written by the file's first Encode task)."""
        return self.units(file) / "source.json"

    def units(self, file: int) -> Path:
        """The folder of input ``file``'s units."""
        return self.root / "units" / f"{file:05d}"

    def failure(self, file: int, rank: int) -> Path:
        """The input error that stopped Encode task ``rank``, which reads input ``file``."""
        return self.root / "failures" / f"{file:05d}.{rank:05d}.json"

    def failures(self, file: int | None = None) -> dict[Path, int]:
        """The recorded input errors (of input ``file``, or of every input), in order, each with its input."""
        pattern = "*.json" if file is None else f"{file:05d}.*.json"
        return {path: int(path.name.split(".")[0]) for path in sorted((self.root / "failures").glob(pattern))}

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"


def _differences(key: str, there: object, here: object) -> list[str]:
    """What differs between two values of a job description's ``key``, down to the entries that differ.

    Mappings (the sampling) name the fields that differ; lists (the inputs,
    each ``[url, size]``) the entries only one side has: shown
    whole, where a shortened repr could show two different values as one.
    """
    if isinstance(there, dict) and isinstance(here, dict):
        return [line for k in sorted(there.keys() | here.keys()) if there.get(k) != here.get(k)
                for line in _differences(f"{key}.{k}", there.get(k), here.get(k))]
    if isinstance(there, list) and isinstance(here, list):
        only = [(side, [item for item in one if item not in other])
                for side, one, other in (("there", there, here), ("here", here, there))]
        # reprlib: a folder's list of inputs can be long.
        shown = [f"{key} only {side}: {reprlib.repr(items) if len(items) > 10 else items!r}" for side, items in only if items]
        return shown or [f"{key}: in another order"]
    return [f"{key}: {there!r} there, {here!r} here"]


def write_json(path: Path, data: object) -> None:
    """Write ``data`` to ``path`` atomically (a killed writer leaves no partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _partial(path)
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(temporary, path)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


# --- 1. Encode ----------------------------------------------------------------


def encode_item(job: Job, item: WorkItem, folder: WorkFolder, digest: bool = False) -> None:
    """Encode every unit of ``item`` whose counts are not in ``folder`` yet.

    With ``digest``, the file's first task also records the file's sha256 and
    size for the card: each file is hashed by one task, in parallel with the
    others, not by the driver before any work. Every task of a compressed
    file decompresses it to its end, so each one finds a cut or damaged stream.

    Raises:
        InputError: if the file is missing, unreadable, truncated or corrupt (names it).
        InputUnreachable: if a remote file cannot be reached.
    """
    if digest and item.part == 0 and not folder.source(item.file).exists():
        sha256, size = file_digest(item.url)
        write_json(folder.source(item.file), {"sha256": sha256, "size": size})
    _remove_partials(folder, item)
    for chunk in read_chunks(item, job.unit_bytes):
        if chunk.text is not None and not folder.unit(chunk.file, chunk.index, "json").exists():
            encode_chunk(job, chunk, folder)
    if item.parts:  # the stream was read whole: record how many chunks the file has
        write_json(folder.chunk_count(item.file), {"chunks": chunk.index + 1})


def _remove_partials(folder: WorkFolder, item: WorkItem) -> None:
    """Remove what killed tasks left of ``item``'s units: :func:`_partial` files, never read, as large as a unit.

    One listing of the file's units folder per task, not per unit (the
    folder holds a few files per unit, thousands for a large file); the
    units of other items, which other tasks may be writing now, keep theirs.
    """
    units = folder.units(item.file)
    if not units.is_dir():
        return
    for entry in os.scandir(units):
        name = entry.name  # ".CCCCCCC.KIND.HOST.PID.tmp"
        if name.startswith(".") and name.endswith(".tmp") and name[1:8].isdigit() and item.owns(int(name[1:8])):
            Path(entry.path).unlink(missing_ok=True)


def encode_chunk(job: Job, chunk: Chunk, folder: WorkFolder) -> None:
    """Parse, sample, encode and split one unit's games; write its rows, then its counts.

    The games are encoded in pieces of ``GAMES_PER_UNIT``, as the sequential
    path cuts them, and the counts are kept per piece, so the plan can tell
    which games the sequential path would have read.
    """
    times = StageTimes()
    pieces: list[dict[str, object]] = []
    writers: dict[str, pa.ipc.RecordBatchFileWriter] = {}
    batch_rows: dict[str, list[int]] = {split: [] for split in SPLITS}  # per split, each record batch's rows
    paths = {split: folder.unit(chunk.file, chunk.index, f"{split}.arrow") for split in SPLITS}
    paths["train"].parent.mkdir(parents=True, exist_ok=True)
    games = chunk.games()
    try:
        # An empty chunk still writes (empty) files with the config's columns.
        while (piece := tuple(islice(games, GAMES_PER_UNIT))) or not pieces:
            result = encode_unit(WorkUnit(chunk.url, piece), job.sampling, job.seed, job.train_ratio, job.kind)
            times.add(result.seconds)
            pieces.append({"rows": {s: getattr(result, s).num_rows for s in SPLITS}, "summary": result.summary.as_dict()})
            for split in SPLITS:
                table = getattr(result, split)
                if split not in writers:
                    writers[split] = pa.ipc.new_file(_partial(paths[split]), table.schema, options=_UNIT_IPC)
                for batch in table.to_batches(max_chunksize=_UNIT_BATCH_ROWS):
                    writers[split].write_batch(batch)
                    batch_rows[split].append(batch.num_rows)
    finally:
        for writer in writers.values():
            writer.close()
    if any(piece["summary"]["games_skipped"] for piece in pieces):
        logger.info("game numbers and lines of skipped games above count from byte %d of %s", chunk.start, chunk.url)
    for split in SPLITS:
        os.replace(_partial(paths[split]), paths[split])
    write_json(folder.unit(chunk.file, chunk.index, "json"),
               {"pieces": pieces, "batch_rows": batch_rows, "seconds": dict(times.seconds)})


def _partial(path: Path) -> Path:
    # Host and pid: Slurm tasks on different nodes may share a pid and a folder.
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")


#: The input errors an Encode task records instead of raising, by name.
_INPUT_ERRORS: Final[dict[str, type[OSError]]] = {error.__name__: error for error in (InputError, InputMissing, InputUnreachable)}


def record_input_failure(folder: WorkFolder, item: WorkItem, rank: int, error: OSError) -> None:
    """Record why Encode task ``rank`` could not read its input (see :func:`raise_needed_input_failure`)."""
    write_json(folder.failure(item.file, rank), {"error": type(error).__name__, "message": str(error)})


def recorded_failure(folder: WorkFolder, file: int) -> OSError | None:
    """The input error a task recorded for input ``file``, if any."""
    paths = list(folder.failures(file))
    if not paths:
        return None
    record = read_json(paths[0])
    return _INPUT_ERRORS[record["error"]](record["message"])


def source_digests(job: Job, folder: WorkFolder, plan: Plan) -> list[tuple[str | None, int]]:
    """Per input file: its sha256 (None for a file the plan did not read) and its size.

    The files read are the plan's, so the card does not depend on which
    tasks happened to run. Their first Encode task recorded the digest (a
    work folder from before the digests were recorded gets it here).
    """
    digests: list[tuple[str | None, int]] = []
    for file, url in enumerate(job.urls):
        path = folder.source(file)
        if plan.files_read is not None and file not in plan.files_read:
            digests.append((None, _size(url)))
        elif path.exists():
            data = read_json(path)
            digests.append((data["sha256"], data["size"]))
        else:
            digests.append(file_digest(url))
    return digests


#: Unit files are Arrow IPC files with LZ4-compressed buffers. Token rows
#: repeat a lot: on the five shared Lichess ``.pgn`` files with ``--sampling
#: all``, ``history`` rows take 396 MB raw and 42 MB so (89 bytes per
#: position), ``default`` rows a quarter of their bytes (17 per position). The
#: cost is about 0.1 µs per row to write and 0.2 to read back. Raw, a month of
#: Lichess games with ``--sampling all`` would leave terabytes of work files.
_UNIT_IPC: Final = pa.ipc.IpcWriteOptions(compression="lz4")
#: Rows per record batch of a unit file: a record batch is decompressed whole,
#: so a slice of a unit holds at most twice this many rows besides its own.
_UNIT_BATCH_ROWS: Final = 8192


def unit_schema(path: Path) -> pa.Schema:
    """The schema of a unit's rows file (nothing is decompressed)."""
    return pa.ipc.open_file(pa.memory_map(str(path))).schema


def read_rows(path: Path, start: int, stop: int, batch_rows: list[int] | None = None) -> pa.Table:
    """Rows ``[start, stop)`` of a unit's rows file.

    Only the record batches that hold some of those rows are decompressed,
    and only those rows are kept: a batch of the build holds its own rows,
    not whole units. ``batch_rows``, the rows of each record batch (recorded
    with the unit's counts), finds them without reading the others; without
    it (a work folder from before it was recorded), the record batches
    before ``start`` are read to count their rows.
    """
    reader = pa.ipc.open_file(pa.memory_map(str(path)))
    kept, offset = [], 0
    for index in range(reader.num_record_batches):
        if offset >= stop:
            break
        if batch_rows is not None and offset + batch_rows[index] <= start:
            offset += batch_rows[index]
            continue
        batch = reader.get_batch(index)
        if offset + batch.num_rows > start:
            first = max(start - offset, 0)
            kept.append(batch.slice(first, min(stop - offset, batch.num_rows) - first))
        offset += batch.num_rows
    return pa.Table.from_batches(kept, reader.schema)


# --- 2. Plan --------------------------------------------------------------------


@dataclass
class PlannedBatch:
    """One batch of the plan: per split, the ``[file, chunk, start, stop]`` row slices, in order."""

    index: int
    partial: bool
    slices: dict[str, list[list[int]]]

    def rows(self, split: str) -> int:
        return sum(stop - start for _, _, start, stop in self.slices[split])


@dataclass
class Plan:
    """The batches, and the counts of the units they consumed (what the sequential path reads)."""

    batches: list[PlannedBatch]
    summary: Summary
    times: StageTimes = field(default_factory=StageTimes)
    #: The inputs whose units it walked, in order; None for a plan saved before they were recorded.
    files_read: list[int] | None = None


def unit_ids(job: Job, folder: WorkFolder) -> Iterator[tuple[int, int]]:
    """Every unit ``(file, chunk)`` in input order.

    Raises:
        InputError, InputUnreachable: the error an Encode task recorded for a compressed file.
        RuntimeError: if the Encode stage has not finished a compressed file (names it).
    """
    items = job.work_items()
    for file, url in enumerate(job.urls):
        if any(item.file == file and item.parts for item in items):
            path = folder.chunk_count(file)
            if not path.exists():
                raise recorded_failure(folder, file) or RuntimeError(f"the Encode stage has not finished {url}: {path} is missing")
            count = read_json(path)["chunks"]
        else:
            count = chunk_count(_size(url), job.unit_bytes)
        yield from ((file, chunk) for chunk in range(count))


def _filled(job: Job, folder: WorkFolder) -> bool:
    """Walk the units in input order: True once those encoded fill every batch, False at the first one not encoded yet.

    Raises:
        InputError, InputUnreachable: that first unit's input recorded an input
            error (so the batches need an input that cannot be read).
    """
    quota = quotas(job.batch_size, job.train_ratio)
    total = dict.fromkeys(SPLITS, 0)
    try:
        for file, chunk in unit_ids(job, folder):
            path = folder.unit(file, chunk, "json")
            if not path.exists():
                if (error := recorded_failure(folder, file)) is not None:
                    raise error
                return False
            for piece in read_json(path)["pieces"]:
                total = {s: total[s] + piece["rows"][s] for s in SPLITS}
            if all(total[s] >= job.batches * quota[s] for s in SPLITS):
                return True
    except RuntimeError:  # a compressed file not streamed whole yet
        return False
    return False


def batches_full(job: Job, folder: WorkFolder) -> bool:
    """Whether the units encoded so far, from the first on, fill every batch (so the rest are not needed)."""
    try:
        return _filled(job, folder)
    except tuple(_INPUT_ERRORS.values()):
        return False  # reported by raise_needed_input_failure


def make_plan(job: Job, folder: WorkFolder) -> Plan:
    """Cut the units' rows into batches exactly as the sequential assembler does, and save the plan.

    The pieces of the units are walked in input order, as the assembler
    consumes unit results: full batches are cut as soon as both splits hold
    their quota, and once the input ends what is left forms partial batches.
    The summary counts the pieces up to the one that completed the last batch.
    """
    summary, seconds = Summary(), StageTimes()
    quota = quotas(job.batch_size, job.train_ratio)
    # Per split: the global row offset where each piece starts, and where that is in its unit.
    starts: dict[str, list[int]] = {s: [0] for s in SPLITS}
    places: dict[str, list[list[int]]] = {s: [] for s in SPLITS}
    taken = dict.fromkeys(SPLITS, 0)
    spans: list[dict[str, int]] = []  # rows taken per split by each batch, in order
    files_read: list[int] = []
    for file, chunk in unit_ids(job, folder):
        path = folder.unit(file, chunk, "json")
        if not path.exists():
            raise recorded_failure(folder, file) or RuntimeError(
                f"the Encode stage has not finished unit {chunk} of {job.urls[file]}: {path} is missing")
        if file not in files_read:
            files_read.append(file)
        unit = read_json(path)
        seconds.add(unit["seconds"])
        offset = dict.fromkeys(SPLITS, 0)
        for piece in unit["pieces"]:
            if len(spans) == job.batches:
                break
            summary.add(Summary.from_dict(piece["summary"]))
            for split in SPLITS:
                places[split].append([file, chunk, offset[split]])
                offset[split] += piece["rows"][split]
                starts[split].append(starts[split][-1] + piece["rows"][split])
            while len(spans) < job.batches and all(starts[s][-1] - taken[s] >= quota[s] for s in SPLITS):
                spans.append(dict(quota))
                taken = {s: taken[s] + quota[s] for s in SPLITS}
        if len(spans) == job.batches:
            # Before asking for the next unit: unit_ids raises the failure of a file the batches do not need.
            break
    full = len(spans)
    while len(spans) < job.batches and any(starts[s][-1] > taken[s] for s in SPLITS):
        spans.append({s: min(quota[s], starts[s][-1] - taken[s]) for s in SPLITS})
        taken = {s: taken[s] + spans[-1][s] for s in SPLITS}
    batches = []
    begin = dict.fromkeys(SPLITS, 0)
    for position, take in enumerate(spans):
        slices = {s: _slices(places[s], starts[s], begin[s], begin[s] + take[s]) for s in SPLITS}
        begin = {s: begin[s] + take[s] for s in SPLITS}
        batches.append(PlannedBatch(position + 1, position >= full, slices))
    if full < job.batches:
        if len(spans) == full:
            logger.warning("input ran out after %d full batches of the %d asked for", full, job.batches)
        for planned in batches[full:]:
            logger.warning("input ran out: batch %d is partial (%d of %d train rows, %d of %d test rows)",
                           planned.index, planned.rows("train"), quota["train"], planned.rows("test"), quota["test"])
    plan = Plan(batches, summary, seconds, files_read)
    write_json(folder.plan, {
        "batches": [asdict(b) for b in batches],
        "summary": summary.as_dict(),
        "seconds": dict(seconds.seconds),
        "files_read": files_read,
    })
    return plan


def _slices(places: list[list[int]], starts: list[int], begin: int, end: int) -> list[list[int]]:
    """The ``[file, chunk, start, stop]`` unit slices of global rows ``[begin, end)``, merged per unit."""
    pieces: list[list[int]] = []
    piece = bisect.bisect_right(starts, begin) - 1
    while begin < end:
        stop = min(end, starts[piece + 1])
        if stop > begin:
            file, chunk, offset = places[piece]
            first, last = offset + begin - starts[piece], offset + stop - starts[piece]
            if pieces and pieces[-1][:2] == [file, chunk] and pieces[-1][3] == first:
                pieces[-1][3] = last
            else:
                pieces.append([file, chunk, first, last])
        begin = stop
        piece += 1
    return pieces


def load_plan(folder: WorkFolder) -> Plan:
    """The plan :func:`make_plan` saved."""
    data = read_json(folder.plan)
    times = StageTimes()
    times.add(data["seconds"])
    return Plan([PlannedBatch(**b) for b in data["batches"]], Summary.from_dict(data["summary"]), times, data.get("files_read"))


# --- 3. Assemble ----------------------------------------------------------------


def assemble_batch(job: Job, folder: WorkFolder, planned: PlannedBatch) -> Batch:
    """Gather one planned batch's rows and shuffle each split with ``(seed, batch, split)``."""
    rows = {}
    units = {(file, chunk) for split in SPLITS for file, chunk, _, _ in planned.slices[split]}
    batch_rows = {unit: read_json(folder.unit(*unit, "json")).get("batch_rows", {}) for unit in units}
    for split_id, split in enumerate(SPLITS):
        schema = unit_schema(folder.unit(0, 0, f"{split}.arrow"))
        parts = [read_rows(folder.unit(file, chunk, f"{split}.arrow"), start, stop, batch_rows[file, chunk].get(split))
                 for file, chunk, start, stop in planned.slices[split]]
        rows[split] = shuffle_rows(rows_.concat(parts, schema), job.seed, planned.index, split_id)
        del parts
        # The decompressed unit rows are free now, but Arrow's allocator would keep
        # their pages for itself, while the window columns and the Parquet writer
        # allocate elsewhere: a one-batch history build peaked 40 % higher.
        pa.default_memory_pool().release_unused()
    return Batch(planned.index, rows["train"], rows["test"], planned.partial)


def staged_batches(
    job: Job, num_proc: int, summary: Summary | None = None, times: StageTimes | None = None
) -> Iterator[Batch]:
    """The batches of ``job``: Encode and Plan on ``num_proc`` local processes, then each batch assembled here.

    The work folder is temporary. ``summary`` and ``times`` are filled as by
    :func:`~chesspos_positions.generation.generate_batches`.
    """
    with tempfile.TemporaryDirectory(prefix="chesspos-work-") as scratch:
        folder = WorkFolder(Path(scratch))
        settings = ExecutorSettings("local", folder.root, num_proc)
        run_stages(encode_and_plan(job, folder, settings), settings)
        plan = load_plan(folder)
        if summary is not None:
            summary.add(plan.summary)
        if times is not None:
            times.add(plan.times.seconds)
        for planned in plan.batches:
            yield assemble_batch(job, folder, planned)


# --- The stages as datatrove steps ---------------------------------------------------


class JobStep(PipelineStep):
    """A stage of ``job``'s build, keeping its files in ``folder``."""

    type = "chesspos"

    def __init__(self, job: Job, folder: WorkFolder) -> None:
        super().__init__()
        self.job, self.folder = job, folder


class EncodeStep(JobStep):
    """Task ``rank`` encodes work item ``rank`` of the job (see :meth:`Job.work_items`); ``digest``: see :func:`encode_item`."""

    name = "encode work units"

    def __init__(self, job: Job, folder: WorkFolder, digest: bool = False) -> None:
        super().__init__(job, folder)
        self.items = job.work_items()
        self.digest = digest

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time("work item"):
            try:
                encode_item(self.job, self.items[rank], self.folder, self.digest)
            except tuple(_INPUT_ERRORS.values()) as error:
                # Recorded, not raised: datatrove would print the task's traceback
                # to the terminal, where the driver reports a bad input in one line,
                # and only if the batches need that input (raise_needed_input_failure).
                record_input_failure(self.folder, self.items[rank], rank, error)
                return data
        self.stat_update("work items")
        return data


class PlanStep(JobStep):
    """The one task that plans the batches from the units' counts."""

    name = "plan batches"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        plan = make_plan(self.job, self.folder)  # stops at an input that the batches need and that could not be read
        self.stat_update("batches", value=len(plan.batches))
        self.stat_update("games read", value=plan.summary.games_read)
        return data


def raise_needed_input_failure(job: Job, folder: WorkFolder, settings: ExecutorSettings) -> None:
    """Raise the error an Encode task recorded for an input the batches need, if any; let a rerun read it afresh.

    An input is needed unless the units before it, in input order, fill the
    batches (as the sequential path would stop before it): so whether a run
    fails does not depend on which tasks happened to run. Before raising, the
    units of every failed input are removed and its Encode tasks marked
    unfinished: a damaged stream may decompress to wrong text before its
    damage is found, and units cut from that text must not outlive it.

    Raises:
        InputError: a needed input is missing, unreadable, truncated or corrupt (names it).
        InputUnreachable: a needed remote input could not be reached (names it).
    """
    records = folder.failures()
    if not records:
        return
    try:
        _filled(job, folder)
    except tuple(_INPUT_ERRORS.values()):
        files = set(records.values())
        forget_tasks(settings, "encode", [rank for rank, item in enumerate(job.work_items()) if item.file in files])
        for file in files:
            shutil.rmtree(folder.units(file), ignore_errors=True)
        for path in records:
            path.unlink()
        raise


def forget_changed_inputs(job: Job, folder: WorkFolder, settings: ExecutorSettings) -> list[str]:
    """Have a rerun read afresh each input changed since the work folder last saw it; return their URLs.

    The job description holds each input's size only, so that a repaired
    input (same size) may be rerun in its folder: an input edited in place
    to the same size would otherwise be taken for the one its units were cut
    from, and published under its old sha256. So the folder also records
    each input's version (:func:`_version`); the units and Encode tasks of
    one whose version changed are forgotten, and with them the plan and the
    Write tasks, which used its rows. An input whose file system reports no
    version (a plain HTTP server without ETag or Last-Modified) is not told.
    """
    path = folder.root / "inputs.json"
    seen = read_json(path) if path.exists() else {}
    now = {url: _version(url) for url in job.urls}
    changed = {file for file, url in enumerate(job.urls) if url in seen and seen[url] != now[url]}
    if changed:
        forget_tasks(settings, "encode", [rank for rank, item in enumerate(job.work_items()) if item.file in changed])
        for file in changed:
            shutil.rmtree(folder.units(file), ignore_errors=True)
        forget_tasks(settings, "plan", [0])
        folder.plan.unlink(missing_ok=True)
        forget_tasks(settings, "write", list(range(job.batches)))
    write_json(path, now)
    return [job.urls[file] for file in sorted(changed)]


#: The most Encode tasks a build may have: each is a datatrove rank with its own files and log,
#: and the executor's own records grow with their number (``--unit-bytes 1`` on a few MB made
#: millions, and a build that never started). The default unit size makes 4,000 for 30 GB.
MAX_ENCODE_TASKS: Final = 100_000


def encode_and_plan(job: Job, folder: WorkFolder, settings: ExecutorSettings, digest: bool = False) -> list[Stage]:
    """The first two stages of every staged build, to run with ``settings``; ``digest``: see :func:`encode_item`.

    Raises:
        ExecutorSetupError: the inputs make more than :data:`MAX_ENCODE_TASKS` units.
    """
    encode = EncodeStep(job, folder, digest)
    if len(encode.items) > MAX_ENCODE_TASKS:
        raise ExecutorSetupError(
            f"--unit-bytes {job.unit_bytes} cuts these inputs into {len(encode.items):,} work units, more than the "
            f"{MAX_ENCODE_TASKS:,} an Encode stage takes: pass a larger --unit-bytes (default {UNIT_BYTES:,})"
        )
    check = partial(raise_needed_input_failure, job, folder, settings)
    return [Stage("encode", encode, len(encode.items), partial(batches_full, job, folder), check), Stage("plan", PlanStep(job, folder), 1)]
