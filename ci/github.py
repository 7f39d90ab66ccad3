"""A minimal GitHub REST client (issue comments and issues), standard library only.

The base URL comes from ``GITHUB_API_URL`` (set by Actions; tests point it at a fake
API on 127.0.0.1). The token goes only into the Authorization header: errors name the
method, path and status, never the token or the request headers.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

PER_PAGE = 100


class GitHubError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"GitHub API {method} {path}: HTTP {status}: {message}")
        self.status = status


class GitHub:
    def __init__(self, repo: str, token: str, api_url: str = "https://api.github.com") -> None:
        if not repo or "/" not in repo:
            raise ValueError(f"repository must be owner/name, got {repo!r}")
        self.repo = repo
        self._token = token
        self.api_url = api_url.rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHub:
        env = os.environ if env is None else env
        token = env.get("GITHUB_TOKEN", "")
        if not token:
            raise ValueError("GITHUB_TOKEN is not set")
        return cls(
            env.get("GITHUB_REPOSITORY", ""),
            token,
            env.get("GITHUB_API_URL", "https://api.github.com"),
        )

    def __repr__(self) -> str:  # never the token
        return f"GitHub(repo={self.repo!r}, api_url={self.api_url!r})"

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self._token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "claude-enhancer-ci",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            try:
                message = str(json.loads(e.read() or b"{}").get("message", e.reason))
            except (ValueError, AttributeError):
                message = str(e.reason)
            raise GitHubError(method, path.split("?")[0], e.code, message) from None
        return json.loads(raw) if raw else None

    def _object(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        got = self.request(method, path, body)
        if not isinstance(got, dict):
            raise GitHubError(method, path, 200, "expected a JSON object")
        return got

    def paginate(self, path: str) -> list[Any]:
        out: list[Any] = []
        sep = "&" if "?" in path else "?"
        page = 1
        while True:
            chunk = self.request("GET", f"{path}{sep}per_page={PER_PAGE}&page={page}")
            if not isinstance(chunk, list):
                raise GitHubError("GET", path, 200, "expected a JSON list")
            out.extend(chunk)
            if len(chunk) < PER_PAGE:
                return out
            page += 1

    # ---- issue comments (a pull request is an issue for comments)
    def comments(self, number: int) -> list[dict[str, Any]]:
        return self.paginate(f"/repos/{self.repo}/issues/{number}/comments")

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        return self._object("POST", f"/repos/{self.repo}/issues/{number}/comments", {"body": body})

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        return self._object(
            "PATCH", f"/repos/{self.repo}/issues/comments/{comment_id}", {"body": body}
        )

    # ---- issues
    def open_issues(self, label: str) -> list[dict[str, Any]]:
        issues = self.paginate(f"/repos/{self.repo}/issues?state=open&labels={label}")
        return [i for i in issues if "pull_request" not in i]

    def create_issue(self, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        return self._object(
            "POST", f"/repos/{self.repo}/issues", {"title": title, "body": body, "labels": labels}
        )

    def update_issue(self, number: int, **fields: Any) -> dict[str, Any]:
        return self._object("PATCH", f"/repos/{self.repo}/issues/{number}", fields)
