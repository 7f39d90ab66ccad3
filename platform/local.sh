#!/usr/bin/env bash
# Local platform, loopback only (127.0.0.1), state under $CE_HOME/platform (default ~/.cache/ce/platform).
#   platform/local.sh up            start everything (idempotent; a quick no-op when already up)
#   platform/local.sh status        each component up/down with pid/port; exit 1 if any is down
#   platform/local.sh down [--purge] stop everything (keeps data; --purge wipes $CE_HOME/platform)
#   platform/local.sh check-loopback  fail if a platform process listens on a non-loopback address
# Components: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes/pods),
# CRDs (Istio, CloudNativePG, monitoring.coreos.com, redis-operator; from module zips, see
# platform/build.sh), Vault dev server, PostgreSQL private cluster, a Redis Cluster of 3 + 3 nodes
# (with Vault: the rotator, ./ce redis-rotate, rotates its ACL user ce_app on every node), and the
# controllers the stack needs
# (components/needs.py): the CloudNativePG operator (in its own network namespace, see
# platform/netns-run.py), the OT redis-operator and prometheus-operator, with static
# PersistentVolumes for their claims (kwok has no storage), and istiod as the sidecar injector
# (a URL webhook on localhost; mesh.dataplane: cni).
# Files: kubeconfig (admin), vault-token (0600), postgres-vault-password (0600),
# redis-admin-password (0600), redis/users.acl (hashes only), logs/, run/ (pids).
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
REDIS_PORT="${PLATFORM_REDIS_PORT:-56379}"  # the first of REDIS_NODES nodes, on consecutive ports
REDIS_NODES=6 REDIS_BUS_PORT=27379  # cluster bus of node i: REDIS_BUS_PORT + i - 1
REDIS_BIN=/usr/bin
PG_BIN="/usr/lib/postgresql/${PG_MAJOR:-15}/bin"

K8S_BIN="$CE_TOOLS/kubernetes-$K8S_VERSION/bin"
ETCD_BIN="$CE_TOOLS/etcd-$ETCD_VERSION/bin"
KWOK_DIR="$CE_TOOLS/kwok-$KWOK_VERSION"
VAULT_BIN="$CE_TOOLS/vault-$VAULT_VERSION/bin"
CRD_DIR="$CE_TOOLS/platform-crds"
KUBECTL="$K8S_BIN/kubectl"
CNPG_BIN="$CE_TOOLS/cnpg-${CNPG_VERSION:-}/bin"
CNPG_NS=cnpg-system CNPG_SA=cnpg-manager
# kwok's pod IP pool (its default, named here): the CNPG operator's namespace delivers it locally
KWOK_POD_CIDR=10.0.0.1/24 KWOK_POD_NET=10.0.0.0/24 CNPG_STATUS_PORT=18000
REDISOP_BIN="$CE_TOOLS/redisop-${REDISOP_VERSION:-}/bin"
REDISOP_NS=redis-operator-system REDISOP_SA=redis-operator
REDISOP_METRICS_PORT=18080 REDISOP_PROBE_PORT=18081
PROMOP_BIN="$CE_TOOLS/promop-${PROMOP_VERSION:-}/bin"
PROMOP_PORT=18090
# istiod as the sidecar injector only: the apiserver calls it by URL (build.sh renders the URL)
ISTIOD_DIR="$CE_TOOLS/istiod-${ISTIOCTL_VERSION:-}"
ISTIOD_HTTP_PORT=15014 ISTIOD_WEBHOOK_PORT=15017 ISTIOD_CTRLZ_PORT=9876

