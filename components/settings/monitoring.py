"""``claude-enhancer:monitoring``: scrape interval and the alert receivers (webhook URLs
are secrets)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from components import alerting
from components.settings.model import MonitoringSettings, Secret, SettingsError
from components.settings.read import DURATION_RE, top
from contract.configreader import ConfigObject

WEBHOOK_RE = re.compile(r"^https?://[^\s]+$")
#: escalation levels that have their own receiver (level 1 is the severity route).
ESCALATION_LEVELS: tuple[int, ...] = tuple(lv.level for lv in alerting.ESCALATION[1:])


def webhook(o: ConfigObject, name: str, value: Any) -> Secret:
    # the message never echoes the value: it is a secret
    if not isinstance(value, str) or not WEBHOOK_RE.fullmatch(value):
        raise SettingsError(f"{o.key_of(name)}: must be an http(s) URL (value hidden)")
    return Secret(value)


def parse_monitoring(raw: Mapping[str, Any]) -> MonitoringSettings:
    o = top(raw, "monitoring", required=False)
    d = MonitoringSettings(scrape_interval="15s")
    urls: dict[str, Secret | None] = {}
    for key in ("chatWebhookUrl", "pagingWebhookUrl"):
        v = o.get(key, None)
        urls[key] = None if v is None else webhook(o, key, v)
    raw_esc = o.get("escalationWebhookUrls", {})
    if not isinstance(raw_esc, Mapping):
        raise SettingsError(
            f"{o.key_of('escalationWebhookUrls')}: must be an object (value hidden)"
        )
    esc = ConfigObject(o.key_of("escalationWebhookUrls"), raw_esc, SettingsError)
    levels: list[tuple[int, Secret]] = []
    for level_key in sorted(esc.data):
        esc.used.add(level_key)
        if level_key not in {str(lv) for lv in ESCALATION_LEVELS}:
            raise SettingsError(
                f"{esc.key_of(level_key)}: escalation level must be one of {list(ESCALATION_LEVELS)}"
            )
        levels.append((int(level_key), webhook(esc, level_key, esc.data[level_key])))
    esc.done()
    m = MonitoringSettings(
        scrape_interval=o.get_str("scrapeInterval", "15s", pattern=DURATION_RE),
        chat_url=urls["chatWebhookUrl"],
        paging_url=urls["pagingWebhookUrl"],
        escalation_urls=tuple(levels),
        email_to=o.get_str("emailTo", d.email_to),
        email_from=o.get_str("emailFrom", d.email_from),
        smarthost=o.get_str("smarthost", d.smarthost),
    )
    o.done()
    return m
