"""A Hub-compatible HTTP server on 127.0.0.1 for push/pull round trips in tests.

No package on PyPI accepts uploads from `huggingface_hub` (olah is a read-only mirror), so this
module implements, at the protocol level, the routes the `huggingface_hub` 2.x client really calls
for `create_repo`, `create_commit`/`upload_folder` (regular files inline, large files through the
git-LFS "basic" transfer), `model_info`, `list_repo_tree` and `hf_hub_download`:

    POST /api/repos/create                         create a repository (409 if it exists)
    POST /api/validate-yaml                        check a README.md's YAML metadata
    POST /api/{type}s/{repo}/preupload/{rev}       "regular" or "lfs" upload mode per file
    POST /{repo}.git/info/lfs/objects/batch        LFS upload instructions (PUT href + verify)
    PUT  /lfs-upload/{oid}/{ticket}                the LFS object's bytes (sha256-checked)
    POST /{repo}.git/info/lfs/objects/verify       LFS object stored with that size?
    POST /api/{type}s/{repo}/commit/{rev}          NDJSON commit: header, file, lfsFile, deleted*
    GET  /api/{type}s/{repo}[/revision/{rev}]      repository info with siblings and sha
    GET  /api/{type}s/{repo}/tree/{rev}[/{path}]   file listing
    HEAD/GET /{repo}/resolve/{rev}/{path}          file bytes with X-Repo-Commit, ETag,
                                                   X-Linked-Etag/X-Linked-Size for LFS files
    GET  /api/whoami-v2, GET /api/agent-harnesses  account of the token, empty agent registry

Errors carry the Hub's `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`) so
the client raises its typed errors. Tokens: every write needs a valid token; a request with an
unknown token gets 401 "Invalid credentials in Authorization header" on any route, like the Hub.
A repository's `private` flag is recorded and reported, not enforced (reads need no token); each
repository has the single branch `main`; pull requests are refused (400).
The client must run with `HF_HUB_DISABLE_XET=1` (this server offers no Xet storage).

Example:
    >>> with LocalHub(tokens={"hf_write": "alice"}) as hub:  # doctest: +SKIP
    ...     os.environ["HF_ENDPOINT"] = hub.endpoint  # in the client process, before importing huggingface_hub
    ...     HfApi(token="hf_write").create_repo("alice/tiny")
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# Paths stored through git-LFS, as in the `.gitattributes` the Hub writes into new repositories.
LFS_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*.npy", "*.npz")
LFS_MIN_SIZE = 10 * 1024 * 1024
MAX_BODY_BYTES = 1024**3
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
GITATTRIBUTES = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS).encode()


class HubError(Exception):
    """An HTTP error answer: status, the Hub's `X-Error-Code` (if any), a message, extra body fields.

    Example:
        >>> HubError(404, "no such file", error_code="EntryNotFound").status
        404
    """

    def __init__(self, status: int, message: str, error_code: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.extra = extra or {}


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob, the `oid`/`ETag` the Hub reports for a regular file.

    Example:
        >>> git_blob_sha1(b"")
        'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391'
    """
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    """One file of a commit: `content` inline for regular files, `lfs_oid` (sha256) for LFS files.

    Example:
        >>> StoredFile(size=2, content=b"{}").oid
        '9e26dfeeb6e641a33dae4961196235bdb965b21b'
    """

    size: int
    content: bytes | None = None
    lfs_oid: str | None = None

    @property
    def oid(self) -> str:
        return self.lfs_oid if self.lfs_oid is not None else git_blob_sha1(self.content or b"")


@dataclass(frozen=True)
class Commit:
    """A commit: its id, title, date and the full file tree (path -> file).

    Example:
        >>> Commit(oid="0" * 40, title="init", date="2026-01-01T00:00:00.000Z", files={}).files
        {}
    """

    oid: str
    title: str
    date: str
    files: dict[str, StoredFile]


