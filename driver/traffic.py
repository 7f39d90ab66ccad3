"""Move traffic at once: server-side apply of the VirtualService the program would deploy.

The manifest is the program's own (stack output ``trafficRollback``, built by
``components.mesh.virtual_service_manifest``), applied under the field manager
the kubernetes provider uses for that object, so the provider still owns every
field and the next ``up`` converges with nothing left to change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from typing import Any, Protocol

PROVIDER_MANAGER_PREFIX = "pulumi-kubernetes"


class TrafficError(RuntimeError):
    pass


class TrafficSwitch(Protocol):
    def apply(self, manifest: Mapping[str, Any]) -> float:
        """Apply ``manifest`` now; return the seconds it took."""
        ...


def provider_field_manager(live: Mapping[str, Any]) -> str:
    """Pure: the field manager of the provider's server-side apply on ``live``."""
    managers = [
        str(m.get("manager", ""))
        for m in (live.get("metadata", {}).get("managedFields") or [])
        if m.get("operation") == "Apply"
    ]
    ours = [m for m in managers if m.startswith(PROVIDER_MANAGER_PREFIX)]
    if not ours:
        raise TrafficError(
            f"no {PROVIDER_MANAGER_PREFIX}* Apply manager on the live object (managers: {managers})"
        )
    return ours[0]


def _built_kubectl() -> str | None:
    import glob

    home = os.environ.get("CE_HOME", os.path.expanduser("~/.cache/ce"))
    tools = os.environ.get("CE_TOOLS", os.path.join(home, "tools"))
    found = sorted(glob.glob(os.path.join(tools, "kubernetes-*", "bin", "kubectl")))
    return found[-1] if found else None


def find_kubectl(given: str | None = None) -> str:
    """``given``, else $CE_KUBECTL, PATH or the toolchain's build (TrafficError: none)."""
    path = given or os.environ.get("CE_KUBECTL") or shutil.which("kubectl") or _built_kubectl()
    if not path or not os.path.exists(path):
        raise TrafficError(
            "kubectl not found ($CE_KUBECTL, PATH or $CE_TOOLS/kubernetes-*/bin); "
            "run `./ce bootstrap`"
        )
    return path


class KubectlTraffic:
    """``kubectl apply --server-side`` with the provider's field manager (found once, cached)."""

    def __init__(self, kubectl: str | None = None, kubeconfig: str | None = None) -> None:
        self.kubectl = find_kubectl(kubectl)
        self.kubeconfig = kubeconfig or os.environ.get("KUBECONFIG")
        self._managers: dict[tuple[str, str], str] = {}

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        cmd = [self.kubectl, *args]
        if self.kubeconfig:
            cmd += ["--kubeconfig", self.kubeconfig]
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise TrafficError(f"{' '.join(args[:3])}: {r.stderr.strip()[:500]}")
        return r.stdout

    def field_manager(self, manifest: Mapping[str, Any]) -> str:
        md = manifest["metadata"]
        key = (str(md["namespace"]), str(md["name"]))
        if key not in self._managers:
            kind = f"{manifest['kind'].lower()}.{manifest['apiVersion'].split('/')[0]}"
            live = json.loads(
                self._run(
                    [
                        "get",
                        kind,
                        md["name"],
                        "-n",
                        md["namespace"],
                        "-o",
                        "json",
                        "--show-managed-fields",
                    ]  # kubectl hides them by default
                )
            )
            self._managers[key] = provider_field_manager(live)
        return self._managers[key]

    def apply(self, manifest: Mapping[str, Any]) -> float:
        manager = self.field_manager(manifest)
        t0 = time.monotonic()
        self._run(
            [
                "apply",
                "--server-side",
                "--force-conflicts",
                f"--field-manager={manager}",
                "-f",
                "-",
            ],
            stdin=json.dumps(dict(manifest)),
        )
        return time.monotonic() - t0
