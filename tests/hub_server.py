"""A local, in-memory, Hugging-Face-Hub-compatible HTTP server for the test suite.

The real Hub is unreachable from tests, so tests push and load through this server with the *real*
``huggingface_hub.HfApi`` and the *real* ``datasets.load_dataset``. The server speaks the subset of
the Hub HTTP API that those clients use (checked against huggingface_hub 2.4 / datasets 5.2):

* ``GET /api/whoami-v2``, ``POST /api/repos/create``, ``POST /api/validate-yaml``,
  ``GET /api/agent-harnesses``
* ``/api/{datasets|models|spaces}/{ns}/{name}`` + ``[/revision/{rev}]`` (repo info), ``/refs``,
  ``/tag/{rev}``, ``/branch/{name}``, ``/commits/{rev}``, ``/preupload/{rev}``, ``/commit/{rev}``,
  ``/tree/{rev}[/{path}]``, ``/paths-info/{rev}``
* Git LFS: ``POST /{prefix}{repo}.git/info/lfs/objects/batch`` (basic transfer only), signed
  ``PUT`` upload URLs (sha256 and size are verified) and ``.../objects/verify``
* ``GET``/``HEAD /{prefix}{repo}/resolve/{rev}/{path}`` with ETag / X-Linked-* headers and Ranges

Unknown routes answer 404 with a JSON error and are printed to stderr so gaps are easy to spot.

What a client must configure
----------------------------
huggingface_hub and datasets read their settings **at import time**. A *subprocess* only needs the
environment from :func:`client_env` (``HF_ENDPOINT=<server.url>``, ``HF_HUB_DISABLE_XET=1`` so uploads
use the legacy LFS protocol instead of Xet, ``HF_HOME``/``HF_DATASETS_CACHE`` in a temp dir, no
``HF_TOKEN`` unless given). Inside the *test process* the modules are already imported, so
:func:`configure_client_env` also patches the module constants that were computed from the
environment: ``huggingface_hub.constants.ENDPOINT`` together with ``HUGGINGFACE_CO_URL_TEMPLATE``
(``hf_hub_url`` only rewrites URLs starting with ``ENDPOINT``; patching one without the other sends
downloads to huggingface.co), ``HF_HUB_DISABLE_XET``, the cache/token paths, ``datasets.config.HF_ENDPOINT``
and ``HUB_DATASETS_URL``, and clears ``HfFileSystem``'s instance cache (fsspec caches ``hf://``
filesystems, including their endpoint and directory listings, across tests). ``HfApi(endpoint=url)``
is enough for reads through that object, but uploads also need ``constants.HF_HUB_DISABLE_XET = True``:
hf_xet is installed, and without it huggingface_hub asks for ``/xet-write-token/`` (not served here).
"""

from __future__ import annotations

import base64
import contextlib
import email.message
import fnmatch
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

if TYPE_CHECKING:
    import pytest

# URL segment after /api/ -> repo type, and repo type -> prefix of non-API URLs (models have none).
API_REPO_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}
URL_PREFIXES = {"dataset": "datasets/", "model": "", "space": "spaces/"}
SHA256_OID = re.compile(r"^[0-9a-f]{64}$")
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"

# A trimmed version of the .gitattributes the Hub puts in every new repo: it is what makes the Hub
# answer "lfs" in /preupload for e.g. *.parquet regardless of their size.
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in ("*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.gz", "*.h5", "*.lz4", "*.msgpack", "*.npy",
                    "*.npz", "*.onnx", "*.parquet", "*.pkl", "*.pt", "*.pth", "*.safetensors", "*.tar", "*.tgz",
                    "*.xz", "*.zip", "*.zst")
)


#: The licence ids the Hub accepts in a card's ``license`` (https://huggingface.co/docs/hub/repositories-licenses),
#: in the order of its validation message (huggingface_hub issue #4218 quotes it).
HUB_LICENSES = (
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0",
    "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0",
    "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1",
    "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research",
    "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl", "openmdw-1.0",
    "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr",
    "deepfloyd-if-license", "fair-noncommercial-research-license", "llama2", "llama3", "llama3.1", "llama3.2",
    "llama3.3", "llama4", "grok2-community", "gemma", "unknown", "other",
)
#: The Hub's message for any other ``license`` ("array": a list of these ids is accepted too).
LICENSE_ERROR = f'"license" must be one of [{", ".join(HUB_LICENSES)}, array]'


