# SPDX-License-Identifier: GPL-3.0-or-later
"""builder.publish end to end: real processes, real HfApi and load_dataset, a local Hub."""

from __future__ import annotations

import hashlib

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import DatasetInfo, load_dataset
from datasets.info import DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from huggingface_hub import DatasetCard, HfApi

from builder import hub as hub_client
from builder.card import Release, card_data
from builder.publish import main as publish_main, public_url, source_names
from builder.push import check_release
from builder.shards import Shard, file_sha256, same_rows
from chesspos_positions import ChessposPositions
from chesspos_positions.builder import ChessposPositionsConfig
from chesspos_positions.configs import CONFIGS
from chesspos_positions.games import Summary
from conftest import TOKEN, Hub
from pgn_fixtures import legal_games, write_pgn

BATCHES, BATCH_SIZE = 3, 300
REPO_ROOT = Path(__file__).resolve().parents[1]

LOAD_SCRIPT = """
import json, sys
import numpy as np
from datasets import load_dataset
path, revision, streaming, out = sys.argv[1:]
ds = load_dataset(path, revision=revision or None, streaming=streaming == "1")
arrays, features = {}, {}
for split in ("train", "test"):
    rows = list(ds[split])
    arrays[split] = np.array([r["window"] for r in rows], dtype=np.int64)
    arrays[split + "_scalars"] = np.array([r["scalars"] for r in rows], dtype=np.int64)
    features[split] = repr(ds[split].features)
np.savez(out, **arrays)
print(json.dumps(features))
"""


