"""``./ce rollout status [--watch]``: the status snapshot drawn for people.

Both forms draw :meth:`driver.core.Driver.status` (the one snapshot; nothing here reads the
stack, the audit log or Prometheus):

- :func:`render`: a rich renderable (phase and weights, the bake as a progress bar with the
  time left, each check's value against its threshold, the judge's last outcome, the pending
  approval and who may give it); ``--watch`` redraws it in place with :class:`rich.live.Live`;
- :func:`plain_lines`: the same facts as plain lines, for a pipe, a log or ``status`` without
  ``--watch``. ``--watch`` falls back to them when stdout is not a terminal, printing a new
  block only when the snapshot changed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

Snapshot = Mapping[str, Any]
OUTCOME_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


def fmt_value(value: Any, unit: str | None) -> str:
    """A check's number in its unit (the judge writes non-finite numbers as text)."""
    if value is None:
        return "no data"
    if isinstance(value, str):
        return value
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if unit == "ratio":
        return f"{v:.3%}"
    if unit == "ms":
        return f"{v:.0f} ms"
    if unit == "x stable":
        return f"{v:.2f}x"
    if unit == "budgets":
        return f"{v:+.2f} budgets"
    return f"{v:.0f}" if v.is_integer() else f"{v:g}"  # counts: 1000000, not 1e+06


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def bake_fraction(info: Snapshot) -> float | None:
    b = info["bake"]
    if b["requiredSeconds"] <= 0:
        return 1.0
    if b.get("elapsedSeconds") is None:
        return None
    return float(min(1.0, max(0.0, b["elapsedSeconds"] / b["requiredSeconds"])))


def check_rows(info: Snapshot) -> list[tuple[str, str, str, str, str]]:
    """(check, layer, value, threshold, outcome): the judge's checks, then the gate's checks
    the judge does not cover (agents, workflows, data)."""
    rows: list[tuple[str, str, str, str, str]] = []
    j = info.get("judgement")
    judged = set()
    for c in (j or {}).get("checks", []):
        judged.add(c["name"])
        unit = c.get("unit")
        rows.append(
            (
                c["name"],
                c.get("layer") or "",
                fmt_value(c.get("value"), unit),
                ("< " if c.get("layer") == "absolute" else "<= ")
                + fmt_value(c.get("threshold"), unit),
                str(c.get("outcome")),
            )
        )
    for c in (info.get("gate") or {}).get("checks", []):
        if c["name"] in judged:
            continue
        value = c.get("value")
        shown = fmt_value(value, "ratio" if c["name"] == "workflows" else None)
        rows.append(
            (c["name"], "gate", shown, str(c.get("threshold")), "pass" if c["passed"] else "fail")
        )
    return rows


def _phase_line(info: Snapshot) -> str:
    dep = info["deployedPhase"]
    w = info["weights"]
    phase = "never deployed" if dep is None else f"phase {dep}"
    drift = (
        "" if info["inSync"] else f" (config says {info['configPhase']}: run `up` or `rollback`)"
    )
    return f"{phase}{drift}: stable {w['stable']}% / canary {w['canary']}%"


def _bake_line(info: Snapshot) -> str:
    b = info["bake"]
    frac = bake_fraction(info)
    if frac is None or b["requiredSeconds"] <= 0:
        return str(b["text"])
    left = "done" if b["done"] else f"{duration(b['remainingSeconds'])} left"
    return f"{frac:.0%} of {duration(b['requiredSeconds'])} ({left})"


def _judge_line(info: Snapshot) -> str:
    j = info.get("judgement")
    if not j:
        return "no judgement yet"
    return f"{str(j['outcome']).upper()} at {j['ts']} ({j['decision']}, phase {j['phase']})"


def _pending_line(info: Snapshot) -> str:
    p = info.get("pending")
    if not p:
        return "none (the bake is not over)"
    if not p["waiting"]:
        return f"given: {p['what']}"
    return f"{p['role']} may give it: {p['what']} (`{p['command']}`)"


def _next_line(info: Snapshot) -> str:
    if info["nextPhase"] is None:
        return "final phase reached (100% canary): `promote` after the bake"
    return f"phase {info['nextPhase']}, approved by {info['nextDecider']}"


