"""Compliance report: which controls each rule covers and whether it passed in a run.

Inputs (any combination; at least one):

* ``--preview-json FILE``: the output of ``pulumi preview --json --show-sames [--policy-pack
  policies]``. Pulumi's JSON digest does not carry policy events, so the report re-runs the
  pack's rules over the resources in its ``steps[].newState`` (inputs). Without
  ``--show-sames`` Pulumi leaves unchanged resources out of ``steps``; the report compares
  the steps with the digest's ``changeSummary`` and refuses to pass what it did not see.
* ``--state FILE``: the output of ``pulumi stack export`` (the resources the stack holds,
  with their inputs). Alone it is what the rules run over; with another input it is the
  list every stack resource must appear in.
* ``--event-log FILE``: the file written by ``pulumi preview --event-log FILE
  --policy-pack policies``; its ``policyEvent`` entries are the violations the
  engine itself reported (authoritative for the run).
* ``--resources FILE``: a JSON list of ``{"type", "name", "urn", "props"}``
  resources to run the rules over (no Pulumi needed).

``--config FILE`` is a policy-pack config file (``{"rule-name": {...}}``) as
passed to ``pulumi preview --policy-pack-config``.

Writes ``compliance-report.json`` and ``compliance-report.md`` into ``--out-dir``
(or prints one of them with ``--stdout json|md``). Exit status is 0, or 1 with
``--fail-on-violation`` when any rule failed or the run was NOT EVALUATED (no resources
seen, or fewer than the stack holds); 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # allow `python policies/report.py`
    sys.path.insert(0, str(_ROOT))

from policies.engine import Violation, evaluate  # noqa: E402
from policies.pack import PACK_NAME  # noqa: E402
from policies.rules import ALL, BY_NAME  # noqa: E402

SCHEMA_VERSION = 1


class InputError(ValueError):
    """The given input file is not what it claims to be."""


def _load_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"{path}: no such file") from e
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e


def _resource_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if "::" in urn else urn


_GONE = ("delete", "discard", "delete-replaced", "read-discard", "remove-pending-replace")


def _judged_type(rtype: str) -> bool:
    return bool(rtype) and not rtype.startswith(("pulumi:pulumi:Stack", "pulumi:providers:"))


def preview_coverage(doc: Any) -> str | None:
    """Why a preview digest does not list every resource (None when it does).

    ``changeSummary`` counts every logical step (same ones included, default providers
    not); ``steps`` lists them only with ``--show-sames``.
    """
    summary = doc.get("changeSummary") if isinstance(doc, dict) else None
    if not isinstance(summary, dict):
        return None
    expected = sum(int(n) for op, n in summary.items() if op not in _GONE and isinstance(n, (int, float)))
    steps = [s for s in doc.get("steps") or [] if isinstance(s, dict) and s.get("op") not in _GONE]
    if len(steps) < expected:
        return (
            f"the preview lists {len(steps)} of the {expected} resources it counts (unchanged ones are left out "
            "unless `pulumi preview --json --show-sames`)"
        )
    return None


def resources_from_state(doc: Any) -> list[dict[str, Any]]:
    """Resources (type, name, urn, props=inputs) from `pulumi stack export`."""
    deployment = doc.get("deployment") if isinstance(doc, dict) else None
    if not isinstance(deployment, dict) or not isinstance(deployment.get("resources", []), list):
        raise InputError("state has no 'deployment.resources' (expected the output of `pulumi stack export`)")
    out: list[dict[str, Any]] = []
    for r in deployment.get("resources") or []:
        if not isinstance(r, dict) or r.get("delete") or not _judged_type(str(r.get("type", ""))):
            continue
        urn = str(r.get("urn") or "")
        props = r.get("inputs") if isinstance(r.get("inputs"), dict) else {}
        out.append({"type": str(r["type"]), "name": _resource_name(urn), "urn": urn, "props": props})
    return out


def resources_from_preview(doc: Any) -> list[dict[str, Any]]:
    """Resources (type, name, urn, props) from a `pulumi preview --json` digest."""
    if not isinstance(doc, dict) or "steps" not in doc:
        raise InputError("preview JSON has no 'steps' (expected the output of `pulumi preview --json`)")
    out: list[dict[str, Any]] = []
    for step in doc.get("steps") or []:
        if not isinstance(step, dict) or step.get("op") in ("delete", "discard", "delete-replaced", "read-discard"):
            continue
        state = step.get("newState")
        if not isinstance(state, dict):
            continue
        rtype = str(state.get("type", ""))
        if not _judged_type(rtype):
            continue
        props = state.get("inputs")
        if not isinstance(props, dict) or not props:
            props = state.get("outputs") if isinstance(state.get("outputs"), dict) else {}
        urn = str(state.get("urn") or step.get("urn") or "")
        out.append({"type": rtype, "name": _resource_name(urn), "urn": urn, "props": props})
    return out


def urns_from_event_log(lines: Iterable[str]) -> set[str]:
    """URNs of the resources a run registered (every step, same ones included, is a resourcePreEvent)."""
    out: set[str] = set()
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        pre = event.get("resourcePreEvent") if isinstance(event, dict) else None
        meta = pre.get("metadata") if isinstance(pre, dict) else None
        if isinstance(meta, dict) and meta.get("op") not in _GONE and _judged_type(str(meta.get("type", ""))):
            out.add(str(meta.get("urn") or ""))
    return out


def violations_from_event_log(lines: Iterable[str]) -> list[Violation]:
    """Policy violations the engine reported (``pulumi ... --event-log``)."""
    out: list[Violation] = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"event log line {n}: not JSON ({e.msg})") from e
        pe = event.get("policyEvent") if isinstance(event, dict) else None
        if not isinstance(pe, dict) or pe.get("policyPackName") not in (PACK_NAME, None):
            continue
        urn = str(pe.get("resourceUrn") or "")
        message = str(pe.get("message") or "")
        rule = BY_NAME.get(str(pe.get("policyName")))
        if rule is not None and message.startswith(rule.RULE.description):
            message = message[len(rule.RULE.description) :].lstrip("\n")
        out.append(Violation(str(pe.get("policyName")), message, urn, "", _resource_name(urn)))
    return out


def build_report(
    resources: Sequence[Mapping[str, Any]] | None,
    engine_violations: Sequence[Violation] | None = None,
    config: Mapping[str, Any] | None = None,
    run_id: str = "",
    not_evaluated: str | None = None,
) -> dict[str, Any]:
    """The report as a JSON-able dict (deterministic for a given input).

    ``not_evaluated`` says why the input does not cover the stack: nothing may then PASS.
    """
    evaluated = resources is not None
    rule_violations = evaluate(resources or [], config) if evaluated else []
    engine = list(engine_violations or [])
    by_rule: dict[str, list[dict[str, str]]] = {m.RULE.name: [] for m in ALL}
    seen: set[tuple[str, str, str]] = set()
    for source, items in (("engine", engine), ("rules", rule_violations)):
        for v in items:
            key = (v.rule, v.urn, v.message)
            if key in seen:
                continue
            seen.add(key)
            by_rule.setdefault(v.rule, []).append(
                {
                    "message": v.message,
                    "urn": v.urn,
                    "resourceType": v.resource_type,
                    "resourceName": v.resource_name,
                    "source": source,
                }
            )
    has_input = (evaluated or engine_violations is not None) and not not_evaluated
    rules_out: list[dict[str, Any]] = []
    controls: dict[str, dict[str, Any]] = {}
    for module in ALL:
        rule = module.RULE
        vs = sorted(by_rule.get(rule.name, []), key=lambda v: (v["urn"], v["message"]))
        cfg = (config or {}).get(rule.name)
        disabled = cfg == "disabled" or (isinstance(cfg, Mapping) and cfg.get("enforcementLevel") == "disabled")
        level = (cfg.get("enforcementLevel") if isinstance(cfg, Mapping) else cfg) or rule.default_level
        advisory = level == "advisory"
        failed_status = "advisory" if advisory else "fail"  # advisory findings are reported, never fail a run
        status = "disabled" if disabled else (failed_status if vs else ("pass" if has_input else "not-evaluated"))
        rules_out.append(
            {
                "name": rule.name,
                "description": rule.description,
                "severity": rule.severity,
                "scope": rule.scope,
                "resourceTypes": list(rule.resource_types),
                "frameworks": {k: list(v) for k, v in sorted(rule.frameworks.items())},
                "remediation": rule.remediation,
                "status": status,
                "violations": vs,
            }
        )
        for control in rule.controls():
            entry = controls.setdefault(control, {"rules": [], "status": "pass" if has_input else "not-evaluated"})
            entry["rules"].append(rule.name)
            if status == "fail":
                entry["status"] = "fail"
    unknown_rules = sorted(set(by_rule) - {m.RULE.name for m in ALL})
    for name in unknown_rules:  # events from policies this pack version does not know
        rules_out.append(
            {
                "name": name,
                "description": "",
                "severity": "",
                "scope": "",
                "resourceTypes": [],
                "frameworks": {},
                "remediation": "",
                "status": "fail",
                "violations": sorted(by_rule[name], key=lambda v: (v["urn"], v["message"])),
            }
        )
    failed = [r for r in rules_out if r["status"] == "fail"]
    return {
        "schemaVersion": SCHEMA_VERSION,
        "policyPack": PACK_NAME,
        "runId": run_id,
        "resourcesEvaluated": len(resources or []),
        "notEvaluatedReason": not_evaluated or "",
        "summary": {
            "rules": len(rules_out),
            "passed": sum(r["status"] == "pass" for r in rules_out),
            "failed": len(failed),
            "disabled": sum(r["status"] == "disabled" for r in rules_out),
            "advisory": sum(r["status"] == "advisory" for r in rules_out),
            "notEvaluated": sum(r["status"] == "not-evaluated" for r in rules_out),
            "violations": sum(len(r["violations"]) for r in rules_out),
            "result": "fail" if failed else ("pass" if has_input else "not-evaluated"),
        },
        "rules": rules_out,
        "controls": dict(sorted(controls.items())),
    }


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    lines = [
        f"# Compliance report — {report['policyPack']}",
        "",
        (f"Run: `{report['runId']}`  " if report.get("runId") else "")
        + f"Result: **{s['result'].upper().replace('-', ' ')}** — {s['passed']} passed, {s['failed']} failed, "
        f"{s['disabled']} disabled, {s['notEvaluated']} not evaluated; {s['violations']} violation(s) over "
        f"{report['resourcesEvaluated']} resource(s).",
        "",
        *(
            [f"**NOT EVALUATED**: {report['notEvaluatedReason']}. No control is shown as passed.", ""]
            if report.get("notEvaluatedReason")
            else []
        ),
        "## Rules",
        "",
        "| Rule | Severity | Scope | Status | Violations | Controls |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rules"]:
        ctl = "; ".join(f"{fw} {', '.join(cs)}" for fw, cs in r["frameworks"].items())
        lines.append(
            f"| `{r['name']}` | {r['severity']} | {r['scope']} | {r['status'].upper()} | {len(r['violations'])} "
            f"| {_md_escape(ctl)} |"
        )
    lines += ["", "## Controls", "", "| Control | Status | Rules |", "|---|---|---|"]
    for control, entry in report["controls"].items():
        lines.append(f"| {control} | {entry['status'].upper()} | {', '.join(f'`{n}`' for n in entry['rules'])} |")
    failing = [r for r in report["rules"] if r["violations"]]
    if failing:
        lines += ["", "## Violations", ""]
        for r in failing:
            lines.append(f"### `{r['name']}` ({r['severity']})")
            lines.append("")
            for v in r["violations"]:
                where = v["urn"] or v["resourceName"] or "stack"
                lines.append(f"- `{where}`: {_md_escape(v['message'])}")
            if r["remediation"]:
                lines += ["", f"Remediation: {r['remediation']}"]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policies.report",
        description="Write a JSON + Markdown compliance report for the Claude Enhancer policy pack: the controls "
        "(SOC2, ISO27001, CIS, OWASP, GDPR) each rule covers and pass/fail for one run.",
        epilog="Example: pulumi preview --json --policy-pack policies > preview.json; "
        "python -m policies.report --preview-json preview.json --out-dir reports/",
    )
    parser.add_argument("--preview-json", help="output of `pulumi preview --json` (rules are re-run on its steps)")
    parser.add_argument("--event-log", help="file from `pulumi preview --event-log FILE --policy-pack policies`")
    parser.add_argument("--resources", help="JSON list of {type, name, urn, props} to run the rules over")
    parser.add_argument("--state", help="output of `pulumi stack export`: the resources every run must cover")
    parser.add_argument("--config", help="policy-pack config JSON (as for --policy-pack-config)")
    parser.add_argument("--out-dir", default="reports", help="directory for compliance-report.{json,md}")
    parser.add_argument("--stdout", choices=("json", "md"), help="print this format instead of writing files")
    parser.add_argument("--run-id", default="", help="identifier of the run (e.g. CI run id / commit)")
    parser.add_argument("--fail-on-violation", action="store_true", help="exit 1 when any rule failed")
    args = parser.parse_args(argv)

    if not (args.preview_json or args.event_log or args.resources or args.state):
        parser.error("give at least one of --preview-json, --event-log, --resources, --state")
    try:
        resources: list[dict[str, Any]] | None = None
        gaps: list[str] = []
        seen_urns: set[str] = set()
        if args.preview_json:
            doc = _load_json(args.preview_json)
            resources = resources_from_preview(doc)
            gap = preview_coverage(doc)
            gaps += [gap] if gap else []
            seen_urns |= {str(r["urn"]) for r in resources}
            seen_urns |= {str(s.get("urn")) for s in doc.get("steps") or [] if isinstance(s, dict)}
        if args.resources:
            doc = _load_json(args.resources)
            if not isinstance(doc, list) or not all(isinstance(r, dict) and "type" in r for r in doc):
                raise InputError(f"{args.resources}: expected a JSON list of objects with a 'type'")
            resources = (resources or []) + doc
            seen_urns |= {str(r.get("urn") or "") for r in doc}
        engine: list[Violation] | None = None
        if args.event_log:
            try:
                text = Path(args.event_log).read_text(encoding="utf-8")
            except FileNotFoundError as e:
                raise InputError(f"{args.event_log}: no such file") from e
            engine = violations_from_event_log(text.splitlines())
            logged = urns_from_event_log(text.splitlines())
            seen_urns |= logged
            if not logged and resources is None:
                gaps.append("the event log registers no resource")
        if args.state:
            held = resources_from_state(_load_json(args.state))
            if resources is None and engine is None:
                resources = held
                seen_urns |= {str(r["urn"]) for r in held}
            missing = sorted(str(r["urn"]) for r in held if str(r["urn"]) not in seen_urns)
            if missing:
                gaps.append(
                    f"{len(missing)} of the {len(held)} resources the stack holds were not seen (first: {missing[0]})"
                )
        if resources is not None and not resources and not (engine is not None and seen_urns):
            gaps.append("no resource was seen")
        config = _load_json(args.config) if args.config else {}
        if not isinstance(config, dict):
            raise InputError(f"{args.config}: expected a JSON object of rule name -> config")
    except InputError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2

    report = build_report(resources, engine, config, args.run_id, "; ".join(gaps) or None)
    as_json = json.dumps(report, indent=2, sort_keys=False) + "\n"
    as_md = render_markdown(report)
    if args.stdout == "json":
        sys.stdout.write(as_json)
    elif args.stdout == "md":
        sys.stdout.write(as_md)
    else:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compliance-report.json").write_text(as_json, encoding="utf-8")
        (out / "compliance-report.md").write_text(as_md, encoding="utf-8")
        s = report["summary"]
        print(f"{s['result']}: {s['passed']} passed, {s['failed']} failed -> {out}/compliance-report.{{json,md}}")
    incomplete = report["summary"]["result"] == "not-evaluated"
    if incomplete:
        print(f"report: NOT EVALUATED: {report['notEvaluatedReason'] or 'no input'}", file=sys.stderr)
    return 1 if args.fail_on_violation and (report["summary"]["failed"] or incomplete) else 0


if __name__ == "__main__":
    raise SystemExit(main())
