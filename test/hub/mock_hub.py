#!/usr/bin/env python3
"""mock_hub — a small Hugging Face- and ModelScope-style hub for sw-fetch's tests and benchmark.

Standard library only. It serves the subset of both HTTP APIs that sw-fetch (and
huggingface_hub's snapshot_download, for the interop tests) use, from plain folders:

    ROOT/models/<org>/<name>/<files...>      model repos
    ROOT/datasets/<org>/<name>/<files...>    dataset repos

Each repo has one commit, whose id is the sha1 of its file listing (so it changes when the
files change). A repo may hold a `.mock.json` (never listed) that sets:

    "lfs":     fnmatch patterns of files stored in LFS (default: *.safetensors *.bin *.gguf *.pt
               *.pth *.parquet *.h5 *.msgpack, and any file of 10 MiB or more). LFS files are
               served by a 302 redirect to the CDN port (another origin, as on the real hub),
               with X-Linked-Etag / X-Linked-Size; plain files by a 200 with ETag = git blob sha1.
    "gated":   true: every call needs `Authorization: Bearer <one of "tokens">`; without a token
               the answer is 401, with another token 403 (X-Error-Code: GatedRepo).
    "tokens":  the tokens allowed in.
    "faults":  {path: {...}} one-shot or repeated misbehaviour of file downloads:
                 "status": 429|500|503 with "retry_after": seconds, "times": n (default 1);
                 "drop_after": bytes — send the headers of the whole file, then close the
                     connection after that many body bytes ("times" as above);
                 "corrupt": true — serve bytes that differ from the listed sha256/etag;
                 "throttle": bytes per second.
    "extra":   [{"path": ..., "content": ...}] files listed and served although no such file
               exists on disk (a path-traversal name, for instance "../../evil.txt").

HF API (models; datasets under /api/datasets/ and /datasets/):
    GET  /api/models/<org>/<name>/revision/<rev>[?blobs=true]   {"id","sha","siblings":[...]}
    GET  /api/models/<org>/<name>/tree/<rev>[?recursive=true&cursor=N]  paginated (Link: next)
    HEAD/GET /<org>/<name>/resolve/<rev>/<path>                 X-Repo-Commit, ETag, Range
    GET  (CDN port) /cdn/<sha256>?...                            Range; refuses Authorization
ModelScope API:
    GET /api/v1/models/<org>/<name>/repo/files?Revision=&Recursive=   {"Code":200,"Data":{"Files"}}
    GET /api/v1/models/<org>/<name>/repo?Revision=&FilePath=          the file (Range)
    GET /api/v1/datasets/<org>/<name>                                 {"Data":{"Id":N}}
    GET /api/v1/datasets/<id>/repo/tree?Revision=&Recursive=&PageNumber=&PageSize=
    GET /api/v1/datasets/<org>/<name>/repo?Source=SDK&Revision=&FilePath=
Test hooks:
    GET /_mock/stats   request counters and every Range start seen, as JSON
    GET /_mock/reset   forget fault counters and stats

Usage: mock_hub.py --root DIR [--host 127.0.0.1] [--port 0] [--cdn-port 0] [--port-file F]
                   [--watch-pid PID]  (exit when PID is gone, so a crashed test leaves no server)
The port file receives {"port": P, "cdn_port": C} once both sockets listen.
"""
import argparse
import fnmatch
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_LFS = ["*.safetensors", "*.bin", "*.gguf", "*.pt", "*.pth", "*.parquet", "*.h5", "*.msgpack"]
LFS_MIN_SIZE = 10 << 20
TREE_PAGE = 50          # entries per tree page, small so that pagination is exercised
REVISIONS = ("main", "master")


def git_blob_sha1(data_or_size, reader=None):
    """git's object id of a blob: sha1("blob <size>\\0" + bytes)."""
    h = hashlib.sha1()
    if reader is None:
        h.update(b"blob %d\0" % len(data_or_size))
        h.update(data_or_size)
    else:
        h.update(b"blob %d\0" % data_or_size)
        for chunk in reader:
            h.update(chunk)
    return h.hexdigest()


def file_chunks(path, size=1 << 20):
    with open(path, "rb") as f:
        while True:
            b = f.read(size)
            if not b:
                return
            yield b


