# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the stages of a build: on this machine, on a Slurm cluster or on Ray, through datatrove.

This module owns no build logic. A :class:`Stage` is a datatrove
``PipelineStep`` run as ``tasks`` independent tasks (task ``rank`` does
part ``rank`` of the work; see :mod:`.steps`). :func:`run_stages` runs stages
in order with the chosen executor and checks that every task finished.
datatrove keeps, per stage, under ``WORKDIR/logs/STAGE/``: one log per task
(``logs/task_NNNNN.log``), per-task and merged stats (``stats/``,
``stats.json``) and a completion marker per finished task
(``completions/NNNNN``): a rerun with the same work folder skips finished tasks.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Final, Literal, get_args

import multiprocess
from datatrove.executor import LocalPipelineExecutor, SlurmPipelineExecutor
from datatrove.executor.base import PipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.stats import PipelineStats
from multiprocess.context import ForkServerProcess

logger = logging.getLogger(__name__)

ExecutorKind = Literal["local", "slurm", "ray"]
EXECUTORS: Final = get_args(ExecutorKind)

#: The keys of a config file's ``slurm:`` section, with datatrove's names and meanings.
SLURM_KEYS: Final = ("partition", "time", "qos", "cpus_per_task", "mem_per_cpu_gb", "venv_path", "env_command", "sbatch_args")


def _start_method() -> str:
    """How local workers start: forked on Linux, unless this process has imported polars.

    Forked workers share the parent's imports; datatrove's default, forkserver,
    makes each worker import the project (datasets, pyarrow) again: seconds
    per stage, more than a small build's work. But polars' thread pool does
    not survive a fork: once this process has written a shard, a forked
    worker's first write would wait forever for threads it does not have.
    """
    if not sys.platform.startswith("linux"):
        return "spawn"
    return "forkserver" if "polars" in sys.modules else "fork"


class StagesError(RuntimeError):
    """Some tasks of a stage did not finish; the message says where the logs are and how to resume."""


class ExecutorSetupError(RuntimeError):
    """The executor cannot run as asked: a missing extra or command, or a wrong ``slurm:`` option.

    Not a :class:`StagesError`: no task ran, and rerunning will not help; the setup must change.
    """


class StagesPending(Exception):
    """Slurm jobs were submitted (``--no-wait``) or are still queued: rerun the same command later."""


@dataclass
class ExecutorSettings:
    """How stages run.

    Attributes:
        kind: "local" (datatrove's LocalPipelineExecutor, ``num_proc`` processes),
            "slurm" (SlurmPipelineExecutor, one array task per stage task) or
            "ray" (RayPipelineExecutor on an existing cluster).
        workdir: the work folder; for Slurm and Ray on storage every node reaches.
        num_proc: local processes (and Ray/Slurm concurrency is the cluster's).
        slurm: SlurmPipelineExecutor options (:data:`SLURM_KEYS`).
        ray_address: the Ray cluster to join ("auto": the one this node belongs to).
        wait: for Slurm: wait for the jobs; False submits them and raises :class:`StagesPending`.
        poll_seconds: the longest wait between two checks of the Slurm queue
            (checks start after 1 s and back off to it).
    """

    kind: ExecutorKind
    workdir: Path
    num_proc: int = 1
    slurm: dict[str, Any] = field(default_factory=dict)
    ray_address: str = "auto"
    wait: bool = True
    poll_seconds: float = 30.0


@dataclass(frozen=True)
class Stage:
    """One stage: a pipeline step run as ``tasks`` tasks.

    ``enough``, if given, tells whether the tasks finished so far already do
    the stage's job; the local executor then runs the tasks in rank order, in
    waves (``2 * num_proc`` tasks, doubling), and stops once it is true.
    Slurm and Ray run every task.

    ``check``, if given, is called in this process before a local stage's
    first wave and after each wave, after a Ray stage, and before stages are
    submitted to Slurm: it raises to stop the run, for what tasks record
    rather than raise. On Slurm, where the stages are submitted at once, the
    next stage's tasks must also check for themselves.

    ``needed``, if given, tells how many of the first tasks have work, once
    the stages before have run: local and Ray executors run only those.
    Slurm, which submits every stage at once, runs all ``tasks``; the others
    find nothing to do.
    """

    name: str
    step: PipelineStep
    tasks: int
    enough: Callable[[], bool] | None = None
    check: Callable[[], None] | None = None
    needed: Callable[[], int] | None = None


