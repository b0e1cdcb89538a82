"""Tests of the local Hub server (tests/hub_server.py), driven by the real huggingface_hub and datasets."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    DatasetCard,
    DatasetCardData,
    HfApi,
    HfFileSystem,
    hf_hub_download,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.errors import (
    BadRequestError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hub_server import HubServer, client_env, configure_client_env

TOKEN, OTHER_TOKEN = "hf_test_token", "hf_other_token"
README = b"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: train/*.parquet
---
# Chess positions (test)
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    server = HubServer({TOKEN: "user", OTHER_TOKEN: "other"})
    server.start()
    # Module-scoped, so pytest's function-scoped `monkeypatch` fixture can't be used here.
    with pytest.MonkeyPatch.context() as monkeypatch:
        configure_client_env(monkeypatch, server.url, tmp_path_factory.mktemp("hf"))
        yield server
    server.stop()


@pytest.fixture
def api(hub: HubServer) -> HfApi:
    return HfApi(endpoint=hub.url, token=TOKEN)


@pytest.fixture
def repo_id(api: HfApi) -> str:
    """A fresh dataset repo per test, so tests do not depend on each other."""
    repo = f"user/ds-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo, repo_type="dataset")
    return repo


def parquet_bytes(n: int, start: int = 0) -> bytes:
    """A Parquet file of n rows; a few thousand rows give tens of KB, so it is uploaded via LFS."""
    table = pa.table({"fen": [f"8/8/8/8/8/8/8/{i}K w - - 0 1" for i in range(start, start + n)],
                      "ply": list(range(start, start + n))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def push_dataset(api: HfApi, repo_id: str, data: bytes, message: str = "Add data") -> str:
    operations = [CommitOperationAdd("README.md", README), CommitOperationAdd("train/data-00000.parquet", data)]
    return api.create_commit(repo_id, operations, commit_message=message, repo_type="dataset").oid


def test_whoami_good_and_bad_token(api: HfApi, hub: HubServer) -> None:
    info = api.whoami()
    assert info["name"] == "user" and info["auth"]["accessToken"]["role"] == "write"
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi(endpoint=hub.url, token="hf_wrong").whoami()
    assert excinfo.value.response.status_code == 401
    # A bad token is rejected on every route, not just whoami (and is not a "repository not found").
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi(endpoint=hub.url, token="hf_wrong").dataset_info("user/anything")
    assert excinfo.value.response.status_code == 401
    assert not isinstance(excinfo.value, RepositoryNotFoundError)
    assert "Invalid credentials" in str(excinfo.value)


def test_create_repo_public_private_and_exist_ok(api: HfApi, hub: HubServer) -> None:
    name = f"user/new-{uuid.uuid4().hex[:8]}"
    url = api.create_repo(name, repo_type="dataset", private=True)
    assert url.repo_id == name and url.repo_type == "dataset"
    assert api.create_repo(name, repo_type="dataset", exist_ok=True).repo_id == name
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_repo(name, repo_type="dataset")
    assert excinfo.value.response.status_code == 409
    info = api.dataset_info(name)
    assert info.private is True and [s.rfilename for s in info.siblings or []] == [".gitattributes"]
    # A private repo is invisible to anonymous users and to other users (404, as on the Hub).
    for token in (False, OTHER_TOKEN):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub.url, token=token).dataset_info(name)
    public = api.create_repo(f"user/pub-{uuid.uuid4().hex[:8]}", repo_type="dataset").repo_id
    assert HfApi(endpoint=hub.url, token=False).dataset_info(public).private is False
    # Writing needs a token (401, which huggingface_hub reports as "repository not found")...
    anonymous = HfApi(endpoint=hub.url, token=False)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=public, repo_type="dataset")
    assert hub.request_log[-1].status == 401
    with pytest.raises(HfHubHTTPError) as excinfo:
        anonymous.create_repo("user/anonymous", repo_type="dataset")
    assert excinfo.value.response.status_code == 401
    # ...and only into your own namespace.
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi(endpoint=hub.url, token=OTHER_TOKEN).upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=public, repo_type="dataset")
    assert excinfo.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_repo("other/not-mine", repo_type="dataset")
    assert excinfo.value.response.status_code == 403


def test_commit_readme_and_parquet_goes_through_lfs(api: HfApi, hub: HubServer, repo_id: str) -> None:
    data = parquet_bytes(3000)
    assert len(data) > 10_000
    oid = push_dataset(api, repo_id, data)
    assert hub.commits(repo_id)[0].id == oid and hub.commits(repo_id)[0].title == "Add data"
    assert [c.title for c in hub.commits(repo_id)] == ["Add data", "initial commit"]
    files = {f.path: f for f in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)
             if isinstance(f, RepoFile)}
    assert set(files) == {".gitattributes", "README.md", "train/data-00000.parquet"}
    parquet = files["train/data-00000.parquet"]
    assert parquet.lfs is not None and parquet.lfs.size == len(data) and parquet.size == len(data)
    assert files["README.md"].lfs is None
    # The parquet content went through the LFS batch API and a PUT, not inline in the commit.
    paths = [(r.method, r.path.split("?")[0]) for r in hub.request_log]
    assert ("POST", f"/datasets/{repo_id}.git/info/lfs/objects/batch") in paths
    assert any(m == "PUT" and "/info/lfs/objects/" in p for m, p in paths)
    info = api.dataset_info(repo_id, files_metadata=True)
    assert info.sha == oid
    assert {s.rfilename: s.lfs is not None for s in info.siblings or []}["train/data-00000.parquet"]
    # Committing the same content again uploads nothing new (the batch API lists no actions).
    puts_before = sum(r.method == "PUT" for r in hub.request_log)
    api.upload_file(path_or_fileobj=data, path_in_repo="train/copy.parquet", repo_id=repo_id, repo_type="dataset")
    assert sum(r.method == "PUT" for r in hub.request_log) == puts_before


def test_parent_commit_mismatch_is_412(api: HfApi, hub: HubServer, repo_id: str) -> None:
    first = hub.commits(repo_id)[0].id
    push_dataset(api, repo_id, parquet_bytes(10))
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_commit(repo_id, [CommitOperationAdd("notes.txt", b"late")], commit_message="stale",
                          repo_type="dataset", parent_commit=first)
    assert excinfo.value.response.status_code == 412
    assert "parentCommit" in str(excinfo.value)
    head = hub.commits(repo_id)[0].id
    api.create_commit(repo_id, [CommitOperationAdd("notes.txt", b"fresh")], commit_message="fresh",
                      repo_type="dataset", parent_commit=head)
    assert hub.commits(repo_id)[0].title == "fresh"


def test_lfs_upload_with_wrong_sha256_is_rejected(api: HfApi, hub: HubServer, repo_id: str) -> None:
    good, bad = parquet_bytes(500), bytearray(parquet_bytes(500))
    bad[100] ^= 0xFF
    operation = CommitOperationAdd("train/data.parquet", good)
    operation.path_or_fileobj = bytes(bad)  # the client announces good's sha256 but sends other bytes
    with pytest.raises(RuntimeError) as excinfo:
        api.create_commit(repo_id, [operation], commit_message="corrupt", repo_type="dataset")
    cause = excinfo.value.__cause__
    assert isinstance(cause, HfHubHTTPError) and cause.response.status_code == 400
    assert "does not match" in str(cause)
    assert [c.title for c in hub.commits(repo_id)] == ["initial commit"]


def test_commit_of_never_uploaded_lfs_object_is_rejected(api: HfApi, hub: HubServer, repo_id: str) -> None:
    operation = CommitOperationAdd("train/data.parquet", parquet_bytes(50))
    operation._upload_mode, operation._is_uploaded = "lfs", True  # skip the upload, commit the pointer only
    with pytest.raises(BadRequestError, match="never uploaded"):
        api.create_commit(repo_id, [operation], commit_message="dangling", repo_type="dataset")
    assert len(hub.commits(repo_id)) == 1


def test_tags_refs_and_listing_at_a_tag(api: HfApi, hub: HubServer, repo_id: str) -> None:
    push_dataset(api, repo_id, parquet_bytes(20))
    api.create_tag(repo_id, tag="v1.0", repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_tag(repo_id, tag="v1.0", repo_type="dataset")
    assert excinfo.value.response.status_code == 409
    api.create_commit(repo_id, [CommitOperationAdd("train/data-00001.parquet", parquet_bytes(5)),
                                CommitOperationDelete("README.md")], commit_message="v2", repo_type="dataset")
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    tagged = hub.commits(repo_id)[1].id
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", tagged)]
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", hub.commits(repo_id)[0].id)]
    assert set(api.list_repo_files(repo_id, repo_type="dataset", revision="v1.0")) == {
        ".gitattributes", "README.md", "train/data-00000.parquet"}
    assert set(api.list_repo_files(repo_id, repo_type="dataset", revision=tagged)) == {
        ".gitattributes", "README.md", "train/data-00000.parquet"}
    assert "README.md" not in api.list_repo_files(repo_id, repo_type="dataset")
    assert [c.title for c in api.list_repo_commits(repo_id, repo_type="dataset")] == ["v2", "Add data",
                                                                                     "initial commit"]
    # Unknown revisions, also URL-encoded special refs, are RevisionNotFound.
    for revision in ("v9", "refs/convert/parquet", "0" * 40):
        with pytest.raises(RevisionNotFoundError):
            api.list_repo_files(repo_id, repo_type="dataset", revision=revision)


def test_hf_hub_download_and_ranges(api: HfApi, hub: HubServer, repo_id: str, tmp_path: Path) -> None:
    data = parquet_bytes(2000)
    oid = push_dataset(api, repo_id, data)
    path = hf_hub_download(repo_id, "train/data-00000.parquet", repo_type="dataset", cache_dir=tmp_path,
                           endpoint=hub.url, token=TOKEN)
    assert Path(path).read_bytes() == data and oid in path
    readme = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=oid, cache_dir=tmp_path)
    assert Path(readme).read_bytes() == README
    # HfFileSystem (used by datasets) reads with HTTP Range requests -> 206 partial content.
    fs = HfFileSystem(endpoint=hub.url, token=TOKEN)
    with fs.open(f"datasets/{repo_id}/train/data-00000.parquet", "rb", block_size=1024) as file:
        file.seek(len(data) - 8)
        assert file.read(8) == data[-8:]
    assert any(r.status == 206 for r in hub.request_log)
    assert fs.glob(f"datasets/{repo_id}/train/*.parquet") == [f"datasets/{repo_id}/train/data-00000.parquet"]
    assert pq.read_table(fs.open(f"datasets/{repo_id}/train/data-00000.parquet")).num_rows == 2000


def test_upload_folder_and_tree_pagination(api: HfApi, hub: HubServer, repo_id: str, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    (folder / "train").mkdir(parents=True)
    (folder / "README.md").write_bytes(README)
    for shard in range(3):
        (folder / "train" / f"data-{shard:05d}.parquet").write_bytes(parquet_bytes(100, start=shard * 100))
    api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="dataset", commit_message="Upload folder")
    assert hub.commits(repo_id)[0].title == "Upload folder"
    hub.tree_page_size = 2  # force several pages, followed through the Link header
    try:
        paths = [e.path for e in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)]
    finally:
        hub.tree_page_size = HubServer.tree_page_size
    assert sorted(paths) == [".gitattributes", "README.md", "train", "train/data-00000.parquet",
                             "train/data-00001.parquet", "train/data-00002.parquet"]
    infos = api.get_paths_info(repo_id, ["train", "README.md", "missing.txt"], repo_type="dataset", expand=True)
    assert [i.path for i in infos] == ["train", "README.md"]
    assert infos[1].last_commit is not None and infos[1].last_commit.title == "Upload folder"


def test_fail_next_makes_clients_retry(api: HfApi, hub: HubServer, repo_id: str) -> None:
    # huggingface_hub retries /preupload (and the LFS calls) on 429/5xx with backoff...
    hub.fail_next(1, 503)
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="hello.txt", repo_id=repo_id, repo_type="dataset")
    preuploads = [r.status for r in hub.request_log if f"/api/datasets/{repo_id}/preupload/" in r.path]
    assert preuploads == [503, 200]
    # ...but not the final /commit call, so a failure there surfaces and leaves the branch untouched.
    head = hub.commits(repo_id)[0].id
    hub.fail_next(1, 500, path_contains="/commit/")
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.upload_file(path_or_fileobj=b"again", path_in_repo="hello.txt", repo_id=repo_id, repo_type="dataset")
    assert excinfo.value.response.status_code == 500
    assert hub.commits(repo_id)[0].id == head
    api.upload_file(path_or_fileobj=b"again", path_in_repo="hello.txt", repo_id=repo_id, repo_type="dataset")
    assert hub.commits(repo_id)[0].id != head


def test_model_repos_and_private_downloads(api: HfApi, hub: HubServer, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="user/missing")
    model = api.create_repo(f"user/model-{uuid.uuid4().hex[:8]}", private=True).repo_id  # model is the default
    api.upload_file(path_or_fileobj=b'{"a": 1}', path_in_repo="config.json", repo_id=model)
    api.upload_file(path_or_fileobj=b"\0" * 2048, path_in_repo="weights.bin", repo_id=model)
    assert api.list_repo_files(model) == [".gitattributes", "config.json", "weights.bin"]
    assert [s.lfs is not None for s in api.model_info(model, files_metadata=True).siblings or []] == [
        False, False, True]
    weights = api.hf_hub_download(model, "weights.bin", cache_dir=tmp_path)
    assert Path(weights).read_bytes() == b"\0" * 2048
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(model, "config.json", cache_dir=tmp_path / "anon", endpoint=hub.url, token=False)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(model, "config.json", cache_dir=tmp_path / "other", endpoint=hub.url, token=OTHER_TOKEN)


def test_configure_client_env_patches_in_process_clients(hub: HubServer, repo_id: str, api: HfApi) -> None:
    push_dataset(api, repo_id, parquet_bytes(30))
    # No endpoint passed anywhere: the module constants point at the local server.
    assert HfApi(token=False).list_repo_files(repo_id, repo_type="dataset")
    assert HfFileSystem().ls(f"datasets/{repo_id}/train", detail=False) == [
        f"datasets/{repo_id}/train/data-00000.parquet"]
    from datasets import load_dataset

    assert [row["ply"] for row in load_dataset(repo_id, split="train", streaming=True)] == list(range(30))


def test_load_dataset_in_subprocess(api: HfApi, hub: HubServer, repo_id: str, tmp_path: Path) -> None:
    push_dataset(api, repo_id, parquet_bytes(100), message="v1")
    api.create_tag(repo_id, tag="v1", repo_type="dataset")
    push_dataset(api, repo_id, parquet_bytes(150, start=1000), message="v2")
    script = f"""