class Entry:
    """One file of a repo: where its bytes come from and the ids the hub publishes."""

    def __init__(self, path, disk=None, content=None, lfs=False):
        self.path, self.disk, self.content, self.lfs = path, disk, content, lfs
        self.size = os.path.getsize(disk) if disk else len(content)
        self._sha256 = self._oid = None
        self.lock = threading.RLock()  # oid of an LFS file needs its sha256

    def chunks(self):
        return file_chunks(self.disk) if self.disk else iter([self.content])

    @property
    def sha256(self):
        with self.lock:
            if self._sha256 is None:
                h = hashlib.sha256()
                for c in self.chunks():
                    h.update(c)
                self._sha256 = h.hexdigest()
            return self._sha256

    def pointer(self):
        return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                f"size {self.size}\n").encode()

    @property
    def oid(self):
        """The git blob id: of the LFS pointer file for LFS files, of the bytes otherwise."""
        with self.lock:
            if self._oid is None:
                self._oid = (git_blob_sha1(self.pointer()) if self.lfs else
                             git_blob_sha1(self.size, self.chunks()))
            return self._oid

    @property
    def etag(self):
        return self.sha256 if self.lfs else self.oid


class Repo:
    def __init__(self, kind, repo_id, folder, numeric_id):
        self.kind, self.repo_id, self.folder, self.numeric_id = kind, repo_id, folder, numeric_id
        cfg_path = os.path.join(folder, ".mock.json")
        self.cfg = {}
        if os.path.exists(cfg_path):
            with open(cfg_path) as f:
                self.cfg = json.load(f)
        self.entries = {}
        lfs_patterns = self.cfg.get("lfs", DEFAULT_LFS)
        for d, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                disk = os.path.join(d, name)
                rel = os.path.relpath(disk, folder).replace(os.sep, "/")
                if rel == ".mock.json":
                    continue
                size = os.path.getsize(disk)
                lfs = size >= LFS_MIN_SIZE or any(fnmatch.fnmatchcase(rel, p) for p in lfs_patterns)
                self.entries[rel] = Entry(rel, disk=disk, lfs=lfs)
        for x in self.cfg.get("extra", []):
            self.entries[x["path"]] = Entry(x["path"], content=x["content"].encode(), lfs=False)
        self._commit = None

    @property
    def commit(self):
        if self._commit is None:
            h = hashlib.sha1()
            for p in sorted(self.entries):
                h.update(f"{p}\0{self.entries[p].oid}\n".encode())
            self._commit = h.hexdigest()
        return self._commit

    def revision_ok(self, rev):
        return rev in REVISIONS or rev == self.commit