@dataclass
class Repository:
    """A repository: its type, visibility flag and its commits on `main` (newest last).

    Example:
        >>> Repository(repo_type="model").head is None
        True
    """

    repo_type: str
    private: bool = False
    created_at: str = field(default_factory=lambda: _now())
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit | None:
        return self.commits[-1] if self.commits else None

    def commit_at(self, revision: str) -> Commit:
        """The commit a revision names: `main`, or a (full) commit id."""
        if revision == "main" and self.head is not None:
            return self.head
        for commit in self.commits:
            if commit.oid == revision:
                return commit
        raise HubError(404, f"Invalid rev id: {revision}", error_code="RevisionNotFound")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Answer:
    """What a route returns: status, headers, body (JSON-encoded when not bytes).

    Example:
        >>> Answer(200, {"errors": []}).status
        200
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class HubState:
    """Everything the server stores, behind one lock: repositories, LFS objects, upload tickets.

    Example:
        >>> state = HubState(tokens={"hf_ok": "alice"})
        >>> state.user_for("Bearer hf_ok")
        'alice'
    """

    def __init__(self, tokens: dict[str, str]):
        self.tokens = dict(tokens)
        self.repos: dict[str, Repository] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.upload_tickets: dict[str, tuple[str, int]] = {}
        self.lock = threading.Lock()

    def user_for(self, authorization: str | None) -> str | None:
        """The user of a `Bearer` token; None without a token; 401 for an unknown token."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            raise HubError(401, INVALID_CREDENTIALS)
        return self.tokens[token]

    def repository(self, repo_type: str, repo_id: str) -> Repository:
        repo = self.repos.get(repo_id)
        if repo is None or repo.repo_type != repo_type:
            raise HubError(404, f"Repository {repo_id} not found", error_code="RepoNotFound")
        return repo

    def add_commit(self, repo: Repository, title: str, files: dict[str, StoredFile]) -> Commit:
        parent = repo.head.oid if repo.head is not None else ""
        listing = "\n".join(f"{path} {stored.oid}" for path, stored in sorted(files.items()))
        date = _now()
        oid = hashlib.sha1(f"{parent}\n{title}\n{date}\n{listing}".encode()).hexdigest()
        commit = Commit(oid=oid, title=title, date=date, files=files)
        repo.commits.append(commit)
        return commit


def _repo_type_from_segment(segment: str) -> str:
    repo_type = segment.removesuffix("s")
    if repo_type not in ("model", "dataset", "space"):
        raise HubError(404, f"Unknown repository type {segment!r}")
    return repo_type


def _require_user(user: str | None) -> str:
    if user is None:
        raise HubError(401, "This route needs a write token (Authorization: Bearer ...)")
    return user


def _require_namespace(user: str, repo_id: str) -> None:
    namespace = repo_id.split("/")[0]
    if namespace != user:
        raise HubError(403, f"You don't have the rights to write to {namespace}")


