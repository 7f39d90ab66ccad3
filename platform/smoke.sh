#!/usr/bin/env bash
# Smoke test of a running local platform (platform/local.sh up first). Loopback only.
# Creates 3 kwok Nodes in 3 zones and a 2-replica Deployment in namespace ce-smoke, waits for the Pods to be
# Running/Ready on them, checks CRDs, vault, postgres and loopback-only listeners; cleans up after itself.
# Prints "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
. "$repo/toolchain/versions.env"
CE_HOME="${CE_HOME:-$HOME/.cache/ce}"; CE_TOOLS="${CE_TOOLS:-$CE_HOME/tools}"
P="$CE_HOME/platform"
export KUBECONFIG="$P/kubeconfig"
K="$CE_TOOLS/kubernetes-$K8S_VERSION/bin/kubectl"
VAULT="$CE_TOOLS/vault-$VAULT_VERSION/bin/vault"
pass=0 fail=0
t() { local name=$1; shift; local t0=$SECONDS
  if "$@" >/tmp/ce-smoke.out 2>&1; then pass=$((pass+1)); echo "ok   $name ($((SECONDS-t0))s)"
  else fail=$((fail+1)); echo "FAIL $name ($((SECONDS-t0))s)"; sed 's/^/     /' /tmp/ce-smoke.out | tail -n 15; fi; }

readyz() { [ "$("$K" get --raw /readyz)" = ok ]; }
nodes() {
  local i z
  for i in 0 1 2; do z=(zone-a zone-b zone-c); cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: ce-smoke-node-$i
  annotations: {kwok.x-k8s.io/node: fake}
  labels:
    type: kwok
    kubernetes.io/hostname: ce-smoke-node-$i
    topology.kubernetes.io/zone: ${z[$i]}
    topology.kubernetes.io/region: local
spec:
  taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]
EOF
  done | "$K" apply -f - && "$K" wait --for condition=Ready --timeout 60s node -l type=kwok,kubernetes.io/hostname
}
deploy() {
  "$K" create namespace ce-smoke --dry-run=client -o yaml | "$K" apply -f - &&
  cat <<'EOF' | "$K" apply -f - &&
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ce-smoke}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers: [{name: web, image: example.invalid/web:1}]
EOF
  "$K" -n ce-smoke rollout status deploy/web --timeout 90s &&
  "$K" -n ce-smoke wait --for condition=Ready --timeout 60s pod -l app=web &&
  "$K" -n ce-smoke get pods -o wide &&
  [ "$("$K" -n ce-smoke get pods -l app=web --field-selector status.phase=Running -o name | wc -l)" = 2 ]
}
crds() {
  local c
  for c in virtualservices.networking.istio.io destinationrules.networking.istio.io gateways.networking.istio.io \
           peerauthentications.security.istio.io authorizationpolicies.security.istio.io \
           clusters.postgresql.cnpg.io scheduledbackups.postgresql.cnpg.io \
           servicemonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com \
           redisclusters.redis.redis.opstreelabs.in; do
    "$K" wait --for condition=Established --timeout 10s "crd/$c" || return 1
  done
}
vault_ok() { VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=$(cat "$P/vault-token") "$VAULT" status && \
  VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=$(cat "$P/vault-token") "$VAULT" token lookup >/dev/null; }
pg_ok() { PGPASSWORD=$(cat "$P/postgres-vault-password") psql -h 127.0.0.1 -p "${PLATFORM_PG_PORT:-55432}" -U vault -d postgres -Atc 'select 1' | grep -qx 1; }
cleanup() { "$K" delete namespace ce-smoke --timeout 60s >/dev/null 2>&1; "$K" delete node -l type=kwok,kubernetes.io/hostname --timeout 60s >/dev/null 2>&1; true; }

t "apiserver /readyz" readyz
t "3 kwok nodes (3 zones) Ready" nodes
t "deployment 2/2 Running+Ready on kwok nodes" deploy
t "CRDs established" crds
# the Vault server runs only for stacks that enable Vault (components/needs.py)
if [ -x "$VAULT" ] && [ -s "$P/run/vault.pid" ]; then t "vault status + token" vault_ok
else echo "vault: not started for stack ${CE_STACK:-local} (vault.enabled is false)"; fi
t "psql 127.0.0.1:55432 as vault" pg_ok
t "loopback-only listeners" "$here/local.sh" check-loopback
cleanup
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