def run_stages(stages: list[Stage], settings: ExecutorSettings) -> None:
    """Run ``stages`` in order; return when every task of every stage has finished.

    Raises:
        StagesError: a task failed or did not finish (names the stage, the
            tasks and their logs, and how to resume).
        StagesPending: Slurm jobs were submitted without waiting, or are still queued.
        ExecutorSetupError: the executor cannot run as asked (Ray missing, a wrong ``slurm:`` option, no squeue).
        Exception: what a stage's ``check`` raises.
    """
    if settings.kind == "slurm":
        _run_slurm(stages, settings)
        return
    for stage in stages:
        if stage.needed is not None:
            # 2,000 Write tasks for the one batch an input fills took a minute of starting empty tasks.
            stage = replace(stage, tasks=stage.needed())
            if not stage.tasks:
                continue
        if settings.kind == "local" and stage.enough is not None:
            _run_in_waves(stage, settings)
        else:
            _run_checked(stage, _executor(stage, settings), settings, range(stage.tasks))
        if settings.kind == "local":
            _merge_stats(stage, settings)
        if stage.check is not None:
            stage.check()


def _run_checked(stage: Stage, executor: PipelineExecutor, settings: ExecutorSettings, ranks: range) -> None:
    """Run ``executor``; raise :class:`StagesError` unless all of ``ranks`` completed."""
    try:
        with _WorkerWatch(executor):
            executor.run()
    except WorkerDied as error:
        _stop_children()  # the unwinding was cut short: the pool and the manager may live on
        if interrupt := _interrupt_behind(error):
            raise interrupt from None
        if executor.get_incomplete_ranks(ranks):
            raise _incomplete(stage, executor, settings, ranks, error) from error
        # Every task had finished: only the stage's merged stats were not written.
        logger.warning("%s; every task of stage %r had finished", error, stage.name)
    except Exception as error:  # a task's own error: reported with the stage, its logs and how to resume
        raise _incomplete(stage, executor, settings, ranks, error) from error
    except BaseException:
        # An interrupt may land while datatrove starts its multiprocess manager,
        # before the manager is set to be shut down: the interpreter would then
        # wait for it forever at exit.
        _stop_children()
        raise
    if executor.get_incomplete_ranks(ranks):
        raise _incomplete(stage, executor, settings, ranks)


def _stop_children() -> None:
    for child in multiprocess.active_children():
        child.terminate()
        child.join(_STOP_SECONDS)
        if child.is_alive():
            child.kill()
            child.join()


def _interrupt_behind(error: BaseException) -> BaseException | None:
    """The interrupt (Ctrl-C, SIGTERM) that ``error`` was raised while handling, if any.

    Outside the command, Ctrl-C also stops the workers (with exit code 1),
    so the watcher may report them dead while the interrupt unwinds, or first.
    """
    cause = error.__context__
    while isinstance(cause, Exception):
        cause = cause.__context__
    return cause


class WorkerDied(RuntimeError):
    """A local worker process ended in the middle of a stage (killed, or crashed)."""


class _WorkerWatch:
    """Within the block, raise :class:`WorkerDied` in this thread when a worker of a local multi-process run dies.

    datatrove's local executor runs its tasks on a process pool, which replaces
    a worker that was killed (by the kernel's out-of-memory killer, say) but
    never hears of the task it was running, nor gets back a lock the worker
    held: the run, or the pool's own shutdown, would wait for ever. A watcher
    thread notices a worker that ended other than by SIGTERM (how a pool stops
    its workers), or was replaced, and from then on interrupts this thread
    with SIGUSR1 every :data:`_NUDGE_SECONDS` until the block ends. The
    handler raises, even in a blocked lock wait, so each wait the unwinding
    meets is cut short too; it raises only between the end of ``__enter__``
    and the start of ``__exit__``. Only the main thread takes signals, so
    elsewhere the run goes unwatched; a SIGUSR1 handler of the caller's is
    set aside for the block.
    """

    def __init__(self, executor: PipelineExecutor) -> None:
        self.executor = executor
        self.active = (isinstance(executor, LocalPipelineExecutor) and executor.workers > 1
                       and threading.current_thread() is threading.main_thread())
        self.stop = threading.Event()
        self.inside = False
        self.reason: str | None = None

    def __enter__(self) -> None:
        if self.active:
            self.earlier = {child.pid for child in multiprocess.active_children()}  # not the run's processes
            self.previous = signal.signal(signal.SIGUSR1, self._interrupt)
            self.watcher = threading.Thread(target=self._watch, name="chesspos-worker-watch", daemon=True)
            self.watcher.start()
            self.inside = True

    def __exit__(self, *exc: object) -> None:
        if self.active:
            self.inside = False
            self.stop.set()
            self.watcher.join()
            # None: the handler was not installed from Python; the default stands in.
            signal.signal(signal.SIGUSR1, signal.SIG_DFL if self.previous is None else self.previous)

    def _watch(self) -> None:
        children: dict[int, Any] = {}  # every process of the run, by pid, dead ones included
        main = threading.main_thread().ident
        assert main is not None
        while self.reason is None and not self.stop.wait(_WATCH_SECONDS):
            children.update((child.pid, child) for child in multiprocess.active_children()
                            if child.pid not in self.earlier)
            self.reason = _death(list(children.values()), self.executor.workers)
        while not self.stop.is_set():
            signal.pthread_kill(main, signal.SIGUSR1)
            self.stop.wait(_NUDGE_SECONDS)

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self.inside:
            raise WorkerDied(self.reason)


