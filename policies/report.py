"""Compliance report: which controls each rule covers and whether it passed in a run.

Inputs (any combination; at least one):

* ``--preview-json FILE``: the output of ``pulumi preview --json [--policy-pack policies]``.
  Pulumi's JSON digest does not carry policy events, so the report re-runs the
  pack's rules over the resources in its ``steps[].newState`` (inputs).
* ``--event-log FILE``: the file written by ``pulumi preview --event-log FILE
  --policy-pack policies``; its ``policyEvent`` entries are the violations the
  engine itself reported (authoritative for the run).
* ``--resources FILE``: a JSON list of ``{"type", "name", "urn", "props"}``
  resources to run the rules over (no Pulumi needed).

``--config FILE`` is a policy-pack config file (``{"rule-name": {...}}``) as
passed to ``pulumi preview --policy-pack-config``.

Writes ``compliance-report.json`` and ``compliance-report.md`` into ``--out-dir``
(or prints one of them with ``--stdout json|md``). Exit status is 0, or 1 with
``--fail-on-violation`` when any rule failed; 2 on bad input.
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
        if not rtype or rtype.startswith("pulumi:pulumi:Stack") or rtype.startswith("pulumi:providers:"):
            continue
        props = state.get("inputs")
        if not isinstance(props, dict) or not props:
            props = state.get("outputs") if isinstance(state.get("outputs"), dict) else {}
        urn = str(state.get("urn") or step.get("urn") or "")
        out.append({"type": rtype, "name": _resource_name(urn), "urn": urn, "props": props})
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
) -> dict[str, Any]:
    """The report as a JSON-able dict (deterministic for a given input)."""
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
    has_input = evaluated or engine_violations is not None
    rules_out: list[dict[str, Any]] = []
    controls: dict[str, dict[str, Any]] = {}
    for module in ALL:
        rule = module.RULE
        vs = sorted(by_rule.get(rule.name, []), key=lambda v: (v["urn"], v["message"]))
        cfg = (config or {}).get(rule.name)
        disabled = cfg == "disabled" or (isinstance(cfg, Mapping) and cfg.get("enforcementLevel") == "disabled")
        status = "disabled" if disabled else ("fail" if vs else ("pass" if has_input else "not-evaluated"))
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
        "summary": {
            "rules": len(rules_out),
            "passed": sum(r["status"] == "pass" for r in rules_out),
            "failed": len(failed),
            "disabled": sum(r["status"] == "disabled" for r in rules_out),
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
        + f"Result: **{s['result'].upper()}** — {s['passed']} passed, {s['failed']} failed, "
        f"{s['disabled']} disabled, {s['notEvaluated']} not evaluated; {s['violations']} violation(s) over "
        f"{report['resourcesEvaluated']} resource(s).",
        "",
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
    parser.add_argument("--config", help="policy-pack config JSON (as for --policy-pack-config)")
    parser.add_argument("--out-dir", default="reports", help="directory for compliance-report.{json,md}")
    parser.add_argument("--stdout", choices=("json", "md"), help="print this format instead of writing files")
    parser.add_argument("--run-id", default="", help="identifier of the run (e.g. CI run id / commit)")
    parser.add_argument("--fail-on-violation", action="store_true", help="exit 1 when any rule failed")
    args = parser.parse_args(argv)

    if not (args.preview_json or args.event_log or args.resources):
        parser.error("give at least one of --preview-json, --event-log, --resources")
    try:
        resources: list[dict[str, Any]] | None = None
        if args.preview_json:
            resources = resources_from_preview(_load_json(args.preview_json))
        if args.resources:
            doc = _load_json(args.resources)
            if not isinstance(doc, list) or not all(isinstance(r, dict) and "type" in r for r in doc):
                raise InputError(f"{args.resources}: expected a JSON list of objects with a 'type'")
            resources = (resources or []) + doc
        engine: list[Violation] | None = None
        if args.event_log:
            try:
                text = Path(args.event_log).read_text(encoding="utf-8")
            except FileNotFoundError as e:
                raise InputError(f"{args.event_log}: no such file") from e
            engine = violations_from_event_log(text.splitlines())
        config = _load_json(args.config) if args.config else {}
        if not isinstance(config, dict):
            raise InputError(f"{args.config}: expected a JSON object of rule name -> config")
    except InputError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2

    report = build_report(resources, engine, config, args.run_id)
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
    return 1 if args.fail_on_violation and report["summary"]["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