@pytest.fixture(scope="module")
def games(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pgn(tmp_path_factory.mktemp("games") / "games.pgn", legal_games(seed=21, n=80, fen_every=3))


def publish(hub: Hub, *args: str, token: str | None = TOKEN, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m builder.publish`` in a fresh process against the local Hub."""
    result = subprocess.run(
        [sys.executable, "-m", "builder.publish", *args],
        cwd=REPO_ROOT, env=hub.env(token), capture_output=True, text=True, timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def load(hub: Hub, path: str, tmp_path: Path, revision: str = "", streaming: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """Load with the real load_dataset in a fresh process with a fresh cache."""
    out = tmp_path / f"loaded-{time.monotonic_ns()}.npz"
    env = hub.env(None)
    env["HF_HOME"] = env["HF_DATASETS_CACHE"] = str(tmp_path / f"cache-{time.monotonic_ns()}")
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, path, revision, "1" if streaming else "0", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out) as arrays:
        return {k: arrays[k] for k in arrays.files}, json.loads(result.stdout.strip().splitlines()[-1])


def expected_rows(games: Path, batches: int) -> dict[str, np.ndarray]:
    """What the builder generates for the same options: the single source of truth."""
    builder = ChessposPositions(data_path=str(games), batches=batches, batch_size=BATCH_SIZE, sampling="all")
    produced = list(builder.generate_batches())
    return {split: np.concatenate([b.tokens(split) for b in produced]) for split in ("train", "test")}


def assert_matches_builder(loaded: dict[str, np.ndarray], features: dict, expected: dict[str, np.ndarray]) -> None:
    for split in ("train", "test"):
        windows = loaded[split]
        assert windows.shape == (len(expected[split]), 10, 69)
        assert (windows == expected[split][:, None, :]).all()
        assert (loaded[split + "_scalars"] == 0).all() and loaded[split + "_scalars"].shape == (len(windows), 3)
        assert features[split] == repr(ChessposPositions().info.features)


def common_args(games: Path, batches: int = BATCHES) -> list[str]:
    return ["--data-path", str(games), "--batches", str(batches), "--batch-size", str(BATCH_SIZE), "--sampling", "all"]


def test_publish_then_load_streaming_and_not(hub: Hub, games: Path, tmp_path: Path) -> None:
    repo = "user/e2e"
    result = publish(hub, "--repo", repo, *common_args(games))
    assert "pushed" in result.stdout and "games read 80" in result.stdout

    titles = [c.title for c in hub.server.commits(repo)]
    assert titles[:4] == ["Update dataset card for v1", "Add batch 003 (285 train, 15 test rows)",
                          "Add batch 002 (285 train, 15 test rows)", "Add batch 001 (285 train, 15 test rows)"]
    api = HfApi(endpoint=hub.url, token=TOKEN)
    assert [t.name for t in api.list_repo_refs(repo, repo_type="dataset").tags] == ["v1"]
    assert sorted(api.list_repo_files(repo, repo_type="dataset")) == [
        ".gitattributes", "README.md",
        *[f"{s}/batch_00{i}.parquet" for s in ("test", "train") for i in (1, 2, 3)],
    ]

    expected = expected_rows(games, BATCHES)
    assert_matches_builder(*load(hub, repo, tmp_path), expected)
    assert_matches_builder(*load(hub, repo, tmp_path, streaming=False), expected)


def test_dry_run_needs_no_token_and_loads_the_same(hub: Hub, games: Path, tmp_path: Path) -> None:
    out = tmp_path / "dry"
    result = publish(hub, "--dry-run", "--output-dir", str(out), *common_args(games), token=None)
    assert "bytes/sample" in result.stdout
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        ".chesspos-positions", "README.md", *[f"{s}/batch_00{i}.parquet" for s in ("test", "train") for i in (1, 2, 3)],
    ]
    assert_matches_builder(*load(hub, str(out), tmp_path), expected_rows(games, BATCHES))


def test_append_a_version_keeps_earlier_tags(hub: Hub, games: Path, tmp_path: Path) -> None:
    repo = "user/versions"
    publish(hub, "--repo", repo, *common_args(games))
    api = HfApi(endpoint=hub.url, token=TOKEN)
    v1_files = {f.path: f.lfs.sha256 for f in api.list_repo_tree(repo, repo_type="dataset", recursive=True, revision="v1")
                if getattr(f, "lfs", None)}
    publish(hub, "--repo", repo, *common_args(games, batches=4))
    assert [c.title for c in hub.server.commits(repo)][:2] == ["Update dataset card for v2", "Add batch 004 (285 train, 15 test rows)"]
    head_files = {f.path: f.lfs.sha256 for f in api.list_repo_tree(repo, repo_type="dataset", recursive=True)
                  if getattr(f, "lfs", None)}
    assert {p: head_files[p] for p in v1_files} == v1_files  # earlier shards untouched

    v1, _ = load(hub, repo, tmp_path, revision="v1")
    v2, _ = load(hub, repo, tmp_path, revision="v2")
    four = expected_rows(games, 4)
    assert len(v1["train"]) == 3 * 285 and len(v2["train"]) == 4 * 285
    assert (v1["train"][:, 0] == four["train"][: 3 * 285]).all()
    assert (v2["test"][:, 0] == four["test"]).all()
    card = DatasetCard.load(repo, repo_type="dataset", token=TOKEN)
    assert "| `v1` | 3 |" in card.text and "| `v2` | 4 |" in card.text


@contextmanager
def publish_held_after_one_batch(hub: Hub, repo: str, games: Path) -> Iterator[subprocess.Popen[str]]:
    """A publish process of ``repo`` whose first batch committed and whose next commit is held by the server.

    The process is waiting for that commit when this yields; at exit the held commit fails with 503.
    """
    def dropped() -> int:  # the held commits of repo answered so far
        return sum(r.status == 503 and f"/{repo}/commit/" in r.path for r in hub.server.request_log)

    dropped_before = dropped()
    release = hub.server.hold_commits(after=1)
    process = subprocess.Popen(
        [sys.executable, "-m", "builder.publish", "--repo", repo, *common_args(games)],
        cwd=REPO_ROOT, env=hub.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    held_before = hub.server.held_requests
    try:
        deadline = time.monotonic() + 120
        while hub.server.held_requests == held_before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        yield process
    finally:
        release.set()
        hub.server.hold_commits(after=10**9)
        # The server answers (and logs) the held commits in their own threads: wait, so that the next
        # test's view of the request log starts after them.
        deadline = time.monotonic() + 30
        while dropped() - dropped_before < hub.server.held_requests - held_before and time.monotonic() < deadline:
            time.sleep(0.01)


def test_killed_publish_resumes_to_the_same_repo(hub: Hub, games: Path, tmp_path: Path) -> None:
    reference, killed = "user/uninterrupted", "user/killed"
    publish(hub, "--repo", reference, *common_args(games))

    # The process is killed while it waits, after exactly one batch landed.
    with publish_held_after_one_batch(hub, killed, games) as process:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert [c.title for c in hub.server.commits(killed)][0].startswith("Add batch 001")

    refused = publish(hub, "--repo", killed, *common_args(games), check=False)
    assert refused.returncode != 0 and "--resume" in refused.stderr

    publish(hub, "--repo", killed, *common_args(games), "--resume")
    titles = [c.title for c in hub.server.commits(killed)]
    assert sum(t.startswith("Add batch 001") for t in titles) == 1  # not uploaded twice
    api = HfApi(endpoint=hub.url, token=TOKEN)

    def snapshot(repo: str) -> dict[str, str]:
        return {f.path: (f.lfs.sha256 if f.lfs else f.blob_id)
                for f in api.list_repo_tree(repo, repo_type="dataset", recursive=True) if hasattr(f, "blob_id")}

    ref_files, killed_files = snapshot(reference), snapshot(killed)
    readme_ref = api.hf_hub_download(reference, "README.md", repo_type="dataset")
    readme_killed = api.hf_hub_download(killed, "README.md", repo_type="dataset")
    assert Path(readme_ref).read_text().replace(reference, "REPO") == Path(readme_killed).read_text().replace(killed, "REPO")
    ref_files.pop("README.md"), killed_files.pop("README.md")
    assert ref_files == killed_files
    assert [t.name for t in api.list_repo_refs(killed, repo_type="dataset").tags] == ["v1"]


def test_main_loads_what_its_card_counts_while_an_append_is_pushed(hub: Hub, games: Path, tmp_path: Path) -> None:
    """The card lists its shards: a batch committed before its release's card is not loaded with the old card."""
    repo = "user/appending"
    publish(hub, "--repo", repo, *common_args(games, batches=1))
    with publish_held_after_one_batch(hub, repo, games) as process:
        assert [c.title for c in hub.server.commits(repo)][0].startswith("Add batch 002")
        loaded, _ = load(hub, repo, tmp_path, streaming=False)
        assert len(loaded["train"]) == 285 and len(loaded["test"]) == 15
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


@pytest.mark.parametrize("token, message", [(None, "not logged in"), ("hf_wrong", "rejected")])
def test_bad_or_missing_token_fails_first_and_commits_nothing(
    hub: Hub, games: Path, tmp_path: Path, token: str | None, message: str
) -> None:
    repo, out = f"user/no-token-{bool(token)}", tmp_path / "out"
    seen = len(hub.server.request_log)
    result = publish(hub, "--repo", repo, "--output-dir", str(out), *common_args(games), token=token, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and "hf auth login" in result.stderr
    assert not out.exists()  # nothing was generated: not even the output folder
    with pytest.raises(KeyError):
        hub.server.commits(repo)  # no repo was created
    # The token check was the only conversation with the Hub; nothing was written to it.
    assert all(r.method == "GET" for r in hub.server.request_log[seen:]), hub.server.request_log[seen:]


def test_transient_failures_are_retried(hub: Hub, games: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = "user/flaky"
    hub.server.fail_next(2, status=503, path_contains=f"/{repo}/commit/")
    monkeypatch.setattr(hub_client.time, "sleep", lambda _: None)
    assert publish_main(["--repo", repo, *common_args(games, batches=1), "--token", TOKEN]) == 0
    commits = [(r.status, r.path) for r in hub.server.request_log if r.method == "POST" and f"/{repo}/commit/" in r.path]
    # Both injected 503s happened, each was followed by a retry, and each commit then landed once.
    assert [status for status, _ in commits] == [503, 503, 200, 200], commits
    assert [c.title for c in hub.server.commits(repo)][:2] == ["Update dataset card for v1", "Add batch 001 (285 train, 15 test rows)"]
    assert len(hub.server.commits(repo)) == 3  # the repo's initial commit, the batch, the card


def test_a_rate_limited_commit_waits_as_long_as_the_hub_asks(hub: Hub, games: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = "user/limited"
    # The Hub's commit rate limit: RateLimit says when the window resets; Retry-After alone says the same.
    hub.server.fail_next(1, status=429, path_contains=f"/{repo}/commit/", headers={"RateLimit": '"commits";r=0;t=40'})
    waits: list[float] = []
    monkeypatch.setattr(hub_client.time, "sleep", waits.append)
    assert publish_main(["--repo", repo, *common_args(games, batches=1), "--token", TOKEN]) == 0
    hub.server.fail_next(1, status=429, path_contains=f"/{repo}/tag/", headers={"Retry-After": "17"})
    assert publish_main(["--repo", repo, *common_args(games, batches=1), "--token", TOKEN, "--license", "mit"]) == 0
    assert waits == [41.0, 18.0]
    assert [t.name for t in HfApi(endpoint=hub.url, token=TOKEN).list_repo_refs(repo, repo_type="dataset").tags] == ["v1", "v2"]
    # A limit that resets in hours stops the run at once, with the Hub's answer; --resume goes on later.
    hub.server.fail_next(1, status=429, path_contains=f"/{repo}/tag/", headers={"Retry-After": "7200"})
    assert publish_main(["--repo", repo, *common_args(games, batches=1), "--token", TOKEN, "--license", "apache-2.0"]) == 1
    assert waits == [41.0, 18.0]


def test_concurrent_writer_is_detected(hub: Hub, tmp_path: Path) -> None:
    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo("user/race", repo_type="dataset")
    stale = api.repo_info("user/race", repo_type="dataset").sha
    (tmp_path / "a.txt").write_text("a")
    api.upload_file(path_or_fileobj=b"other writer", path_in_repo="b.txt", repo_id="user/race", repo_type="dataset")
    with pytest.raises(hub_client.PublishError, match="changed while publishing"):
        hub_client.commit(api, "user/race", [("a.txt", tmp_path / "a.txt")], "mine", stale)


def test_card_is_deterministic_and_true(games: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert publish_main(["--dry-run", "--output-dir", str(tmp_path / name), *common_args(games)]) == 0
    card_a = (tmp_path / "a" / "README.md").read_text()
    assert card_a == (tmp_path / "b" / "README.md").read_text()

    card = DatasetCard.load(tmp_path / "a" / "README.md")
    data = card.data.to_dict()
    assert data["configs"] == [{"config_name": "default", "data_files": [
        {"split": split, "path": [f"{split}/batch_00{i}.parquet" for i in (1, 2, 3)]} for split in ("train", "test")]}]
    splits = {s["name"]: s for s in data["dataset_info"]["splits"]}
    import pyarrow.parquet as pq

    for split in ("train", "test"):
        files = sorted((tmp_path / "a" / split).glob("*.parquet"))
        assert splits[split]["num_examples"] == sum(pq.read_metadata(f).num_rows for f in files)
        assert splits[split]["num_bytes"] == sum(pq.read_table(f).nbytes for f in files)
    assert data["dataset_info"]["download_size"] == sum(f.stat().st_size for f in (tmp_path / "a").rglob("*.parquet"))
    assert data["license"] == "cc0-1.0" and "chess" in data["tags"] and data["size_categories"] == ["n<1K"]
    assert data["pretty_name"] and data["task_categories"]
    for fact in ("en passant", "move counters", "| 16 | mask", "games.pgn", "sha256", "by a stable hash", "| `seed` | `0` |",
                 "| `v1` | 3 |", "decode_window", "streaming=True"):
        assert fact in card.text, fact
    import hashlib

    assert hashlib.sha256(games.read_bytes()).hexdigest() in card.text
    assert "| read | 80 |" in card.text


def test_the_card_names_sources_without_the_machines_folders_or_credentials(games: Path, tmp_path: Path) -> None:
    paths = [tmp_path / "alice" / "data" / "games.pgn", tmp_path / "bob" / "x" / "games.pgn", tmp_path / "bob" / "other.pgn"]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(games, path)
    out = tmp_path / "out"
    assert publish_main(["--dry-run", "--output-dir", str(out), "--data-path", *map(str, paths), "--batches", "1",
                         "--batch-size", "100", "--sampling", "all"]) == 0
    text = (out / "README.md").read_text()
    sources = text[text.index("## Source files"):text.index("## Games")]
    assert [line.split(" | ")[0].strip("| `") for line in sources.splitlines() if line.startswith("| `")] == [
        "data/games.pgn", "other.pgn", "x/games.pgn"]  # the order they are read in
    assert str(tmp_path) not in text and "alice" not in text and "bob" not in text
    assert public_url("https://alice:s3cret@host:8000/d/g.pgn.zst") == "https://host:8000/d/g.pgn.zst"
    assert public_url("sftp://user:p@ss@host/a.pgn") == "sftp://host/a.pgn"
    assert public_url("simplecache::https://u:p@host/g.pgn") == "simplecache::https://host/g.pgn"
    assert public_url("hf://datasets/user/games@v1/g.pgn") == "hf://datasets/user/games@v1/g.pgn"
    assert source_names(["/x/games.pgn", "/y/x/games.pgn", "https://host/dl?f=a.pgn", "https://host/dl?f=b.pgn"]) == [
        "x/games.pgn", "y/x/games.pgn", "https://host/dl?f=a.pgn", "https://host/dl?f=b.pgn"]


def test_options_precedence_and_errors(tmp_path: Path, games: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"batches": 2, "batch-size": 100, "sampling": "all", "data_path": str(games)}))
    out = tmp_path / "out"
    assert publish_main(["--dry-run", "--config", str(config), "--batches", "1", "--output-dir", str(out)]) == 0
    assert sorted(p.name for p in (out / "train").iterdir()) == ["batch_001.parquet"]  # flag beat YAML

    for content, message in [
        ({"batchez": 2}, "unknown key 'batchez'"),
        ({"batches": "two"}, "batches must be int"),
        ({"train_ratio": 1.5}, "train_ratio"),
        ({"min_base_time": -1}, "min_base_time must be >= 0"),
        ({"token": "x"}, "HF_TOKEN"),
        ({"data_path": []}, f"config file {config}: data_path is an empty list"),
    ]:
        config.write_text(yaml.safe_dump(content))
        assert publish_main(["--dry-run", "--config", str(config), "--output-dir", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert publish_main(["--repo", "no-namespace", "--data-path", str(games)]) == 2
    assert "NAMESPACE/NAME" in capsys.readouterr().err
    # What the Hub would refuse only when tagging, after every batch is pushed.
    for tag in ("a..b", "v1~", "x:y", "-v1", "v1.lock", "two words"):
        assert publish_main(["--dry-run", f"--tag={tag}", "--data-path", str(games), "--output-dir", str(out)]) == 2
        assert f"--tag {tag!r} is not a valid git tag name" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert publish_main(["--dry-run", "--workdir", str(tmp_path / "a-file"), "--data-path", str(games), "--output-dir", str(out)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert publish_main(["--dry-run", "--no-wait", "--data-path", str(games), "--output-dir", str(out)]) == 2
    assert "--no-wait applies to --executor slurm only" in capsys.readouterr().err
    # Flags the run would ignore: refused, naming both.
    for flags, named in [
        (["--dry-run", "--resume"], "--resume does not go with --dry-run"),
        (["--dry-run", "--private"], "--private does not go with --dry-run"),
        (["--dry-run", "--token", "hf_x"], "--token does not go with --dry-run"),
        (["--dry-run", "--ray-address", "local"], "--ray-address applies to --executor ray only, not local"),
        (["--dry-run", "--ray-address", "local", "--executor", "slurm", "--workdir", str(tmp_path / "w")],
         "--ray-address applies to --executor ray only, not slurm"),
    ]:
        assert publish_main([*flags, "--data-path", str(games), "--output-dir", str(out)]) == 2
        assert named in capsys.readouterr().err
    config.write_text(yaml.safe_dump({"dry_run": True, "resume": True}))
    assert publish_main(["--config", str(config), "--data-path", str(games), "--output-dir", str(out)]) == 2
    assert f"config file {config}: resume does not go with config file {config}: dry_run" in capsys.readouterr().err
    # An output folder that cannot be made is refused before the build, not after it.
    assert publish_main(["--dry-run", "--data-path", str(games), "--output-dir", str(tmp_path / "a-file" / "out")]) == 2
    captured = capsys.readouterr()
    assert "cannot be written (Not a directory" in captured.err and "games read" not in captured.out
    assert publish_main(["--dry-run", "--data-path", str(tmp_path / "missing"), "--output-dir", str(out)]) == 2
    assert "missing" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        publish_main(["--batchez", "3"])


def test_option_errors_name_the_key_and_the_file_it_came_from(tmp_path: Path, games: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    config, out = tmp_path / "c.yaml", tmp_path / "out"
    for content, flags, named in [
        ({"elo_tiers": [["a", 1]]}, [], f"config file {config}: elo_tiers must be a list of"),
        ({"elo_tiers": [[2000, 1.0]]}, [], f"config file {config}: elo_tiers: elo_tiers must include a tier with min rating 0"),
        ({"seed": -1}, [], f"config file {config}: seed: seed must be in [0, 2**64)"),
        ({"ply_keep": 2.0}, [], f"config file {config}: ply_keep: ply_keep must be in [0, 1]"),
        ({"num_proc": 0}, [], f"config file {config}: num_proc must be >= 1"),
        ({"seed": 3}, ["--seed", "-1"], "error: --seed: seed must be in [0, 2**64)"),
    ]:
        config.write_text(yaml.safe_dump({"data_path": str(games), **content}))
        assert publish_main(["--dry-run", "--config", str(config), "--output-dir", str(out), *flags]) == 2
        assert named in capsys.readouterr().err
    assert not out.exists()


def test_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        publish_main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--repo", "--data-path", "--batches", "--batch-size", "--train-ratio", "--seed", "--sampling", "--num-proc",
                 "--dry-run", "--output-dir", "--config", "--tag", "--resume", "--private", "--token", "--license"):
        assert flag in text
    text = " ".join(text.split())  # argparse wraps lines anywhere
    assert "'all' keeps every position (default 'default')" in text
    # The keys only a config file sets, each with its default (the builder config's for the sampling parameters).
    for key in ("pretty_name (\"Chess positions\")", "slurm (null)", f"elo_tiers ({json.dumps(ChessposPositionsConfig.elo_tiers)})",
                f"min_base_time ({ChessposPositionsConfig.min_base_time})", f"ply_keep ({ChessposPositionsConfig.ply_keep})",
                "ply_full (", "min_ply (null)", "max_ply (null)"):
        assert key in text, key


def test_embedded_default_dry_run(tmp_path: Path) -> None:
    """The README's main job: no data, no token, no network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run([sys.executable, "-m", "builder.publish", "--dry-run"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "train" / "batch_001.parquet").exists()
    assert "embedded self-play sample" in (tmp_path / "out" / "README.md").read_text()


def test_private_repo_is_created_private_and_reused(hub: Hub, games: Path) -> None:
    repo = "user/private-release"
    publish(hub, "--repo", repo, "--private", *common_args(games, batches=1))
    assert HfApi(endpoint=hub.url, token=TOKEN).repo_info(repo, repo_type="dataset").private
    from huggingface_hub.errors import RepositoryNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).repo_info(repo, repo_type="dataset")
    # Publishing the same release again reuses the repo and changes nothing.
    commits = len(hub.server.commits(repo))
    again = publish(hub, "--repo", repo, "--private", *common_args(games, batches=1))
    assert "up to date" in again.stdout
    assert len(hub.server.commits(repo)) == commits
    assert [t.name for t in HfApi(endpoint=hub.url, token=TOKEN).list_repo_refs(repo, repo_type="dataset").tags] == ["v1"]


def test_a_release_an_earlier_writer_made_takes_another_batch(hub: Hub, games: Path, tmp_path: Path) -> None:
    """Shards of the same rows in other bytes (pyarrow's writer, other compression and row groups) are the batch."""
    repo, out = "user/earlier-writer", tmp_path / "v1"
    assert publish_main(["--dry-run", "--output-dir", str(out), *common_args(games, batches=1)]) == 0
    train, written = out / "train" / "batch_001.parquet", tmp_path / "written.parquet"
    shutil.copy(train, written)
    for shard in out.rglob("*.parquet"):
        pq.write_table(pq.read_table(shard), shard, compression="snappy", row_group_size=100)
    table = pq.read_table(train)
    pq.write_table(table.take(np.arange(table.num_rows)[::-1]), tmp_path / "reordered.parquet")
    assert file_sha256(train) != file_sha256(written) and same_rows(train, written)
    assert not same_rows(written, tmp_path / "reordered.parquet")
    assert not same_rows(written, out / "test" / "batch_001.parquet")

    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo(repo, repo_type="dataset")
    api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=out, allow_patterns=["*.parquet", "README.md"])
    api.create_tag(repo, tag="v1", repo_type="dataset")
    earlier = {f.path: f.lfs.sha256 for f in api.list_repo_tree(repo, repo_type="dataset", recursive=True) if f.path.endswith(".parquet")}

    refused = publish(hub, "--repo", repo, *common_args(games, batches=2), "--seed", "8", check=False)
    assert refused.returncode != 0 and "train/batch_001.parquet, test/batch_001.parquet with other content" in refused.stderr
    publish(hub, "--repo", repo, *common_args(games, batches=2))
    assert [c.title for c in hub.server.commits(repo)][:2] == ["Update dataset card for v2", "Add batch 002 (285 train, 15 test rows)"]
    now = {f.path: f.lfs.sha256 for f in api.list_repo_tree(repo, repo_type="dataset", recursive=True) if f.path.endswith(".parquet")}
    assert {path: now[path] for path in earlier} == earlier
    # The card's sizes are the repo's files', the earlier writer's batch included.
    sizes = {f.path: f.size for f in api.list_repo_tree(repo, repo_type="dataset", recursive=True) if f.path.endswith(".parquet")}
    card = DatasetCard.load(repo, repo_type="dataset", token=TOKEN)
    assert card.data.to_dict()["dataset_info"]["download_size"] == sum(sizes.values())
    loaded, _ = load(hub, repo, tmp_path, revision="v2")
    expected = expected_rows(games, 2)
    assert (loaded["train"][:, 0] == expected["train"]).all() and (loaded["test"][:, 0] == expected["test"]).all()
    # A file at a shard's path that is no Parquet at all is other content too: one error line, no traceback.
    api.upload_file(path_or_fileobj=b"not parquet", path_in_repo="train/batch_002.parquet", repo_id=repo, repo_type="dataset")
    refused = publish(hub, "--repo", repo, *common_args(games, batches=2), check=False)
    assert refused.returncode == 2 and "train/batch_002.parquet, test/batch_002.parquet with other content" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_partial_release_says_so_and_reused_output_dir_holds_only_it(games: Path, tmp_path: Path) -> None:
    out = tmp_path / "reused"
    assert publish_main(["--dry-run", "--output-dir", str(out), *common_args(games)]) == 0
    assert publish_main(["--dry-run", "--output-dir", str(out), "--data-path", str(games), "--batches", "2",
                         "--batch-size", "100000", "--sampling", "all"]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == ["test/batch_001.parquet", "train/batch_001.parquet"]
    card = (out / "README.md").read_text()
    assert "the input ran out: 1 of 2 batches were made, and this one is partial: batch 1 (" in card
    # The test split runs out a batch before the train split: both batches are short, and the card says so.
    assert publish_main(["--dry-run", "--output-dir", str(tmp_path / "two"), "--data-path", str(games), "--batches", "3",
                         "--batch-size", "1000", "--sampling", "all"]) == 0
    card = (tmp_path / "two" / "README.md").read_text()
    assert "3 of 3 batches were made, and these are partial: batch 2 (950 train, 48 test rows); batch 3 (401 train, " \
        "0 test rows)" in " ".join(card.split())


def test_batches_the_input_cannot_fill_start_no_tasks(games: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    assert publish_main(["--dry-run", "--output-dir", str(tmp_path / "out"), "--workdir", str(work), "--data-path", str(games),
                         "--batches", "500", "--batch-size", "100000", "--sampling", "all"]) == 0
    assert "1 of 500 batches were made" in capsys.readouterr().out
    assert [p.name for p in (work / "logs" / "write" / "logs").iterdir()] == ["task_00000.log"]
    assert publish_main(["--dry-run", "--output-dir", str(tmp_path / "huge"), "--batches", "99999999999"]) == 2
    assert "batches must be in [1, 10,000]" in capsys.readouterr().err
    assert not (tmp_path / "huge").exists()


def test_crossing_999_batches_is_refused_before_any_work(hub: Hub, games: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = "user/wide"
    assert publish_main(["--repo", repo, *common_args(games, batches=1), "--token", TOKEN]) == 0
    commits = len(hub.server.commits(repo))
    assert publish_main(["--repo", repo, *common_args(games, batches=1000), "--token", TOKEN]) == 2
    assert "3-digit batch numbers" in capsys.readouterr().err
    assert len(hub.server.commits(repo)) == commits


def test_an_interrupted_release_of_another_config_is_finished_first(hub: Hub, games: Path, tmp_path: Path) -> None:
    repo = "user/two-configs"
    publish(hub, "--repo", repo, *common_args(games, batches=1))
    # history's first release stops after its batch landed, before its card and tag: its batch, pushed by hand.
    out = tmp_path / "history"
    publish(hub, "--dry-run", "--output-dir", str(out), *common_args(games, batches=1), "--config-name", "history")
    api = HfApi(endpoint=hub.url, token=TOKEN)
    for split in ("train", "test"):
        path = f"history/{split}/batch_001.parquet"
        api.upload_file(path_or_fileobj=str(out / path), path_in_repo=path, repo_id=repo, repo_type="dataset")
    commits = len(hub.server.commits(repo))

    # Appending to default now would tag history's batch under a card that does not list it.
    refused = publish(hub, "--repo", repo, *common_args(games, batches=2), check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "config 'history' was interrupted" in refused.stderr and "--config-name history --resume" in refused.stderr
    assert len(hub.server.commits(repo)) == commits

    publish(hub, "--repo", repo, *common_args(games, batches=1), "--config-name", "history", "--resume")
    publish(hub, "--repo", repo, *common_args(games, batches=2))
    infos = DatasetInfosDict.from_dataset_card_data(DatasetCard.load(repo, repo_type="dataset", token=TOKEN).data)
    assert {name: info.splits["train"].num_examples for name, info in infos.items()} == {"default": 2 * 285, "history": 285}
    assert [t.name for t in api.list_repo_refs(repo, repo_type="dataset").tags] == ["v1", "v2", "v3"]


def test_a_changed_card_is_released_and_an_unchanged_one_is_not(hub: Hub, games: Path) -> None:
    repo = "user/relicensed"
    publish(hub, "--repo", repo, *common_args(games, batches=1))
    commits = len(hub.server.commits(repo))
    assert "up to date" in publish(hub, "--repo", repo, *common_args(games, batches=1)).stdout
    assert len(hub.server.commits(repo)) == commits

    # Same shards, another license: the card alone is the new release. One stopped between its card's
    # commit and its tag is finished by the rerun, not taken for up to date by its card on main.
    hub.server.fail_next(1, 400, path_contains="/tag/")
    assert publish(hub, "--repo", repo, *common_args(games, batches=1), "--license", "mit", check=False).returncode
    publish(hub, "--repo", repo, *common_args(games, batches=1), "--license", "mit")
    assert [c.title for c in hub.server.commits(repo)][:2] == ["Update dataset card for v2", "Update dataset card for v1"]
    api = HfApi(endpoint=hub.url, token=TOKEN)
    tags = {t.name: t.target_commit for t in api.list_repo_refs(repo, repo_type="dataset").tags}
    assert tags.keys() == {"v1", "v2"} and tags["v2"] == hub.server.commits(repo)[0].id
    assert DatasetCard.load(repo, repo_type="dataset", token=TOKEN).data.license == "mit"
    assert "up to date" in publish(hub, "--repo", repo, *common_args(games, batches=1), "--license", "mit").stdout
    # An asked-for tag is a release too, even of the same content.
    publish(hub, "--repo", repo, *common_args(games, batches=1), "--license", "mit", "--tag", "final")
    assert sorted(t.name for t in api.list_repo_refs(repo, repo_type="dataset").tags) == ["final", "v1", "v2"]
    assert "| `final` | 1 |" in DatasetCard.load(repo, repo_type="dataset", token=TOKEN).text
    # Back to v1's license, stopped before its tag: main's card says what v1's did, but is not v1's card.
    hub.server.fail_next(1, 400, path_contains="/tag/")
    assert publish(hub, "--repo", repo, *common_args(games, batches=1), check=False).returncode
    assert "up to date" not in publish(hub, "--repo", repo, *common_args(games, batches=1)).stdout
    tags = {t.name: t.target_commit for t in api.list_repo_refs(repo, repo_type="dataset").tags}
    assert tags.keys() == {"v1", "v2", "final", "v3"} and tags["v3"] == hub.server.commits(repo)[0].id


@pytest.mark.parametrize("repo, message", [
    ("other/theirs", "'other' is neither that user nor one of its organizations"),
    ("user/public", "exists and is public"),
])
def test_a_repo_the_run_may_not_publish_to_is_refused_before_any_work(
    hub: Hub, games: Path, tmp_path: Path, repo: str, message: str
) -> None:
    HfApi(endpoint=hub.url, token=TOKEN).create_repo("user/public", repo_type="dataset", exist_ok=True)
    out = tmp_path / "out"
    seen = len(hub.server.request_log)
    result = publish(hub, "--repo", repo, "--private", "--output-dir", str(out), *common_args(games), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr
    assert not out.exists()  # refused before the build
    assert all(r.method == "GET" for r in hub.server.request_log[seen:]), hub.server.request_log[seen:]


def test_write_access_follows_the_whoami_answer() -> None:
    def whoami(role: str = "write", orgs: object = ()) -> dict:
        return {"name": "user", "auth": {"accessToken": {"role": role}}, "orgs": list(orgs) if orgs is not None else None}

    hub_client.check_write_access(whoami(), "user/mine")
    hub_client.check_write_access(whoami(orgs=[{"name": "team", "roleInOrg": "write"}]), "team/data")
    # A read role may still write to some repos (resource groups): the Hub decides. Names ignore case.
    hub_client.check_write_access(whoami(orgs=[{"name": "team", "roleInOrg": "read"}]), "Team/data")
    hub_client.check_write_access(whoami(), "User/mine")
    hub_client.check_write_access({"name": "user"}, "team/data")  # a server that lists no organizations
    hub_client.check_write_access({"name": "user", "auth": {"accessToken": None}}, "user/mine")
    for user, repo, message in [
        (whoami(role="read"), "user/mine", "read-only"),
        (whoami(orgs=[{"name": "team"}]), "elsewhere/data", "neither that user nor one of its organizations (team)"),
    ]:
        with pytest.raises(hub_client.PublishError, match=re.escape(message)):
            hub_client.check_write_access(user, repo)


def fine_grained(*scoped: tuple[str, str, str]) -> dict:
    """A whoami answer of a fine-grained token of "user" (a member of "team"), with (entity type, name, permission) scopes."""
    entries = [{"entity": {"type": kind, "name": name}, "permissions": ["repo.content.read", permission]}
               for kind, name, permission in scoped]
    return {"name": "user", "orgs": [{"name": "team"}],
            "auth": {"accessToken": {"role": "fineGrained", "fineGrained": {"global": [], "scoped": entries}}}}


def test_a_fine_grained_token_may_write_only_where_a_scope_grants_repo_write() -> None:
    for scopes, repo in [
        ([("user", "user", "repo.write")], "user/data"),
        ([("org", "team", "repo.write")], "Team/data"),
        ([("dataset", "team/data", "repo.write")], "team/data"),
        ([("model", "user/m", "repo.write"), ("user", "user", "repo.write")], "user/data"),
    ]:
        hub_client.check_write_access(fine_grained(*scopes), repo)
    hub_client.check_write_access({**fine_grained(), "auth": {"accessToken": {"role": "fineGrained"}}}, "user/data")
    for scopes, repo, where in [
        ([], "user/data", "nowhere"),
        ([("user", "user", "repo.content.read")], "user/data", "nowhere"),
        ([("user", "user", "repo.write")], "team/data", "user user"),
        ([("dataset", "user/other", "repo.write"), ("model", "user/data", "repo.write")], "user/data",
         "dataset user/other, model user/data"),
    ]:
        with pytest.raises(hub_client.PublishError, match=re.escape(f"cannot write to {repo}: none of its scopes")) as refused:
            hub_client.check_write_access(fine_grained(*scopes), repo)
        assert f"(it may write to: {where})" in str(refused.value)


def test_a_fine_grained_token_that_cannot_write_to_the_repo_is_refused_before_any_work(
    hub: Hub, games: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, out = "hf_fine_grained_publisher", tmp_path / "out"
    monkeypatch.setitem(hub.server.tokens, token, "user")
    monkeypatch.setitem(hub.server.fine_grained, token, [
        {"entity": {"type": "dataset", "name": "user/another"}, "permissions": ["repo.content.read", "repo.write"]}])
    seen = len(hub.server.request_log)
    result = publish(hub, "--repo", "user/fine-grained", "--output-dir", str(out), *common_args(games, batches=1),
                     token=token, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot write to user/fine-grained: none of its scopes grants repo.write" in result.stderr
    assert not out.exists()  # refused before the build
    assert all(r.method == "GET" for r in hub.server.request_log[seen:]), hub.server.request_log[seen:]
    # A scope over the user's repos lets it publish.
    monkeypatch.setitem(hub.server.fine_grained, token, [{"entity": {"type": "user", "name": "user"}, "permissions": ["repo.write"]}])
    publish(hub, "--repo", "user/fine-grained", *common_args(games, batches=1), token=token)


def test_a_split_without_examples_is_not_declared_so_the_release_loads(games: Path, tmp_path: Path) -> None:
    # 10 positions a batch at 0.96: round(9.6) = 10 train rows and no test row in any batch.
    out = tmp_path / "out"
    assert publish_main(["--dry-run", "--output-dir", str(out), *common_args(games, batches=2)[:-4],
                         "--batch-size", "10", "--train-ratio", "0.96", "--sampling", "all"]) == 0
    assert pq.read_metadata(out / "test" / "batch_001.parquet").num_rows == 0
    data = DatasetCard.load(out / "README.md").data
    assert [f["split"] for f in data["configs"][0]["data_files"]] == ["train"]
    loaded = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))  # not streaming: every split is built
    assert list(loaded) == ["train"] and loaded["train"].num_rows == 20


def test_a_config_built_with_other_position_options_is_refused_beside_the_others(
    hub: Hub, games: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The card says every config holds the same sampled positions: a config built otherwise may not join them.
    repo = "user/same-positions"
    assert publish_main(["--repo", repo, *common_args(games, batches=1), "--token", TOKEN]) == 0
    commits = len(hub.server.commits(repo))
    assert publish_main(["--repo", repo, *common_args(games, batches=1), "--seed", "7", "--config-name", "history",
                         "--token", TOKEN, "--output-dir", str(tmp_path / "refused")]) == 2
    assert "config 'default' was built with other options than this 'history' release (seed: 0 there, 7 here)" \
        in capsys.readouterr().err
    assert len(hub.server.commits(repo)) == commits and not (tmp_path / "refused").exists()  # before any work
    # --batches may differ: the first batches are the same positions.
    assert publish_main(["--repo", repo, *common_args(games, batches=2), "--config-name", "history", "--token", TOKEN]) == 0
    card = DatasetCard.load(repo, repo_type="dataset", token=TOKEN)
    recorded = card.data["chesspos_generation"]
    assert sorted(recorded) == ["default", "history"]
    assert {k: v for k, v in recorded["default"].items() if k != "batches"} == \
        {k: v for k, v in recorded["history"].items() if k != "batches"}
    assert (recorded["default"]["batches"], recorded["history"]["batches"]) == (1, 2)
    # The body describes history's build, and still default's: its parameters and its sources.
    sha256 = hashlib.sha256(games.read_bytes()).hexdigest()
    assert recorded["default"]["sources"] == [{"file": games.name, "bytes": games.stat().st_size, "sha256": sha256}]
    other = card.text.split("## How the other configs were built")[1].split("## Versions")[0]
    assert "### `default`" in other and "| `batches` | `1` |" in other and f"`{sha256}`" in other
    # The same holds for a local output folder.
    out = tmp_path / "out"
    assert publish_main(["--dry-run", "--output-dir", str(out), *common_args(games, batches=1)]) == 0
    assert publish_main(["--dry-run", "--output-dir", str(out), *common_args(games, batches=1), "--train-ratio", "0.5",
                         "--config-name", "history"]) == 2
    assert "train_ratio: 0.95 there, 0.5 here" in capsys.readouterr().err


def test_only_a_config_joining_the_release_is_held_to_the_others_options(games: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for name in ("default", "history"):
        assert publish_main(["--dry-run", "--output-dir", str(out), *common_args(games, batches=1), "--config-name", name]) == 0
    # As if default had been built with another seed: a release from before the options were recorded.
    card = DatasetCard.load(out / "README.md")
    card.data["chesspos_generation"]["default"]["seed"] = 99
    card.save(out / "README.md")
    # history is already there: its own shards hold it; a new config is checked against every record.
    assert publish_main(["--dry-run", "--output-dir", str(out), *common_args(games, batches=1), "--config-name", "history"]) == 0
    assert publish_main(["--dry-run", "--output-dir", str(out), *common_args(games, batches=1), "--config-name", "tensor"]) == 2


def test_folders_that_are_no_config_do_not_block_a_release() -> None:
    shard = "train/batch_001.parquet"
    state = hub_client.RepoState("", head="abc", files={shard: "x", "test/batch_001.parquet": "y", f"notes/{shard}": "z"},
                                 tag_files={"v1": [shard, "test/batch_001.parquet"]})
    assert check_release(state, "user/r", ChessposPositionsConfig(batches=2), None, resume=False) == "v2"
    state.files["history/" + shard] = "h"  # an untagged history batch: an interrupted release of that config
    with pytest.raises(hub_client.PublishError, match="config 'history' was interrupted"):
        check_release(state, "user/r", ChessposPositionsConfig(batches=2), None, resume=False)


def test_a_card_drops_the_empty_splits_an_older_card_declared() -> None:
    splits = SplitDict()
    splits.add(SplitInfo(name="train", num_examples=3, num_bytes=30))
    splits.add(SplitInfo(name="test", num_examples=0, num_bytes=0))
    shard = Shard("history/train/batch_001.parquet", Path("x"), 3, 30, 10, "0" * 64)
    release = Release(repo_id="user/r", pretty_name="p", license="cc0-1.0", parameters={}, sources=[], summary=Summary(),
                      shards=[shard], versions=[("v1", {"history": 1})], config=CONFIGS["history"],
                      other_configs={"default": DatasetInfo(splits=splits)})
    configs = {c["config_name"]: [f["split"] for f in c["data_files"]] for c in card_data(release).to_dict()["configs"]}
    assert configs == {"default": ["train"], "history": ["train"]}
