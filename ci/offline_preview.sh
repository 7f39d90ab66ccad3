#!/usr/bin/env bash
# The pull-request preview on a machine that cannot download Pulumi (tools built from source by
# `./ce bootstrap`, platform started by `./ce platform up`): the same policy-pack config, preview
# with the pack and compliance report as stack-preview.yml, with the pinned source-built CLI.
#   bash ci/offline_preview.sh [STACK]        (default local; reports in $CE_REPORT_DIR or reports/STACK)
# Exit status: the preview's (non-zero when a mandatory policy is violated).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack=${1:-local}
out=${CE_REPORT_DIR:-$repo/reports/$stack}
# shellcheck source=toolchain/env.sh
. "$repo/toolchain/env.sh"
cd "$repo"
mkdir -p "$out"

pulumi stack select "$stack" --non-interactive >/dev/null 2>&1 \
  || pulumi stack init "$stack" --non-interactive >/dev/null
"$CE_PYTHON" -m ci.policy_config --stack "$stack" --output "$out/pack-config.json"

set +e
pulumi preview --non-interactive --diff --stack "$stack" \
  --policy-pack policies --policy-pack-config "$out/pack-config.json" 2>&1 | tee "$out/preview.txt"
status=${PIPESTATUS[0]}
set -e

"$CE_PYTHON" -m ci.compliance --stack "$stack" --config "$out/pack-config.json" --out-dir "$out" \
  --run-id "${GITHUB_RUN_ID:-local}-$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
exit "$status"