T0=$(date +%s%N)
log() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '[local.sh +%d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# ------------------------------------------------------------------ process helpers
# pid_of NAME: pid from run/NAME.pid, only if that process still runs the NAME binary (guards pid reuse)
pid_of() {
  if [ "$1" = redis-cluster ]; then  # every node alive: the first node's pid
    local i; for i in $(seq 2 "$REDIS_NODES"); do [ -n "$(pid_of "redis-$i")" ] || return 0; done
    pid_of redis-1; return 0
  fi
  local f="$RUN/$1.pid" pid exe
  [ -s "$f" ] || return 0
  pid=$(cat "$f"); exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
  exe=${exe% (deleted)}
  local want=$1
  # Debian's redis-server links to that binary
  [[ "$want" == redis-server || "$want" =~ ^redis-[0-9]+$ ]] && want=redis-check-rdb
  if [ "$want" = cnpg-status ]; then  # a python3 script: check its command line too
    [[ "$(basename "$exe")" == python3* ]] && grep -qa "cnpg-status.py" "/proc/$pid/cmdline" && echo "$pid"
    return 0
  fi
  [ "$(basename "$exe")" = "$want" ] && echo "$pid"
  return 0
}
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
redis_names() { local i; for i in $(seq 1 "$REDIS_NODES"); do echo "redis-$i"; done; }
port_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# close_fds: in a subshell about to exec a daemon, close every descriptor beyond stdio. A caller's
# `flock` lock fd would otherwise be held for the daemon's whole life and block every other user.
close_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
  return 0
}

