"""Every Deployment is covered by a PodDisruptionBudget in its namespace (stack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_dict, as_int, as_list, dig, meta_name, meta_namespace
from policies.lib.rule import Rule, StackResource, base_type

RULE = Rule(
    name="pdb-for-deployments",
    description="Every Deployment must be selected by a PodDisruptionBudget in its namespace that keeps at least "
    "one pod (not minAvailable 0, maxUnavailable 100% or >= replicas).",
    severity="medium",
    scope="stack",
    frameworks={
        "SOC2": ["A1.2"],
        "ISO27001": ["A.8.14", "A.5.30"],
    },
    remediation="Add a policy/v1 PodDisruptionBudget (minAvailable or maxUnavailable) whose spec.selector "
    "matches the Deployment's pod template labels.",
    resource_types=("kubernetes:apps/v1:Deployment", "kubernetes:policy/v1:PodDisruptionBudget"),
    config_schema={
        "kinds": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["kubernetes:apps/v1:Deployment"],
            "description": "Workload types that need a PDB (e.g. add StatefulSet).",
        },
    },
    tags=("ha", "kubernetes"),
)

PDB_TYPES = ("kubernetes:policy/v1:PodDisruptionBudget", "kubernetes:policy/v1beta1:PodDisruptionBudget")


def selector_matches(selector: Any, labels: dict[str, Any]) -> bool | None:
    """Kubernetes LabelSelector semantics; None when unknown. An empty selector matches all."""
    if selector is UNKNOWN:
        return None
    selector = as_dict(selector)
    ml = dig(selector, "matchLabels")
    if ml is UNKNOWN:
        return None
    for k, v in as_dict(ml).items():
        if v is UNKNOWN:
            return None
        if labels.get(k) != v:
            return False
    exprs = dig(selector, "matchExpressions")
    if exprs is UNKNOWN:
        return None
    for e in as_list(exprs):
        key, op, values = dig(e, "key"), dig(e, "operator"), as_list(dig(e, "values"))
        if UNKNOWN in (key, op):
            return None
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _percent(value: Any) -> float | None:
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1])
        except ValueError:
            return None
    return None


def protects_nothing(spec: Any, replicas: int | None) -> str | None:
    """Why a PDB allows every pod to be evicted at once (None: it keeps some, or cannot be known)."""
    min_avail, max_unavail = dig(spec, "minAvailable"), dig(spec, "maxUnavailable")
    if UNKNOWN in (min_avail, max_unavail):
        return None
    if min_avail is not None:
        pct, n = _percent(min_avail), as_int(min_avail)
        if (pct is not None and pct <= 0) or n == 0:
            return f"minAvailable {min_avail} keeps no pod"
    if max_unavail is not None:
        pct, n = _percent(max_unavail), as_int(max_unavail)
        if pct is not None and pct >= 100:
            return f"maxUnavailable {max_unavail} lets every pod go"
        if n is not None and replicas is not None and n >= replicas > 0:
            return f"maxUnavailable {max_unavail} >= {replicas} replicas lets every pod go"
    return None


def check(resources: list[StackResource], config: Mapping[str, Any]) -> list[str]:
    kinds = {str(k) for k in as_list(RULE.resolve_config(config).get("kinds"))}
    pdbs = [
        (meta_namespace(r.props), meta_name(r.props), dig(r.props, "spec", "selector"), dig(r.props, "spec"))
        for r in resources
        if base_type(r.type) in PDB_TYPES
    ]
    if any(ns == "<unknown>" or sel is UNKNOWN for ns, _, sel, _ in pdbs):
        return []
    out: list[str] = []
    for r in resources:
        if r.type not in kinds:
            continue
        ns = meta_namespace(r.props)
        labels = dig(r.props, "spec", "template", "metadata", "labels")
        if ns == "<unknown>" or labels is UNKNOWN:
            continue
        labels = as_dict(labels)
        replicas = as_int(dig(r.props, "spec", "replicas"))
        matching = [(pname, spec) for pns, pname, sel, spec in pdbs if pns == ns and sel is not None]
        verdicts = [selector_matches(sel, labels) for pns, _, sel, _ in pdbs if pns == ns and sel is not None]
        if None in verdicts:
            continue
        selecting = [m for m, v in zip(matching, verdicts, strict=True) if v]
        name = f"{r.type.rsplit(':', 1)[-1]} {ns}/{meta_name(r.props)}"
        if not selecting:
            out.append(f"{name} has no PodDisruptionBudget")
            continue
        reasons = [(pname, protects_nothing(spec, replicas)) for pname, spec in selecting]
        if all(why for _, why in reasons):
            shown = "; ".join(f"{pname}: {why}" for pname, why in reasons)
            out.append(f"{name} has only PodDisruptionBudgets that protect nothing ({shown})")
    return sorted(out)
