"""No plaintext secrets in ConfigMaps, container env values or non-secret Secret data.

How secretness is seen: the engine sends Pulumi secrets to the analyzer wrapped
with the secret signature; pulumi-policy 1.21's ``Analyze`` unwraps them, so the
pack's entry point installs a deserializer that keeps them as
``pulumi_policy.Secret`` leaves (see ``policies/lib/props.py``). Note that the
Kubernetes provider's Check already marks *every* ``Secret.data``/``stringData``
as secret before analysis, so for ``kubernetes:core/v1:Secret`` this rule only
fires when values reach the analyzer unmarked (e.g. other providers, tests); the
ConfigMap and env checks are what catch plaintext in practice.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.lib.props import as_list, dig, is_secret, is_unknown
from policies.lib.rule import WORKLOAD_TYPES, Rule, base_type, containers_of, pod_templates

CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"

RULE = Rule(
    name="no-plaintext-secrets",
    description="Secrets must not appear in plaintext: no secret-like keys or high-entropy values in ConfigMaps, "
    "no literal env values for secret-like names, and Secret data must be Pulumi secrets.",
    severity="critical",
    frameworks={
        "SOC2": ["CC6.1", "CC6.7"],
        "ISO27001": ["A.5.17", "A.8.24", "A.8.12"],
        "CIS": ["K8s 5.4.1"],
        "OWASP": ["A02:2021", "A07:2021", "K8s Top 10 K08"],
        "GDPR": ["Art.32"],
    },
    remediation="Keep credentials in Vault (or a Kubernetes Secret whose values are Pulumi secrets: "
    "pulumi.Output.secret / `pulumi config set --secret` / random.RandomPassword.result) and reference them "
    "with env valueFrom.secretKeyRef or Vault agent injection; never in a ConfigMap or env value.",
    resource_types=(CONFIGMAP, SECRET, *WORKLOAD_TYPES),
    config_schema={
        "secretKeyPattern": {
            "type": "string",
            # The name's last word says what the value is: DB_PASSWORD holds one, PASSWORD_MIN_LENGTH,
            # TOKEN_AUDIENCE or SECRET_NAME only talk about one.
            "default": r"(?i)((^|[^a-z])pass|password|passwd|passphrase|pwd|secret|token|credentials?|"
            r"api[_.-]?key|apikey|private[_.-]?key|access[_.-]?key|signing[_.-]?key|auth[_.-]?key|"
            r"(^|[_.-])key|dsn)$",
            "description": "Regex for key / env / flag names that hold secrets (matched at the end of the name).",
        },
        "entropyThreshold": {
            "type": "number",
            "default": 4.0,
            "description": "Shannon bits/char above which a token-like value is a secret.",
        },
        "minEntropyLength": {
            "type": "integer",
            "default": 20,
            "description": "Only values at least this long are entropy-checked.",
        },
        "allowedKeys": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "ConfigMap keys / env names exempt from the name check.",
        },
    },
    tags=("secrets",),
)

_TOKENISH = re.compile(r"^[A-Za-z0-9+/=_\-.~]+$")
#: userinfo with a password, the user may be empty ("redis://:pw@host").
_URL_CREDS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.I)
_KNOWN = (
    re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    _URL_CREDS,
    re.compile(r"\b(hvs|hvb|s)\.[A-Za-z0-9]{20,}\b"),  # Vault tokens
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.I)
_PUBLIC_PEM = re.compile(r"^-----BEGIN (PUBLIC KEY|RSA PUBLIC KEY|CERTIFICATE|PGP PUBLIC KEY BLOCK)-----")
_SSH_PUBLIC = re.compile(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-[a-z0-9]+|sk-ssh-ed25519@openssh\.com) AAAA")
#: a Vault secret path ("secret/data/app/db", "kv/app#password"): it names a secret, it does not hold one.
_VAULT_PATH = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[A-Za-z0-9_.-]+)+(#[A-Za-z0-9_.-]+)?$")
#: key = value / key: value pairs inside an embedded config file (YAML, properties, .env, JSON, TOML, DSN).
_PAIR = re.compile(
    r"""(?P<key>["']?[A-Za-z_][\w.\-]*["']?)[ \t]*[:=][ \t]*"""
    r"""(?P<val>"[^"\n]*"|'[^'\n]*'|[^\s;,#&"'{}\[\]][^\s;,&"'\[\]]*)"""
)
#: an embedded setting holds a credential when its key ends with one of these words.
_CREDENTIAL_KEY_END = re.compile(
    r"(?i)(pass(word|wd|phrase)?|pwd|secret|token|credentials?|api[_.-]?key|apikey|private[_.-]?key|"
    r"access[_.-]?key|secret[_.-]?key|signing[_.-]?key|auth[_.-]?key)$"
)


#: names of public identifiers: random-looking values that are not secrets (client/tenant ids, ARNs, digests)
_PUBLIC_NAME = re.compile(
    r"(?i)(^|[^a-z])(id|ids|arn|urls?|uri|host(name)?|name|digest|sha|commit|checksum|fingerprint|region|"
    r"account|audience|issuer|endpoint|version)$|[a-z](Id|Arn|Url|Uri|Name|Digest)$"
)
#: values with a public identifier's shape: UUIDs, content digests, git object ids, ARNs
_PUBLIC_VALUE = re.compile(
    r"(?i)^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|sha(256|512):[0-9a-f]{64,128}|"
    r"[0-9a-f]{40}|arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d*:\S+)$"
)


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_like_secret_value(value: str, threshold: float, min_len: int) -> bool:
    if any(p.search(value) for p in _KNOWN):
        return True
    v = value.strip()
    if _URL.match(v) and _url_query_secret(v):
        return True
    if _is_reference(v) or len(v) < min_len or not _TOKENISH.match(v):
        return False
    has_digit = any(c.isdigit() for c in v)
    has_alpha = any(c.isalpha() for c in v)
    return has_digit and has_alpha and shannon_entropy(v) >= threshold


def _is_reference(value: str) -> bool:
    """Values that point at a secret (or are public) rather than contain one.

    Callers check the known secret shapes first: a URL with a password is a secret.
    """
    v = value.strip()
    return (
        not v
        or v.startswith(("/", "vault:", "${", "$(", "secretRef:", "file:", "ref+"))
        or v.lower() in ("true", "false", "none", "null", "changeme-in-vault")
        or re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h|d)?", v) is not None  # numbers / durations (e.g. *_TOKEN_TTL)
        or (_URL.match(v) is not None and not _URL_CREDS.search(v) and not _url_query_secret(v))
        or _PUBLIC_PEM.match(v) is not None
        or _SSH_PUBLIC.match(v) is not None
        or (_VAULT_PATH.match(v) is not None and "//" not in v)
    )


