"""Vault ACL policies grant neither sudo nor wildcard-rooted paths."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from policies.lib.props import as_list, dig
from policies.lib.rule import Rule
from policies.lib.vault import canonical_type, generic_write

#: Vault's pre-0.9 ``policy = "<level>"`` path syntax, as capabilities (vault/policy.go).
LEGACY_LEVELS: dict[str, list[str]] = {
    "deny": ["deny"],
    "read": ["read", "list"],
    "write": ["read", "list", "create", "update", "delete"],
    "sudo": ["read", "list", "create", "update", "delete", "sudo"],
}
WRITE_CAPABILITIES = frozenset({"create", "update", "delete", "patch", "sudo"})
#: sys/ endpoints whose write access lets a token rewrite the access rules, auth, audit or mounts.
CONTROL_PATHS = (
    "sys/policy/x",
    "sys/policies/acl/x",
    "sys/policies/password/x",
    "sys/auth/x",
    "sys/mounts/x",
    "sys/audit/x",
    "sys/raw/x",
    "sys/remount",
    "auth/token/create",
    "auth/kubernetes/role/x",
    "auth/approle/role/x/secret-id",
    "auth/token/roles/x",
    "identity/entity/x",
    "identity/group/x",
)
#: the same endpoints on any mount name: roles (which SA/policy a login gets), AppRole secret IDs,
#: token roles and identity entities/groups (which policies a token gets)
CONTROL_PATTERNS = (
    r"auth/[^/]+/role/[^/]+(/secret-id|/custom-secret-id)?",
    r"auth/token/roles/[^/]+",
    r"identity/(entity|group|entity-alias|group-alias)(/.*)?",
)
#: KV v2 / database sub-paths: a glob right below one of them reads the whole mount
_MOUNT_WIDE = ("data", "metadata", "subkeys", "creds", "static-creds")
READ_CAPABILITIES = frozenset({"read", "list"})


RULE = Rule(
    name="vault-policy-least-privilege",
    description="Vault policies (Policy resources or generic writes to sys/policy) must not grant the sudo "
    "capability (also as legacy policy = \"sudo\"), paths rooted in a wildcard ('*', '+'), reads of a whole "
    "secrets mount, or write access to control endpoints (sys/policy, sys/auth, sys/mounts, sys/audit, auth "
    "roles and AppRole secret IDs, identity entities/groups, ...).",
    severity="high",
    frameworks={
        "SOC2": ["CC6.1", "CC6.3"],
        "ISO27001": ["A.5.15", "A.8.2", "A.5.18"],
        "OWASP": ["A01:2021"],
        "GDPR": ["Art.25"],
    },
    remediation="Scope each path block to the component's own secret path (e.g. "
    '"secret/data/claude-enhancer/<component>/*") with read/list only; keep sudo for break-glass operators '
    "outside this stack.",
    resource_types=("vault:index/policy:Policy", "vault:generic/endpoint:Endpoint", "vault:generic/secret:Secret"),
    config_schema={
        "forbiddenCapabilities": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["sudo"],
            "description": "Capabilities no policy may grant.",
        },
        "forbiddenPathPatterns": {
            "type": "array",
            "items": {"type": "string"},
            "default": [r"^[*+]", r"^sys/\*$", r"^sys/?$"],
            "description": "Regexes of paths no policy may grant.",
        },
        "controlPaths": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(CONTROL_PATHS),
            "description": "Example paths of Vault control endpoints no policy may write to (matched with Vault's "
            "glob rules against each granted path).",
        },
    },
    tags=("vault", "least-privilege"),
)

_COMMENT = re.compile(r"(#|//)[^\n]*")
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_PATH = re.compile(r'path\s+"([^"]*)"\s*\{', re.S)
_CAPS = re.compile(r"capabilities\s*=\s*\[([^\]]*)\]", re.S)
_LEGACY = re.compile(r'(?<![\w-])policy\s*=\s*"([^"]*)"')


def _strip_comments(text: str) -> str:
    text = _BLOCK_COMMENT.sub("", text)
    out_lines = []
    for line in text.splitlines():
        # drop comments that are not inside a quoted string
        in_str = False
        cut = len(line)
        for i, ch in enumerate(line):
            if ch == '"' and (i == 0 or line[i - 1] != "\\"):
                in_str = not in_str
            elif not in_str and (ch == "#" or line.startswith("//", i)):
                cut = i
                break
        out_lines.append(line[:cut])
    return "\n".join(out_lines)


def _block_body(text: str, start: int) -> tuple[str, int]:
    """Body of the brace block opening at text[start-1] == '{' (handles nesting and strings)."""
    depth, i, in_str = 1, start, False
    while i < len(text) and depth:
        ch = text[i]
        if ch == '"' and text[i - 1] != "\\":
            in_str = not in_str
        elif not in_str:
            depth += ch == "{"
            depth -= ch == "}"
        i += 1
    return text[start : i - 1], i


def _caps_of_json(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    caps = body.get("capabilities", [])
    out = [str(c) for c in caps] if isinstance(caps, list) else []
    legacy = body.get("policy")
    if isinstance(legacy, str):
        out += LEGACY_LEVELS.get(legacy.strip().lower(), [legacy])
    return out


def path_regex(path: str) -> re.Pattern[str]:
    """Vault path matching: '+' is one segment, a trailing '*' is any suffix."""
    glob = path.endswith("*")
    body = path[:-1] if glob else path
    parts = [re.escape(p) if p != "+" else "[^/]+" for p in body.split("/")]
    return re.compile("/".join(parts) + (".*" if glob else ""))


def parse_policy(text: str) -> list[tuple[str, list[str]]]:
    """(path, capabilities) pairs from HCL or JSON Vault policy text."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            paths = doc.get("path", {})
            out = []
            blocks = paths if isinstance(paths, list) else [paths]  # HCL-JSON may list the path objects
            for block in blocks:
                if not isinstance(block, dict):
                    continue
                for p, body in block.items():
                    body = body[0] if isinstance(body, list) and body else body
                    out.append((str(p), _caps_of_json(body)))
            return out
    clean = _strip_comments(text)
    out = []
    pos = 0
    while True:
        m = _PATH.search(clean, pos)
        if not m:
            break
        body, pos = _block_body(clean, m.end())
        caps_m = _CAPS.search(body)
        caps = re.findall(r'"([^"]*)"', caps_m.group(1)) if caps_m else []
        legacy = _LEGACY.search(body)
        if legacy:
            caps = [*caps, *LEGACY_LEVELS.get(legacy.group(1).strip().lower(), [legacy.group(1)])]
        out.append((m.group(1), caps))
    return out


