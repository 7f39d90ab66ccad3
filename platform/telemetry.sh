#!/usr/bin/env bash
# Local telemetry for the rollout: a real Prometheus (Debian package) scraping
#   - the synthetic Istio exporter (monitoring/exporter/exporter.py): Istio's standard series
#     with the label values the program puts on the `local` stack's pods, and ce_agent_up;
#   - the rollout controller's /metrics (`./ce rollout run`, 127.0.0.1:9465) when it runs;
# and evaluating monitoring/rules.yaml (so the rollout info alerts fire). Loopback only.
#   platform/telemetry.sh up|down|status
# Started by `platform/local.sh up` unless CE_TELEMETRY=0. Ports (override by env):
#   CE_PROMETHEUS_PORT=9090  CE_EXPORTER_PORT=15090  CE_ROLLOUT_METRICS_PORT=9465
# Fault injection for demos/tests: curl '127.0.0.1:15090/control?canary_error_rate=0.02'
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
# shellcheck source=toolchain/versions.env
. "$repo/toolchain/versions.env"
CE_HOME="${CE_HOME:-$HOME/.cache/ce}"
T="$CE_HOME/platform/telemetry"
# the platform's own kubectl (platform part `kubernetes`, the API server's version)
KUBECTL="${CE_TOOLS:-$CE_HOME/tools}/kubernetes-$K8S_VERSION/bin/kubectl"
PROM_PORT="${CE_PROMETHEUS_PORT:-9090}"
EXP_PORT="${CE_EXPORTER_PORT:-15090}"
CTRL_PORT="${CE_ROLLOUT_METRICS_PORT:-9465}"
# through the gateway, split by the applied VirtualService's weights (5 % of it at phase 1):
# enough for the local stack's gate (minRequests 100 per 15 s) and judge at every phase
EXP_RPS="${CE_EXPORTER_RPS:-400}"
# the local stack's scrape is faster than the SPEC's 15 s so shortened bakes see enough samples
SCRAPE="${CE_LOCAL_SCRAPE_INTERVAL:-5s}"
PY="${CE_PYTHON:-$CE_HOME/venv/bin/python}"
STACK="${CE_TELEMETRY_STACK:-local}"

log() { printf '[telemetry.sh] %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
pid_alive() { [ -s "$T/$1.pid" ] && kill -0 "$(cat "$T/$1.pid")" 2>/dev/null; }
h_prometheus() { curl -sf --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null; }
h_exporter() { curl -sf --max-time 2 "http://127.0.0.1:$EXP_PORT/healthz" >/dev/null; }

wait_ready() { # NAME SECONDS PROBE
  local end=$(( $(date +%s) + $2 ))
  until "$3"; do
    pid_alive "$1" || { tail -n 20 "$T/$1.log" >&2; die "$1 exited (log $T/$1.log)"; }
    [ "$(date +%s)" -lt "$end" ] || { tail -n 20 "$T/$1.log" >&2; die "$1 not ready after $2 s"; }
    sleep 0.3
  done
}

# close every descriptor beyond stdio before exec'ing a daemon: a caller's `flock` fd would
# otherwise be held for the daemon's whole life and block every other user of the lock
close_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
  return 0
}

start() { # NAME CMD...
  local name=$1; shift
  mkdir -p "$T"
  ( close_fds; exec setsid "$@" ) >>"$T/$name.log" 2>&1 </dev/null &
  echo $! >"$T/$name.pid"
}

stop() {
  local n pid
  for n in "$@"; do
    if pid_alive "$n"; then
      pid=$(cat "$T/$n.pid"); kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      log "stopped $n (pid $pid)"
    fi
    rm -f "$T/$n.pid"
  done
}

config() {
  cat <<YAML
global:
  scrape_interval: $SCRAPE
  evaluation_interval: $SCRAPE
rule_files:
  - $repo/monitoring/rules.yaml
scrape_configs:
  - job_name: istio-mesh            # synthetic Envoy/Istio telemetry (labels as exported)
    honor_labels: true
    static_configs: [{targets: ['127.0.0.1:$EXP_PORT']}]
  - job_name: ce-rollout            # ./ce rollout run
    static_configs: [{targets: ['127.0.0.1:$CTRL_PORT']}]
YAML
}

# the exporter's identity: its command line and code. A running exporter started from another
# checkout (it reads that checkout's stack file) or older code (its own, or the label builders
# and route reading it imports) is replaced, not trusted
exporter_cmd() {
  printf '%s\n' "$PY" "$repo/monitoring/exporter/exporter.py" "$EXP_PORT" --stack "$STACK" \
    --rps "$EXP_RPS" --kubeconfig "${KUBECONFIG:-$CE_HOME/platform/kubeconfig}" --kubectl "$KUBECTL"
}

cmd_up() {
  command -v prometheus >/dev/null || die "prometheus not found: it is the platform part 'telemetry' (platform/build.sh telemetry; ./ce bootstrap installs it)"
  [ -x "$KUBECTL" ] || die "$KUBECTL not found: the exporter follows the VirtualService with it (./ce bootstrap builds it)"
  mkdir -p "$T/data"
  local -a cmd; mapfile -t cmd < <(exporter_cmd)
  local id; id=$( { exporter_cmd; cat "$repo"/{monitoring/exporter,components,rollout,policies/lib}/*.py; } | sha256sum | cut -c1-16)
  if ! { pid_alive exporter && h_exporter && [ "$(cat "$T/exporter.id" 2>/dev/null)" = "$id" ]; }; then
    stop exporter
    start exporter "${cmd[@]}"
    echo "$id" >"$T/exporter.id"
    wait_ready exporter 60 h_exporter
    log "synthetic Istio exporter up (pid $(cat "$T/exporter.pid"), http://127.0.0.1:$EXP_PORT/metrics, stack $STACK)"
  fi
  config >"$T/prometheus.yml.new"
  if pid_alive prometheus && h_prometheus && cmp -s "$T/prometheus.yml.new" "$T/prometheus.yml"; then
    rm -f "$T/prometheus.yml.new"; return 0
  fi
  mv "$T/prometheus.yml.new" "$T/prometheus.yml"
  stop prometheus
  start prometheus prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.retention.time=6h --log.level=warn
  wait_ready prometheus 60 h_prometheus
  log "prometheus up (pid $(cat "$T/prometheus.pid"), http://127.0.0.1:$PROM_PORT, scrape $SCRAPE)"
}

cmd_status() {
  local rc=0
  if pid_alive exporter && h_exporter; then printf '%-24s up    pid=%-8s 127.0.0.1:%s\n' exporter "$(cat "$T/exporter.pid")" "$EXP_PORT"
  else printf '%-24s DOWN  127.0.0.1:%s\n' exporter "$EXP_PORT"; rc=1; fi
  if pid_alive prometheus && h_prometheus; then printf '%-24s up    pid=%-8s 127.0.0.1:%s\n' prometheus "$(cat "$T/prometheus.pid")" "$PROM_PORT"
  else printf '%-24s DOWN  127.0.0.1:%s\n' prometheus "$PROM_PORT"; rc=1; fi
  return "$rc"
}

case "${1:-}" in
  up) cmd_up ;;
  down) stop prometheus exporter ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