def card_metadata_errors(content: str) -> list[str]:
    """What the Hub refuses in a README's YAML front matter: an unclosed block, or a ``license`` it does not know.

    Stdlib only, so no YAML parser: ``license`` is read as a top-level scalar (quoted or not) or block list.
    """
    lines = content.splitlines()
    if [line.strip() for line in lines[:1]] != ["---"]:
        return []
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        return ["README.md metadata is not closed by '---'"]
    block = lines[1:end]
    for index, line in enumerate(block):
        if match := re.fullmatch(r"license:(.*)", line):
            value = match.group(1).strip()
            items = [value] if value else []
            for rest in [] if value else block[index + 1:]:  # a block list: "- id" lines
                if not (item := re.fullmatch(r"\s*- (.*)", rest)):
                    break
                items.append(item.group(1).strip())
            if any(item.strip("'\"") not in HUB_LICENSES for item in items):
                return [LICENSE_ERROR]
    return []


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    """Format like the Hub (millisecond precision, ``Z`` suffix), which huggingface_hub parses."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Blob:
    """An immutable file content, stored either as a regular git blob or as an LFS object."""

    __slots__ = ("data", "lfs", "size", "sha256", "pointer", "oid")

    def __init__(self, data: bytes, lfs: bool) -> None:
        self.data, self.lfs, self.size = data, lfs, len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        # An LFS file is stored in git as a pointer file; its git oid is the pointer's, as on the Hub.
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(data)}\n"
        self.pointer = pointer.encode() if lfs else b""
        git_content = self.pointer if lfs else data
        self.oid = hashlib.sha1(b"blob %d\0" % len(git_content) + git_content).hexdigest()

    @property
    def etag(self) -> str:
        """The value huggingface_hub caches files under: the sha256 for LFS files, the git oid otherwise."""
        return self.sha256 if self.lfs else self.oid


@dataclass(frozen=True)
class Commit:
    """An immutable snapshot of a repository, identified by a 40-hex id."""

    id: str
    parents: tuple[str, ...]
    title: str
    message: str
    author: str
    date: datetime
    files: Mapping[str, Blob]


@dataclass
class Repo:
    """A repository: refs pointing into a graph of commits, plus the LFS objects uploaded to it."""

    repo_type: str
    repo_id: str
    private: bool
    created_at: datetime
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]


class LoggedRequest(NamedTuple):
    """One request as seen by the server, for assertions such as "the client retried"."""

    method: str
    path: str
    status: int


class HubError(Exception):
    """An error response; ``code`` becomes the X-Error-Code header that huggingface_hub maps to exceptions."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


def _repo_not_found() -> HubError:
    # Same answer for "missing" and "private and not yours", as on the Hub: existence must not leak.
    return HubError(404, "Repository not found", "RepoNotFound")


def _entry_not_found(path: str) -> HubError:
    return HubError(404, f"Entry not found: {path}", "EntryNotFound")


