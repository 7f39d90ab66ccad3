"""The rollout report: one self-contained HTML page per rollout (``./ce rollout report``).

What it holds, and where each part comes from:

- the rollout itself (its audit entries, from the GO to the promotion, the rollback or the
  latest entry) - :func:`rollouts` splits the audit log;
- a timeline of phases, weights and decisions with who approved them (the audit log);
- canary against stable over the rollout's own window for the error ratio, P95, P99 and the
  burn rate: Prometheus range queries of the gate's own PromQL (:func:`rollout.gate.build_queries`
  over a chart window), with the SLO thresholds and every decision marked;
- each judgement's table (the ``judge`` dicts the controller wrote into the audit log);
- for a rollback, the fault's onset (:func:`fault_onset`, from the canary's raw scrapes: its
  5xx, or its requests slower than the failed latency limit) and the traffic switch (the
  ``traffic_switched`` audit entry) marked on every chart.

Charts are drawn by plotly with plotly.js inlined once, so the file works offline. Every chart
section gets ``data-count`` (points plotted) and the fault/switch markers' positions as
attributes once plotly has drawn it; the browser test reads them back from the rendered DOM.

Collecting (:func:`collect`) does the I/O; :func:`render_html` is pure.
"""

from __future__ import annotations

import dataclasses
import html
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import plotly.graph_objects as go

from driver.bake import APPLIED, format_ts, parse_ts
from rollout import phases
from rollout.gate import GateTarget, GateThresholds, build_queries

#: what the charts draw, per track: (key, title, axis unit, the GateQueries field it plots)
CHARTS: tuple[tuple[str, str, str, str], ...] = (
    ("error_ratio", "Error ratio (5xx)", "ratio", "error_ratio"),
    ("p95_ms", "P95 latency", "ms", "p95_ms"),
    ("p99_ms", "P99 latency", "ms", "p99_ms"),
    ("burn_rate", "Burn rate (SLO error budgets)", "budgets", "burn_rate"),
)
#: judge/gate checks whose failure is about errors (placed by the raw error scrapes)
ERROR_CHECKS = frozenset({"error_ratio", "error_ratio_vs_stable", "burn_rate_vs_stable"})
#: the audit action of the entry that records a written report
REPORT_ACTION = "report"
TRACK_COLOURS = {"stable": "#1f77b4", "canary": "#d62728"}


# --------------------------------------------------------------------------- audit log


def ends_rollout(entry: Mapping[str, Any]) -> str | None:
    """How ``entry`` ends a rollout, or None: its report is written then.

    A promotion or a rollback ends it for good; a pause ends what runs unattended (a person
    decides next), so the report is written then too, and again when the rollout ends.
    """
    result = entry.get("result")
    if result == "promoted":
        return "promoted"
    if (
        entry.get("action") == "rollback"
        and result == APPLIED
        and entry.get("trigger") != "promote"
    ):
        return "rolled back"
    if result == "paused":
        return "paused"
    return None


@dataclass(frozen=True)
class Rollout:
    entries: tuple[Mapping[str, Any], ...]
    outcome: str
    """promoted, rolled back, paused or in progress (the latest entry ended nothing)."""

    @property
    def start(self) -> datetime:
        return parse_ts(str(self.entries[0]["ts"]))

    @property
    def end(self) -> datetime:
        return parse_ts(str(self.entries[-1]["ts"]))

    @property
    def ident(self) -> str:
        return self.start.strftime("%Y%m%dT%H%M%SZ")


def rollouts(entries: Sequence[Mapping[str, Any]]) -> list[Rollout]:
    """The audit log cut into rollouts: each runs from the first entry after the previous one
    ended (a promotion or a rollback; a pause does not end it) to its own end. The entries
    that record a written report are not part of any rollout."""
    out: list[Rollout] = []
    current: list[Mapping[str, Any]] = []
    for e in entries:
        if e.get("action") == REPORT_ACTION:
            continue
        current.append(e)
        how = ends_rollout(e)
        if how in ("promoted", "rolled back"):
            out.append(Rollout(tuple(current), how))
            current = []
    if current:
        last = next((ends_rollout(e) for e in reversed(current) if ends_rollout(e)), None)
        out.append(Rollout(tuple(current), "paused" if last == "paused" else "in progress"))
    return out


