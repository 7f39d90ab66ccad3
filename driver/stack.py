"""The Pulumi side of the driver, behind a small injectable interface.

:class:`AutomationStack` is the real implementation (Pulumi Automation API,
``select_stack(work_dir=<project>)``); tests inject a fake with the same
methods to exercise the driver logic without a CLI or a cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from components.state import backend_dir, checkpoint_path, read_checkpoint

PROJECT_NAMESPACE = "claude-enhancer"
ROLLOUT_KEY = f"{PROJECT_NAMESPACE}:rollout"
DEFAULT_WORK_DIR = Path(__file__).resolve().parent.parent

OnOutput = Callable[[str], None]


class ToolchainMissing(RuntimeError):
    """The Pulumi CLI (or its environment) is not available."""


@dataclass
class UpOutcome:
    outputs: dict[str, Any]
    result: str  # "succeeded" / "failed"
    summary: dict[str, Any] = field(default_factory=dict)  # resource op counts


@dataclass(frozen=True)
class Resource:
    urn: str
    type: str
    kind: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_state(cls, r: dict[str, Any]) -> Resource:
        inputs = r.get("inputs") or {}
        meta = inputs.get("metadata") if isinstance(inputs, dict) else None
        labels = meta.get("labels") if isinstance(meta, dict) else None
        return cls(
            urn=str(r.get("urn", "")),
            type=str(r.get("type", "")),
            kind=str(inputs.get("kind", "")) if isinstance(inputs, dict) else "",
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        )


class StackRunner(Protocol):
    project: str
    stack_name: str

    def rollout_config(self) -> dict[str, Any]: ...

    def set_phase(self, phase: int) -> None: ...

    def set_config_value(self, key: str, value: str) -> None:
        """Set a structured config path, e.g. ``claude-enhancer:app.stableVersion``."""
        ...

    def config_value(self, key: str) -> Any:
        """The parsed value of a top-level config key (``None`` when unset)."""
        ...

    def cancel_stale_lock(self) -> bool:
        """Remove the backend's update lock if its process is gone; True if one was removed."""
        ...

    def outputs(self) -> dict[str, Any]: ...

    def up(self, on_output: OnOutput, targets: list[str] | None = None) -> UpOutcome: ...

    def resources(self) -> list[Resource]:
        """Every resource of the last deployment (urn, type, kind, labels)."""
        ...

    def step_targets(self) -> list[str] | None:
        """URNs a phase step must update when nothing but the phase changed since this
        runner's last successful ``up``; None means a full ``up``."""
        ...


def require_pulumi_cli() -> str:
    """Path of the ``pulumi`` binary, or a clear error telling how to get one."""
    path = shutil.which("pulumi")
    if not path:
        raise ToolchainMissing(
            "pulumi CLI not found on PATH. Build/install the toolchain and run "
            "`source toolchain/env.sh` (it puts $CE_HOME/tools/pulumi-*/bin on PATH and sets "
            "PULUMI_BACKEND_URL / PULUMI_CONFIG_PASSPHRASE)."
        )
    if not os.environ.get("PULUMI_BACKEND_URL"):
        raise ToolchainMissing(
            "PULUMI_BACKEND_URL is not set; run `source toolchain/env.sh` first "
            "(local stacks use the file backend under $CE_HOME/state)."
        )
    return path


