"""Decision notifications: one JSON POST per decision to a webhook (chat, paging bridge)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Protocol


class Notifier(Protocol):
    def send(self, event: Mapping[str, Any]) -> None: ...


class NullNotifier:
    def send(self, event: Mapping[str, Any]) -> None:
        return None


class WebhookNotifier:
    """POST ``event`` as JSON; a failing receiver is reported, never fatal to the rollout."""

    def __init__(self, url: str, timeout: float = 2.0, warn: Callable[[str], None] = print) -> None:
        self.url = url
        self.timeout = timeout
        self.warn = warn

    def send(self, event: Mapping[str, Any]) -> None:
        body = json.dumps(dict(event), sort_keys=True, default=str).encode()
        req = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            self.warn(f"warning: webhook {self.url} failed: {exc}")
