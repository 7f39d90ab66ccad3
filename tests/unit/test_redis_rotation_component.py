"""The Redis rotator in the program (issue 12): settings, CronJob, RBAC, the ACL Secret and the
mesh/network paths it needs. The rotation itself: tests/unit/test_redis_rotation.py and
tests/integration/test_redis_rotation_cluster.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from components import cluster, mesh, redis_rotation
from components import data as data_mod
from components import settings as S
from components import vault_spec as spec
from rotator.redis_acl import sha
from tests.unit.conftest import program_capture, set_obj, settings_for, unsecret
from tests.unit.test_settings import err, load

GRACE_KEY = "claude-enhancer:vault.redis.rotationGraceSeconds"


def test_rotation_period_grace_and_render_interval_come_from_stack_config(
    local_raw: dict[str, Any],
) -> None:
    v = load(local_raw).vault
    assert (v.redis_rotation_period, v.redis_rotation_grace, v.agent_render_interval) == (
        3600, 120, 60
    )  # fmt: skip
    args = redis_rotation.rotator_args(v, settings_for().data, "claude-enhancer-data")
    assert args[args.index("--period-seconds") + 1] == "3600"
    assert args[args.index("--grace-seconds") + 1] == "120"


def test_a_grace_shorter_than_the_render_interval_is_refused(local_raw: dict[str, Any]) -> None:
    raw = set_obj(local_raw, "vault", "redis", {"rotationGraceSeconds": 60})
    assert f"{GRACE_KEY}: must be >= agentRenderIntervalSeconds + 30 (90)" in err(raw)


def test_a_period_shorter_than_grace_plus_the_schedule_is_refused(
    local_raw: dict[str, Any],
) -> None:
    raw = set_obj(local_raw, "vault", "redis",
                  {"rotationGraceSeconds": 120, "rotationPeriodSeconds": 400})  # fmt: skip
    assert "rotationPeriodSeconds: must be >= rotationGraceSeconds + 300" in err(raw)


def test_a_malformed_rotator_digest_is_refused(local_raw: dict[str, Any]) -> None:
    raw = set_obj(local_raw, "vault", "redis", {"rotatorImageDigest": "sha256:abc"})
    assert "vault.redis.rotatorImageDigest: malformed value" in err(raw)


def test_the_command_line_carries_no_secret() -> None:
    v = settings_for().vault
    args = redis_rotation.rotator_args(v, settings_for().data, "ns")
    assert args[:3] == ["python", "-m", "rotator"]
    assert (
        args[args.index("--seed") + 1]
        == "claude-enhancer-redis-leader.claude-enhancer-data.svc:6379"
    )
    assert args[args.index("--nodes") + 1] == "6"
    assert args[args.index("--acl-secret") + 1] == f"ns/{data_mod.REDIS_ACL_SECRET}"
    assert args[args.index("--vault-role") + 1] == spec.role_name(spec.ROTATOR_SA)
    assert not [a for a in args if "password" in a.lower() or a.lower() == "token"]


def _cronjob() -> Any:
    (cj,) = program_capture().of_type("kubernetes:batch/v1:CronJob")
    return cj.inputs


def test_one_bounded_run_at_a_time_in_a_restricted_pod() -> None:
    cj = _cronjob()
    assert cj["spec"]["schedule"] == S.ROTATOR_SCHEDULE
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    job = cj["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] <= 300
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == spec.ROTATOR_SA
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["containers"]
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["image"] == "registry.local/claude-enhancer/redis-rotator:1.0.0"
    # the default user's password from the data tier's Secret, never a literal
    assert c["env"] == [{"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {
        "name": data_mod.REDIS_SECRET, "key": "password"}}}]  # fmt: skip
    audiences = [
        s["serviceAccountToken"].get("audience")
        for v in pod["volumes"]
        for s in v["projected"]["sources"]
        if "serviceAccountToken" in s
    ]
    assert sorted(audiences, key=str) == [None, "vault"]


def test_its_role_reads_and_patches_the_acl_secret_only() -> None:
    (role,) = [r for r in program_capture().of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
               if r.inputs["metadata"]["name"] == spec.ROTATOR_SA]  # fmt: skip
    assert role.inputs["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                                     "resourceNames": [data_mod.REDIS_ACL_SECRET],
                                     "verbs": ["get", "patch"]}]  # fmt: skip


def test_the_redis_nodes_load_the_acl_secret_with_the_default_user_protected() -> None:
    cap = program_capture()
    (rc,) = cap.of_type("kubernetes:redis.redis.opstreelabs.in/v1beta2:RedisCluster")
    assert rc.inputs["spec"]["acl"] == {"secret": {"secretName": data_mod.REDIS_ACL_SECRET}}
    (acl,) = [s for s in cap.of_type("kubernetes:core/v1:Secret")
              if s.inputs["metadata"]["name"] == data_mod.REDIS_ACL_SECRET]  # fmt: skip
    (auth,) = [s for s in cap.of_type("kubernetes:core/v1:Secret")
               if s.inputs["metadata"]["name"] == data_mod.REDIS_SECRET]  # fmt: skip
    password = base64.b64decode(unsecret(auth.inputs["data"])["password"]).decode()
    text = base64.b64decode(unsecret(acl.inputs["data"])["user.acl"]).decode()
    # without a default line Redis ignores requirepass: the default user would be open
    assert text.splitlines() == [
        f"user default on #{sha(password)} ~* &* +@all",
        "user ce_app off ~* &* +@all -@dangerous",
    ]
    assert password not in text


def test_without_vault_no_rotator_and_no_acl() -> None:
    cap = program_capture(vault=False)
    assert not cap.of_type("kubernetes:batch/v1:CronJob")
    (rc,) = cap.of_type("kubernetes:redis.redis.opstreelabs.in/v1beta2:RedisCluster")
    assert "acl" not in rc.inputs["spec"]


def test_mesh_and_network_let_it_reach_redis_vault_and_the_api_server() -> None:
    s = settings_for()
    aps = {name: ap for ns, name, ap in mesh.authorization_policies(s.namespaces, s.mesh)
           if ns == s.namespaces.data}  # fmt: skip
    rule = aps["allow-redis-rotator"]["rules"][0]
    assert rule["from"][0]["source"]["principals"] == [
        f"cluster.local/ns/{s.namespaces.data}/sa/{spec.ROTATOR_SA}"
    ]
    assert rule["to"][0]["operation"]["ports"] == [str(data_mod.REDIS_PORT)]
    nps = dict(
        cluster.network_policies(s.namespaces, s.mesh.root_namespace, s.data)[s.namespaces.data]
    )
    egress = nps["allow-redis-rotator-egress"]
    assert egress["podSelector"] == {"matchLabels": redis_rotation.ROTATOR_PODS}
    assert egress["egress"] == [{"ports": [{"protocol": "TCP", "port": 8200},
                                           {"protocol": "TCP", "port": 6443}]}]  # fmt: skip


@pytest.mark.parametrize("digest", [None, "sha256:" + "a" * 64])
def test_image_pinned_by_tag_and_digest_when_configured(digest: str | None) -> None:
    img = redis_rotation.rotator_image("registry.local/claude-enhancer", digest)
    assert img.startswith("registry.local/claude-enhancer/redis-rotator:1.0.0")
    assert img.endswith(f"@{digest}") if digest else "@" not in img


def test_the_local_runner_uses_the_stacks_settings_and_the_platform_cluster(
    tmp_path: Any,
) -> None:
    from rotator.local import rotator_argv

    v = settings_for().vault
    argv = rotator_argv(v, tmp_path, ["--now"])
    assert argv[argv.index("--seed") + 1] == "127.0.0.1:56379"
    assert argv[argv.index("--acl-file") + 1] == str(tmp_path / "redis" / "users.acl")
    assert argv[argv.index("--kv-mount") + 1] == v.kv_path
    assert argv[argv.index("--grace-seconds") + 1] == str(v.redis_rotation_grace)
    assert argv[-1] == "--now"


@pytest.mark.parametrize(
    ("up_args", "partial"),
    [
        ([], False),
        (["--diff", "--target-replace", "urn:x"], False),
        (["--target", "urn:x"], True),
        (["--target=urn:x"], True),
        (["-t", "urn:x"], True),
        (["-turn:x"], True),
        (["--exclude", "urn:x"], True),
        (["--target-dependents", "-t", "urn:x"], True),
    ],
)
def test_a_targeted_up_is_a_partial_update(up_args: list[str], partial: bool) -> None:
    from rotator.local import partial_update

    assert partial_update(up_args) is partial


def test_after_a_targeted_up_the_first_rotation_touches_nothing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`./ce up --target URN` may leave the stack's Vault undeployed (CI's fresh platform had no KV
    mount): the step after it is skipped. After a full up it runs, and here stops at the missing
    platform (an empty CE_HOME), which shows it was not skipped."""
    from rotator.local import main

    monkeypatch.setenv("CE_HOME", str(tmp_path))
    # the secrets env.sh exports from a running platform: without them the step stops earlier (at
    # the missing secret), and the test would depend on whether the platform was up
    monkeypatch.setenv("VAULT_TOKEN", "t")
    monkeypatch.setenv("CE_POSTGRES_ADMIN_PASSWORD", "p")
    assert main(["--after-up", "--target", "urn:pulumi:local::p::pulumi:pulumi:Stack::s"]) == 0
    assert "targeted update" in capsys.readouterr().err
    assert main(["--after-up", "--diff"]) == 2
    assert "is the local platform up" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--seed", "h:1", "--acl-file", "f"], {}, "REDIS_PASSWORD and VAULT_TOKEN"),
        (["--seed", "h:1", "--acl-secret", "no-slash"], {"REDIS_PASSWORD": "p", "VAULT_TOKEN": "t"},
         "--acl-secret must be NAMESPACE/NAME"),
        (["--seed", "h:1", "--acl-file", "f", "--grace-seconds", "900", "--period-seconds", "600"],
         {"REDIS_PASSWORD": "p", "VAULT_TOKEN": "t"}, "0 < --grace-seconds < --period-seconds"),
    ],
)  # fmt: skip
def test_the_cli_refuses_bad_input_before_touching_anything(
    argv: list[str], env: dict[str, str], message: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from rotator import __main__ as cli

    for k in ("REDIS_PASSWORD", "VAULT_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    for k, val in env.items():
        monkeypatch.setenv(k, val)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
