#!/usr/bin/env bash
# install.sh: installs kiln on this machine from a checkout and starts a single-node cluster.
#   ./install.sh        (as root)
# Steps: Debian packages (scripts/deps.sh) -> release build (the static binary) -> install
# $BIN_DIR/kiln plus kiln-killall.sh and kiln-uninstall.sh -> a service running `kiln server`
# (systemd or OpenRC when one of them is PID 1, otherwise the supervised background process
# kiln-service with a pid file and a log file) -> wait until the API server is ready.
# Running it again upgrades in place: the new binary is installed and the server restarted.
#
# Knobs (environment), named as k3s's INSTALL_K3S_*:
#   INSTALL_KILN_EXEC="flags"      extra `kiln server` flags, e.g. "--tls-san foo --disable servicelb"
#   INSTALL_KILN_SKIP_DEPS=true    do not install Debian packages
#   INSTALL_KILN_SKIP_BUILD=true   do not build; install INSTALL_KILN_BINARY (default build/release/kiln)
#   INSTALL_KILN_BINARY=path       the kiln binary to install
#   INSTALL_KILN_SKIP_START=true   install everything but do not start (or restart) kiln
#   INSTALL_KILN_BIN_DIR=dir       where kiln and its scripts go (default /usr/local/bin)
#   INSTALL_KILN_DATA_DIR=dir      kiln's data dir (default /var/lib/kiln; passed as --data-dir)
#   INSTALL_KILN_KUBECONFIG=file   the admin kubeconfig kiln writes (default /etc/kiln/kiln.yaml)
#   INSTALL_KILN_PID_DIR=dir       pid files of kiln-service (default /run/kiln)
#   INSTALL_KILN_LOG_FILE=file     log of kiln-service and OpenRC (default /var/log/kiln.log)
#   INSTALL_KILN_CONFIG_DIR=dir    where kiln.env goes (default /etc/kiln)
#   INSTALL_KILN_FORCE_SUPERVISOR=true   use kiln-service even where systemd/OpenRC is PID 1
#   INSTALL_KILN_READY_TIMEOUT=s   how long to wait for readiness (default 180)
# Every KILN_* variable in the environment (e.g. KILN_TOKEN) is written to kiln.env, mode 0600,
# which the service reads: configuration that must reach `kiln server` on every start.
set -euo pipefail
cd "$(dirname "$0")"
SRC=$(pwd)

info() { echo "[kiln] $*"; }
fatal() { echo "[kiln] error: $*" >&2; exit 1; }
truthy() { case ${1:-} in true | 1 | yes) return 0 ;; *) return 1 ;; esac; }

[ "$(id -u)" -eq 0 ] || fatal "install.sh must run as root"