def _path_info(path: str, stored: StoredFile, commit: Commit, expand: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "type": "file",
        "path": path,
        "size": stored.size,
        "oid": git_blob_sha1(stored.content or b""),
    }
    if stored.lfs_oid is not None:
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{stored.lfs_oid}\nsize {stored.size}\n"
        info["oid"] = git_blob_sha1(pointer.encode())
        info["lfs"] = {"oid": stored.lfs_oid, "size": stored.size, "pointerSize": len(pointer)}
    if expand:
        info["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
    return info


class HubRoutes:
    """The route table: (method, regex) -> handler(state, endpoint, user, match, query, body).

    Example:
        >>> routes = HubRoutes()
        >>> routes.find("POST", "/api/repos/create") is not None
        True
    """

    def __init__(self) -> None:
        repo = r"(?P<repo>[\w.-]+/[\w.-]+)"
        typed = r"/api/(?P<type>models|datasets|spaces)/" + repo
        self.table: list[tuple[str, re.Pattern[str], Callable[..., Answer]]] = [
            ("POST", re.compile(r"/api/repos/create"), self.create_repo),
            ("POST", re.compile(r"/api/validate-yaml"), self.validate_yaml),
            ("GET", re.compile(r"/api/whoami-v2"), self.whoami),
            ("GET", re.compile(r"/api/agent-harnesses"), self.agent_harnesses),
            ("POST", re.compile(typed + r"/preupload/(?P<rev>[^/]+)"), self.preupload),
            ("POST", re.compile(typed + r"/commit/(?P<rev>[^/]+)"), self.commit),
            ("GET", re.compile(typed + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?"), self.tree),
            ("GET", re.compile(typed + r"(?:/revision/(?P<rev>[^/]+))?"), self.repo_info),
            (
                "POST",
                re.compile(r"/(?:(?P<type>datasets|spaces)/)?" + repo + r"\.git/info/lfs/objects/batch"),
                self.lfs_batch,
            ),
            (
                "POST",
                re.compile(r"/(?:(?P<type>datasets|spaces)/)?" + repo + r"\.git/info/lfs/objects/verify"),
                self.lfs_verify,
            ),
            ("PUT", re.compile(r"/lfs-upload/(?P<oid>[0-9a-f]{64})/(?P<ticket>[\w-]+)"), self.lfs_upload),
            (
                "GET",
                re.compile(r"/(?:(?P<type>datasets|spaces)/)?" + repo + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
                self.resolve,
            ),
            (
                "HEAD",
                re.compile(r"/(?:(?P<type>datasets|spaces)/)?" + repo + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
                self.resolve,
            ),
        ]

    def find(self, method: str, path: str) -> tuple[Callable[..., Answer], re.Match[str]] | None:
        """The handler and match of the first route that fits the method and the whole path."""
        for route_method, pattern, handler in self.table:
            match = pattern.fullmatch(path) if route_method == method else None
            if match:
                return handler, match
        return None

    # -- repositories -------------------------------------------------------------------------
    def create_repo(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        user = _require_user(user)
        payload = json.loads(body or b"{}")
        if not isinstance(payload.get("name"), str) or not payload["name"]:
            raise HubError(400, "Field 'name' is required")
        organization = payload.get("organization") or user
        repo_id = f"{organization}/{payload['name']}"
        repo_type = payload.get("type") or "model"
        _require_namespace(user, repo_id)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{endpoint}/{prefix}{repo_id}"
        with state.lock:
            if repo_id in state.repos:
                raise HubError(409, "You already created this model repo", extra={"url": url})
            repo = Repository(repo_type=repo_type, private=payload.get("visibility") == "private")
            state.repos[repo_id] = repo
            state.add_commit(repo, "initial commit", {".gitattributes": StoredFile(len(GITATTRIBUTES), GITATTRIBUTES)})
        return Answer(200, {"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        content = json.loads(body or b"{}").get("content", "")
        front_matter = re.match(r"\A\s*---\n(.*?)\n---", content, flags=re.S)
        if front_matter is None:
            return Answer(
                200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata in repo card"}]}
            )
        try:
            metadata = yaml.safe_load(front_matter.group(1))
        except yaml.YAMLError as error:
            return Answer(400, {"errors": [{"message": f"YAML error: {error}"}], "warnings": []})
        if metadata is not None and not isinstance(metadata, dict):
            return Answer(400, {"errors": [{"message": "YAML metadata must be a mapping"}], "warnings": []})
        return Answer(200, {"errors": [], "warnings": []})

    def whoami(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        user = _require_user(user)
        return Answer(
            200, {"type": "user", "name": user, "fullname": user, "orgs": [], "auth": {"type": "access_token"}}
        )

    def agent_harnesses(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        return Answer(200, {"standardEnvVars": [], "harnesses": {}})

    def repo_info(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        repo_id = match["repo"]
        with state.lock:
            repo = state.repository(_repo_type_from_segment(match["type"]), repo_id)
            commit = repo.commit_at(unquote(match["rev"] or "main"))
            info = {
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": commit.oid,
                "lastModified": commit.date,
                "createdAt": repo.created_at,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            }
        return Answer(200, info)

    def tree(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        folder = unquote(match["path"] or "").strip("/")
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        expand = query.get("expand", ["false"])[0].lower() == "true"
        with state.lock:
            repo = state.repository(_repo_type_from_segment(match["type"]), match["repo"])
            commit = repo.commit_at(unquote(match["rev"]))
        prefix = f"{folder}/" if folder else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, stored in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):
                if depth > 1 and not recursive:
                    break
                sub_folder = prefix + "/".join(parts[:depth])
                entries.setdefault(
                    sub_folder,
                    {"type": "directory", "path": sub_folder, "oid": git_blob_sha1(sub_folder.encode()), "size": 0},
                )
            if len(parts) == 1 or recursive:
                entries[path] = _path_info(path, stored, commit, expand)
        if folder and not entries:
            raise HubError(404, f"{folder} does not exist on main", error_code="EntryNotFound")
        return Answer(200, list(entries.values()))

    # -- uploads ------------------------------------------------------------------------------
    def preupload(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        user = _require_user(user)
        _refuse_pull_requests(query)
        files = json.loads(body or b"{}").get("files")
        if not isinstance(files, list):
            raise HubError(400, "Field 'files' must be a list")
        with state.lock:
            repo = state.repository(_repo_type_from_segment(match["type"]), match["repo"])
            _require_namespace(user, match["repo"])
            commit = repo.commit_at(unquote(match["rev"]))
        answers = []
        for entry in files:
            path, size = entry.get("path"), entry.get("size")
            if not isinstance(path, str) or not isinstance(size, int):
                raise HubError(400, f"Each file needs a string 'path' and an integer 'size', got {entry!r}")
            lfs = size >= LFS_MIN_SIZE or any(
                fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern) for pattern in LFS_PATTERNS
            )
            remote = commit.files.get(path)
            answers.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": remote.oid if remote else None,
                }
            )
        return Answer(200, {"files": answers, "commitOid": commit.oid})

    def lfs_batch(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        user = _require_user(user)
        payload = json.loads(body or b"{}")
        if payload.get("operation") != "upload":
            raise HubError(400, f"Only the 'upload' operation is offered, got {payload.get('operation')!r}")
        repo_type = _repo_type_from_segment(match["type"] or "models")
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        objects = []
        with state.lock:
            state.repository(repo_type, match["repo"])
            _require_namespace(user, match["repo"])
            for requested in payload.get("objects", []):
                oid, size = requested.get("oid"), requested.get("size")
                if not isinstance(oid, str) or not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int):
                    objects.append(
                        {
                            "oid": str(oid),
                            "size": size if isinstance(size, int) else 0,
                            "error": {"code": 422, "message": "oid must be a sha256 hex digest and size an integer"},
                        }
                    )
                    continue
                if oid in state.lfs_objects:
                    objects.append({"oid": oid, "size": size})
                    continue
                ticket = secrets.token_hex(16)
                state.upload_tickets[ticket] = (oid, size)
                objects.append(
                    {
                        "oid": oid,
                        "size": size,
                        "authenticated": True,
                        "actions": {
                            "upload": {"href": f"{endpoint}/lfs-upload/{oid}/{ticket}", "header": {}},
                            "verify": {
                                "href": f"{endpoint}/{prefix}{match['repo']}.git/info/lfs/objects/verify",
                                "header": {},
                            },
                        },
                    }
                )
        return Answer(200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"})

    def lfs_upload(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        with state.lock:
            expected = state.upload_tickets.pop(match["ticket"], None)
        if expected is None or expected[0] != match["oid"]:
            raise HubError(403, "Unknown or used upload ticket")
        oid, size = expected
        if len(body) != size or hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"Uploaded bytes do not match oid {oid} and size {size}")
        with state.lock:
            state.lfs_objects[oid] = body
        return Answer(200, b"")

    def lfs_verify(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        payload = json.loads(body or b"{}")
        with state.lock:
            stored = state.lfs_objects.get(payload.get("oid"))
        if stored is None or len(stored) != payload.get("size"):
            raise HubError(404, f"LFS object {payload.get('oid')} of size {payload.get('size')} was not uploaded")
        return Answer(200, {"message": "verified"})

    def commit(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        user = _require_user(user)
        _refuse_pull_requests(query)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The NDJSON commit payload must start with a 'header' line")
        header = lines[0]["value"]
        with state.lock:
            repo = state.repository(_repo_type_from_segment(match["type"]), match["repo"])
            _require_namespace(user, match["repo"])
            head = repo.commit_at(unquote(match["rev"]))
            parent = header.get("parentCommit")
            if parent is not None and parent != head.oid:
                raise HubError(412, f"A commit has happened since {parent}; the head is {head.oid}")
            files = dict(head.files)
            for line_number, line in enumerate(lines[1:], start=2):
                files = _apply_operation(state, files, line, line_number)
            commit = state.add_commit(repo, header.get("summary") or "Upload", files)
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return Answer(
            200,
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{endpoint}/{prefix}{match['repo']}/commit/{commit.oid}",
                "pullRequestUrl": None,
            },
        )

    # -- downloads ----------------------------------------------------------------------------
    def resolve(self, state: HubState, endpoint: str, user: str | None, match, query, body: bytes) -> Answer:
        path = unquote(match["path"])
        with state.lock:
            repo = state.repository(_repo_type_from_segment(match["type"] or "models"), match["repo"])
            commit = repo.commit_at(unquote(match["rev"]))
            stored = commit.files.get(path)
            if stored is None:
                raise HubError(404, f"Entry not found: {path}", error_code="EntryNotFound")
            content = state.lfs_objects[stored.lfs_oid] if stored.lfs_oid is not None else stored.content or b""
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_blob_sha1(content) if stored.lfs_oid is None else stored.lfs_oid}"',
            "Accept-Ranges": "bytes",
        }
        if stored.lfs_oid is not None:
            headers.update({"X-Linked-Etag": f'"{stored.lfs_oid}"', "X-Linked-Size": str(stored.size)})
        return Answer(200, content, headers)


def _refuse_pull_requests(query: dict[str, list[str]]) -> None:
    if query.get("create_pr", ["0"])[0] not in ("0", "false", ""):
        raise HubError(400, "This local Hub has no pull requests; push to 'main' instead")


def _apply_operation(
    state: HubState, files: dict[str, StoredFile], line: dict[str, Any], line_number: int
) -> dict[str, StoredFile]:
    key, value = line.get("key"), line.get("value") or {}
    path = value.get("path")
    if not isinstance(path, str) or not path:
        raise HubError(400, f"Commit line {line_number} ({key}) has no 'path'")
    if key == "file":
        if value.get("encoding") != "base64":
            raise HubError(400, f"Commit line {line_number}: only base64 file content is accepted")
        content = base64.b64decode(value.get("content", ""), validate=True)
        files[path] = StoredFile(size=len(content), content=content)
    elif key == "lfsFile":
        oid = value.get("oid")
        stored = state.lfs_objects.get(oid)
        if stored is None:
            raise HubError(422, f"Commit line {line_number}: LFS object {oid} for {path} was never uploaded")
        if value.get("size") not in (None, len(stored)):
            raise HubError(
                422,
                f"Commit line {line_number}: size {value.get('size')} of {path} does not match the uploaded "
                f"{len(stored)} bytes",
            )
        files[path] = StoredFile(size=len(stored), lfs_oid=oid)
    elif key == "deletedFile":
        if path not in files:
            raise HubError(
                404,
                f"Commit line {line_number}: A file with this name doesn't exist: {path}",
                error_code="EntryNotFound",
            )
        del files[path]
    elif key == "deletedFolder":
        folder = path.rstrip("/") + "/"
        files = {name: stored for name, stored in files.items() if not name.startswith(folder)}
    else:
        raise HubError(400, f"Commit line {line_number}: unknown operation {key!r}")
    return files


class HubRequestHandler(BaseHTTPRequestHandler):
    """Turns HTTP requests into route calls; answers JSON errors the client understands.

    Example:
        >>> HubRequestHandler.protocol_version
        'HTTP/1.1'
    """

    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a connection may stay silent
    server: "LocalHubHTTPServer"

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are recorded in `LocalHub.requests` instead of printed."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise HubError(413, "Request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise HubError(413, "Request body too large")
        return self.rfile.read(length) if length else b""

    def _send(self, answer: Answer, head_only: bool) -> None:
        if isinstance(answer.body, bytes):
            payload, content_type = answer.body, "application/octet-stream"
        else:
            payload, content_type = json.dumps(answer.body).encode(), "application/json"
        self.send_response(answer.status)
        headers = {"Content-Type": content_type, **answer.headers, "Content-Length": str(len(payload))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head_only:
            self.wfile.write(payload)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        hub = self.server.hub
        found = hub.routes.find(self.command, url.path)
        with hub.state.lock:
            hub.requests.append(f"{self.command} {url.path}")
        try:
            body = self._read_body()
            user = hub.state.user_for(self.headers.get("Authorization"))
            if found is None:
                with hub.state.lock:
                    hub.unhandled_requests.append(f"{self.command} {url.path}")
                raise HubError(404, f"No route for {self.command} {url.path} on this local Hub")
            handler, match = found
            answer = handler(hub.state, hub.endpoint, user, match, parse_qs(url.query), body)
        except HubError as error:
            headers = {"X-Error-Message": error.message}
            if error.error_code is not None:
                headers["X-Error-Code"] = error.error_code
            answer = Answer(error.status, {"error": error.message, **error.extra}, headers)
        except (ValueError, KeyError) as error:  # malformed JSON/base64/headers from the client
            answer = Answer(400, {"error": f"Bad request: {error}"}, {"X-Error-Message": f"Bad request: {error}"})
        self._send(answer, head_only=self.command == "HEAD")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle


class LocalHubHTTPServer(ThreadingHTTPServer):
    """The threading HTTP server of a `LocalHub` (one daemon thread per connection).

    Example:
        >>> LocalHubHTTPServer.daemon_threads
        True
    """

    daemon_threads = True
    hub: "LocalHub"


class LocalHub:
    """A local Hub on 127.0.0.1 (a free port), served from a background thread.

    Args:
        tokens: valid access tokens mapped to their user names (a user writes to its own
            namespace only).

    Use it as a context manager (the server is always shut down on exit). `requests` records
    every "METHOD /path" served; `unhandled_requests` those that matched no route.

    Example:
        >>> with LocalHub(tokens={"hf_write": "org"}) as hub:  # doctest: +SKIP
        ...     print(hub.endpoint)
        http://127.0.0.1:40123
    """

    def __init__(self, tokens: dict[str, str]):
        self.state = HubState(tokens)
        self.routes = HubRoutes()
        self.requests: list[str] = []
        self.unhandled_requests: list[str] = []
        self._server: LocalHubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalHub is not running; use it as a context manager or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LocalHub":
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        self._server = LocalHubHTTPServer(("127.0.0.1", 0), HubRequestHandler)
        self._server.hub = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
            self._thread = None

    def file_bytes(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        """The stored bytes of a file at a revision (LFS content resolved)."""
        with self.state.lock:
            stored = self.state.repository("model", repo_id).commit_at(revision).files.get(path)
            if stored is None:
                raise KeyError(f"{path} is not in {repo_id}@{revision}")
            return self.state.lfs_objects[stored.lfs_oid] if stored.lfs_oid is not None else stored.content or b""

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