def _death(children: list[Any], workers: int) -> str | None:
    """Why a run whose processes are ``children`` (``workers`` pool workers and datatrove's manager) lost one, if it did."""
    for child in children:
        code = child.exitcode
        # A forkserver child's status is read from a pipe: of two threads asking at
        # once, one reads 255. A real death is still seen by the replacement.
        if code in (None, 0, -signal.SIGTERM) or (code == 255 and isinstance(child, ForkServerProcess)):
            continue
        try:
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        except ValueError:  # a real-time signal has no name
            how = f"killed by signal {-code}"
        return f"process {child.pid} of the local run died ({how}; out of memory?)"
    # A worker that died between two looks is known by its replacement, since a
    # pool replaces only dead workers.
    if len(children) > workers + 1:
        return "a worker process died and was replaced"
    return None


#: How often the watcher looks at the local workers: a look costs a wait() per process.
_WATCH_SECONDS: Final = 0.05
#: How often the watcher interrupts the main thread once a worker died.
_NUDGE_SECONDS: Final = 0.2
#: How long a process stopped after a worker's death has to end before it is killed.
_STOP_SECONDS: Final = 5


def _run_in_waves(stage: Stage, settings: ExecutorSettings) -> None:
    """Run ranks ``[start, start + size)`` locally, doubling ``size``, until ``stage.enough()`` or all are done."""
    assert stage.enough is not None
    start, size = 0, 2 * settings.num_proc
    while start < stage.tasks and not stage.enough():
        # Before each wave: what the last wave, or an interrupted earlier run, recorded
        # (run_stages checks after the last one).
        if stage.check is not None:
            stage.check()
        size = min(size, stage.tasks - start)
        executor = LocalPipelineExecutor(pipeline=[stage.step], tasks=stage.tasks, workers=min(settings.num_proc, size),
                                         logging_dir=str(logging_dir(settings, stage)), local_tasks=size,
                                         local_rank_offset=start, start_method=_start_method())
        _run_checked(stage, executor, settings, range(start, start + size))
        start, size = start + size, 2 * size


def _merge_stats(stage: Stage, settings: ExecutorSettings) -> None:
    """Write the stage's ``stats.json`` as the sum of every finished task's ``stats/NNNNN.json``.

    datatrove's local executor merges the tasks of its own run only: for a
    stage run in waves, the last wave's; for a rerun, the tasks it did not skip.
    """
    folder = logging_dir(settings, stage)
    merged = PipelineStats()
    for path in sorted((folder / "stats").glob("*.json")):
        merged += PipelineStats.from_json(json.loads(path.read_text()))
    with (folder / "stats.json").open("w") as file:
        merged.save_to_disk(file)


def logging_dir(settings: ExecutorSettings, stage: Stage | str) -> Path:
    """Where datatrove keeps a stage's logs, stats and completion markers."""
    return settings.workdir / "logs" / (stage if isinstance(stage, str) else stage.name)


def forget_tasks(settings: ExecutorSettings, stage: str, ranks: list[int]) -> None:
    """Remove the completion markers of tasks ``ranks`` of ``stage``, so that a rerun runs them again."""
    for rank in ranks:
        (logging_dir(settings, stage) / "completions" / f"{rank:05d}").unlink(missing_ok=True)


