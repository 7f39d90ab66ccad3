#!/usr/bin/env bash
# The `local` stack's platform on a CI runner, for the preview job:
#   1. the loopback platform (etcd, kube-apiserver, kwok, ...; built by platform/build.sh when
#      missing and cached by the workflow), started by `./ce platform up`;
#   2. the local stack's backend, passphrase and kubeconfig (from toolchain/env.sh, their one
#      home) appended to $GITHUB_ENV. Nothing else from env.sh: the Pulumi CLI and its plugins
#      stay the ones pulumi/actions installed and acquires (no source builds, no
#      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION).
set -euo pipefail
repo=${CE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

# PostgreSQL comes from Debian packages; platform/build.sh installs it with apt-get (root).
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo --preserve-env=CE_HOME,CE_TOOLS bash "$repo/platform/build.sh" postgres
fi
"$repo/ce" platform up

# The local stack's passphrase is the documented throwaway default (README "Secrets and state").
(
  # shellcheck source=toolchain/env.sh
  . "$repo/toolchain/env.sh"
  for v in PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE KUBECONFIG VAULT_ADDR; do
    printf '%s=%s\n' "$v" "${!v}"
  done
) >>"${GITHUB_ENV:-/dev/stdout}"
