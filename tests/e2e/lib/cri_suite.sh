# shellcheck shell=bash disable=SC2016,SC2034
# (a library: sourced after harness.sh; the callers read the ids it sets)
# The CRI container checks shared by runtime_containers_test.sh (kiln's embedded runtime) and
# runtime_containerd_ref_test.sh (Debian's containerd, its CRI plugin, as the reference), all
# driven by kiln-cri-tool. Where the two runtimes differ the check asserts each side's own
# behaviour; every such difference is documented in docs/RUNTIME.md.
#
# The caller sets, before calling the checks:
#   CRI_TOOL     kiln-cri-tool          CS_SOCK     the CRI socket
#   CS_RUNTIME   kiln | containerd      W           the work dir (configs in $W/cfg, logs in $W/logs)
# and creates the sandbox from "$W/cfg/pod1.json" (cs_pod_json writes it).
#
# Checks (each sets the id it creates, for the caller's own further checks):
#   cs_info_container POD      C1: PID 1, hostname, env/cwd, uid, caps, masked/ro /proc, /dev,
#                              overlay root, the image's rootfs, CRI log format (F/P, stderr),
#                              exit code 3 / reason Error
#   cs_user_container POD      C2: run_as_user/group, no caps for non-root, reason Completed
#   cs_localhost POD NETNS     SRV, CLI: two containers share localhost, NETNS's loopback is another
#   cs_oom POD                 HOG: a memory hog is OOMKilled (137)
#   cs_exec_sync ID EXITED_ID INIT   ExecSync: exit code, namespaces, stderr, timeout, errors
#
# The containerd side: cs_containerd_start DIR NETNS_NAME IMAGE_TAR... starts Debian's containerd
# (its own root/state/sockets under DIR, CRI plugin, overlayfs, CNI bridge + loopback from
# /usr/lib/cni, sandbox image kiln.test/pause:1 built by cs_build_pause_image) inside the named
# harness namespace and imports the images; cs_containerd_stop removes every sandbox, stops it and
# kills whatever shim is left.

cri() { "$CRI_TOOL" --socket "$CS_SOCK" "$@"; }
jqr() { jq -r "$@"; }
state_of() { cri inspect "$1" | jqr .status.state; }
info_of() { cri inspect "$1" | jqr '.info.info | fromjson | .'"$2"; }
exited() { [ "$(state_of "$1")" = CONTAINER_EXITED ]; }
running() { [ "$(state_of "$1")" = CONTAINER_RUNNING ]; }
gone() {  # PID: no such process, or a zombie waiting for its (re)parent to reap it
  local st
  st=$(sed -E 's/.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 0
  [ "$st" = Z ] || [ "$st" = X ]
}

# cs_pod_json: writes $W/cfg/pod1.json (the sandbox config both runtimes get).
cs_pod_json() {
  mkdir -p "$W/cfg" "$W/logs"
  jq -n --arg logs "$W/logs/pod1" '{metadata: {name: "pod1", namespace: "default", uid: "uid-1"},
    hostname: "kiln-pod1", logDirectory: $logs, labels: {app: "e2e"},
    linux: {securityContext: {namespaceOptions: {pid: "CONTAINER"}}}}' >"$W/cfg/pod1.json"
}

# ctr_json NAME CMD_JSON [EXTRA_JQ]: writes a ContainerConfig file (EXTRA_JQ, a jq object
# expression, is merged in) and prints its path. Containers get their own PID namespace, as the
# kubelet asks by default.
ctr_json() {
  local f=$W/cfg/$1.json extra=${3:-'{}'}
  jq -n --arg name "$1" --argjson cmd "$2" \
    '{metadata: {name: $name}, image: {image: "kiln.test/busybox:1"}, command: $cmd,
      logPath: ($name + "/0.log"),
      linux: {securityContext: {namespaceOptions: {pid: "CONTAINER"}}}} * '"$extra" >"$f"
  echo "$f"
}
# run_ctr POD NAME CMD_JSON [EXTRA]: create + start; prints the id.
run_ctr() {
  local id extra=${4:-'{}'}
  id=$(cri create "$1" "$(ctr_json "$2" "$3" "$extra")" "$W/cfg/pod1.json" | jqr .id) || return 1
  cri start "$id" >/dev/null || return 1
  echo "$id"
}