def _executor(stage: Stage, settings: ExecutorSettings, depends: PipelineExecutor | None = None) -> PipelineExecutor:
    common: dict[str, Any] = {"pipeline": [stage.step], "tasks": stage.tasks, "logging_dir": str(logging_dir(settings, stage))}
    if settings.kind == "local":
        return LocalPipelineExecutor(workers=min(settings.num_proc, stage.tasks), start_method=_start_method(), **common)
    if settings.kind == "ray":
        try:
            import ray
            from datatrove.executor import RayPipelineExecutor
        except ImportError as error:
            raise ExecutorSetupError("--executor ray needs Ray: pip install 'chesspos-positions[ray]'") from error
        if not ray.is_initialized():
            try:
                ray.init(address=settings.ray_address)
            except ConnectionError as error:  # Ray's message names its own flag, --address
                raise ExecutorSetupError(
                    f"--executor ray could not join a Ray cluster at --ray-address {settings.ray_address!r}: start one "
                    f"(ray start --head) or pass the address of a running one (--ray-address HOST:PORT). Ray said: {error}"
                ) from error
        return RayPipelineExecutor(**common)
    return SlurmPipelineExecutor(
        job_name=f"chesspos-{stage.name}", depends=depends, **common, **_slurm_options(settings.slurm)
    )


#: The slurm: keys a submission needs.
_SLURM_NEEDED: Final = ("partition", "time")


def slurm_problem(options: object, complete: bool = True) -> str | None:
    """What is wrong with a ``slurm:`` section, if anything (names the key and the value).

    datatrove writes each value into the ``#SBATCH`` lines as it is: a list,
    a fraction of a GB or a YAML-read time would reach sbatch, which refuses
    the job after submission, or give a job other limits than meant.
    ``complete``: also ask for the keys a submission needs (partition, time).
    """
    if not isinstance(options, dict):
        return f"the slurm: section must be a mapping of {', '.join(SLURM_KEYS)}, got {options!r}"
    if unknown := sorted(set(options) - set(SLURM_KEYS), key=str):
        return f"unknown slurm option(s) {', '.join(map(repr, unknown))}; valid: {', '.join(SLURM_KEYS)}"
    if complete and (missing := sorted(set(_SLURM_NEEDED) - set(options))):
        return f"the slurm: section needs {' and '.join(missing)}"
    for key in ("partition", "time", "qos", "venv_path", "env_command"):
        if key not in options or (options[key] is None and key not in _SLURM_NEEDED):  # null: unset
            continue
        if not (isinstance(value := options[key], str) and value.strip()):
            hint = ' (quote it, as "60" or "4:00:00": YAML reads 4:00:00 unquoted as the number 14400)' if key == "time" else ""
            return f"slurm: {key} must be a non-empty string, got {value!r}{hint}"
    for key in ("cpus_per_task", "mem_per_cpu_gb"):
        value = options.get(key, 1)
        number = int(value) if isinstance(value, str) and value.isdigit() else value
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            return f"slurm: {key} must be a whole number of at least 1, got {value!r}"
    args = options.get("sbatch_args") or {}
    if not isinstance(args, dict):
        return f"slurm: sbatch_args must be a mapping of sbatch options, got {args!r}"
    for name, value in args.items():
        # A None value is a flag: datatrove writes --NAME alone.
        if not (isinstance(name, str) and name and name[0] != "-" and not any(c.isspace() for c in name)) or \
                not (value is None or isinstance(value, (str, int, float))) or isinstance(value, bool):
            return f"slurm: sbatch_args must map option names (without --) to values, got {name!r}: {value!r}"
    return None


def _slurm_options(options: dict[str, Any]) -> dict[str, Any]:
    if problem := slurm_problem(options):
        raise ExecutorSetupError(problem)
    # No qos unless asked for (here or in sbatch_args): datatrove's default, "normal", is not every cluster's.
    return {**options, "qos": options.get("qos")}


def _incomplete(stage: Stage, executor: PipelineExecutor, settings: ExecutorSettings, ranks: range,
                error: Exception | None = None) -> StagesError:
    unfinished = executor.get_incomplete_ranks(ranks)
    folder = logging_dir(settings, stage)
    shown = ", ".join(map(str, unfinished[:10])) + (" ..." if len(unfinished) > 10 else "")
    cause = f" ({type(error).__name__}: {error})" if error is not None else ""
    # A local stage runs in waves: the ranks after this wave's were not started, not failed.
    later = f"; the {stage.tasks - ranks.stop} tasks after them were not started" if ranks.stop < stage.tasks else ""
    return StagesError(
        f"stage {stage.name!r}: {len(unfinished)} of the {len(ranks)} tasks run did not finish (ranks {shown}){later}{cause}. "
        f"Logs: {folder / 'logs'}/task_NNNNN.log. Rerun the same command with --workdir {settings.workdir} "
        "to resume: finished tasks are skipped."
    )