import json
from datasets import load_dataset
streamed = [row["ply"] for row in load_dataset({repo_id!r}, split="train", streaming=True)]
regular = load_dataset({repo_id!r}, split="train")
tagged = load_dataset({repo_id!r}, split="train", revision="v1")
print(json.dumps({{"streamed": streamed, "regular": list(regular["ply"]), "fen": regular[0]["fen"],
                  "tagged": list(tagged["ply"])}}))
"""
    # HF_ENDPOINT is set before the import: the way a user of the published dataset runs it.
    result = subprocess.run([sys.executable, "-c", script], env=client_env(hub.url, tmp_path), capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["streamed"] == out["regular"] == list(range(1000, 1150))
    assert out["fen"] == "8/8/8/8/8/8/8/1000K w - - 0 1"
    assert out["tagged"] == list(range(100))


def test_a_card_license_the_hub_does_not_know_is_refused_at_validation_and_at_commit(
    api: HfApi, hub: HubServer, repo_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = DatasetCard(f"---\n{DatasetCardData(license='odc-by', pretty_name='x').to_yaml()}\n---\n# Card\n")
    good.validate(repo_type="dataset")
    listed = DatasetCard("---\nlicense:\n- mit\n- cc-by-4.0\n---\n")
    listed.validate(repo_type="dataset")
    bad = DatasetCard("---\nlicense: gpl-3.0-or-later\n---\n# Card\n")
    with pytest.raises(ValueError, match=r'"license" must be one of \[apache-2\.0, mit, .*cc0-1\.0, .*, other, array\]'):
        bad.validate(repo_type="dataset")
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):  # huggingface_hub validates before committing
        api.upload_file(path_or_fileobj=str(bad).encode(), path_in_repo="README.md", repo_id=repo_id, repo_type="dataset")
    # A commit is checked whatever validate-yaml says.
    monkeypatch.setattr(hub, "validate_yaml_status", 200)
    bad.validate(repo_type="dataset")
    with pytest.raises(BadRequestError, match='"license" must be one of'):
        api.upload_file(path_or_fileobj=str(bad).encode(), path_in_repo="README.md", repo_id=repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=str(good).encode(), path_in_repo="README.md", repo_id=repo_id, repo_type="dataset")
    assert "README.md" in api.list_repo_files(repo_id, repo_type="dataset")


def test_a_fine_grained_token_writes_only_where_its_scopes_say(
    api: HfApi, hub: HubServer, repo_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "hf_fine_grained"
    scoped = [{"entity": {"type": "dataset", "name": repo_id}, "permissions": ["repo.content.read", "repo.write"]},
              {"entity": {"type": "user", "name": "user"}, "permissions": ["repo.content.read"]}]
    monkeypatch.setitem(hub.tokens, token, "user")
    monkeypatch.setitem(hub.fine_grained, token, scoped)
    fine = HfApi(endpoint=hub.url, token=token)
    access = fine.whoami()["auth"]["accessToken"]
    assert access["role"] == "fineGrained" and access["fineGrained"]["scoped"] == scoped
    fine.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id=repo_id, repo_type="dataset")
    other = f"user/ds-{uuid.uuid4().hex[:8]}"
    with pytest.raises(HfHubHTTPError) as refused:
        fine.create_repo(other, repo_type="dataset")
    assert refused.value.response.status_code == 403
    api.create_repo(other, repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as refused:
        fine.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id=other, repo_type="dataset")
    assert refused.value.response.status_code == 403
    monkeypatch.setitem(hub.fine_grained, token, [{"entity": {"type": "user", "name": "user"}, "permissions": ["repo.write"]}])
    fine.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id=other, repo_type="dataset")