# start_bg NAME CMD...: detached (own session), stdout/stderr to logs/NAME.log, pid to run/NAME.pid
start_bg() {
  local name=$1; shift
  mkdir -p "$RUN" "$LOGS"; chmod 700 "$LOGS"
  (umask 077; echo "---- $(date -u +%FT%TZ) start" >>"$LOGS/$name.log")
  if [ "$name" = vault ]; then
    # vault -dev prints the unseal key and root token: redact them before they reach the log
    # (the redacting sed is started inside the subshell too, so it does not inherit them either)
    ( close_fds; exec setsid "$@" > >(sed -u -E 's/^(Root Token|Unseal Key): .*/\1: <redacted>/' >>"$LOGS/$name.log" 2>/dev/null) 2>&1 </dev/null ) &
  else
    ( close_fds; exec setsid "$@" ) >>"$LOGS/$name.log" 2>&1 </dev/null &
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
# The parts the selected stack needs (CE_STACK, default local): the Vault server only when the
# stack enables Vault. Without the venv yet, everything.
PARTS=(postgres crds kubernetes etcd kwok telemetry vault redis)
if [ -x "${CE_PYTHON:-$CE_HOME/venv/bin/python}" ]; then
  mapfile -t PARTS < <(cd "$repo" && "${CE_PYTHON:-$CE_HOME/venv/bin/python}" -m components.needs --stack "${CE_STACK:-local}")
  [[ "${PARTS[0]:-ERROR}" != ERROR* ]] || die "stack ${CE_STACK:-local}: ${PARTS[*]}"
fi
needs() { local p; for p in "${PARTS[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

ensure_binaries() {
  local missing=0 f
  # the executables each part installs (build.sh --provides, one home for that list), plus the
  # data files the platform reads from its parts
  local -a files
  mapfile -t files < <("$here/build.sh" --provides "${PARTS[@]}")
  files+=("$KWOK_DIR/stages.yaml" "$CRD_DIR/.stamp")
  needs istiod && files+=("$ISTIOD_DIR/render/mutatingwebhook.json")
  for f in "${files[@]}"; do
    [ -e "$f" ] || { log "missing $f"; missing=1; }
  done
  if [ "$missing" = 1 ]; then
    log "running platform/build.sh ${PARTS[*]} (fetch, then build; builds are cached)"
    CE_PHASE=fetch "$here/build.sh" "${PARTS[@]}" || die "platform fetch failed"
    CE_PHASE=build "$here/build.sh" "${PARTS[@]}" || die "platform/build.sh failed"
  fi
}

# ------------------------------------------------------------------ PKI + kubeconfigs
# sign NAME SUBJ EXTFILE: NAME.key + NAME.crt signed by the platform CA (run inside $PKI)
sign() {
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$3" 2>/dev/null
  rm -f "$1.csr"
}

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

# istiod's webhook serving certificate: the apiserver checks it against the URL's host (localhost)
gen_istiod_pki() {
  [ -s "$PKI/istiod.crt" ] && [ "$PKI/istiod.crt" -nt "$PKI/ca.crt" ] && return 0
  (
    cd "$PKI"; umask 077
    printf '%s\n' basicConstraints=CA:FALSE keyUsage=digitalSignature,keyEncipherment extendedKeyUsage=serverAuth \
      subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:istiod.istio-system.svc >istiod.ext
    sign istiod "/CN=istiod.istio-system.svc" istiod.ext
    sign istiod-client "/O=system:masters/CN=istiod" client.ext
  ) || die "openssl: generating istiod's certificates in $PKI failed"
  write_kubeconfig "$P/istiod.kubeconfig" istiod-client istiod
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
h_istiod() { curl -sf --max-time 2 --cacert "$PKI/ca.crt" "https://localhost:$ISTIOD_WEBHOOK_PORT/ready" >/dev/null; }
# serving, and registered with the apiserver (a deleted webhook configuration injects nothing)
h_injector() { h_istiod && kc get mutatingwebhookconfiguration istio-sidecar-injector -o name >/dev/null 2>&1; }
redis_cli() { REDISCLI_AUTH="$(cat "$P/redis-admin-password" 2>/dev/null)" "$REDIS_BIN/redis-cli" "$@"; }
h_redis() { redis_cli -h 127.0.0.1 -p "$REDIS_PORT" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

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

# The API server's audit log (SOC2's trail of who did what): approvals (RolloutApprovals, the
# refused ones too, with the requester) and changes to the traffic objects and Deployments (every
# step and rollback; the controller-manager's own writes left out). Nothing else: it stays small.
AUDIT_POLICY="$P/audit-policy.yaml" AUDIT_LOG="$LOGS/audit.log"
write_audit_policy() {
  (umask 077; cat >"$AUDIT_POLICY.tmp" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: RequestResponse
  resources: [{group: rollout.claude-enhancer.io, resources: [rolloutapprovals]}]
  verbs: [create, update, patch, delete, deletecollection]
- level: RequestResponse
  resources: [{group: networking.istio.io, resources: [virtualservices, destinationrules]}]
  verbs: [create, update, patch, delete, deletecollection]
- level: None
  users: [system:kube-controller-manager]
- level: Metadata
  resources: [{group: apps, resources: [deployments, deployments/scale]}]
  verbs: [create, update, patch, delete]
- level: None
POLICY
  ) && mv "$AUDIT_POLICY.tmp" "$AUDIT_POLICY"
}
# an API server started before the audit flags existed is restarted once to get them
apiserver_current() { tr '\0' ' ' <"/proc/$(pid_of kube-apiserver)/cmdline" 2>/dev/null | grep -q -- --audit-policy-file; }

up_apiserver() {
  write_audit_policy
  alive kube-apiserver && h_apiserver && apiserver_current && return 0
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
    --audit-policy-file "$AUDIT_POLICY" --audit-log-path "$AUDIT_LOG" \
    --audit-log-maxsize 100 --audit-log-maxbackup 3 \
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
  cidr: $KWOK_POD_CIDR
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
  # close_fds: the server outlives this script, and a caller's `flock` descriptor would keep the
  # caller's lock held for its whole life (found when `flock LOCK ./ce up` left it held)
  ( close_fds; pg_run "$PG_BIN/pg_ctl" -D "$data" -l "$P/postgres/postgres.log" -w -t 60 start >/dev/null ) \
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
# The application database and its owner (what CloudNativePG's initdb creates in a real cluster);
# Vault's static role rotates ce_app's password. Idempotent; also runs on an already-up server.
up_pg_app_db() {
  pg_run "$PG_BIN/psql" -q -h "$P/postgres/run" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF \
    || die "creating the ce_app role / claude_enhancer database in PostgreSQL failed"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ce_app') THEN
    CREATE ROLE ce_app WITH LOGIN;
  END IF;
END \$\$;
SELECT 'CREATE DATABASE claude_enhancer OWNER ce_app'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'claude_enhancer')\\gexec
EOF
}

# A Redis Cluster of 3 masters + 3 replicas, as the program's RedisCluster is: the Redis
# rotator (./ce redis-rotate, rotator/) rotates the app user's ACL password on every node. The
# default user is the admin (the operator's REDIS_PASSWORD); every node loads one aclfile, the
# local stand-in for the operator's spec.acl Secret, which the rotator keeps current.
up_redis() {
  alive redis-cluster && h_redis && return 0
  stop_pid redis-server  # the single Redis of earlier platforms
  mkdir -p "$P/redis"; chmod 700 "$P/redis"
  if [ ! -s "$P/redis-admin-password" ]; then
    (umask 077; openssl rand -hex 24 >"$P/redis-admin-password")
  fi
  chmod 600 "$P/redis-admin-password"
  local pw i port d
  pw=$(cat "$P/redis-admin-password")
  # first run (or a single-node platform's file): the default user protected, the app user off
  if [ ! -s "$P/redis/users.acl" ] || grep -q '^user vault ' "$P/redis/users.acl"; then
    printf '%s' "$pw" | (cd "$repo" && umask 077 && "${CE_PYTHON:-$CE_HOME/venv/bin/python}" -c \
      'import sys; from rotator.redis_acl import initial_acl_text, sha; sys.stdout.write(initial_acl_text(sha(sys.stdin.read()), "ce_app"))' \
      >"$P/redis/users.acl.new") && mv "$P/redis/users.acl.new" "$P/redis/users.acl" \
      || die "writing the Redis ACL file failed"
  fi
  for i in $(seq 1 "$REDIS_NODES"); do
    port=$((REDIS_PORT + i - 1)) d="$P/redis/n$i"
    mkdir -p "$d"
    (umask 077; cat >"$d/redis.conf" <<EOF
bind 127.0.0.1
port $port
protected-mode yes
cluster-enabled yes
cluster-config-file $d/nodes.conf
cluster-port $((REDIS_BUS_PORT + i - 1))
cluster-node-timeout 5000
dir $d
aclfile $P/redis/users.acl
masterauth $pw
save ""
appendonly no
EOF
    )
    alive "redis-$i" || start_bg "redis-$i" "$REDIS_BIN/redis-server" "$d/redis.conf"
  done
  for i in $(seq 1 "$REDIS_NODES"); do
    wait_for "redis-$i" 30 redis_cli -h 127.0.0.1 -p $((REDIS_PORT + i - 1)) ping
  done
  # a new cluster (its nodes.conf files remember it across restarts)
  if redis_cli -h 127.0.0.1 -p "$REDIS_PORT" cluster info | grep -q '^cluster_known_nodes:1\b'; then
    local -a addrs=()
    for i in $(seq 1 "$REDIS_NODES"); do addrs+=("127.0.0.1:$((REDIS_PORT + i - 1))"); done
    redis_cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >>"$LOGS/redis-cluster.log" 2>&1 \
      || { tail -n 20 "$LOGS/redis-cluster.log" >&2; die "redis-cli --cluster create failed"; }
  fi
  wait_for redis-1 60 h_redis
  log "redis cluster up (3 masters + 3 replicas, 127.0.0.1:$REDIS_PORT-$((REDIS_PORT + REDIS_NODES - 1)); admin password in $P/redis-admin-password)"
}

down_postgres() {
  local data="$P/postgres/data"
  if [ -s "$data/postmaster.pid" ]; then
    pg_run "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    log "stopped postgres"
  fi
  rm -f "$RUN/postgres.pid"
}

# ------------------------------------------------------------------ operators
# Static PersistentVolumes: kwok runs no storage provisioner, and the operators' pods wait for
# their claims to bind. No storageClassName, so they bind class-less claims (the program sets
# none); hostPath is never mounted (kwok starts no containers). Released ones are recycled.
PV_COUNT=24
up_storage() {
  local i name have
  have=$(kc get pv -l ce-platform/storage=static -o name 2>/dev/null | wc -l)
  if [ "$have" -lt "$PV_COUNT" ]; then
    for i in $(seq -w 1 "$PV_COUNT"); do
      name="ce-static-pv-$i"
      printf -- '---\napiVersion: v1\nkind: PersistentVolume\nmetadata: {name: %s, labels: {ce-platform/storage: static}}\n' "$name"
      printf 'spec: {capacity: {storage: 500Gi}, accessModes: [ReadWriteOnce], persistentVolumeReclaimPolicy: Retain, hostPath: {path: /var/lib/ce-kwok-pv/%s}}\n' "$name"
    done | kc apply -f - >>"$LOGS/storage.log" 2>&1 || die "creating static PVs failed (log $LOGS/storage.log)"
  fi
  for name in $(kc get pv -l ce-platform/storage=static -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{" "}{end}'); do
    kc patch pv "$name" --type json -p '[{"op":"remove","path":"/spec/claimRef"}]' >>"$LOGS/storage.log" 2>&1 || true
  done
}

h_cnpg_status() { port_listening "$CNPG_STATUS_PORT"; }
up_cnpg_status() {
  alive cnpg-status && h_cnpg_status && return 0
  stop_pid cnpg-status
  # answers the operator's /pg/status for kwok's instance pods, as their instance manager would
  start_bg cnpg-status python3 "$here/cnpg-status.py" --listen "127.0.0.1:$CNPG_STATUS_PORT" \
    --apiserver "https://127.0.0.1:$APISERVER_PORT" --pki "$PKI" --certs "$P/cnpg-status"
  wait_for cnpg-status 30 h_cnpg_status
  log "cnpg instance status (pid $(pid_of cnpg-status), 127.0.0.1:$CNPG_STATUS_PORT)"
}

h_cnpg() { grep -q '"Starting workers".*"controller":"cluster"' "$LOGS/cnpg-manager.log" 2>/dev/null; }
up_cnpg() {
  alive cnpg-manager && h_cnpg && return 0
  stop_pid cnpg-manager
  # the identity the program's AuthorizationPolicies admit (claude-enhancer:data.clients.cnpgOperator)
  kc create namespace "$CNPG_NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc -n "$CNPG_NS" create serviceaccount "$CNPG_SA" --dry-run=client -o yaml | kc apply -f - >/dev/null
  # the operator's working dir mirrors its image (operator/manager_<arch>: the instance binaries)
  local wd="$P/cnpg"
  mkdir -p "$wd/operator" "$RUN" "$LOGS"
  ln -sf "$CNPG_BIN/cnpg-manager" "$wd/operator/manager_amd64"
  : >"$LOGS/cnpg-manager.log"
  # The webhook server binds every interface (":9443", not configurable): the operator runs in its
  # own network namespace, where only the kube-apiserver port is forwarded in. No webhook
  # configuration is registered, so the apiserver never calls it. WEBHOOK_CERT_DIR skips the
  # operator's self-managed PKI (which patches webhook configurations that do not exist here).
  # (exec: no shell stays behind holding the caller's stdout, e.g. a pipe someone reads to EOF)
  (cd "$wd" && OPERATOR_NAMESPACE="$CNPG_NS" WEBHOOK_CERT_DIR="$PKI" KUBECONFIG="$KUBECONFIG_ADMIN" \
    exec setsid python3 "$here/netns-run.py" --pidfile "$RUN/cnpg-manager.pid" --forward "$APISERVER_PORT" \
      --local-cidr "$KWOK_POD_NET" --expose "8000:$CNPG_STATUS_PORT" -- \
      "$CNPG_BIN/cnpg-manager" controller --leader-elect=false --metrics-bind-address 127.0.0.1:8080 \
      >>"$LOGS/cnpg-manager.log" 2>&1 </dev/null) &
  wait_for cnpg-manager 90 h_cnpg
  log "cloudnative-pg operator $CNPG_VERSION up (pid $(pid_of cnpg-manager), own network namespace, as $CNPG_NS/$CNPG_SA)"
}

h_redisop() { curl -sf --max-time 2 "http://127.0.0.1:$REDISOP_PROBE_PORT/healthz" | grep -q ok; }
up_redisop() {
  alive redis-operator && h_redisop && return 0
  stop_pid redis-operator
  # the identity the program's AuthorizationPolicies admit (claude-enhancer:data.clients.redisOperator)
  kc create namespace "$REDISOP_NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc -n "$REDISOP_NS" create serviceaccount "$REDISOP_SA" --dry-run=client -o yaml | kc apply -f - >/dev/null
  # webhooks off (none registered); metrics and probes on loopback
  ENABLE_WEBHOOKS=false KUBECONFIG="$KUBECONFIG_ADMIN" start_bg redis-operator "$REDISOP_BIN/redis-operator" \
    --leader-elect=false --metrics-bind-address "127.0.0.1:$REDISOP_METRICS_PORT" \
    --health-probe-bind-address "127.0.0.1:$REDISOP_PROBE_PORT"
  wait_for redis-operator 60 h_redisop
  log "redis-operator $REDISOP_VERSION up (pid $(pid_of redis-operator), 127.0.0.1:$REDISOP_PROBE_PORT, as $REDISOP_NS/$REDISOP_SA)"
}

h_promop() { curl -sf --max-time 2 "http://127.0.0.1:$PROMOP_PORT/healthz" >/dev/null; }
up_promop() {
  alive prometheus-operator && h_promop && return 0
  stop_pid prometheus-operator
  # no kubeconfig flag: the API server and the admin client certificate are named directly;
  # web (metrics, /healthz) on loopback; its admission webhook is a separate binary, not run
  start_bg prometheus-operator "$PROMOP_BIN/prometheus-operator" \
    --apiserver "https://127.0.0.1:$APISERVER_PORT" --ca-file "$PKI/ca.crt" \
    --cert-file "$PKI/admin.crt" --key-file "$PKI/admin.key" \
    --web.listen-address "127.0.0.1:$PROMOP_PORT" --log-format json
  wait_for prometheus-operator 60 h_promop
  log "prometheus-operator $PROMOP_VERSION up (pid $(pid_of prometheus-operator), 127.0.0.1:$PROMOP_PORT)"
}

# istiod (pilot-discovery) serving only the sidecar-injection webhook, the way an Istio install
# with the CNI plugin injects: its own templates and values (rendered by build.sh), no CA, no
# xDS clients, no status writes. Pods created in istio-injection=enabled namespaces then reach
# Pod Security admission as injected pods, as on a real cluster. Every listener is pinned to
# loopback (its defaults bind every interface).
up_istiod() {
  alive pilot-discovery && h_istiod || start_istiod
  # the webhook configuration an Istio install registers, trusting the platform CA
  local r="$ISTIOD_DIR/render"
  sed -E "s|\"caBundle\": \"[^\"]*\"|\"caBundle\": \"$(base64 -w0 "$PKI/ca.crt")\"|" "$r/mutatingwebhook.json" \
    | kc apply --server-side --force-conflicts --field-manager ce-platform -f - >>"$LOGS/istiod.log" 2>&1 \
    || die "registering istiod's MutatingWebhookConfiguration failed (log $LOGS/istiod.log)"
  log "istiod $ISTIOCTL_VERSION up as the sidecar injector (pid $(pid_of pilot-discovery), https://localhost:$ISTIOD_WEBHOOK_PORT/inject)"
  recreate_uninjected
}
start_istiod() {
  stop_pid pilot-discovery
  gen_istiod_pki
  # istiod reads the injector config from ./var/lib/istio/inject (fixed, relative to its cwd)
  local wd="$P/istiod" r="$ISTIOD_DIR/render"
  rm -rf "$wd"; mkdir -p "$wd/var/lib/istio/inject" "$wd/etc/istio/config"
  cp "$r/inject/config" "$r/inject/values" "$wd/var/lib/istio/inject/"
  cp "$r/mesh" "$r/meshNetworks" "$wd/etc/istio/config/"
  # (empty values turn features off: istiod reads them with LookupEnv)
  (cd "$wd" && REVISION=default POD_NAMESPACE=istio-system POD_NAME=istiod-local ENABLE_CA_SERVER=false \
    INJECTION_WEBHOOK_CONFIG_NAME="" VALIDATION_WEBHOOK_CONFIG_NAME="" PILOT_ENABLE_IP_AUTOALLOCATE=false \
    AMBIENT_ENABLE_STATUS=false ENABLE_NATIVE_SIDECARS=true \
    start_bg pilot-discovery "$ISTIOD_DIR/bin/pilot-discovery" discovery \
      --kubeconfig "$P/istiod.kubeconfig" --meshConfig etc/istio/config/mesh \
      --networksConfig etc/istio/config/meshNetworks \
      --httpAddr "127.0.0.1:$ISTIOD_HTTP_PORT" --monitoringAddr= --grpcAddr= --secureGRPCAddr= \
      --httpsAddr "127.0.0.1:$ISTIOD_WEBHOOK_PORT" \
      --tlsCertFile "$PKI/istiod.crt" --tlsKeyFile "$PKI/istiod.key" --caCertFile "$PKI/ca.crt" \
      --ctrlz_address 127.0.0.1 --ctrlz_port "$ISTIOD_CTRLZ_PORT" --domain cluster.local)
  wait_for pilot-discovery 120 h_istiod
}

# Pods created before the injector existed (a platform from before it, or one whose istiod was
# down) run without a sidecar: delete them so their controllers recreate them through the
# webhook, as one restarts workloads after installing Istio. Finished pods and pods that opt out
# are left alone.
recreate_uninjected() {
  local ns n=0
  for ns in $(kc get ns -l istio-injection=enabled -o jsonpath='{.items[*].metadata.name}'); do
    while IFS='|' read -r name status phase owner; do
      [ -z "$status" ] && [ -n "$owner" ] && [ "$phase" != Succeeded ] && [ "$phase" != Failed ] || continue
      kc -n "$ns" delete pod "$name" --wait=false >>"$LOGS/istiod.log" 2>&1 && n=$((n + 1))
    done < <(kc -n "$ns" get pods -l 'sidecar.istio.io/inject!=false' -o jsonpath='{range .items[*]}{.metadata.name}{"|"}{.metadata.annotations.sidecar\.istio\.io/status}{"|"}{.status.phase}{"|"}{.metadata.ownerReferences[0].kind}{"\n"}{end}')
  done
  [ "$n" = 0 ] || log "istiod: deleted $n pods created before the injector (their controllers recreate them injected)"
}

# ------------------------------------------------------------------ loopback check
# Every TCP/UDP listener owned by a platform process must be on 127.0.0.0/8 or ::1.
check_loopback() {
  local lpids="" n bad=0 line
  for n in etcd kube-apiserver kube-controller-manager kube-scheduler kwok vault postgres redis-operator prometheus-operator cnpg-status pilot-discovery $(redis_names); do
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
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok postgres)
needs vault && COMPONENTS+=(vault)
needs redis && COMPONENTS+=(redis-cluster)
needs cnpg && COMPONENTS+=(cnpg-status cnpg-manager)
needs redisop && COMPONENTS+=(redis-operator)
needs promop && COMPONENTS+=(prometheus-operator)
needs istiod && COMPONENTS+=(pilot-discovery)
declare -A PORT=([etcd]=$ETCD_PORT [kube-apiserver]=$APISERVER_PORT [kube-controller-manager]=$KCM_PORT
  [kube-scheduler]=$SCHED_PORT [kwok]=$KWOK_PORT [vault]=$VAULT_PORT [postgres]=$PG_PORT
  [redis-cluster]="$REDIS_PORT-$((REDIS_PORT + REDIS_NODES - 1))" [cnpg-manager]="-(own netns)" [cnpg-status]=$CNPG_STATUS_PORT [redis-operator]=$REDISOP_PROBE_PORT
  [prometheus-operator]=$PROMOP_PORT [pilot-discovery]=$ISTIOD_WEBHOOK_PORT)
declare -A PROBE=([etcd]=h_etcd [kube-apiserver]=h_apiserver [kube-controller-manager]=h_kcm
  [kube-scheduler]=h_scheduler [kwok]=h_kwok [vault]=h_vault [postgres]=h_postgres
  [redis-cluster]=h_redis [cnpg-manager]=h_cnpg [cnpg-status]=h_cnpg_status [redis-operator]=h_redisop
  [prometheus-operator]=h_promop [pilot-discovery]=h_injector)

all_up() {
  local c
  for c in "${COMPONENTS[@]}"; do
    if [ "$c" = postgres ]; then h_postgres || return 1; else alive "$c" && "${PROBE[$c]}" || return 1; fi
  done
  crds_applied && apiserver_current
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
  local c
  for c in $PLATFORM_SYSTEM_COMMANDS; do
    command -v "$c" >/dev/null || die "$c is required from the base system (PLATFORM_SYSTEM_COMMANDS, toolchain/versions.env)"
  done
  if all_up; then
    # a destroyed stack leaves its static PVs Released: hand them back to new claims, or the
    # next deploy's PostgreSQL/Redis claims stay Pending once the pool is used up
    if needs cnpg || needs redisop; then up_storage; fi
    log "already up (no-op)"; return 0
  fi
  mkdir -p "$P" "$RUN" "$LOGS"; chmod 711 "$P"  # traverse-only for others (postgres); secrets are 0600
  ensure_binaries
  gen_pki
  gen_front_proxy_pki
  gen_kubeconfigs
  up_postgres
  if needs vault; then up_vault; else stop_pid vault; fi
  needs vault && up_pg_app_db
  if needs redis; then up_redis; else stop_pid redis-server $(redis_names); fi
  up_etcd
  up_apiserver
  up_crds
  # before anything creates pods in the program's namespaces (the webhook fails closed): the
  # controller-manager, once started, creates the Jobs' and ReplicaSets' pods at once (after a
  # restart, the CronJob's missed run), and each one refused before the injector listens is
  # a FailedCreate
  if needs istiod; then up_istiod; else stop_pid pilot-discovery; fi
  up_kcm
  up_scheduler
  up_kwok
  if needs cnpg || needs redisop; then up_storage; fi
  if needs cnpg; then up_cnpg_status; up_cnpg; else stop_pid cnpg-manager cnpg-status; fi
  if needs redisop; then up_redisop; else stop_pid redis-operator; fi
  if needs promop; then up_promop; else stop_pid prometheus-operator; fi
  check_loopback || die "a platform process listens on a non-loopback address (see above)"
  log "platform up: KUBECONFIG=$KUBECONFIG_ADMIN VAULT_ADDR=http://127.0.0.1:$VAULT_PORT"
}

cmd_down() {
  local purge=0
  [ "${1:-}" = --purge ] && purge=1
  local c
  stop_pid cnpg-manager cnpg-status redis-operator prometheus-operator pilot-discovery
  stop_pid kwok kube-scheduler kube-controller-manager vault redis-server $(redis_names)
  stop_pid kube-apiserver
  stop_pid etcd
  down_postgres
  if [ "$purge" = 1 ]; then
    rm -rf "$P"
    log "purged $P"
  fi
  log "platform down"
}

# rollout telemetry (Prometheus + synthetic Istio exporter): platform/telemetry.sh, the part
# `telemetry`; on unless CE_TELEMETRY=0
telemetry() { [ "${CE_TELEMETRY:-1}" = 0 ] || ! needs telemetry || bash "$here/telemetry.sh" "$@"; }
case "${1:-}" in
  up) cmd_up; telemetry up ;;
  down) shift; telemetry down; cmd_down "$@" ;;
  status) rc=0; cmd_status || rc=1; telemetry status || rc=1; exit "$rc" ;;
  _up) # debugging: start one component (postgres|vault|redis|etcd|apiserver|kcm|scheduler|kwok|crds|storage|cnpg|redisop|promop|istiod)
    mkdir -p "$P" "$RUN" "$LOGS"; chmod 711 "$P"; gen_pki; gen_front_proxy_pki; gen_kubeconfigs; "up_$2" ;;
  check-loopback) check_loopback && echo "ok: all platform listeners are on loopback" ;;
  *) echo "usage: $0 up|down [--purge]|status|check-loopback" >&2; exit 2 ;;
esac
