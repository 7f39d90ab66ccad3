#!/usr/bin/env bash
# Idempotent toolchain bootstrap, in two phases (docs/toolchain-notes.md):
#
#   toolchain/bootstrap.sh [--fetch-only] [--stack NAME] [--test-tools] [--plan]
#
# --plan prints what this bootstrap installs for the platform and changes nothing past the venv:
#        `part NAME` (platform/build.sh parts) and `deb NAME` (Debian test packages) lines.
#
# fetch  downloads everything the build needs and compiles nothing: the Python wheels (then the venv
#        is installed from them), every Go module of every wrapper module that will be built (the
#        Pulumi CLI, the kubernetes plugin, the platform tools the stack needs, the test tools), the
#        CRD module zips, the Debian packages. It stops at the first thing it cannot get, naming it.
# build  compiles offline (GOPROXY=off, -mod=readonly): only what was fetched is used.
#
# What is reused instead of built (compiling is the fallback, not the default):
#   - a pulumi CLI at least v$PULUMI_VERSION: $CE_PULUMI, else the first `pulumi` on PATH
#     (CE_BUILD_PULUMI=1 forces the build);
#   - resource plugins already installed in the user's Pulumi home (${CE_USER_PULUMI_HOME:-~/.pulumi})
#     at the versions the SDKs request;
#   - with a reused CLI, Pulumi downloads its plugins itself (CE_PLUGIN_DOWNLOAD=0 turns that off and
#     builds the kubernetes plugin instead).
# Only the platform parts the selected stack needs are built (python -m components.needs).
# Warm runs only check stamps. Exits non-zero naming module/version/error if a step fails.
set -euo pipefail

# Everything runs inside main() so bash parses the whole file before executing it (safe to edit
# this file while a bootstrap is running).
main() {

local fetch_only=0 stack=${CE_STACK:-local} test_tools=0 plan=0
while [ $# -gt 0 ]; do
  case "$1" in
    --fetch-only) fetch_only=1 ;;
    --stack) stack=${2:?--stack needs a name}; shift ;;
    --stack=*) stack=${1#--stack=} ;;
    --test-tools) test_tools=1 ;;
    --plan) plan=1 ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 0 ;;
    *) echo "bootstrap: unknown argument '$1' (see --help)" >&2; return 2 ;;
  esac
  shift
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
# Decide about a reusable CLI before env.sh puts our own build first on PATH.
local user_path=$PATH
# shellcheck source=toolchain/env.sh
. "$here/env.sh"
# shellcheck source=toolchain/lib.sh
. "$here/lib.sh"
mkdir -p "$CE_HOME" "$CE_LOGS" "$CE_TOOLS" "$CE_HOME/state"

t0=$(ce_now)
step() { ce_log "== $*"; }

# ================================================================ fetch phase
step "fetch phase (stack $stack)"
export CE_PHASE=fetch

# ---------------------------------------------------------------- python: wheels, then the venv
ts=$(ce_now)
req_hash=$(sha256sum "$repo/requirements.txt" | cut -c1-16)
# --plan reads the stack with any venv there is: it installs nothing
if [ "$plan" = 1 ] && [ -x "$CE_HOME/venv/bin/python" ]; then
  :
elif [ "$(cat "$CE_HOME/venv/.requirements.sha256" 2>/dev/null)" != "$req_hash" ]; then
  wheels="$CE_HOME/wheels/$req_hash"
  py=${CE_BASE_PYTHON:-$(command -v python3.11 || command -v python3)}
  if [ ! -f "$wheels/.complete" ]; then
    ce_log "pip download -r requirements.txt -> $wheels (log $CE_LOGS/pip-download.log)"
    if ! "$py" -m pip download --disable-pip-version-check -q -d "$wheels" -r "$repo/requirements.txt" \
         >"$CE_LOGS/pip-download.log" 2>&1; then
      grep -m 5 -E 'ERROR|No matching|Could not' "$CE_LOGS/pip-download.log" >&2 || tail -n 5 "$CE_LOGS/pip-download.log" >&2
      ce_die "pip download -r requirements.txt failed (see $CE_LOGS/pip-download.log)"
    fi
    touch "$wheels/.complete"
  fi
  [ -x "$CE_HOME/venv/bin/python" ] || "$py" -m venv "$CE_HOME/venv" || ce_die "python -m venv $CE_HOME/venv failed"
  ce_log "pip install --no-index from $wheels (log $CE_LOGS/pip.log)"
  if ! "$CE_HOME/venv/bin/python" -m pip install --disable-pip-version-check -q --no-index \
       --find-links "$wheels" -r "$repo/requirements.txt" >"$CE_LOGS/pip.log" 2>&1; then
    tail -n 20 "$CE_LOGS/pip.log" >&2
    ce_die "pip install -r requirements.txt from the fetched wheels failed (see $CE_LOGS/pip.log)"
  fi
  echo "$req_hash" >"$CE_HOME/venv/.requirements.sha256"
