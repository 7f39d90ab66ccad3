"""``claude-enhancer:mesh``: host, edge TLS (secrets), data plane, mTLS scope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.settings.model import (
    DATAPLANES,
    TLS_CERT_ENV,
    TLS_CERT_KEY,
    TLS_KEY_ENV,
    TLS_KEY_KEY,
    MeshSettings,
    SettingsError,
)
from components.settings.read import NAME_RE, secret, top


def parse_mesh(raw: Mapping[str, Any], env: Mapping[str, str]) -> MeshSettings:
    o = top(raw, "mesh", required=False)
    dataplane = o.get_str("dataplane", "cni")
    if dataplane not in DATAPLANES:
        raise SettingsError(
            f"{o.key_of('dataplane')}: must be 'cni' (sidecars with the Istio CNI plugin) or "
            f"'ambient', got {dataplane!r}; classic istio-init injection needs NET_ADMIN, "
            "which Pod Security 'restricted' forbids"
        )
    tls_source = o.get_str("tlsSource", "secret")
    if tls_source not in ("secret", "selfSigned"):
        raise SettingsError(
            f"{o.key_of('tlsSource')}: must be 'secret' or 'selfSigned', got {tls_source!r}"
        )
    m = MeshSettings(
        host=o.get_str("host", "claude-enhancer.local"),
        tls_credential_name=o.get_str("tlsCredentialName", "claude-enhancer-tls"),
        hsts_max_age=o.get_int("hstsMaxAgeSeconds", 31536000, lo=86400),
        root_namespace=o.get_str("rootNamespace", "istio-system", pattern=NAME_RE),
        manage_root_namespace=o.get_bool("manageRootNamespace", False),
        session_cookie=o.get_str("sessionCookie", "ce-track", pattern=NAME_RE),
        cookie_ttl_seconds=o.get_int("cookieTtlSeconds", 3600, lo=60),
        ingress_service_account=o.get_str(
            "ingressServiceAccount", "istio-ingressgateway-service-account", pattern=NAME_RE
        ),
        dataplane=dataplane,
        tls_source=tls_source,
        mesh_wide_mtls=o.get_bool("meshWideMtls", False),
    )
    o.done()
    if tls_source == "secret":
        what = f"edge TLS for {o.key_of('host')} (PEM)"
        m = MeshSettings(
            **{
                **m.__dict__,
                "tls_certificate": secret(raw, env, TLS_CERT_KEY, TLS_CERT_ENV, what),
                "tls_private_key": secret(raw, env, TLS_KEY_KEY, TLS_KEY_ENV, what),
            }
        )
    return m


def mesh_dataplane(raw: Mapping[str, Any]) -> str:
    """``mesh.dataplane`` (cni | ambient), read without validating the rest of the stack."""
    return top(raw, "mesh", required=False).get_str("dataplane", "cni")