BIN_DIR=${INSTALL_KILN_BIN_DIR:-/usr/local/bin}
DATA_DIR=${INSTALL_KILN_DATA_DIR:-/var/lib/kiln}
KUBECONFIG_FILE=${INSTALL_KILN_KUBECONFIG:-/etc/kiln/kiln.yaml}
PID_DIR=${INSTALL_KILN_PID_DIR:-/run/kiln}
LOG_FILE=${INSTALL_KILN_LOG_FILE:-/var/log/kiln.log}
CONFIG_DIR=${INSTALL_KILN_CONFIG_DIR:-/etc/kiln}
ENV_FILE=$CONFIG_DIR/kiln.env
READY_TIMEOUT=${INSTALL_KILN_READY_TIMEOUT:-180}
BINARY=${INSTALL_KILN_BINARY:-$SRC/build/release/kiln}
for v in BIN_DIR DATA_DIR KUBECONFIG_FILE PID_DIR LOG_FILE CONFIG_DIR; do
  case ${!v} in /*) ;; *) fatal "$v must be an absolute path (got '${!v}')" ;; esac
  case ${!v} in *[[:space:]\'\"\\\$\`]*) fatal "$v must not contain spaces or quotes (got '${!v}')" ;; esac
done
[[ $READY_TIMEOUT =~ ^[0-9]+$ ]] || fatal "INSTALL_KILN_READY_TIMEOUT must be a number of seconds"

# --- dependencies and build -------------------------------------------------------------------
if ! truthy "${INSTALL_KILN_SKIP_DEPS:-}"; then
  info "installing dependencies (Debian packages)"
  "$SRC/scripts/deps.sh"
fi
if ! truthy "${INSTALL_KILN_SKIP_BUILD:-}"; then
  info "building the release binary"
  cmake --preset release >/dev/null
  cmake --build --preset release --target kiln
  BINARY=$SRC/build/release/kiln
fi
[ -x "$BINARY" ] || fatal "no kiln binary at $BINARY (build it, or set INSTALL_KILN_BINARY)"
"$BINARY" version >/dev/null 2>&1 || fatal "$BINARY does not run"

# --- the service's command line ----------------------------------------------------------------
# shellcheck disable=SC2206
extra=(${INSTALL_KILN_EXEC:-})
args=()
[ "$DATA_DIR" != /var/lib/kiln ] && args+=(--data-dir "$DATA_DIR")
[ "$KUBECONFIG_FILE" != /etc/kiln/kiln.yaml ] && args+=(--write-kubeconfig "$KUBECONFIG_FILE")
args+=(${extra[@]+"${extra[@]}"})
server_args_q=""
for a in ${args[@]+"${args[@]}"}; do server_args_q+="$(printf '%q' "$a") "; done
server_args_q=${server_args_q% }
# --- service manager -----------------------------------------------------------------------------
pid1=$(cat /proc/1/comm 2>/dev/null || echo unknown)
if truthy "${INSTALL_KILN_FORCE_SUPERVISOR:-}"; then
  MODE=supervisor
elif [ "$pid1" = systemd ] && command -v systemctl >/dev/null; then
  MODE=systemd
elif [ -x /sbin/openrc-run ] && [ -d /run/openrc ]; then
  MODE=openrc
else
  MODE=supervisor
fi
info "service manager: $MODE (PID 1 is $pid1)"

render() {  # template -> stdout with @...@ filled in (bash substitution: any character is safe)
  local t
  t=$(<"$1")
  shopt -u patsub_replacement 2>/dev/null || true
  t=${t//@KILN@/$BIN_DIR/kiln}
  t=${t//@BIN_DIR@/$BIN_DIR}
  t=${t//@DATA_DIR@/$DATA_DIR}
  t=${t//@PID_DIR@/$PID_DIR}
  t=${t//@LOG_FILE@/$LOG_FILE}
  t=${t//@ENV_FILE@/$ENV_FILE}
  t=${t//@CONFIG_DIR@/$CONFIG_DIR}
  t=${t//@KUBECONFIG_FILE@/$KUBECONFIG_FILE}
  t=${t//@SERVICE_MODE@/$MODE}
  t=${t//@SERVER_ARGS@/$server_args_q}
  printf '%s\n' "$t"
}

install_file() {  # mode content-file dest: atomic replace (a running kiln keeps its old inode)
  local tmp
  tmp=$(mktemp "$3.XXXXXX")
  cat "$2" >"$tmp"
  chmod "$1" "$tmp"
  mv -f "$tmp" "$3"
}

# --- install -----------------------------------------------------------------------------------
mkdir -p "$BIN_DIR" "$CONFIG_DIR"
info "installing $BIN_DIR/kiln ($("$BINARY" version | head -1))"
install_file 0755 "$BINARY" "$BIN_DIR/kiln"
install_file 0755 <(render "$SRC/packaging/kiln-killall.sh") "$BIN_DIR/kiln-killall.sh"
install_file 0755 <(render "$SRC/packaging/kiln-uninstall.sh") "$BIN_DIR/kiln-uninstall.sh"
info "installed $BIN_DIR/kiln-killall.sh and $BIN_DIR/kiln-uninstall.sh"

umask 077
{
  echo "# KILN_* settings for kiln server, written by install.sh"
  while IFS='=' read -r -d '' k v; do
    case $k in KILN_*) printf '%s=%q\n' "$k" "$v" ;; esac
  done < <(env -0)
} >"$ENV_FILE.tmp"
mv -f "$ENV_FILE.tmp" "$ENV_FILE"
umask 022

case $MODE in
  systemd)
    install_file 0644 <(render "$SRC/packaging/kiln.service") /etc/systemd/system/kiln.service
    systemctl daemon-reload
    systemctl enable kiln >/dev/null 2>&1
    ;;
  openrc)
    install_file 0755 <(render "$SRC/packaging/kiln.openrc") /etc/init.d/kiln
    rc-update add kiln default >/dev/null
    ;;
  supervisor)
    install_file 0755 <(render "$SRC/packaging/kiln-service.sh") "$BIN_DIR/kiln-service"
    info "installed $BIN_DIR/kiln-service (pid files in $PID_DIR, log $LOG_FILE)"
    ;;
esac

if truthy "${INSTALL_KILN_SKIP_START:-}"; then
  info "INSTALL_KILN_SKIP_START set: not starting kiln"
  exit 0
fi

# --- start (or restart, on upgrade) and wait --------------------------------------------------
info "starting kiln server"
log_offset=$(stat -c %s "$LOG_FILE" 2>/dev/null || echo 0)
case $MODE in
  systemd) systemctl restart kiln ;;
  openrc) rc-service kiln restart >/dev/null ;;
  supervisor) "$BIN_DIR/kiln-service" restart >/dev/null ;;
esac

show_log() {
  case $MODE in
    systemd) journalctl -u kiln --no-pager -n 20 >&2 2>/dev/null || true ;;
    *) tail -c +$((log_offset + 1)) "$LOG_FILE" 2>/dev/null | tail -n 20 >&2 || true ;;
  esac
}

crashed() {  # kiln server exited since we started it (a bad flag, a refused data dir, ...)
  case $MODE in
    systemd) [ "$(systemctl show -p NRestarts --value kiln 2>/dev/null || echo 0)" != 0 ] ;;
    supervisor) tail -c +$((log_offset + 1)) "$LOG_FILE" 2>/dev/null | grep -q 'kiln server exited with status' ;;
    *) return 1 ;;
  esac
}

ready() {
  [ -s "$KUBECONFIG_FILE" ] &&
    [ "$(kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout=2s get --raw /readyz 2>/dev/null)" = ok ]
}
command -v kubectl >/dev/null || fatal "kubectl is not installed: cannot check readiness"
info "waiting up to ${READY_TIMEOUT}s for the API server to be ready"
deadline=$(( $(date +%s) + READY_TIMEOUT ))
until ready; do
  if crashed; then
    show_log
    fatal "kiln server exited during start-up (log above); it keeps being restarted: fix the cause, or stop it with kiln-killall.sh"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    show_log
    fatal "kiln did not become ready within ${READY_TIMEOUT}s (log above)"
  fi
  sleep 0.2
done
# With the node agent (the default), ready means this machine's Node is Ready too.
node_ready() {
  kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout=2s get nodes \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
    grep -qx True
}
case " ${INSTALL_KILN_EXEC:-} " in
  *" --disable-agent "*) ;;
  *)
    info "waiting for the node to be Ready"
    until node_ready; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        show_log
        kubectl --kubeconfig "$KUBECONFIG_FILE" get nodes -o wide 2>&1 || true
        fatal "the node did not become Ready within ${READY_TIMEOUT}s (log above)"
      fi
      sleep 0.2
    done
    kubectl --kubeconfig "$KUBECONFIG_FILE" get nodes
    ;;
esac
info "kiln is ready: kubeconfig $KUBECONFIG_FILE; try: kiln kubectl get nodes"
