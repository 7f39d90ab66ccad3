"""The edge TLS certificate: from secret config, or self-signed for the local stack.

``claude-enhancer:mesh.tlsSource`` picks where the Gateway's ``credentialName`` Secret gets its
material:

- ``secret``: ``claude-enhancer:tlsCertificate`` / ``claude-enhancer:tlsPrivateKey`` (secret
  config, PEM) — staging and prod bring a certificate their clients trust;
- ``selfSigned``: ``SelfSignedCertificate``, a ``pulumi.dynamic`` resource that runs
  ``openssl`` once (pulumi-tls is not buildable here, see docs/toolchain-notes.md); the private
  key is a secret output, encrypted in the state.

Istio reads ``credentialName`` from the namespace of the ingress gateway *workload* (the mesh
root namespace here), not from the Gateway resource's namespace: the Secret goes there.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

from components.common import labels, meta, secret_data
from components.settings import MeshSettings

#: inputs whose change issues a new certificate.
REPLACE_ON = ("host", "days")


def openssl_args(host: str, days: int, key: str, cert: str) -> list[str]:
    """Pure: the openssl command for a P-256 self-signed server certificate for ``host``."""
    return [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        str(days),
        "-subj",
        f"/CN={host}",
        "-addext",
        f"subjectAltName=DNS:{host}",
    ]


class SelfSignedProvider(ResourceProvider):
    """Dynamic provider of ``SelfSignedCertificate`` (created once, replaced on host change)."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in REPLACE_ON if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        host, days = str(props["host"]), int(props["days"])
        with tempfile.TemporaryDirectory() as d:
            key, cert = str(Path(d) / "tls.key"), str(Path(d) / "tls.crt")
            subprocess.run(openssl_args(host, days, key, cert), check=True, capture_output=True)
            outs = {
                "host": host,
                "days": days,
                "certificate": Path(cert).read_text(),
                "privateKey": Path(key).read_text(),
            }
        return CreateResult(id_=secrets.token_hex(8), outs=outs)


class SelfSignedCertificate(pulumi.dynamic.Resource, module="tls", name="SelfSignedCertificate"):
    """A self-signed certificate; ``privateKey`` is a secret output."""

    certificate: pulumi.Output[str]
    privateKey: pulumi.Output[str]

    def __init__(
        self, name: str, host: str, days: int = 365, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            SelfSignedProvider(),
            name,
            {"host": host, "days": days, "certificate": None, "privateKey": None},
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["privateKey"])
            ),
        )


@dataclass
class EdgeTlsArgs:
    """Inputs of EdgeTls."""

    mesh: MeshSettings
    """Host, credential name, root namespace and where the material comes from."""
    depends_on: list[pulumi.Resource] | None = None
    """The root namespace, when the program manages it."""


class EdgeTls(pulumi.ComponentResource):
    """The ``kubernetes.io/tls`` Secret the Gateway's ``credentialName`` names."""

    secret: k8s.core.v1.Secret

    def __init__(
        self, name: str, args: EdgeTlsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("claude-enhancer:index:EdgeTls", name, None, opts)
        m = args.mesh
        cert: pulumi.Input[str]
        key: pulumi.Input[str]
        if m.tls_source == "selfSigned":
            ss = SelfSignedCertificate(
                f"{name}-self-signed", m.host, opts=pulumi.ResourceOptions(parent=self)
            )
            cert, key = ss.certificate, ss.privateKey
        else:
            if m.tls_certificate is None or m.tls_private_key is None:
                raise ValueError(f"{name}: tlsSource=secret needs tlsCertificate and tlsPrivateKey")
            cert, key = m.tls_certificate.reveal(), m.tls_private_key.reveal()
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=meta(
                m.tls_credential_name, m.root_namespace, labels=labels("gateway", "edge")
            ),
            type="kubernetes.io/tls",
            data=secret_data({"tls.crt": cert, "tls.key": pulumi.Output.secret(key)}),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on or []),
                additional_secret_outputs=["stringData", "data"],
            ),
        )
        self.register_outputs({"credentialName": m.tls_credential_name})
