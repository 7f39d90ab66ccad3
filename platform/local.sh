#!/usr/bin/env bash
# Local platform, loopback only (127.0.0.1), state under $CE_HOME/platform (default ~/.cache/ce/platform).
#   platform/local.sh up            start everything (idempotent; a quick no-op when already up)
#   platform/local.sh status        each component up/down with pid/port; exit 1 if any is down
#   platform/local.sh down [--purge] stop everything (keeps data; --purge wipes $CE_HOME/platform)
#   platform/local.sh check-loopback  fail if a platform process listens on a non-loopback address
# Components: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes/pods),
# CRDs (Istio, CloudNativePG, monitoring.coreos.com, redis-operator; from module zips, see
# platform/build.sh), Vault dev server, PostgreSQL private cluster.
# Files: kubeconfig (admin), vault-token (0600), postgres-vault-password (0600), logs/, run/ (pids).
# Binaries come from platform/build.sh (run automatically when one is missing).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
# shellcheck source=toolchain/versions.env
. "$repo/toolchain/versions.env"
CE_HOME="${CE_HOME:-$HOME/.cache/ce}"
CE_TOOLS="${CE_TOOLS:-$CE_HOME/tools}"
P="$CE_HOME/platform"
PKI="$P/pki" RUN="$P/run" LOGS="$P/logs"
KUBECONFIG_ADMIN="$P/kubeconfig"

ETCD_PORT=2379 ETCD_PEER_PORT=2380
APISERVER_PORT=6443 KCM_PORT=10257 SCHED_PORT=10259 KWOK_PORT=10247
VAULT_PORT=8200  # vault -dev also listens on 127.0.0.1:8201 (cluster)
PG_PORT="${PLATFORM_PG_PORT:-55432}"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR:-15}/bin"

K8S_BIN="$CE_TOOLS/kubernetes-$K8S_VERSION/bin"
ETCD_BIN="$CE_TOOLS/etcd-$ETCD_VERSION/bin"
KWOK_DIR="$CE_TOOLS/kwok-$KWOK_VERSION"
VAULT_BIN="$CE_TOOLS/vault-$VAULT_VERSION/bin"
CRD_DIR="$CE_TOOLS/platform-crds"
KUBECTL="$K8S_BIN/kubectl"

T0=$(date +%s%N)
log() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '[local.sh +%d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# ------------------------------------------------------------------ process helpers
# pid_of NAME: pid from run/NAME.pid, only if that process still runs the NAME binary (guards pid reuse)
pid_of() {
  local f="$RUN/$1.pid" pid exe
  [ -s "$f" ] || return 0
  pid=$(cat "$f"); exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
  exe=${exe% (deleted)}
  [ "$(basename "$exe")" = "$1" ] && echo "$pid"
  return 0
}
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
port_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# start_bg NAME CMD...: detached (own session), stdout/stderr to logs/NAME.log, pid to run/NAME.pid
start_bg() {
  local name=$1; shift
  mkdir -p "$RUN" "$LOGS"; chmod 700 "$LOGS"
  (umask 077; echo "---- $(date -u +%FT%TZ) start" >>"$LOGS/$name.log")
  if [ "$name" = vault ]; then
    # vault -dev prints the unseal key and root token: redact them before they reach the log
    setsid "$@" > >(sed -u -E 's/^(Root Token|Unseal Key): .*/\1: <redacted>/' >>"$LOGS/$name.log" 2>/dev/null) 2>&1 </dev/null &
  else
    setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  fi
  echo $! >"$RUN/$name.pid"
}

# wait_for NAME SECONDS CMD...: poll CMD until it succeeds; dies (with log tail) on timeout or exit
wait_for() {
  local name=$1 secs=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$RUN/$name.pid" ] && ! alive "$name"; then
      tail -n 30 "$LOGS/$name.log" >&2 || true
      die "$name exited during startup (log $LOGS/$name.log)"
    fi
    if [ "$(date +%s)" -ge "$end" ]; then
      tail -n 30 "$LOGS/$name.log" >&2 || true
      die "$name not ready after ${secs}s (log $LOGS/$name.log)"
    fi
    sleep 0.3
  done
}

stop_pid() { # NAME... : SIGTERM all, wait up to 10s, then SIGKILL stragglers
  local name pid left
  local -a pids=() names=()
  for name in "$@"; do
    pid=$(pid_of "$name")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$name")
    fi
    rm -f "$RUN/$name.pid"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for _ in $(seq 1 100); do
    left=0; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
    [ "$left" = 0 ] && break; sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
  log "stopped ${names[*]} (pids ${pids[*]})"
}

