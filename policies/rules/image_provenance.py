"""Container images are pinned (tag or digest, never latest) and from allowed registries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policies.lib.props import UNKNOWN, as_list, dig
from policies.lib.rule import WORKLOAD_TYPES, Rule, containers_of, pod_templates

RULE = Rule(
    name="image-provenance",
    description="Container images must be pinned by tag or digest (never 'latest') and come from an allowed registry.",
    severity="high",
    frameworks={
        "SOC2": ["CC7.1", "CC8.1"],
        "ISO27001": ["A.8.8", "A.8.32"],
        "CIS": ["K8s 5.5.1"],
        "OWASP": ["K8s Top 10 K02", "A08:2021"],
    },
    remediation=(
        "Reference images as <allowed-registry>/<repo>:<version> or, better, "
        "<allowed-registry>/<repo>@sha256:<digest>; add the registry to the "
        "allowedRegistries config only after it is approved."
    ),
    resource_types=tuple(WORKLOAD_TYPES),
    config_schema={
        "allowedRegistries": {
            "type": "array",
            "items": {"type": "string"},
            # Our registries and the organisations of the components we run, never a whole public
            # registry (docker.io/library, quay.io, ghcr.io host anyone's images).
            "default": [
                "registry.local/claude-enhancer",
                "registry.claude-enhancer.internal",
                "docker.io/istio",
                "docker.io/hashicorp",
                "ghcr.io/cloudnative-pg",
                "quay.io/opstree",
                "docker.io/grafana",
                "quay.io/prometheus",
                "quay.io/prometheus-operator",
            ],
            "description": "Registry/organisation prefixes images may come from (a bare public registry is refused).",
        },
        "requireDigest": {
            "type": "boolean",
            "default": False,
            "description": "Require @sha256 digests instead of tags (pack_config sets it for production).",
        },
    },
    tags=("kubernetes", "supply-chain"),
)

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def parse_image(image: str) -> tuple[str, str, str | None, str | None]:
    """(registry, repository, tag, digest) with Docker's defaults applied."""
    digest: str | None = None
    rest = image
    if "@" in image:
        rest, digest = image.split("@", 1)
    tag: str | None = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repo = first, remainder
    else:
        registry, repo = "docker.io", rest
        if "/" not in repo:
            repo = f"library/{repo}"
    return registry, repo, tag, digest


#: registries where anyone can publish: only an organisation path under them may be allowed
PUBLIC_REGISTRIES = ("docker.io", "index.docker.io", "quay.io", "ghcr.io", "gcr.io", "public.ecr.aws")


def _allowed(registry: str, repo: str, allowed: list[str]) -> bool:
    full = f"{registry}/{repo}"
    for prefix in allowed:
        p = prefix.rstrip("/")
        if p in PUBLIC_REGISTRIES or p == "docker.io/library":
            continue  # a whole public registry (or all of Docker Hub's official images) is no provenance
        if full == p or full.startswith(p + "/") or registry == p:
            return True
    return False


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    allowed = [str(r) for r in as_list(cfg.get("allowedRegistries"))]
    require_digest = bool(cfg.get("requireDigest"))
    out: list[str] = []
    for template in pod_templates(resource_type, props):
        out += _check_spec(template.where, template.spec, template.partial, allowed, require_digest)
    return out


def _check_spec(prefix: str, spec: Any, partial: bool, allowed: list[str], require_digest: bool) -> list[str]:
    out: list[str] = []
    for fieldname, name, c in containers_of(spec):
        where = f'{prefix}{fieldname[:-1]} "{name}"'
        image = dig(c, "image")
        if image is UNKNOWN or (image is None and partial):
            continue  # a patch that leaves the image alone
        if not isinstance(image, str) or not image.strip():
            out.append(f"{where}: image must be set")
            continue
        registry, repo, tag, digest = parse_image(image.strip())
        if digest is not None and not _DIGEST.search(image.strip()):
            out.append(f'{where}: image "{image}" has a malformed digest (want @sha256:<64 hex>)')
        if digest is None:
            if tag is None:
                out.append(f'{where}: image "{image}" must be pinned by tag or digest')
            elif tag == "latest":
                out.append(f'{where}: image "{image}" must not use the latest tag')
            elif require_digest:
                out.append(f'{where}: image "{image}" must be pinned by digest')
        elif tag == "latest":
            out.append(f'{where}: image "{image}" must not use the latest tag')
        if not _allowed(registry, repo, allowed):
            out.append(f'{where}: image "{image}" is not from an allowed registry ({registry}/{repo})')
    return out
