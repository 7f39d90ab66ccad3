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
# What toolchain/bootstrap.sh chose: which pulumi CLI (ours, or one the user has installed) and
# whether Pulumi may download its own plugins (yes with a user-installed CLI, unless
# CE_PLUGIN_DOWNLOAD=0). Without a bootstrap yet: our own build, no downloads.
CE_PULUMI_BIN_DIR="$CE_TOOLS/pulumi-v$PULUMI_VERSION/bin"
_ce_plugin_download=${CE_PLUGIN_DOWNLOAD:-}
if [ -r "$CE_HOME/toolchain.env" ]; then
  CE_PULUMI_BIN_DIR=$(sed -n 's/^CE_PULUMI_BIN_DIR=//p' "$CE_HOME/toolchain.env")
  [ -n "$_ce_plugin_download" ] || _ce_plugin_download=$(sed -n 's/^CE_PLUGIN_DOWNLOAD=//p' "$CE_HOME/toolchain.env")
fi
export CE_PULUMI_BIN_DIR
if [ "${_ce_plugin_download:-0}" = 1 ]; then
  unset PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION
else
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
fi
unset _ce_plugin_download
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
# lint caches outside the checkout: a CI clone is new each run, CE_HOME is kept (mypy strict over
# the repository takes minutes cold, seconds warm)
export MYPY_CACHE_DIR="${MYPY_CACHE_DIR:-$CE_HOME/cache/mypy}"
export RUFF_CACHE_DIR="${RUFF_CACHE_DIR:-$CE_HOME/cache/ruff}"
export KUBECONFIG="${KUBECONFIG:-$CE_HOME/platform/kubeconfig}"
# The local Vault dev server (platform/local.sh owns it; these are its defaults).
export VAULT_ADDR="${VAULT_ADDR:-http://127.0.0.1:8200}"
if [ -z "${VAULT_TOKEN:-}" ] && [ -r "$CE_HOME/platform/vault-token" ]; then
  VAULT_TOKEN=$(cat "$CE_HOME/platform/vault-token"); export VAULT_TOKEN
fi
# The admin logins on the platform's PostgreSQL (Vault's database engine, the local stack's
# vault.postgres.adminUser) and Redis Cluster (its default user: the Redis rotator's).
if [ -z "${CE_POSTGRES_ADMIN_PASSWORD:-}" ] && [ -r "$CE_HOME/platform/postgres-vault-password" ]; then
  CE_POSTGRES_ADMIN_PASSWORD=$(cat "$CE_HOME/platform/postgres-vault-password"); export CE_POSTGRES_ADMIN_PASSWORD
fi
if [ -z "${CE_REDIS_ADMIN_PASSWORD:-}" ] && [ -r "$CE_HOME/platform/redis-admin-password" ]; then
  CE_REDIS_ADMIN_PASSWORD=$(cat "$CE_HOME/platform/redis-admin-password"); export CE_REDIS_ADMIN_PASSWORD
fi

# pulumi (+ our pulumi-language-python next to it, or on PATH after a reused CLI), then the venv.
case ":$PATH:" in
  *":$CE_PULUMI_BIN_DIR:"*) ;;
  *) PATH="$CE_PULUMI_BIN_DIR:$CE_TOOLS/ce-language-host/bin:$CE_HOME/venv/bin:$PATH" ;;
esac
export PATH
unset _ce_toolchain_dir