class AutomationStack:
    """Real stack through ``pulumi.automation.select_stack``."""

    def __init__(self, stack_name: str = "local", work_dir: Path | str = DEFAULT_WORK_DIR) -> None:
        require_pulumi_cli()
        from pulumi import automation as auto

        self._auto = auto
        self.stack_name = stack_name
        self.work_dir = str(work_dir)
        self._stack = auto.select_stack(stack_name=stack_name, work_dir=self.work_dir)
        self.project = self._stack.workspace.project_settings().name

    @property
    def auto_stack(self) -> Any:
        """The underlying ``pulumi.automation.Stack`` (tests and the benchmark use it)."""
        return self._stack

    def set_rollout_value(self, path: str, value: str) -> None:
        """Set ``claude-enhancer:rollout.<path>`` (structured config path)."""
        self._stack.set_config(
            f"{ROLLOUT_KEY}.{path}", self._auto.ConfigValue(value=value), path=True
        )

    def remove_rollout_value(self, path: str) -> None:
        self._stack.remove_config(f"{ROLLOUT_KEY}.{path}", path=True)

    def rollout_config(self) -> dict[str, Any]:
        cfg = self._stack.get_all_config()
        raw = cfg.get(ROLLOUT_KEY)
        if raw is None:
            return {}
        try:
            value = json.loads(raw.value)
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    def set_config_value(self, key: str, value: str) -> None:
        self._stack.set_config(key, self._auto.ConfigValue(value=value), path=True)

    def config_value(self, key: str) -> Any:
        raw = self._stack.get_all_config().get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw.value)
        except json.JSONDecodeError:
            return raw.value

    def cancel_stale_lock(self) -> bool:
        return cancel_stale_file_lock(self.project, self.stack_name)

    def set_phase(self, phase: int) -> None:
        self._stack.set_config(
            f"{ROLLOUT_KEY}.phase", self._auto.ConfigValue(value=str(phase)), path=True
        )

    def outputs(self) -> dict[str, Any]:
        return {k: v.value for k, v in self._stack.outputs().items()}

    def up(self, on_output: OnOutput, targets: list[str] | None = None) -> UpOutcome:
        kwargs: dict[str, Any] = {
            "on_output": on_output,
            "color": "never",
            "suppress_outputs": True,
        }
        if targets:
            kwargs["target"] = targets
        res = self._stack.up(**kwargs)
        outputs = {k: v.value for k, v in res.outputs.items()}
        changes = {
            str(getattr(k, "value", k)): v for k, v in (res.summary.resource_changes or {}).items()
        }
        return UpOutcome(outputs=outputs, result=str(res.summary.result), summary=changes)

    def step_targets(self) -> list[str] | None:
        return None  # no cheap view of the backend's state here: always a full `up`

    def resources(self) -> list[Resource]:
        dep = self._stack.export_stack()
        return [Resource.from_state(r) for r in (dep.deployment or {}).get("resources", []) or []]

    def preview(self, on_output: OnOutput, policy_packs: list[str] | None = None) -> dict[str, Any]:
        """Used by the benchmark only."""
        kwargs: dict[str, Any] = {"on_output": on_output, "color": "never"}
        if policy_packs:
            kwargs["policy_packs"] = policy_packs
        res = self._stack.preview(**kwargs)
        return {str(getattr(k, "value", k)): v for k, v in (res.change_summary or {}).items()}