# --- a container that reports what it sees ----------------------------------------------------
cs_info_container() {
  local POD=$1 st log
  C1=$(run_ctr "$POD" info '["sh","-c","echo pid=$$; hostname; echo FOO=$FOO HOSTNAME=$HOSTNAME; pwd; id -u; grep CapEff /proc/self/status; wc -c </proc/timer_list; awk \"\\$5==\\\"/proc/sys\\\" {print \\$6}\" /proc/self/mountinfo; echo $(ls /dev); grep \" / / \" /proc/self/mountinfo | grep -o overlay; ls /bin/busybox; echo to-stderr >&2; printf no-newline; exit 3"]' \
    '{envs: [{key: "FOO", value: "bar"}], workingDir: "/tmp"}')
  kh_check "CreateContainer + StartContainer" test -n "$C1"
  kh_wait_for "the info container to exit" 20 exited "$C1"
  st=$(cri inspect "$C1")
  kh_assert_eq "3 Error" "$(jqr '"\(.status.exitCode) \(.status.reason)"' <<<"$st")" "exit code 3, reason Error"
  if [ "$CS_RUNTIME" = kiln ]; then
    kh_check "started_at and finished_at are set" jq -e '(.status.startedAt|tonumber) > 0 and (.status.finishedAt|tonumber) >= (.status.startedAt|tonumber)' <<<"$st"
  else  # docs/RUNTIME.md: containerd's started_at is when Start returned, can be after the exit
    kh_check "containerd: started_at and finished_at are set" jq -e '(.status.startedAt|tonumber) > 0 and (.status.finishedAt|tonumber) > 0' <<<"$st"
  fi
  LOG=$W/logs/pod1/info/0.log  # global: the callers check it is kept
  kh_assert_eq "$LOG" "$(jqr .status.logPath <<<"$st")" "log_path = log_directory/log_path"
  log=$(cat "$LOG" 2>/dev/null)
  kh_check "every log line is <RFC3339Nano> stdout|stderr F|P <text>" \
    bash -c '! grep -vE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\.[0-9]+)?Z (stdout|stderr) [FP] " "$1"' _ "$LOG"
  kh_assert_contains "$log" " stdout F pid=1" "the container's process is PID 1 of its own PID namespace"
  kh_assert_contains "$log" " stdout F kiln-pod1" "it sees the sandbox's hostname"
  kh_assert_contains "$log" " stdout F FOO=bar HOSTNAME=kiln-pod1" "env from the config, HOSTNAME as containerd sets it"
  kh_assert_contains "$log" " stdout F /tmp" "working dir from the config"
  kh_assert_contains "$log" " stdout F 0" "uid 0 (the image names no user)"
  kh_assert_contains "$log" "CapEff:	00000000a80425fb" "the default capability set (containerd's 14)"
  if [ "$CS_RUNTIME" = kiln ]; then
    kh_assert_contains "$(grep -A1 CapEff <<<"$log")" " stdout F 0" "/proc/timer_list is masked (empty)"
    kh_assert_contains "$log" " stdout F ro," "/proc/sys is mounted read-only"
  else  # docs/RUNTIME.md: containerd masks and makes read-only only the paths the request lists
    kh_assert_not_contains "$(grep -A1 CapEff <<<"$log")" " stdout F 0" \
      "containerd: /proc/timer_list is not masked when the request lists no maskedPaths"
    kh_assert_not_contains "$log" " stdout F ro," \
      "containerd: /proc/sys is not remounted read-only when the request lists no readonlyPaths"
  fi
  kh_check "/dev has the standard nodes, pts, shm, mqueue" \
    grep -qE 'stdout F .*full.*mqueue.*null.*ptmx.*pts.*random.*shm.*stderr.*stdin.*stdout.*tty.*urandom.*zero' <<<"$log"
  kh_assert_contains "$log" " stdout F overlay" "its root is an overlay mount"
  kh_assert_contains "$log" " stdout F /bin/busybox" "the image's rootfs"
  kh_assert_contains "$log" " stderr F to-stderr" "stderr is logged as stderr"
  kh_assert_contains "$log" " stdout P no-newline" "text without a final newline is a partial (P) record"
}