def _url_query_secret(url: str) -> bool:
    """A credential passed in the query string (?password=..., &access_token=...)."""
    _, _, query = url.partition("?")
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if value and _CREDENTIAL_KEY_END.search(key.replace("-", "_")):
            return True
    return False


def _strip_quotes(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value


def embedded_secrets(text: str) -> list[str]:
    """Keys of settings inside an embedded config text (YAML/properties/.env/JSON/DSN) that hold a credential."""
    found: dict[str, None] = {}
    for m in _PAIR.finditer(text):
        key = _strip_quotes(m.group("key"))
        value = _strip_quotes(m.group("val")).strip()
        if not _CREDENTIAL_KEY_END.search(key) or _is_reference(value):
            continue
        if value.startswith("{{") or value in ("<nil>", "~", "''", '""'):
            continue  # templates and empty values
        found.setdefault(key, None)
    return list(found)


def _check_entries(what: str, data: dict[str, Any], ctx: _Ctx, decode: bool = False) -> list[str]:
    """ConfigMap ``data`` (or base64 ``binaryData``, ``decode``) entries that hold a credential."""
    out: list[str] = []
    for key in sorted(data):
        raw = data[key]
        if is_unknown(raw):
            continue
        value = dig(data, key)
        text = value if isinstance(value, str) else ""
        if decode and text:
            text = _decoded_text(text)
        if key not in ctx.allowed and ctx.key_re.search(key) and not _is_reference(text):
            out.append(f'ConfigMap {what} key "{key}" looks like a secret; store it in a Secret or Vault')
        elif is_secret(raw):
            out.append(f'ConfigMap {what} key "{key}" holds a Pulumi secret in plaintext; use a Secret or Vault')
        elif text and ctx.looks_secret(key, text):
            out.append(f'ConfigMap {what} key "{key}" has a high-entropy value that looks like a secret')
        elif text:
            for setting in embedded_secrets(text):
                out.append(
                    f'ConfigMap {what} key "{key}" embeds a credential in setting "{setting}"; '
                    "reference a Secret or Vault instead"
                )
    return out


def _decoded_text(value: str) -> str:
    """binaryData is base64: its text when it decodes to UTF-8, else "" (binary content)."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ""


def _arg_secrets(where: str, args: list[Any], ctx: _Ctx) -> list[str]:
    """Credentials on a command line: ``--password=x``, ``--token x``, or a known secret shape."""
    out: list[str] = []
    texts = [a if isinstance(a, str) else "" for a in args]
    for i, arg in enumerate(texts):
        flag, eq, value = arg.partition("=")
        name = flag.lstrip("-")
        if not eq and arg.startswith("-") and i + 1 < len(texts) and not texts[i + 1].startswith("-"):
            value = texts[i + 1]  # "--token VALUE"
        elif not eq or not flag.startswith("-"):
            value = ""
        if value and name and ctx.key_re.search(name) and not _is_reference(value):
            out.append(f'{where}: argument "{flag}" passes a credential on the command line; read it from a file')
        elif any(p.search(arg) for p in _KNOWN):
            out.append(f"{where}: argument {i} contains a credential; read it from a file or Secret")
    return out


@dataclass(frozen=True)
class _Ctx:
    key_re: re.Pattern[str]
    threshold: float
    min_len: int
    allowed: frozenset[str]

    def looks_secret(self, key: str, value: str) -> bool:
        """A known credential shape, or a high-entropy token under a name that is no public identifier."""
        if any(p.search(value) for p in _KNOWN):
            return True
        if _PUBLIC_NAME.search(key) or _PUBLIC_VALUE.match(value.strip()):
            return False
        return looks_like_secret_value(value, self.threshold, self.min_len)


def check(resource_type: str, props: Any, config: Mapping[str, Any]) -> list[str]:
    cfg = RULE.resolve_config(config)
    ctx = _Ctx(
        re.compile(str(cfg["secretKeyPattern"])),
        float(cfg["entropyThreshold"]),
        int(cfg["minEntropyLength"]),
        frozenset(str(k) for k in as_list(cfg.get("allowedKeys"))),
    )
    out: list[str] = []

    rtype = base_type(resource_type)
    if rtype == CONFIGMAP:
        for field, decode in (("data", False), ("binaryData", True)):
            data = dig(props, field, keep_secret=True)
            if is_unknown(data) or (not isinstance(data, dict) and not is_secret(data)):
                continue
            if is_secret(data):
                out.append(
                    f"ConfigMap {field} is a Pulumi secret; secrets belong in a Secret or Vault, not a ConfigMap"
                )
                continue
            out += _check_entries(field, data, ctx, decode)
        return out

    if rtype == SECRET:
        for field in ("stringData", "data"):
            block = dig(props, field, keep_secret=True)
            if block is None or is_unknown(block) or is_secret(block) or not isinstance(block, dict):
                continue
            for key in sorted(block):
                raw = block[key]
                if raw is None or is_unknown(raw) or is_secret(raw):
                    continue
                out.append(f'Secret {field} "{key}" is not a Pulumi secret (wrap it with pulumi.Output.secret)')
        return out

    for template in pod_templates(resource_type, props):
        for fieldname, cname, c in containers_of(template.spec):
            where = f'{template.where}{fieldname[:-1]} "{cname}"'
            for field in ("command", "args"):
                out += _arg_secrets(where, as_list(dig(c, field)), ctx)
            for env in as_list(dig(c, "env")):
                name = dig(env, "name")
                raw = dig(env, "value", keep_secret=True)
                if not isinstance(name, str) or raw is None or is_unknown(raw):
                    continue
                value = dig(env, "value")
                text = value if isinstance(value, str) else str(value)
                if is_secret(raw):
                    out.append(f'{where}: env "{name}" carries a secret as a literal value; use valueFrom.secretKeyRef')
                elif name not in ctx.allowed and ctx.key_re.search(name) and not _is_reference(text):
                    out.append(f'{where}: env "{name}" has a literal value; use valueFrom.secretKeyRef')
                elif ctx.looks_secret(name, text):
                    out.append(f'{where}: env "{name}" has a high-entropy literal value that looks like a secret')
                else:
                    for setting in embedded_secrets(text):
                        out.append(f'{where}: env "{name}" embeds a credential in setting "{setting}"')
    return out