fi
ce_log "python venv ok ($(( $(ce_now) - ts ))s)"

# ---------------------------------------------------------------- what this stack needs
local -a parts
mapfile -t parts < <(cd "$repo" && "$CE_PYTHON" -m components.needs --stack "$stack")
[ "${#parts[@]}" -gt 0 ] && [[ "${parts[0]}" != ERROR* ]] || ce_die "stack $stack: ${parts[*]:-no platform parts}"
ce_log "stack $stack needs platform parts: ${parts[*]}"
if [ "$plan" = 1 ]; then
  printf 'part %s\n' "${parts[@]}"
  if [ "$test_tools" = 1 ]; then
    echo "part nca"
    echo "part meshsim"
    local d; for d in $DEBIAN_TEST_PACKAGES; do echo "deb $d"; done
  fi
  return 0
fi

# ---------------------------------------------------------------- the pulumi CLI: reuse or build
# pulumi_ok BIN: BIN runs and is at least the pinned version.
pulumi_ok() {
  local v
  v=$("$1" version 2>/dev/null | head -n1) || return 1
  v=${v#v}
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$PULUMI_VERSION" "${v%%-*}" | sort -V | head -n1)" = "$PULUMI_VERSION" ]
}
local pulumi_src=build pulumi_bin="$CE_TOOLS/pulumi-v$PULUMI_VERSION/bin/pulumi" cand=""
if [ -n "${CE_PULUMI:-}" ]; then
  pulumi_ok "$CE_PULUMI" || ce_die "CE_PULUMI=$CE_PULUMI is not a pulumi CLI >= v$PULUMI_VERSION"
  pulumi_src=installed; pulumi_bin=$CE_PULUMI
