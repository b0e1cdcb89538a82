# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad inputs, unreachable URLs, foreign output folders and interrupts: each through the real CLI.

Every case runs ``python -m builder.publish`` in a subprocess and checks the
exit code, that stderr is one ``error:`` line naming the culprit (never a
traceback), and that nothing was written or pushed.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from builder import hub as hub_client
from builder import interrupts, output
from builder.output import MARKER
from builder.shards import Shard
from conftest import TOKEN, Hub
from pgn_fixtures import bad_input_text, legal_games, random_game, write_pgn
from test_publish import REPO_ROOT, common_args, publish, publish_held_after_one_batch
from web_folder import QuietHandler, serve_folder

SHARED_DUMP = REPO_ROOT.parent / "shared" / "data" / "lichess" / "lichess_dump_2021-10_999.pgn.zst"

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    ".pgn.zst": lambda data: zstandard.ZstdCompressor().compress(data),
    ".pgn.gz": gzip.compress,
    ".pgn.bz2": bz2.compress,
}


@pytest.fixture(scope="module")
def games(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pgn(tmp_path_factory.mktemp("games") / "games.pgn", legal_games(seed=21, n=80, fen_every=3))


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    """The run failed with ``code`` and printed exactly one ``error:`` line, naming each of ``names``."""
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain local HTTP server on 127.0.0.1, serving a folder: (base URL, folder)."""
    folder = tmp_path / "www"
    folder.mkdir()
    with serve_folder(folder) as base:
        yield base, folder


# ---------------------------------------------------------------------------------- 1. truncated input
@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_truncated_compressed_input_fails_and_writes_nothing(hub: Hub, games: Path, tmp_path: Path, suffix: str) -> None:
    packed = COMPRESSORS[suffix](games.read_bytes())
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    out = tmp_path / "out"
    result = publish(hub, "--dry-run", "--output-dir", str(out), *common_args(cut, batches=1), check=False)
    assert "truncated or corrupt" in assert_one_error_line(result, 2, str(cut))
    assert not out.exists()

    # Published: refused before anything reaches the Hub.
    repo = f"user/cut-{suffix.rsplit('.', 1)[-1]}"
    result = publish(hub, "--repo", repo, *common_args(cut, batches=1), check=False)
    assert_one_error_line(result, 2, str(cut))
    with pytest.raises(KeyError):
        hub.server.commits(repo)


@pytest.mark.parametrize("suffix", COMPRESSORS)
@pytest.mark.parametrize("where", ["header", "middle"])
def test_corrupt_compressed_input_fails(hub: Hub, games: Path, tmp_path: Path, suffix: str, where: str) -> None:
    corrupt = tmp_path / f"corrupt{suffix}"
    if where == "header":
        corrupt.write_bytes(b"[Event \"not compressed at all\"]\n")
    else:  # damaged bytes inside the stream (zstd only detects that with a checksum)
        data = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(games.read_bytes()) if suffix == ".pgn.zst"
                         else COMPRESSORS[suffix](games.read_bytes()))
        data[100:400] = bytes(b ^ 0x55 for b in data[100:400])
        corrupt.write_bytes(data)
    result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), *common_args(corrupt, batches=1), check=False)
    assert_one_error_line(result, 2, str(corrupt))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("suffix", [".pgn", ".pgn.zst"])
def test_binary_input_is_not_pgn(hub: Hub, games: Path, tmp_path: Path, suffix: str) -> None:
    """Random bytes, read as Latin-1, hold the odd legal move: they are refused, not published."""
    data = games.read_bytes() + random.Random(0).randbytes(100_000)
    binary = tmp_path / f"binary{suffix}"
    binary.write_bytes(zstandard.ZstdCompressor().compress(data) if suffix == ".pgn.zst" else data)
    result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), *common_args(binary, batches=1), check=False)
    assert_one_error_line(result, 2, str(binary))
    assert "is not PGN text: byte " in result.stderr
    assert not (tmp_path / "out").exists()


def test_truncated_input_through_fsspec_url_fails(hub: Hub, games: Path, web: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = web
    packed = COMPRESSORS[".pgn.zst"](games.read_bytes())
    (folder / "cut.pgn.zst").write_bytes(packed[:-7])
    url = f"{base}/cut.pgn.zst"
    result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), *common_args(url, batches=1), check=False)
    assert "truncated or corrupt" in assert_one_error_line(result, 2, url)


@pytest.mark.skipif(not SHARED_DUMP.exists(), reason="needs ../shared/data/lichess")
@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_real_lichess_dump_fails(hub: Hub, tmp_path: Path, keep: float) -> None:
    data = SHARED_DUMP.read_bytes()
    cut = tmp_path / SHARED_DUMP.name
    cut.write_bytes(data[: int(len(data) * keep)])
    result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), *common_args(cut, batches=1), check=False)
    assert "truncated or corrupt" in assert_one_error_line(result, 2, str(cut))
    assert not (tmp_path / "out").exists()


def test_damaged_input_fixed_in_place_is_read_afresh_by_a_rerun(hub: Hub, games: Path, tmp_path: Path) -> None:
    # The Encode tasks find the damage (the driver no longer reads every input first). A damaged stream may
    # decompress to wrong text before the damage is found: a rerun in the same work folder, once the file is
    # repaired (same size, so the folder still takes the job), must read it afresh, not reuse what was cut from it.
    packed = zstandard.ZstdCompressor(write_checksum=True).compress(games.read_bytes())
    path = tmp_path / "games.pgn.zst"
    damaged = bytearray(packed)
    middle = len(packed) // 2
    damaged[middle:middle + 100] = bytes(b ^ 0x55 for b in damaged[middle:middle + 100])
    path.write_bytes(damaged)
    args = ["--dry-run", "--workdir", str(tmp_path / "work"), "--unit-bytes", "2000", *common_args(path, batches=1)]
    result = publish(hub, *args, "--output-dir", str(tmp_path / "out"), check=False)
    assert "truncated or corrupt" in assert_one_error_line(result, 2, str(path))
    assert not (tmp_path / "out").exists()

    path.write_bytes(packed)
    publish(hub, *args, "--output-dir", str(tmp_path / "out"))
    publish(hub, "--dry-run", *common_args(path, batches=1), "--output-dir", str(tmp_path / "fresh"))
    for split in ("train", "test"):
        shard = Path(split) / "batch_001.parquet"
        assert (tmp_path / "out" / shard).read_bytes() == (tmp_path / "fresh" / shard).read_bytes()
    assert hashlib.sha256(packed).hexdigest() in (tmp_path / "out" / "README.md").read_text()


@pytest.mark.parametrize("num_proc", ["1", "2"])
def test_an_input_the_batches_do_not_need_is_no_error(hub: Hub, games: Path, tmp_path: Path, num_proc: str) -> None:
    # Reading stops once the batches are full, as the sequential path would: a damaged later input is no error,
    # whether or not a task happened to open it (with 2 processes the first wave of tasks reaches it), and the
    # card is the same either way.
    later = tmp_path / "z_later.pgn.zst"
    packed = COMPRESSORS[".pgn.zst"](games.read_bytes())
    later.write_bytes(packed[: len(packed) // 2])
    first = tmp_path / "a_first.pgn"
    shutil.copy(games, first)
    out, work = tmp_path / "out", tmp_path / "work"
    # 3 units in the first file, the first of which fills the batch; the first wave of tasks is 2 per process.
    unit_bytes = str(first.stat().st_size // 3 + 1)
    publish(hub, "--dry-run", "--output-dir", str(out), "--workdir", str(work), "--data-path", str(first), str(later),
            "--unit-bytes", unit_bytes, "--batches", "1", "--batch-size", "100", "--sampling", "all", "--num-proc", num_proc)
    opened = list((work / "failures").glob("*.json"))  # the later input's task found the damage
    assert len(opened) == (num_proc == "2")
    card = (out / "README.md").read_text()
    assert hashlib.sha256(games.read_bytes()).hexdigest() in card
    assert f"| `z_later.pgn.zst` | {later.stat().st_size} | not read |" in card


@pytest.mark.parametrize("num_proc", ["1", "2"])
def test_a_damaged_input_after_the_file_that_fills_the_batches_is_no_error(
    hub: Hub, games: Path, tmp_path: Path, num_proc: str
) -> None:
    # The first file is one unit and fills the batch: the plan must stop there, not ask for the next file's units.
    later = tmp_path / "z_later.pgn.zst"
    packed = COMPRESSORS[".pgn.zst"](games.read_bytes())
    later.write_bytes(packed[: len(packed) // 2])
    first = tmp_path / "a_first.pgn"
    shutil.copy(games, first)
    out = tmp_path / "out"
    publish(hub, "--dry-run", "--output-dir", str(out), "--data-path", str(first), str(later),
            "--batches", "1", "--batch-size", "100", "--sampling", "all", "--num-proc", num_proc)
    assert f"| `z_later.pgn.zst` | {later.stat().st_size} | not read |" in (out / "README.md").read_text()


# ------------------------------------------------------------------------------------- 2. URL inputs
def test_http_input_works(hub: Hub, games: Path, web: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = web
    shutil.copy(games, folder / "games.pgn")
    (folder / "games.pgn.zst").write_bytes(COMPRESSORS[".pgn.zst"](games.read_bytes()))
    for name in ("games.pgn", "games.pgn.zst"):
        out = tmp_path / name
        publish(hub, "--dry-run", "--output-dir", str(out), *common_args(f"{base}/{name}", batches=1))
        local = tmp_path / f"{name}-local"
        publish(hub, "--dry-run", "--output-dir", str(local), *common_args(folder / name, batches=1))
        assert (out / "train" / "batch_001.parquet").read_bytes() == (local / "train" / "batch_001.parquet").read_bytes()
        assert f"{base}/{name}" in (out / "README.md").read_text()


def test_plain_http_input_without_byte_ranges_is_one_line(hub: Hub, games: Path, web: tuple[str, Path],
                                                           tmp_path: Path) -> None:
    base, folder = web  # http.server ignores Range headers
    shutil.copy(games, folder / "games.pgn")
    assert games.stat().st_size > 2000
    url = f"{base}/games.pgn"
    result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), *common_args(url, batches=1),
                     "--unit-bytes", "1000", check=False)
    assert "served without byte ranges" in assert_one_error_line(result, 2, url)
    assert not (tmp_path / "out").exists()


def test_hf_input_works(hub: Hub, games: Path, tmp_path: Path) -> None:
    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo("user/raw-games", repo_type="dataset")
    api.upload_file(path_or_fileobj=COMPRESSORS[".pgn.zst"](games.read_bytes()), path_in_repo="2021/games.pgn.zst",
                    repo_id="user/raw-games", repo_type="dataset")
    out, local = tmp_path / "out", tmp_path / "local"
    publish(hub, "--dry-run", "--output-dir", str(out), *common_args("hf://datasets/user/raw-games", batches=1))
    publish(hub, "--dry-run", "--output-dir", str(local), *common_args(games, batches=1))
    assert (out / "train" / "batch_001.parquet").read_bytes() == (local / "train" / "batch_001.parquet").read_bytes()
    assert "hf://datasets/user/raw-games/2021/games.pgn.zst" in (out / "README.md").read_text()


def test_unreachable_https_input_is_one_line(hub: Hub, tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{closed_port()}/games.pgn.zst"
    result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), *common_args(url, batches=1), check=False)
    assert_one_error_line(result, 1, url, "cannot reach")
    assert not (tmp_path / "out").exists()


def test_http_server_error_is_one_line(hub: Hub, games: Path, tmp_path: Path) -> None:
    # A 5xx reaches us as aiohttp's ClientResponseError, which is not an OSError; aiohttp is loaded
    # only when fsspec opens the URL, and its errors must be caught from then on.
    class Failing(QuietHandler):
        def do_HEAD(self) -> None:
            self.send_error(503)

        do_GET = do_HEAD

    with serve_folder(games.parent, Failing) as base:
        url = f"{base}/{games.name}"
        result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), *common_args(url, batches=1), check=False)
    assert_one_error_line(result, 1, url, "cannot reach")
    assert "ClientResponseError" in result.stderr


def test_the_cli_loads_aiohttp_only_to_open_an_http_url() -> None:
    # Loading it costs every start (and every forkserver worker) about 0.2 s, a seventh of the imports.
    code = "import sys, builder.publish; print('aiohttp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_unreachable_hf_input_is_one_line(hub: Hub, tmp_path: Path) -> None:
    url = "hf://datasets/user/games/games.pgn.zst"
    env = hub.env(None)
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "builder.publish", "--dry-run", "--output-dir", str(tmp_path / "out"),
         *common_args(url, batches=1)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert_one_error_line(result, 1, url, "cannot reach")


# ---------------------------------------------------------------------------------- 3. output folders
def test_foreign_output_folder_is_refused_unless_overwrite(hub: Hub, games: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    readme = project / "README.md"
    readme.write_text("# my project\n")
    result = publish(hub, "--dry-run", "--output-dir", str(project), *common_args(games, batches=1), check=False)
    assert "--overwrite" in assert_one_error_line(result, 2, str(project), "README.md")
    assert readme.read_text() == "# my project\n" and sorted(p.name for p in project.iterdir()) == ["README.md"]

    publish(hub, "--dry-run", "--output-dir", str(project), "--overwrite", *common_args(games, batches=1))
    assert (project / MARKER).is_file() and (project / "train" / "batch_001.parquet").is_file()
    # Now it is marked as this tool's output: a rerun needs no --overwrite.
    publish(hub, "--dry-run", "--output-dir", str(project), *common_args(games, batches=1))


def test_output_folder_that_is_a_file_or_unwritable(hub: Hub, games: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = publish(hub, "--dry-run", "--output-dir", str(a_file), *common_args(games, batches=1), check=False)
    assert_one_error_line(result, 2, str(a_file), "output folder")
    below_a_file = a_file / "out"
    result = publish(hub, "--dry-run", "--output-dir", str(below_a_file), *common_args(games, batches=1), check=False)
    assert_one_error_line(result, 2, str(below_a_file), "output folder")
    assert a_file.read_text() == "x"


# ---------------------------------------------------------------------------------------- 4. interrupts
@pytest.fixture(scope="module")
def many_games(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pgn(tmp_path_factory.mktemp("many") / "many.pgn", legal_games(seed=5, n=300))


@pytest.mark.parametrize("sig, code, word, num_proc", [
    (signal.SIGINT, 130, "interrupted", 1),
    (signal.SIGTERM, 143, "terminated", 1),
    (signal.SIGINT, 130, "interrupted", 2),  # Ctrl-C reaches the worker processes too
])
def test_interrupted_dry_run_leaves_nothing_loadable(
    hub: Hub, many_games: Path, tmp_path: Path, sig: int, code: int, word: str, num_proc: int
) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    process = subprocess.Popen(
        [sys.executable, "-m", "builder.publish", "--dry-run", "--output-dir", str(out), "--data-path", str(many_games),
         "--batches", "400", "--batch-size", "40", "--sampling", "all", "--num-proc", str(num_proc),
         "--workdir", str(work)],
        cwd=REPO_ROOT, env=hub.env(None), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C signals
    )
    # Shards are built in the work folder, then given their names in the
    # output folder: interrupt once the build has written its first rows.
    deadline = time.monotonic() + 120
    while not list(work.rglob("*.arrow")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # No freeze (SIGSTOP) while signalling: a process forked meanwhile could
    # stay stopped. 400 batches are still to be written: it cannot finish first.
    assert list(work.rglob("*.arrow")), "the build wrote nothing before the interrupt"
    if num_proc == 1:
        process.send_signal(sig)
    else:
        os.killpg(process.pid, sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(word), stderr[-3000:]
    assert not (out / "README.md").exists() and not list(out.rglob("batch_*.parquet"))  # only pending names
    loaded = subprocess.run([sys.executable, "-c", f"from datasets import load_dataset; load_dataset({str(out)!r})"],
                            env=hub.env(None), capture_output=True, text=True, timeout=300)
    assert loaded.returncode != 0

    # A rerun into the same folder clears the leftovers and completes it.
    publish(hub, "--dry-run", "--output-dir", str(out), *common_args(many_games, batches=1))
    assert not [p for p in out.rglob(".batch_*")]


def test_a_swallowed_interrupt_still_stops_the_release_before_it_is_complete(tmp_path: Path) -> None:
    # CPython ignores an exception raised in a fork hook: a Ctrl-C landing
    # while an executor forks its workers is lost that way, and the build goes on.
    shard, card = tmp_path / ".batch_001.parquet.partial", tmp_path / "README.md"
    shard.write_bytes(b"x")
    output.pending_path(card).write_text("card")
    pending = Shard("batch_001.parquet", shard, 1, 1, 1, "")
    with interrupts.handled() as received:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here, between bytecodes
        except KeyboardInterrupt:
            pass  # what the fork hook does with it
        assert received
        with pytest.raises(KeyboardInterrupt):
            output.complete(tmp_path, [pending], card)
    assert not card.exists() and not (tmp_path / "batch_001.parquet").exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_process_forked_while_interrupts_are_handled_dies_of_sigterm_whichever_thread_takes_it() -> None:
    # A pool worker blocked on its task queue's lock, while another of its threads takes the pool's
    # SIGTERM: a Python handler would never run, and the stopping pool would wait for it for ever.
    with interrupts.handled():
        pid = os.fork()
        if pid == 0:
            try:
                threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # takes signals
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the main thread does not
                lock = threading.Lock()
                lock.acquire()
                lock.acquire()  # blocks for ever
            finally:
                os._exit(3)
    time.sleep(0.5)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if ended[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked process outlived SIGTERM")
    assert os.WIFSIGNALED(ended[1]) and os.WTERMSIG(ended[1]) == signal.SIGTERM


def test_an_interrupt_swallowed_in_a_weakref_callback_prints_no_traceback(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # CPython cannot raise from a weakref callback: it prints "Exception ignored in" and a traceback,
    # which a Ctrl-C landing while the garbage collector ran one did under the CLI's one error line.
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)  # as in the CLI, not pytest's

    class Thing:
        pass

    def interrupt(_ref: weakref.ref) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs here, inside the callback

    def fail(_ref: weakref.ref) -> None:
        raise ValueError("not an interrupt")

    with interrupts.handled() as received:
        thing, other = Thing(), Thing()
        refs = weakref.ref(thing, interrupt), weakref.ref(other, fail)
        del thing, other
        assert received and refs[0]() is None and refs[1]() is None
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_received()
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err
    assert "ValueError: not an interrupt" in err  # any other swallowed exception is still reported
    assert sys.unraisablehook is sys.__unraisablehook__


def test_interrupted_publish_is_one_line_and_resumes(hub: Hub, games: Path) -> None:
    repo = "user/ctrl-c"
    with publish_held_after_one_batch(hub, repo, games) as process:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("interrupted") and "--resume" in stderr
    publish(hub, "--repo", repo, *common_args(games), "--resume")
    titles = [c.title for c in hub.server.commits(repo)]
    assert sum(t.startswith("Add batch 001") for t in titles) == 1 and titles[0] == "Update dataset card for v1"


# --------------------------------------------------------------------------- 5. failures explain themselves
def test_no_positions_explains_and_suggests_sampling_all(hub: Hub, tmp_path: Path) -> None:
    rng = random.Random(3)
    bullet = [random_game(rng, headers={"WhiteElo": "2500", "BlackElo": "2500", "TimeControl": "15+0"}) for _ in range(6)]
    path = write_pgn(tmp_path / "bullet.pgn", bullet)
    result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), "--data-path", str(path), check=False)
    line = assert_one_error_line(result, 2, str(path), "6 games read", "time_control_filtered", "--sampling all")
    assert "no positions were sampled" in line
    assert not (tmp_path / "out" / "README.md").exists()


def test_skipped_games_are_numbered_from_one(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "bad.pgn"
    path.write_text(bad_input_text())  # game 1 is good; game 2 has an illegal move
    result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), *common_args(path, batches=1))
    assert f"skipping game 2 of {path} (line 8)" in result.stderr, result.stderr


def test_missing_config_and_input_name_their_role(hub: Hub, games: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = publish(hub, "--dry-run", "--config", str(missing), check=False)
    assert_one_error_line(result, 2, "config file", str(missing))
    missing_input = tmp_path / "nope.pgn"
    result = publish(hub, "--dry-run", "--output-dir", str(tmp_path / "out"), "--data-path", str(missing_input), check=False)
    assert_one_error_line(result, 2, "input", str(missing_input))


def test_help_documents_exit_codes(hub: Hub) -> None:
    text = " ".join(publish(hub, "--help").stdout.split())
    for fact in ("0 ok", "1 runtime failure", "2 usage or input error", "130 interrupted", "143 terminated"):
        assert fact in text, fact


# -------------------------------------------------------------------------------- 7. commits and retries
def test_commit_that_landed_is_not_a_conflict(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit applied by the Hub whose answer was lost is recognised on retry: neither sent twice nor a conflict."""
    monkeypatch.setattr(hub_client.time, "sleep", lambda _: None)
    api = HfApi(endpoint=hub.url, token=TOKEN)
    repo = "user/lost-answer"
    api.create_repo(repo, repo_type="dataset")
    parent = api.repo_info(repo, repo_type="dataset").sha
    shard = tmp_path / "a.parquet"
    shard.write_bytes(b"PAR1 shard bytes")
    lost_before = sum(r.status == 503 and f"/{repo}/commit/" in r.path for r in hub.server.request_log)
    hub.server.lose_next_answers(1, path_contains=f"/{repo}/commit/")
    head = hub_client.commit(api, repo, [("train/a.parquet", shard)], "Add a", parent)
    assert sum(r.status == 503 and f"/{repo}/commit/" in r.path for r in hub.server.request_log) == lost_before + 1
    assert [c.title for c in hub.server.commits(repo)][0] == "Add a" and hub.server.commits(repo)[0].id == head
    assert len(hub.server.commits(repo)) == 2  # the initial commit and ours, once

    # A failed attempt after which main holds other content is another writer.
    api.upload_file(path_or_fileobj=b"other writer", path_in_repo="train/b.parquet", repo_id=repo, repo_type="dataset")
    other = tmp_path / "c.parquet"
    other.write_bytes(b"mine")
    hub.server.fail_next(1, status=503, path_contains=f"/{repo}/commit/")
    with pytest.raises(hub_client.RepoChangedError, match="changed while publishing"):
        hub_client.commit(api, repo, [("train/c.parquet", other)], "Add c", head)


RENAMES_THEN_SIGTERM = """
import os, pathlib, runpy, signal, sys
replace, renamed = pathlib.Path.replace, []
def interrupted_replace(self, target):
    result = replace(self, target)
    if self.name.endswith(".parquet.partial"):
        renamed.append(self)
        if len(renamed) == 2:  # as if SIGTERM arrived between two shards getting their final names
            os.kill(os.getpid(), signal.SIGTERM)
    return result
pathlib.Path.replace = interrupted_replace
sys.argv = ["builder.publish", *sys.argv[1:]]
runpy.run_module("builder.publish", run_name="__main__")
"""


def test_an_interrupt_while_the_release_gets_its_final_names_waits_for_the_last(games: Path, tmp_path: Path) -> None:
    # Every final name or none: a release renamed in part would load as a smaller dataset.
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", RENAMES_THEN_SIGTERM, "--dry-run", "--output-dir", str(out),
                             *common_args(games)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 143, result.stderr[-2000:]
    assert not list(out.rglob("*.partial"))
    assert len(list(out.rglob("*.parquet"))) == 6 and (out / "README.md").is_file()


def test_a_unit_size_that_makes_too_many_tasks_is_refused(hub: Hub, games: Path, tmp_path: Path) -> None:
    # --unit-bytes 1 on a few hundred kB would be one datatrove task per byte: a build that never starts.
    big = tmp_path / "big.pgn"
    big.write_text(games.read_text() * (200_000 // games.stat().st_size + 1))
    out = tmp_path / "out"
    result = publish(hub, "--dry-run", "--output-dir", str(out), "--data-path", str(big), "--unit-bytes", "1", check=False)
    assert "pass a larger --unit-bytes" in assert_one_error_line(result, 2, "--unit-bytes 1")
    assert not out.exists()


def test_a_seed_the_generators_cannot_take_is_refused_before_any_work(games: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "builder.publish", "--dry-run", "--data-path", str(games), "--output-dir", str(out),
         "--seed", str(2**64)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert_one_error_line(result, 2, "--seed", "2**64")
    assert not out.exists()


# ---------------------------------------------------------------------------------- the card's license
@pytest.mark.parametrize("license", ["", "  "])
def test_an_empty_license_is_a_usage_error(games: Path, tmp_path: Path, license: str) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "builder.publish", "--dry-run", "--data-path", str(games), "--output-dir", str(out),
         "--license", license], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert_one_error_line(result, 2, "--license must not be empty")
    assert not out.exists()


def test_a_license_the_hub_refuses_stops_the_run_before_any_work(hub: Hub, games: Path) -> None:
    repo = "user/refused-license"
    result = publish(hub, "--repo", repo, *common_args(games), "--license", "gpl-3.0-or-later", check=False)
    assert_one_error_line(result, 2, "--license 'gpl-3.0-or-later'", '"license" must be one of [apache-2.0, mit, ')
    assert "games read" not in result.stdout
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=TOKEN).repo_info(repo, repo_type="dataset")


@pytest.mark.parametrize("status", [404, 405])
def test_a_server_that_cannot_take_a_card_is_refused_before_any_work(hub: Hub, games: Path, status: int,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # HfApi.create_commit posts a README to /api/validate-yaml first: without it, no card could be committed.
    monkeypatch.setattr(hub.server, "validate_yaml_status", status)
    repo = "user/no-validation"
    result = publish(hub, "--repo", repo, *common_args(games), check=False)
    assert_one_error_line(result, 2, f"does not serve /api/validate-yaml (HTTP {status})", "HF_ENDPOINT")
    assert "games read" not in result.stdout
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=TOKEN).repo_info(repo, repo_type="dataset")


def test_a_card_the_hub_refuses_at_its_commit_is_one_line_and_resume_finishes(
    hub: Hub, games: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, api = "user/card-refused-at-commit", HfApi(endpoint=hub.url, token=TOKEN)
    monkeypatch.setattr(hub.server, "validate_yaml_status", 200)  # validate-yaml passes what the commit refuses
    result = publish(hub, "--repo", repo, *common_args(games), "--license", "gpl-3.0-or-later", check=False)
    assert_one_error_line(result, 2, "refused the dataset card", '"license" must be one of', "batches are on the repo",
                          "--resume", "--license")
    files = api.list_repo_files(repo, repo_type="dataset")
    assert "README.md" not in files and "train/batch_003.parquet" in files
    assert not api.list_repo_refs(repo, repo_type="dataset").tags
    publish(hub, "--repo", repo, *common_args(games), "--resume")
    assert [tag.name for tag in api.list_repo_refs(repo, repo_type="dataset").tags] == ["v1"]
    assert "license: cc0-1.0" in Path(api.hf_hub_download(repo, "README.md", repo_type="dataset")).read_text()
