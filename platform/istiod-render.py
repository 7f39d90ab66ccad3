#!/usr/bin/env python3
"""Split `istioctl manifest generate` output into the files a host-run istiod injector reads.

    istioctl manifest generate ... | istiod-render.py OUT_DIR

Writes, from Istio's own rendered charts (platform/build.sh b_istiod):
  OUT_DIR/inject/config, inject/values   the sidecar injector's templates and values (istiod
                                          reads them from ./var/lib/istio/inject when present)
  OUT_DIR/mesh, OUT_DIR/meshNetworks      the mesh config (--meshConfig, --networksConfig)
  OUT_DIR/mutatingwebhook.json            the MutatingWebhookConfiguration the apiserver calls

The mesh config is Istio's default with ingress status writing off: on the local platform istiod
must not write status onto the program's objects (it would show as drift in a refresh).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def split(docs: list[dict]) -> dict[str, str]:
    """Pure: the output files (relative path -> text) from the rendered objects."""
    by_key = {(d.get("kind"), d.get("metadata", {}).get("name")): d for d in docs if d}
    injector = by_key.get(("ConfigMap", "istio-sidecar-injector"))
    mesh_cm = by_key.get(("ConfigMap", "istio"))
    mwc = by_key.get(("MutatingWebhookConfiguration", "istio-sidecar-injector"))
    missing = [n for n, o in (("injector ConfigMap", injector), ("mesh ConfigMap", mesh_cm),
                              ("MutatingWebhookConfiguration", mwc)) if o is None]  # fmt: skip
    if missing:
        raise SystemExit(f"istiod-render: not in the rendered manifest: {', '.join(missing)}")
    assert injector and mesh_cm and mwc
    mesh = yaml.safe_load(mesh_cm["data"]["mesh"]) or {}
    mesh["ingressControllerMode"] = "OFF"
    return {
        "inject/config": injector["data"]["config"],
        "inject/values": injector["data"]["values"],
        "mesh": yaml.safe_dump(mesh, sort_keys=True),
        "meshNetworks": mesh_cm["data"].get("meshNetworks", "networks: {}\n"),
        "mutatingwebhook.json": json.dumps(mwc, indent=1, sort_keys=True) + "\n",
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    for rel, text in split(list(yaml.safe_load_all(sys.stdin))).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
