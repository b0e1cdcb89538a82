# SPDX-License-Identifier: GPL-3.0-or-later
"""Building at scale: staged builds through datatrove executors equal the sequential path, byte for byte."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest
import yaml
import zstandard

from builder.shards import shard_path, write_shard
from chesspos_positions import ChessposPositions, Summary, sources
from chesspos_positions.configs import CONFIGS
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep

from chesspos_positions.executors import ExecutorSettings, Stage, _death, _incomplete, logging_dir, slurm_problem
from chesspos_positions.generation import SPLITS, generate_batches
from chesspos_positions.sampling import Sampling
from chesspos_positions.sources import iter_raw_games
from chesspos_positions.steps import Job, WorkFolder, assemble_batch, encode_item, make_plan, read_json, read_rows
from chesspos_positions.units import chunk_count, plan_work, read_chunks
from pgn_fixtures import legal_games, write_pgn
from web_folder import QuietHandler, serve_folder

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT = CONFIGS["default"]
STUBS = Path(__file__).resolve().parent / "slurm_stub"
BATCHES, BATCH_SIZE = 4, 400
#: Small units, so that the fixture files are cut into many units and the .zst into several parts.
UNIT_BYTES = 3_000
#: Units of the Slurm tests: still two chunks of the plain file and three parts of the .zst.
SLURM_UNIT_BYTES = 10_000
OPTIONS = ["--sampling", "all", "--batches", str(BATCHES), "--batch-size", str(BATCH_SIZE), "--seed", "3",
           "--unit-bytes", str(UNIT_BYTES)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a plain PGN file and a .pgn.zst file of other games."""
    folder = tmp_path_factory.mktemp("inputs")
    write_pgn(folder / "a.pgn", legal_games(seed=31, n=40, fen_every=4))
    plain = write_pgn(tmp_path_factory.mktemp("raw") / "b.pgn", legal_games(seed=32, n=60))
    (folder / "b.pgn.zst").write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    return folder


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def sequential(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Summary]:
    """The reference: the builder's batches, generated in one process, written shard by shard."""
    root = tmp_path_factory.mktemp("sequential")
    builder = ChessposPositions(cache_dir=str(root / "cache"), data_path=str(inputs), sampling="all", batches=BATCHES,
                                batch_size=BATCH_SIZE, seed=3)
    summary = Summary()
    for batch in builder.generate_batches(summary=summary, unit_bytes=UNIT_BYTES):
        for split in SPLITS:
            write_shard(getattr(batch, split), DEFAULT, root / "out", shard_path(DEFAULT, split, batch.index, BATCHES))
    return digests(root / "out"), summary


def publish(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "builder.publish", "--dry-run", *args], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_units_cut_every_file_into_the_games_of_reading_it_whole(inputs: Path) -> None:
    urls = sorted(str(p) for p in inputs.iterdir())
    items = plan_work(urls, UNIT_BYTES)
    assert sum(item.parts == 0 for item in items) > 3  # the plain file: one item per byte range
    assert len({item.file for item in items if item.parts > 1}) == 1  # the .zst: several parts
    for url in urls:
        chunks = sorted((c for item in items if item.url == url for c in read_chunks(item, UNIT_BYTES) if c.text is not None),
                        key=lambda chunk: chunk.index)
        assert [c.index for c in chunks] == list(range(len(chunks))) and len(chunks) > 3
        whole = [(g.tags, g.movetext) for g in iter_raw_games([url])]
        assert [(g.tags, g.movetext) for c in chunks for g in c.games()] == whole


