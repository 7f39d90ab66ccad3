"""Real identities on the local platform: one user per rollout role.

Each is a client certificate signed by the platform's CA (``$CE_HOME/platform/pki``, made by
``platform/local.sh``), with the role's group as the subject's O (the API server's x509
authenticator maps CN to the user name and each O to a group), and a kubeconfig
``$CE_HOME/identities/<role>.kubeconfig`` (0600). openssl, as local.sh signs its own certs.
Idempotent: an identity newer than the CA is kept. ``./ce rollout identities`` runs it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from driver.audit import ce_home
from rollout import approvals

USER_DOMAIN = "claude-enhancer.local"


def platform_dir() -> Path:
    return ce_home() / "platform"


def identities_dir() -> Path:
    return ce_home() / "identities"


def user_name(role: str) -> str:
    return f"{role}@{USER_DOMAIN}"


def issue(
    user: str,
    groups: Sequence[str],
    kubeconfig: Path,
    *,
    pki: Path | None = None,
    admin_kubeconfig: Path | None = None,
) -> Path:
    """A key, a client certificate (CN=user, O=each group) and a kubeconfig for it."""
    pki = pki or platform_dir() / "pki"
    admin = yaml.safe_load((admin_kubeconfig or platform_dir() / "kubeconfig").read_text())
    kubeconfig.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    subj = "".join(f"/O={g}" for g in groups) + f"/CN={user}"
    with tempfile.TemporaryDirectory() as tmp:
        key, csr, crt, ext = (Path(tmp) / n for n in ("u.key", "u.csr", "u.crt", "u.ext"))
        ext.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"
        )

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", subj)  # fmt: skip
        run("x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey",
            str(pki / "ca.key"), "-CAcreateserial", "-CAserial", str(Path(tmp) / "ca.srl"),
            "-out", str(crt), "-days", "825", "-extfile", str(ext))  # fmt: skip
        b64 = {p: base64.b64encode(p.read_bytes()).decode() for p in (key, crt)}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64[crt], "client-key-data": b64[key]},
            }
        ],
        "contexts": [
            {"name": user, "context": {"cluster": admin["clusters"][0]["name"], "user": user}}
        ],
        "current-context": user,
    }
    tmp_path = kubeconfig.with_suffix(".tmp")
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f)
    tmp_path.replace(kubeconfig)
    return kubeconfig


def kubeconfig_for(role: str) -> Path:
    return identities_dir() / f"{role}.kubeconfig"


def ensure_role_identities(out: Path | None = None) -> dict[str, Path]:
    """One identity per approving role; an existing one newer than the CA is kept."""
    ca = platform_dir() / "pki" / "ca.crt"
    if not ca.exists():
        raise FileNotFoundError(f"{ca}: start the local platform first (`./ce platform up`)")
    made = {}
    for role in approvals.roles():
        path = (out or identities_dir()) / f"{role}.kubeconfig"
        if not (path.exists() and path.stat().st_mtime > ca.stat().st_mtime):
            issue(user_name(role), [approvals.role_group(role)], path)
        made[role] = path
    return made
