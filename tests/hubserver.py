"""A small Hugging Face Hub-compatible HTTP server for tests (127.0.0.1, random port).

Serves what ``huggingface_hub`` needs, with the headers the real Hub sends:

* ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` (and ``/datasets/...``):
  200 with ``X-Repo-Commit``, ``ETag: "<sha256>"``, ``Content-Length``,
  ``Accept-Ranges: bytes``; ``Range: bytes=N-[M]`` answered with 206. No ``X-Xet-Hash``
  (so plain HTTP downloads are used). Unknown file: 404 + ``X-Error-Code: EntryNotFound``
  (+ ``X-Repo-Commit``); unknown revision: 404 + ``RevisionNotFound``; unknown repo:
  401 + ``RepoNotFound`` (as the Hub answers anonymous requests).
* The write API used by ``HfApi.create_repo`` + ``create_commit``: ``POST
  /api/repos/create``, ``/api/validate-yaml``, ``/api/{type}s/{repo}/preupload/{rev}``
  (``*.safetensors``, ``*.bin``, ``*.pt``, ``*.pth`` are "lfs", as the Hub's default
  .gitattributes makes them; the rest "regular", whose content travels base64 in the
  commit), the git-LFS batch API ``POST /{repo}.git/info/lfs/objects/batch`` ("basic"
  transfer: an upload href, ``PUT`` of the whole file, whose sha256 must equal its oid,
  then a verify ``POST``) and ``/api/{type}s/{repo}/commit/{rev}`` (ndjson; an
  ``lfsFile`` item must name an uploaded oid). Not implemented: multipart LFS uploads
  (the Hub asks for them only for large files) and Xet storage (``HF_HUB_DISABLE_XET=1``).

Per test: ``server.commit(repo_id, {filename: bytes})`` makes a commit (files carried over
from the branch head) and returns its 40-hex id; ``server.tamper(...)`` swaps a file's
bytes in place (served with a consistent ETag, like a compromised repo would);
``server.cut_downloads = n`` cuts the next n GETs off after half their body (the full
Content-Length is announced); ``server.reject_uploads`` / ``server.require_token`` make
LFS uploads / all writes fail with 403 / 401; ``server.requests`` lists ``(method, path)``
of every request and ``server.ranges`` the Range headers of GETs; ``server.stop()`` shuts
it down (connections are then refused).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest

_RESOLVE = re.compile(r"^/(?:(datasets)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_API = re.compile(r"^/api/(models|datasets)/([^/]+/[^/]+)/(preupload|commit)/([^/?]+)$")
_LFS_BATCH = re.compile(r"^/(?:datasets/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$")
_LFS_OBJECT = re.compile(r"^/_lfs/([0-9a-f]{64})(/verify)?$")
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class _Repo:
    def __init__(self) -> None:
        self.commits: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, str] = {}


class HubServer:
    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.ranges: list[str] = []  # Range headers of GETs, in order
        self.cut_downloads = 0
        self.lock = threading.Lock()
        self.commit_payloads: list[list[dict]] = []
        self.lfs: dict[str, bytes] = {}  # uploaded LFS objects by sha256 oid
        self.reject_uploads = False  # answer LFS PUTs with 403 (e.g. an expired upload URL)
        self.require_token: str | None = None  # writes need "Authorization: Bearer <it>"
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    # -- configuration
    def commit(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main",
               repo_type: str = "model") -> str:
        with self.lock:
            repo = self.repos.setdefault((repo_type, repo_id), _Repo())
            parent = repo.commits.get(repo.branches.get(branch, ""), {})
            sha = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
            repo.commits[sha] = {**parent, **files}
            repo.branches[branch] = sha
            return sha

    def tamper(self, repo_id: str, filename: str, data: bytes, *, revision: str = "main",
               repo_type: str = "model") -> None:
        repo = self.repos[(repo_type, repo_id)]
        repo.commits[repo.branches.get(revision, revision)][filename] = data

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model"):
        repo = self.repos[(repo_type, repo_id)]
        return repo.commits[repo.branches.get(revision, revision)]

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.httpd.shutdown()
            self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_hub: HubServer
    # HTTP/1.0: one request per connection, so stop() really cuts clients off (no pooled
    # keep-alive connection can outlive it).
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # -- helpers
    def _send(self, code: int, body: bytes = b"", headers: dict | None = None,
              head_only: bool = False) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only and body:
            self.wfile.write(body)

    def _json(self, code: int, obj, headers: dict | None = None) -> None:
        self._send(code, json.dumps(obj).encode(),
                   {"Content-Type": "application/json", **(headers or {})})

    def _error(self, code: int, error_code: str, message: str, extra: dict | None = None,
               head_only: bool = False) -> None:
        headers = {"X-Error-Code": error_code, "X-Error-Message": message,
                   "Content-Type": "application/json", **(extra or {})}
        self._send(code, json.dumps({"error": message}).encode(), headers, head_only)

    # -- file downloads
    def _resolve(self, head_only: bool) -> None:
        hub = self.server_hub
        path = urlsplit(self.path).path
        m = _RESOLVE.match(path)
        if not m:
            return self._error(404, "NotFound", "not found", head_only=head_only)
        repo_type = "dataset" if m.group(1) else "model"
        repo_id, revision, filename = m.group(2), unquote(m.group(3)), unquote(m.group(4))
        repo = hub.repos.get((repo_type, repo_id))
        if repo is None:
            return self._error(401, "RepoNotFound", "Repository not found", head_only=head_only)
        commit = repo.branches.get(revision, revision)
        if commit not in repo.commits:
            return self._error(404, "RevisionNotFound", "Invalid rev id", head_only=head_only)
        data = repo.commits[commit].get(filename)
        if data is None:
            return self._error(404, "EntryNotFound", "Entry not found",
                               {"X-Repo-Commit": commit}, head_only=head_only)
        headers = {"X-Repo-Commit": commit,
                   "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                   "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start, end, code = 0, len(data) - 1, 200
        rng = self.headers.get("Range")
        if rng and not head_only:
            rm = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if rm:
                start = int(rm.group(1))
                end = int(rm.group(2)) if rm.group(2) else len(data) - 1
                code = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        body = data[start:end + 1]
        if head_only:
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        with hub.lock:
            cut = hub.cut_downloads > 0
            if cut:
                hub.cut_downloads -= 1
        if cut:  # announce the full length, send half, hang up
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(code, body, headers)

    def do_HEAD(self) -> None:
        self.server_hub.requests.append(("HEAD", self.path))
        self._resolve(head_only=True)

    def do_GET(self) -> None:
        self.server_hub.requests.append(("GET", self.path))
        if self.headers.get("Range"):
            self.server_hub.ranges.append(self.headers["Range"])
        self._resolve(head_only=False)

    # -- write API
    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_PUT(self) -> None:
        hub = self.server_hub
        hub.requests.append(("PUT", self.path))
        data = self._body()
        m = _LFS_OBJECT.match(urlsplit(self.path).path)
        if not m or m.group(2):
            return self._error(404, "NotFound", f"no route {self.path}")
        if hub.reject_uploads:
            return self._error(403, "Forbidden", "upload URL expired")
        if hashlib.sha256(data).hexdigest() != m.group(1):
            return self._error(400, "BadRequest", "content does not match its oid")
        with hub.lock:
            hub.lfs[m.group(1)] = data
        self._send(200)

    def _lfs_batch(self, raw: bytes) -> None:
        hub = self.server_hub
        req = json.loads(raw)
        if req.get("operation") != "upload" or req.get("hash_algo", "sha256") != "sha256":
            return self._error(400, "BadRequest", "only sha256 uploads are supported")
        objects = []
        for o in req["objects"]:
            obj = {"oid": o["oid"], "size": o["size"], "authenticated": True}
            if o["oid"] not in hub.lfs:
                obj["actions"] = {
                    "upload": {"href": f"{hub.url}/_lfs/{o['oid']}"},
                    "verify": {"href": f"{hub.url}/_lfs/{o['oid']}/verify"},
                }
            objects.append(obj)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   {"Content-Type": "application/vnd.git-lfs+json"})

    def do_POST(self) -> None:
        hub = self.server_hub
        hub.requests.append(("POST", self.path))
        raw = self._body()
        path = urlsplit(self.path).path
        if hub.require_token and self.headers.get("Authorization") != \
                f"Bearer {hub.require_token}":
            return self._error(401, "Unauthorized", "Invalid username or password.")
        if _LFS_BATCH.match(path):
            return self._lfs_batch(raw)
        m = _LFS_OBJECT.match(path)
        if m and m.group(2):
            req = json.loads(raw)
            ok = hub.lfs.get(m.group(1))
            if ok is None or len(ok) != req.get("size"):
                return self._error(404, "NotFound", "object not uploaded")
            return self._json(200, {"ok": True})
        if path == "/api/repos/create":
            req = json.loads(raw or b"{}")
            repo_id = f"{req.get('organization')}/{req['name']}"
            key = (req.get("type") or "model", repo_id)
            if key in hub.repos:  # the Hub's 409 names the existing repo's url
                return self._send(409, json.dumps({
                    "error": "You already created this model repo",
                    "url": f"{hub.url}/{repo_id}"}).encode(),
                    {"Content-Type": "application/json", "X-Error-Code": "RepoExists"})
            hub.commit(repo_id, {".gitattributes": b"*.safetensors filter=lfs diff=lfs\n"},
                       repo_type=key[0])
            return self._json(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})
        if path == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        m = _API.match(path)
        if not m:
            return self._error(404, "NotFound", f"no route {path}")
        repo_type = m.group(1)[:-1]
        repo_id, action, revision = m.group(2), m.group(3), unquote(m.group(4))
        repo = hub.repos.get((repo_type, repo_id))
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        if action == "preupload":
            req = json.loads(raw)
            return self._json(200, {"files": [
                {"path": f["path"], "shouldIgnore": False, "oid": None,
                 "uploadMode": "lfs" if f["path"].endswith(_LFS_SUFFIXES) else "regular"}
                for f in req["files"]]})
        items = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
        hub.commit_payloads.append(items)
        files = {}
        for it in items:
            if it["key"] == "file":
                v = it["value"]
                files[v["path"]] = base64.b64decode(v["content"])
            elif it["key"] == "lfsFile":
                v = it["value"]
                if v.get("algo") != "sha256" or v.get("oid") not in hub.lfs:
                    return self._error(400, "BadRequest", f"LFS object of {v['path']} missing")
                files[v["path"]] = hub.lfs[v["oid"]]
            elif it["key"] != "header":
                return self._error(400, "BadRequest", f"unsupported commit item {it['key']}")
        sha = hub.commit(repo_id, files, branch=revision, repo_type=repo_type)
        return self._json(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{sha}",
                                "commitOid": sha, "pullRequestUrl": None})


@pytest.fixture
def hub_server():
    server = HubServer()
    yield server
    server.stop()