# ------------------------------------------------------------------ binaries
ensure_binaries() {
  local missing=0 f
  for f in "$K8S_BIN/kube-apiserver" "$K8S_BIN/kube-controller-manager" "$K8S_BIN/kube-scheduler" \
           "$KUBECTL" "$ETCD_BIN/etcd" "$KWOK_DIR/bin/kwok" "$KWOK_DIR/stages.yaml" "$VAULT_BIN/vault" \
           "$CRD_DIR/.stamp" "$PG_BIN/pg_ctl"; do
    [ -e "$f" ] || { log "missing $f"; missing=1; }
  done
  if [ "$missing" = 1 ]; then
    log "running platform/build.sh (builds are cached)"
    "$here/build.sh" all || die "platform/build.sh failed"
  fi
}

# ------------------------------------------------------------------ PKI + kubeconfigs
gen_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  [ -s "$PKI/ca.crt" ] && [ -s "$PKI/sa.pub" ] && [ -s "$PKI/admin.crt" ] && return 0
  local t; t=$(date +%s)
  (
    cd "$PKI"; umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=ce-local-ca" 2>/dev/null
    cat >apiserver.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >client.ext
    sign() { # NAME SUBJ EXTFILE
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$3" 2>/dev/null
      rm -f "$1.csr"
    }
    sign apiserver "/CN=kube-apiserver" apiserver.ext
    sign admin "/O=system:masters/CN=kubernetes-admin" client.ext
    sign kcm "/CN=system:kube-controller-manager" client.ext
    sign scheduler "/CN=system:kube-scheduler" client.ext
    sign kwok "/O=system:masters/CN=kwok-controller" client.ext
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  ) || die "openssl: generating certificates in $PKI failed"
  log "generated CA, apiserver/client certs, service-account keys in $PKI ($(( $(date +%s) - t ))s)"
}

gen_front_proxy_pki() { # aggregation-layer request-header CA (kubeadm's front-proxy); silences controllers
  [ -s "$PKI/front-proxy-client.crt" ] && return 0
  (
    cd "$PKI"; umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt -days 3650 -subj "/CN=ce-local-front-proxy-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout front-proxy-client.key -out front-proxy-client.csr -subj "/CN=front-proxy-client" 2>/dev/null
    openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial \
      -out front-proxy-client.crt -days 3650 -extfile client.ext 2>/dev/null
    rm -f front-proxy-client.csr
  ) || die "openssl: generating front-proxy certificates in $PKI failed"
}

write_kubeconfig() { # FILE CERTNAME USER
  local f=$1 c=$2 u=$3
  (umask 077; cat >"$f.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ce-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $u
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$c.crt")
    client-key-data: $(base64 -w0 "$PKI/$c.key")
contexts:
- name: ce-local
  context: {cluster: ce-local, user: $u}
current-context: ce-local
EOF
  ) && mv "$f.tmp" "$f"
}

gen_kubeconfigs() {
  [ -s "$KUBECONFIG_ADMIN" ] && [ -s "$P/kcm.kubeconfig" ] && [ "$KUBECONFIG_ADMIN" -nt "$PKI/ca.crt" ] && return 0
  write_kubeconfig "$KUBECONFIG_ADMIN" admin kubernetes-admin
  write_kubeconfig "$P/kcm.kubeconfig" kcm system:kube-controller-manager
  write_kubeconfig "$P/scheduler.kubeconfig" scheduler system:kube-scheduler
  write_kubeconfig "$P/kwok.kubeconfig" kwok kwok-controller
  log "wrote kubeconfigs ($KUBECONFIG_ADMIN)"
}

