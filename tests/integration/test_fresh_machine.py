"""Issue 8: what a fresh machine does, checked on this one.

- the fetch phase, run against an empty Go module cache, an empty build cache and an empty
  CE_HOME, downloads every build input and compiles nothing; afterwards every wrapper module
  resolves with the network switched off (GOPROXY=off), as the build phase runs;
- a module missing from the fetched cache makes the build fail naming that module;
- an installed pulumi CLI and installed plugins are reused instead of built;
- `./ce up` converges the `local` stack from a CE_HOME whose state directory does not exist.

CI runs on a warm machine, so these tests make the cold parts cold on purpose (temp dirs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT
from tests.toolchain import SYSTEM_PATH, fresh_machine_env, toolchain_env
from tests.toolchain import pins as toolchain_pins

# The wrapper modules the `local` stack's bootstrap builds, with the packages each build reads
# (the kubernetes plugin's own main package embeds generated files, so its imports stand in).
WRAPPERS: dict[str, list[str]] = {
    "toolchain/gomod/pulumi": ["github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"],
    "toolchain/gomod/pulumi-resource-kubernetes": [
        "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider",
        "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version",
        "github.com/pulumi/pulumi/pkg/v3/codegen/schema",
    ],
    "platform/gomod/kubernetes": [
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-scheduler",
        "k8s.io/kubernetes/cmd/kubectl",
    ],
    "platform/gomod/etcd": ["go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3"],
    "platform/gomod/kwok": ["sigs.k8s.io/kwok/cmd/kwok"],
    "platform/gomod/cnpg": ["github.com/cloudnative-pg/cloudnative-pg/cmd/manager"],
    "platform/gomod/redisop": ["github.com/OT-CONTAINER-KIT/redis-operator"],
    "platform/gomod/promop": ["github.com/prometheus-operator/prometheus-operator/cmd/operator"],
    # the local stack enables Vault (issue 12): its server is built too
    "platform/gomod/vault": ["github.com/hashicorp/vault"],
    "toolchain/gomod/actionlint": ["github.com/rhysd/actionlint/cmd/actionlint"],
    # istioctl (test tool) and pilot-discovery (the platform's sidecar injector, part istiod)
    "toolchain/gomod/istioctl": [
        "istio.io/istio/istioctl/cmd/istioctl",
        "istio.io/istio/pilot/cmd/pilot-discovery",
    ],
    # meshsim (test tool): Istio's config generation + traffic simulation, its own main package
    "platform/gomod/meshsim": ["."],
}


@dataclass
class Fetched:
    root: Path
    env: dict[str, str]
    log: str
    seconds: float


def _clean_env(root: Path, **extra: str) -> dict[str, str]:
    if not shutil.which("go", path=SYSTEM_PATH):
        pytest.fail("`go` is not on the system PATH: the fetch phase needs it", pytrace=False)
    return fresh_machine_env(root, **extra)


def _rm_tree(path: Path) -> None:
    subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fetched]:
    root = tmp_path_factory.mktemp("fresh")
    env = _clean_env(root, CE_BUILD_PULUMI="1", CE_PLUGIN_DOWNLOAD="0")
    t0 = time.monotonic()
    r = subprocess.run(
        ["bash", str(ROOT / "toolchain" / "bootstrap.sh"), "--fetch-only", "--test-tools"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.monotonic() - t0
    assert r.returncode == 0, f"fetch phase failed after {seconds:.0f}s:\n{r.stderr[-5000:]}"
    print(f"fetch phase from empty caches: {seconds:.1f}s")
    yield Fetched(root, env, r.stderr, seconds)
    _rm_tree(root)


def test_fetch_phase_downloads_every_build_input_and_compiles_nothing(fetched: Fetched) -> None:
    for tool in (
        "pulumi",
        "pulumi-resource-kubernetes",
        "kubernetes",
        "etcd",
        "kwok",
        "vault",
        "actionlint",
        "istioctl",
        "istiod",
        "meshsim",
    ):
        assert re.search(rf"\] {re.escape(tool)} \S+: modules fetched", fetched.log), (
            f"{tool}: no fetch in the log:\n{fetched.log}"
        )
    assert "crds: module zips fetched" in fetched.log
    from components import needs

    wanted = needs.platform_parts(needs.load_stack_raw("local"))
    assert re.findall(r"needs platform parts: (.*)", fetched.log)[0].split() == wanted
    tools = Path(fetched.env["CE_HOME"]) / "tools"
    built = [p for p in tools.glob("*/bin/*")] if tools.exists() else []
    assert built == [], f"the fetch phase compiled something: {built}"
    assert (Path(fetched.env["CE_HOME"]) / "venv" / "bin" / "python").exists()


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_every_build_input_resolves_offline_after_the_fetch(fetched: Fetched, wrapper: str) -> None:
    env = dict(fetched.env, GOPROXY="off", GOFLAGS="-buildvcs=false -mod=readonly", CGO_ENABLED="0")
    r = subprocess.run(
        ["go", "list", "-deps", "-test=false", *WRAPPERS[wrapper]],
        cwd=ROOT / wrapper,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, f"{wrapper} does not resolve offline:\n{r.stderr[-3000:]}"


def test_a_module_missing_from_the_fetched_cache_fails_the_build_naming_it(
    fetched: Fetched,
) -> None:
    env = dict(fetched.env, GOFLAGS="-buildvcs=false")
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Path}}@{{.Version}} {{.Dir}}", "go.etcd.io/bbolt"],
        cwd=ROOT / "platform" / "gomod" / "etcd",
        env=dict(env, GOPROXY="off"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    module, src = out[0], Path(out[1])
    path, version = module.split("@")
    _rm_tree(src)
    for f in (Path(env["GOMODCACHE"]) / "cache" / "download" / path / "@v").glob(f"{version}.*"):
        f.unlink()
    r = subprocess.run(
        ["bash", str(ROOT / "platform" / "build.sh"), "etcd"],
        env=dict(env, CE_PHASE="build"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode != 0
    assert f"missing from the fetched module cache: {module}" in r.stderr, r.stderr[-3000:]
    assert "run ./ce bootstrap --fetch-only" in r.stderr


def _link_tools(ce_home: Path, real: Path, skip: tuple[str, ...] = ()) -> None:
    (ce_home / "tools").mkdir(parents=True)
    for d in (real / "tools").iterdir():
        if not d.name.startswith(skip):
            (ce_home / "tools" / d.name).symlink_to(d)
    (ce_home / "venv").symlink_to(real / "venv")


def test_an_installed_pulumi_and_installed_plugins_are_reused_not_built(tmp_path: Path) -> None:
    real = Path(toolchain_env()["CE_HOME"])
    pins = toolchain_pins()
    pulumi_ver, k8s_ver = pins["PULUMI_VERSION"], pins["PULUMI_KUBERNETES_VERSION"]
    # "installed by the user": a pulumi on PATH and a plugin in ~/.pulumi/plugins
    user_bin = tmp_path / "user-bin"
    user_bin.mkdir()
    (user_bin / "pulumi").symlink_to(real / "tools" / f"pulumi-v{pulumi_ver}" / "bin" / "pulumi")
    env = _clean_env(tmp_path, PATH=f"{user_bin}:{SYSTEM_PATH}")
    plugin = Path(env["HOME"]) / ".pulumi" / "plugins" / f"resource-kubernetes-v{k8s_ver}"
    plugin.mkdir(parents=True)
    (plugin / "pulumi-resource-kubernetes").symlink_to(
        real
        / "tools"
        / f"pulumi-resource-kubernetes-v{k8s_ver}"
        / "bin"
        / "pulumi-resource-kubernetes"
    )
    ce_home = Path(env["CE_HOME"])
    _link_tools(ce_home, real, skip=("pulumi",))
    env["GOMODCACHE"] = (
        toolchain_env().get("GOMODCACHE")
        or subprocess.run(
            ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    r = subprocess.run(
        ["bash", str(ROOT / "toolchain" / "bootstrap.sh"), "--fetch-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"pulumi CLI: using {user_bin / 'pulumi'}" in r.stderr
    assert (
        f"plugin kubernetes v{k8s_ver}: using {plugin / 'pulumi-resource-kubernetes'}" in r.stderr
    )
    assert "pulumi v" not in re.sub(r"pulumi CLI: using .*", "", r.stderr), r.stderr
    assert "pulumi-resource-kubernetes v" not in r.stderr
    # with a user-installed CLI, Pulumi may download the plugins it lacks (random, vault)
    sourced = subprocess.run(
        ["bash", "-c", f'source "{ROOT}/toolchain/env.sh" && command -v pulumi && env'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sourced.splitlines()[0] == str(user_bin / "pulumi")
    assert "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION" not in sourced


def test_ce_up_runs_from_a_ce_home_without_a_state_directory(tmp_path: Path) -> None:
    """`./ce up`'s own steps (bootstrap, platform up, stack init, program, engine) on a CE_HOME
    that has the built tools but no state directory: the fresh-machine failure was
    `unable to open state directory`. The update targets only the stack resource, so the whole
    program runs and validates but the shared platform's objects, owned by the real `local`
    stack, are left alone (two stacks cannot own the same objects)."""
    real = Path(toolchain_env()["CE_HOME"])
    ce_home = tmp_path / "ce"
    _link_tools(ce_home, real)
    (ce_home / "platform").symlink_to(real / "platform")  # the one running platform
    (ce_home / "pulumi-home").symlink_to(real / "pulumi-home")
    assert not (ce_home / "state").exists()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PULUMI_", "CE_")) and k not in ("KUBECONFIG", "VAULT_TOKEN")
    }
    env.update(CE_HOME=str(ce_home), PATH=SYSTEM_PATH)
    stack_urn = "urn:pulumi:local::claude-enhancer::pulumi:pulumi:Stack::claude-enhancer-local"
    r = subprocess.run(
        [str(ROOT / "ce"), "up", "--target", stack_urn],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert (ce_home / "state").is_dir()
    assert "toolchain ready" in r.stderr and "already up" in r.stderr, r.stderr[-3000:]
    assert re.search(r"\+ 1 created", r.stdout), r.stdout[-3000:]
    # the program ran through: its outputs are in the new state
    out = subprocess.run(
        [str(ROOT / "ce"), "pulumi", "stack", "output", "rolloutPhase", "--stack", "local"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stderr
