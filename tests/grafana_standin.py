"""A stand-in for the few Grafana HTTP API endpoints ``dothi dashboards publish`` calls.

It exists because no Grafana can run where dothi is built and tested (not in Debian, PyPI or
npm; ENVIRONMENT.md): the publish command is checked against this contract instead. It keeps
its state in memory and answers like Grafana does for these routes:

- ``GET /api/health`` (no token), ``GET /api/org``;
- ``GET /api/datasources/uid/{uid}``, ``POST /api/datasources``, ``PUT /api/datasources/uid/{uid}``;
- ``GET /api/folders/{uid}``, ``POST /api/folders``, ``PUT /api/folders/{uid}``;
- ``GET /api/dashboards/uid/{uid}``, ``POST /api/dashboards/db`` (versions bump on every save).

Tokens: ``admin`` may do everything, ``viewer`` only read (403 on writes), anything else is 401.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ADMIN_TOKEN = "glsa_admin_standin"
VIEWER_TOKEN = "glsa_viewer_standin"


@dataclass
class GrafanaState:
    """What the stand-in holds, for tests to inspect or tamper with."""

    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass  # quiet: pytest shows failures, not access logs

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"null")

    def _role(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return {f"Bearer {ADMIN_TOKEN}": "admin", f"Bearer {VIEWER_TOKEN}": "viewer"}.get(auth)

    def _handle(self, method: str) -> None:
        state = self.server.state
        path = self.path.split("?")[0]
        state.requests.append((method, path))
        if path == "/api/health" and method == "GET":
            self._send(200, {"commit": "standin", "database": "ok", "version": "11.6.0"})
            return
        role = self._role()
        if role is None:
            self._send(401, {"message": "Unauthorized"})
            return
        if method != "GET" and role != "admin":
            self._send(403, {"message": "You'll need additional permissions to perform this"})
            return
        body = self._body() if method in ("POST", "PUT") else None
        parts = path.strip("/").split("/")[1:]  # without "api"
        route = getattr(self, f"_{parts[0]}", None) if parts else None
        if route is None:
            self._send(404, {"message": "Not found"})
            return
        route(method, parts[1:], body)

    def _org(self, method: str, rest: list[str], _: Any) -> None:
        if method == "GET" and not rest:
            self._send(200, {"id": 1, "name": "Main Org."})
        else:
            self._send(404, {"message": "Not found"})

    def _datasources(self, method: str, rest: list[str], body: Any) -> None:
        store = self.server.state.datasources
        if method == "POST" and not rest:
            if body["uid"] in store:
                self._send(409, {"message": "data source with the same uid already exists"})
                return
            store[body["uid"]] = {**body, "id": self.server.state.new_id()}
            self._send(200, {"message": "Datasource added", "datasource": body})
        elif rest[:1] == ["uid"] and len(rest) == 2 and rest[1] in store:
            if method == "GET":
                public = {k: v for k, v in store[rest[1]].items() if k != "secureJsonData"}
                self._send(200, public)
            elif method == "PUT":
                store[rest[1]] = {**body, "id": store[rest[1]]["id"]}
                self._send(200, {"message": "Datasource updated"})
        else:
            self._send(404, {"message": "Data source not found"})

    def _folders(self, method: str, rest: list[str], body: Any) -> None:
        store = self.server.state.folders
        if method == "POST" and not rest:
            store[body["uid"]] = {"uid": body["uid"], "title": body["title"], "version": 1}
            self._send(200, store[body["uid"]])
        elif len(rest) == 1 and rest[0] in store:
            if method == "GET":
                self._send(200, store[rest[0]])
            elif method == "PUT":
                folder = store[rest[0]]
                folder.update(title=body["title"], version=folder["version"] + 1)
                self._send(200, folder)
        else:
            self._send(404, {"message": "Folder not found"})

    def _dashboards(self, method: str, rest: list[str], body: Any) -> None:
        state = self.server.state
        if method == "GET" and rest[:1] == ["uid"] and len(rest) == 2:
            saved = state.dashboards.get(rest[1])
            if saved is None:
                self._send(404, {"message": "Dashboard not found"})
                return
            self._send(200, {"dashboard": saved["dashboard"], "meta": saved["meta"]})
        elif method == "POST" and rest == ["db"]:
            model = dict(body["dashboard"])
            if body.get("folderUid") not in state.folders:
                self._send(400, {"message": "folder not found"})
                return
            old = state.dashboards.get(model["uid"])
            version = old["dashboard"]["version"] + 1 if old else 1
            model.update(id=old["dashboard"]["id"] if old else state.new_id(), version=version)
            state.dashboards[model["uid"]] = {
                "dashboard": model,
                "meta": {"folderUid": body["folderUid"]},
            }
            self._send(200, {"status": "success", "uid": model["uid"], "version": version})
        else:
            self._send(404, {"message": "Not found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = GrafanaState()


@contextlib.contextmanager
def grafana_standin() -> Iterator[tuple[str, GrafanaState]]:
    """Serve the stand-in on a free loopback port; yield (base URL, its state)."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, name="grafana-standin", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
