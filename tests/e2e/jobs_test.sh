#!/usr/bin/env bash
# e2e: the Job, TTL-after-finished and CronJob controllers against the real server and kubectl,
# on a node that exists only as an API object; tests/e2e/lib/fake_kubelet.sh plays its kubelet
# (pods whose command is ["true"] succeed, ["false"] fail, others run until deleted). Shows:
# the API server generates a Job's selector and labels and rejects bad cron schedules and time
# zones with upstream's messages; a Job with completions 3 completes (kubectl wait
# --for=condition=complete, `kubectl get job` 3/3); a failing Job retries after the pod-failure
# backoff and fails with BackoffLimitExceeded; an Indexed Job records completedIndexes; a
# suspended Job starts when resumed; activeDeadlineSeconds fails a Job and deletes its pods;
# ttlSecondsAfterFinished deletes a finished Job; a CronJob "* * * * *" creates a Job at the
# next minute that completes (status, scheduled-timestamp annotation, LAST SCHEDULE), and
# `kubectl create job --from=cronjob/...` works.
source "$(dirname "$0")/lib/harness.sh"
# Pods here are scheduled and observed, never run: no kubelet (nor runtime) on these servers.
export KILN_DISABLE_AGENT=true
kh_init
kh_netns_create jobs
kh_server_start || kh_abort "server did not start"
k() { kh_kubectl "$@"; }
W=$KH_WORK
KUBECTL_IN_NS=(ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$KH_KUBECONFIG" --cache-dir "$W/.kc-kubelet")
kwait() {  # kwait SECONDS ARGS...: kubectl wait with a timeout, its output
  local t=$1
  shift
  timeout $((t + 10)) ip netns exec "$KH_SERVER_NS" "$KH_KUBECTL" --kubeconfig "$KH_KUBECONFIG" \
    --cache-dir "$W/.kube-cache" wait --timeout="${t}s" "$@" 2>&1
}
jq_job() { k get job "$1" -o json 2>/dev/null | jq -r "$2"; }

printf 'apiVersion: v1\nkind: Node\nmetadata: {name: node-a, labels: {kubernetes.io/hostname: node-a}}\n' >"$W/node.yaml"
k create -f "$W/node.yaml" >/dev/null 2>&1 || kh_abort "could not create node node-a"
k patch node node-a --subresource=status --type=merge -p \
  '{"status":{"capacity":{"cpu":"8","memory":"16Gi","pods":"110"},"allocatable":{"cpu":"8","memory":"16Gi","pods":"110"}}}' >/dev/null 2>&1
KUBELET_RUN_SECONDS=1 kh_bg "$(dirname "$0")/lib/fake_kubelet.sh" "${KUBECTL_IN_NS[@]}" -- node-a
kh_check "the stand-in kubelet makes the node Ready" kh_wait_for "node Ready" 20 bash -c \
  "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get nodes --no-headers 2>/dev/null | grep -q ' Ready '"

job() {  # job NAME COMMAND [SPEC-YAML-LINES...]: a Job manifest (pods scheduled by the scheduler)
  local name=$1 cmd=$2
  shift 2
  {
    printf 'apiVersion: batch/v1\nkind: Job\nmetadata: {name: %s}\nspec:\n' "$name"
    for l in "$@"; do printf '  %s\n' "$l"; done
    printf '  template:\n    spec:\n      restartPolicy: Never\n'
    printf '      containers: [{name: c, image: busybox, command: %s}]\n' "$cmd"
  } >"$W/$name.yaml"
  k create -f "$W/$name.yaml" 2>&1
}

# --- API: generated selector, schedule validation ---------------------------------------------------
job pi '["true"]' "completions: 3" "parallelism: 2" >/dev/null
uid=$(k get job pi -o jsonpath='{.metadata.uid}')
kh_assert_eq "$uid" "$(jq_job pi '.spec.selector.matchLabels["batch.kubernetes.io/controller-uid"]')" \
  "the API server generates a Job's selector from its uid"
kh_assert_eq "pi $uid pi $uid" \
  "$(jq_job pi '.spec.template.metadata.labels | [."job-name", ."controller-uid", ."batch.kubernetes.io/job-name", ."batch.kubernetes.io/controller-uid"] | join(" ")')" \
  "  ... and the pod template's labels"
kh_assert_contains "$(k create cronjob bad --image=busybox --schedule="bad" 2>&1)" \
  'is invalid: spec.schedule: Invalid value: "bad": expected exactly 5 fields, found 1: [bad]' \
  "a bad schedule is refused (422) with robfig's message"
kh_assert_contains "$(k create cronjob bad --image=busybox --schedule="61 * * * *" 2>&1)" \
  'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61' "  ... and an out-of-range minute"
kh_assert_contains "$(k create cronjob bad --image=busybox --schedule="CRON_TZ=UTC * * * * *" 2>&1)" \
  'cannot use TZ or CRON_TZ in schedule, use timeZone field instead' "  ... and a CRON_TZ prefix"
printf 'apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: badtz}\nspec:\n  schedule: "0 3 * * *"\n  timeZone: Mars/Olympus\n  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}\n' >"$W/badtz.yaml"
kh_assert_contains "$(k create -f "$W/badtz.yaml" 2>&1)" \
  'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus' "  ... and an unknown time zone"
kh_check "a valid schedule with descriptors and a time zone is accepted" \
  k create cronjob nightly --image=busybox --schedule="@daily" --dry-run=server
sed -e 's/badtz/berlin/' -e 's#Mars/Olympus#Europe/Berlin#' "$W/badtz.yaml" >"$W/berlin.yaml"
kh_check "  ... and timeZone Europe/Berlin" k create -f "$W/berlin.yaml"

# --- a Job with completions 3 ------------------------------------------------------------------------
kh_assert_eq "job.batch/pi condition met" "$(kwait 60 --for=condition=complete job/pi)" \
  "a Job with completions 3 and parallelism 2 completes (kubectl wait --for=condition=complete)"
kh_assert_eq "Complete 3/3" "$(k get job pi --no-headers | awk '{print $2, $3}')" \
  "  ... kubectl get job: STATUS Complete, COMPLETIONS 3/3"
kh_assert_eq "3" "$(k get pods -l job-name=pi --no-headers 2>/dev/null | grep -c Completed)" \
  "  ... through 3 pods, which are kept"
kh_assert_eq "SuccessCriteriaMet Complete" "$(jq_job pi '[.status.conditions[].type] | join(" ")')" \
  "  ... conditions SuccessCriteriaMet then Complete"
kh_assert_eq "3 true true" "$(jq_job pi '"\(.status.succeeded) \(.status.startTime != null) \(.status.completionTime != null)"')" \
  "  ... status succeeded, startTime, completionTime"
events=$(k get events --field-selector involvedObject.name=pi -o jsonpath='{range .items[*]}{.reason}{"\n"}{end}' 2>/dev/null)
kh_assert_eq "3 1" "$(grep -c SuccessfulCreate <<<"$events") $(grep -c Completed <<<"$events")" \
  "  ... events: 3 SuccessfulCreate, Completed"

# --- backoffLimit --------------------------------------------------------------------------------------
job fail '["false"]' "backoffLimit: 1" >/dev/null
kh_assert_eq "job.batch/fail condition met" "$(kwait 60 --for=condition=failed job/fail)" \
  "a failing Job with backoffLimit 1 fails (after one retry and the 10 s pod-failure backoff)"
kh_assert_eq "BackoffLimitExceeded|Job has reached the specified backoff limit|2" \
  "$(jq_job fail '(.status.conditions[] | select(.type == "Failed") | "\(.reason)|\(.message)") + "|\(.status.failed)"')" \
  "  ... reason BackoffLimitExceeded after 2 failed pods"
kh_assert_eq "Failed 0/1" "$(k get job fail --no-headers | awk '{print $2, $3}')" "  ... kubectl get job: Failed 0/1"

# --- Indexed ------------------------------------------------------------------------------------------
job idx '["true"]' "completions: 3" "parallelism: 3" "completionMode: Indexed" >/dev/null
kh_assert_eq "job.batch/idx condition met" "$(kwait 60 --for=condition=complete job/idx)" "an Indexed Job completes"
kh_assert_eq "0-2" "$(jq_job idx '.status.completedIndexes')" "  ... completedIndexes 0-2"
kh_assert_eq "idx-0 idx-1 idx-2" \
  "$(k get pods -l job-name=idx -o jsonpath='{range .items[*]}{.spec.hostname}{"\n"}{end}' | sort | xargs)" \
  "  ... each pod with hostname <job>-<index>"

# --- suspend / resume ------------------------------------------------------------------------------------
job held '["true"]' "suspend: true" >/dev/null
kh_check "a suspended Job reports Suspended" kh_wait_for "Suspended" 20 bash -c \
  "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get job held -o jsonpath='{.status.conditions[?(@.type==\"Suspended\")].status}' | grep -qx True"
kh_assert_eq "0" "$(k get pods -l job-name=held --no-headers 2>/dev/null | wc -l)" "  ... and has no pods"
k patch job held --type=merge -p '{"spec":{"suspend":false}}' >/dev/null 2>&1
kh_assert_eq "job.batch/held condition met" "$(kwait 60 --for=condition=complete job/held)" "  ... resumed, it completes"
kh_assert_eq "False JobResumed" \
  "$(jq_job held '.status.conditions[] | select(.type == "Suspended") | "\(.status) \(.reason)"')" \
  "  ... Suspended=False, reason JobResumed"

# --- activeDeadlineSeconds ---------------------------------------------------------------------------------
job slow '["sleep","3600"]' "activeDeadlineSeconds: 3" >/dev/null
kh_assert_eq "job.batch/slow condition met" "$(kwait 60 --for=condition=failed job/slow)" \
  "activeDeadlineSeconds fails a Job that runs too long"
kh_assert_eq "DeadlineExceeded" "$(jq_job slow '.status.conditions[] | select(.type == "Failed") | .reason')" \
  "  ... reason DeadlineExceeded"
kh_check "  ... and its pod is gone" kh_wait_for "pods of slow gone" 30 bash -c \
  "[ -z \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l job-name=slow --no-headers 2>/dev/null)\" ]"

# --- ttlSecondsAfterFinished ------------------------------------------------------------------------------
job brief '["true"]' "ttlSecondsAfterFinished: 2" >/dev/null
kh_check "ttlSecondsAfterFinished deletes a finished Job" kh_wait_for "brief deleted" 60 bash -c \
  "! ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get job brief >/dev/null 2>&1"
kh_check "  ... and its pods with it" kh_wait_for "pods of brief gone" 30 bash -c \
  "[ -z \"\$(ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get pods -l job-name=brief --no-headers 2>/dev/null)\" ]"

# --- CronJob -----------------------------------------------------------------------------------------------
k create cronjob tick --image=busybox --schedule="* * * * *" -- true >/dev/null 2>&1
kh_assert_eq "<none>" "$(k get cronjob tick --no-headers | awk '{print $(NF-1)}')" \
  "a new CronJob has not run yet (LAST SCHEDULE <none>)"
first_tick() {
  k get jobs -o json 2>/dev/null |
    jq -r '.items[] | select(.metadata.ownerReferences[0].name == "tick") | .metadata.name' | head -1
}
kh_check "a CronJob \"* * * * *\" creates a Job at the next minute" kh_wait_for "a job of tick" 75 bash -c \
  "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get jobs -o json | jq -e '.items[] | select(.metadata.ownerReferences[0].name == \"tick\")' >/dev/null"
tj=$(first_tick)
sched=$(jq_job "$tj" '.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"]')
kh_assert_eq "tick-$(($(date -d "$sched" +%s) / 60))" "$tj" \
  "  ... named <cronjob>-<scheduled minute since the epoch> ($tj, scheduled $sched)"
kh_assert_eq "CronJob true" "$(jq_job "$tj" '"\(.metadata.ownerReferences[0].kind) \(.metadata.ownerReferences[0].controller)"')" \
  "  ... controlled by the CronJob"
kh_assert_eq "job.batch/$tj condition met" "$(kwait 60 --for=condition=complete "job/$tj")" "  ... and the Job completes"
kh_assert_eq "$sched" "$(k get cronjob tick -o jsonpath='{.status.lastScheduleTime}')" "  ... status.lastScheduleTime"
kh_check "  ... status.lastSuccessfulTime, and the finished Job leaves status.active" kh_wait_for "lastSuccessfulTime" 20 bash -c \
  "ip netns exec $KH_SERVER_NS kubectl --kubeconfig $KH_KUBECONFIG get cronjob tick -o json | jq -e '.status.lastSuccessfulTime != null and (.status.active | length) == 0'"
kh_assert_not_contains "$(k get cronjob tick --no-headers | awk '{print $(NF-1)}')" "<none>" "  ... kubectl get cronjob shows LAST SCHEDULE"
ev=$(k get events --field-selector involvedObject.name=tick -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>/dev/null)
kh_assert_contains "$ev" "SuccessfulCreate: Created job $tj" "  ... event SuccessfulCreate"
kh_assert_contains "$ev" "SawCompletedJob: Saw completed job: $tj, status: Complete" "  ... event SawCompletedJob"
k patch cronjob tick --type=merge -p '{"spec":{"suspend":true}}' >/dev/null 2>&1

kh_assert_eq "job.batch/manual created" "$(k create job manual --from=cronjob/tick 2>&1)" \
  "kubectl create job --from=cronjob/tick"
kh_assert_eq "job.batch/manual condition met" "$(kwait 60 --for=condition=complete job/manual)" "  ... and it completes"

kh_finish
