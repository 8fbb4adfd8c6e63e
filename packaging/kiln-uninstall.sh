#!/usr/bin/env bash
# kiln-uninstall.sh: removes kiln from this machine: stops everything (kiln-killall.sh), then
# removes the service definition, the binaries and scripts install.sh put in place, kiln's
# data dir, configuration, kubeconfig, run dir and log. Installed by install.sh with the paths
# below filled in.
set -uo pipefail
[ "$(id -u)" -eq 0 ] || { echo "kiln-uninstall.sh: must run as root" >&2; exit 1; }

BIN_DIR=@BIN_DIR@
SERVICE_MODE=@SERVICE_MODE@
DATA_DIR=@DATA_DIR@
PID_DIR=@PID_DIR@
LOG_FILE=@LOG_FILE@
ENV_FILE=@ENV_FILE@
KUBECONFIG_FILE=@KUBECONFIG_FILE@
CONFIG_DIR=@CONFIG_DIR@

"$BIN_DIR/kiln-killall.sh" >/dev/null || true

case $SERVICE_MODE in
  systemd)
    systemctl disable kiln >/dev/null 2>&1
    rm -f /etc/systemd/system/kiln.service
    systemctl daemon-reload 2>/dev/null
    ;;
  openrc)
    rc-update delete kiln default >/dev/null 2>&1
    rm -f /etc/init.d/kiln
    ;;
esac

rm -f "$BIN_DIR/kiln" "$BIN_DIR/kiln-service" "$BIN_DIR/kiln-killall.sh"
rm -rf "$DATA_DIR" "$PID_DIR"
rm -f "$LOG_FILE" "$ENV_FILE" "$KUBECONFIG_FILE"
# The config dir goes only if nothing but kiln's files were in it.
rmdir "$CONFIG_DIR" 2>/dev/null
rm -f "$BIN_DIR/kiln-uninstall.sh"
echo "kiln-uninstall: removed"
