from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from policy_fixtures import deployment

from policies import report
from policies.rules import ALL

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def preview_doc(*resources: tuple[str, str, dict]) -> dict:
    steps = [
        {
            "op": "same",
            "urn": "urn:pulumi:local::claude-enhancer::pulumi:pulumi:Stack::ce-local",
            "newState": {
                "type": "pulumi:pulumi:Stack",
                "urn": "urn:pulumi:local::p::pulumi:pulumi:Stack::s",
            },
        }
    ]
    for rtype, name, props in resources:
        urn = f"urn:pulumi:local::claude-enhancer::{rtype}::{name}"
        steps.append(
            {"op": "create", "urn": urn, "newState": {"type": rtype, "urn": urn, "inputs": props}}
        )
    steps.append({"op": "delete", "urn": "urn:x::gone", "newState": None})
    return {"steps": steps, "diagnostics": [], "changeSummary": {"create": len(resources)}}


BAD = deployment(name="bad")
BAD["spec"]["template"]["spec"]["hostNetwork"] = True


def test_help() -> None:
    out = subprocess.run(
        [PY, "-m", "policies.report", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--preview-json" in out.stdout and "compliance report" in out.stdout.lower()
    out = subprocess.run(
        [PY, "policies/report.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "--event-log" in out.stdout


def test_resources_from_preview() -> None:
    res = report.resources_from_preview(preview_doc(("kubernetes:apps/v1:Deployment", "bad", BAD)))
    assert [(r["type"], r["name"]) for r in res] == [("kubernetes:apps/v1:Deployment", "bad")]
    with pytest.raises(report.InputError):
        report.resources_from_preview({"nope": 1})


def test_build_report_pass_fail_and_controls() -> None:
    res = report.resources_from_preview(preview_doc(("kubernetes:apps/v1:Deployment", "bad", BAD)))
    rep = report.build_report(res, run_id="ci-1")
    rules = {r["name"]: r for r in rep["rules"]}
    assert set(rules) == {m.RULE.name for m in ALL}
    assert rules["pod-security-restricted"]["status"] == "fail"
    assert rules["pod-security-restricted"]["violations"] == [
        {
            "message": "pod spec.hostNetwork must not be true",
            "urn": "urn:pulumi:local::claude-enhancer::kubernetes:apps/v1:Deployment::bad",
            "resourceType": "kubernetes:apps/v1:Deployment",
            "resourceName": "bad",
            "source": "rules",
        }
    ]
    assert rules["istio-mtls-strict"]["status"] == "pass"
    assert rules["pod-security-restricted"]["frameworks"]["SOC2"] == ["CC6.1", "CC6.8"]
    assert rep["controls"]["SOC2:CC6.8"]["status"] == "fail"
    assert "pod-security-restricted" in rep["controls"]["ISO27001:A.8.9"]["rules"]
    assert rep["summary"]["result"] == "fail"
    assert rep["summary"]["rules"] == len(ALL)
    assert rep["summary"]["passed"] + rep["summary"]["failed"] + rep["summary"]["advisory"] == len(
        ALL
    )
    # deterministic
    assert json.dumps(rep) == json.dumps(report.build_report(res, run_id="ci-1"))


def test_not_evaluated_without_input_and_disabled() -> None:
    rep = report.build_report(None)
    assert {r["status"] for r in rep["rules"]} == {"not-evaluated"}
    rep = report.build_report([], config={"vault-audit-device": {"enforcementLevel": "disabled"}})
    statuses = {r["name"]: r["status"] for r in rep["rules"]}
    assert (
        statuses["vault-audit-device"] == "disabled"
        and statuses["pod-security-restricted"] == "pass"
    )


def test_event_log() -> None:
    desc = {m.RULE.name: m.RULE.description for m in ALL}["istio-mtls-strict"]
    lines = [
        json.dumps({"sequence": 1, "timestamp": 1, "diagnosticEvent": {"message": "x"}}),
        json.dumps(
            {
                "sequence": 2,
                "timestamp": 2,
                "policyEvent": {
                    "resourceUrn": "urn:pulumi:s::p::kubernetes:security.istio.io/v1:PeerAuthentication::pa",
                    "message": desc + "\nspec.mtls.mode is PERMISSIVE; must be STRICT",
                    "color": "never",
                    "policyName": "istio-mtls-strict",
                    "policyPackName": "claude-enhancer-policies",
                    "policyPackVersion": "0.1.0",
                    "enforcementLevel": "mandatory",
                },
            }
        ),
        "",
    ]
    vs = report.violations_from_event_log(lines)
    assert [(v.rule, v.message, v.resource_name) for v in vs] == [
        ("istio-mtls-strict", "spec.mtls.mode is PERMISSIVE; must be STRICT", "pa")
    ]
    rep = report.build_report(None, vs)
    statuses = {r["name"]: r["status"] for r in rep["rules"]}
    assert statuses["istio-mtls-strict"] == "fail" and statuses["pod-security-restricted"] == "pass"
    assert rep["rules"][3]["violations"][0]["source"] == "engine"
    with pytest.raises(report.InputError):
        report.violations_from_event_log(["{not json"])


def test_markdown() -> None:
    res = report.resources_from_preview(preview_doc(("kubernetes:apps/v1:Deployment", "bad", BAD)))
    md = report.render_markdown(report.build_report(res, run_id="r1"))
    assert md.startswith("# Compliance report — claude-enhancer-policies\n")
    assert "| `pod-security-restricted` | high | resource | FAIL |" in md
    assert "| `istio-mtls-strict` | critical | resource | PASS | 0 |" in md
    assert "| SOC2:CC6.8 | FAIL |" in md
    assert "## Violations" in md and "pod spec.hostNetwork must not be true" in md


def test_cli_writes_files_and_exit_codes(tmp_path: Path) -> None:
    pj = tmp_path / "preview.json"
    pj.write_text(json.dumps(preview_doc(("kubernetes:apps/v1:Deployment", "bad", BAD))))
    out = tmp_path / "out"
    r = subprocess.run(
        [
            PY,
            "-m",
            "policies.report",
            "--preview-json",
            str(pj),
            "--out-dir",
            str(out),
            "--run-id",
            "t",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "compliance-report.json").read_text())
    assert data["summary"]["result"] == "fail" and data["runId"] == "t"
    assert (out / "compliance-report.md").read_text().startswith("# Compliance report")
    r = subprocess.run(
        [
            PY,
            "-m",
            "policies.report",
            "--preview-json",
            str(pj),
            "--stdout",
            "json",
            "--fail-on-violation",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and json.loads(r.stdout)["summary"]["failed"] >= 1
    res = tmp_path / "res.json"
    res.write_text(
        json.dumps(
            [{"type": "kubernetes:core/v1:ConfigMap", "name": "c", "props": {"data": {"a": "b"}}}]
        )
    )
    r = subprocess.run(
        [
            PY,
            "-m",
            "policies.report",
            "--resources",
            str(res),
            "--stdout",
            "md",
            "--fail-on-violation",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "Result: **PASS**" in r.stdout
    r = subprocess.run(
        [PY, "-m", "policies.report", "--preview-json", str(tmp_path / "missing.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "no such file" in r.stderr
    r = subprocess.run([PY, "-m", "policies.report"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2


# ConfigMaps: compliant on their own, and no stack rule asks for more around them
GOOD = {"metadata": {"name": "cfg", "namespace": "claude-enhancer"}, "data": {"LOG_LEVEL": "info"}}
DEP = "kubernetes:core/v1:ConfigMap"


def same_steps_doc(show_sames: bool) -> dict:
    """A preview of an unchanged stack (2 ConfigMaps + the Stack), as `pulumi preview --json` writes it."""
    stack_urn = "urn:pulumi:local::claude-enhancer::pulumi:pulumi:Stack::claude-enhancer-local"
    steps = [
        {
            "op": "same",
            "urn": stack_urn,
            "newState": {"type": "pulumi:pulumi:Stack", "urn": stack_urn},
        }
    ]
    if show_sames:
        for name in ("a", "b"):
            urn = f"urn:pulumi:local::claude-enhancer::{DEP}::{name}"
            steps.append(
                {"op": "same", "urn": urn, "newState": {"type": DEP, "urn": urn, "inputs": GOOD}}
            )
    return {"steps": steps, "diagnostics": [], "changeSummary": {"same": 3}}


def state_doc(names: tuple[str, ...]) -> dict:
    resources = [
        {
            "urn": "urn:pulumi:local::claude-enhancer::pulumi:pulumi:Stack::s",
            "type": "pulumi:pulumi:Stack",
        }
    ]
    resources += [
        {
            "urn": f"urn:pulumi:local::claude-enhancer::{DEP}::{n}",
            "type": DEP,
            "inputs": GOOD,
            "outputs": {},
        }
        for n in names
    ]
    return {"version": 3, "deployment": {"resources": resources}}


def run_report(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "policies.report", "--stdout", "md", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_unchanged_stack_without_sames_is_not_evaluated(tmp_path: Path) -> None:
    """Issue 13: an unchanged stack's preview lists no resource step; the report must not PASS it."""
    pj = tmp_path / "preview.json"
    pj.write_text(json.dumps(same_steps_doc(show_sames=False)))
    r = run_report(tmp_path, "--preview-json", str(pj), "--fail-on-violation")
    assert r.returncode == 1
    assert "Result: **NOT EVALUATED**" in r.stdout and "PASS" not in r.stdout
    assert "the preview lists 1 of the 3 resources it counts" in r.stdout
    assert (
        run_report(tmp_path, "--preview-json", str(pj)).returncode == 0
    )  # informational without the flag
    pj.write_text(json.dumps(same_steps_doc(show_sames=True)))
    r = run_report(tmp_path, "--preview-json", str(pj), "--fail-on-violation")
    assert r.returncode == 0 and "Result: **PASS**" in r.stdout and "over 2 resource(s)" in r.stdout


def test_state_is_judged_and_bounds_other_inputs(tmp_path: Path) -> None:
    st = tmp_path / "state.json"
    st.write_text(json.dumps(state_doc(("a", "b"))))
    r = run_report(tmp_path, "--state", str(st), "--fail-on-violation")
    assert r.returncode == 0 and "Result: **PASS**" in r.stdout and "over 2 resource(s)" in r.stdout
    pj = tmp_path / "preview.json"
    doc = same_steps_doc(show_sames=True)
    doc["steps"] = doc["steps"][:2]  # a digest that lost "b" (and claims nothing else)
    doc["changeSummary"] = {"same": 2}
    pj.write_text(json.dumps(doc))
    r = run_report(tmp_path, "--preview-json", str(pj), "--state", str(st), "--fail-on-violation")
    assert r.returncode == 1 and "1 of the 2 resources the stack holds were not seen" in r.stdout
    st.write_text(json.dumps({"version": 3}))
    assert run_report(tmp_path, "--state", str(st)).returncode == 2


def test_empty_inputs_are_not_evaluated(tmp_path: Path) -> None:
    res = tmp_path / "res.json"
    res.write_text("[]")
    r = run_report(tmp_path, "--resources", str(res), "--fail-on-violation")
    assert r.returncode == 1 and "no resource was seen" in r.stdout
    log = tmp_path / "events.jsonl"
    log.write_text(
        json.dumps({"sequence": 1, "timestamp": 1, "summaryEvent": {"resourceChanges": {}}}) + "\n"
    )
    r = run_report(tmp_path, "--event-log", str(log), "--fail-on-violation")
    assert r.returncode == 1 and "the event log registers no resource" in r.stdout
    pre = {
        "resourcePreEvent": {
            "metadata": {
                "op": "same",
                "urn": f"urn:pulumi:local::claude-enhancer::{DEP}::a",
                "type": DEP,
            }
        }
    }
    log.write_text(json.dumps(pre) + "\n")
    st = tmp_path / "state.json"
    st.write_text(json.dumps(state_doc(("a", "b"))))
    r = run_report(tmp_path, "--event-log", str(log), "--state", str(st), "--fail-on-violation")
    assert r.returncode == 1 and "1 of the 2 resources the stack holds were not seen" in r.stdout
    st.write_text(json.dumps(state_doc(("a",))))
    r = run_report(tmp_path, "--event-log", str(log), "--state", str(st), "--fail-on-violation")
    assert r.returncode == 0 and "Result: **PASS**" in r.stdout
