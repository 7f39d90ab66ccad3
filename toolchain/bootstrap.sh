#!/usr/bin/env bash
# Idempotent toolchain bootstrap (see docs/CONTRACT.md and docs/toolchain-notes.md):
#   1. the Python venv ($CE_HOME/venv) from requirements.txt
#   2. the pulumi CLI, built from toolchain/gomod/pulumi       -> $CE_TOOLS/pulumi-v<ver>/bin
#   3. our language host toolchain/pulumi-language-python (and the dynamic-provider launcher
#      toolchain/pulumi-resource-pulumi-python), installed next to pulumi
#   4. the Kubernetes resource provider, toolchain/gomod/pulumi-resource-kubernetes
#                                                              -> $CE_TOOLS/pulumi-resource-kubernetes-v<ver>/bin
#      and installed into $PULUMI_HOME/plugins/resource-kubernetes-v<ver>/ (`pulumi plugin ls`)
#   5. report on the random / vault providers (not buildable here; see notes)
# Warm runs only check stamps. Exits non-zero naming module/version/error if a build fails.
set -euo pipefail

# Everything runs inside main() so bash parses the whole file before executing it (safe to edit
# this file while a bootstrap is running).
main() {

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
# shellcheck source=toolchain/env.sh
. "$here/env.sh"
# shellcheck source=toolchain/lib.sh
. "$here/lib.sh"

t0=$(ce_now)
step() { ce_log "== $*"; }

# ---------------------------------------------------------------- 1. venv
step "python venv ($CE_HOME/venv)"
ts=$(ce_now)
req_hash=$(sha256sum "$repo/requirements.txt" | cut -c1-16)
if [ ! -x "$CE_HOME/venv/bin/python" ]; then
  py=${CE_BASE_PYTHON:-$(command -v python3.11 || command -v python3)}
  ce_log "creating venv with $py"
  "$py" -m venv "$CE_HOME/venv" || ce_die "python -m venv $CE_HOME/venv failed"
  rm -f "$CE_HOME/venv/.requirements.sha256"
fi
if [ "$(cat "$CE_HOME/venv/.requirements.sha256" 2>/dev/null)" != "$req_hash" ]; then
  ce_log "pip install -r requirements.txt (log $CE_LOGS/pip.log)"
  mkdir -p "$CE_LOGS"
  if ! "$CE_HOME/venv/bin/python" -m pip install --disable-pip-version-check -q -r "$repo/requirements.txt" >"$CE_LOGS/pip.log" 2>&1; then
    tail -n 20 "$CE_LOGS/pip.log" >&2
    ce_die "pip install -r requirements.txt failed (see $CE_LOGS/pip.log)"
  fi
  echo "$req_hash" >"$CE_HOME/venv/.requirements.sha256"
fi
ce_log "venv ok ($(( $(ce_now) - ts ))s)"

# ---------------------------------------------------------------- 2. pulumi CLI
step "pulumi CLI v$PULUMI_VERSION"
GO_TOOL_LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
  build_go_tool pulumi "v$PULUMI_VERSION" "$here/gomod/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
  || ce_die "pulumi CLI (github.com/pulumi/pulumi/pkg/v3 v$PULUMI_VERSION) did not build; see above"
pulumi_bin="$CE_TOOLS/pulumi-v$PULUMI_VERSION/bin/pulumi"

# ---------------------------------------------------------------- 3. language host
step "pulumi-language-python + pulumi-resource-pulumi-python (ours) next to pulumi"
for f in pulumi-language-python pulumi-resource-pulumi-python; do
  if ! cmp -s "$here/$f" "$CE_TOOLS/pulumi-v$PULUMI_VERSION/bin/$f"; then
    install -m 0755 "$here/$f" "$CE_TOOLS/pulumi-v$PULUMI_VERSION/bin/$f"
    ce_log "installed $CE_TOOLS/pulumi-v$PULUMI_VERSION/bin/$f"
  fi
done
lh_dst="$CE_TOOLS/pulumi-v$PULUMI_VERSION/bin/pulumi-language-python"
# Smoke test: it must start under the venv python and print a port.
lh_port=$(CE_PYTHON="$CE_HOME/venv/bin/python" timeout 20 "$lh_dst" --selftest 2>"$CE_LOGS/langhost-smoke.log" | head -n1 || true)
[[ "$lh_port" =~ ^[0-9]+$ ]] || ce_die "pulumi-language-python did not start (see $CE_LOGS/langhost-smoke.log)"

# ---------------------------------------------------------------- 4. kubernetes provider
step "pulumi-resource-kubernetes v$PULUMI_KUBERNETES_VERSION ($PULUMI_KUBERNETES_MODULE_VERSION)"
# Runs inside the temporary build copy: generate the embedded schema/mapping exactly as the
# provider's cmd/pulumi-resource-kubernetes/generate.go does (VERSION stamped into the schema).
k8s_prebuild() {
  local tmp=$1 src
  src=$(cd "$tmp" && GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)
  [ -n "$src" ] || { echo "cannot locate provider/v4 module dir"; return 1; }
  mkdir -p "$tmp/.gen"
  cp "$src/cmd/pulumi-resource-kubernetes/generate.go" \
     "$src/cmd/pulumi-resource-kubernetes/schema.json" \
     "$src/cmd/pulumi-resource-kubernetes/terraform-mapping.json" "$tmp/.gen/"
  chmod u+w "$tmp/.gen/"*
  (cd "$tmp/.gen" && VERSION="$PULUMI_KUBERNETES_VERSION" GOFLAGS=-mod=readonly go run ./generate.go) || return 1
  mv "$tmp/.gen/schema-embed.json" "$tmp/.gen/terraform-mapping-embed.json" "$tmp/"
  rm -rf "$tmp/.gen"
}
GO_TOOL_PREBUILD=k8s_prebuild \
GO_TOOL_LDFLAGS="-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
  build_go_tool pulumi-resource-kubernetes "v$PULUMI_KUBERNETES_VERSION" "$here/gomod/pulumi-resource-kubernetes" . \
  || ce_die "kubernetes provider (github.com/pulumi/pulumi-kubernetes/provider/v4 $PULUMI_KUBERNETES_MODULE_VERSION = v$PULUMI_KUBERNETES_VERSION) did not build; see above"

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
install_resource_plugin kubernetes "$PULUMI_KUBERNETES_VERSION" \
  "$CE_TOOLS/pulumi-resource-kubernetes-v$PULUMI_KUBERNETES_VERSION/bin/pulumi-resource-kubernetes"

# ---------------------------------------------------------------- 5. checks
step "checks"
site=$("$CE_HOME/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
sdk_plugin_version() { sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$site/pulumi_$1/pulumi-plugin.json" 2>/dev/null; }
k8s_sdk=$(sdk_plugin_version kubernetes)
if [ -n "$k8s_sdk" ] && [ "$k8s_sdk" != "$PULUMI_KUBERNETES_VERSION" ]; then
  ce_log "WARNING: the venv's pulumi-kubernetes SDK requests plugin kubernetes v$k8s_sdk but the provider built here is" \
         "v$PULUMI_KUBERNETES_VERSION: pin pulumi-kubernetes==$PULUMI_KUBERNETES_VERSION in requirements.txt" \
         "(or pass ResourceOptions(version=\"$PULUMI_KUBERNETES_VERSION\")), otherwise kubernetes resources fail with 'plugin not installed'."
fi
for p in random vault; do
  v=$(sdk_plugin_version "$p")
  [ -n "$v" ] || continue
  if [ ! -x "$PULUMI_HOME/plugins/resource-$p-v$v/pulumi-resource-$p" ]; then
    ce_log "NOTE: resource plugin $p v$v is not available (its Go provider module is not served by the module proxy;" \
           "see docs/toolchain-notes.md): programs that register $p resources fail with 'plugin not installed'."
  fi
done
# ---------------------------------------------------------------- 6. platform + test tools
step "local platform binaries (platform/build.sh)"
ts=$(ce_now)
bash "$repo/platform/build.sh" all || ce_die "platform/build.sh failed (see $CE_LOGS)"
ce_log "platform binaries ok ($(( $(ce_now) - ts ))s)"

step "test tools"
ts=$(ce_now)
missing=()
for pkg in $DEBIAN_TEST_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  ce_log "apt-get install ${missing[*]}"
  (apt-get install -y -q --no-install-recommends "${missing[@]}" \
     || { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; }) \
    >"$CE_LOGS/apt-test-tools.log" 2>&1 \
    || { tail -n 20 "$CE_LOGS/apt-test-tools.log" >&2; ce_die "apt-get install ${missing[*]} failed"; }
  # the package starts a system prometheus on :9090; tests run their own on loopback ports
  systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
  pkill -x prometheus-node-exporter >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null || ce_die "promtool not on PATH after installing Debian's prometheus"
al_dir="$CE_TOOLS/actionlint-$ACTIONLINT_VERSION/bin"
if [ ! -x "$al_dir/actionlint" ]; then
  ce_log "go install github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION"
  mkdir -p "$al_dir"
  GOBIN="$al_dir" go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION" \
    >"$CE_LOGS/actionlint.log" 2>&1 || { tail -n 20 "$CE_LOGS/actionlint.log" >&2; ce_die "building actionlint v$ACTIONLINT_VERSION failed"; }
fi
ce_log "test tools ok ($(( $(ce_now) - ts ))s)"

"$pulumi_bin" version >/dev/null || ce_die "pulumi version failed"
ce_log "== toolchain ready in $(( $(ce_now) - t0 ))s: $("$pulumi_bin" version) (source toolchain/env.sh)"
}

main "$@"