# ------------------------------------------------------------------ health probes
h_etcd() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
h_apiserver() {
  curl -sf --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" | grep -qx ok
}
h_kcm() { curl -skf --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz" | grep -qx ok; }
h_scheduler() { curl -skf --max-time 2 "https://127.0.0.1:$SCHED_PORT/healthz" | grep -qx ok; }
h_kwok() { curl -sf --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz" | grep -q ok; }
h_vault() { curl -s --max-time 2 "http://127.0.0.1:$VAULT_PORT/v1/sys/health" | grep -q '"sealed":false'; }
h_postgres() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

# ------------------------------------------------------------------ components
up_etcd() {
  alive etcd && h_etcd && return 0
  stop_pid etcd
  mkdir -p "$P/etcd"; chmod 700 "$P/etcd"
  start_bg etcd "$ETCD_BIN/etcd" --name ce-local --data-dir "$P/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "ce-local=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
  wait_for etcd 30 h_etcd
  log "etcd up (pid $(pid_of etcd), 127.0.0.1:$ETCD_PORT)"
}

up_apiserver() {
  alive kube-apiserver && h_apiserver && return 0
  stop_pid kube-apiserver
  mkdir -p "$P/apiserver-certs"
  start_bg kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --cert-dir "$P/apiserver-certs" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --authorization-mode RBAC --allow-privileged=true \
    --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --endpoint-reconciler-type none --profiling=false \
    --v=1
  wait_for kube-apiserver 90 h_apiserver
  log "kube-apiserver up (pid $(pid_of kube-apiserver), https://127.0.0.1:$APISERVER_PORT)"
}

up_kcm() {
  alive kube-controller-manager && h_kcm && return 0
  stop_pid kube-controller-manager
  mkdir -p "$P/kcm-certs"
  start_bg kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$P/kcm.kubeconfig" \
    --authentication-kubeconfig "$P/kcm.kubeconfig" --authorization-kubeconfig "$P/kcm.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$P/kcm-certs" \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=true --leader-elect=false --cluster-name ce-local \
    --profiling=false --v=1
  wait_for kube-controller-manager 60 h_kcm
  log "kube-controller-manager up (pid $(pid_of kube-controller-manager), 127.0.0.1:$KCM_PORT)"
}

up_scheduler() {
  alive kube-scheduler && h_scheduler && return 0
  stop_pid kube-scheduler
  mkdir -p "$P/scheduler-certs"
  start_bg kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$P/scheduler.kubeconfig" \
    --authentication-kubeconfig "$P/scheduler.kubeconfig" --authorization-kubeconfig "$P/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --cert-dir "$P/scheduler-certs" \
    --leader-elect=false --profiling=false --v=1
  wait_for kube-scheduler 60 h_scheduler
  log "kube-scheduler up (pid $(pid_of kube-scheduler), 127.0.0.1:$SCHED_PORT)"
}

up_kwok() {
  alive kwok && h_kwok && return 0
  stop_pid kwok
  # KwokConfiguration + kwok's own default stages (copied from the module by build.sh)
  { cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  manageAllNodes: false
  manageNodesWithAnnotationSelector: kwok.x-k8s.io/node=fake
  serverAddress: 127.0.0.1:$KWOK_PORT
  nodeLeaseDurationSeconds: 40
EOF
    cat "$KWOK_DIR/stages.yaml"; } >"$P/kwok.yaml"
  start_bg kwok "$KWOK_DIR/bin/kwok" --config "$P/kwok.yaml" --kubeconfig "$P/kwok.kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --server-address "127.0.0.1:$KWOK_PORT" --node-port 0
  wait_for kwok 60 h_kwok
  log "kwok up (pid $(pid_of kwok), 127.0.0.1:$KWOK_PORT; manages Nodes annotated kwok.x-k8s.io/node=fake)"
}

crds_applied() { [ "$(cat "$P/crds.applied" 2>/dev/null)" = "$(cat "$CRD_DIR/.stamp")" ]; }
up_crds() {
  crds_applied && return 0
  local d n
  for d in "$CRD_DIR"/*/; do
    kc apply --server-side --force-conflicts --field-manager ce-platform -f "$d" >>"$LOGS/crds.log" 2>&1 \
      || { tail -n 20 "$LOGS/crds.log" >&2; die "kubectl apply of CRDs in $d failed (log $LOGS/crds.log)"; }
  done
  n=$(cat "$CRD_DIR"/*/*.yaml | grep -c '^kind: CustomResourceDefinition')
  kc wait --for condition=Established --timeout 120s crd --all >>"$LOGS/crds.log" 2>&1 \
    || { tail -n 20 "$LOGS/crds.log" >&2; die "CRDs not Established (log $LOGS/crds.log)"; }
  cat "$CRD_DIR/.stamp" >"$P/crds.applied"
  log "CRDs applied and Established: $n ($(awk '{print $2}' "$CRD_DIR/SOURCES" | tr '\n' ' '))"
}

up_vault() {
  alive vault && h_vault && return 0
  stop_pid vault
  # (dev root token ids must not use Vault's own "hvs." prefix: "failed to create root token ... invalid request")
  if [ ! -s "$P/vault-token" ] || grep -q '^hvs\.' "$P/vault-token"; then
    (umask 077; echo "ce-local-root-$(openssl rand -hex 16)" >"$P/vault-token")
  fi
  chmod 600 "$P/vault-token"
  # token passed through the environment (never on the command line or in logs)
  VAULT_DEV_ROOT_TOKEN_ID="$(cat "$P/vault-token")" \
    start_bg vault "$VAULT_BIN/vault" server -dev -dev-no-store-token \
      -dev-listen-address "127.0.0.1:$VAULT_PORT" -log-level warn
  wait_for vault 60 h_vault
  log "vault dev server up (pid $(pid_of vault), http://127.0.0.1:$VAULT_PORT; in-memory: state resets on restart; token in $P/vault-token)"
}

pg_run() { runuser -u postgres -- "$@"; }
ensure_postgres_access() {
  # postgres must be able to traverse (x, not list) every parent of $P/postgres (e.g. /root is 0700)
  local d="" part
  IFS=/ read -ra parts <<<"${P#/}"
  for part in "${parts[@]}"; do
    d="$d/$part"
    if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
      chmod o+x "$d"
      log "granted traverse (o+x) on $d for the postgres user"
    fi
  done
}

up_postgres() {
  h_postgres && [ -s "$P/postgres/data/postmaster.pid" ] && return 0
  [ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL $PG_MAJOR server missing ($PG_BIN); run platform/build.sh postgres"
  mkdir -p "$P/postgres"
  chown postgres:postgres "$P/postgres"; chmod 700 "$P/postgres"
  ensure_postgres_access
  local data="$P/postgres/data" sock="$P/postgres/run"
  pg_run mkdir -p "$sock"
  if [ ! -s "$data/PG_VERSION" ]; then
    local t; t=$(date +%s)
    pg_run "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=scram-sha-256 -E UTF8 \
      >"$LOGS/postgres-initdb.log" 2>&1 || { tail "$LOGS/postgres-initdb.log" >&2; die "initdb failed"; }
    pg_run tee -a "$data/postgresql.conf" >/dev/null <<EOF
# --- ce local platform ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock'
EOF
    log "initdb done ($data, $(( $(date +%s) - t ))s)"
  fi
  # (the server log lives next to the data: the postgres user cannot write into logs/)
  pg_run "$PG_BIN/pg_ctl" -D "$data" -l "$P/postgres/postgres.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$P/postgres/postgres.log" >&2; die "pg_ctl start failed (log $P/postgres/postgres.log)"; }
  head -n1 "$data/postmaster.pid" >"$RUN/postgres.pid"
  # role for Vault's database secrets engine
  if [ ! -s "$P/postgres-vault-password" ]; then
    (umask 077; openssl rand -hex 24 >"$P/postgres-vault-password")
  fi
  chmod 600 "$P/postgres-vault-password"
  local pw; pw=$(cat "$P/postgres-vault-password")
  if ! pg_run "$PG_BIN/psql" -q -h "$sock" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vault') THEN
    CREATE ROLE vault WITH LOGIN SUPERUSER CREATEROLE;
  END IF;
END \$\$;
ALTER ROLE vault WITH PASSWORD '$pw';
EOF
  then die "creating the vault role in PostgreSQL failed"; fi
  log "postgres up (pid $(pid_of postgres), 127.0.0.1:$PG_PORT; role vault, password in $P/postgres-vault-password)"
}
down_postgres() {
  local data="$P/postgres/data"
  if [ -s "$data/postmaster.pid" ]; then
    pg_run "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    log "stopped postgres"
  fi
  rm -f "$RUN/postgres.pid"
}

# ------------------------------------------------------------------ loopback check
# Every TCP/UDP listener owned by a platform process must be on 127.0.0.0/8 or ::1.
check_loopback() {
  local lpids="" n bad=0 line
  for n in etcd kube-apiserver kube-controller-manager kube-scheduler kwok vault postgres; do
    alive "$n" && lpids="$lpids $(pid_of "$n")"
  done
  while read -r line; do
    local addr pid
    addr=$(awk '{print $5}' <<<"$line")   # Netid State Recv-Q Send-Q Local:Port ...
    for pid in $lpids; do
      if grep -q "pid=$pid," <<<"$line"; then
        case "$addr" in
          127.*|\[::1\]:*|::1:*|\[::ffff:127.*) ;;
          *) echo "NON-LOOPBACK LISTENER: $line" >&2; bad=1 ;;
        esac
      fi
    done
  done < <(ss -Hltunp)
  [ "$bad" = 0 ] || return 1
  return 0
}