@dataclass(frozen=True)
class Step:
    """The canary weight from ``at`` on (a phase step or the rollback's traffic switch)."""

    at: datetime
    phase: int
    weight: int
    what: str


def weight_steps(r: Rollout, weights: Mapping[int, int]) -> list[Step]:
    """The weights over time, from the applied steps and the traffic switch."""
    out: list[Step] = []
    for e in r.entries:
        at = parse_ts(str(e["ts"]))
        if e.get("result") == "traffic_switched":
            out.append(Step(at, 0, weights.get(0, 0), "traffic switched to stable"))
        elif e.get("result") == APPLIED and e.get("to_phase") is not None:
            p = int(e["to_phase"])
            out.append(Step(at, p, weights.get(p, 0), f"phase {p} applied ({e.get('action')})"))
    return out


def decision_label(e: Mapping[str, Any]) -> str:
    """One line per decision: what, at which phase, by whom."""
    phase = e.get("from_phase", e.get("phase"))
    who = e.get("actor")
    if e.get("action") == "approve":
        return f"{who} decided {e.get('decision', 'continue')} at phase {phase} ({e.get('result')})"
    to = e.get("to_phase")
    arrow = f" {phase}->{to}" if to is not None and phase is not None else ""
    return f"{e.get('action')}{arrow} {e.get('result')} by {who}"


def decisions(r: Rollout) -> list[Mapping[str, Any]]:
    """The entries worth a marker: every decision, not the ``started`` brackets."""
    return [e for e in r.entries if e.get("result") not in ("started", "abandoned")]


def judgements(r: Rollout) -> list[Mapping[str, Any]]:
    return [e for e in r.entries if isinstance(e.get("judge"), Mapping)]


def failure(r: Rollout) -> Mapping[str, Any] | None:
    """The gate/judge failure that triggered the rollback, if it was one."""
    if r.outcome != "rolled back":
        return None
    return next(
        (e for e in reversed(r.entries) if e.get("result") in ("gate_failed", "judge_failed")),
        None,
    )


def failed_checks(e: Mapping[str, Any]) -> list[str]:
    judged = [c["name"] for c in (e.get("judge") or {}).get("checks", []) if c["outcome"] == "fail"]
    gated = [c["name"] for c in (e.get("gate") or {}).get("checks", []) if not c["passed"]]
    return judged or gated


# --------------------------------------------------------------------------- fault onset


@dataclass(frozen=True)
class Onset:
    at: datetime
    """The middle of the scrape interval in which the canary's bad-request rate stepped up."""
    low: datetime
    """The fault began in (low, high]: the interval whose scrapes first carried it."""
    high: datetime
    rate_before: float
    rate_after: float


def _ll(k: float, n: float) -> float:
    if n <= 0:
        return 0.0
    p = k / n
    return (k * math.log(p) if k else 0.0) + ((n - k) * math.log(1 - p) if n > k else 0.0)


#: (low, high, requests, bad): what the scrapes of one interval added, over (low, high]
Interval = tuple[float, float, float, float]


def fault_onset(intervals: Sequence[Interval]) -> Onset | None:
    """Where the canary's bad-request rate stepped up: the binomial change point (maximum
    likelihood over every split) of consecutive intervals. Pure; ``None`` when no split
    raises the rate (nothing changed in the data)."""
    xs = sorted(intervals)
    cn, ck = [0.0], [0.0]  # prefix sums: every split in one pass
    for _, _, n, k in xs:
        cn.append(cn[-1] + n)
        ck.append(ck[-1] + k)
    best: tuple[float, int] | None = None
    for i in range(1, len(xs)):
        n1, k1 = cn[i], ck[i]
        n2, k2 = cn[-1] - n1, ck[-1] - k1
        if n1 <= 0 or n2 <= 0 or k2 / n2 <= k1 / n1:
            continue
        ll = _ll(k1, n1) + _ll(k2, n2)
        if best is None or ll > best[0]:
            best = (ll, i)
    if best is None:
        return None
    i = best[1]
    lo, hi = xs[i][0], xs[i][1]
    return Onset(
        at=datetime.fromtimestamp((lo + hi) / 2, UTC),
        low=datetime.fromtimestamp(lo, UTC),
        high=datetime.fromtimestamp(hi, UTC),
        rate_before=ck[i] / cn[i],
        rate_after=(ck[-1] - ck[i]) / (cn[-1] - cn[i]),
    )


