#!/usr/bin/env bash
# Proves the toolchain end to end in a throwaway project (temp dir, its own file backend):
#   pulumi version / plugin ls; preview of a pulumi_kubernetes Namespace + ConfigMap + exports
#   through our language host; preview with a trivial Python policy pack (pass, then a mandatory
#   violation must fail); and, when the local kube-apiserver answers, `pulumi up` + `destroy`.
# Usage: toolchain/smoke.sh [--no-up]
set -euo pipefail

main() {
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  # shellcheck source=toolchain/env.sh
  . "$here/env.sh"
  local do_up=1; [ "${1:-}" = "--no-up" ] && do_up=0
  work=$(mktemp -d "${TMPDIR:-/tmp}/ce-smoke.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  export PULUMI_BACKEND_URL="file://$work/state" PULUMI_CONFIG_PASSPHRASE=smoke
  mkdir -p "$work/state" "$work/prog" "$work/policy"

  cat >"$work/prog/Pulumi.yaml" <<'EOF'
name: ce-toolchain-smoke
runtime:
  name: python
  options:
    toolchain: pip
EOF
  cat >"$work/prog/helper.py" <<'EOF'
def greeting() -> str:
    return "hello from our language host"
EOF
  cat >"$work/prog/__main__.py" <<'EOF'
import pulumi
import pulumi_kubernetes as k8s
from helper import greeting  # the program directory is on sys.path

cfg = pulumi.Config()
# skipAwait: delete without waiting for the garbage collector (a bare apiserver has none).
skip = {"pulumi.com/skipAwait": "true"}
ns = k8s.core.v1.Namespace("smoke", metadata={"name": "ce-toolchain-smoke", "annotations": skip})
cm = k8s.core.v1.ConfigMap(
    "smoke",
    metadata={"namespace": ns.metadata["name"], "name": "ce-toolchain-smoke", "annotations": skip},
    data={"greeting": greeting(), "who": cfg.get("who") or "nobody"},
)
pulumi.export("namespace", ns.metadata["name"])
pulumi.export("configMap", cm.metadata["name"])
pulumi.export("secretLength", cfg.require_secret("token").apply(len))
EOF
  cat >"$work/policy/PulumiPolicy.yaml" <<'EOF'
runtime: python
description: toolchain smoke policy pack
EOF
  cat >"$work/policy/__main__.py" <<'EOF'
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def check(args, report_violation):
    if args.resource_type == "kubernetes:core/v1:ConfigMap":
        if (args.props.get("data") or {}).get("who") == "forbidden":
            report_violation("who=forbidden is not allowed")


PolicyPack(
    name="ce-toolchain-smoke",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[ResourceValidationPolicy(name="no-forbidden-who", description="no forbidden who", validate=check)],
)
EOF

  cd "$work/prog"
  local t
  run() { t=$(date +%s); echo "+ $*" >&2; "$@"; echo "  ($(( $(date +%s) - t ))s)" >&2; }
  run pulumi version
  run pulumi plugin ls
  run pulumi stack init smoke --non-interactive
  pulumi config set who world
  pulumi config set --secret token s3cr3t-value
  run pulumi preview --non-interactive --diff=false
  run pulumi preview --non-interactive --policy-pack "$work/policy"
  pulumi config set who forbidden
  echo "+ pulumi preview --policy-pack (must fail: mandatory violation)" >&2
  if pulumi preview --non-interactive --policy-pack "$work/policy" >"$work/violation.log" 2>&1; then
    cat "$work/violation.log"; echo "FAIL: policy violation was not enforced" >&2; return 1
  fi
  grep -q "who=forbidden is not allowed" "$work/violation.log" || { cat "$work/violation.log"; return 1; }
  echo "  ok: violation reported and preview failed" >&2
  pulumi config set who world

  if [ "$do_up" = 1 ]; then
    if [ -r "$KUBECONFIG" ] && kube_ok; then
      run pulumi up --yes --non-interactive --skip-preview
      run pulumi stack output --json
      run pulumi destroy --yes --non-interactive --skip-preview
    else
      echo "SKIP pulumi up: no reachable cluster at KUBECONFIG=$KUBECONFIG" >&2
    fi
  fi
  pulumi stack rm --yes --force smoke >/dev/null 2>&1 || true
  echo "SMOKE OK" >&2
}

# kube_ok: the kube-apiserver named in $KUBECONFIG answers /readyz (or /healthz).
kube_ok() {
  local server
  server=$(grep -o 'server: *"\{0,1\}https\{0,1\}://[^" ,}]*' "$KUBECONFIG" | head -n1 | sed 's/server: *"\{0,1\}//')
  [ -n "$server" ] && curl -sk --max-time 5 "$server/readyz" >/dev/null 2>&1
}

main "$@"