class State:
    def __init__(self, root):
        self.root = root
        self.lock = threading.Lock()
        self.repos = {}
        self.fault_counts = {}
        self.stats = {}
        self.cdn_port = None
        self.reset()

    def reset(self):
        with self.lock:
            self.fault_counts = {}
            self.stats = {"requests": 0, "api": 0, "resolve": 0, "head": 0, "cdn": 0, "ms_file": 0,
                          "range_starts": [], "bytes_sent": 0, "auth_on_cdn": 0, "by_path": {}}

    def count(self, key, path=None, n=1):
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + n
            if path is not None:
                bp = self.stats["by_path"]
                bp[path] = bp.get(path, 0) + 1

    def repo(self, kind, repo_id):
        """The repo (loaded on first use, so tests may create folders after start), or None."""
        if not re.fullmatch(r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+", repo_id) or ".." in repo_id:
            return None
        folder = os.path.join(self.root, kind, *repo_id.split("/"))
        if not os.path.isdir(folder):
            return None
        cfg_path = os.path.join(folder, ".mock.json")
        cfg_text = open(cfg_path).read() if os.path.exists(cfg_path) else ""
        with self.lock:
            r = self.repos.get((kind, repo_id))
            if r is None or r.cfg_text != cfg_text:
                # New, or its .mock.json changed (tests switch faults between runs).
                number = r.numeric_id if r else 1000 + len(self.repos)
                r = Repo(kind, repo_id, folder, number)
                r.cfg_text = cfg_text
                self.repos[(kind, repo_id)] = r
            return r

    def repo_by_number(self, n):
        with self.lock:
            for r in self.repos.values():
                if r.numeric_id == n:
                    return r
        return None

    def fault(self, repo, path):
        """The fault to apply to this download of path, or None (counts 'times')."""
        f = repo.cfg.get("faults", {}).get(path)
        if not f:
            return None
        key = (repo.kind, repo.repo_id, path)
        with self.lock:
            used = self.fault_counts.get(key, 0)
            if f.get("corrupt") or f.get("throttle"):
                return f
            if used >= f.get("times", 1):
                return None
            self.fault_counts[key] = used + 1
        return f


def parse_range(header, size):
    """(start, end) inclusive for a single 'bytes=a-b' / 'bytes=a-' range, 'bad', or None."""
    if not header:
        return None
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    if m.group(1) == "":
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n else "bad"
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return "bad"
    return start, min(end, size - 1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-hub/1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK stall every keep-alive response by ~40 ms.
    disable_nagle_algorithm = True
    state = None  # set by main
    is_cdn = False

    def log_message(self, fmt, *args):
        if os.environ.get("MOCK_HUB_VERBOSE"):
            sys.stderr.write("mock_hub: " + (fmt % args) + "\n")

    # ---- helpers -------------------------------------------------------------------------
    def send_json(self, obj, status=200, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def hub_error(self, status, code, message):
        self.send_json({"error": message}, status, {"X-Error-Code": code, "X-Error-Message": message})

    def ms_error(self, status, message):
        self.send_json({"Code": status, "Message": message, "RequestId": "mock", "Success": False}, status)

    def auth_ok(self, repo):
        """None when allowed, else (status, message) of the gated answer."""
        if not repo.cfg.get("gated"):
            return None
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        what = f"{repo.kind[:-1]} {repo.repo_id}"
        if token is None:
            return 401, (f"Access to {what} is restricted. You must have access to it and be "
                         "authenticated to access it. Please log in.")
        if token not in repo.cfg.get("tokens", []):
            return 403, (f"Access to {what} is restricted and you are not in the authorized list. "
                         f"Visit https://huggingface.co/{repo.repo_id} to ask for access.")
        return None

    def send_file(self, repo, e, extra_headers, count_key):
        """Send e's bytes (honouring Range and the repo's faults) with the given hub headers."""
        st = self.state
        fault = st.fault(repo, e.path) if self.command != "HEAD" else None
        if fault and fault.get("status"):
            h = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
            self.send_json({"error": "slow down"}, fault["status"], h)
            return
        size = e.size
        rng = parse_range(self.headers.get("Range"), size)
        if rng == "bad":
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = rng if rng else (0, size - 1)
        if rng:
            with st.lock:
                st.stats["range_starts"].append([e.path, start])
        length = end - start + 1 if size else 0
        self.send_response(206 if rng else 200)
        for k, v in extra_headers.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        st.count(count_key, e.path)
        if self.command == "HEAD" or length == 0:
            return
        drop = fault.get("drop_after") if fault else None
        corrupt = fault.get("corrupt") if fault else False
        throttle = fault.get("throttle") if fault else None
        limit = length if drop is None else max(0, min(length, drop - start if drop > start else 0))
        if e.disk and not (corrupt or throttle):
            with open(e.disk, "rb") as f:
                sent = self.connection.sendfile(f, start, limit) if limit else 0
        else:
            sent = 0
            t0 = time.monotonic()
            for off, chunk in self.iter_range(e, start, limit):
                if corrupt and off <= start + length // 2 < off + len(chunk):
                    i = start + length // 2 - off
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                self.wfile.write(chunk)
                sent += len(chunk)
                if throttle:
                    ahead = sent / throttle - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        st.count("bytes_sent", None, sent)
        if limit < length:
            # The connection dies mid-body: the client has a Content-Length it will never reach.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def iter_range(e, start, limit):
        if e.disk:
            with open(e.disk, "rb") as f:
                f.seek(start)
                off, left = start, limit
                while left > 0:
                    b = f.read(min(left, 256 << 10))
                    if not b:
                        return
                    yield off, b
                    off += len(b)
                    left -= len(b)
        else:
            yield start, e.content[start:start + limit]

    # ---- dispatch ------------------------------------------------------------------------
    def do_HEAD(self):
        self.state.count("head")
        self.route()

    def do_GET(self):
        self.route()

    def route(self):
        st = self.state
        st.count("requests")
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        try:
            if self.is_cdn:
                return self.cdn(path)
            if path == "/_mock/stats":
                with st.lock:
                    return self.send_json(st.stats)
            if path == "/_mock/reset":
                st.reset()
                return self.send_json({"ok": True})
            if path.startswith("/api/v1/"):
                return self.modelscope(path[len("/api/v1/"):], q)
            if path.startswith("/api/models/") or path.startswith("/api/datasets/"):
                return self.hf_api(path, q)
            return self.hf_resolve(path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ---- HF ------------------------------------------------------------------------------
    def hf_api(self, path, q):
        st = self.state
        st.count("api")
        m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/(revision|tree)/([^/]+)(/.*)?", path)
        if not m:
            return self.hub_error(404, "RepoNotFound", "Repository not found")
        kind, repo_id, what, rev, sub = m.groups()
        repo = st.repo(kind, repo_id)
        if repo is None:
            return self.hub_error(404 if self.headers.get("Authorization") else 401, "RepoNotFound",
                                  "Repository not found")
        denied = self.auth_ok(repo)
        if denied:
            return self.hub_error(denied[0], "GatedRepo", denied[1])
        if not repo.revision_ok(rev):
            return self.hub_error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if what == "revision":
            blobs = q.get("blobs", "").lower() == "true"
            sib = []
            for p, e in repo.entries.items():
                s = {"rfilename": p}
                if blobs:
                    s["size"] = e.size
                    s["blobId"] = e.oid
                    if e.lfs:
                        s["lfs"] = {"size": e.size, "sha256": e.sha256, "pointerSize": len(e.pointer())}
                sib.append(s)
            return self.send_json({"_id": "mock", "id": repo_id, "sha": repo.commit, "private": False,
                                   "gated": "manual" if repo.cfg.get("gated") else False,
                                   "siblings": sib})
        # tree: files and the folders above them, recursive or one level under sub
        base = (sub or "").strip("/")
        items, dirs = [], set()
        for p, e in sorted(repo.entries.items()):
            if base and not p.startswith(base + "/"):
                continue
            rel = p[len(base) + 1:] if base else p
            parts = rel.split("/")
            recursive = q.get("recursive", "").lower() == "true"
            for i in range(1, len(parts)):
                d = "/".join(([base] if base else []) + parts[:i])
                if d not in dirs and (recursive or i == 1):
                    dirs.add(d)
                    items.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(),
                                  "size": 0, "path": d})
            if not recursive and len(parts) > 1:
                continue
            it = {"type": "file", "oid": e.oid, "size": e.size, "path": p}
            if e.lfs:
                it["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": len(e.pointer())}
            items.append(it)
        cursor = int(q.get("cursor", "0") or 0)
        page = items[cursor:cursor + TREE_PAGE]
        headers = {}
        if cursor + TREE_PAGE < len(items):
            nq = dict(q)
            nq["cursor"] = str(cursor + TREE_PAGE)
            host = self.headers.get("Host", f"127.0.0.1:{self.server.server_port}")
            nxt = f"http://{host}{urllib.parse.quote(path)}?{urllib.parse.urlencode(nq)}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        return self.send_json(page, 200, headers)

    def hf_resolve(self, path):
        st = self.state
        kind = "models"
        if path.startswith("/datasets/"):
            kind, path = "datasets", path[len("/datasets"):]
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if not m:
            return self.hub_error(404, "RepoNotFound", "Repository not found")
        repo_id, rev, fpath = m.groups()
        st.count("resolve")
        repo = st.repo(kind, repo_id)
        if repo is None:
            return self.hub_error(401, "RepoNotFound", "Repository not found")
        denied = self.auth_ok(repo)
        if denied:
            return self.hub_error(denied[0], "GatedRepo", denied[1])
        if not repo.revision_ok(rev):
            return self.hub_error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        e = repo.entries.get(fpath)
        if e is None:
            return self.send_json({"error": "Entry not found"}, 404,
                                  {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit})
        common = {"X-Repo-Commit": repo.commit}
        if e.lfs:
            # As the hub does: 302 to the CDN with the LFS ids on the redirect itself.
            loc = (f"http://127.0.0.1:{st.cdn_port}/cdn/{e.sha256}?"
                   + urllib.parse.urlencode({"repo": f"{kind}/{repo_id}", "path": fpath, "X-Amz-Signature": "mock"}))
            self.send_response(302)
            self.send_header("Location", loc)
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("X-Linked-Etag", f'"{e.sha256}"')
            self.send_header("X-Linked-Size", str(e.size))
            self.send_header("ETag", f'"{e.oid}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        common["ETag"] = f'"{e.oid}"'
        self.send_file(repo, e, common, "file_get")

    def cdn(self, path):
        st = self.state
        st.count("cdn")
        if self.headers.get("Authorization"):
            # S3-style signed URLs refuse a second credential; also proves the token stayed home.
            st.count("auth_on_cdn")
            return self.send_json({"error": "Authorization header sent to the CDN"}, 400)
        m = re.fullmatch(r"/cdn/([0-9a-f]{64})", path)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        kind, _, repo_id = q.get("repo", "").partition("/")
        repo = st.repo(kind, repo_id) if m else None
        e = repo.entries.get(q.get("path", "")) if repo else None
        if e is None or e.sha256 != m.group(1):
            return self.send_json({"error": "NoSuchKey"}, 404)
        self.send_file(repo, e, {"ETag": f'"{e.sha256}"'}, "file_get")

    # ---- ModelScope ----------------------------------------------------------------------
    def modelscope(self, path, q):
        st = self.state
        st.count("api")
        m = re.fullmatch(r"(models|datasets)/([^/]+)/([^/]+)/repo/files", path)
        if m and m.group(1) == "models":
            repo = st.repo("models", m.group(2) + "/" + m.group(3))
            if repo is None:
                return self.ms_error(404, "model not found")
            denied = self.auth_ok(repo)
            if denied:
                return self.ms_error(denied[0], denied[1])
            if not repo.revision_ok(q.get("Revision", "master")):
                return self.ms_error(404, f"revision {q.get('Revision')} not found")
            return self.send_json({"Code": 200, "Data": {"Files": self.ms_files(repo)}, "Success": True})
        m = re.fullmatch(r"datasets/(\d+)/repo/tree", path)
        if m:
            repo = st.repo_by_number(int(m.group(1)))
            if repo is None:
                return self.ms_error(404, "dataset not found")
            denied = self.auth_ok(repo)
            if denied:
                return self.ms_error(denied[0], denied[1])
            if not repo.revision_ok(q.get("Revision", "master")):
                return self.ms_error(404, f"revision {q.get('Revision')} not found")
            files = self.ms_files(repo)
            pn, ps = int(q.get("PageNumber", "1")), int(q.get("PageSize", "100"))
            return self.send_json({"Code": 200, "Data": {"Files": files[(pn - 1) * ps:pn * ps]},
                                   "Success": True})
        m = re.fullmatch(r"(models|datasets)/([^/]+)/([^/]+)/repo", path)
        if m:
            repo = st.repo(m.group(1), m.group(2) + "/" + m.group(3))
            if repo is None:
                return self.ms_error(404, "repo not found")
            denied = self.auth_ok(repo)
            if denied:
                return self.ms_error(denied[0], denied[1])
            if not repo.revision_ok(q.get("Revision", "master")):
                return self.ms_error(404, "revision not found")
            e = repo.entries.get(q.get("FilePath", ""))
            if e is None:
                return self.ms_error(404, "file not found")
            st.count("ms_file")
            return self.send_file(repo, e, {}, "file_get")
        m = re.fullmatch(r"datasets/([^/]+)/([^/]+)", path)
        if m:
            repo = st.repo("datasets", m.group(1) + "/" + m.group(2))
            if repo is None:
                return self.ms_error(404, "dataset not found")
            return self.send_json({"Code": 200, "Data": {"Id": repo.numeric_id, "Type": 0}, "Success": True})
        return self.ms_error(404, "no such API")

    @staticmethod
    def ms_files(repo):
        out, dirs = [], set()
        for p, e in sorted(repo.entries.items()):
            parts = p.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    out.append({"Name": parts[i - 1], "Path": d, "Type": "tree", "Size": 0})
            out.append({"Name": parts[-1], "Path": p, "Type": "blob", "Size": e.size,
                        "Sha256": e.sha256, "IsLFS": e.lfs, "Revision": repo.commit})
        return out


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cdn-port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--watch-pid", type=int, help="exit when this process is gone (no orphans)")
    a = ap.parse_args()
    if a.watch_pid:
        def watch():
            while True:
                time.sleep(1)
                try:
                    os.kill(a.watch_pid, 0)
                except ProcessLookupError:
                    os._exit(0)
                except PermissionError:
                    pass
        threading.Thread(target=watch, daemon=True).start()
    state = State(os.path.abspath(a.root))
    hub_handler = type("HubHandler", (Handler,), {"state": state, "is_cdn": False})
    cdn_handler = type("CdnHandler", (Handler,), {"state": state, "is_cdn": True})
    hub = Server((a.host, a.port), hub_handler)
    cdn = Server((a.host, a.cdn_port), cdn_handler)
    state.cdn_port = cdn.server_port
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    info = json.dumps({"port": hub.server_port, "cdn_port": cdn.server_port})
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(info + "\n")
        os.replace(tmp, a.port_file)
    else:
        print(info, flush=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