def increments(
    series: Iterable[Mapping[str, Any]], since: float, scrape_s: float
) -> list[tuple[float, float]]:
    """``(scrape time, increase since the series' previous scrape)`` of raw counter series
    queried from ``since``. A series first scraped later than one interval after ``since``
    was born then (its first 5xx, a new pod): its first value is an increase; otherwise the
    first sample is the baseline. A counter reset starts again from 0."""
    out: list[tuple[float, float]] = []
    for s in series:
        vals = sorted((float(t), float(v)) for t, v in s.get("values", []))
        if not vals:
            continue
        if vals[0][0] - since > 1.5 * scrape_s:
            out.append(vals[0])
        for (_, v0), (t1, v1) in zip(vals, vals[1:]):
            out.append((t1, v1 - v0 if v1 >= v0 else v1))
    return out


def intervals(
    requests: Iterable[Mapping[str, Any]],
    bad: Iterable[Mapping[str, Any]],
    since: float,
    scrape_s: float,
) -> list[Interval]:
    """Requests and bad requests per scrape interval, over every series: each increase counts
    in the interval of the scrape that saw it (pods are scraped at different moments), on a
    grid of ``scrape_s`` centred on the scrapes of the first series."""
    inc_n = increments(requests, since, scrape_s)
    if not inc_n:
        return []
    origin = min(t for t, _ in inc_n) - scrape_s / 2
    bins: dict[int, list[float]] = {}
    for which, incs in ((0, inc_n), (1, increments(bad, since, scrape_s))):
        for t, d in incs:
            bins.setdefault(int((t - origin) // scrape_s), [0.0, 0.0])[which] += d
    out: list[Interval] = []
    for i in range(min(bins), max(bins) + 1):
        n, k = bins.get(i, [0.0, 0.0])
        high = origin + (i + 0.5) * scrape_s  # the scrapes of the bin, about
        out.append((high - scrape_s, high, n, min(k, n)))
    return out


def slower_than(
    buckets: Iterable[Mapping[str, Any]], limit_ms: float
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], float | None]:
    """From raw histogram bucket series: every request (the ``+Inf`` buckets) and the requests
    slower than the first bucket bound at or over ``limit_ms`` (``+Inf`` minus that bucket,
    per label set and scrape), and that bound (None: no finite bound reaches the limit)."""
    groups: dict[tuple[tuple[str, str], ...], dict[float, Mapping[str, Any]]] = {}
    for s in buckets:
        m = dict(s.get("metric", {}))
        le = float(m.pop("le", "nan"))
        groups.setdefault(tuple(sorted(m.items())), {})[le] = s
    bounds = sorted(
        {le for g in groups.values() for le in g if le >= limit_ms and math.isfinite(le)}
    )
    if not bounds:
        return [g[math.inf] for g in groups.values() if math.inf in g], [], None
    bound = bounds[0]
    every: list[Mapping[str, Any]] = []
    slow: list[Mapping[str, Any]] = []
    for g in groups.values():
        if math.inf not in g or bound not in g:
            continue
        every.append(g[math.inf])
        under = {float(t): float(v) for t, v in g[bound].get("values", [])}
        slow.append(
            {
                "values": [
                    [t, str(float(v) - under[float(t)])]
                    for t, v in g[math.inf].get("values", [])
                    if float(t) in under
                ]
            }
        )
    return every, slow, bound


def scrape_interval(series: Iterable[Mapping[str, Any]]) -> float | None:
    """The median spacing of raw scrapes (the target's scrape interval)."""
    gaps = []
    for s in series:
        ts = sorted(float(t) for t, _ in s.get("values", []))
        gaps += [b - a for a, b in zip(ts, ts[1:])]
    return statistics.median(gaps) if gaps else None


# --------------------------------------------------------------------------- collecting


class RangeAPI(Protocol):
    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[dict[str, Any]]: ...

    def samples(self, selector: str, start: float, end: float) -> list[dict[str, Any]]: ...


@dataclass
class ReportData:
    """Everything the page shows; :func:`render_html` draws it without I/O."""

    project: str
    stack: str
    rollout: Rollout
    weights: Mapping[int, int]
    thresholds: GateThresholds
    start: datetime
    end: datetime
    step_s: float
    chart_window: str
    scrape_s: float | None
    #: chart key -> track -> [(time, value)]
    series: dict[str, dict[str, list[tuple[datetime, float]]]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    onset: Onset | None = None
    onset_source: str = ""
    onset_what: str = "5xx"
    """What the onset's rates count: 5xx, or requests slower than a bound."""
    switch: datetime | None = None
    errors: list[str] = field(default_factory=list)


def window_for(r: Rollout, now: datetime) -> tuple[datetime, datetime]:
    """The charts' range: the rollout plus a margin either side (a tenth, at least 5 s).
    ``now`` is when the report is made: the queries stop there (Prometheus has nothing later)."""
    span = max((r.end - r.start).total_seconds(), 1.0)
    pad = timedelta(seconds=max(5.0, span / 10))
    return r.start - pad, r.end + pad  # past ``now`` too: the last marker stays in view


def chart_step(start: datetime, end: datetime, scrape_s: float) -> tuple[float, str]:
    """Range query step (a scrape, or coarser so a long rollout stays under ~2000 points)
    and the rate window (four steps: Prometheus' advice for rate())."""
    span = (end - start).total_seconds()
    step = max(scrape_s, math.ceil(span / 2000))
    return step, f"{max(1, math.ceil(4 * step))}s"


def _targets(r: Rollout, fallback: Mapping[str, GateTarget]) -> dict[str, GateTarget]:
    """The tracks as the rollout began (a promotion relabels them afterwards)."""
    for e in r.entries:
        raw = e.get("targets")
        if isinstance(raw, Mapping) and {"stable", "canary"} <= set(raw):
            return {
                t: GateTarget(track=t, labels={str(k): str(v) for k, v in raw[t].items()})
                for t in ("stable", "canary")
            }
    return dict(fallback)


def collect(
    api: RangeAPI,
    *,
    project: str,
    stack: str,
    rollout: Rollout,
    targets: Mapping[str, GateTarget],
    thresholds: GateThresholds,
    weights: Mapping[int, int],
    now: datetime,
) -> ReportData:
    """Query Prometheus over the rollout's own window. A failing query is noted on the page
    (the audit part of the report still stands), never raised."""
    start, end = window_for(rollout, now)
    tracks = _targets(rollout, targets)
    t0, t1 = start.timestamp(), min(end, now).timestamp()
    errors: list[str] = []
    scrape_s: float | None = None
    raw: dict[str, list[dict[str, Any]]] = {}
    try:
        q = build_queries(thresholds, tracks["canary"])
        raw["requests"] = api.samples(q.requests, t0, t1)
        raw["errors"] = api.samples(q.errors, t0, t1)
        raw["buckets"] = api.samples(q.buckets, t0, t1)
        scrape_s = scrape_interval(raw["requests"])
        if scrape_s is None:  # the canary never took traffic (a NO-GO): stable's scrapes
            stable = build_queries(thresholds, tracks["stable"]).requests
            scrape_s = scrape_interval(api.samples(stable, max(t0, t1 - 600), t1))
    except Exception as exc:  # the audit part still makes a report
        errors.append(f"raw scrapes: {exc}")
    step, window = chart_step(start, end, scrape_s or 15.0)
    charted = dataclasses.replace(thresholds, window=window)  # the gate's PromQL, chart window
    data = ReportData(
        project=project,
        stack=stack,
        rollout=rollout,
        weights=weights,
        thresholds=thresholds,
        start=start,
        end=end,
        step_s=step,
        chart_window=window,
        scrape_s=scrape_s,
        versions={t: tracks[t].version for t in tracks},
        errors=errors,
    )
    for key, _title, _unit, field_name in CHARTS:
        data.series[key] = {}
        for track, target in tracks.items():
            promql = getattr(build_queries(charted, target), field_name)
            try:
                result = api.query_range(promql, t0, t1, step)
            except Exception as exc:  # noted on the page
                errors.append(f"{key} {track}: {exc}")
                result = []
            points = [
                (datetime.fromtimestamp(float(t), UTC), float(v))
                for s in result[:1]
                for t, v in s.get("values", [])
                if math.isfinite(float(v))
            ]
            data.series[key][track] = points
    data.switch = next(
        (
            parse_ts(str(e["ts"]))
            for e in rollout.entries
            if e.get("result") == "traffic_switched" and e.get("trigger") != "promote"
        ),
        None,
    )
    failed = failure(rollout)
    if failed is not None:
        _place_fault(data, failed, raw)
    return data


def _place_fault(
    data: ReportData, failed: Mapping[str, Any], raw: Mapping[str, list[dict[str, Any]]]
) -> None:
    """The fault's onset within the failing phase, from the canary's raw scrapes: the change
    point of its 5xx for an error failure, of its requests slower than the limit (the SLO's,
    or stable's P95 times the allowed increase) for a latency failure."""
    decided = parse_ts(str(failed["ts"]))
    entered = _entered_before(data.rollout, decided) or data.start
    lo, hi = entered.timestamp(), decided.timestamp()
    if not data.scrape_s or not raw.get("requests"):
        return
    checks = {c["name"]: c for c in (failed.get("judge") or {}).get("checks", [])}
    names = failed_checks(failed)
    every: Sequence[Mapping[str, Any]]
    bad: Sequence[Mapping[str, Any]]
    if any(n in ERROR_CHECKS for n in names):
        every, bad = raw["requests"], raw["errors"]
        source = "change point of the canary's 5xx in its raw scrapes"
    else:
        limit = _latency_limit(data.thresholds, names, checks)
        if limit is None:
            return
        every, bad, bound = slower_than(raw.get("buckets", []), limit)
        if bound is None:
            return
        data.onset_what = f"requests slower than {bound:g} ms"
        source = f"change point of the canary's {data.onset_what} in its raw scrapes"
    found = intervals(every, bad, data.start.timestamp(), data.scrape_s)
    data.onset = fault_onset([x for x in found if lo <= x[1] and x[0] <= hi])
    data.onset_source = source


def _latency_limit(
    th: GateThresholds, names: Sequence[str], checks: Mapping[str, Mapping[str, Any]]
) -> float | None:
    """What a failed latency check calls slow."""
    if "p95" in names:
        return th.max_p95_ms
    if "p99" in names:
        return th.max_p99_ms
    c = checks.get("latency_vs_stable")
    if c is not None and isinstance(c.get("stable"), (int, float)):
        return float(c["stable"]) * float(c["threshold"])  # stable's P95 x the allowed shift
    return None


def _entered_before(r: Rollout, at: datetime) -> datetime | None:
    """When the stack entered the phase that was running at ``at``."""
    last = None
    for e in r.entries:
        ts = parse_ts(str(e["ts"]))
        if ts > at:
            break
        if e.get("result") == APPLIED and e.get("action") == "advance":
            last = ts
    return last


# --------------------------------------------------------------------------- rendering

_FMT = "%Y-%m-%d %H:%M:%S.%f"


def _x(t: datetime) -> str:
    """Plotly's date text in UTC (the axis says UTC)."""
    return t.astimezone(UTC).strftime(_FMT)[:-3]


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if unit == "ratio":
            return f"{value:.4%}"
        return f"{value:.4g}"
    return str(value)


#: post_script run once plotly has drawn a chart: the points it plotted and where its
#: markers sit, as attributes of the chart's section (what a test reads from the DOM)
_POST = """
var gd = document.getElementById('{plot_id}');
var sec = gd.closest('section');
var n = 0, series = 0;
gd.data.forEach(function (t) { if (t.meta === 'data') {
  var m = 0;
  (t.y || []).forEach(function (v) { if (v !== null && !isNaN(v)) { m += 1; } });
  n += m; if (m > 0) { series += 1; } } });
sec.setAttribute('data-count', String(n));
sec.setAttribute('data-series', String(series));
(gd.layout.shapes || []).forEach(function (s) {
  if (s.name === 'fault onset') { sec.setAttribute('data-fault-onset', s.x0); }
  if (s.name === 'traffic switch') { sec.setAttribute('data-traffic-switch', s.x0); }
});
sec.setAttribute('data-rendered', String(gd.querySelectorAll('.main-svg').length));
"""


def _mark_events(fig: go.Figure, data: ReportData, annotate: bool) -> None:
    for e in decisions(data.rollout):
        fig.add_vline(
            x=_x(parse_ts(str(e["ts"]))),
            line_width=1,
            line_dash="dot",
            line_color="#888",
            name=f"decision: {decision_label(e)}",
        )
    if data.onset is not None:
        fig.add_vline(
            x=_x(data.onset.at),
            line_width=2,
            line_color="#b00020",
            name="fault onset",
            annotation_text="fault onset" if annotate else None,
            annotation_position="top left",
        )
    if data.switch is not None:
        fig.add_vline(
            x=_x(data.switch),
            line_width=2,
            line_dash="dash",
            line_color="#e67e22",
            name="traffic switch",
            annotation_text="traffic switch" if annotate else None,
            annotation_position="top right",
        )


def _layout(fig: go.Figure, title: str, unit: str, data: ReportData) -> None:
    fig.update_layout(
        title=title,
        height=320,
        margin={"l": 70, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        template="plotly_white",
        xaxis={"title": "UTC", "range": [_x(data.start), _x(data.end)]},
        yaxis={"title": unit, "tickformat": ".2%" if unit == "ratio" else None},
    )


def timeline_figure(data: ReportData) -> go.Figure:
    """The canary weight over time, with each decision as a labelled point."""
    steps = weight_steps(data.rollout, data.weights)
    fig = go.Figure()
    xs = [_x(data.start)] + [_x(s.at) for s in steps] + [_x(data.end)]
    first = data.weights.get(0, 0)
    ys = [first] + [s.weight for s in steps] + [steps[-1].weight if steps else first]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            line_shape="hv",
            name="canary weight %",
            meta="data",
            line={"color": TRACK_COLOURS["canary"]},
        )
    )
    ds = decisions(data.rollout)
    if ds:
        at_weight = [_weight_at(steps, parse_ts(str(e["ts"])), first) for e in ds]
        fig.add_trace(
            go.Scatter(
                x=[_x(parse_ts(str(e["ts"]))) for e in ds],
                y=at_weight,
                mode="markers",
                name="decisions",
                meta="markers",
                marker={"size": 9, "symbol": "diamond", "color": "#333"},
                text=[html.escape(decision_label(e)) for e in ds],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    _mark_events(fig, data, annotate=True)
    _layout(fig, "Traffic: canary weight and decisions", "%", data)
    fig.update_yaxes(range=[-5, 105], tickformat=None)
    return fig


def _weight_at(steps: Sequence[Step], at: datetime, first: int) -> int:
    w = first
    for s in steps:
        if s.at <= at:
            w = s.weight
    return w


def chart_figure(data: ReportData, key: str) -> go.Figure:
    title, unit = next((t, u) for k, t, u, _ in CHARTS if k == key)
    fig = go.Figure()
    for track, points in data.series.get(key, {}).items():
        fig.add_trace(
            go.Scatter(
                x=[_x(t) for t, _ in points],
                y=[v for _, v in points],
                mode="lines",
                name=f"{track} {data.versions.get(track, '')}".strip(),
                meta="data",
                line={"color": TRACK_COLOURS.get(track)},
            )
        )
    th = data.thresholds
    limit = {
        "error_ratio": (th.max_error_ratio, f"SLO {th.max_error_ratio:.2%}"),
        "p95_ms": (th.max_p95_ms, f"SLO {th.max_p95_ms:g} ms"),
        "p99_ms": (th.max_p99_ms, f"SLO {th.max_p99_ms:g} ms"),
        "burn_rate": (1.0, "budget (1x)"),
    }[key]
    fig.add_hline(
        y=limit[0],
        line_color="#555",
        line_dash="dash",
        name="threshold",
        annotation_text=limit[1],
        annotation_position="top left",
    )
    _mark_events(fig, data, annotate=True)
    _layout(fig, f"{title}: canary against stable (rate over {data.chart_window})", unit, data)
    return fig


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def timeline_table(data: ReportData) -> str:
    rows = []
    for e in decisions(data.rollout):
        phase = e.get("from_phase", e.get("phase"))
        rows.append(
            (
                e.get("ts"),
                phase if phase is not None else "",
                e.get("to_phase") if e.get("to_phase") is not None else "",
                e.get("action"),
                e.get("result"),
                e.get("actor"),
                e.get("reason", ""),
            )
        )
    return _table(("time (UTC)", "phase", "to", "action", "result", "by", "reason"), rows)


def judgement_tables(data: ReportData) -> str:
    parts = []
    head = (
        "check", "layer", "outcome", "value", "threshold", "unit", "window", "canary n",
        "stable n", "min sample", "p-value", "interval",
    )  # fmt: skip
    for e in judgements(data.rollout):
        j = e["judge"]
        phase = e.get("from_phase", e.get("phase"))
        parts.append(
            f"<h3>{html.escape(str(e.get('ts')))}: {html.escape(str(e.get('result')))} at phase "
            f"{html.escape(str(phase))} ({html.escape(str(e.get('actor')))}), judge "
            f"<span class='o-{html.escape(str(j.get('outcome')))}'>"
            f"{html.escape(str(j.get('outcome', '')).upper())}</span>, weight "
            f"{html.escape(str(j.get('weight')))} %, confidence "
            f"{html.escape(str(j.get('settings', {}).get('confidence', '')))}</h3>"
        )
        rows = []
        for c in j.get("checks", []):
            ci = c.get("ci") or ["", ""]
            rows.append(
                (
                    c.get("name"),
                    c.get("layer"),
                    c.get("outcome"),
                    _fmt(c.get("value"), c.get("unit", "")),
                    _fmt(c.get("threshold"), c.get("unit", "")),
                    c.get("unit"),
                    c.get("window"),
                    c.get("canary_n"),
                    "-" if c.get("stable_n") is None else c.get("stable_n"),
                    _fmt(c.get("min_sample")),
                    _fmt(c.get("p_value")),
                    f"{_fmt(ci[0], c.get('unit', ''))} .. {_fmt(ci[1], c.get('unit', ''))}",
                )
            )
        parts.append(_table(head, rows))
    return "\n".join(parts) or "<p>No judgement in this rollout (no decision past phase 0).</p>"


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
th { background: #f3f3f3; }
.o-pass { color: #1b7f3b; } .o-fail { color: #b00020; } .o-inconclusive { color: #a66a00; }
section.chart { margin-bottom: 0.5em; }
.facts td:first-child { font-weight: bold; }
"""


def _rates(o: Onset, what: str) -> str:
    return f"; canary {what} {_fmt(o.rate_before, 'ratio')} -> {_fmt(o.rate_after, 'ratio')}"


def render_html(data: ReportData) -> str:
    """The whole page (pure). plotly.js is inlined once, in the first chart."""
    r = data.rollout
    figures = [("timeline", timeline_figure(data))] + [
        (key, chart_figure(data, key)) for key, *_ in CHARTS
    ]
    charts = []
    for i, (key, fig) in enumerate(figures):
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=i == 0,
            div_id=f"chart-{key}",
            post_script=_POST,
            config={"displaylogo": False, "responsive": True},
        )
        charts.append(f'<section class="chart" data-chart="{key}">{div}</section>')
    facts = [
        ("stack", f"{data.project}/{data.stack}"),
        ("outcome", r.outcome),
        ("from", format_ts(r.start)),
        ("to", format_ts(r.end)),
        ("versions", ", ".join(f"{t} {v}" for t, v in data.versions.items())),
        (
            "charts",
            f"step {data.step_s:g} s, rate window {data.chart_window}, "
            f"scrape interval {_fmt(data.scrape_s)} s",
        ),
    ]
    if data.onset is not None:
        facts.append(
            (
                "fault onset",
                f"{format_ts(data.onset.at)} (began after {format_ts(data.onset.low)}, by "
                f"{format_ts(data.onset.high)}{_rates(data.onset, data.onset_what)}; {data.onset_source})",
            )
        )
    if data.switch is not None:
        facts.append(("traffic switch", format_ts(data.switch)))
    for err in data.errors:
        facts.append(("query error", err))
    title = f"Rollout {data.project}/{data.stack} {r.ident}: {r.outcome}"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<table class='facts'>{''.join(f'<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>' for k, v in facts)}</table>"
        + charts[0]
        + "<h2>Timeline</h2>"
        + timeline_table(data)
        + "<h2>Canary against stable</h2>"
        + "".join(charts[1:])
        + "<h2>Judgements</h2>"
        + judgement_tables(data)
        + "</body></html>\n"
    )


def report_path(out_dir: Path, project: str, stack: str, r: Rollout) -> Path:
    safe = stack.replace("/", "_")
    return out_dir / f"{project}-{safe}-{r.ident}.html"


def write(data: ReportData, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = report_path(out_dir, data.project, data.stack, data.rollout)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(data), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a page
    return path


def phase_weights(weights_of: Callable[[int], phases.Weights]) -> dict[int, int]:
    """phase -> canary weight from ``RolloutConfig.weights``."""
    return {p: int(weights_of(p).canary) for p in range(phases.MAX_PHASE + 1)}
