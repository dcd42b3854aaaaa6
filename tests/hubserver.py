"""A loopback HTTP server that answers the Hugging Face Hub endpoints huggingface_hub uses.

Enough of the hub for real downloads through the real client code: the tree API for
listing, `resolve` with HEAD (X-Repo-Commit, ETag, Content-Length) and GET with Range,
X-Error-Code on 404s. `drop_once` cuts a file's first GET off halfway, to test resume.
Only ever binds 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}  # "datasets/owner/name" -> path -> bytes
        self.drop_once: set[str] = set()  # paths whose next GET is cut off mid-file
        self.advertise: dict[str, str] = {}  # path -> sha256 the listing claims (to serve corrupt bytes)
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.commit = "a" * 40
        self._server: ThreadingHTTPServer | None = None

    def add_file(self, repo: str, path: str, data: bytes, repo_type: str = "dataset") -> None:
        self.repos.setdefault(f"{repo_type}s/{repo}", {})[path] = data

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code, body=b"", headers=None, head=False):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)) if "Content-Length" not in (headers or {}) else headers["Content-Length"])
                self.end_headers()
                if not head and body:
                    self.wfile.write(body)

            def _json(self, obj):
                self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json"})

            def _not_found(self, code, head=False):
                self._send(404, b'{"error": "not found"}', {"X-Error-Code": code, "Content-Type": "application/json"},
                           head=head)

            def do_HEAD(self):
                self._handle(head=True)

            def do_GET(self):
                self._handle(head=False)

            def _handle(self, head: bool):
                url = urlparse(self.path)
                parts = [unquote(p) for p in url.path.strip("/").split("/")]  # a revision may hold %2F
                path = "/" + "/".join(parts)
                hub.requests.append((self.command, path, self.headers.get("Range")))
                if parts[:1] == ["api"] and len(parts) >= 5 and parts[4] in ("tree", "revision"):
                    repo_key = f"{parts[1]}/{parts[2]}/{parts[3]}"
                    files = hub.repos.get(repo_key)
                    if files is None:
                        return self._not_found("RepoNotFound")
                    prefix = "/".join(parts[6:]) if len(parts) > 6 else ""
                    entries = [{"type": "file", "path": p, "size": len(d),
                                "oid": hashlib.sha1(d).hexdigest(),
                                "lfs": {"oid": hub.advertise.get(p) or hashlib.sha256(d).hexdigest(), "size": len(d),
                                        "pointerSize": 134}}
                               for p, d in sorted(files.items()) if p.startswith(prefix)]
                    if parts[4] == "revision":
                        return self._json({"id": f"{parts[2]}/{parts[3]}", "sha": hub.commit,
                                           "siblings": [{"rfilename": e["path"]} for e in entries]})
                    return self._json(entries)
                # /datasets/owner/name/resolve/rev/path...
                if len(parts) >= 6 and parts[3] == "resolve":
                    repo_key = "/".join(parts[:3])
                    files = hub.repos.get(repo_key)
                    if files is None:
                        return self._not_found("RepoNotFound", head)
                    fpath = "/".join(parts[5:])
                    if fpath not in files:
                        return self._not_found("EntryNotFound", head)
                    data = files[fpath]
                    etag = f'"{hashlib.sha256(data).hexdigest()}"'
                    headers = {"X-Repo-Commit": hub.commit, "ETag": etag, "Accept-Ranges": "bytes",
                               "Content-Type": "application/octet-stream"}
                    start = 0
                    rng = self.headers.get("Range")
                    if rng and rng.startswith("bytes=") and not head:
                        start = int(rng[6:].split("-")[0])
                    if head:
                        headers["Content-Length"] = str(len(data))
                        return self._send(200, b"", headers, head=True)
                    body = data[start:]
                    if start:
                        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                    self.send_response(206 if start else 200)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if fpath in hub.drop_once and not start:
                        hub.drop_once.discard(fpath)
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)  # the connection drops mid-file
                        return
                    self.wfile.write(body)
                    return
                self._send(404, b"unknown endpoint")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
