"""Policy pack cost in a preview, in process (no CLI, no platform): bench/policy_bench.py.

A preview with ``--policy-pack policies`` adds to the program's own run: the pack process's
start (the engine starts the program only once the pack has answered ``Configure``: pkg/v3
engine/update.go ``loadPolicyPlugins``, seen in a ``-v=9`` preview log), one ``Remediate`` and
one ``Analyze`` per resource as it is registered (resource/deploy/step_generator.go) and one
``AnalyzeStack`` at the end. This bench measures each part the way the
CLI drives it (tests/policies/analyzer_service.py: ``python -u policies``, gRPC, wire-format
properties) over the resources the program registers under Pulumi mocks
(tests/noncompliant/_mockrun.py), and the mock run itself as "the preview without the pack".

The mock run has no engine and no provider plugins, so it is shorter than a real preview:
ratios against it overstate the pack's share: (program + pack start + Remediate and Analyze
calls + AnalyzeStack) / program. bench/preview_pack_bench.py measures the real CLI.

    python bench/policy_bench.py [--runs 5] [--stacks local,prod] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "policies"), str(ROOT / "bench")]

from analyzer_service import PackService, _struct  # noqa: E402
from pulumi.runtime import proto  # noqa: E402
from sections import median_max, merge_section  # noqa: E402

from policies.pack_config import build_config  # noqa: E402

SECTION = "policy-bench"
CHECKOV_RULES = ("kubernetes-checkov", "kubernetes-checkov-advisory")
ENV = {
    "VAULT_TOKEN": "mock-token",
    "CE_POSTGRES_ADMIN_PASSWORD": "mock-password",
    **{
        k: f"mock-{k.lower()}"
        for k in (
            "CE_TLS_CERTIFICATE",
            "CE_TLS_PRIVATE_KEY",
            "CE_BACKUP_S3_ACCESS_KEY_ID",
            "CE_BACKUP_S3_SECRET_ACCESS_KEY",
        )
    },
}


def program_run(stack: str) -> tuple[float, list[dict]]:
    """The program under mocks: wall seconds and the resources it registers."""
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "noncompliant" / "_mockrun.py"), str(ROOT), stack],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **ENV},
        check=True,
    )
    return time.perf_counter() - t, json.loads(r.stdout)


def pack_run(resources: list[dict], config: dict) -> tuple[float, float, float, int]:
    """(start, analyze, stack) seconds for one pack process, and the number of diagnostics."""
    t0 = time.perf_counter()  # start: spawn, imports, GetAnalyzerInfo, Configure
    service = PackService()
    try:
        service.configure(config)
        # the engine (Go) builds the requests; only the RPCs are on the preview's path
        requests = [
            proto.AnalyzeRequest(
                type=r["type"], properties=_struct(r["props"]), urn=r["urn"], name=r["name"]
            )
            for r in resources
        ]
        stack_request = proto.AnalyzeStackRequest(
            resources=[
                proto.AnalyzerResource(type=q.type, name=q.name, urn=q.urn, properties=q.properties)
                for q in requests
            ]
        )
        t1 = time.perf_counter()
        diags = 0
        for request in requests:  # the engine sends each resource to Remediate, then to Analyze
            service.stub.Remediate(request, timeout=60)
            diags += len(service.stub.Analyze(request, timeout=60).diagnostics)
        t2 = time.perf_counter()
        diags += len(service.stub.AnalyzeStack(stack_request, timeout=60).diagnostics)
        t3 = time.perf_counter()
    finally:
        service.close()
    return t1 - t0, t2 - t1, t3 - t2, diags


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--stacks", default="local,prod")
    p.add_argument("--write", default="", help="merge the results into this BENCHMARKS.md")
    a = p.parse_args(argv)
    rows = []
    for stack in a.stacks.split(","):
        config = build_config(environment=stack)
        no_checkov = {**config, **{r: {"enforcementLevel": "disabled"} for r in CHECKOV_RULES}}
        prog, start, analyze, stack_t, bare = [], [], [], [], []
        resources: list[dict] = []
        for _ in range(a.runs):
            t, resources = program_run(stack)
            prog.append(t)
            s, an, st, _ = pack_run(resources, config)
            start.append(s)
            analyze.append(an)
            stack_t.append(st)
            bs, ban, bst, _ = pack_run(resources, no_checkov)
            bare.append(bs + ban + bst)
        pm, sm, am, stm, bm = (median_max(x)[0] for x in (prog, start, analyze, stack_t, bare))
        ratio = (pm + sm + am + stm) / pm
        rows.append((stack, len(resources), pm, sm, am, stm, bm, ratio))
        print(
            f"{stack}: {len(resources)} resources; program {pm:.2f}s, pack start {sm:.2f}s, "
            f"Remediate+Analyze x{len(resources)} {am:.2f}s, AnalyzeStack {stm:.3f}s; ratio {ratio:.2f}; "
            f"whole pack without checkov {bm:.2f}s"
        )
    if a.write:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"<!-- {SECTION}:begin -->",
            "## Policy pack cost in a preview (bench/policy_bench.py)",
            "",
            f"Measured {when} on {platform.node()} ({os.cpu_count()} cores, {platform.system()}), {a.runs} run(s) "
            "per stack, medians, seconds. Goal (issue 25): preview with the pack / without <= 1.3. In process: the "
            "program under Pulumi mocks stands for the preview without the pack (a real preview adds the engine and "
            "the provider plugins, so these ratios overstate the pack's share); the pack runs as the CLI runs it "
            "(its own process, gRPC, every rule incl. checkov).",
            "",
            "| stack | resources | program s | pack start s | Remediate+Analyze (all) s | AnalyzeStack s | "
            "pack without checkov s | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for stack, n, pm, sm, am, stm, bm, ratio in rows:
            lines.append(
                f"| {stack} | {n} | {pm:.2f} | {sm:.2f} | {am:.2f} | {stm:.3f} | {bm:.2f} | {ratio:.2f} |"
            )
        lines += [
            "",
            "Notes:",
            "- nothing overlaps: the engine starts the program only once the pack has answered Configure "
            "(pkg/v3 engine/update.go, loadPolicyPlugins), and each resource's Remediate and Analyze sit on "
            "the step generator's path; checkov's checks load in a thread after Configure, while the engine "
            "starts the program (here: while the first requests arrive).",
            '- requests are built before the timer (the engine, in Go, builds them); "pack without checkov" is '
            "start + Remediate/Analyze + AnalyzeStack with both checkov rules disabled (checkov is then never "
            "imported).",
            "- before issue 25 pulumi-policy converted every resource's properties once per policy: in process the "
            "local stack's Analyze calls took 2.5 s and AnalyzeStack 1.1 s; the pack now converts each once.",
            f"<!-- {SECTION}:end -->",
        ]
        path = Path(a.write)
        path.write_text(
            merge_section(
                path.read_text() if path.exists() else "", "\n".join(lines) + "\n", SECTION
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