@dataclass
class Request:
    """A parsed HTTP request; ``segments`` are the URL path segments, each percent-decoded separately
    so that an encoded revision such as ``refs%2Fconvert%2Fparquet`` stays a single segment."""

    method: str
    path: str
    segments: list[str]
    query: dict[str, list[str]]
    headers: email.message.Message
    body: bytes
    user: str | None
    token: str | None = None

    def param(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def flag(self, name: str) -> bool:
        return self.param(name).lower() in ("1", "true", "yes")

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as err:
            raise HubError(400, f"Invalid JSON body: {err}") from err


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


def _split_rev(segments: list[str]) -> tuple[str, list[str]]:
    """Split ``[rev, *path]``; also accepts unencoded ``refs/{heads,tags,convert,pr}/x`` revisions."""
    if not segments or not segments[0]:
        raise HubError(400, "Missing revision in URL")
    if segments[0] == "refs" and len(segments) >= 3 and segments[1] in ("heads", "tags", "convert", "pr"):
        return "/".join(segments[:3]), segments[3:]
    return segments[0], segments[1:]


def _check_path(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise HubError(400, f"Invalid path in repository: {path!r}")
    return path


def _folder_digest(files: Mapping[str, Blob], folder: str) -> str | None:
    """A stable id for a folder's content (not git's tree hash, but it changes exactly when they would)."""
    prefix = folder + "/" if folder else ""
    listing = "\n".join(f"{p} {b.oid}" for p, b in sorted(files.items()) if p.startswith(prefix))
    return hashlib.sha1(listing.encode()).hexdigest() if listing else None


class HubServer:
    """In-memory Hub. ``tokens`` maps bearer tokens to user names; ``orgs`` maps a user name to the
    organisation namespaces that user may also write to; ``fine_grained`` maps a token to the ``scoped`` entries
    of a fine-grained token (``{"entity": {"type": "user"|"org"|"dataset"|..., "name": ...}, "permissions": [...]}``,
    as the Hub's whoami answers them): such a token writes only where an entry grants ``repo.write``."""

    #: Regular files at least this big must go through LFS, as on the Hub (10 MiB).
    lfs_threshold: int = 10 * 1024 * 1024
    #: Tree page sizes of the Hub; tests may lower them to exercise Link-header pagination.
    tree_page_size: int = 1000
    tree_expand_page_size: int = 50
    #: None: ``/api/validate-yaml`` checks the card as the Hub does. A status: it answers that status and checks
    #: nothing; 404 or 405 model a server without the endpoint, 200 one that passes what a commit then refuses.
    validate_yaml_status: int | None = None

    def __init__(self, tokens: dict[str, str], *, orgs: Mapping[str, Iterable[str]] | None = None,
                 fine_grained: Mapping[str, list[dict[str, Any]]] | None = None) -> None:
        self.tokens = dict(tokens)
        self.orgs = {user: set(names) for user, names in (orgs or {}).items()}
        self.fine_grained = dict(fine_grained or {})
        self.url = ""
        self.request_log: list[LoggedRequest] = []
        self._repos: dict[tuple[str, str], Repo] = {}
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(16)  # signs LFS upload URLs, which carry no Authorization
        self._fail_remaining = 0
        self._fail_status = 503
        self._fail_match: str | None = None
        self._fail_headers: dict[str, str] = {}
        self._lose_remaining = 0
        self._lose_match = ""
        self._hold_remaining: int | None = None
        self._hold_release = threading.Event()
        self.held_requests = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # ----------------------------------------------------------------------------- public API
    def start(self) -> str:
        """Bind 127.0.0.1 on a free port, serve in a daemon thread, return the endpoint URL."""
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.hub = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        # A short poll interval makes stop() quick (shutdown waits for the serve loop to notice).
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hub-server", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop listening and close kept-alive connections, so that no pooled client connection can
        keep talking to this server's handler threads (e.g. if a later server reuses the port)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        for connection in list(self._connections):
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def commits(self, repo_id: str, repo_type: str = "dataset") -> list[Commit]:
        """History of ``main`` (first parents), newest first."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            return list(self._history(repo, repo.commits[repo.branches["main"]]))

    def fail_next(self, n: int, status: int = 503, *, path_contains: str | None = None,
                  headers: dict[str, str] | None = None) -> None:
        """Make the next ``n`` mutating/upload requests (POST/PUT/DELETE other than the read-only
        ``paths-info`` and ``validate-yaml``) fail with ``status`` before any side effect.
        ``path_contains`` restricts the injection to URLs containing that substring, e.g. "/commit/";
        ``headers`` go with the failures, e.g. the Hub's ``RateLimit`` and ``Retry-After`` on a 429."""
        with self._lock:
            self._fail_remaining, self._fail_status, self._fail_match = n, status, path_contains
            self._fail_headers = dict(headers or {})

    def lose_next_answers(self, n: int, *, path_contains: str) -> None:
        """Apply the next ``n`` successful requests whose URL contains ``path_contains``, then answer 503
        instead of their result: this models a commit that landed while the client saw a failure."""
        with self._lock:
            self._lose_remaining, self._lose_match = n, path_contains

    def _lose_answer(self, req: Request, resp: Response) -> Response:
        """``resp``, or a 503 if :meth:`lose_next_answers` asks to lose it."""
        with self._lock:
            if self._lose_remaining <= 0 or self._lose_match not in req.path or resp.status >= 400:
                return resp
            self._lose_remaining -= 1
        return _json({"error": "Answer lost by HubServer.lose_next_answers; the request was applied"}, 503)

    def hold_commits(self, after: int) -> threading.Event:
        """Let ``after`` more commit requests through, then hold later ones until the returned event
        is set. Held requests then fail with 503 and change nothing: this models a client killed
        mid-publish, since its commit never lands. ``held_requests`` counts the requests held so far."""
        with self._lock:
            self._hold_remaining = after
            self._hold_release = threading.Event()
            return self._hold_release

    def _held(self, req: Request) -> bool:
        """Whether ``req`` is a commit to hold (see :meth:`hold_commits`)."""
        if req.method != "POST" or "commit" not in req.segments:
            return False
        with self._lock:
            if self._hold_remaining is None:
                return False
            if self._hold_remaining > 0:
                self._hold_remaining -= 1
                return False
            self.held_requests += 1
            return True

    # ----------------------------------------------------------------------------- dispatch
    def handle(self, req: Request) -> Response:
        """Route one request. Everything runs under one lock: the store is tiny and this keeps
        check-then-act sequences (parentCommit check, tag creation) atomic."""
        if self._held(req):
            # Wait outside the lock, so the test can keep reading the server meanwhile.
            self._hold_release.wait(timeout=120)
            return _json({"error": "Held by HubServer.hold_commits, then dropped"}, 503)
        with self._lock:
            if self._should_fail(req):
                return _json({"error": f"Injected failure ({self._fail_status}) from HubServer.fail_next"},
                             self._fail_status, self._fail_headers)
            # An unknown token is rejected everywhere (LFS PUTs are authorised by their signed URL instead).
            if req.headers.get("Authorization") and req.user is None and req.method != "PUT":
                raise HubError(401, INVALID_CREDENTIALS)
            segs = req.segments
            if segs and segs[0] == "api":
                return self._route_api(req, segs[1:])
            if segs and segs[0] in ("datasets", "spaces"):
                repo_type, segs = API_REPO_TYPES[segs[0]], segs[1:]
            else:
                repo_type = "model"
            if len(segs) >= 3:
                repo_id = f"{segs[0]}/{segs[1]}"
                if repo_id.endswith(".git") and segs[2:5] == ["info", "lfs", "objects"]:
                    return self._route_lfs(req, repo_type, repo_id[: -len(".git")], segs[5:])
                if segs[2] == "resolve" and req.method in ("GET", "HEAD"):
                    rev, path = _split_rev(segs[3:])
                    return self._resolve(req, repo_type, repo_id, rev, "/".join(path))
            raise self._unknown(req)

    def _should_fail(self, req: Request) -> bool:
        mutating = req.method in ("POST", "PUT", "DELETE") and "paths-info" not in req.segments
        if self._fail_remaining <= 0 or not mutating or req.path == "/api/validate-yaml":
            return False
        if self._fail_match is not None and self._fail_match not in req.path:
            return False
        self._fail_remaining -= 1
        return True

    @staticmethod
    def _unknown(req: Request) -> HubError:
        print(f"[hub_server] unhandled route: {req.method} {req.path}", file=sys.stderr, flush=True)
        return HubError(404, f"Route not implemented by the test HubServer: {req.method} {req.path}")

    def _route_api(self, req: Request, segs: list[str]) -> Response:
        m = req.method
        if segs == ["whoami-v2"] and m == "GET":
            return self._whoami(req)
        if segs == ["repos", "create"] and m == "POST":
            return self._create_repo(req)
        if segs == ["validate-yaml"] and m == "POST":
            if self.validate_yaml_status is not None:
                return _json({"errors": [], "warnings": []} if self.validate_yaml_status == 200 else
                             {"error": "Not Found"}, self.validate_yaml_status)
            return self._validate_yaml(req)
        if segs == ["agent-harnesses"] and m == "GET":
            # Fetched by huggingface_hub's agent detection for its user agent; an empty registry disables it.
            return _json({"standardEnvVars": [], "harnesses": {}})
        if len(segs) < 3 or segs[0] not in API_REPO_TYPES:
            raise self._unknown(req)
        repo_type, repo_id = API_REPO_TYPES[segs[0]], f"{segs[1]}/{segs[2]}"
        action, rest = (segs[3], segs[4:]) if len(segs) > 3 else ("", [])
        if action in ("tag", "branch") and m in ("POST", "DELETE") and rest:
            return self._ref_change(req, repo_type, repo_id, action, "/".join(rest))
        if (m, action) in (("GET", ""), ("GET", "refs")):
            return (self._refs if action else self._repo_info)(req, repo_type, repo_id, "main")
        handlers: dict[tuple[str, str], Callable[[Request, str, str, str, str], Response]] = {
            ("GET", "revision"): self._repo_info, ("GET", "commits"): self._list_commits,
            ("POST", "preupload"): self._preupload, ("POST", "commit"): self._commit,
            ("GET", "tree"): self._tree, ("POST", "paths-info"): self._paths_info,
        }
        handler = handlers.get((m, action))
        if handler is None:
            raise self._unknown(req)
        rev, path = _split_rev(rest)
        return handler(req, repo_type, repo_id, rev, "/".join(path).strip("/"))

    # ----------------------------------------------------------------------------- access & refs
    def _member(self, user: str | None, namespace: str) -> bool:
        return user is not None and (user == namespace or namespace in self.orgs.get(user, ()))

    def _can_write(self, req: Request, namespace: str, repo: tuple[str, str] | None = None) -> bool:
        """Whether the request's token may write under ``namespace`` (to ``repo``, (type, id), if given)."""
        if not self._member(req.user, namespace):
            return False
        scoped = self.fine_grained.get(req.token or "")
        if scoped is None:
            return True
        granted = {(s["entity"]["type"], s["entity"]["name"]) for s in scoped if "repo.write" in s["permissions"]}
        return bool(granted & {("user", namespace), ("org", namespace), *([repo] if repo else [])})

    def _get_repo(self, req: Request, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        if write and req.user is None:
            # huggingface_hub maps a 401 on a Hub repo URL to RepositoryNotFoundError, but its URL regex
            # wants https://, so say it with X-Error-Code to get the same exception over plain http.
            raise HubError(401, "You must be authenticated to write to a repository", "RepoNotFound")
        repo = self._repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not self._member(req.user, repo.namespace)):
            raise _repo_not_found()
        if write and not self._can_write(req, repo.namespace, (repo_type, repo_id)):
            raise HubError(403, f"You don't have the rights to write to {repo_type} {repo_id}")
        return repo

    @staticmethod
    def _resolve_rev(repo: Repo, rev: str) -> Commit:
        """A branch, a tag (optionally as refs/heads/x or refs/tags/x) or a full commit id."""
        if rev.startswith("refs/heads/"):
            oid = repo.branches.get(rev[len("refs/heads/"):])
        elif rev.startswith("refs/tags/"):
            oid = repo.tags.get(rev[len("refs/tags/"):])
        else:
            oid = repo.branches.get(rev) or repo.tags.get(rev) or (rev if rev in repo.commits else None)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.commits[oid]

    def _history(self, repo: Repo, commit: Commit) -> Iterator[Commit]:
        current: Commit | None = commit
        while current is not None:
            yield current
            current = repo.commits[current.parents[0]] if current.parents else None

    def _new_commit(self, repo: Repo, branch: str, files: dict[str, Blob], title: str, message: str,
                    author: str) -> Commit:
        parents = (repo.branches[branch],) if branch in repo.branches else ()
        date = _now()
        seed = json.dumps([parents, sorted((p, b.oid) for p, b in files.items()), title, message,
                           date.isoformat(), secrets.token_hex(8)])
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parents, title, message, author, date,
                        MappingProxyType(dict(files)))
        repo.commits[commit.id] = commit
        repo.branches[branch] = commit.id
        return commit

    # ----------------------------------------------------------------------------- account & repos
    def _whoami(self, req: Request) -> Response:
        if req.user is None:
            raise HubError(401, INVALID_CREDENTIALS)
        orgs = [{"type": "org", "name": name, "fullname": name} for name in sorted(self.orgs.get(req.user, ()))]
        token: dict[str, Any] = {"displayName": "test token", "role": "write", "createdAt": _iso(_now())}
        if (scoped := self.fine_grained.get(req.token or "")) is not None:
            token.update(role="fineGrained", fineGrained={"global": [], "scoped": scoped, "canReadGatedRepos": False})
        return _json({"type": "user", "id": hashlib.sha1(req.user.encode()).hexdigest()[:24], "name": req.user,
                      "fullname": req.user, "isPro": False, "orgs": orgs,
                      "auth": {"type": "access_token", "accessToken": token}})

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.url}/{URL_PREFIXES[repo_type]}{repo_id}"

    def _create_repo(self, req: Request) -> Response:
        if req.user is None:
            raise HubError(401, "You must be authenticated to create a repository")
        body = req.json()
        repo_type = body.get("type") or "model"
        namespace, name = body.get("organization") or req.user, body.get("name") or ""
        if repo_type not in URL_PREFIXES or not re.fullmatch(r"[\w.-]{1,96}", name) or name.endswith(".git"):
            raise HubError(400, f"Invalid repo name or type: {name!r} ({repo_type!r})")
        if not self._can_write(req, namespace):
            raise HubError(403, f"You don't have the rights to create a {repo_type} under the namespace {namespace!r}")
        repo_id = f"{namespace}/{name}"
        url = self._repo_url(repo_type, repo_id)
        if (repo_type, repo_id) in self._repos:
            # HfApi(create_repo, exist_ok=True) reads "url" from this 409 body.
            raise HubError(409, f"You already created this {repo_type} repo", url=url)
        private = bool(body.get("private")) or body.get("visibility") == "private"
        repo = Repo(repo_type, repo_id, private, _now())
        self._repos[(repo_type, repo_id)] = repo
        # The Hub starts every repo with a commit adding .gitattributes; mirror it so file lists match.
        self._new_commit(repo, "main", {".gitattributes": Blob(DEFAULT_GITATTRIBUTES.encode(), False)},
                         "initial commit", "", req.user)
        return _json({"url": url, "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]})

    @staticmethod
    def _validate_yaml(req: Request) -> Response:
        if errors := card_metadata_errors(str(req.json().get("content", ""))):
            if req.headers.get("Accept") == "text/plain":  # RepoCard.validate asks for the messages alone
                return Response(400, "\n".join(errors).encode(), {"Content-Type": "text/plain; charset=utf-8"})
            return _json({"errors": [{"message": message} for message in errors]}, 400)
        return _json({"errors": [], "warnings": []})

    # ----------------------------------------------------------------------------- reads
    def _repo_info(self, req: Request, repo_type: str, repo_id: str, rev: str, _: str = "") -> Response:
        repo = self._get_repo(req, repo_type, repo_id)
        commit = self._resolve_rev(repo, rev)
        blobs = req.flag("blobs")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=blob.size, blobId=blob.oid)
                if blob.lfs:
                    sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": len(blob.pointer)}
            siblings.append(sibling)
        return _json({
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id, "author": repo.namespace,
            "sha": commit.id, "lastModified": _iso(commit.date), "createdAt": _iso(repo.created_at),
            "private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
            "tags": [], "siblings": siblings, "usedStorage": sum(b.size for b in commit.files.values()),
        })

    def _refs(self, req: Request, repo_type: str, repo_id: str, *_: str) -> Response:
        repo = self._get_repo(req, repo_type, repo_id)

        def refs(kind: str, mapping: dict[str, str]) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in sorted(mapping.items())]

        return _json({"branches": refs("heads", repo.branches), "tags": refs("tags", repo.tags),
                      "converts": [], "pullRequests": []})

    def _list_commits(self, req: Request, repo_type: str, repo_id: str, rev: str, _: str = "") -> Response:
        repo = self._get_repo(req, repo_type, repo_id)
        return _json([
            {"id": c.id, "title": c.title, "message": c.message, "date": _iso(c.date),
             "authors": [{"user": c.author, "avatar": None}]}
            for c in self._history(repo, self._resolve_rev(repo, rev))
        ])

    def _last_commit(self, repo: Repo, commit: Commit, path: str, is_dir: bool) -> Commit:
        """The commit that last changed ``path``: walk back while its content stays identical."""
        def key(c: Commit) -> str | None:
            blob = c.files.get(path)
            return _folder_digest(c.files, path) if is_dir else (blob.oid if blob else None)

        wanted, last = key(commit), commit
        for older in self._history(repo, commit):
            if key(older) != wanted:
                break
            last = older
        return last

    def _entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
        """A tree / paths-info entry, in the shape of huggingface_hub's RepoFile / RepoFolder."""
        blob = commit.files.get(path)
        entry: dict[str, Any]
        if blob is not None:
            entry = {"type": "file", "oid": blob.oid, "size": blob.size, "path": path}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": len(blob.pointer)}
        else:
            entry = {"type": "directory", "oid": _folder_digest(commit.files, path), "size": 0, "path": path}
        if expand:
            last = self._last_commit(repo, commit, path, blob is None)
            entry["lastCommit"] = {"id": last.id, "title": last.title, "date": _iso(last.date)}
        return entry

    @staticmethod
    def _children(files: Mapping[str, Blob], folder: str, recursive: bool) -> list[tuple[str, bool]]:
        """(path, is_dir) entries under ``folder``, directories first then files, each sorted by path."""
        prefix = folder + "/" if folder else ""
        found: dict[str, bool] = {}
        for path in (p for p in files if p.startswith(prefix)):
            parts = path[len(prefix):].split("/")
            for depth in range(1, len(parts) + 1) if recursive else [1]:
                found[prefix + "/".join(parts[:depth])] = depth < len(parts)
        return sorted(found.items(), key=lambda item: (not item[1], item[0]))

    def _tree(self, req: Request, repo_type: str, repo_id: str, rev: str, folder: str) -> Response:
        repo = self._get_repo(req, repo_type, repo_id)
        commit = self._resolve_rev(repo, rev)
        if folder and (folder in commit.files or _folder_digest(commit.files, folder) is None):
            raise _entry_not_found(folder)
        expand = req.flag("expand")
        children = self._children(commit.files, folder, req.flag("recursive"))
        # Cursor pagination through the Link header, as huggingface_hub's paginate() follows it.
        page_size = self.tree_expand_page_size if expand else self.tree_page_size
        start = int(req.param("cursor", "0") or 0)
        page = children[start:start + page_size]
        headers = {}
        if start + page_size < len(children):
            query = {k: v[0] for k, v in req.query.items()} | {"cursor": str(start + page_size)}
            headers["Link"] = f'<{self.url}{urlsplit(req.path).path}?{urlencode(query)}>; rel="next"'
        return _json([self._entry(repo, commit, path, expand) for path, _ in page], headers=headers)

    def _paths_info(self, req: Request, repo_type: str, repo_id: str, rev: str, _: str = "") -> Response:
        repo = self._get_repo(req, repo_type, repo_id)
        commit = self._resolve_rev(repo, rev)
        form = parse_qs(req.body.decode(), keep_blank_values=True)  # form-encoded, "paths" repeated
        expand = (form.get("expand") or ["false"])[0].lower() in ("1", "true")
        entries, seen = [], set()
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in seen or not (path in commit.files or _folder_digest(commit.files, path)):
                continue  # the Hub silently omits paths that do not exist
            seen.add(path)
            entries.append(self._entry(repo, commit, path, expand))
        return _json(entries)

    def _resolve(self, req: Request, repo_type: str, repo_id: str, rev: str, path: str) -> Response:
        repo = self._get_repo(req, repo_type, repo_id)
        commit = self._resolve_rev(repo, rev)
        blob = commit.files.get(path)
        if blob is None:
            raise _entry_not_found(path)
        headers = {
            "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
            "X-Repo-Commit": commit.id, "ETag": f'"{blob.etag}"',
        }
        if blob.lfs:
            # hf_hub_download prefers these over ETag/Content-Length (on the Hub they describe the
            # CDN object behind a 302; here the content is served directly).
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)})
        range_header = req.headers.get("Range") or req.headers.get("range")
        if not range_header:
            return Response(200, blob.data, headers)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
        size = blob.size
        if match is None or match.groups() == ("", ""):
            raise HubError(400, f"Unsupported Range header: {range_header}")
        first, last = match.groups()
        start, end = (int(first), int(last) if last else size - 1) if first else (max(size - int(last), 0), size - 1)
        end = min(end, size - 1)
        if start >= size or start > end:
            return Response(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Response(206, blob.data[start:end + 1], headers)

    # ----------------------------------------------------------------------------- writes
    def _ref_change(self, req: Request, repo_type: str, repo_id: str, kind: str, name: str) -> Response:
        """create_tag (POST tag/{rev}, body {"tag"}), delete_tag, create_branch, delete_branch."""
        repo = self._get_repo(req, repo_type, repo_id, write=True)
        refs = repo.tags if kind == "tag" else repo.branches
        if req.method == "DELETE":
            if name not in refs:
                raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
            if kind == "branch" and name == "main":
                raise HubError(403, "Cannot delete the main branch")
            del refs[name]
            return _json({})
        body = req.json()
        if kind == "tag":
            new, target = str(body.get("tag", "")), self._resolve_rev(repo, name)
        else:
            new, target = name, self._resolve_rev(repo, str(body.get("startingPoint") or "main"))
        if not re.fullmatch(r"[\w.][\w./-]*", new) or ".." in new or new.endswith((".", "/", ".lock")):
            raise HubError(400, f"Invalid {kind} name: {new!r}")
        if new in refs:
            raise HubError(409, f"{kind.capitalize()} {new!r} already exists")
        refs[new] = target.id
        return _json({"name": new, "ref": f"refs/{'tags' if kind == 'tag' else 'heads'}/{new}",
                      "targetCommit": target.id})

    def _lfs_tracked(self, files: Mapping[str, Blob], path: str) -> bool:
        attributes = files.get(".gitattributes")
        text = attributes.data.decode(errors="replace") if attributes else ""
        for line in text.splitlines():
            pattern, *attrs = line.split()
            if "filter=lfs" in attrs:
                target = path if "/" in pattern else path.rsplit("/", 1)[-1]
                if fnmatch.fnmatchcase(target, pattern.lstrip("/")):
                    return True
        return False

    def _needs_lfs(self, files: Mapping[str, Blob], path: str, size: int, sample: bytes) -> bool:
        """The Hub's rule: big files, binary-looking files and .gitattributes LFS patterns go to LFS."""
        return size >= self.lfs_threshold or b"\0" in sample[:512] or self._lfs_tracked(files, path)

    def _branch_head(self, repo: Repo, rev: str) -> tuple[str, Commit]:
        branch = rev[len("refs/heads/"):] if rev.startswith("refs/heads/") else rev
        if branch not in repo.branches:  # commits (and uploads) only go to branches, not tags or shas
            raise HubError(404, f"Invalid rev id: {rev} (not a branch)", "RevisionNotFound")
        return branch, repo.commits[repo.branches[branch]]

    def _preupload(self, req: Request, repo_type: str, repo_id: str, rev: str, _: str = "") -> Response:
        repo = self._get_repo(req, repo_type, repo_id, write=True)
        _, head = self._branch_head(repo, rev)
        result = []
        for item in req.json().get("files", []):
            path = _check_path(str(item.get("path", "")))
            sample = base64.b64decode(item.get("sample", ""))
            existing = head.files.get(path)
            mode = "lfs" if self._needs_lfs(head.files, path, int(item.get("size", 0)), sample) else "regular"
            # "oid" lets the client skip unchanged files: sha256 for LFS content, git blob oid otherwise.
            result.append({"path": path, "uploadMode": mode, "shouldIgnore": False,
                           "oid": existing.etag if existing else None})
        return _json({"files": result, "commitOid": head.id})

    def _commit(self, req: Request, repo_type: str, repo_id: str, rev: str, _: str = "") -> Response:
        repo = self._get_repo(req, repo_type, repo_id, write=True)
        if req.flag("create_pr"):
            raise HubError(400, "create_pr is not supported by the test HubServer")
        branch, head = self._branch_head(repo, rev)
        try:
            lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        except ValueError as err:
            raise HubError(400, f"Invalid NDJSON commit payload: {err}") from err
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The first line of a commit payload must be the header")
        header = lines[0].get("value") or {}
        summary = str(header.get("summary") or "").strip()
        if not summary:
            raise HubError(400, "Commit summary (title) must not be empty")
        parent = header.get("parentCommit")
        if parent is not None and parent != head.id:
            raise HubError(412, f"Precondition failed: parentCommit {parent} is not the head of branch "
                                f"{branch!r} (head is {head.id}); a commit happened since, refresh and retry")
        files = dict(head.files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value") or {}
            path = str(value.get("path", "")).strip("/") if key == "deletedFolder" else str(value.get("path", ""))
            if key == "file":
                raw = str(value.get("content", ""))
                data = base64.b64decode(raw) if value.get("encoding") == "base64" else raw.encode()
                if len(data) >= self.lfs_threshold or b"\0" in data[:512]:
                    raise HubError(400, f"{path!r} must be uploaded with LFS (large or binary file)")
                if path == "README.md" and (errors := card_metadata_errors(data.decode(errors="replace"))):
                    # The Hub checks the card at commit time too, whatever validate-yaml said.
                    raise HubError(400, "Invalid metadata in README.md: " + "; ".join(errors))  # one line: a header too
                files[_check_path(path)] = Blob(data, lfs=False)
            elif key == "lfsFile":
                oid = str(value.get("oid", ""))
                stored = repo.lfs_objects.get(oid)
                if stored is None:
                    raise HubError(400, f"LFS object {oid} for {path!r} was never uploaded to {repo_id}")
                if value.get("size") is not None and int(value["size"]) != len(stored):
                    raise HubError(400, f"Size mismatch for LFS object {oid} ({value['size']} != {len(stored)})")
                files[_check_path(path)] = Blob(stored, lfs=True)
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            elif key == "deletedFolder":
                doomed = [p for p in files if p.startswith(path + "/")]
                if not doomed:
                    raise HubError(404, f"A file with this name doesn't exist: {path}/", "EntryNotFound")
                for p in doomed:
                    del files[p]
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        commit = self._new_commit(repo, branch, files, summary, str(header.get("description") or ""),
                                  req.user or "")
        return _json({"success": True, "commitOid": commit.id, "hookOutput": "",
                      "commitUrl": f"{self._repo_url(repo_type, repo_id)}/commit/{commit.id}"})

    # ----------------------------------------------------------------------------- git LFS
    def _sign(self, repo_type: str, repo_id: str, oid: str, size: int) -> str:
        return hmac.new(self._secret, f"{repo_type}/{repo_id}/{oid}/{size}".encode(), "sha256").hexdigest()

    def _route_lfs(self, req: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        if rest == ["batch"] and req.method == "POST":
            return self._lfs_batch(req, repo_type, repo_id)
        if rest == ["verify"] and req.method == "POST":
            repo = self._get_repo(req, repo_type, repo_id, write=True)
            body = req.json()
            stored = repo.lfs_objects.get(str(body.get("oid")))
            if stored is None or len(stored) != body.get("size"):
                raise HubError(404, f"LFS object {body.get('oid')} not found (or wrong size)")
            return _json({"success": True})
        if len(rest) == 2 and req.method == "PUT":
            return self._lfs_put(req, repo_type, repo_id, rest[0], rest[1])
        raise self._unknown(req)

    def _lfs_batch(self, req: Request, repo_type: str, repo_id: str) -> Response:
        repo = self._get_repo(req, repo_type, repo_id, write=True)
        body = req.json()
        if body.get("operation") != "upload":
            raise HubError(400, "Only the LFS 'upload' operation is supported")
        if "basic" not in body.get("transfers", ["basic"]):
            raise HubError(400, "Only the 'basic' LFS transfer is supported")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not SHA256_OID.fullmatch(oid) or not isinstance(size, int) or size < 0:
                objects.append({"oid": str(oid), "size": size if isinstance(size, int) else -1,
                                "error": {"code": 422, "message": "Invalid oid or size"}})
            elif oid in repo.lfs_objects:
                objects.append({"oid": oid, "size": size})  # no actions: client skips the upload
            else:
                base = f"{self._repo_url(repo_type, repo_id)}.git/info/lfs/objects"
                sig = self._sign(repo_type, repo_id, oid, size)
                # No "chunk_size" in the header: that would switch huggingface_hub to multipart.
                objects.append({"oid": oid, "size": size, "authenticated": True, "actions": {
                    "upload": {"href": f"{base}/{oid}/{size}?sig={sig}", "header": {}},
                    "verify": {"href": f"{base}/verify", "header": {}},
                }})
        return Response(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                        {"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_put(self, req: Request, repo_type: str, repo_id: str, oid: str, size_text: str) -> Response:
        # Like an S3 presigned URL, the upload URL itself is the credential (no Authorization header).
        size = int(size_text) if size_text.isdigit() else -1
        if not hmac.compare_digest(req.param("sig"), self._sign(repo_type, repo_id, oid, size)):
            raise HubError(403, "Invalid or missing signature on LFS upload URL")
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _repo_not_found()
        actual = hashlib.sha256(req.body).hexdigest()
        if len(req.body) != size or actual != oid:
            raise HubError(400, f"Uploaded content does not match the LFS object: expected sha256 {oid} and "
                                f"size {size}, got sha256 {actual} and size {len(req.body)}")
        repo.lfs_objects[oid] = req.body
        return Response(200)


class _Handler(BaseHTTPRequestHandler):
    """Adapts http.server to :meth:`HubServer.handle`. HTTP/1.1 so httpx can keep connections alive."""

    protocol_version = "HTTP/1.1"
    server_version = "HubServer/1.0"

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def setup(self) -> None:
        super().setup()
        self.server.hub._connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.hub._connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # per-request lines would drown test output; unknown routes and crashes are printed instead

    def _read_body(self) -> bytes:
        # httpx streams file uploads (the LFS PUT) with chunked encoding when it can't tell the size.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _credential(self) -> str | None:
        """The token the request carries, if any."""
        auth = self.headers.get("Authorization", "")
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() == "basic":  # git clients send the token as the Basic password
            credential = base64.b64decode(credential).decode(errors="replace").partition(":")[2]
        return credential.strip() if auth else None

    def _serve(self) -> None:
        hub: HubServer = self.server.hub  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        try:
            req = Request(self.command, self.path, [unquote(s) for s in split.path.split("/")[1:]],
                          parse_qs(split.query, keep_blank_values=True), self.headers, self._read_body(),
                          None)
            req.token = self._credential()
            req.user = hub.tokens.get(req.token) if req.token else None
            resp = hub._lose_answer(req, hub.handle(req))
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            resp = _json({"error": err.message, **err.extra}, err.status, headers)
        except Exception:  # a bug in the server: make it loud, and still answer the client
            traceback.print_exc()
            resp = _json({"error": "Internal error in the test HubServer"}, 500)
        hub.request_log.append(LoggedRequest(self.command, self.path, resp.status))
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)


# Settings that would make a client use a real token, go offline, or share a cache with the user.
_CLEARED_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
                "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_XET_CACHE", "HF_TOKEN_PATH")


def client_env(url: str, home: Path, token: str | None = None) -> dict[str, str]:
    """Environment for a *subprocess* using huggingface_hub/datasets against ``url`` (set before import).

    Starts from ``os.environ`` minus any token/offline settings, and keeps every cache under ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
    env.update({
        "HF_ENDPOINT": url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HOME": str(home / "hf_home"),
        "HF_DATASETS_CACHE": str(home / "datasets_cache"), "HF_HUB_ETAG_TIMEOUT": "10",
    })
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def configure_client_env(monkeypatch: pytest.MonkeyPatch, url: str, home: Path, token: str | None = None) -> None:
    """Point the already-imported huggingface_hub and datasets of *this* process at ``url``.

    Sets the same environment as :func:`client_env` (for code that reads it lazily and for
    subprocesses) and patches the constants those libraries computed from it at import time."""
    import datasets.config as ds_config
    from huggingface_hub import HfFileSystem, constants

    for name in _CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in client_env(url, home, token).items():
        if name.startswith("HF_"):
            monkeypatch.setenv(name, value)
    hf_home, ds_cache = home / "hf_home", home / "datasets_cache"
    for attr, setting in {
        "ENDPOINT": url, "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_DISABLE_XET": True, "HF_HUB_DISABLE_TELEMETRY": True, "HF_HUB_OFFLINE": False,
        "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HUGGINGFACE_HUB_CACHE": str(hf_home / "hub"),
        "HF_ASSETS_CACHE": str(hf_home / "assets"), "HF_XET_CACHE": str(hf_home / "xet"),
        "HF_TOKEN_PATH": str(hf_home / "token"), "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
    }.items():
        monkeypatch.setattr(constants, attr, setting)
    for attr, setting in {
        "HF_ENDPOINT": url, "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_HUB_OFFLINE": False, "HF_CACHE_HOME": str(hf_home), "HF_DATASETS_CACHE": ds_cache,
        "HF_MODULES_CACHE": hf_home / "modules", "DOWNLOADED_DATASETS_PATH": ds_cache / "downloads",
        "EXTRACTED_DATASETS_PATH": ds_cache / "downloads" / "extracted",
    }.items():
        monkeypatch.setattr(ds_config, attr, setting)
    # fsspec caches HfFileSystem instances (endpoint, token and listings included) per process.
    HfFileSystem.clear_instance_cache()