# --- a user from the config, and an image default command ----------------------------------------
cs_user_container() {
  local POD=$1 ulog
  C2=$(run_ctr "$POD" user '["sh","-c","id -u; id -g; grep CapEff /proc/self/status"]' \
    '{linux: {securityContext: {runAsUser: {value: "65534"}, runAsGroup: {value: "65534"}}}}')
  kh_wait_for "the user container to exit" 20 exited "$C2"
  ulog=$(cat "$W/logs/pod1/user/0.log")
  kh_assert_contains "$ulog" " stdout F 65534" "run_as_user/run_as_group apply"
  kh_assert_contains "$ulog" "CapEff:	0000000000000000" "a non-root user has no effective capabilities"
  kh_assert_eq "0 Completed" "$(cri inspect "$C2" | jqr '"\(.status.exitCode) \(.status.reason)"')" "exit 0: reason Completed"
}

# --- two containers in one sandbox share localhost ------------------------------------------------
cs_localhost() {
  local POD=$1 netns=$2
  SRV=$(run_ctr "$POD" web '["sh","-c","mkdir -p /www && echo hello-from-httpd >/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"]')
  kh_wait_for "httpd to be running" 10 running "$SRV"
  CLI=$(run_ctr "$POD" client '["sh","-c","for i in $(seq 100); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1"]')
  kh_wait_for "the client to exit" 30 exited "$CLI"
  kh_assert_eq 0 "$(cri inspect "$CLI" | jqr .status.exitCode)" "wget on 127.0.0.1 reached httpd in the other container"
  kh_assert_contains "$(cat "$W/logs/pod1/client/0.log")" " stdout F hello-from-httpd" "and got its page"
  kh_check "the server's own loopback is another one (nothing on 127.0.0.1:8080 there)" \
    bash -c '! ip netns exec "$1" wget -q -T 2 -O - http://127.0.0.1:8080/ 2>/dev/null' _ "$netns"
}

# --- memory limit: a hog is OOMKilled --------------------------------------------------------------
cs_oom() {
  local POD=$1
  HOG=$(run_ctr "$POD" hog '["dd","if=/dev/zero","of=/dev/null","bs=64M","count=1"]' \
    '{linux: {resources: {memoryLimitInBytes: "16777216", cpuShares: "512", cpuQuota: "50000", cpuPeriod: "100000"}}}')
  kh_wait_for "the hog to exit" 30 exited "$HOG"
  local got
  got=$(cri inspect "$HOG" | jqr '"\(.status.exitCode) \(.status.reason)"')
  # containerd's CRI plugin learns of the OOM from a separate cgroup event; when the task's exit
  # is handled first it reports "Error" (a race under load, docs/RUNTIME.md). kiln's shim reads
  # the OOM kill before it records the exit, so kiln must always say OOMKilled.
  if [ "$CS_RUNTIME" = containerd ] && [ "$got" = "137 Error" ]; then
    kh_log "reference: containerd reported the OOM-killed hog as \"$got\" (its OOM event race)"
    got="137 OOMKilled"
  fi
  kh_assert_eq "137 OOMKilled" "$got" "the memory hog is OOMKilled (137)"
}

