#!/usr/bin/env bash
# Builds and caches the local-platform binaries and collects the CRDs (see docs/platform-notes.md).
#   platform/build.sh [all|kubernetes|etcd|kwok|vault|crds|postgres|redis|cnpg|redisop|promop|istiod|telemetry|nca|meshsim]...   (default: all)
# CE_PHASE=fetch downloads what the parts need and compiles nothing; the default build phase is
# offline (toolchain/lib.sh). toolchain/bootstrap.sh runs both, for the parts the stack needs.
# Called by toolchain/bootstrap.sh as:  "$repo/platform/build.sh"
# Outputs ($CE_HOME/tools):
#   kubernetes-$K8S_VERSION/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
#   etcd-$ETCD_VERSION/bin/{etcd,etcdctl}   (etcd's main package is go.etcd.io/etcd/server/v3)
#   kwok-$KWOK_VERSION/bin/kwok   +  kwok-$KWOK_VERSION/stages.yaml (kwok's own fast node/pod stages)
#   vault-$VAULT_VERSION/bin/vault
#   platform-crds/<group>/*.yaml  (+ SOURCES: module@version of each file)
#   cnpg-$CNPG_VERSION/bin/cnpg-manager   (CloudNativePG operator + instance manager)
#   redisop-$REDISOP_VERSION/bin/redis-operator
#   istiod-$ISTIOCTL_VERSION/bin/{pilot-discovery,istioctl} + inject/{config,values}, mesh,
#     meshNetworks, mutatingwebhook.json   (Istio's sidecar injector, rendered by its own istioctl)
#   nca-$NCA_VERSION/bin/nca   (test tool, not in "all": network-config-analyzer from PyPI)
#   meshsim-$ISTIOCTL_VERSION/bin/meshsim   (test tool, not in "all": flows through the Envoy
#     config istiod generates, Istio's pilot/pkg/simulation; tests/integration/test_mesh_wire.py)
#   telemetry: Debian's prometheus (/usr/bin/prometheus, promtool), the rollout's Prometheus
#     that platform/telemetry.sh runs
#   platform/build.sh --provides PART...   prints the executables those parts install, one per line
#     (what platform/local.sh and telemetry.sh may start; checked after every build of a part)
# Warm runs only compare stamps (a few seconds). Exits non-zero naming the failing part.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
# shellcheck source=toolchain/versions.env
. "$repo/toolchain/versions.env"
# shellcheck source=toolchain/lib.sh
. "$repo/toolchain/lib.sh"     # build_go_tool, ce_log
CE_HOME="${CE_HOME:-$HOME/.cache/ce}"; CE_TOOLS="${CE_TOOLS:-$CE_HOME/tools}"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

