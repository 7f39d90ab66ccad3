"""Edge TLS: the self-signed provider really issues a certificate for the host."""

from __future__ import annotations

import subprocess

from components.tls import SelfSignedProvider


def test_self_signed_certificate_for_the_host() -> None:
    res = SelfSignedProvider().create({"host": "claude-enhancer.localtest.me", "days": 2})
    outs = res.outs
    assert outs is not None
    assert outs["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY-----" in outs["privateKey"]
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text"],
        input=outs["certificate"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:claude-enhancer.localtest.me" in text
    assert "prime256v1" in text or "P-256" in text


def test_new_host_replaces_the_certificate() -> None:
    p = SelfSignedProvider()
    same = p.diff("id", {"host": "a", "days": 365}, {"host": "a", "days": 365})
    assert not same.changes
    other = p.diff("id", {"host": "a", "days": 365}, {"host": "b", "days": 365})
    assert other.changes and other.replaces == ["host"]
