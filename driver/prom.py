"""Thin Prometheus HTTP API client (``/api/v1/query``, ``query_range``, label values)."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from rollout.gate import REQUIRED_METRICS, GateInputs, GateTarget, GateThresholds, build_queries


class PromError(RuntimeError):
    """Prometheus could not be reached or answered with an error."""


class PromAPI(Protocol):
    def metric_names(self) -> frozenset[str]: ...

    def query_scalar(self, promql: str) -> float | None: ...

    def query(self, promql: str) -> list[dict[str, Any]]: ...


class PrometheusClient:
    """Minimal client over urllib (no extra dependency)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body = json.loads(resp.read().decode())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PromError(f"{path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PromError(f"{path}: cannot query Prometheus at {self.base_url}: {exc}") from exc
        if body.get("status") != "success":
            raise PromError(f"{path}: {body.get('errorType')}: {body.get('error')}")
        return body.get("data")

    def metric_names(self) -> frozenset[str]:
        """All metric names (``/api/v1/label/__name__/values``)."""
        data = self._get("/api/v1/label/__name__/values")
        return frozenset(str(x) for x in (data or []))

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query", {"query": promql})
        rtype = data.get("resultType")
        result = data.get("result")
        if rtype == "scalar":
            return [{"metric": {}, "value": result}]
        if rtype != "vector":
            raise PromError(f"unexpected result type {rtype!r} for {promql}")
        return list(result or [])

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[dict[str, Any]]:
        """``/api/v1/query_range``: one ``{"metric", "values": [[ts, "v"], ...]}`` per series."""
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        data = self._get("/api/v1/query_range", params)
        if data.get("resultType") != "matrix":
            raise PromError(f"unexpected result type {data.get('resultType')!r} for {promql}")
        return list(data.get("result") or [])

    def samples(self, selector: str, start: float, end: float) -> list[dict[str, Any]]:
        """The raw scrapes of ``selector`` in ``(start, end]`` (a range vector at ``end``):
        each sample keeps the time it was scraped, which a ``query_range`` step would round."""
        span = max(1, int(end - start + 0.999))
        data = self._get("/api/v1/query", {"query": f"{selector}[{span}s]", "time": f"{end:.3f}"})
        if data.get("resultType") != "matrix":
            raise PromError(f"unexpected result type {data.get('resultType')!r} for {selector}")
        return list(data.get("result") or [])

    def query_scalar(self, promql: str) -> float | None:
        """Single value of an aggregated query; ``None`` for an empty result."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) > 1:
            raise PromError(f"expected one series, got {len(result)} for {promql}")
        return float(result[0]["value"][1])  # "NaN" parses to nan

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/-/ready", timeout=self.timeout) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def collect_gate_inputs(api: PromAPI, thresholds: GateThresholds, target: GateTarget) -> GateInputs:
    """Run the gate queries; transport errors become ``None`` values plus an error note."""
    errors: list[str] = []
    names: frozenset[str] | None
    try:
        names = api.metric_names()
    except PromError as exc:
        names = None
        errors.append(str(exc))

    q = build_queries(thresholds, target)
    values: dict[str, float | None] = {}
    if names is not None and all(m in names for m in REQUIRED_METRICS):
        for key, promql in (
            ("error_ratio", q.error_ratio),
            ("p95_ms", q.p95_ms),
            ("p99_ms", q.p99_ms),
            ("request_count", q.request_count),
            ("agents_down", q.agents_down),
            ("workflow_failure_ratio", q.workflow_failure_ratio),
        ):
            try:
                v = api.query_scalar(promql)
                values[key] = v if v is None or math.isfinite(v) else None
            except PromError as exc:
                values[key] = None
                errors.append(str(exc))
    return GateInputs(
        metric_names=names,
        error_ratio=values.get("error_ratio"),
        p95_ms=values.get("p95_ms"),
        p99_ms=values.get("p99_ms"),
        request_count=values.get("request_count"),
        agents_down=values.get("agents_down"),
        workflow_failure_ratio=values.get("workflow_failure_ratio"),
        track=f"{target.track} {target.version}",
        errors=tuple(errors),
    )