# ------------------------------------------------------------------ commands
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok vault postgres)
declare -A PORT=([etcd]=$ETCD_PORT [kube-apiserver]=$APISERVER_PORT [kube-controller-manager]=$KCM_PORT
  [kube-scheduler]=$SCHED_PORT [kwok]=$KWOK_PORT [vault]=$VAULT_PORT [postgres]=$PG_PORT)
declare -A PROBE=([etcd]=h_etcd [kube-apiserver]=h_apiserver [kube-controller-manager]=h_kcm
  [kube-scheduler]=h_scheduler [kwok]=h_kwok [vault]=h_vault [postgres]=h_postgres)

all_up() {
  local c
  for c in "${COMPONENTS[@]}"; do
    if [ "$c" = postgres ]; then h_postgres || return 1; else alive "$c" && "${PROBE[$c]}" || return 1; fi
  done
  crds_applied
}

cmd_status() {
  local c rc=0 pid
  for c in "${COMPONENTS[@]}"; do
    pid=$(pid_of "$c")
    if [ "$c" = postgres ] && [ -s "$P/postgres/data/postmaster.pid" ]; then pid=$(head -n1 "$P/postgres/data/postmaster.pid"); fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && "${PROBE[$c]}"; then
      printf '%-24s up    pid=%-8s 127.0.0.1:%s\n' "$c" "$pid" "${PORT[$c]}"
    else
      printf '%-24s DOWN  pid=%-8s 127.0.0.1:%s\n' "$c" "${pid:--}" "${PORT[$c]}"; rc=1
    fi
  done
  local ncrd
  if crds_applied && h_apiserver && ncrd=$(kc get crd -o name 2>/dev/null | wc -l) && [ "$ncrd" -gt 0 ]; then
    printf '%-24s up    %s CRDs established (%s)\n' crds "$ncrd" "$(awk '{printf "%s ", $2}' "$CRD_DIR/SOURCES")"
  else
    printf '%-24s DOWN\n' crds; rc=1
  fi
  if check_loopback; then printf '%-24s ok    (all platform listeners on loopback)\n' loopback
  else printf '%-24s FAIL\n' loopback; rc=1; fi
  return "$rc"
}

