#!/usr/bin/env bash
# kiln-killall.sh: stops kiln and everything it started on this machine: the service, every
# process running the installed kiln binary (server, agent, container shims) and the processes
# of containers under kiln's cgroups; then removes kiln's network plumbing (bridge kiln0, the
# nftables table) and unmounts what it mounted under its run and data dirs. Data is kept.
# Installed by install.sh with the paths below filled in.
set -uo pipefail
[ "$(id -u)" -eq 0 ] || { echo "kiln-killall.sh: must run as root" >&2; exit 1; }

KILN=@KILN@
BIN_DIR=@BIN_DIR@
SERVICE_MODE=@SERVICE_MODE@
DATA_DIR=@DATA_DIR@
PID_DIR=@PID_DIR@

case $SERVICE_MODE in
  systemd) systemctl stop kiln 2>/dev/null ;;
  openrc) rc-service kiln stop 2>/dev/null ;;
  supervisor) "$BIN_DIR/kiln-service" stop >/dev/null 2>&1 ;;
esac

kiln_pids() {  # processes whose executable is the installed kiln (also after it was replaced)
  local d exe
  for d in /proc/[0-9]*; do
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    [ "$exe" = "$KILN" ] || [ "$exe" = "$KILN (deleted)" ] || continue
    echo "${d#/proc/}"
  done
}

pids=$(kiln_pids)
if [ -n "$pids" ]; then
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null
  for _ in $(seq 50); do
    [ -z "$(kiln_pids)" ] && break
    sleep 0.1
  done
  pids=$(kiln_pids)
  # shellcheck disable=SC2086
  [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
fi

# Container processes live in kiln's cgroups (cgroup v2 or v1 layouts).
find /sys/fs/cgroup -path '*/kubepods*' -name cgroup.procs 2>/dev/null | while read -r procs; do
  # shellcheck disable=SC2046
  kill -KILL $(cat "$procs") 2>/dev/null
done

# Mounts kiln made (overlay roots, tmpfs volumes, netns bind mounts), deepest first.
for dir in "$PID_DIR" "$DATA_DIR"; do
  [ -d "$dir" ] || continue
  awk -v d="$dir/" 'index($2 "/", d) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
done

if ip link show kiln0 >/dev/null 2>&1; then ip link delete kiln0; fi
if command -v nft >/dev/null && nft list table inet kiln >/dev/null 2>&1; then
  nft delete table inet kiln
fi
# The pod network's masquerade (src/agent/network; the veths went with the pods' namespaces).
if command -v nft >/dev/null && nft list table ip kiln-pod-net >/dev/null 2>&1; then
  nft delete table ip kiln-pod-net
fi
rm -f "$PID_DIR/kiln.pid" "$PID_DIR/kiln-service.pid"
echo "kiln-killall: stopped"