elif [ "${CE_BUILD_PULUMI:-0}" != 1 ]; then
  cand=$(PATH=$user_path command -v pulumi || true)
  if [ -n "$cand" ] && [[ "$cand" != "$CE_TOOLS"/* ]] && pulumi_ok "$cand"; then
    pulumi_src=installed; pulumi_bin=$cand
  fi
fi
local plugin_download=${CE_PLUGIN_DOWNLOAD:-}
[ -n "$plugin_download" ] || { [ "$pulumi_src" = installed ] && plugin_download=1 || plugin_download=0; }
if [ "$pulumi_src" = installed ]; then
  ce_log "pulumi CLI: using $pulumi_bin ($("$pulumi_bin" version)); plugin download by Pulumi: $plugin_download"
fi
# Each tool below is one build_go_tool call that does the phase CE_PHASE names (fetch, then build).
build_pulumi_cli() {
  GO_TOOL_LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    build_go_tool pulumi "v$PULUMI_VERSION" "$here/gomod/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    || ce_die "pulumi CLI (github.com/pulumi/pulumi/pkg/v3 v$PULUMI_VERSION): see above"
}
[ "$pulumi_src" = build ] && build_pulumi_cli

# ---------------------------------------------------------------- the kubernetes plugin: reuse or build
local user_plugins=${CE_USER_PULUMI_HOME:-$HOME/.pulumi}/plugins
local k8s_user="$user_plugins/resource-kubernetes-v$PULUMI_KUBERNETES_VERSION/pulumi-resource-kubernetes"
local k8s_src=build k8s_bin="$CE_TOOLS/pulumi-resource-kubernetes-v$PULUMI_KUBERNETES_VERSION/bin/pulumi-resource-kubernetes"
if [ -x "$k8s_user" ] && [ ! -e "${k8s_user%/*}.partial" ]; then
  k8s_src=installed; k8s_bin=$k8s_user
elif [ "$plugin_download" = 1 ]; then
  k8s_src=download
fi
# Runs inside the temporary build copy: generate the embedded schema/mapping exactly as the
# provider's cmd/pulumi-resource-kubernetes/generate.go does (VERSION stamped into the schema).
k8s_prebuild() {
  local tmp=$1 src
  src=$(go_src_dir "$tmp" github.com/pulumi/pulumi-kubernetes/provider/v4) || return 1
  mkdir -p "$tmp/.gen"
  cp "$src/cmd/pulumi-resource-kubernetes/generate.go" \
     "$src/cmd/pulumi-resource-kubernetes/schema.json" \
     "$src/cmd/pulumi-resource-kubernetes/terraform-mapping.json" "$tmp/.gen/"
  chmod u+w "$tmp/.gen/"*
  (cd "$tmp/.gen" && VERSION="$PULUMI_KUBERNETES_VERSION" go run ./generate.go) || return 1
  mv "$tmp/.gen/schema-embed.json" "$tmp/.gen/terraform-mapping-embed.json" "$tmp/"
  rm -rf "$tmp/.gen"
}
build_k8s_plugin() {
  GO_TOOL_PREBUILD=k8s_prebuild \
  GO_TOOL_FETCH_PKGS=github.com/pulumi/pulumi/pkg/v3/codegen/schema \
  GO_TOOL_SRC_MODULES=github.com/pulumi/pulumi-kubernetes/provider/v4 \
  GO_TOOL_LDFLAGS="-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
    build_go_tool pulumi-resource-kubernetes "v$PULUMI_KUBERNETES_VERSION" "$here/gomod/pulumi-resource-kubernetes" . \
    || ce_die "kubernetes provider (github.com/pulumi/pulumi-kubernetes/provider/v4 $PULUMI_KUBERNETES_MODULE_VERSION = v$PULUMI_KUBERNETES_VERSION): see above"
}
case "$k8s_src" in
  installed) ce_log "plugin kubernetes v$PULUMI_KUBERNETES_VERSION: using $k8s_bin" ;;
  download) ce_log "plugin kubernetes v$PULUMI_KUBERNETES_VERSION: Pulumi downloads it (CE_PLUGIN_DOWNLOAD=1)" ;;
  build) build_k8s_plugin ;;
esac

# ---------------------------------------------------------------- platform parts + test tools
bash "$repo/platform/build.sh" "${parts[@]}" || ce_die "platform fetch failed (see above)"
local -a debs=()
[ "$test_tools" = 1 ] && read -r -a debs <<<"$DEBIAN_TEST_PACKAGES"
[ ${#debs[@]} -gt 0 ] && { apt_packages "${debs[@]}" || ce_die "Debian test packages: see above"; }
build_test_tools() {
  build_go_tool actionlint "$ACTIONLINT_VERSION" "$here/gomod/actionlint" github.com/rhysd/actionlint/cmd/actionlint \
    || ce_die "actionlint (github.com/rhysd/actionlint v$ACTIONLINT_VERSION): see above"
  bash "$repo/platform/build.sh" nca meshsim || ce_die "test tools nca, meshsim: see above"
  GO_TOOL_LDFLAGS="-s -w" build_go_tool istioctl "$ISTIOCTL_VERSION" "$here/gomod/istioctl" \
    istio.io/istio/istioctl/cmd/istioctl \
    || ce_die "istioctl (istio.io/istio $ISTIOCTL_VERSION): see above"
}
[ "$test_tools" = 1 ] && build_test_tools
ce_log "fetch phase done in $(( $(ce_now) - t0 ))s"

# The choices env.sh reads (which pulumi, whether Pulumi may download plugins).
{
  echo "# written by toolchain/bootstrap.sh; read by toolchain/env.sh"
  echo "CE_PULUMI_BIN_DIR=$(dirname "$pulumi_bin")"
  echo "CE_PLUGIN_DOWNLOAD=$plugin_download"
} >"$CE_HOME/toolchain.env.new" && mv "$CE_HOME/toolchain.env.new" "$CE_HOME/toolchain.env"
[ "$fetch_only" = 1 ] && { ce_log "== fetch only: nothing compiled"; return 0; }

# ================================================================ build phase (offline)
step "build phase"
export CE_PHASE=build
tb=$(ce_now)
[ "$pulumi_src" = build ] && build_pulumi_cli

# Our language host and dynamic-provider launcher. Next to our own CLI they are what Pulumi runs;
# with a reused CLI, its own bundled ones win and ours are only a fallback on PATH.
local lh_dir="$CE_TOOLS/pulumi-v$PULUMI_VERSION/bin"
[ "$pulumi_src" = installed ] && lh_dir="$CE_TOOLS/ce-language-host/bin"
mkdir -p "$lh_dir"
for f in pulumi-language-python pulumi-resource-pulumi-python; do
  if ! cmp -s "$here/$f" "$lh_dir/$f"; then
    install -m 0755 "$here/$f" "$lh_dir/$f"
    ce_log "installed $lh_dir/$f"
  fi
done
# Smoke test: it must start under the venv python and print a port.
lh_port=$(CE_PYTHON="$CE_HOME/venv/bin/python" timeout 20 "$lh_dir/pulumi-language-python" --selftest 2>"$CE_LOGS/langhost-smoke.log" | head -n1 || true)
[[ "$lh_port" =~ ^[0-9]+$ ]] || ce_die "pulumi-language-python did not start (see $CE_LOGS/langhost-smoke.log)"

[ "$k8s_src" = build ] && build_k8s_plugin
# install_resource_plugin NAME VERSION BINARY: into $PULUMI_HOME/plugins via the CLI itself.
install_resource_plugin() {
  local name=$1 version=$2 bin=$3
  local dir="$PULUMI_HOME/plugins/resource-$name-v$version"
  if [ -x "$dir/pulumi-resource-$name" ] && cmp -s "$bin" "$dir/pulumi-resource-$name" && [ ! -e "$dir.partial" ]; then
    ce_log "plugin resource $name v$version: installed"
    return 0
  fi
  ce_log "plugin resource $name v$version: installing from $bin"
  "$pulumi_bin" plugin install resource "$name" "$version" --file "$bin" --reinstall >"$CE_LOGS/plugin-install-$name.log" 2>&1 \
    || { tail -n 20 "$CE_LOGS/plugin-install-$name.log" >&2; ce_die "pulumi plugin install resource $name $version failed"; }
}
[ "$k8s_src" = download ] || install_resource_plugin kubernetes "$PULUMI_KUBERNETES_VERSION" "$k8s_bin"
# Other plugins the user already has at the SDKs' versions (random, vault) are used as they are.
site=$("$CE_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
sdk_plugin_version() { sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$site/pulumi_$1/pulumi-plugin.json" 2>/dev/null; }
k8s_sdk=$(sdk_plugin_version kubernetes)
if [ -n "$k8s_sdk" ] && [ "$k8s_sdk" != "$PULUMI_KUBERNETES_VERSION" ]; then
  ce_log "WARNING: the venv's pulumi-kubernetes SDK requests plugin kubernetes v$k8s_sdk but the toolchain pins" \
         "v$PULUMI_KUBERNETES_VERSION: pin pulumi-kubernetes==$PULUMI_KUBERNETES_VERSION in requirements.txt."
fi
for p in random vault; do
  v=$(sdk_plugin_version "$p")
  [ -n "$v" ] || continue
  if [ -x "$user_plugins/resource-$p-v$v/pulumi-resource-$p" ]; then
    install_resource_plugin "$p" "$v" "$user_plugins/resource-$p-v$v/pulumi-resource-$p"
  elif [ ! -x "$PULUMI_HOME/plugins/resource-$p-v$v/pulumi-resource-$p" ] && [ "$plugin_download" != 1 ]; then
    ce_log "NOTE: resource plugin $p v$v is not installed and cannot be built here (docs/toolchain-notes.md):" \
           "stacks that need it stop before any resource is touched."
  fi
done

bash "$repo/platform/build.sh" "${parts[@]}" || ce_die "platform build failed (see above)"
if [ ${#debs[@]} -gt 0 ]; then
  apt_packages "${debs[@]}" || ce_die "Debian test packages: see above"
  # Debian's alertmanager package starts a system server on :9093; tests run their own on loopback
  systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || true
fi
[ "$test_tools" = 1 ] && build_test_tools
ce_log "build phase done in $(( $(ce_now) - tb ))s"

"$pulumi_bin" version >/dev/null || ce_die "pulumi version failed"
ce_log "== toolchain ready in $(( $(ce_now) - t0 ))s: pulumi $("$pulumi_bin" version) (source toolchain/env.sh)"
}

main "$@"