# --- Slurm ------------------------------------------------------------------------


def _jobs_file(settings: ExecutorSettings) -> Path:
    return settings.workdir / "logs" / "slurm_jobs.json"


def _queued(job_ids: list[str]) -> list[str]:
    """Those of ``job_ids`` still pending or running (squeue forgets finished jobs).

    A job counts as queued when its id, or an array task ``ID_N`` of it, is a
    word of squeue's answer, whatever its columns. When squeue refuses the
    job list ("Invalid job id": every listed job has left the queue) the
    whole queue is read instead.

    Raises:
        ExecutorSetupError: if there is no squeue command to ask.
    """
    if not job_ids:
        return []
    for args in (["--noheader", "--format=%A", "--jobs", ",".join(job_ids)], []):
        try:
            result = subprocess.run(["squeue", *args], capture_output=True, text=True, check=False)
        except FileNotFoundError as error:
            raise ExecutorSetupError("waiting for Slurm jobs needs squeue on PATH; or pass --no-wait and rerun later") from error
        if result.returncode == 0:
            return sorted({word.split("_")[0] for word in result.stdout.split()} & set(job_ids))
    return []


def _stop_if_stuck(stages: list[Stage], settings: ExecutorSettings, jobs: dict[str, str], queued: list[str]) -> None:
    """Raise :class:`StagesError` if a stage left the queue unfinished: its dependents would wait forever, so cancel them."""
    if not queued:
        return
    for stage in stages:
        executor = _executor(stage, settings)
        if jobs.get(stage.name) not in queued and executor.get_incomplete_ranks():
            subprocess.run(["scancel", *queued], check=False)
            raise _incomplete(stage, executor, settings, range(stage.tasks))


def _run_slurm(stages: list[Stage], settings: ExecutorSettings) -> None:
    """Submit the stages as dependent job arrays (once), then wait for them and check them."""
    jobs_file = _jobs_file(settings)
    jobs: dict[str, str] = json.loads(jobs_file.read_text()) if jobs_file.exists() else {}
    job_ids = list(jobs.values())
    if not _queued(job_ids):  # nothing of an earlier submission is still queued: submit what is unfinished
        for stage in stages:  # what the tasks of an earlier submission recorded
            if stage.check is not None:
                stage.check()
        executors: list[PipelineExecutor] = []
        for stage in stages:
            executors.append(_executor(stage, settings, depends=executors[-1] if executors else None))
        try:
            executors[-1].run()  # launches its dependencies first, each with afterok on the previous one
        except subprocess.CalledProcessError as error:  # sbatch printed why on stderr
            raise ExecutorSetupError(
                f"sbatch refused a job ({error}): check the slurm: section (partition, qos, account ...)"
            ) from error
        finally:
            # Also when a later submission failed or was interrupted: a rerun must wait for the jobs
            # already queued, not submit them twice.
            jobs = {stage.name: str(e.job_id) for stage, e in zip(stages, executors) if e.job_id not in (None, -1)}
            job_ids = list(jobs.values())
            jobs_file.parent.mkdir(parents=True, exist_ok=True)
            jobs_file.write_text(json.dumps(jobs))
    if not settings.wait and job_ids:  # none: nothing was left to run, so the release can finish now
        _stop_if_stuck(stages, settings, jobs, _queued(job_ids))
        raise StagesPending(
            f"Slurm jobs {', '.join(job_ids) or '(none needed)'} are submitted; rerun the same command to finish "
            f"once they are done (squeue --jobs {','.join(job_ids)}). Logs: {settings.workdir / 'logs'}"
        )
    pause = 1.0
    while queued := _queued(job_ids):
        _stop_if_stuck(stages, settings, jobs, queued)
        time.sleep(pause)
        pause = min(2 * pause, settings.poll_seconds)
    for stage in stages:
        executor = _executor(stage, settings)
        if executor.get_incomplete_ranks():
            raise _incomplete(stage, executor, settings, range(stage.tasks))