@pytest.mark.parametrize("suffix", [".pgn", ".pgn.zst"])
def test_units_never_cut_inside_a_game_with_blank_lines_in_comments(tmp_path: Path, suffix: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A blank line inside a comment, an unclosed comment, escape lines: each cut must still fall between games,
    # in a plain file (read by byte range) and in a compressed one (cut while streaming, here in blocks of
    # 37 bytes, so that chunks and their cuts span blocks).
    monkeypatch.setattr(sources, "_READ_BLOCK", 37)
    games = "".join(
        f'[Event "g{i}"]\n[Site "?"]\n\n1. e4 {{ a comment\n\nwith a blank line }} e5 2. Nf3 *\n\n'
        f'%escape\n[Event "h{i}"]\n\n1. d4 {{ unclosed\n\n[Event "k{i}"]\n\n1. c4 *\n\n' for i in range(50)
    ).encode()
    path = tmp_path / f"tricky{suffix}"
    path.write_bytes(zstandard.ZstdCompressor().compress(games) if suffix == ".pgn.zst" else games)
    whole = [(g.tags, g.movetext) for g in iter_raw_games([str(path)])]
    for unit_bytes in (7, 61, 300):
        items = plan_work([str(path)], unit_bytes)
        chunks = sorted((c for item in items for c in read_chunks(item, unit_bytes) if c.text is not None),
                        key=lambda chunk: chunk.index)
        assert [c.index for c in chunks] == list(range(len(chunks))) and len(chunks) > 8
        assert [(g.tags, g.movetext) for c in chunks for g in c.games()] == whole


@pytest.mark.parametrize(("batches", "batch_size", "ratio"), [
    (4, 400, 0.9),  # full batches, with carry-over across units and files
    (3, 1300, 0.95),  # the input runs out: a partial last batch
    (5, 2000, 0.5),  # one split runs out first: several partial batches
    (2, 10**6, 0.9),  # one partial batch holding everything
])
def test_plan_cuts_the_batches_of_the_sequential_assembler(inputs: Path, tmp_path: Path, batches: int, batch_size: int,
                                                           ratio: float) -> None:
    urls = tuple(sorted(str(p) for p in inputs.iterdir()))
    sampling = Sampling.from_mode("all")
    reference_summary = Summary()
    reference = list(generate_batches(list(urls), sampling, seed=5, batches=batches, batch_size=batch_size,
                                      train_ratio=ratio, unit_bytes=UNIT_BYTES, summary=reference_summary))
    job = Job(urls, sampling, 5, ratio, batches, batch_size, UNIT_BYTES)
    folder = WorkFolder(tmp_path)
    for item in reversed(job.work_items()):  # any order: tasks run in parallel
        encode_item(job, item, folder)
    plan = make_plan(job, folder)
    staged = [assemble_batch(job, folder, planned) for planned in plan.batches]
    assert [(b.index, b.partial, b.train.num_rows, b.test.num_rows) for b in staged] == \
        [(b.index, b.partial, b.train.num_rows, b.test.num_rows) for b in reference]
    assert all(a.train.equals(b.train) and a.test.equals(b.test) for a, b in zip(staged, reference))
    assert plan.summary.as_dict() == reference_summary.as_dict()


@pytest.mark.parametrize("num_proc", [1, 2])
def test_local_executor_is_byte_identical_to_the_sequential_path(inputs: Path, sequential, tmp_path: Path,
                                                                 num_proc: int) -> None:
    shards, summary = sequential
    scratch = tmp_path / "tmp"  # this run's own temporary folder: other runs on the machine do not show in it
    scratch.mkdir()
    result = publish(*OPTIONS, "--data-path", str(inputs), "--num-proc", str(num_proc), "--output-dir", str(tmp_path / "out"),
                     env={**os.environ, "TMPDIR": str(scratch)})
    assert digests(tmp_path / "out") == shards and len(shards) == 2 * BATCHES
    assert f"games read {summary.games_read}, kept {summary.games_kept}" in result.stdout
    assert not list(scratch.glob("chesspos-work-*"))  # no --workdir: the temporary work folder is removed


def test_local_workers_start_safely_after_this_process_used_polars(inputs: Path, sequential, tmp_path: Path) -> None:
    # polars' thread pool does not survive a fork: a worker forked from this
    # process would wait forever in its first shard write.
    script = (
        "import sys, polars\n"
        "polars.DataFrame({'a': range(1_000_000)}).group_by('a').len()  # starts polars' thread pool\n"
        "from builder.publish import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = [*OPTIONS, "--dry-run", "--data-path", str(inputs), "--num-proc", "2", "--output-dir", str(tmp_path / "out")]
    subprocess.run([sys.executable, "-c", script, *args], cwd=REPO_ROOT, check=True, timeout=300, capture_output=True)
    assert digests(tmp_path / "out") == sequential[0]


def test_a_shard_written_from_another_thread_has_the_same_bytes(inputs: Path, tmp_path: Path) -> None:
    # Only the main thread may install signal handlers; a shard write must not need it.
    builder = ChessposPositions(cache_dir=str(tmp_path / "cache"), data_path=str(inputs), sampling="all", batches=1,
                                batch_size=200)
    rows = next(builder.generate_batches(unit_bytes=UNIT_BYTES)).train
    path = shard_path(DEFAULT, "train", 1, 1)
    write_shard(rows, DEFAULT, tmp_path / "main", path)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(write_shard, rows, DEFAULT, tmp_path / "thread", path).result()
    assert digests(tmp_path / "thread") == digests(tmp_path / "main") and len(digests(tmp_path / "main")) == 1


def test_unit_files_are_compressed_and_read_back_by_row_range(inputs: Path, tmp_path: Path) -> None:
    urls = tuple(sorted(str(p) for p in inputs.iterdir()))
    job = Job(urls, Sampling.from_mode("all"), 5, 0.9, 1, 10**6, 10**6, kind="history")
    folder = WorkFolder(tmp_path)
    for item in job.work_items():
        encode_item(job, item, folder)
    path = folder.unit(0, 0, "train.arrow")
    rows = pa.ipc.open_file(path).read_all()
    assert rows.num_rows > 1000
    assert path.stat().st_size < rows.nbytes / 4  # the token rows compress; raw, the file would be their bytes

    recorded = read_json(folder.unit(0, 0, "json"))["batch_rows"]["train"]
    assert sum(recorded) == rows.num_rows and len(recorded) == pa.ipc.open_file(path).num_record_batches

    # Record batches of several sizes, empty ones included: every row range reads back, with the
    # recorded record batch sizes and without them (work folders from before they were recorded).
    sizes = [300, 0, 300, 1, 299, 0, rows.num_rows - 900]
    pieces = tmp_path / "pieces.arrow"
    with pa.ipc.new_file(pieces, rows.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        for start, size in zip(itertools.accumulate([0, *sizes]), sizes):
            writer.write_batch(rows.slice(start, size).combine_chunks().to_batches()[0] if size else
                               pa.RecordBatch.from_pylist([], rows.schema))
    for start, stop in [(0, rows.num_rows), (0, 0), (0, 1), (299, 301), (300, 600), (600, 601), (450, rows.num_rows),
                        (rows.num_rows - 1, rows.num_rows), (rows.num_rows, rows.num_rows), (17, 1234)]:
        for batch_rows in (sizes, None):
            assert read_rows(pieces, start, stop, batch_rows).equals(rows.slice(start, stop - start)), (start, stop)
    empty = tmp_path / "empty.arrow"
    pa.ipc.new_file(empty, rows.schema).close()
    assert read_rows(empty, 0, 0, []).equals(rows.slice(0, 0))


def test_workdir_rerun_skips_finished_work_and_refuses_other_options(inputs: Path, sequential, tmp_path: Path) -> None:
    work = tmp_path / "work"
    publish(*OPTIONS, "--data-path", str(inputs), "--workdir", str(work), "--output-dir", str(tmp_path / "one"))
    completions = sorted((work / "logs" / "encode" / "completions").iterdir())
    assert len(completions) == len(plan_work(sorted(str(p) for p in inputs.iterdir()), UNIT_BYTES))
    marks = {p: p.stat().st_mtime_ns for p in (work / "units").rglob("*.json")}
    # The stage's merged stats count every task: one process runs them in waves of 2, 4, 8 ...
    merged = json.loads((work / "logs" / "encode" / "stats.json").read_text())
    assert merged[0]["stats"]["work items"]["total"] == len(completions) > 2
    publish(*OPTIONS, "--data-path", str(inputs), "--workdir", str(work), "--output-dir", str(tmp_path / "two"))
    assert {p: p.stat().st_mtime_ns for p in (work / "units").rglob("*.json")} == marks  # nothing encoded again
    # ... also after a rerun that skipped them all.
    assert json.loads((work / "logs" / "encode" / "stats.json").read_text()) == merged
    assert digests(tmp_path / "two") == digests(tmp_path / "one") == sequential[0]
    assert (tmp_path / "two" / "README.md").read_text() == (tmp_path / "one" / "README.md").read_text()
    refused = publish(*OPTIONS, "--seed", "4", "--data-path", str(inputs), "--workdir", str(work), check=False)
    assert refused.returncode == 2 and "holds a build with other seed (seed: 3 there, 4 here)" in refused.stderr
    # A nested option is named down to the field that differs.
    refused = publish(*OPTIONS, "--sampling", "default", "--data-path", str(inputs), "--workdir", str(work), check=False)
    assert refused.returncode == 2 and "sampling.keep_all: True there, False here" in refused.stderr


def test_an_input_edited_in_place_is_read_afresh_by_a_rerun(inputs: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(inputs, tmp_path / "inputs")
    work = tmp_path / "work"
    publish(*OPTIONS, "--data-path", str(folder), "--workdir", str(work), "--output-dir", str(tmp_path / "one"))
    edited = folder / "a.pgn"
    text = edited.read_bytes()
    edited.write_bytes(text.replace(b" e4 ", b" d4 "))  # the same size, other games
    stat = edited.stat()
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a second later, however coarse the clock
    rerun = publish(*OPTIONS, "--data-path", str(folder), "--workdir", str(work), "--output-dir", str(tmp_path / "two"))
    assert f"input {edited} changed since the work folder last read it" in rerun.stderr
    publish(*OPTIONS, "--data-path", str(folder), "--output-dir", str(tmp_path / "fresh"))
    assert digests(tmp_path / "two") == digests(tmp_path / "fresh") != digests(tmp_path / "one")
    card = (tmp_path / "two" / "README.md").read_text()
    assert hashlib.sha256(edited.read_bytes()).hexdigest() in card and hashlib.sha256(text).hexdigest() not in card


def test_killed_build_resumes_to_the_same_shards(inputs: Path, sequential, tmp_path: Path) -> None:
    work = tmp_path / "work"
    args = [sys.executable, "-m", "builder.publish", "--dry-run", *OPTIONS, "--unit-bytes", "700", "--data-path",
            str(inputs), "--workdir", str(work), "--output-dir", str(tmp_path / "out"), "--num-proc", "2"]
    process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    completions = work / "logs" / "encode" / "completions"
    deadline = time.monotonic() + 120
    while not (completions.exists() and len(list(completions.iterdir())) >= 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the driver and its workers, mid-stage
    process.wait()
    assert len(list(completions.iterdir())) < len(plan_work(sorted(str(p) for p in inputs.iterdir()), 700)), \
        "the build finished before the kill"
    finished = {p: p.stat().st_mtime_ns for p in (work / "units").rglob("*.json")}
    # What a killed task leaves of a unit it was writing: as if a worker on another host had been killed.
    folder, plain = WorkFolder(work), inputs / "a.pgn"
    unit = next(c for c in range(chunk_count(plain.stat().st_size, 700)) if not folder.unit(0, c, "json").exists())
    stale = folder.unit(0, unit, "train.arrow").with_name(f".{unit:07d}.train.arrow.elsewhere.1.tmp")
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a unit")
    publish(*OPTIONS, "--unit-bytes", "700", "--data-path", str(inputs), "--workdir", str(work),
            "--output-dir", str(tmp_path / "out"), "--num-proc", "2")
    assert finished and all(p.stat().st_mtime_ns == mtime for p, mtime in finished.items())  # not encoded again
    assert not list((work / "units").rglob("*.tmp"))  # the rerun removed what the killed tasks left
    assert digests(tmp_path / "out") == sequential[0]


def children(pid: int) -> list[int]:
    """The child processes of ``pid``, oldest first (by start time, then pid; from /proc/PID/stat)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # fields[0] is the state, field 3 of stat
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append((int(fields[19]), int(stat.parent.name)))
    return [child for _, child in sorted(found)]


@dataclass
class StalledInput:
    """A .pgn.zst file served over HTTP whose reads wait, once :attr:`armed`, until :attr:`release` is set.

    Compressed, so that it is read from its start: the server ignores byte ranges.
    """

    url: str
    armed: threading.Event
    began: threading.Event
    release: threading.Event


@pytest.fixture
def stalled_input(tmp_path: Path) -> Iterator[StalledInput]:
    folder = tmp_path / "www"
    folder.mkdir()
    text = write_pgn(folder / "z.pgn", legal_games(seed=33, n=10)).read_bytes()
    (folder / "z.pgn.zst").write_bytes(zstandard.ZstdCompressor().compress(text))
    armed, began, release = threading.Event(), threading.Event(), threading.Event()

    class Stalling(QuietHandler):
        def do_GET(self) -> None:
            if armed.is_set():
                began.set()
                release.wait(120)
            super().do_GET()

    with serve_folder(folder, Stalling) as base:
        try:
            yield StalledInput(f"{base}/z.pgn.zst", armed, began, release)
        finally:
            release.set()  # before the server stops: it waits for its handlers


def test_a_failed_wave_tells_its_unfinished_tasks_from_those_not_started(tmp_path: Path) -> None:
    class Idle(PipelineStep):
        def run(self, data=None, rank: int = 0, world_size: int = 1):
            return data

    settings = ExecutorSettings("local", tmp_path)
    stage = Stage("encode", Idle(), tasks=20)
    wave = range(4, 8)
    executor = LocalPipelineExecutor(pipeline=[Idle()], tasks=20, logging_dir=str(logging_dir(settings, stage)),
                                     local_tasks=len(wave), local_rank_offset=wave.start)
    for rank in (0, 1, 2, 3, 4, 6):
        executor.mark_rank_as_completed(rank)
    message = str(_incomplete(stage, executor, settings, wave))
    assert "2 of the 4 tasks run did not finish (ranks 5, 7); the 12 tasks after them were not started" in message
    assert "were not started" not in str(_incomplete(stage, executor, settings, range(20)))


def test_a_dead_worker_is_told_from_a_pool_that_ends() -> None:
    def run(*codes: int | None) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=100 + i, exitcode=code) for i, code in enumerate(codes)]

    # The manager and two workers: running, then ended as a pool ends them.
    assert _death(run(None, None, None), workers=2) is None
    assert _death(run(0, -signal.SIGTERM, -signal.SIGTERM), workers=2) is None
    assert "101 of the local run died (killed by SIGKILL" in _death(run(None, -signal.SIGKILL, None), workers=2)
    assert "(exit code 1;" in _death(run(None, None, 1), workers=2)
    assert "(killed by signal 40;" in _death(run(None, -40, None), workers=2)  # a real-time signal
    assert "replaced" in _death(run(None, None, None, None), workers=2)  # one died unseen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
@pytest.mark.parametrize("own_workdir", [True, False])
def test_killed_worker_stops_the_build_which_a_rerun_finishes(inputs: Path, stalled_input: StalledInput,
                                                               tmp_path: Path, own_workdir: bool) -> None:
    # Without --workdir the build works in a temporary folder, which a failed build keeps for the rerun it names.
    temp = tmp_path / "temp"
    temp.mkdir()
    options = [*OPTIONS, "--unit-bytes", "700", "--data-path", str(inputs), stalled_input.url, "--num-proc", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "builder.publish", "--dry-run", *options, "--output-dir", str(tmp_path / "out"),
         *(["--workdir", str(tmp_path / "work")] if own_workdir else [])],
        cwd=REPO_ROOT, env=dict(os.environ, TMPDIR=str(temp)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    # Once the Encode stage runs (the command itself reads the served file before), reads wait.
    # The batches need that file (the local inputs do not fill them): a task comes to wait on it.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [tmp_path / "work"] if own_workdir else sorted(temp.glob("chesspos-work-*"))
        if found and (found[0] / "logs" / "encode").exists():
            break
        time.sleep(0.01)
    work = found[0]
    stalled_input.armed.set()
    assert stalled_input.began.wait(120), "no task read the served input"
    # Kill the pool's workers, as the out-of-memory killer would; the oldest child is datatrove's manager.
    for worker in children(process.pid)[1:]:
        os.kill(worker, signal.SIGKILL)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the build waited for ever for the killed workers' task")
    assert process.returncode == 1, stderr  # a runtime failure: rerunning is the fix
    assert "of the local run died (killed by SIGKILL" in stderr and f"--workdir {work} to resume" in stderr, stderr[-2000:]
    assert any((work / "logs" / "encode" / "completions").iterdir())  # the folder it names is there, with what finished
    assert own_workdir or f"temporary work folder {work} is kept for that: delete it when done" in stderr
    stalled_input.release.set()
    publish(*options, "--workdir", str(work), "--output-dir", str(tmp_path / "out"))
    publish(*options, "--output-dir", str(tmp_path / "fresh"))
    assert digests(tmp_path / "out") == digests(tmp_path / "fresh")


def slurm_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine whose sbatch/srun/squeue/scontrol run job arrays locally (tests/slurm_stub)."""
    state = tmp_path / "slurm"
    state.mkdir()
    path = os.pathsep.join([str(STUBS), str(Path(sys.executable).parent), os.environ["PATH"]])
    return dict(os.environ, PATH=path, SLURM_STUB_DIR=str(state), PYTHONPATH=str(REPO_ROOT))


def wait_for_stub_jobs(tmp_path: Path) -> list[Path]:
    """Wait until no job of the stub Slurm is pending or running; its job state files."""
    jobs = tmp_path / "slurm" / "jobs"
    deadline = time.monotonic() + 120
    while any(p.read_text().strip() in ("PENDING", "RUNNING") for p in jobs.iterdir()):
        assert time.monotonic() < deadline, "the stub's jobs did not end"
        time.sleep(0.2)
    return sorted(jobs.iterdir())


def test_slurm_executor_through_stub_scripts_is_byte_identical(inputs: Path, sequential, tmp_path: Path) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({"executor": "slurm", "slurm": {"partition": "cpu", "time": "1:00:00",
                                                                       "cpus_per_task": 1, "mem_per_cpu_gb": 2}}))
    env = slurm_env(tmp_path)
    work = tmp_path / "work"
    # Larger units than the other tests (each Slurm task is a new Python process): the shards do not change.
    common = [*OPTIONS, "--unit-bytes", str(SLURM_UNIT_BYTES), "--config", str(config), "--data-path", str(inputs),
              "--workdir", str(work), "--output-dir", str(tmp_path / "out")]
    submitted = publish(*common, "--no-wait", env=env)
    assert "rerun the same command" in submitted.stdout and not digests(tmp_path / "out")
    # The rerun waits for the queued jobs (it submits nothing twice), then finishes the release.
    finished = publish(*common, env=env)
    assert digests(tmp_path / "out") == sequential[0]
    assert "games read" in finished.stdout
    # The command does not wait for datatrove's stats-merging jobs, which may still run.
    launched = wait_for_stub_jobs(tmp_path)
    assert len(launched) == 6  # encode, plan, write, and datatrove's stats-merging job after each
    assert all(p.read_text() == "COMPLETED" for p in launched), {p.name: p.read_text() for p in launched}
    assert list((work / "logs" / "encode" / "slurm_logs").glob("*.out"))
    assert "--qos" not in (work / "logs" / "encode" / "launch_script.slurm").read_text()


def test_slurm_executor_reports_a_failed_task_and_how_to_resume(inputs: Path, tmp_path: Path) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({"executor": "slurm", "slurm": {"partition": "cpu", "time": "1:00:00"}}))
    work = tmp_path / "work"
    (work / "units").mkdir(parents=True)
    (work / "units" / "00001").write_text("in the way")  # the second file's units cannot be written: its tasks fail
    result = publish(*OPTIONS, "--unit-bytes", str(SLURM_UNIT_BYTES), "--config", str(config), "--data-path", str(inputs),
                     "--workdir", str(work), "--output-dir", str(tmp_path / "out"), env=slurm_env(tmp_path), check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "stage 'encode':" in result.stderr and "did not finish" in result.stderr
    assert f"--workdir {work.resolve()}" in result.stderr
    # The stages queued after it were cancelled: nothing waits forever on a dependency that cannot be met.
    states = [p.read_text() for p in sorted((tmp_path / "slurm" / "jobs").iterdir())]
    assert "FAILED" in states and "PENDING" not in states and "RUNNING" not in states


def test_a_wrong_slurm_option_is_a_usage_error(inputs: Path, tmp_path: Path) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({"executor": "slurm", "slurm": {"partition": "cpu", "time": "1:00:00", "gpu": "x"}}))
    env = slurm_env(tmp_path)
    result = publish(*OPTIONS, "--config", str(config), "--data-path", str(inputs), "--workdir", str(tmp_path / "work"),
                     "--output-dir", str(tmp_path / "out"), env=env, check=False)
    assert result.returncode == 2, result.stderr[-2000:]  # fix the config, unlike failed tasks (exit code 1)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(config) in errors[0] and "'gpu'" in errors[0], errors
    config.write_text(yaml.safe_dump({"executor": "slurm", "slurm": {"partition": "cpu", "time": "1:00:00",
                                                                       "sbatch_args": "account=x"}}))
    result = publish(*OPTIONS, "--config", str(config), "--data-path", str(inputs), "--workdir", str(tmp_path / "work"),
                     "--output-dir", str(tmp_path / "out"), env=env, check=False)
    assert result.returncode == 2 and "sbatch_args must be a mapping" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("options", "named"), [
    ({"partition": ["a"]}, "partition must be a non-empty string, got ['a']"),
    ({"time": 14400}, "time must be a non-empty string, got 14400 (quote it"),  # YAML's reading of 4:00:00
    ({"cpus_per_task": "two"}, "cpus_per_task must be a whole number of at least 1, got 'two'"),
    ({"cpus_per_task": -3}, "cpus_per_task must be a whole number of at least 1, got -3"),
    ({"mem_per_cpu_gb": 0.5}, "mem_per_cpu_gb must be a whole number of at least 1, got 0.5"),
    ({"venv_path": 7}, "venv_path must be a non-empty string, got 7"),
    ({"sbatch_args": {"account": ["a"]}}, "got 'account': ['a']"),
    ({"sbatch_args": {"x y": 1}}, "got 'x y': 1"),
    ({"sbatch_args": {"--account": "a"}}, "got '--account': 'a'"),
    ({"foo": 1}, "unknown slurm option(s) 'foo'"),
])
def test_a_slurm_value_datatrove_would_write_into_sbatch_as_it_is_is_checked(options: dict, named: str) -> None:
    problem = slurm_problem({"partition": "cpu", "time": "1:00:00", **options})
    assert problem is not None and named in problem
    assert slurm_problem({"partition": "cpu", "time": "1:00:00", "cpus_per_task": 4, "mem_per_cpu_gb": "2", "qos": None,
                          "venv_path": None, "sbatch_args": {"account": "a", "nice": 10, "exclusive": None}}) is None
    assert slurm_problem({"cpus_per_task": 2}, complete=False) is None  # a config file a local run may use


REFUSING_SBATCH = """#!/bin/sh
# sbatch as a cluster answers a job it refuses: an error on stderr, exit 1. Else the stub's sbatch.
for script; do :; done
if [ -f "$REFUSE_MARK" ] && grep -q "job-name=$REFUSE_JOB" "$script"; then
    echo "sbatch: error: Batch job submission failed: Invalid qos specification" >&2
    exit 1
fi
exec "$STUB_SBATCH" "$@"
"""


def test_a_job_sbatch_refuses_is_one_error_and_the_jobs_queued_before_it_are_not_submitted_again(
    inputs: Path, sequential, tmp_path: Path
) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({"executor": "slurm", "slurm": {"partition": "cpu", "time": "1:00:00"}}))
    env = slurm_env(tmp_path)
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    (wrapper / "sbatch").write_text(REFUSING_SBATCH)
    (wrapper / "sbatch").chmod(0o755)
    mark = tmp_path / "refuse"
    mark.touch()
    env.update(PATH=f"{wrapper}{os.pathsep}{env['PATH']}", STUB_SBATCH=str(STUBS / "sbatch"), REFUSE_MARK=str(mark),
               REFUSE_JOB="chesspos-plan")
    command = [*OPTIONS, "--unit-bytes", str(SLURM_UNIT_BYTES), "--config", str(config), "--data-path", str(inputs),
               "--workdir", str(tmp_path / "work"), "--output-dir", str(tmp_path / "out")]
    refused = publish(*command, env=env, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert [line for line in refused.stderr.splitlines() if line.startswith("error:")][0].startswith("error: sbatch refused a job")
    encode_jobs = len(wait_for_stub_jobs(tmp_path))  # the Encode array went through before Plan was refused
    mark.unlink()
    publish(*command, env=env)
    assert digests(tmp_path / "out") == sequential[0]
    jobs = [(tmp_path / "slurm" / f"{p.name}.sh").read_text() for p in wait_for_stub_jobs(tmp_path)]
    # One Encode array in all (datatrove's stats-merging job of a stage carries the stage's name too).
    assert sum("launch_pickled_pipeline" in script and "/encode/" in script for script in jobs) == 1 and encode_jobs >= 1


def test_slurm_no_wait_then_the_same_command_finishes_the_release(inputs: Path, sequential, tmp_path: Path) -> None:
    # The README's promise: submit with --no-wait, then rerun the very same command once the jobs are done.
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({"executor": "slurm", "slurm": {"partition": "cpu", "time": "1:00:00", "qos": "high"}}))
    env = slurm_env(tmp_path)
    work = tmp_path / "work"
    command = [*OPTIONS, "--unit-bytes", str(SLURM_UNIT_BYTES), "--config", str(config), "--data-path", str(inputs),
               "--workdir", str(work), "--output-dir", str(tmp_path / "out"), "--no-wait"]
    assert "rerun the same command" in publish(*command, env=env).stdout
    submitted = len(wait_for_stub_jobs(tmp_path))
    finished = publish(*command, env=env)
    assert "games read" in finished.stdout and digests(tmp_path / "out") == sequential[0]
    assert len(list((tmp_path / "slurm" / "jobs").iterdir())) == submitted  # nothing submitted again
    # qos is passed when given, and datatrove's own default ("normal") is not sent otherwise.
    assert "#SBATCH --qos=high" in (work / "logs" / "encode" / "launch_script.slurm").read_text()


def truncated_slurm_build(inputs: Path, tmp_path: Path, *extra: str) -> tuple[list[str], Path]:
    """The publish arguments of a Slurm build (stub scripts) whose one input is truncated, and that input."""
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({"executor": "slurm", "slurm": {"partition": "cpu", "time": "1:00:00"}}))
    (data := tmp_path / "data").mkdir()
    packed = (inputs / "b.pgn.zst").read_bytes()
    (cut := data / "cut.pgn.zst").write_bytes(packed[: len(packed) // 2])
    return [*OPTIONS, "--unit-bytes", str(SLURM_UNIT_BYTES), "--config", str(config), "--data-path", str(data),
            "--workdir", str(tmp_path / "work"), "--output-dir", str(tmp_path / "out"), *extra], cut


def assert_reports_truncated(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "truncated or corrupt" in errors[0] and str(path) in errors[0], errors
    assert "Traceback" not in result.stderr


def test_slurm_run_reports_a_truncated_input_in_one_line(inputs: Path, tmp_path: Path) -> None:
    # The Encode tasks record the damage; on Slurm the Plan task stops at it, and the driver names the file.
    args, cut = truncated_slurm_build(inputs, tmp_path)
    assert_reports_truncated(publish(*args, env=slurm_env(tmp_path), check=False), cut)
    assert not (tmp_path / "out").exists()


def test_slurm_no_wait_rerun_reports_a_truncated_input(inputs: Path, tmp_path: Path) -> None:
    # With --no-wait, the rerun after the jobs ended reports the input instead of submitting them again.
    args, cut = truncated_slurm_build(inputs, tmp_path, "--no-wait")
    env = slurm_env(tmp_path)
    assert "rerun the same command" in publish(*args, env=env).stdout
    submitted = len(wait_for_stub_jobs(tmp_path))
    assert_reports_truncated(publish(*args, env=env, check=False), cut)
    assert len(list((tmp_path / "slurm" / "jobs").iterdir())) == submitted  # nothing submitted again


def test_ray_executor_is_byte_identical(inputs: Path, sequential, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    # "local" starts a one-machine Ray cluster for this run; on a cluster, the default "auto" joins it.
    publish(*OPTIONS, "--executor", "ray", "--ray-address", "local", "--data-path", str(inputs),
            "--workdir", str(tmp_path / "work"), "--output-dir", str(tmp_path / "out"))
    assert digests(tmp_path / "out") == sequential[0]


def test_ray_without_a_cluster_is_a_usage_error_naming_our_flag(inputs: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    result = publish(*OPTIONS, "--executor", "ray", "--data-path", str(inputs), "--workdir", str(tmp_path / "work"),
                     "--output-dir", str(tmp_path / "out"), env=env, check=False)
    assert result.returncode == 2 and "--ray-address 'auto'" in result.stderr and "Traceback" not in result.stderr


def test_local_build_encodes_only_the_units_the_batches_need(inputs: Path, tmp_path: Path) -> None:
    few = ["--sampling", "all", "--batches", "1", "--batch-size", "200", "--unit-bytes", str(UNIT_BYTES)]
    work = tmp_path / "work"
    result = publish(*few, "--data-path", str(inputs), "--workdir", str(work), "--output-dir", str(tmp_path / "out"))
    encoded = list((work / "units").rglob("*.json"))
    assert 0 < len(encoded) < len(plan_work(sorted(str(p) for p in inputs.iterdir()), UNIT_BYTES))
    builder = ChessposPositions(cache_dir=str(tmp_path / "cache"), data_path=str(inputs), sampling="all", batches=1,
                                batch_size=200)
    summary = Summary()
    for batch in builder.generate_batches(summary=summary, unit_bytes=UNIT_BYTES):
        for split in SPLITS:
            write_shard(getattr(batch, split), DEFAULT, tmp_path / "reference", shard_path(DEFAULT, split, batch.index, 1))
    assert digests(tmp_path / "out") == digests(tmp_path / "reference")
    assert f"games read {summary.games_read}," in result.stdout