# --- ExecSync ----------------------------------------------------------------------------------------
# cs_exec_sync ID EXITED_ID INIT: ID runs with hostname kiln-pod1 and PID 1's command line
# starting with INIT; EXITED_ID has exited.
cs_exec_sync() {
  local id=$1 exited_id=$2 init=$3 ex t0 t1 out
  ex=$(cri exec-sync "$id" 10 sh -c 'echo "$(hostname) $(id -u) $(tr "\0" " " </proc/1/cmdline)"; echo to-err >&2; exit 7')
  kh_assert_eq 7 "$(jqr .exitCode <<<"$ex")" "ExecSync: the exit code" || kh_log "$ex"
  kh_assert_contains "$(jqr .stdout <<<"$ex")" "kiln-pod1 0 $init" \
    "ExecSync: in the container's UTS and PID namespaces (PID 1 is its init)"
  kh_assert_eq "to-err" "$(jqr .stderr <<<"$ex")" "ExecSync: stderr apart from stdout"
  t0=$(date +%s%N)
  out=$(cri exec-sync "$id" 1 sleep 30 2>&1)
  t1=$(date +%s%N)
  kh_assert_contains "$out" "ERROR DEADLINE_EXCEEDED" "ExecSync past its timeout: DEADLINE_EXCEEDED"
  kh_check "returned at the timeout, not after the command" test $(( (t1 - t0) / 1000000 )) -lt 5000
  if [ "$CS_RUNTIME" = kiln ]; then
    kh_assert_eq "" "$(pgrep -x -f 'sleep 30' | tr '\n' ' ')" "the timed-out command was killed"
  else  # docs/RUNTIME.md: containerd kills it after it has answered
    kh_wait_for "the timed-out command to be killed" 5 bash -c '[ -z "$(pgrep -x -f "sleep 30")" ]'
    kh_assert_eq "" "$(pgrep -x -f 'sleep 30' | tr '\n' ' ')" "containerd: the timed-out command was killed (soon after the answer)"
  fi
  kh_assert_contains "$(cri exec-sync "$id" 5 nosuchcmd 2>&1)" 'exec: "nosuchcmd": executable file not found in $PATH' \
    "ExecSync of a missing binary: an error naming it"
  out=$(cri exec-sync "$exited_id" 5 true 2>&1)
  if [ "$CS_RUNTIME" = kiln ]; then
    kh_assert_contains "$out" "ERROR FAILED_PRECONDITION" "ExecSync in an exited container: FAILED_PRECONDITION"
  else  # docs/RUNTIME.md: containerd answers UNKNOWN "... is in CONTAINER_EXITED state"
    kh_assert_contains "$out" "CONTAINER_EXITED state" "containerd: ExecSync in an exited container: an error naming the state ($out)"
  fi
}

# --- containerd ------------------------------------------------------------------------------------

# cs_build_pause_image BUSYBOX_TAR OUT_TAR: a pause-like image (kiln.test/pause:1) for
# containerd's sandbox container: the busybox image's layer, Entrypoint /bin/sleep 2147483647
# (containerd SIGKILLs the sandbox container on StopPodSandbox). Deterministic, like image.sh.
cs_build_pause_image() {
  local in=$1 out=$2 t m layer cfg cd cs md ms arch
  t=$(mktemp -d /tmp/kiln-pause.XXXXXX) || return 1
  tar -C "$t" -xf "$in" || { rm -rf "$t"; return 1; }
  m=$(jq -r '.manifests[0].digest' "$t/index.json" | cut -d: -f2)
  layer=$(jq -c '.layers' "$t/blobs/sha256/$m")
  arch=$(jq -c '.manifests[0].platform' "$t/index.json")
  cfg=$(jq -c --argjson p "$arch" '$p + {config: {Env: ["PATH=/bin"], Entrypoint: ["/bin/sleep", "2147483647"], WorkingDir: "/"}, rootfs: .rootfs, history: [{created: "1970-01-01T00:00:00Z", created_by: "kiln tests/e2e/lib/cri_suite.sh (pause)"}]}' \
    "$t/blobs/sha256/$(jq -r .config.digest "$t/blobs/sha256/$m" | cut -d: -f2)")
  printf '%s' "$cfg" >"$t/cfg"
  cd=$(sha256sum "$t/cfg" | cut -d' ' -f1) cs=$(stat -c %s "$t/cfg")
  mv "$t/cfg" "$t/blobs/sha256/$cd"
  jq -cj --arg d "sha256:$cd" --argjson s "$cs" '.config.digest = $d | .config.size = $s' "$t/blobs/sha256/$m" >"$t/man"
  md=$(sha256sum "$t/man" | cut -d' ' -f1) ms=$(stat -c %s "$t/man")
  mv "$t/man" "$t/blobs/sha256/$md"
  rm -f "$t/blobs/sha256/$m"
  jq -cj --arg d "sha256:$md" --argjson s "$ms" '.manifests[0].digest = $d | .manifests[0].size = $s |
    .manifests[0].annotations = {"io.containerd.image.name": "kiln.test/pause:1", "org.opencontainers.image.ref.name": "1"}' \
    "$t/index.json" >"$t/index.new" && mv "$t/index.new" "$t/index.json"
  (cd "$t" && LC_ALL=C tar --format=ustar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$out" oci-layout index.json blobs)
  local rc=$?
  rm -rf "$t"
  return $rc
}

CS_CTRD_DIR=""
CS_CTRD_PID=""
# cs_containerd_start DIR NETNS IMAGE_TAR...: writes DIR/config.toml and a CNI conflist, starts
# containerd inside the harness namespace NETNS (kh_bg, so teardown knows it), waits for its
# socket, imports the images into k8s.io. Sets CS_SOCK=DIR/containerd.sock. Returns non-zero if
# containerd does not come up.
cs_containerd_start() {
  local C=$1 netns=$2 img
  shift 2
  CS_CTRD_DIR=$C
  mkdir -p "$C/root" "$C/state" "$C/cni-conf" "$C/cni-ipam" "$C/opt"
  cat >"$C/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  sandbox_image = "kiln.test/pause:1"
  enable_selinux = false
  # The sandbox's oom_score_adj is -998; this machine refuses to lower it (EACCES even as root),
  # so clamp to containerd's own value as the restrict option does for containerd in a container.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$C/cni-conf"
TOML
  # A bridge inside the harness namespace (TEST-NET-1 addresses, no masquerade) and loopback.
  # (containerd needs an address on eth0: a loopback-only network fails RunPodSandbox.)
  cat >"$C/cni-conf/10-kiln-e2e.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "kiln-e2e",
 "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
              "ipam": {"type": "host-local", "dataDir": "$C/cni-ipam",
                       "ranges": [[{"subnet": "192.0.2.0/24"}]]}},
             {"type": "loopback"}]}