def plain_lines(info: Snapshot, audit_log: str | None = None) -> list[str]:
    """The snapshot as plain lines (no colour, no cursor movement)."""
    out = [
        f"stack            {info['project']}/{info['stack']}",
        f"phase            {_phase_line(info)}",
        f"bake             {_bake_line(info)}",
        f"on gate failure  {info['onFailure']}",
        f"next             {_next_line(info)}",
        f"approval         {_pending_line(info)}",
        f"judge            {_judge_line(info)}",
    ]
    if info.get("paused"):
        out.append(f"paused           since {info['paused']}")
    rows = check_rows(info)
    if rows:
        out.append("checks:")
        out += [f"  {n:<24} {lay:<9} {v:>16} {th:<14} {o}" for n, lay, v, th, o in rows]
    out.append("last audit entries:")
    if not info["audit"]:
        out.append("  (none)")
    for e in info["audit"]:
        out.append("  " + audit_line(e))
    if audit_log:
        out.append(f"audit log        {audit_log}")
    return out


def audit_line(e: Mapping[str, Any]) -> str:
    return (
        f"{e.get('ts')} {e.get('actor')} {e.get('action')} "
        f"{e.get('from_phase', e.get('phase'))}->{e.get('to_phase')} {e.get('result')}: "
        f"{e.get('reason', '')}"
    )


def render(info: Snapshot) -> RenderableType:
    """The live view of one snapshot (pure: the same snapshot draws the same screen)."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("stack", f"{info['project']}/{info['stack']}   ({info.get('now', '')})")
    head.add_row("phase", _phase_line(info))
    frac = bake_fraction(info)
    bar: RenderableType
    if frac is None:
        bar = Text(str(info["bake"]["text"]))
    else:
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=1.0, completed=frac, width=40), Text(_bake_line(info)))
    head.add_row("bake", bar)
    head.add_row("on failure", str(info["onFailure"]))
    head.add_row("next", _next_line(info))
    j = info.get("judgement")
    style = OUTCOME_STYLE.get(str((j or {}).get("outcome")), "")
    head.add_row("judge", Text(_judge_line(info), style=style))
    checks = Table(title="checks (value against threshold)", expand=False)
    for col in ("check", "layer", "value", "threshold", "outcome"):
        checks.add_column(col, justify="right" if col == "value" else "left")
    for n, lay, v, th, o in check_rows(info):
        checks.add_row(n, lay, v, th, Text(o, style=OUTCOME_STYLE.get(o, "")))
    p = info.get("pending")
    waiting = bool(p and p["waiting"])
    approval = Panel(
        _pending_line(info),
        title="approval pending" if waiting else "approval",
        border_style="yellow" if waiting else "dim",
    )
    parts: list[RenderableType] = [head, approval]
    if checks.row_count:
        parts.append(checks)
    log = Table(title="last audit entries", show_header=False, box=None)
    for e in info["audit"]:
        log.add_row(audit_line(e))
    parts.append(log)
    return Panel(Group(*parts), title="rollout status", border_style="blue")


def watch(
    snapshot: Callable[[], Snapshot],
    console: Console,
    interval: float = 2.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_frames: int | None = None,
    audit_log: str | None = None,
) -> int:
    """Redraw the snapshot every ``interval`` s until interrupted (Ctrl-C ends it, exit 0).

    On a terminal: :class:`rich.live.Live` redraws in place. Elsewhere (a pipe, a file, CI):
    the snapshot as plain lines, again only when it changed (the clock aside)."""
    frames = 0
    try:
        if console.is_terminal:
            with Live(render(snapshot()), console=console, auto_refresh=False) as live:
                while max_frames is None or frames < max_frames - 1:
                    sleep(interval)
                    live.update(render(snapshot()), refresh=True)
                    frames += 1
            return 0
        last: str | None = None
        while max_frames is None or frames < max_frames:
            info = snapshot()
            key = _change_key(info)
            if key != last:
                if last is not None:
                    console.print(f"--- {info.get('now', '')}", markup=False, highlight=False)
                for line in plain_lines(info, audit_log):
                    console.print(line, markup=False, highlight=False, soft_wrap=True)
                last = key
            frames += 1
            if max_frames is None or frames < max_frames:
                sleep(interval)
    except KeyboardInterrupt:
        pass
    return 0


def _change_key(info: Snapshot) -> str:
    """The snapshot less the clock (now, the bake's seconds): a new block when this changes."""
    bake = {k: v for k, v in info["bake"].items() if k in ("requiredSeconds", "enteredAt", "done")}
    rest = {k: v for k, v in info.items() if k not in ("now", "bake")}
    return json.dumps({**rest, "bake": bake}, sort_keys=True, default=str)
