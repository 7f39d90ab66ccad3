"""A fake GitHub REST API on 127.0.0.1 (issue comments and issues), for the ci/ scripts' tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

TOKEN = "ghs_fake-token-for-tests-0123456789"
REPO = "acme/claude-enhancer"
BOT = "github-actions[bot]"


@dataclass
class FakeGitHub:
    url: str = ""
    comments: dict[int, list[dict[str, Any]]] = field(
        default_factory=dict
    )  # issue number -> comments
    issues: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path without query)
    fail_writes_with: int | None = None  # e.g. 403 as for a fork's read-only token
    _next_id: int = 1000

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_comment(self, number: int, body: str, login: str = BOT) -> dict[str, Any]:
        c = {"id": self.new_id(), "body": body, "user": {"login": login}}
        self.comments.setdefault(number, []).append(c)
        return c

    def add_issue(
        self, title: str, body: str, labels: list[str], login: str = BOT
    ) -> dict[str, Any]:
        number = len(self.issues) + 1
        issue = {
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "labels": [{"name": n} for n in labels],
            "user": {"login": login},
        }
        self.issues.append(issue)
        return issue

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] != "GET"]

    def env(self, tmp_path: Path, pr: int | None = None) -> dict[str, str]:
        env = {
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_API_URL": self.url,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": "77",
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        }
        if pr is not None:
            event = tmp_path / "event.json"
            event.write_text(json.dumps({"pull_request": {"number": pr}}))
            env["GITHUB_EVENT_PATH"] = str(event)
        return env


def _handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    prefix = f"/repos/{REPO}"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, code: int, doc: Any) -> None:
            raw = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> dict[str, Any]:
            n = int(self.headers.get("Content-Length") or 0)
            body: dict[str, Any] = json.loads(self.rfile.read(n) or b"{}")
            return body

        def _page(
            self, items: list[dict[str, Any]], query: dict[str, list[str]]
        ) -> list[dict[str, Any]]:
            per = int(query.get("per_page", ["30"])[0])
            page = int(query.get("page", ["1"])[0])
            return items[(page - 1) * per : page * per]

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            path, query = url.path, parse_qs(url.query)
            state.calls.append((method, path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"message": "Bad credentials"})
            if not path.startswith(prefix):
                return self._send(404, {"message": "Not Found"})
            rest = path[len(prefix) :].strip("/").split("/")
            if method != "GET" and state.fail_writes_with:
                return self._send(
                    state.fail_writes_with, {"message": "Resource not accessible by integration"}
                )
            if rest[:1] == ["issues"] and len(rest) == 3 and rest[2] == "comments":
                number = int(rest[1])
                if method == "GET":
                    return self._send(200, self._page(state.comments.get(number, []), query))
                return self._send(201, state.add_comment(number, self._body()["body"]))
            if rest[:2] == ["issues", "comments"] and len(rest) == 3 and method == "PATCH":
                for cs in state.comments.values():
                    for c in cs:
                        if c["id"] == int(rest[2]):
                            c["body"] = self._body()["body"]
                            return self._send(200, c)
                return self._send(404, {"message": "Not Found"})
            if rest == ["issues"]:
                if method == "GET":
                    want = query.get("state", ["open"])[0]
                    label = query.get("labels", [""])[0]
                    items = [
                        i
                        for i in state.issues
                        if i["state"] == want
                        and (not label or label in [x["name"] for x in i["labels"]])
                    ]
                    return self._send(200, self._page(items, query))
                b = self._body()
                return self._send(201, state.add_issue(b["title"], b["body"], b.get("labels", [])))
            if rest[:1] == ["issues"] and len(rest) == 2 and method == "PATCH":
                issue = state.issues[int(rest[1]) - 1]
                issue.update(self._body())
                return self._send(200, issue)
            return self._send(404, {"message": "Not Found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    state = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