def _sample(path: str) -> str:
    """A concrete path the glob covers ('+' and a trailing '*' become one segment)."""
    concrete = path[:-1] + "x" if path.endswith("*") else path
    return "/".join("x" if seg == "+" else seg for seg in concrete.split("/"))


def whole_mount(path: str) -> bool:
    """A glob that reads a whole secrets mount: "secret/*", "secret/data/*", "secret/+/*", "db/creds/+"."""
    if "*" not in path and "+" not in path:
        return False
    fixed: list[str] = []
    for seg in path.split("/"):
        if seg == "+" or "*" in seg:
            break
        fixed.append(seg)
    if not fixed or fixed[0] in ("sys", "auth", "identity", "cubbyhole"):
        return False  # rooted in a wildcard (too broad already) or not a secrets mount
    return len(fixed) <= 1 or (len(fixed) == 2 and fixed[1] in _MOUNT_WIDE)


def policy_text(resource_type: str, props: Any) -> str | None:
    """A Vault ACL policy's text: a Policy resource, or a generic endpoint/secret writing sys/policy/<name>."""
    if canonical_type(resource_type) == "vault:index/policy:Policy":
        text = dig(props, "policy")
        return text if isinstance(text, str) else None
    written = generic_write(resource_type, props)
    if written and re.fullmatch(r"sys/(policy|policies/acl)/[^/]+", written[0]):
        text = written[1].get("policy")
        return text if isinstance(text, str) else None
    return None


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    text = policy_text(resource_type, props)
    if text is None:
        return []
    cfg = RULE.resolve_config(config)
    caps_forbidden = {str(c) for c in as_list(cfg.get("forbiddenCapabilities"))}
    patterns = [re.compile(str(p)) for p in as_list(cfg.get("forbiddenPathPatterns"))]
    control = [str(p) for p in as_list(cfg.get("controlPaths"))]
    out: list[str] = []
    for path, caps in parse_policy(text):
        if "deny" in caps:
            continue
        granted = sorted(set(caps))
        bad = sorted(set(granted) & caps_forbidden)
        if bad:
            out.append(f'path "{path}" grants {", ".join(bad)}')
        if granted and any(p.search(path) for p in patterns):
            out.append(f'path "{path}" is too broad (wildcard or sys root)')
        if set(granted) & READ_CAPABILITIES and whole_mount(path):
            out.append(f'path "{path}" reads a whole secrets mount; grant the component\'s own sub-path')
        writes = sorted(set(granted) & WRITE_CAPABILITIES)
        if writes:
            rx = path_regex(path)
            hit = [c for c in control if rx.fullmatch(c)]
            hit += [_sample(path) for p in CONTROL_PATTERNS if re.fullmatch(p, _sample(path))]
            if hit:
                out.append(
                    f'path "{path}" grants {", ".join(writes)} on {hit[0].removesuffix("/x")}: a token could '
                    "rewrite policies, auth methods, audit devices or mounts"
                )
    return out