# The wrapper go.mod must require the version pinned in versions.env.
check_wrapper_pin() { # WRAPPER_DIR MODULE VERSION
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2 $3\b" "$1/go.mod" \
    || ce_die "${1#"$repo"/}/go.mod does not require $2 $3 (toolchain/versions.env); update both"
}
check_pin() { check_wrapper_pin "$here/gomod/$1" "$2" "$3"; } # DIR (under platform/gomod) MODULE VERSION

go_mod_dir() { # MODULE@VERSION -> prints the extracted module dir (checksum-verified)
  # fetch phase: downloads it; build phase: offline, from the fetched module cache only
  local out proxy=${GOPROXY:-}
  [ "${CE_PHASE:-build}" = fetch ] || proxy=off
  out=$(cd "$here/gomod/kubernetes" && GOPROXY=${proxy:-$(go env GOPROXY)} GOFLAGS=-mod=mod go mod download -json "$1" 2>&1) || true
  local dir; dir=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    echo "ERROR: go mod download $1 failed: $(printf '%s\n' "$out" | sed -n 's/.*"Error": //p')" >&2
    return 1
  fi
  echo "$dir"
}
fetching() { [ "${CE_PHASE:-build}" = fetch ]; }

b_kubernetes() {
  check_pin kubernetes k8s.io/kubernetes "$K8S_VERSION"
  local v=${K8S_VERSION#v} X="" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    X="$X -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=${v%%.*} -X $p.gitMinor=$(echo "$v" | cut -d. -f2) -X $p.gitTreeState=clean"
  done
  GO_TOOL_LDFLAGS="-s -w$X" build_go_tool kubernetes "$K8S_VERSION" "$here/gomod/kubernetes" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

b_etcd() {
  check_pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  GO_TOOL_LDFLAGS="-s -w" build_go_tool etcd "$ETCD_VERSION" "$here/gomod/etcd" \
    go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 || return 1
  fetching && return 0
  # the server main package builds as "server" (module path .../server/v3); give it its real name
  local b="$CE_TOOLS/etcd-$ETCD_VERSION/bin"
  local n; for n in server v3; do if [ -x "$b/$n" ] && [ ! -x "$b/etcd" ]; then mv "$b/$n" "$b/etcd"; fi; done
  [ -x "$b/etcd" ] || ce_die "etcd binary missing in $b"
}

b_kwok() {
  check_pin kwok sigs.k8s.io/kwok "$KWOK_VERSION"
  GO_TOOL_LDFLAGS="-s -w" \
    build_go_tool kwok "$KWOK_VERSION" "$here/gomod/kwok" sigs.k8s.io/kwok/cmd/kwok || return 1
  fetching && return 0
  # kwok's own default stages (fast node init + heartbeat with lease, fast pod ready/complete/delete)
  local src out="$CE_TOOLS/kwok-$KWOK_VERSION/stages.yaml" f
  src=$(go_src_dir "$here/gomod/kwok" sigs.k8s.io/kwok) || return 1
  {
    echo "# Stages copied from sigs.k8s.io/kwok@$KWOK_VERSION kustomize/stage/ by platform/build.sh"
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
             pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      echo "---"; echo "# $f"; cat "$src/kustomize/stage/$f"
    done
  } >"$out.tmp" && mv "$out.tmp" "$out"
}

b_vault() {
  check_pin vault github.com/hashicorp/vault "$VAULT_VERSION"
  GO_TOOL_LDFLAGS="-s -w" \
    build_go_tool vault "$VAULT_VERSION" "$here/gomod/vault" github.com/hashicorp/vault
}

b_crds() {
  local out="$CE_TOOLS/platform-crds" key
  key=$(printf '%s\n' "$CRD_ISTIO_MODULE" "$CRD_CNPG_MODULE" "$CRD_PROMOP_MODULE" "$CRD_REDISOP_MODULE" | sha256sum | cut -c1-16)
  if [ "$(cat "$out/.stamp" 2>/dev/null)" = "$key" ]; then ce_log "crds: cached ($out)"; return 0; fi
  if fetching; then
    local m; for m in "$CRD_ISTIO_MODULE" "$CRD_CNPG_MODULE" "$CRD_PROMOP_MODULE" "$CRD_REDISOP_MODULE"; do
      go_mod_dir "$m" >/dev/null || return 1
    done
    ce_log "crds: module zips fetched"; return 0
  fi
  local t0; t0=$(ce_now)
  rm -rf "$out.new"; mkdir -p "$out.new"/{istio,cnpg,monitoring,redis}
  local d
  d=$(go_mod_dir "$CRD_ISTIO_MODULE") || return 1
  cp "$d/kubernetes/customresourcedefinitions.gen.yaml" "$out.new/istio/"
  echo "istio/customresourcedefinitions.gen.yaml  $CRD_ISTIO_MODULE kubernetes/customresourcedefinitions.gen.yaml" >>"$out.new/SOURCES"
  d=$(go_mod_dir "$CRD_CNPG_MODULE") || return 1
  cp "$d"/config/crd/bases/postgresql.cnpg.io_*.yaml "$out.new/cnpg/"
  echo "cnpg/*.yaml  $CRD_CNPG_MODULE config/crd/bases/" >>"$out.new/SOURCES"
  d=$(go_mod_dir "$CRD_PROMOP_MODULE") || return 1
  cp "$d"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$out.new/monitoring/"
  echo "monitoring/*.yaml  $CRD_PROMOP_MODULE example/prometheus-operator-crd/" >>"$out.new/SOURCES"
  d=$(go_mod_dir "$CRD_REDISOP_MODULE") || return 1
  cp "$d"/config/crd/bases/redis.redis.opstreelabs.in_*.yaml "$out.new/redis/"
  echo "redis/*.yaml  $CRD_REDISOP_MODULE config/crd/bases/" >>"$out.new/SOURCES"
  chmod -R u+w "$out.new"
  echo "$key" >"$out.new/.stamp"
  rm -rf "$out" && mv "$out.new" "$out"
  ce_log "crds: collected $(find "$out" -name '*.yaml' | wc -l) files in $(( $(ce_now) - t0 ))s -> $out"
}

b_postgres() {
  apt_packages "postgresql-$PG_MAJOR" || return 1
  fetching || ce_log "postgres: $("/usr/lib/postgresql/$PG_MAJOR/bin/postgres" --version)"
}

# Operators that reconcile the program's CRs on the local platform (run by platform/local.sh),
# each the same version as the CRDs the platform applies.
# build_operator PART VERSION_VAR CRD_VAR MODULE PACKAGE [BINARY NAME]: BINARY, a process name too
# generic for platform/local.sh's pid checks ("manager", "operator"), is installed as NAME.
build_operator() {
  local part=$1 vvar=$2 cvar=$3 module=$4 pkg=$5 generic=${6:-} name=${7:-}
  local version=${!vvar} crd=${!cvar}
  check_pin "$part" "$module" "$version"
  [ "$module@$version" = "$crd" ] || ce_die "$vvar ($version) must match $cvar ($crd)"
  GO_TOOL_LDFLAGS="-s -w" build_go_tool "$part" "$version" "$here/gomod/$part" "$pkg" || return 1
  if fetching || [ -z "$generic" ]; then return 0; fi
  local b="$CE_TOOLS/$part-$version/bin"
  if [ -x "$b/$generic" ] && [ ! -x "$b/$name" ]; then mv "$b/$generic" "$b/$name"; fi
  [ -x "$b/$name" ] || ce_die "$name binary missing in $b"
}

b_cnpg() {
  build_operator cnpg CNPG_VERSION CRD_CNPG_MODULE github.com/cloudnative-pg/cloudnative-pg \
    github.com/cloudnative-pg/cloudnative-pg/cmd/manager manager cnpg-manager
}

b_redisop() {
  build_operator redisop REDISOP_VERSION CRD_REDISOP_MODULE github.com/OT-CONTAINER-KIT/redis-operator \
    github.com/OT-CONTAINER-KIT/redis-operator
}

# prometheus-operator: turns the program's Prometheus and Alertmanager CRs into StatefulSets.
b_promop() {
  build_operator promop PROMOP_VERSION CRD_PROMOP_MODULE github.com/prometheus-operator/prometheus-operator \
    github.com/prometheus-operator/prometheus-operator/cmd/operator operator prometheus-operator
}

# Istio's sidecar injector (istiod, run by platform/local.sh as the injector only), from the same
# istio.io/istio wrapper module as the istioctl test tool. Its injector templates, values, mesh
# config and MutatingWebhookConfiguration are rendered by the istioctl built with it, from Istio's
# own charts, with the Istio CNI plugin on (what mesh.dataplane: cni requires under PSS restricted).
# The webhook is called by URL (no kube-proxy here); the CA bundle is filled in by local.sh.
ISTIOD_INJECT_URL=https://localhost:15017/inject
ISTIOD_CA_PLACEHOLDER=Q0VfQ0FfQlVORExF  # base64 of "CE_CA_BUNDLE": local.sh sets the platform CA
b_istiod() {
  local wrapper="$repo/toolchain/gomod/istioctl" dest="$CE_TOOLS/istiod-$ISTIOCTL_VERSION"
  check_wrapper_pin "$wrapper" istio.io/istio "$ISTIOCTL_VERSION"
  GO_TOOL_LDFLAGS="-s -w" build_go_tool istiod "$ISTIOCTL_VERSION" "$wrapper" \
    istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/istioctl/cmd/istioctl || return 1
  fetching && return 0
  # the proxy image is the one the CRDs are pinned at (the injected pods name it; kwok runs none)
  local tag=${CRD_ISTIO_MODULE##*@v} key
  local -a args=(manifest generate --set components.cni.enabled=true --set hub=docker.io/istio
    --set "tag=$tag" --set "values.istiodRemote.injectionURL=$ISTIOD_INJECT_URL"
    --set "values.istiodRemote.injectionCABundle=$ISTIOD_CA_PLACEHOLDER")
  key=$( { cat "$dest/.stamp"; printf '%s\n' "${args[@]}"; cat "$here/istiod-render.py"; } | sha256sum | cut -c1-16)
  [ "$(cat "$dest/.render-stamp" 2>/dev/null)" = "$key" ] && return 0
  rm -rf "$dest/render.new"
  # KUBECONFIG: rendering must never reach for a cluster
  KUBECONFIG=/nonexistent "$dest/bin/istioctl" "${args[@]}" 2>>"$CE_LOGS/build-istiod-$ISTIOCTL_VERSION.log" \
    | "${CE_PYTHON:-$CE_HOME/venv/bin/python}" "$here/istiod-render.py" "$dest/render.new" \
    || ce_die "istiod: rendering the injector config with istioctl failed (log $CE_LOGS/build-istiod-$ISTIOCTL_VERSION.log)"
  echo "istioctl ${args[*]}" >"$dest/render.new/SOURCES"
  rm -rf "$dest/render" && mv "$dest/render.new" "$dest/render"
  echo "$key" >"$dest/.render-stamp"
  ce_log "istiod: injector config rendered (CNI template, proxy $tag) -> $dest/render"
}

# Test tool: np-guard's network-config-analyzer (PyPI), the NetworkPolicy + Istio
# AuthorizationPolicy semantics behind tests/integration/test_reachability.py. Its own venv: it
# pins PyYAML 6.0.2, the program's venv 6.0.4. Fetch: the wheels; build: offline install.
b_nca() {
  local dest="$CE_TOOLS/nca-$NCA_VERSION" wheels="$CE_HOME/cache/pip/nca-$NCA_VERSION"
  if [ -x "$dest/bin/nca" ]; then ce_log "nca: cached ($dest)"; return 0; fi
  if fetching; then
    [ -f "$wheels/.complete" ] && return 0
    mkdir -p "$wheels"
    "$CE_HOME/venv/bin/python" -m pip download -q --dest "$wheels" "network-config-analyzer==$NCA_VERSION" \
      || { echo "ERROR: pip download network-config-analyzer==$NCA_VERSION failed" >&2; return 1; }
    touch "$wheels/.complete"; return 0
  fi
  rm -rf "$dest.new"
  python3 -m venv "$dest.new" \
    && "$dest.new/bin/pip" install -q --no-index --find-links "$wheels" "network-config-analyzer==$NCA_VERSION" \
    || { echo "ERROR: nca $NCA_VERSION: offline install from $wheels failed (run the fetch phase)" >&2; return 1; }
  rm -rf "$dest" && mv "$dest.new" "$dest"
  # the venv's scripts name their interpreter by path: rewrite it after the move
  sed -i "1s|^#!.*/python.*|#!$dest/bin/python|" "$dest/bin/nca" "$dest/bin/pip"
  ce_log "nca: $("$dest/bin/nca" --version 2>&1 | head -n1) -> $dest"
}

# Test tool: meshsim (platform/gomod/meshsim), Istio's own config generation and traffic
# simulation (pilot/test/xds + pilot/pkg/simulation) over the program's rendered objects, behind
# tests/integration/test_mesh_wire.py. Same istio.io/istio pin and go.sum entries as the istiod
# wrapper, so it reuses istiod's build cache: only its own packages and the test harness compile.
b_meshsim() {
  check_pin meshsim istio.io/istio "$ISTIOCTL_VERSION"
  GO_TOOL_LDFLAGS="-s -w" build_go_tool meshsim "$ISTIOCTL_VERSION" "$here/gomod/meshsim" .
}

b_redis() { # the Redis Cluster whose ACL user the Redis rotator rotates (stacks with Vault)
  apt_packages redis-server || return 1
  fetching || ce_log "redis: $(/usr/bin/redis-server --version)"
}

# The rollout's telemetry (platform/telemetry.sh, started by every `platform/local.sh up` unless
# CE_TELEMETRY=0): Debian's Prometheus server, with promtool. A platform part, not a test tool:
# `./ce up` starts it, so `./ce up`'s bootstrap installs it (issue 22).
b_telemetry() {
  apt_packages prometheus || return 1
  fetching && return 0
  # Debian's package starts a system server on :9090, the platform's own Prometheus port
  systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
  pkill -x prometheus-node-exporter >/dev/null 2>&1 || true
  ce_log "telemetry: $(/usr/bin/prometheus --version 2>&1 | head -n1)"
}

# part_provides PART: the executables PART installs, one per line. platform/local.sh and
# telemetry.sh start nothing else but the base system's commands (PLATFORM_SYSTEM_COMMANDS in
# toolchain/versions.env): tests/unit/test_entrypoint_tools.py holds each README entry point's
# bootstrap to that, and every build of a part checks it really installed them.
part_provides() {
  local t=$CE_TOOLS
  case "$1" in
    kubernetes) printf "$t/kubernetes-$K8S_VERSION/bin/%s\n" kube-apiserver kube-controller-manager kube-scheduler kubectl ;;
    etcd) printf "$t/etcd-$ETCD_VERSION/bin/%s\n" etcd etcdctl ;;
    kwok) echo "$t/kwok-$KWOK_VERSION/bin/kwok" ;;
    vault) echo "$t/vault-$VAULT_VERSION/bin/vault" ;;
    crds) ;;
    postgres) printf "/usr/lib/postgresql/$PG_MAJOR/bin/%s\n" postgres initdb pg_ctl pg_isready psql ;;
    redis) printf '/usr/bin/%s\n' redis-server redis-cli ;;
    cnpg) echo "$t/cnpg-$CNPG_VERSION/bin/cnpg-manager" ;;
    redisop) echo "$t/redisop-$REDISOP_VERSION/bin/redis-operator" ;;
    promop) echo "$t/promop-$PROMOP_VERSION/bin/prometheus-operator" ;;
    istiod) printf "$t/istiod-$ISTIOCTL_VERSION/bin/%s\n" pilot-discovery istioctl ;;
    telemetry) printf '/usr/bin/%s\n' prometheus promtool ;;
    nca) echo "$t/nca-$NCA_VERSION/bin/nca" ;;
    meshsim) echo "$t/meshsim-$ISTIOCTL_VERSION/bin/meshsim" ;;
    *) return 1 ;;
  esac
}

KNOWN_PARTS="all|kubernetes|etcd|kwok|vault|crds|postgres|redis|cnpg|redisop|promop|istiod|telemetry|nca|meshsim"
if [ "${1:-}" = --provides ]; then
  shift
  for p in "$@"; do part_provides "$p" || ce_die "unknown part '$p' ($KNOWN_PARTS)"; done
  exit 0
fi
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(all)
[ "${parts[0]}" = all ] && parts=(postgres crds kubernetes etcd kwok telemetry vault redis cnpg redisop promop istiod)
t0=$(ce_now)
for p in "${parts[@]}"; do
  declare -F "b_$p" >/dev/null || ce_die "unknown part '$p' ($KNOWN_PARTS)"
  "b_$p" || ce_die "platform build of '$p' failed (see above)"
  fetching && continue
  while read -r f; do
    [ -x "$f" ] || ce_die "platform part '$p' did not install $f (build.sh part_provides)"
  done < <(part_provides "$p")
done
ce_log "platform ${CE_PHASE:-build} (${parts[*]}) done in $(( $(ce_now) - t0 ))s"
