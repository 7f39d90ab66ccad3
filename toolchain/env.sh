# shellcheck shell=bash
# Source me: `. toolchain/env.sh`. Exports the environment described in docs/CONTRACT.md.
# Pure: only exports variables (no builds, no network); run toolchain/bootstrap.sh first.

_ce_toolchain_dir=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
export CE_REPO="${CE_REPO:-$(dirname "$_ce_toolchain_dir")}"
export CE_HOME="${CE_HOME:-$HOME/.cache/ce}"
export CE_TOOLS="${CE_TOOLS:-$CE_HOME/tools}"

# shellcheck source=toolchain/versions.env
. "$_ce_toolchain_dir/versions.env"

export CE_PYTHON="$CE_HOME/venv/bin/python"
export PULUMI_HOME="${PULUMI_HOME:-$CE_HOME/pulumi-home}"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$CE_HOME/state}"
# Default passphrase of the local stack (override by exporting your own before sourcing).
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-ce-local-passphrase}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
export KUBECONFIG="${KUBECONFIG:-$CE_HOME/platform/kubeconfig}"
# The local Vault dev server (platform/local.sh owns it; these are its defaults).
export VAULT_ADDR="${VAULT_ADDR:-http://127.0.0.1:8200}"
if [ -z "${VAULT_TOKEN:-}" ] && [ -r "$CE_HOME/platform/vault-token" ]; then
  VAULT_TOKEN=$(cat "$CE_HOME/platform/vault-token"); export VAULT_TOKEN
fi

# pulumi (+ our pulumi-language-python next to it), then the project venv.
case ":$PATH:" in
  *":$CE_TOOLS/pulumi-v$PULUMI_VERSION/bin:"*) ;;
  *) PATH="$CE_TOOLS/pulumi-v$PULUMI_VERSION/bin:$CE_HOME/venv/bin:$PATH" ;;
esac
export PATH
unset _ce_toolchain_dir