class CliStack:
    """The same runner over the plain CLI, with the fewest processes a step needs.

    The Automation API's ``up`` also runs ``stack output`` twice and ``stack history``
    after the update, and every config read is another CLI process; each pays the CLI's
    start-up and the passphrase key derivation (bench/step_overhead.py measures it).
    Here a step is ``config set`` + ``up --json``: the outputs come from the update's own
    engine events, and config reads parse the stack file the CLI itself reads.
    """

    def __init__(
        self,
        stack_name: str = "local",
        work_dir: Path | str = DEFAULT_WORK_DIR,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env
        if env is None:
            self.pulumi = require_pulumi_cli()
        else:
            self.pulumi = shutil.which("pulumi", path=env.get("PATH")) or "pulumi"
        self.stack_name = stack_name
        self.work_dir = Path(work_dir)
        import yaml

        project = yaml.safe_load((self.work_dir / "Pulumi.yaml").read_text())
        self.project = str(project["name"])
        self._config_dir = self.work_dir / str(project.get("stackConfigDir") or ".")
        self._outputs: dict[str, Any] | None = None
        #: the checkpoint's digest the cached outputs were read at (None: not a file backend)
        self._outputs_state: str | None = None
        self.on_call: Callable[[str, float], None] | None = None
        # (program inputs, backend state) right after this runner's last successful `up`
        self._converged: tuple[str, str] | None = None

    def _run(self, *args: str, on_output: OnOutput | None = None) -> str:
        import subprocess
        import time

        cmd = [self.pulumi, *args, "--stack", self.stack_name, "--non-interactive"]
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=self.work_dir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if on_output is not None:
                on_output(line)
        code = proc.wait()
        if self.on_call is not None:
            self.on_call(" ".join(args[:3]), time.monotonic() - t0)
        if code != 0:
            tail = "".join(lines[-40:])
            raise RuntimeError(f"pulumi {' '.join(args[:2])} failed ({code}): {tail}")
        return "".join(lines)

    def _stack_config(self) -> dict[str, Any]:
        import yaml

        path = self._config_dir / f"Pulumi.{self.stack_name}.yaml"
        doc = yaml.safe_load(path.read_text()) if path.exists() else None
        cfg = (doc or {}).get("config") or {}
        return cfg if isinstance(cfg, dict) else {}

    def rollout_config(self) -> dict[str, Any]:
        value = self._stack_config().get(ROLLOUT_KEY)
        return dict(value) if isinstance(value, dict) else {}

    def config_value(self, key: str) -> Any:
        return self._stack_config().get(key)

    def set_config_value(self, key: str, value: str) -> None:
        self._run("config", "set", "--path", key, value)

    def set_phase(self, phase: int) -> None:
        self._run("config", "set", "--path", f"{ROLLOUT_KEY}.phase", str(phase))

    def cancel_stale_lock(self) -> bool:
        return cancel_stale_file_lock(self.project, self.stack_name)

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs, read again only when the backend's checkpoint changed (another
        process ran `up`: `status --watch` beside the controller), or after our own `up`."""
        raw = self._checkpoint()
        state = _sha(raw) if raw is not None else None
        if self._outputs is None or state != self._outputs_state:
            self._outputs = json.loads(self._run("stack", "output", "--json", "--show-secrets"))
            self._outputs_state = state
        return dict(self._outputs)

    def _checkpoint(self) -> bytes | None:
        url = (self.env if self.env is not None else os.environ).get("PULUMI_BACKEND_URL", "")
        path = checkpoint_path(url, self.project, self.stack_name)
        return read_checkpoint(path) if path is not None else None

    def inputs_digest(self) -> str:
        """What the program reads, the rollout phase aside (see :func:`program_inputs_digest`)."""
        return program_inputs_digest(self.work_dir, self._stack_config())

    def step_targets(self) -> list[str] | None:
        if self._converged is None:
            return None
        raw = self._checkpoint()
        if raw is None or (self.inputs_digest(), _sha(raw)) != self._converged:
            return None
        latest = (json.loads(raw).get("checkpoint") or {}).get("latest") or {}
        found = rollback_targets([Resource.from_state(r) for r in latest.get("resources") or []])
        return found or None

    def up(self, on_output: OnOutput, targets: list[str] | None = None) -> UpOutcome:
        self._outputs = None
        inputs = self.inputs_digest()
        self._converged = None
        args = ["up", "--yes", "--skip-preview", "--json"]
        for t in targets or []:
            args += ["--target", t]
        outputs: dict[str, Any] | None = None
        summary: dict[str, Any] = {}
        result = "succeeded"

        def event(line: str) -> None:
            nonlocal outputs, summary, result
            text = line.strip()
            if not text.startswith("{"):
                return
            try:
                ev = json.loads(text)
            except json.JSONDecodeError:
                return
            res = ev.get("resOutputsEvent", {}).get("metadata", {})
            if res.get("type") == "pulumi:pulumi:Stack":
                outputs = _plain_outputs((res.get("new") or {}).get("outputs") or {})
            if "summaryEvent" in ev:
                summary = dict(ev["summaryEvent"].get("resourceChanges") or {})
            diag = ev.get("diagnosticEvent")
            if diag and diag.get("severity") in ("info", "warning", "error"):
                on_output(str(diag.get("message", "")).rstrip())

        self._run(*args, on_output=event)
        raw = self._checkpoint()
        if raw is not None:
            self._converged = (inputs, _sha(raw))
        if outputs is None or any(v == "[secret]" for v in outputs.values()):
            self._outputs = None
            outputs = self.outputs()
        else:
            self._outputs = outputs
            self._outputs_state = _sha(raw) if raw is not None else None
        return UpOutcome(outputs=dict(outputs), result=result, summary=summary)

    def resources(self) -> list[Resource]:
        dep = json.loads(self._run("stack", "export"))
        return [Resource.from_state(r) for r in (dep.get("deployment") or {}).get("resources", [])]


def _plain_outputs(raw: dict[str, Any]) -> dict[str, Any]:
    """Engine event outputs mark secrets with a sentinel object; surface them as "[secret]"."""
    sig = "4dabf18193072939515e22adb298388d"
    return {k: "[secret]" if isinstance(v, dict) and sig in v else v for k, v in raw.items()}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: Not read by the program: a change here never needs more than a phase step.
NOT_PROGRAM_INPUTS = frozenset({".git", "tests", "bench", "stacks", "__pycache__"})


def program_inputs_digest(work_dir: Path, stack_config: dict[str, Any]) -> str:
    """Digest of everything a phase step's ``up`` could see change, except the phase.

    The stack's config (rollout phase removed; key order ignored) and every file of the
    project outside :data:`NOT_PROGRAM_INPUTS` and dot-directories. Too wide on purpose:
    a false "changed" costs one full ``up``; a missed change would leave drift behind.
    """
    h = hashlib.sha256()
    cfg = json.loads(json.dumps(stack_config, default=str))
    rollout = cfg.get(ROLLOUT_KEY)
    if isinstance(rollout, dict):
        rollout.pop("phase", None)
    h.update(json.dumps(cfg, sort_keys=True).encode())
    files: list[Path] = []
    for top, dirs, names in os.walk(work_dir):
        rel_top = Path(top).relative_to(work_dir)
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d != "__pycache__"
            and not (rel_top == Path(".") and d in NOT_PROGRAM_INPUTS)
        ]
        files += [Path(top) / n for n in names if not n.startswith(".") and not n.endswith(".pyc")]
    for path in sorted(files):
        rel = path.relative_to(work_dir).as_posix()
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed holder stays a zombie until something reaps it, and signal 0 still reaches a
    # zombie: its lock is stale all the same (seen here: PID 1 reaps orphans late).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split(" ", 1)[0] != "Z"


def cancel_stale_file_lock(project: str, stack: str) -> bool:
    """Drop the file backend's update lock left by a killed ``up`` (its pid is gone).

    A live holder's lock is never touched. Only this host's locks are judged.
    """
    base = backend_dir(os.environ.get("PULUMI_BACKEND_URL", ""))
    if base is None:
        return False
    removed = False
    for d in (
        base / ".pulumi" / "locks" / "organization" / project / stack,
        base / ".pulumi" / "locks" / stack,
    ):
        if not d.is_dir():
            continue
        for f in d.glob("*.json"):
            try:
                info = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            pid = int(info.get("pid", 0) or 0)
            if info.get("hostname") == os.uname().nodename and pid and not _pid_alive(pid):
                f.unlink(missing_ok=True)
                removed = True
    return removed


def rollback_targets(resources: list[Resource]) -> list[str]:
    """URNs a targeted phase step (advance or rollback) updates: the root stack (outputs),
    every Istio VirtualService (the traffic weights) and the canary-track Deployments (their
    replica count is the only other phase-dependent field, see components/app.py).

    Pure; unit-tested. Empty when no VirtualService is found (the caller then
    falls back to a full ``up``).
    """
    targets: list[str] = []
    has_vs = False
    for r in resources:
        name = r.urn.rsplit("::", 1)[-1].lower()
        if r.type == "pulumi:pulumi:Stack":
            targets.append(r.urn)
        elif r.type.endswith(":VirtualService") or r.kind == "VirtualService":
            targets.append(r.urn)
            has_vs = True
        elif r.type.endswith(":Deployment") and (
            r.labels.get("track") == "canary" or "canary" in name
        ):
            targets.append(r.urn)
    return targets if has_vs else []
