#!/usr/bin/env bash
# kiln-service: runs `kiln server` as a supervised background process on machines whose PID 1
# is neither systemd nor OpenRC (containers, CI runners, minimal VMs). install.sh installs it
# with the paths below filled in.
#   kiln-service start     start the supervisor (detached); returns once kiln server is running
#   kiln-service stop      SIGTERM kiln server through the supervisor, SIGKILL after 90 s
#   kiln-service restart   stop, then start
#   kiln-service status    "running (...)" and exit 0, or "stopped" and exit 3 (LSB)
#   kiln-service run       the supervisor itself, in the foreground (start runs this detached)
# The supervisor restarts kiln server whenever it exits (like systemd's Restart=always), after
# 1 s, doubling to 30 s while it keeps failing fast. Pid files: $PID_DIR/kiln-service.pid (the
# supervisor) and $PID_DIR/kiln.pid (kiln server); all output goes to $LOG_FILE.
set -uo pipefail

KILN=@KILN@
PID_DIR=@PID_DIR@
LOG_FILE=@LOG_FILE@
ENV_FILE=@ENV_FILE@
SERVER_ARGS=(@SERVER_ARGS@)

SUP_PID=$PID_DIR/kiln-service.pid
SRV_PID=$PID_DIR/kiln.pid
STOP_TIMEOUT=${KILN_SERVICE_STOP_TIMEOUT:-90}

log() { printf '%s kiln-service: %s\n' "$(date -u +%FT%TZ)" "$*"; }

alive() {  # pid file -> true if it names a live, non-zombie process
  local pid state
  [ -s "$1" ] || return 1
  read -r pid <"$1" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

pidof_file() { local p; read -r p <"$1" 2>/dev/null && echo "$p"; }

supervise() {
  mkdir -p "$PID_DIR"
  if alive "$SUP_PID"; then
    echo "kiln-service: already running (pid $(pidof_file "$SUP_PID"))" >&2
    exit 1
  fi
  echo $$ >"$SUP_PID"
  local stopping=0 child=0 delay=1 started rc
  # shellcheck disable=SC2317
  on_signal() {
    stopping=1
    [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null
  }
  trap on_signal TERM INT
  trap '' HUP
  if [ -f "$ENV_FILE" ]; then
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
  fi
  while [ "$stopping" -eq 0 ]; do
    log "starting $KILN server ${SERVER_ARGS[*]}"
    started=$(date +%s)
    "$KILN" server "${SERVER_ARGS[@]}" </dev/null &
    child=$!
    echo "$child" >"$SRV_PID"
    # wait returns early (>128) when a trapped signal arrives; keep waiting for the child.
    while :; do
      wait "$child"
      rc=$?
      kill -0 "$child" 2>/dev/null || break
    done
    child=0
    rm -f "$SRV_PID"
    if [ "$stopping" -eq 1 ]; then
      log "kiln server stopped (status $rc)"
      break
    fi
    [ $(( $(date +%s) - started )) -ge 60 ] && delay=1
    log "kiln server exited with status $rc; restarting in ${delay}s"
    sleep "$delay" &
    wait $! 2>/dev/null
    delay=$((delay * 2))
    [ "$delay" -gt 30 ] && delay=30
  done
  rm -f "$SUP_PID"
}

start() {
  if alive "$SUP_PID"; then
    echo "kiln-service: already running (supervisor pid $(pidof_file "$SUP_PID"))"
    return 0
  fi
  mkdir -p "$PID_DIR" "$(dirname "$LOG_FILE")"
  rm -f "$SUP_PID" "$SRV_PID"
  setsid "$0" run >>"$LOG_FILE" 2>&1 </dev/null &
  local i
  for i in $(seq 100); do
    alive "$SRV_PID" && break
    sleep 0.05
  done
  if ! alive "$SUP_PID"; then
    echo "kiln-service: failed to start; see $LOG_FILE" >&2
    return 1
  fi
  echo "kiln-service: started (supervisor pid $(pidof_file "$SUP_PID"), log $LOG_FILE)"
}

stop() {
  if ! alive "$SUP_PID"; then
    # A server without its supervisor (supervisor killed with -9): stop it directly.
    if alive "$SRV_PID"; then kill -TERM "$(pidof_file "$SRV_PID")" 2>/dev/null; fi
    rm -f "$SUP_PID"
    echo "kiln-service: not running"
    return 0
  fi
  local sup srv=""
  sup=$(pidof_file "$SUP_PID")
  alive "$SRV_PID" && srv=$(pidof_file "$SRV_PID")
  kill -TERM "$sup" 2>/dev/null
  local deadline=$(( $(date +%s) + STOP_TIMEOUT ))
  while { alive "$SUP_PID" || { [ -n "$srv" ] && kill -0 "$srv" 2>/dev/null; }; } &&
        [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 0.1
  done
  if alive "$SUP_PID" || { [ -n "$srv" ] && kill -0 "$srv" 2>/dev/null; }; then
    echo "kiln-service: still running after ${STOP_TIMEOUT}s; sending SIGKILL" >&2
    kill -KILL "$sup" ${srv:+"$srv"} 2>/dev/null
  fi
  rm -f "$SUP_PID" "$SRV_PID"
  echo "kiln-service: stopped"
}

status() {
  if alive "$SUP_PID"; then
    if alive "$SRV_PID"; then
      echo "kiln-service: running (supervisor pid $(pidof_file "$SUP_PID"), kiln server pid $(pidof_file "$SRV_PID"))"
    else
      echo "kiln-service: running (supervisor pid $(pidof_file "$SUP_PID"), kiln server restarting)"
    fi
    return 0
  fi
  echo "kiln-service: stopped"
  return 3
}

case ${1:-} in
  run) supervise ;;
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status) status ;;
  *)
    echo "usage: kiln-service start|stop|restart|status|run" >&2
    exit 2
    ;;
esac