cmd_up() {
  command -v ss >/dev/null || die "ss (iproute2) is required"
  if all_up; then log "already up (no-op)"; return 0; fi
  mkdir -p "$P" "$RUN" "$LOGS"; chmod 711 "$P"  # traverse-only for others (postgres); secrets are 0600
  ensure_binaries
  gen_pki
  gen_front_proxy_pki
  gen_kubeconfigs
  up_postgres
  up_vault
  up_etcd
  up_apiserver
  up_kcm
  up_scheduler
  up_kwok
  up_crds
  check_loopback || die "a platform process listens on a non-loopback address (see above)"
  log "platform up: KUBECONFIG=$KUBECONFIG_ADMIN VAULT_ADDR=http://127.0.0.1:$VAULT_PORT"
}

cmd_down() {
  local purge=0
  [ "${1:-}" = --purge ] && purge=1
  local c
  stop_pid kwok kube-scheduler kube-controller-manager vault
  stop_pid kube-apiserver
  stop_pid etcd
  down_postgres
  if [ "$purge" = 1 ]; then
    rm -rf "$P"
    log "purged $P"
  fi
  log "platform down"
}

# rollout telemetry (Prometheus + synthetic Istio exporter): platform/telemetry.sh, on unless CE_TELEMETRY=0
telemetry() { [ "${CE_TELEMETRY:-1}" = 0 ] || bash "$here/telemetry.sh" "$@"; }
case "${1:-}" in
  up) cmd_up; telemetry up ;;
  down) shift; telemetry down; cmd_down "$@" ;;
  status) rc=0; cmd_status || rc=1; telemetry status || rc=1; exit "$rc" ;;
  _up) # debugging: start one component (postgres|vault|etcd|apiserver|kcm|scheduler|kwok|crds)
    mkdir -p "$P" "$RUN" "$LOGS"; chmod 711 "$P"; gen_pki; gen_front_proxy_pki; gen_kubeconfigs; "up_$2" ;;
  check-loopback) check_loopback && echo "ok: all platform listeners are on loopback" ;;
  *) echo "usage: $0 up|down [--purge]|status|check-loopback" >&2; exit 2 ;;
esac