JSON
  # nsenter, not `ip netns exec`: that remounts /sys and so hides the cgroup mounts runc needs.
  # containerd's mounts are then the host's, and the harness checks that none is left.
  kh_bg nsenter --net="/run/netns/$(kh_ns "$netns")" containerd --log-level "${CS_CTRD_LOGLEVEL:-info}" --config "$C/config.toml"
  CS_CTRD_PID=$KH_BG_PID
  CS_CTRD_LOG=$KH_BG_LOG
  kh_on_teardown cs_containerd_stop
  CS_SOCK=$C/containerd.sock
  kh_wait_for "containerd's socket" 30 "$CRI_TOOL" --socket "$CS_SOCK" version || return 1
  for img in "$@"; do
    ctr --address "$CS_SOCK" -n k8s.io images import "$img" >>"$C/import.log" 2>&1 || {
      kh_log "ctr images import $img failed: $(tail -3 "$C/import.log")"; return 1; }
  done
}

# cs_containerd_stop: removes every sandbox (and so its containers, netns and mounts), stops
# containerd, kills any shim still serving it. Idempotent.
cs_containerd_stop() {
  [ -n "$CS_CTRD_PID" ] || return 0
  local C=$CS_CTRD_DIR p i
  if kill -0 "$CS_CTRD_PID" 2>/dev/null; then
    for p in $("$CRI_TOOL" --socket "$C/containerd.sock" pods 2>/dev/null | jq -r '.items[]?.id'); do
      "$CRI_TOOL" --socket "$C/containerd.sock" stopp "$p" >/dev/null 2>&1
      "$CRI_TOOL" --socket "$C/containerd.sock" rmp "$p" >/dev/null 2>&1
    done
    kill "$CS_CTRD_PID" 2>/dev/null
    for i in $(seq 100); do kill -0 "$CS_CTRD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CS_CTRD_PID" 2>/dev/null
  fi
  # Shims outlive containerd by design: kill those serving this instance (their command line
  # names its socket), then their containers die with them.
  for p in $(pgrep -f -- "-address $C/containerd.sock"); do kill -9 "$p" 2>/dev/null; done
  for i in $(seq 50); do pgrep -f -- "-address $C/containerd.sock" >/dev/null || break; sleep 0.1; done
  CS_CTRD_PID=""
}
