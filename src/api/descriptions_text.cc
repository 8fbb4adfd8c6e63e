// kiln's own descriptions of the built-in API types and their fields, for the OpenAPI documents
// (`kubectl explain`). Written for kiln: concise statements of each field's meaning, defaults and
// constraints as upstream Kubernetes defines them (not upstream's text). Grammar: descriptions.cc.
// Keys are Go type names without their package; types sharing a name across groups (Event,
// HorizontalPodAutoscalerSpec in autoscaling/v1 and v2) share one entry holding the union of
// their fields. Kept as one compact text so it costs almost nothing to compile.
#include <string_view>

#include "api/descriptions.h"

namespace kiln::api::internal {

std::string_view openApiDescriptionsText() {
  static constexpr std::string_view kText =
      R"DESC(
# ---- shared by every type ----
*: 
  apiVersion: The versioned schema of this object's representation, e.g. "v1" or "apps/v1". Servers convert recognized schemas to the latest internal value and may reject unrecognized ones.
  kind: The REST resource this object represents, in CamelCase (e.g. "Pod"). Servers infer it from the endpoint the client submits to; it cannot be updated.
  metadata: Standard object metadata: name, namespace, labels, annotations and the fields the system maintains.
  spec: The desired behavior of the object, as set by its user.
  status: The most recently observed state of the object. Written by the system; read-only to clients.
List: 
  metadata: Standard list metadata: the resourceVersion the list was read at and the continue token of the next page.
  items: The objects in the list.

# ---- meta/v1 ----
ObjectMeta: Metadata every persisted resource carries: identity (name, namespace, uid), organization (labels, annotations), ownership and the bookkeeping the system maintains.
  name: Unique name of the object within its namespace (or the cluster, for cluster-scoped kinds). Required when creating unless generateName is set; cannot be updated.
  generateName: Prefix from which the server builds a unique name when name is empty: it appends a random suffix. Applies only when name is not given.
  namespace: Namespace the object lives in; empty for cluster-scoped kinds. Must be a DNS label and cannot be updated. Defaults to the request's namespace.
  selfLink: Deprecated and no longer set by the system.
  uid: Identifier unique in time and space for this object, set by the server on creation. Read-only.
  resourceVersion: Opaque version of the object that changes on every write; clients use it for optimistic concurrency and to resume watches. Set by the system; read-only.
  generation: Sequence number of a specific generation of the desired state, incremented by the system when the spec changes. Read-only.
  creationTimestamp: Time the object was created on the server (RFC 3339, UTC). Set by the system; read-only.
  deletionTimestamp: Time after which the object will be deleted, set by the system when deletion is requested gracefully. Read-only; the object stays visible until its finalizers are removed.
  deletionGracePeriodSeconds: Seconds the object has to terminate gracefully before it is removed from the system. Only set together with deletionTimestamp. Read-only.
  labels: String keys and values used to organize and select objects; they are matched by selectors of controllers and Services.
  annotations: Unstructured string keys and values for arbitrary metadata set by tools and users; not queryable and not used for selection.
  ownerReferences: Objects this object depends on. When every owner is deleted the garbage collector removes this object; at most one reference may be a managing controller.
  finalizers: Names that must all be removed before the object is deleted from the registry; each one is handled by the component that added it. Order is not significant.
  managedFields: Which field manager owns which fields, recorded for server-side apply. Maintained by the system; clients rarely set it.
OwnerReference: Identifies an owner of an object, within the same namespace or cluster scope.
  kind!: Kind of the owner.
  name!: Name of the owner.
  uid!: UID of the owner.
  apiVersion!: API version of the owner.
  controller: When true, this owner is the managing controller of the object.
  blockOwnerDeletion: When true, the owner cannot be removed from the key-value store until this object is deleted (foreground deletion). Requires delete permission on the owner. Defaults to false.
ManagedFieldsEntry: The set of fields one field manager owns, and how it last wrote them.
  manager: Name of the workflow (field manager) that manages these fields.
  operation: Kind of write that produced this entry: Apply or Update.
  apiVersion: API version of the object the fields were written in; field sets are version-specific.
  time: Time of the last change to the owned field set (not of every write by this manager).
  fieldsType: Format of the fields description. The only value is "FieldsV1".
  fieldsV1: The owned fields, as a FieldsV1 trie.
  subresource: Subresource the write went through (e.g. "status"); empty for the main resource.
ListMeta: Metadata of list responses.
  selfLink: Deprecated and no longer set by the system.
  resourceVersion: Version of the store the list was read at; start a watch from it to follow changes. Opaque to clients.
  continue: Token to request the next page of a limited list; empty on the last page. It expires after a while, after which the server answers 410 Gone.
  remainingItemCount: Number of items after this page, when the server can count them; an estimate for lists served with a field or label selector.
LabelSelector: A query over labels. matchLabels and matchExpressions are ANDed; an empty selector matches every object and a null one matches none.
  matchLabels: Label key/value pairs that must all match, each equivalent to an "In" expression with a single value.
  matchExpressions: Label requirements that must all hold.
LabelSelectorRequirement: A selector requirement: a key, an operator and values.
  key!: The label key the requirement applies to.
  operator!: How the key relates to the values: In, NotIn, Exists or DoesNotExist.
  values: Values for In and NotIn (must be non-empty); must be empty for Exists and DoesNotExist. Replaced as a whole by strategic merge patches.
Condition: One aspect of an object's current state, in the standard condition layout.
  type!: Condition type in CamelCase (or domain/Type), e.g. "Available".
  status!: Whether the condition holds: True, False or Unknown.
  observedGeneration: The metadata.generation the condition was computed from.
  lastTransitionTime!: Last time the status changed.
  reason!: CamelCase, machine-readable reason for the last transition. Must not be empty.
  message!: Human-readable details of the transition; may be empty.
Status: The result of an operation that does not return an object.
  status: "Success" or "Failure".
  message: Human-readable description of the result.
  reason: Machine-readable reason for a failure, e.g. NotFound or AlreadyExists. Empty when nothing more is known.
  details: Extra data about the reason, such as the object's kind and name and field causes.
  code: HTTP status code of the result, 0 when not set.
StatusDetails: Details of a Status: which object was concerned and why it failed.
  name: Name of the object the status refers to, when there is one.
  group: API group of the object.
  kind: Kind of the object.
  uid: UID of the object, when there is one.
  causes: Individual causes of the failure, such as invalid fields.
  retryAfterSeconds: Seconds the client should wait before retrying, when set.
StatusCause: One cause of a failure.
  reason: Machine-readable cause, e.g. FieldValueInvalid.
  message: Human-readable description of the cause.
  field: Path of the field at fault, e.g. "spec.containers[0].name".
DeleteOptions: Options of a delete request.
  gracePeriodSeconds: Seconds before the object is deleted; zero means immediately. Defaults to the kind's own grace period when unset.
  preconditions: Conditions (uid, resourceVersion) that must hold for the deletion to happen.
  orphanDependents: Deprecated: use propagationPolicy. When true, dependents are orphaned.
  propagationPolicy: How dependents are garbage-collected: Orphan, Background or Foreground. Defaults to the kind's own policy.
  dryRun: When present, the deletion is validated but not persisted. The only value is "All".
  ignoreStoreReadErrorWithClusterBreakingPotential: Deletes an object whose stored data cannot be read or decoded. Dangerous; requires extra authorization.
Preconditions: Conditions that must hold before an operation goes ahead.
  uid: The object must have this UID.
  resourceVersion: The object must be at this resource version.
FieldSelectorRequirement: A field selector requirement: a field path, an operator and values.
  key!: The field path the requirement applies to.
  operator!: How the field relates to the values: In, NotIn, Exists or DoesNotExist.
  values: Values for In and NotIn (must be non-empty); empty for Exists and DoesNotExist.
Time: A timestamp in RFC 3339 form, UTC, with second precision.
MicroTime: A timestamp in RFC 3339 form, UTC, with microsecond precision.
Duration: A duration in Go's text form, e.g. "1h30m".
FieldsV1: A set of fields as a JSON trie, used in managedFields.
RawExtension: An embedded object of any kind, in its serialized form.
Quantity: A fixed-point number with an optional suffix: binary SI (Ki, Mi, Gi, Ti, Pi, Ei), decimal SI (m, k, M, G, T, P, E) or a decimal exponent (e.g. 1e3). Serialized in canonical form, e.g. "500m" or "1Gi".
IntOrString: A value that holds either an integer or a string, e.g. a port number or name, or a count or percentage.
)DESC"
      R"DESC(
# ---- Pod ----
Pod: A group of containers that share network and storage and are scheduled together onto one node. Created by users or by workload controllers.
  spec: Desired behavior of the pod: its containers, volumes and scheduling constraints.
  status: Most recently observed state of the pod: phase, conditions, IPs and container states. Written by the kubelet; read-only.
PodList: A list of pods.
  items: The pods.
PodTemplate: A named, stored pod template.
  template: The pod template.
PodTemplateList: A list of pod templates.
  items: The pod templates.
PodTemplateSpec: The pods a controller creates from this template.
  metadata: Metadata for the created pods; its labels must match the controller's selector.
  spec: Specification of the created pods.
PodSpec: The description of a pod: its containers, volumes and how and where it runs.
  volumes: Volumes that the pod's containers can mount.
  containers!: The application containers of the pod. At least one is required; containers cannot be added or removed after creation.
  initContainers: Containers run in order before the application containers start; each must exit successfully first. Init containers with restartPolicy Always run as sidecars for the pod's lifetime.
  ephemeralContainers: Debugging containers added to a running pod through the ephemeralcontainers subresource. Cannot be set at creation.
  restartPolicy: Restart policy of the pod's containers: Always, OnFailure or Never. Defaults to Always.
  terminationGracePeriodSeconds: Seconds the pod has to shut down after the termination signal before it is killed. Must be non-negative; zero means immediately. Defaults to 30.
  activeDeadlineSeconds: Seconds the pod may stay active, counted from its start time, before the system fails it. Must be a positive integer.
  dnsPolicy: How the pod's DNS is configured: ClusterFirst, ClusterFirstWithHostNet, Default or None. Defaults to ClusterFirst; with None, dnsConfig supplies the settings.
  nodeSelector: Labels a node must carry for the pod to be scheduled there.
  serviceAccountName: Name of the ServiceAccount the pod runs as. Defaults to "default".
  serviceAccount: Deprecated alias of serviceAccountName.
  automountServiceAccountToken: Whether a service account token is mounted into the pod automatically. Overrides the ServiceAccount's setting.
  nodeName: Node the pod is bound to. Set by the scheduler; setting it at creation bypasses scheduling.
  hostNetwork: Use the node's network namespace instead of the pod's own. The containers' ports are then the node's ports. Defaults to false.
  hostPID: Use the node's process ID namespace. Defaults to false.
  hostIPC: Use the node's IPC namespace. Defaults to false.
  shareProcessNamespace: Share one process namespace among all containers of the pod, so they see and can signal each other's processes. Defaults to false.
  securityContext: Security attributes and common container settings for the whole pod.
  imagePullSecrets: Secrets in the pod's namespace with registry credentials used to pull the containers' images.
  hostname: Hostname of the pod. Defaults to the pod's name.
  subdomain: Subdomain of the pod: with a headless Service of that name, the pod's FQDN is "<hostname>.<subdomain>.<namespace>.svc.<cluster domain>".
  affinity: Node affinity and pod (anti-)affinity scheduling constraints.
  schedulerName: Scheduler that places the pod. Defaults to "default-scheduler".
  tolerations: Taints the pod tolerates.
  hostAliases: Entries added to the pod's /etc/hosts file.
  priorityClassName: Name of the PriorityClass giving the pod's priority. Without one the global default class applies, or priority zero.
  priority: Priority of the pod, filled in by the admission controller from priorityClassName. Higher values are scheduled first and preempt lower ones.
  dnsConfig: DNS parameters merged into the configuration generated from dnsPolicy.
  readinessGates: Extra conditions the pod's status must hold, on top of its containers being ready, for the pod to be Ready.
  runtimeClassName: RuntimeClass used to run the pod. Defaults to the cluster's default runtime handler.
  enableServiceLinks: Whether environment variables describing the Services of the namespace are injected, as Docker links did. Defaults to true.
  preemptionPolicy: Whether the pod may preempt lower-priority pods: PreemptLowerPriority or Never. Defaults to PreemptLowerPriority.
  overhead: Resources used by the pod's sandbox on top of its containers' requests and limits, set from its RuntimeClass.
  topologySpreadConstraints: How the pod's replicas spread across topology domains such as zones or nodes.
  setHostnameAsFQDN: When true, the pod's hostname is its fully qualified domain name. Defaults to false.
  os: Operating system of the containers, used for validation and by the kubelet.
  hostUsers: Whether the pod uses the node's user namespace. false gives the pod a user namespace of its own. Defaults to true.
  schedulingGates: Gates that hold back scheduling while any is present; removed by the components that added them.
  resourceClaims: ResourceClaims the pod needs (dynamic resource allocation), referenced by name from containers' resources.claims.
  resources: Resources of the whole pod, shared by its containers (requests and limits for cpu and memory).
PodOS: The operating system a pod runs on.
  name!: Operating system name: linux or windows.
PodSchedulingGate: A gate that holds back the scheduling of a pod.
  name!: Name of the gate; unique among the pod's gates.
PodResourceClaim: A ResourceClaim a pod needs, under a name its containers use.
  name!: Name of this claim within the pod; containers refer to it in resources.claims.
  resourceClaimName: Name of an existing ResourceClaim in the pod's namespace. Exactly one of this and resourceClaimTemplateName must be set.
  resourceClaimTemplateName: Name of a ResourceClaimTemplate from which a claim is created for this pod and deleted with it.
PodReadinessGate: An extra condition a pod needs to be Ready.
  conditionType!: Type of a condition in the pod's conditions.
PodDNSConfig: DNS settings of a pod besides those generated from dnsPolicy.
  nameservers: DNS server IP addresses, added to those from dnsPolicy without duplicates.
  searches: DNS search domains, added to those from dnsPolicy without duplicates.
  options: resolver options; entries replace generated ones with the same name.
PodDNSConfigOption: A resolver option.
  name: Option name, e.g. "ndots".
  value: Option value, when the option takes one.
HostAlias: An entry in the pod's /etc/hosts.
  ip!: IP address of the entry.
  hostnames: Hostnames for the IP address.
Toleration: Lets a pod schedule onto (or stay on) nodes with a matching taint.
  key: Taint key the toleration matches; empty matches every key (then operator must be Exists).
  operator: How the key relates to the value: Exists or Equal. Defaults to Equal; Exists is a wildcard for the value.
  value: Taint value the toleration matches; empty when operator is Exists.
  effect: Taint effect the toleration matches: NoSchedule, PreferNoSchedule or NoExecute; empty matches every effect.
  tolerationSeconds: For NoExecute taints, how long the pod stays bound after the taint is added; unset means forever, zero or less means evict at once.
TopologySpreadConstraint: How pods matching a selector spread across a topology.
  maxSkew!: Largest allowed difference in the number of matching pods between any two eligible domains. Must be greater than zero.
  topologyKey!: Node label key whose values define the topology domains, e.g. topology.kubernetes.io/zone.
  whenUnsatisfiable!: What to do when the constraint cannot be met: DoNotSchedule (the default) or ScheduleAnyway, which only prefers low-skew domains.
  labelSelector: Pods counted in each domain.
  minDomains: Minimum number of eligible domains; with fewer, the global minimum is taken as zero. Only with whenUnsatisfiable DoNotSchedule.
  nodeAffinityPolicy: Whether nodeAffinity and nodeSelector are honored when computing skew: Honor (the default) or Ignore.
  nodeTaintsPolicy: Whether node taints are honored when computing skew: Honor or Ignore (the default).
  matchLabelKeys: Pod label keys whose values, taken from the incoming pod, are added to labelSelector.
Affinity: Scheduling constraints of a pod.
  nodeAffinity: Node affinity rules of the pod.
  podAffinity: Rules that place the pod in the same domain as other pods.
  podAntiAffinity: Rules that keep the pod away from domains holding other pods.
NodeAffinity: Node affinity scheduling rules.
  requiredDuringSchedulingIgnoredDuringExecution: Node requirements that must hold at scheduling time. Not re-checked once the pod runs.
  preferredDuringSchedulingIgnoredDuringExecution: Weighted node preferences; the scheduler favors nodes whose matching terms sum to the largest weight.
NodeSelector: A node selector: the node must match one of the terms.
  nodeSelectorTerms!: Terms ORed together.
NodeSelectorTerm: Node requirements ANDed together; a null or empty term matches no node.
  matchExpressions: Requirements on node labels.
  matchFields: Requirements on node fields (only metadata.name is supported).
NodeSelectorRequirement: A requirement on a node label or field.
  key!: The label key or field the requirement applies to.
  operator!: How the key relates to the values: In, NotIn, Exists, DoesNotExist, Gt or Lt.
  values: Values for In and NotIn (non-empty), a single integer for Gt and Lt, none for Exists and DoesNotExist.
PreferredSchedulingTerm: A weighted node preference.
  weight!: Weight of the term, 1-100.
  preference!: The node selector term.
PodAffinity: Rules that co-locate the pod with other pods.
  requiredDuringSchedulingIgnoredDuringExecution: Terms that must all hold at scheduling time. Not re-checked once the pod runs.
  preferredDuringSchedulingIgnoredDuringExecution: Weighted terms; the scheduler favors nodes where the sum of matching weights is highest.
PodAntiAffinity: Rules that keep the pod apart from other pods.
  requiredDuringSchedulingIgnoredDuringExecution: Terms that must all hold at scheduling time. Not re-checked once the pod runs.
  preferredDuringSchedulingIgnoredDuringExecution: Weighted terms; the scheduler favors nodes where the sum of matching weights is lowest.
PodAffinityTerm: A set of pods, and the topology domain the pod must (or must not) share with them.
  labelSelector: Pods matched by the term. Null matches no pod.
  namespaces: Namespaces in which pods are matched. Empty with a null namespaceSelector means the pod's own namespace.
  topologyKey!: Node label key: nodes with the same value form one domain. Must not be empty.
  namespaceSelector: Namespaces (selected by label) in which pods are matched, added to namespaces. Empty matches every namespace.
  matchLabelKeys: Pod label keys whose values, taken from the incoming pod, are ANDed into labelSelector.
  mismatchLabelKeys: Pod label keys whose values, taken from the incoming pod, must differ (added as NotIn to labelSelector).
WeightedPodAffinityTerm: A weighted pod affinity term.
  weight!: Weight of the term, 1-100.
  podAffinityTerm!: The pod affinity term.
PodSecurityContext: Security settings applied to every container of a pod; a container's own securityContext takes precedence.
  seLinuxOptions: SELinux context for all containers. Defaults to a random one chosen by the runtime.
  runAsUser: UID the containers' processes run as. Defaults to the image's user.
  runAsNonRoot: When true, the kubelet refuses to start a container that would run as UID 0.
  runAsGroup: Primary GID of the containers' processes. Defaults to the runtime's default.
  supplementalGroups: Extra GIDs given to the first process of each container, besides its primary GID and fsGroup.
  supplementalGroupsPolicy: How supplemental groups are computed: Merge (with the image's /etc/group, the default) or Strict.
  fsGroup: GID that owns supported volumes and is added to every container's groups; new files in such volumes belong to it.
  fsGroupChangePolicy: When volume ownership is changed to fsGroup: OnRootMismatch or Always (the default).
  sysctls: Namespaced kernel parameters set for the pod.
  windowsOptions: Windows-specific settings for all containers.
  seccompProfile: Seccomp profile of all containers.
  appArmorProfile: AppArmor profile of all containers.
  seLinuxChangePolicy: How SELinux labels are applied to volumes: Recursive or MountOption.
Sysctl: A kernel parameter to set.
  name!: Name of the parameter.
  value!: Value of the parameter.
# ---- containers ----
Container: A single application container of a pod.
  name!: Name of the container, a DNS label unique within the pod. Cannot be updated.
  image: Container image reference, e.g. "nginx:1.27". Optional for API validation so that controllers may default it; required to run.
  command: Entrypoint as an array, run without a shell. $(VAR) references to the container's environment are expanded; "$$" escapes. Defaults to the image's ENTRYPOINT. Cannot be updated.
  args: Arguments to the entrypoint, with $(VAR) references expanded as in command. Defaults to the image's CMD. Cannot be updated.
  workingDir: Working directory of the container. Defaults to the image's. Cannot be updated.
  ports: Ports the container exposes. Informational: any port the process listens on is reachable from the network. Cannot be updated.
  env: Environment variables set in the container. Cannot be updated.
  envFrom: Sources whose keys become environment variables; explicit env entries win on duplicates. Cannot be updated.
  resources: Compute resources (cpu, memory) the container requests and its limits.
  resizePolicy: How each resource is resized in place: whether the container restarts.
  restartPolicy: Only for init containers: Always makes it a sidecar that keeps running (and is restarted) for the pod's lifetime.
  volumeMounts: Volumes of the pod mounted into the container's filesystem. Cannot be updated.
  volumeDevices: Block devices of the pod's volumes exposed to the container.
  livenessProbe: Periodic check of the container's health; on failure the container is restarted. Cannot be updated.
  readinessProbe: Periodic check of whether the container can serve; while failing, the pod is removed from Service endpoints. Cannot be updated.
  startupProbe: Check that the container has started; the other probes wait until it succeeds, and on failure the container is restarted. Cannot be updated.
  lifecycle: Actions the system runs after the container starts and before it stops. Cannot be updated.
  terminationMessagePath: File whose contents are written to the container's termination message when it exits. At most 4096 bytes. Defaults to /dev/termination-log. Cannot be updated.
  terminationMessagePolicy: How the termination message is filled: File or FallbackToLogsOnError (the log tail when the file is empty and the container failed). Defaults to File. Cannot be updated.
  imagePullPolicy: When the image is pulled: Always, Never or IfNotPresent. Defaults to Always for the :latest tag (or no tag), IfNotPresent otherwise. Cannot be updated.
  securityContext: Security options the container runs with, overriding the pod's securityContext.
  stdin: Allocate a buffer for stdin so that it can be attached to. Defaults to false (reads from stdin get EOF).
  stdinOnce: Close stdin after the first attach session ends. Defaults to false.
  tty: Allocate a TTY for the container; needs stdin too. Defaults to false.
EphemeralContainerCommon < Container: The fields an ephemeral container shares with Container.
EphemeralContainer < Container: A temporary container added to a running pod for inspection and debugging. Never restarted; no ports, probes or resources.
  targetContainerName: Name of a container whose namespaces (such as its process namespace) the ephemeral container joins. Defaults to the pod's shared namespaces.
ContainerPort: A network port of a container.
  name: Name of the port, an IANA_SVC_NAME unique within the pod; Services may refer to it.
  containerPort!: Port number on the pod's IP address, 1-65535.
  hostPort: Port number on the node mapped to containerPort, 1-65535. Most pods do not need it.
  hostIP: Node IP address to bind hostPort to.
  protocol: Protocol of the port: TCP, UDP or SCTP. Defaults to TCP.
EnvVar: An environment variable of a container.
  name!: Name of the variable. Must be a C_IDENTIFIER.
  value: Value of the variable; $(VAR) references to earlier variables are expanded and "$$" escapes. Defaults to "".
  valueFrom: Source of the value; cannot be combined with a non-empty value.
EnvVarSource: Where an environment variable's value comes from.
  fieldRef: A field of the pod: metadata.name, metadata.namespace, metadata.uid, metadata.labels['<key>'], metadata.annotations['<key>'], spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s).
  resourceFieldRef: A resource request or limit of the container (limits.cpu, requests.memory, ...).
  configMapKeyRef: A key of a ConfigMap in the pod's namespace.
  secretKeyRef: A key of a Secret in the pod's namespace.
EnvFromSource: A set of environment variables taken from a ConfigMap or Secret.
  prefix: Prefix (a C_IDENTIFIER) added to every key.
  configMapRef: The ConfigMap to read.
  secretRef: The Secret to read.
ConfigMapEnvSource < LocalObjectReference: A ConfigMap whose keys become environment variables.
  optional: Whether the ConfigMap may be missing.
SecretEnvSource < LocalObjectReference: A Secret whose keys become environment variables.
  optional: Whether the Secret may be missing.
ConfigMapKeySelector < LocalObjectReference: A key of a ConfigMap.
  key!: The key to read.
  optional: Whether the ConfigMap or its key may be missing.
SecretKeySelector < LocalObjectReference: A key of a Secret.
  key!: The key to read. Must be a valid secret key.
  optional: Whether the Secret or its key may be missing.
ObjectFieldSelector: Selects a field of an object.
  apiVersion: Version of the schema fieldPath is written in. Defaults to "v1".
  fieldPath!: Path of the field to select in that version.
ResourceFieldSelector: Selects a resource of a container: limits.cpu, limits.memory, limits.ephemeral-storage, requests.cpu, requests.memory or requests.ephemeral-storage.
  containerName: Container to read; required for volumes, optional for environment variables.
  resource!: The resource to select.
  divisor: Unit the value is divided by. Defaults to "1".
LocalObjectReference: A reference to an object in the same namespace.
  name: Name of the referent. Must be set in practice; the empty default is kept only for compatibility.
ResourceRequirements: Compute resource requirements.
  limits: Maximum amount of each resource allowed. The container is throttled (cpu) or killed (memory) beyond it.
  requests: Minimum amount of each resource needed; the scheduler places the pod where these fit. Defaults to limits when omitted, and can never exceed them.
  claims: Names of the pod's resourceClaims this container uses. Immutable.
ResourceClaim: A reference to one of the pod's resource claims.
  name!: Name of an entry of the pod's spec.resourceClaims.
  request: Name of one request within that claim; empty uses the whole claim.
ContainerResizePolicy: Resize policy of one resource of a container.
  resourceName!: The resource the policy applies to: cpu or memory.
  restartPolicy!: What happens when the resource is resized: NotRequired (the default) or RestartContainer.
VolumeMount: A volume mounted into a container.
  name!: Name of the pod volume to mount.
  mountPath!: Path inside the container at which to mount the volume. Must not contain ':'.
  subPath: Path within the volume to mount instead of its root. Defaults to "" (the root).
  subPathExpr: Like subPath, with $(VAR) references expanded from the container's environment. Mutually exclusive with subPath.
  readOnly: Mount read-only. Defaults to false.
  recursiveReadOnly: Whether a read-only mount is read-only recursively: Disabled (the default), IfPossible or Enabled.
  mountPropagation: How mounts propagate between the host and the container: None (the default), HostToContainer or Bidirectional.
VolumeDevice: A raw block device exposed to a container.
  name!: Name of a persistentVolumeClaim volume of the pod.
  devicePath!: Path inside the container at which the device appears.
Probe < ProbeHandler: A health check of a container: the action and when and how often it runs.
  initialDelaySeconds: Seconds after the container starts before the probe first runs. Defaults to 0.
  timeoutSeconds: Seconds after which a probe attempt times out. Defaults to 1; minimum 1.
  periodSeconds: How often (in seconds) the probe runs. Defaults to 10; minimum 1.
  successThreshold: Consecutive successes needed to count as healthy after a failure. Defaults to 1; must be 1 for liveness and startup probes.
  failureThreshold: Consecutive failures needed to count as failed. Defaults to 3; minimum 1.
  terminationGracePeriodSeconds: Grace period for the container's shutdown when the probe fails, overriding the pod's. Not allowed for readiness probes.
ProbeHandler: The action a probe takes; exactly one must be set.
  exec: Run a command in the container.
  httpGet: Send an HTTP GET request.
  tcpSocket: Open a TCP connection.
  grpc: Call the gRPC health checking protocol.
ExecAction: Runs a command in the container.
  command: Command line to run, in the container's root directory, without a shell (invoke one explicitly to use pipes). Exit status 0 is success.
HTTPGetAction: An HTTP GET request. A status code from 200 to 399 is success.
  path: Path of the request.
  port!: Port number or name of the container port to connect to.
  host: Host to connect to. Defaults to the pod's IP; set the "Host" header with httpHeaders instead.
  scheme: Scheme of the request: HTTP or HTTPS. Defaults to HTTP.
  httpHeaders: Headers added to the request.
HTTPHeader: An HTTP header.
  name!: Header name; normalized when the request is sent.
  value!: Header value.
TCPSocketAction: Opens a TCP connection; success if it connects.
  port!: Port number or name of the container port to connect to.
  host: Host to connect to. Defaults to the pod's IP.
GRPCAction: Calls the gRPC health checking protocol.
  port!: Port number of the gRPC service, 1-65535.
  service: Service name sent in the HealthCheckRequest. Defaults to "" (the server's overall health).
Lifecycle: Actions the system runs on container lifecycle events.
  postStart: Runs right after the container is created. If it fails, the container is terminated and restarted per the restart policy.
  preStop: Runs before the container is terminated by an API request or management event; the termination grace period includes it.
LifecycleHandler: A lifecycle action; exactly one must be set.
  exec: Run a command in the container.
  httpGet: Send an HTTP GET request.
  tcpSocket: Deprecated; kept for compatibility and not validated.
  sleep: Sleep for a number of seconds.
SleepAction: Sleeps before continuing.
  seconds!: Seconds to sleep.
SecurityContext: Security settings of a container; these override the pod's securityContext.
  capabilities: Linux capabilities to add or drop. Defaults to the runtime's set.
  privileged: Run as privileged: like root on the host. Defaults to false.
  seLinuxOptions: SELinux context of the container.
  windowsOptions: Windows-specific settings.
  runAsUser: UID the container's process runs as. Defaults to the image's user.
  runAsGroup: Primary GID of the container's process.
  runAsNonRoot: When true, the kubelet refuses to start the container if it would run as UID 0.
  readOnlyRootFilesystem: Mount the container's root filesystem read-only. Defaults to false.
  allowPrivilegeEscalation: Whether a process may gain more privileges than its parent (the no_new_privs flag). Always true when privileged or with CAP_SYS_ADMIN.
  procMount: Kind of /proc mount: Default (masked and read-only paths) or Unmasked.
  seccompProfile: Seccomp profile of the container, overriding the pod's.
  appArmorProfile: AppArmor profile of the container, overriding the pod's.
Capabilities: Linux capabilities to add to or drop from a container.
  add: Capabilities to add, e.g. NET_ADMIN.
  drop: Capabilities to drop, e.g. ALL.
SELinuxOptions: SELinux labels of a container.
  user: SELinux user label.
  role: SELinux role label.
  type: SELinux type label.
  level: SELinux level label.
WindowsSecurityContextOptions: Windows-specific security settings.
  gmsaCredentialSpecName: Name of the GMSA credential spec to use.
  gmsaCredentialSpec: Contents of the GMSA credential spec named by gmsaCredentialSpecName, inlined by the admission webhook.
  runAsUserName: Windows user name the entrypoint runs as. Defaults to the image's user.
  hostProcess: Run as a Windows host process container.
SeccompProfile: A seccomp profile.
  type!: Kind of profile: Localhost, RuntimeDefault or Unconfined.
  localhostProfile: Path of a profile file on the node, relative to the kubelet's seccomp directory. Required (only) for type Localhost.
AppArmorProfile: An AppArmor profile.
  type!: Kind of profile: Localhost, RuntimeDefault or Unconfined.
  localhostProfile: Name of a profile loaded on the node. Required (only) for type Localhost.
)DESC"
      R"DESC(
# ---- volumes ----
Volume < VolumeSource: A named volume of a pod, which its containers can mount.
  name!: Name of the volume, a DNS label unique within the pod.
VolumeSource: Where a volume's data comes from; exactly one source must be set.
  hostPath: A file or directory on the node, exposed directly to the container. Mostly for system agents; most containers do not need it.
  emptyDir: An empty directory created for the pod and deleted with it.
  gcePersistentDisk: Deprecated: a GCE persistent disk; use the pd.csi.storage.gke.io CSI driver.
  awsElasticBlockStore: Deprecated: an AWS EBS disk; use the ebs.csi.aws.com CSI driver.
  gitRepo: Deprecated: a git repository cloned at a revision. Clone into an emptyDir from an init container instead.
  secret: The keys of a Secret as files.
  nfs: An NFS export mounted on the node.
  iscsi: An iSCSI disk attached to the node.
  glusterfs: Deprecated: a GlusterFS mount; no longer supported.
  persistentVolumeClaim: The volume bound to a PersistentVolumeClaim in the pod's namespace.
  rbd: Deprecated: a Ceph RBD image; no longer supported.
  flexVolume: Deprecated: a volume provisioned by a FlexVolume driver; use a CSI driver.
  cinder: Deprecated: an OpenStack Cinder volume; use the cinder.csi.openstack.org CSI driver.
  cephfs: Deprecated: a CephFS mount; no longer supported.
  flocker: Deprecated: a Flocker dataset; no longer supported.
  downwardAPI: Fields of the pod and its containers' resources as files.
  fc: A Fibre Channel disk attached to the node.
  azureFile: Deprecated: an Azure File share; use the file.csi.azure.com CSI driver.
  configMap: The keys of a ConfigMap as files.
  vsphereVolume: Deprecated: a vSphere VMDK; use the csi.vsphere.vmware.com CSI driver.
  quobyte: Deprecated: a Quobyte volume; no longer supported.
  azureDisk: Deprecated: an Azure data disk; use the disk.csi.azure.com CSI driver.
  photonPersistentDisk: Deprecated: a Photon Controller disk; no longer supported.
  portworxVolume: Deprecated: a Portworx volume; use the pxd.portworx.com CSI driver.
  scaleIO: Deprecated: a ScaleIO volume; no longer supported.
  projected: Several sources (secrets, configMaps, downward API, service account tokens) projected into one directory.
  storageos: Deprecated: a StorageOS volume; no longer supported.
  csi: An ephemeral volume provided by a CSI driver.
  ephemeral: A volume from a PersistentVolumeClaim created for the pod from a template and deleted with it.
  image: An OCI image or artifact mounted read-only.
HostPathVolumeSource: A path on the node.
  path!: Path on the node; a symlink is followed to its target.
  type: What must exist at the path: "" (no check, the default), DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice or BlockDevice.
EmptyDirVolumeSource: An empty directory that lives as long as the pod.
  medium: Storage medium backing the directory: "" (the node's disk, the default) or Memory (tmpfs).
  sizeLimit: Largest size of the directory; exceeding it evicts the pod. For Memory, the smaller of this and the pod's memory limits applies. Defaults to no limit.
GCEPersistentDiskVolumeSource: A GCE persistent disk.
  pdName!: Name of the disk in GCE.
  fsType: Filesystem type to mount, e.g. ext4 or xfs. Defaults to ext4.
  partition: Partition of the disk to mount; 0 (the default) mounts the whole disk.
  readOnly: Mount read-only. Defaults to false.
AWSElasticBlockStoreVolumeSource: An AWS EBS disk.
  volumeID!: ID of the EBS volume.
  fsType: Filesystem type to mount, e.g. ext4 or xfs. Defaults to ext4.
  partition: Partition of the disk to mount; 0 (the default) mounts the whole disk.
  readOnly: Mount read-only. Defaults to false.
GitRepoVolumeSource: A git repository checked out into the volume.
  repository!: URL of the repository.
  revision: Commit hash to check out.
  directory: Directory to clone into; "." clones into the volume's root. Must not contain "..". Defaults to a subdirectory named after the repository.
SecretVolumeSource: A Secret's keys as files.
  secretName: Name of the Secret in the pod's namespace.
  items: Keys to project and the paths they go to. Without it, every key becomes a file named after it; a listed key that does not exist is an error unless optional.
  defaultMode: Permission bits of the created files, 0000-0777 (octal in YAML). Defaults to 0644.
  optional: Whether the Secret or its keys may be missing.
ConfigMapVolumeSource < LocalObjectReference: A ConfigMap's keys as files.
  items: Keys to project and the paths they go to. Without it, every key becomes a file named after it; a listed key that does not exist is an error unless optional.
  defaultMode: Permission bits of the created files, 0000-0777 (octal in YAML). Defaults to 0644.
  optional: Whether the ConfigMap or its keys may be missing.
KeyToPath: A key projected to a file.
  key!: The key to project.
  path!: Relative path of the file; must not contain ".." or start with it.
  mode: Permission bits of this file, 0000-0777; defaults to the volume's defaultMode.
NFSVolumeSource: An NFS export.
  server!: Hostname or IP address of the NFS server.
  path!: Path exported by the server.
  readOnly: Mount read-only. Defaults to false.
ISCSIVolumeSource: An iSCSI disk, attached read-write once.
  targetPortal!: iSCSI target portal: IP address or hostname, with the port when it is not 3260.
  iqn!: iSCSI Qualified Name of the target.
  lun!: iSCSI target LUN number.
  iscsiInterface: iSCSI interface name for the transport. Defaults to "default" (tcp).
  fsType: Filesystem type to mount. Defaults to ext4.
  readOnly: Mount read-only. Defaults to false.
  portals: Extra target portals, as in targetPortal.
  chapAuthDiscovery: Use iSCSI discovery CHAP authentication.
  chapAuthSession: Use iSCSI session CHAP authentication.
  secretRef: Secret holding the CHAP credentials.
  initiatorName: Custom iSCSI initiator name; a new interface "<portal>:<name>" is created for the connection.
ISCSIPersistentVolumeSource < ISCSIVolumeSource: An iSCSI disk, attached read-write once.
GlusterfsVolumeSource: A GlusterFS mount.
  endpoints!: Name of the Endpoints object listing the GlusterFS servers.
  path!: GlusterFS volume path.
  readOnly: Mount read-only. Defaults to false.
GlusterfsPersistentVolumeSource < GlusterfsVolumeSource: A GlusterFS mount.
  endpointsNamespace: Namespace of the Endpoints object. Defaults to the namespace of the claim bound to the volume.
PersistentVolumeClaimVolumeSource: A reference to a PersistentVolumeClaim in the pod's namespace.
  claimName!: Name of the claim.
  readOnly: Mount read-only, overriding the claim's setting. Defaults to false.
RBDVolumeSource: A Ceph RBD image.
  monitors!: Ceph monitor addresses.
  image!: Name of the RBD image.
  fsType: Filesystem type to mount. Defaults to ext4.
  pool: RADOS pool name. Defaults to "rbd".
  user: RADOS user name. Defaults to "admin".
  keyring: Path of the key ring for the user. Defaults to /etc/ceph/keyring.
  secretRef: Secret with the user's authentication key, overriding keyring.
  readOnly: Mount read-only. Defaults to false.
RBDPersistentVolumeSource < RBDVolumeSource: A Ceph RBD image.
FlexVolumeSource: A volume provided by an exec-based FlexVolume driver.
  driver!: Name of the driver.
  fsType: Filesystem type to mount; the default depends on the driver.
  secretRef: Secret passed to the driver's scripts.
  readOnly: Mount read-only. Defaults to false.
  options: Extra command options for the driver.
FlexPersistentVolumeSource < FlexVolumeSource: A volume provided by an exec-based FlexVolume driver.
CinderVolumeSource: An OpenStack Cinder volume.
  volumeID!: ID of the volume in Cinder.
  fsType: Filesystem type to mount. Defaults to ext4.
  readOnly: Mount read-only. Defaults to false.
  secretRef: Secret with the parameters to connect to OpenStack.
CinderPersistentVolumeSource < CinderVolumeSource: An OpenStack Cinder volume.
CephFSVolumeSource: A CephFS mount.
  monitors!: Ceph monitor addresses.
  path: Path within the filesystem to mount. Defaults to /.
  user: RADOS user name. Defaults to "admin".
  secretFile: Path of the user's key ring. Defaults to /etc/ceph/user.secret.
  secretRef: Secret with the user's authentication key, overriding secretFile.
  readOnly: Mount read-only. Defaults to false.
CephFSPersistentVolumeSource < CephFSVolumeSource: A CephFS mount.
FlockerVolumeSource: A Flocker dataset; set exactly one of the two fields.
  datasetName: Name of the dataset, stored as metadata.
  datasetUUID: UUID of the dataset.
DownwardAPIVolumeSource: Pod fields and container resources as files.
  items: The files to create.
  defaultMode: Permission bits of the created files, 0000-0777. Defaults to 0644.
DownwardAPIVolumeFile: A file holding a pod field or a container resource.
  path!: Relative path of the file; must not contain "..".
  fieldRef: Pod field to write: metadata.name, metadata.namespace, metadata.labels, metadata.annotations or metadata.uid.
  resourceFieldRef: Container resource to write (limits or requests of cpu, memory, ephemeral-storage).
  mode: Permission bits of this file, 0000-0777; defaults to the volume's defaultMode.
FCVolumeSource: A Fibre Channel disk, attached read-write once.
  targetWWNs: Target world wide names.
  lun: Target LUN number.
  wwids: World wide identifiers; set either these or targetWWNs with lun.
  fsType: Filesystem type to mount. Defaults to ext4.
  readOnly: Mount read-only. Defaults to false.
AzureFileVolumeSource: An Azure File share.
  secretName!: Name of the Secret with the storage account name and key.
  shareName!: Name of the share.
  readOnly: Mount read-only. Defaults to false.
AzureFilePersistentVolumeSource < AzureFileVolumeSource: An Azure File share.
  secretNamespace: Namespace of the Secret. Defaults to the pod's namespace.
VsphereVirtualDiskVolumeSource: A vSphere VMDK.
  volumePath!: Path of the VMDK.
  fsType: Filesystem type to mount. Defaults to ext4.
  storagePolicyName: Name of the storage policy (SPBM profile).
  storagePolicyID: ID of the storage policy.
QuobyteVolumeSource: A Quobyte volume.
  registry!: Registry services as host:port pairs, comma-separated.
  volume!: Name of an existing Quobyte volume.
  readOnly: Mount read-only. Defaults to false.
  user: User that owns the mount. Defaults to the service account user.
  group: Group that owns the mount. Defaults to no group.
  tenant: Tenant owning the volume, for dynamically provisioned volumes.
AzureDiskVolumeSource: An Azure data disk.
  diskName!: Name of the data disk in blob storage.
  diskURI!: URI of the data disk in blob storage.
  cachingMode: Host caching mode: None, ReadOnly or ReadWrite. Defaults to ReadWrite.
  fsType: Filesystem type to mount. Defaults to ext4.
  readOnly: Mount read-only. Defaults to false.
  kind: Kind of disk: Shared, Dedicated or Managed. Defaults to Shared.
PhotonPersistentDiskVolumeSource: A Photon Controller disk.
  pdID!: ID of the disk.
  fsType: Filesystem type to mount. Defaults to ext4.
PortworxVolumeSource: A Portworx volume.
  volumeID!: ID of the volume.
  fsType: Filesystem type to mount. Defaults to ext4.
  readOnly: Mount read-only. Defaults to false.
ScaleIOVolumeSource: A ScaleIO volume.
  gateway!: Address of the ScaleIO API gateway.
  system!: Name of the storage system.
  secretRef!: Secret with the ScaleIO user's credentials.
  sslEnabled: Use SSL to talk to the gateway. Defaults to false.
  protectionDomain: Protection domain of the storage.
  storagePool: Storage pool of the protection domain.
  storageMode: ThickProvisioned or ThinProvisioned. Defaults to ThinProvisioned.
  volumeName: Name of a volume already created in the system.
  fsType: Filesystem type to mount. Defaults to xfs.
  readOnly: Mount read-only. Defaults to false.
ScaleIOPersistentVolumeSource < ScaleIOVolumeSource: A ScaleIO volume.
StorageOSVolumeSource: A StorageOS volume.
  volumeName: Name of the volume, unique within a namespace.
  volumeNamespace: StorageOS namespace of the volume. Defaults to the pod's namespace.
  fsType: Filesystem type to mount. Defaults to ext4.
  readOnly: Mount read-only. Defaults to false.
  secretRef: Secret with the StorageOS API credentials.
StorageOSPersistentVolumeSource < StorageOSVolumeSource: A StorageOS volume.
ProjectedVolumeSource: Several volume sources projected into one directory.
  sources!: The sources to project.
  defaultMode: Permission bits of the created files, 0000-0777. Defaults to 0644.
VolumeProjection: A source of a projected volume; exactly one field must be set.
  secret: Keys of a Secret.
  configMap: Keys of a ConfigMap.
  downwardAPI: Pod fields and container resources.
  serviceAccountToken: A token of the pod's service account.
  clusterTrustBundle: Certificates of ClusterTrustBundle objects.
SecretProjection < LocalObjectReference: A Secret's keys projected into a volume.
  items: Keys to project and their paths; all keys when omitted.
  optional: Whether the Secret or its keys may be missing.
ConfigMapProjection < LocalObjectReference: A ConfigMap's keys projected into a volume.
  items: Keys to project and their paths; all keys when omitted.
  optional: Whether the ConfigMap or its keys may be missing.
DownwardAPIProjection: Pod fields and container resources projected into a volume.
  items: The files to create.
ServiceAccountTokenProjection: A service account token written to a file and refreshed by the kubelet before it expires.
  audience: Audience the token is for. Defaults to the API server's identifier.
  expirationSeconds: Requested lifetime of the token; the kubelet rotates it at 80% of that. At least 600. Defaults to 3600.
  path!: Path of the token file, relative to the mount point.
ClusterTrustBundleProjection: Certificates from ClusterTrustBundle objects written to a file.
  name: Name of one ClusterTrustBundle; exclusive with signerName and labelSelector.
  signerName: Select all bundles of this signer (with labelSelector).
  labelSelector: Bundles matching this selector, among those of signerName.
  path!: Path of the file, relative to the mount point.
  optional: Whether a missing bundle is allowed; the file is then empty. Defaults to false.
CSIVolumeSource: An ephemeral volume of a CSI driver.
  driver!: Name of the CSI driver.
  readOnly: Mount read-only. Defaults to false.
  fsType: Filesystem type to mount, e.g. ext4; the driver picks one when empty.
  volumeAttributes: Driver-specific properties of the volume.
  nodePublishSecretRef: Secret passed to the driver's NodePublishVolume and NodeUnpublishVolume calls.
EphemeralVolumeSource: A volume backed by a PersistentVolumeClaim that lives as long as the pod.
  volumeClaimTemplate: Template of the claim, which is created as "<pod>-<volume>" and owned by the pod.
PersistentVolumeClaimTemplate: Template of a PersistentVolumeClaim for an ephemeral volume.
  metadata: Labels and annotations copied to the claim; other fields are rejected.
  spec!: Specification of the claim, copied unchanged.
ImageVolumeSource: An OCI image or artifact mounted as a volume.
  reference: Image or artifact reference, as in a container's image.
  pullPolicy: When the image is pulled: Always, Never or IfNotPresent, as for containers.
LocalVolumeSource: A local disk or directory on a node (needs nodeAffinity on the PersistentVolume).
  path!: Full path on the node: a directory or a block device.
  fsType: Filesystem type to mount, for block devices only; chosen automatically when empty.
CSIPersistentVolumeSource: A volume managed by a CSI driver.
  driver!: Name of the CSI driver.
  volumeHandle!: The driver's identifier of the volume.
  readOnly: Attach and mount read-only. Defaults to false.
  fsType: Filesystem type to mount, e.g. ext4.
  volumeAttributes: Driver-specific properties of the volume.
  controllerPublishSecretRef: Secret passed to ControllerPublishVolume and ControllerUnpublishVolume.
  nodeStageSecretRef: Secret passed to NodeStageVolume and NodeUnstageVolume.
  nodePublishSecretRef: Secret passed to NodePublishVolume and NodeUnpublishVolume.
  controllerExpandSecretRef: Secret passed to ControllerExpandVolume.
  nodeExpandSecretRef: Secret passed to NodeExpandVolume.
SecretReference: A Secret, by name and namespace.
  name: Name of the Secret, unique within its namespace.
  namespace: Namespace of the Secret.
)DESC"
      R"DESC(
# ---- pod status ----
PodStatus: Observed state of a pod. May lag behind the real state of the system.
  phase: Coarse summary of where the pod is in its lifecycle: Pending, Running, Succeeded, Failed or Unknown.
  conditions: Current service state of the pod: PodScheduled, Initialized, ContainersReady, Ready and others.
  message: Human-readable message explaining why the pod is in this state.
  reason: Brief CamelCase reason for the pod's state, e.g. Evicted.
  nominatedNodeName: Node the scheduler preempted other pods on for this pod; the pod may still land elsewhere.
  hostIP: IP address of the node the pod is assigned to; empty until scheduled.
  hostIPs: IP addresses of the node, one per family; the first equals hostIP.
  podIP: IP address allocated to the pod, routable within the cluster. Empty until allocated.
  podIPs: IP addresses allocated to the pod, at most one per family; the first equals podIP.
  startTime: Time the kubelet acknowledged the pod, before any image was pulled.
  initContainerStatuses: Status of each init container.
  containerStatuses: Status of each application container.
  ephemeralContainerStatuses: Status of each ephemeral container.
  qosClass: Quality of Service class of the pod, from its resource requirements: Guaranteed, Burstable or BestEffort.
  resize: Status of an in-place resize of the pod's resources: Proposed, InProgress, Deferred or Infeasible.
  resourceClaimStatuses: Names of the ResourceClaims generated for the pod's resourceClaims.
PodCondition: One aspect of a pod's state.
  type!: Condition type, e.g. Ready or PodScheduled.
  status!: Whether the condition holds: True, False or Unknown.
  lastProbeTime: Last time the condition was probed.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition.
  message: Human-readable details of the last transition.
PodIP: An IP address of a pod.
  ip!: The IP address.
HostIP: An IP address of the pod's node.
  ip!: The IP address.
PodResourceClaimStatus: The ResourceClaim generated for one of a pod's resourceClaims.
  name!: Name of the entry in spec.resourceClaims.
  resourceClaimName: Name of the generated ResourceClaim; unset when none was needed.
ContainerStatus: Observed state of one container of a pod.
  name!: Name of the container, as in the pod's spec.
  state: Current state of the container.
  lastState: State of the previous run of the container, e.g. why it last terminated. Empty before the first restart.
  ready: Whether the container passes its readiness probe (true when it has none and is running).
  restartCount: Number of times the container has been restarted, counted from the kubelet's records.
  image: Image the container runs.
  imageID: ID (digest) of the image the container runs.
  containerID: ID of the container, as "<runtime>://<id>".
  started: Whether the container has passed its startup probe (true when it has none and is running).
  allocatedResources: Compute resources the node has allocated to the container.
  resources: Resource requests and limits in effect for the running container.
  volumeMounts: Status of the container's volume mounts.
  user: Identity the container's first process runs as, as reported by the runtime.
  allocatedResourcesStatus: Health of the devices allocated to the container.
ContainerState: State of a container; at most one field is set, and none means waiting.
  waiting: Details of a container that is not yet running.
  running: Details of a running container.
  terminated: Details of a container that has exited.
ContainerStateWaiting: A container that is not running yet.
  reason: Why it is waiting, e.g. ContainerCreating, ImagePullBackOff or CrashLoopBackOff.
  message: Details of why it is waiting.
ContainerStateRunning: A running container.
  startedAt: Time the container last (re)started.
ContainerStateTerminated: A container that has exited.
  exitCode!: Exit status of its last run.
  signal: Signal that ended it, if any.
  reason: Brief reason, e.g. Completed, Error or OOMKilled.
  message: Details of the termination, such as the termination message.
  startedAt: Time the run started.
  finishedAt: Time the run ended.
  containerID: ID of the container, as "<runtime>://<id>".
VolumeMountStatus: Status of a volume mount.
  name!: Name of the volume mount.
  mountPath!: Path of the mount in the container.
  readOnly: Whether the mount is read-only.
  recursiveReadOnly: Whether the read-only mount is recursive: Disabled or Enabled.
ContainerUser: Identity of a container's first process.
  linux: Linux UID, GID and groups.
LinuxContainerUser: A Linux identity.
  uid!: User ID.
  gid!: Primary group ID.
  supplementalGroups: Supplementary group IDs.
ResourceStatus: Health of the devices allocated for one resource.
  name!: Name of the resource, as in the container's resources.
  resources: Health of each device.
ResourceHealth: Health of one device.
  resourceID!: Identifier of the device, unique for the resource.
  health: Healthy, Unhealthy or Unknown.
# ---- PVC / PV ----
PersistentVolumeClaim: A user's request for storage, bound to a matching PersistentVolume.
  spec: The storage the claim asks for.
  status: Observed state of the claim: phase, bound capacity and conditions. Read-only.
PersistentVolumeClaimList: A list of PersistentVolumeClaims.
  items: The claims.
PersistentVolumeClaimSpec: The storage a claim asks for and how it is provided.
  accessModes: Access modes the volume must support: ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod.
  selector: Labels of PersistentVolumes the claim may bind to.
  resources: Minimum resources (storage) the volume must have; may be raised later for expandable volumes.
  volumeName: Name of the PersistentVolume to bind to.
  storageClassName: StorageClass to provision from; an empty string asks for no class. Unset uses the cluster's default class.
  volumeMode: Whether the volume is a formatted filesystem (Filesystem, the default) or a raw block device (Block).
  dataSource: An existing object (VolumeSnapshot or PersistentVolumeClaim) to populate the new volume from.
  dataSourceRef: The object to populate the volume from, of any kind with a populator; supersedes dataSource.
  volumeAttributesClassName: VolumeAttributesClass giving mutable attributes of the volume.
VolumeResourceRequirements: Storage requirements of a claim.
  limits: Maximum amount of each resource.
  requests: Minimum amount of each resource (e.g. storage) required.
TypedLocalObjectReference: A reference to an object of some kind in the same namespace.
  apiGroup!: API group of the referent; empty for the core group.
  kind!: Kind of the referent.
  name!: Name of the referent.
TypedObjectReference: A reference to an object of some kind, possibly in another namespace.
  apiGroup!: API group of the referent; empty for the core group.
  kind!: Kind of the referent.
  name!: Name of the referent.
  namespace: Namespace of the referent; another namespace needs a ReferenceGrant there. Defaults to the claim's.
PersistentVolumeClaimStatus: Observed state of a claim.
  phase: Pending, Bound or Lost.
  accessModes: Access modes of the bound volume.
  capacity: Capacity of the bound volume.
  conditions: Current conditions, e.g. Resizing.
  allocatedResources: Resources allocated to the claim, which may exceed the request during a resize.
  allocatedResourceStatuses: State of a resize of each resource.
  currentVolumeAttributesClassName: VolumeAttributesClass currently applied to the volume.
  modifyVolumeStatus: State of a pending change of the volume's attributes class.
PersistentVolumeClaimCondition: A condition of a claim.
  type!: Condition type, e.g. Resizing or FileSystemResizePending.
  status!: True, False or Unknown.
  lastProbeTime: Last time the condition was probed.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition.
  message: Human-readable details of the last transition.
ModifyVolumeStatus: State of a change of a volume's attributes class.
  targetVolumeAttributesClassName: The class being applied.
  status!: Pending, InProgress or Infeasible.
PersistentVolume: A piece of storage provisioned by an administrator or a storage class, bound to at most one claim.
  spec: The storage and how it is accessed.
  status: Observed state of the volume: phase and message. Read-only.
PersistentVolumeList: A list of PersistentVolumes.
  items: The volumes.
PersistentVolumeSpec < PersistentVolumeSource: The storage of a PersistentVolume.
  capacity: Capacity of the volume, e.g. storage: 10Gi.
  accessModes: Ways the volume can be mounted: ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod.
  claimRef: The claim the volume is bound to (both sides of a binding point at each other).
  persistentVolumeReclaimPolicy: What happens to the volume when its claim is deleted: Retain, Delete or Recycle (deprecated). Defaults to Retain for manual volumes, Delete for provisioned ones.
  storageClassName: StorageClass the volume belongs to; empty means none.
  mountOptions: Mount options, not validated: a wrong one makes the mount fail.
  volumeMode: Filesystem (the default) or Block.
  nodeAffinity: Nodes from which the volume can be accessed; pods using it are scheduled there.
  volumeAttributesClassName: VolumeAttributesClass of the volume.
PersistentVolumeSource < VolumeSource: The storage backing a PersistentVolume; exactly one source must be set.
  local: A local disk or directory on a node.
  hostPath: A directory on a single node, for testing only.
  csi: A volume managed by a CSI driver.
VolumeNodeAffinity: Nodes a volume is reachable from.
  required: Node selector that must match.
PersistentVolumeStatus: Observed state of a PersistentVolume.
  phase: Pending, Available, Bound, Released or Failed.
  message: Human-readable message about the state.
  reason: Brief CamelCase reason for a failure.
  lastPhaseTransitionTime: Time the phase last changed.
# ---- workloads ----
Deployment: Declarative updates for pods through ReplicaSets: it keeps the desired number of pods of the template running and rolls out changes.
  spec: Desired behavior of the Deployment.
  status: Most recently observed status of the Deployment. Read-only.
DeploymentList: A list of Deployments.
  items: The Deployments.
DeploymentSpec: Desired state of a Deployment.
  replicas: Number of desired pods. Defaults to 1.
  selector!: Label selector of the pods the Deployment manages; must match the template's labels. Immutable in apps/v1.
  template!: Template of the pods; its restartPolicy must be Always.
  strategy: How existing pods are replaced by new ones.
  minReadySeconds: Seconds a new pod must be ready, without a container crashing, to count as available. Defaults to 0.
  revisionHistoryLimit: Number of old ReplicaSets kept for rollback. Defaults to 10.
  paused: Whether the Deployment is paused: changes to the template do not roll out.
  progressDeadlineSeconds: Seconds the Deployment may make no progress before it is reported failed (Progressing condition with reason ProgressDeadlineExceeded). Defaults to 600.
DeploymentStrategy: How a Deployment replaces pods.
  type: Recreate (kill all old pods first) or RollingUpdate (replace gradually). Defaults to RollingUpdate.
  rollingUpdate: Rolling update parameters; only with type RollingUpdate.
RollingUpdateDeployment: Parameters of a rolling update.
  maxUnavailable: Maximum number (or percentage of desired pods, rounded down) of pods that may be unavailable during the update. Cannot be 0 together with maxSurge. Defaults to 25%.
  maxSurge: Maximum number (or percentage of desired pods, rounded up) of pods created above the desired count during the update. Cannot be 0 together with maxUnavailable. Defaults to 25%.
DeploymentStatus: Observed state of a Deployment.
  observedGeneration: The generation observed by the controller.
  replicas: Number of pods targeted by the Deployment (their labels match the selector).
  updatedReplicas: Number of pods with the current template.
  readyReplicas: Number of pods with a Ready condition.
  availableReplicas: Number of pods ready for at least minReadySeconds.
  unavailableReplicas: Number of pods still needed for the Deployment to be fully available.
  conditions: Latest observations of the Deployment's state: Available, Progressing, ReplicaFailure.
  collisionCount: Count of hash collisions for the Deployment's ReplicaSets, used to name the newest one.
DeploymentCondition: A condition of a Deployment.
  type!: Available, Progressing or ReplicaFailure.
  status!: True, False or Unknown.
  lastUpdateTime: Last time the condition was updated.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition, e.g. NewReplicaSetAvailable.
  message: Human-readable details of the last transition.
ReplicaSet: Keeps a given number of pods matching a selector running. Usually managed by a Deployment.
  spec: Desired behavior of the ReplicaSet.
  status: Most recently observed status of the ReplicaSet. Read-only.
ReplicaSetList: A list of ReplicaSets.
  items: The ReplicaSets.
ReplicaSetSpec: Desired state of a ReplicaSet.
  replicas: Number of desired pods. Defaults to 1.
  selector!: Label selector of the pods to count; must match the template's labels.
  template: Template of the pods created when there are too few.
  minReadySeconds: Seconds a new pod must be ready, without a container crashing, to count as available. Defaults to 0.
ReplicaSetStatus: Observed state of a ReplicaSet.
  replicas!: Number of pods matching the selector.
  fullyLabeledReplicas: Number of pods whose labels match the template's labels.
  readyReplicas: Number of ready pods.
  availableReplicas: Number of pods ready for at least minReadySeconds.
  observedGeneration: The generation observed by the controller.
  conditions: Latest observations of the ReplicaSet's state.
ReplicaSetCondition: A condition of a ReplicaSet.
  type!: Condition type, e.g. ReplicaFailure.
  status!: True, False or Unknown.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition.
  message: Human-readable details of the last transition.
StatefulSet: Pods with stable identities (ordinal names, stable storage and network names), created and updated in order.
  spec: Desired behavior of the StatefulSet.
  status: Most recently observed status of the StatefulSet. Read-only.
StatefulSetList: A list of StatefulSets.
  items: The StatefulSets.
StatefulSetSpec: Desired state of a StatefulSet.
  replicas: Number of desired pods. Defaults to 1.
  selector!: Label selector of the pods; must match the template's labels.
  template!: Template of the pods, each named "<set>-<ordinal>".
  volumeClaimTemplates: Claims each pod gets, named "<claim>-<pod>" and mounted by the template's volume of the same name.
  serviceName: Name of the headless Service that gives the pods their network identity "<pod>.<service>.<namespace>.svc".
  podManagementPolicy: How pods are created and deleted on scale: OrderedReady (one at a time, in order, the default) or Parallel.
  updateStrategy: How pods are updated when the template changes.
  revisionHistoryLimit: Number of old revisions (ControllerRevisions) kept. Defaults to 10.
  minReadySeconds: Seconds a new pod must be ready, without a container crashing, to count as available. Defaults to 0.
  persistentVolumeClaimRetentionPolicy: What happens to the claims from volumeClaimTemplates when the set is deleted or scaled down.
  ordinals: Numbering of the pods' ordinals.
StatefulSetUpdateStrategy: How a StatefulSet updates its pods.
  type: RollingUpdate (the default) or OnDelete (pods are replaced only when deleted).
  rollingUpdate: Rolling update parameters; only with type RollingUpdate.
RollingUpdateStatefulSetStrategy: Parameters of a StatefulSet rolling update.
  partition: Ordinal at or above which pods are updated; lower ordinals keep the old revision. Defaults to 0.
  maxUnavailable: Maximum number or percentage of pods that may be unavailable during the update. Defaults to 1.
StatefulSetPersistentVolumeClaimRetentionPolicy: Whether claims from volumeClaimTemplates are kept.
  whenDeleted: When the StatefulSet is deleted: Retain (the default) or Delete.
  whenScaled: When the StatefulSet is scaled down, for the removed pods: Retain (the default) or Delete.
StatefulSetOrdinals: Ordinal numbering of a StatefulSet's pods.
  start: First ordinal; pods are numbered from start to start+replicas-1. Defaults to 0.
StatefulSetStatus: Observed state of a StatefulSet.
  observedGeneration: The generation observed by the controller.
  replicas!: Number of pods created by the controller.
  readyReplicas: Number of pods with a Ready condition.
  currentReplicas: Number of pods at currentRevision.
  updatedReplicas: Number of pods at updateRevision.
  availableReplicas: Number of pods ready for at least minReadySeconds.
  currentRevision: Revision of the pods with ordinals below the update's progress.
  updateRevision: Revision of the current template.
  collisionCount: Count of hash collisions for the set's ControllerRevisions.
  conditions: Latest observations of the StatefulSet's state.
StatefulSetCondition: A condition of a StatefulSet.
  type!: Condition type.
  status!: True, False or Unknown.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition.
  message: Human-readable details of the last transition.
DaemonSet: Runs one copy of a pod on each eligible node.
  spec: Desired behavior of the DaemonSet.
  status: Most recently observed status of the DaemonSet. Read-only.
DaemonSetList: A list of DaemonSets.
  items: The DaemonSets.
DaemonSetSpec: Desired state of a DaemonSet.
  selector!: Label selector of the pods; must match the template's labels.
  template!: Template of the pods; one runs on every node the template's node selector and affinity allow.
  updateStrategy: How pods are replaced when the template changes.
  minReadySeconds: Seconds a new pod must be ready, without a container crashing, to count as available. Defaults to 0.
  revisionHistoryLimit: Number of old revisions kept. Defaults to 10.
DaemonSetUpdateStrategy: How a DaemonSet replaces its pods.
  type: RollingUpdate (the default) or OnDelete.
  rollingUpdate: Rolling update parameters; only with type RollingUpdate.
RollingUpdateDaemonSet: Parameters of a DaemonSet rolling update.
  maxUnavailable: Maximum number or percentage of nodes whose pod may be unavailable during the update. Defaults to 1.
  maxSurge: Maximum number or percentage of nodes that may run an updated pod next to the old one during the update. Defaults to 0.
DaemonSetStatus: Observed state of a DaemonSet.
  currentNumberScheduled!: Number of nodes running at least one daemon pod that should run one.
  numberMisscheduled!: Number of nodes running a daemon pod that should not.
  desiredNumberScheduled!: Number of nodes that should run the daemon pod.
  numberReady!: Number of nodes whose daemon pod is ready.
  observedGeneration: The generation observed by the controller.
  updatedNumberScheduled: Number of nodes running the current template's pod.
  numberAvailable: Number of nodes whose daemon pod is available (ready for minReadySeconds).
  numberUnavailable: Number of nodes that should run an available daemon pod and do not.
  collisionCount: Count of hash collisions for the DaemonSet's revisions.
  conditions: Latest observations of the DaemonSet's state.
DaemonSetCondition: A condition of a DaemonSet.
  type!: Condition type.
  status!: True, False or Unknown.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition.
  message: Human-readable details of the last transition.
ControllerRevision: An immutable snapshot of a controller's state data, used by StatefulSets and DaemonSets for updates and rollback.
  data: The serialized state (a patch of the template).
  revision!: Revision number of the state.
ControllerRevisionList: A list of ControllerRevisions.
  items: The ControllerRevisions.
)DESC"
      R"DESC(
# ---- Service ----
Service: A named abstraction of a set of pods (selected by labels) behind one virtual IP and DNS name, with a load-balancing proxy.
  spec: Desired behavior of the Service.
  status: Most recently observed status of the Service, e.g. its load balancer. Read-only.
ServiceList: A list of Services.
  items: The Services.
ServiceSpec: Desired state of a Service.
  ports: Ports the Service exposes.
  selector: Labels of the pods traffic is routed to. Empty or unset means the Service's endpoints are managed outside the cluster. Ignored for ExternalName.
  clusterIP: Virtual IP address of the Service, allocated at random unless given. "None" makes a headless Service. Cannot be changed once set (except to change the type).
  clusterIPs: Virtual IP addresses of the Service, at most one per family; the first equals clusterIP.
  type: How the Service is exposed: ClusterIP (the default), NodePort, LoadBalancer or ExternalName.
  externalIPs: Extra IP addresses on which nodes accept traffic for the Service. Not managed by Kubernetes.
  sessionAffinity: Session affinity: ClientIP keeps each client on one endpoint; None (the default) does not.
  loadBalancerIP: Deprecated: IP address requested for a LoadBalancer; support depends on the provider.
  loadBalancerSourceRanges: Client CIDRs allowed through a cloud load balancer, when the provider supports it.
  externalName: DNS name returned as a CNAME record for type ExternalName.
  externalTrafficPolicy: How traffic from external sources (node ports, load balancers) is routed: Cluster (any ready endpoint, the default) or Local (only endpoints on the receiving node, keeping the client address).
  internalTrafficPolicy: How traffic to the cluster IP is routed: Cluster (the default) or Local (only endpoints on the client's node).
  healthCheckNodePort: Node port of the health check for externalTrafficPolicy Local on a LoadBalancer. Allocated when unset.
  publishNotReadyAddresses: Include endpoints of pods that are not ready (e.g. for peer discovery in a StatefulSet). Defaults to false.
  sessionAffinityConfig: Parameters of session affinity.
  ipFamilies: IP families (IPv4, IPv6) of the Service, in order. Assigned from the cluster's families and ipFamilyPolicy when unset.
  ipFamilyPolicy: SingleStack, PreferDualStack or RequireDualStack. Defaults to SingleStack.
  allocateLoadBalancerNodePorts: Whether node ports are allocated for a LoadBalancer. Defaults to true.
  loadBalancerClass: Load balancer implementation that handles the Service; unset uses the default one. Immutable.
  trafficDistribution: Preference for how traffic is spread over endpoints, e.g. PreferClose (topologically close endpoints).
ServicePort: A port of a Service.
  name: Name of the port, a DNS label; required and unique when there are several ports. Matches the EndpointPort name.
  protocol: TCP, UDP or SCTP. Defaults to TCP.
  appProtocol: Application protocol of the port, e.g. an IANA service name or "kubernetes.io/h2c".
  port!: Port the Service listens on.
  targetPort: Number or name of the pods' port traffic goes to. Defaults to port. Ignored for headless Services.
  nodePort: Port on every node for NodePort and LoadBalancer types. Allocated from the node port range when unset.
SessionAffinityConfig: Parameters of session affinity.
  clientIP: Parameters of ClientIP affinity.
ClientIPConfig: Parameters of ClientIP session affinity.
  timeoutSeconds: Seconds a session sticks, 1-86400. Defaults to 10800 (3 hours).
ServiceStatus: Observed state of a Service.
  loadBalancer: Status of the load balancer, if any.
  conditions: Current conditions of the Service.
LoadBalancerStatus: Status of a load balancer.
  ingress: Ingress points of the load balancer.
LoadBalancerIngress: An ingress point of a load balancer.
  ip: IP address of the ingress point.
  hostname: Hostname of the ingress point (for DNS-based load balancers).
  ipMode: How traffic for ip reaches the Service: VIP (delivered to nodes with the ip as destination) or Proxy.
  ports: Status of the Service's ports on this ingress point.
PortStatus: Status of a port.
  port!: Port number.
  protocol!: TCP, UDP or SCTP.
  error: CamelCase error for the port, empty when none.
Endpoints: Addresses implementing a Service (the legacy form; see EndpointSlice).
  subsets: Sets of addresses and ports; the endpoints are the product of each subset's addresses and ports.
EndpointsList: A list of Endpoints.
  items: The Endpoints.
EndpointSubset: Addresses that share a set of ports.
  addresses: Ready addresses.
  notReadyAddresses: Addresses that are not ready yet or have failed readiness checks.
  ports: Port numbers available on the addresses.
EndpointAddress: An address of an endpoint.
  ip!: IP address of the endpoint.
  hostname: Hostname of the endpoint.
  nodeName: Node hosting the endpoint.
  targetRef: Object providing the endpoint, usually a pod.
EndpointPort: A port of an endpoint.
  name: Name of the port, matching the ServicePort name; optional with a single port.
  port!: Port number.
  protocol: TCP, UDP or SCTP. Defaults to TCP.
  appProtocol: Application protocol of the port.
# ---- config ----
ConfigMap: Non-confidential configuration data as key/value pairs, consumed by pods as environment variables or files.
  data: UTF-8 configuration data. Keys are alphanumerics, "-", "_" or "."; they must not overlap with binaryData's.
  binaryData: Binary configuration data, base64-encoded. Keys as for data, disjoint from data's.
  immutable: When true, data and binaryData cannot be changed (only the object deleted and recreated). Defaults to false.
ConfigMapList: A list of ConfigMaps.
  items: The ConfigMaps.
Secret: Sensitive data (passwords, tokens, keys) as key/value pairs, at most 1 MiB in total.
  data: The secret data, base64-encoded. Keys are alphanumerics, "-", "_" or ".".
  stringData: Write-only convenience: plain-text values merged into data on write (overriding data's keys). Never returned on reads.
  type: Type used for programmatic handling, e.g. Opaque (the default), kubernetes.io/tls or kubernetes.io/dockerconfigjson.
  immutable: When true, the data cannot be changed (only the object deleted and recreated). Defaults to false.
SecretList: A list of Secrets.
  items: The Secrets.
ServiceAccount: An identity for processes in pods, with the secrets they may use.
  secrets: Deprecated: Secrets holding legacy tokens of the account. Not used for pods' projected tokens.
  imagePullSecrets: Secrets added to the imagePullSecrets of pods running as this account.
  automountServiceAccountToken: Whether pods running as this account get a token mounted automatically; a pod's own setting wins.
ServiceAccountList: A list of ServiceAccounts.
  items: The ServiceAccounts.
ObjectReference: A reference to an object, with enough information to inspect or change it.
  kind: Kind of the referent.
  namespace: Namespace of the referent.
  name: Name of the referent.
  uid: UID of the referent.
  apiVersion: API version of the referent.
  resourceVersion: Specific resourceVersion of the referent, if any.
  fieldPath: A piece of the object instead of the whole, e.g. "spec.containers{app}".
Binding: Binds a pod to a node; created through the pods/binding subresource by the scheduler.
  target!: The node to bind to.
# ---- namespaces and nodes ----
Namespace: A scope for names: most objects live in a namespace, and policies and quotas apply per namespace.
  spec: Desired state of the namespace.
  status: Observed state of the namespace. Read-only.
NamespaceList: A list of Namespaces.
  items: The Namespaces.
NamespaceSpec: Desired state of a namespace.
  finalizers: Values that must be removed before the namespace is deleted from storage.
NamespaceStatus: Observed state of a namespace.
  phase: Active or Terminating.
  conditions: Latest observations of the namespace's state.
NamespaceCondition: A condition of a namespace.
  type!: Condition type, e.g. NamespaceDeletionContentFailure.
  status!: True, False or Unknown.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition.
  message: Human-readable details of the last transition.
Node: A worker machine of the cluster, registered by its kubelet.
  spec: How the node is configured.
  status: Most recently observed status of the node, reported by its kubelet. Read-only.
NodeList: A list of Nodes.
  items: The Nodes.
NodeSpec: Configuration of a node.
  podCIDR: Pod IP range assigned to the node.
  podCIDRs: Pod IP ranges assigned to the node, at most one per family; the first equals podCIDR.
  providerID: Cloud provider ID of the node, "<provider>://<id>".
  unschedulable: When true, no new pods are scheduled onto the node (kubectl cordon). Defaults to false.
  taints: Taints that repel pods without a matching toleration.
  configSource: Deprecated: no longer used.
  externalID: Deprecated: not all kubelets set it.
Taint: A taint of a node: pods that do not tolerate it are affected according to its effect.
  key!: Taint key.
  value: Taint value.
  effect!: NoSchedule, PreferNoSchedule or NoExecute (evicts running pods that do not tolerate it).
  timeAdded: Time the taint was added (NoExecute taints only).
NodeConfigSource: Deprecated: a source of node configuration.
  configMap: A ConfigMap with the configuration.
ConfigMapNodeConfigSource: Deprecated: a ConfigMap holding node configuration.
  namespace!: Namespace of the ConfigMap.
  name!: Name of the ConfigMap.
  uid: UID of the ConfigMap.
  resourceVersion: resourceVersion of the ConfigMap.
  kubeletConfigKey!: Key of the ConfigMap holding the KubeletConfiguration.
NodeStatus: Observed state of a node.
  capacity: Total resources of the node (cpu, memory, pods, ephemeral-storage, ...).
  allocatable: Resources of the node available to pods; defaults to capacity.
  phase: Deprecated: no longer set.
  conditions: Current conditions of the node: Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable.
  addresses: Addresses of the node: InternalIP, ExternalIP, Hostname, ...
  daemonEndpoints: Endpoints of the daemons running on the node.
  nodeInfo: Identifiers and versions of the node's software.
  images: Container images on the node.
  volumesInUse: Volumes attached and mounted on the node.
  volumesAttached: Volumes attached to the node.
  config: Deprecated: status of the dynamic configuration.
  runtimeHandlers: Runtime handlers available on the node.
  features: Optional features the node supports.
NodeCondition: A condition of a node.
  type!: Ready, MemoryPressure, DiskPressure, PIDPressure or NetworkUnavailable.
  status!: True, False or Unknown.
  lastHeartbeatTime: Last time the kubelet reported the condition.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition, e.g. KubeletReady.
  message: Human-readable details of the last transition.
NodeAddress: An address of a node.
  type!: Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS.
  address!: The address.
NodeDaemonEndpoints: Ports of the daemons on a node.
  kubeletEndpoint: Endpoint the kubelet listens on.
DaemonEndpoint: A daemon's port.
  Port!: Port number.
NodeSystemInfo: Software identifiers of a node.
  machineID!: Machine ID (/etc/machine-id).
  systemUUID!: System UUID reported by the firmware.
  bootID!: Boot ID (changes on every boot).
  kernelVersion!: Kernel version (uname -r).
  osImage!: Operating system image (from /etc/os-release).
  containerRuntimeVersion!: Container runtime name and version, "<runtime>://<version>".
  kubeletVersion!: Kubelet version.
  kubeProxyVersion!: Deprecated: not reliable; do not use.
  operatingSystem!: Operating system: linux or windows.
  architecture!: CPU architecture, e.g. amd64.
ContainerImage: A container image on a node.
  names: Names (tags and digests) of the image.
  sizeBytes: Size of the image in bytes.
AttachedVolume: A volume attached to a node.
  name!: Name of the volume.
  devicePath!: Device path where the volume should be available.
NodeConfigStatus: Deprecated: status of the node's dynamic configuration.
  assigned: The assigned configuration.
  active: The active configuration.
  lastKnownGood: The last known good configuration.
  error: Error applying the configuration.
NodeRuntimeHandler: A runtime handler of a node.
  name!: Handler name; empty for the default handler.
  features: Features the handler supports.
NodeRuntimeHandlerFeatures: Features of a runtime handler.
  recursiveReadOnlyMounts: Whether recursive read-only mounts are supported.
  userNamespaces: Whether user namespaces are supported.
NodeFeatures: Optional features of a node.
  supplementalGroupsPolicy: Whether the supplementalGroupsPolicy field is honored.
# ---- batch ----
Job: Runs pods until a given number of them complete successfully.
  spec: Desired behavior of the Job.
  status: Most recently observed status of the Job. Read-only.
JobList: A list of Jobs.
  items: The Jobs.
JobSpec: Desired state of a Job.
  parallelism: Maximum number of pods running at once. Defaults to 1; 0 pauses the Job.
  completions: Number of successfully finished pods needed. Unset means any success finishes the Job once all pods end. Defaults to 1 (or parallelism when completions is unset).
  activeDeadlineSeconds: Seconds the Job may stay active, counted from its start, before the system terminates its pods and fails it (reason DeadlineExceeded).
  podFailurePolicy: How pod failures count toward backoffLimit, or fail or ignore them outright.
  successPolicy: When an Indexed Job is declared succeeded before all indexes complete.
  backoffLimit: Number of retries before the Job is marked failed. Defaults to 6.
  backoffLimitPerIndex: Retries allowed per index of an Indexed Job before that index fails.
  maxFailedIndexes: Number of failed indexes after which an Indexed Job fails (with backoffLimitPerIndex).
  selector: Label selector of the Job's pods. Generated by the system unless manualSelector is true.
  manualSelector: When true, selector is taken as given instead of generated; rarely needed.
  template!: Template of the Job's pods; restartPolicy must be Never or OnFailure.
  ttlSecondsAfterFinished: Seconds after the Job finishes (Complete or Failed) before it is deleted automatically. Unset means never.
  completionMode: NonIndexed (the default: completions are interchangeable) or Indexed (each pod gets an index, 0 to completions-1).
  suspend: When true, no pods are created and running ones are terminated. Defaults to false.
  podReplacementPolicy: When failed pods are replaced: TerminatingOrFailed or Failed (only once fully terminated).
  managedBy: Controller that manages the Job; empty or "kubernetes.io/job-controller" for the built-in one. Immutable.
PodFailurePolicy: Rules for handling pod failures, evaluated in order.
  rules!: The rules; the first one matching a failed pod applies.
PodFailurePolicyRule: What to do with a failed pod matching its requirements.
  action!: FailJob, FailIndex, Ignore (the failure is not counted) or Count (counted toward backoffLimit).
  onExitCodes: Requirement on container exit codes.
  onPodConditions: Requirements on pod conditions; any one matching suffices.
PodFailurePolicyOnExitCodesRequirement: Matches pods by container exit codes.
  containerName: Only this container's exit code is checked; all containers when unset.
  operator!: In or NotIn the values.
  values!: Exit codes, at most 255, without duplicates; 0 is not allowed with In.
PodFailurePolicyOnPodConditionsPattern: Matches pods by a condition.
  type!: Pod condition type, e.g. DisruptionTarget.
  status!: Required status of the condition: True, False or Unknown. Defaults to True.
SuccessPolicy: Criteria for an Indexed Job to succeed early; any one rule suffices.
  rules!: The rules.
SuccessPolicyRule: A success criterion; set succeededIndexes, succeededCount or both.
  succeededIndexes: Indexes that must succeed, as ranges like "1,3-5".
  succeededCount: Number of succeeded indexes needed (within succeededIndexes when set).
JobStatus: Observed state of a Job.
  conditions: Latest observations of the Job's state: Complete, Failed, Suspended, FailureTarget, SuccessCriteriaMet.
  startTime: Time the Job controller started the Job.
  completionTime: Time the Job completed successfully.
  active: Number of pending and running pods that are not terminating.
  ready: Number of active pods with a Ready condition.
  succeeded: Number of pods that succeeded.
  failed: Number of pods that failed.
  terminating: Number of pods that are terminating.
  completedIndexes: Indexes that succeeded in an Indexed Job, as ranges like "1,3-5".
  failedIndexes: Indexes that failed, with backoffLimitPerIndex.
  uncountedTerminatedPods: UIDs of finished pods not yet counted in succeeded or failed.
JobCondition: A condition of a Job.
  type!: Complete, Failed, Suspended, FailureTarget or SuccessCriteriaMet.
  status!: True, False or Unknown.
  lastProbeTime: Last time the condition was checked.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition, e.g. BackoffLimitExceeded.
  message: Human-readable details of the last transition.
UncountedTerminatedPods: UIDs of pods that ended but are not counted yet.
  succeeded: UIDs of succeeded pods.
  failed: UIDs of failed pods.
CronJob: Runs a Job on a time-based schedule.
  spec: Desired behavior of the CronJob, including its schedule.
  status: Most recently observed status of the CronJob. Read-only.
CronJobList: A list of CronJobs.
  items: The CronJobs.
CronJobSpec: Desired state of a CronJob.
  schedule!: Schedule in cron format, e.g. "*/5 * * * *" or "@hourly".
  timeZone: Time zone of the schedule, e.g. "Etc/UTC". Defaults to the controller's local time zone.
  startingDeadlineSeconds: Seconds after a missed schedule time within which the Job may still start; missed runs beyond it count as failed.
  concurrencyPolicy: What to do when a run is due while the previous Job is still running: Allow (the default), Forbid (skip the new run) or Replace (cancel the running Job).
  suspend: When true, no new Jobs are started; running ones continue. Defaults to false.
  jobTemplate!: Template of the Jobs created.
  successfulJobsHistoryLimit: Number of successful finished Jobs kept. Defaults to 3.
  failedJobsHistoryLimit: Number of failed finished Jobs kept. Defaults to 1.
JobTemplateSpec: The Jobs a CronJob creates.
  metadata: Metadata of the created Jobs.
  spec: Specification of the created Jobs.
CronJobStatus: Observed state of a CronJob.
  active: Jobs currently running.
  lastScheduleTime: Last time a Job was scheduled.
  lastSuccessfulTime: Last time a Job completed successfully.
)DESC"
      R"DESC(
# ---- networking ----
Ingress: Rules that route external HTTP(S) traffic to Services by host and path, implemented by an ingress controller.
  spec: Desired behavior of the Ingress: its rules, TLS and default backend.
  status: Current state of the Ingress, e.g. its load balancer addresses. Read-only.
IngressList: A list of Ingresses.
  items: The Ingresses.
IngressSpec: Desired state of an Ingress.
  ingressClassName: Name of the IngressClass whose controller implements the Ingress. Unset uses the default class, if any.
  defaultBackend: Backend for requests no rule matches. Unset leaves them to the controller.
  tls: TLS configuration; each entry covers some hosts on port 443 with one certificate.
  rules: Host rules; traffic matching none goes to defaultBackend.
IngressBackend: Where traffic goes: a Service or another resource; exactly one must be set.
  service: A Service in the Ingress's namespace.
  resource: An object in the Ingress's namespace, e.g. a storage bucket. Mutually exclusive with service.
IngressServiceBackend: A Service as a backend.
  name!: Name of the Service, in the Ingress's namespace.
  port: Port of the Service.
ServiceBackendPort: A Service port, by name or number; exactly one must be set.
  name: Name of the port.
  number: Numeric port.
IngressTLS: TLS settings for a set of hosts.
  hosts: Hosts the certificate covers; must match those used in rules. Defaults to the controller's wildcard host.
  secretName: Name of the Secret with the certificate and key for TLS on port 443. May be omitted for SNI-only routing.
IngressRule < IngressRuleValue: Routes requests for a host to backends by path.
  host: Fully qualified domain name to match (e.g. "foo.bar.com"), optionally with a leading "*." wildcard label. IP addresses and ports are not allowed. Empty matches every host.
IngressRuleValue: How requests to a host are routed.
  http: HTTP routing by path.
HTTPIngressRuleValue: A list of paths that map requests to backends.
  paths!: Paths and their backends.
HTTPIngressPath: A path and the backend its requests go to.
  path: Path matched against the request's path; must begin with "/" for Exact and Prefix. Unset matches everything.
  pathType!: How path matches: Exact, Prefix (element-wise on "/") or ImplementationSpecific (left to the IngressClass).
  backend!: Backend requests go to.
IngressStatus: Observed state of an Ingress.
  loadBalancer: Status of the load balancer.
IngressLoadBalancerStatus: Status of an Ingress's load balancer.
  ingress: Ingress points of the load balancer.
IngressLoadBalancerIngress: An ingress point of a load balancer.
  ip: IP address of the ingress point.
  hostname: Hostname of the ingress point.
  ports: Status of each port on this ingress point.
IngressPortStatus: Status of a port.
  port!: Port number.
  protocol!: TCP, UDP or SCTP.
  error: CamelCase error for the port, empty when none.
IngressClass: An Ingress implementation: which controller handles Ingresses of this class. The annotation ingressclass.kubernetes.io/is-default-class marks the default.
  spec: Desired state of the IngressClass.
IngressClassList: A list of IngressClasses.
  items: The IngressClasses.
IngressClassSpec: Desired state of an IngressClass.
  controller: Name of the controller implementing the class, a domain-prefixed path such as "example.com/ingress-controller". Immutable.
  parameters: A custom resource with extra configuration for the controller.
IngressClassParametersReference: A reference to a parameters object.
  apiGroup: API group of the object; empty for the core group.
  kind!: Kind of the object.
  name!: Name of the object.
  scope: Cluster (the default) or Namespace.
  namespace: Namespace of the object; required with scope Namespace.
NetworkPolicy: Which network traffic is allowed to and from a set of pods.
  spec: Desired behavior of the policy.
NetworkPolicyList: A list of NetworkPolicies.
  items: The NetworkPolicies.
NetworkPolicySpec: The pods a policy applies to and the traffic allowed.
  podSelector!: Pods the policy applies to, in the policy's namespace; empty selects all of them.
  ingress: Allowed incoming traffic; selected pods allow only what some rule (of any policy) matches.
  egress: Allowed outgoing traffic; selected pods allow only what some rule (of any policy) matches.
  policyTypes: Directions the policy applies to: Ingress, Egress or both. Defaults to Ingress, plus Egress when egress rules are present.
NetworkPolicyIngressRule: Allowed incoming traffic: it must match both ports and from.
  ports: Ports traffic may reach; empty or unset allows every port.
  from: Sources allowed; empty or unset allows every source.
NetworkPolicyEgressRule: Allowed outgoing traffic: it must match both ports and to.
  ports: Destination ports allowed; empty or unset allows every port.
  to: Destinations allowed; empty or unset allows every destination.
NetworkPolicyPort: A port (or range) and protocol.
  protocol: TCP, UDP or SCTP. Defaults to TCP.
  port: Port number or named port; unset matches every port.
  endPort: Last port of a range starting at port; needs a numeric port.
NetworkPolicyPeer: A set of peers; set ipBlock alone, or pod and/or namespace selectors.
  podSelector: Pods selected by label, in the namespaces namespaceSelector gives (default: the policy's namespace).
  namespaceSelector: Namespaces selected by label; empty selects all namespaces.
  ipBlock: A CIDR range, with exceptions.
IPBlock: An IP range.
  cidr!: The range, e.g. "192.168.1.0/24".
  except: Sub-ranges excluded from cidr.
# ---- discovery ----
EndpointSlice: A subset of the endpoints of a Service; one Service may have several slices.
  addressType!: Type of the addresses: IPv4, IPv6 or FQDN. Immutable.
  endpoints!: The endpoints, at most 1000.
  ports: Ports of every endpoint of the slice, at most 100. Empty means no ports are exposed.
EndpointSliceList: A list of EndpointSlices.
  items: The EndpointSlices.
Endpoint: One endpoint of a Service.
  addresses!: Addresses of the endpoint, all fungible; consumers use the first.
  conditions: Current state of the endpoint.
  hostname: Hostname of the endpoint, a DNS label.
  targetRef: Object providing the endpoint, usually a pod.
  deprecatedTopology: Deprecated topology labels; use nodeName and zone.
  nodeName: Node hosting the endpoint.
  zone: Zone the endpoint is in.
  hints: Hints for consuming the endpoint, e.g. topology-aware routing.
EndpointConditions: State of an endpoint.
  ready: Whether the endpoint is ready for traffic. Unknown (unset) is treated as ready. False while terminating, unless publishNotReadyAddresses.
  serving: Whether the endpoint is ready, also while it terminates.
  terminating: Whether the endpoint is terminating.
EndpointHints: Hints about consuming an endpoint.
  forZones: Zones that should consume the endpoint.
ForZone: A zone that should consume an endpoint.
  name!: Name of the zone.
# ---- policy and scheduling ----
PodDisruptionBudget: Limits the number of pods of a set that voluntary disruptions (evictions) may take down at once.
  spec: Desired behavior of the budget.
  status: Most recently observed status of the budget. Read-only.
PodDisruptionBudgetList: A list of PodDisruptionBudgets.
  items: The PodDisruptionBudgets.
PodDisruptionBudgetSpec: Desired state of a budget; set minAvailable or maxUnavailable, not both.
  minAvailable: Number or percentage of selected pods that must stay available after an eviction.
  maxUnavailable: Number or percentage of selected pods that may be unavailable after an eviction.
  selector: Pods the budget covers. An empty selector selects every pod in the namespace.
  unhealthyPodEvictionPolicy: When running but not-ready pods may be evicted: IfHealthyBudget (the default) or AlwaysAllow.
PodDisruptionBudgetStatus: Observed state of a budget.
  observedGeneration: The generation observed by the disruption controller.
  disruptedPods: Pods being evicted whose deletion the controller has not yet seen, with the time of the eviction.
  disruptionsAllowed!: Number of pod disruptions currently allowed.
  currentHealthy!: Number of healthy pods.
  desiredHealthy!: Minimum number of healthy pods required.
  expectedPods!: Number of pods the budget counts.
  conditions: Conditions of the budget, e.g. DisruptionAllowed.
Eviction: A request to evict a pod, honoring PodDisruptionBudgets; posted to the pods/eviction subresource.
  deleteOptions: Options for the deletion of the pod.
PriorityClass: A name for a pod priority value.
  value!: The priority; higher runs first. Up to 1 billion for user classes.
  globalDefault: Whether this class applies to pods without a priorityClassName. Only one class may be the default.
  description: When the class should be used.
  preemptionPolicy: PreemptLowerPriority (the default) or Never.
PriorityClassList: A list of PriorityClasses.
  items: The PriorityClasses.
ResourceQuota: Limits on the total resources of a namespace.
  spec: The enforced limits.
  status: Enforced limits and current usage. Read-only.
ResourceQuotaList: A list of ResourceQuotas.
  items: The ResourceQuotas.
ResourceQuotaSpec: The limits of a quota.
  hard: Limit of each named resource, e.g. pods, requests.cpu, count/deployments.apps.
  scopes: Scopes the objects counted must all match, e.g. Terminating or BestEffort.
  scopeSelector: Scope expressions the objects counted must match, ANDed with scopes.
ScopeSelector: Scope requirements, ANDed.
  matchExpressions: The requirements.
ScopedResourceSelectorRequirement: A requirement on a quota scope.
  scopeName!: The scope, e.g. PriorityClass.
  operator!: In, NotIn, Exists or DoesNotExist.
  values: Values for In and NotIn (non-empty); empty for Exists and DoesNotExist.
ResourceQuotaStatus: Enforced limits and usage of a quota.
  hard: Limits currently enforced.
  used: Current usage of each resource.
LimitRange: Default and bounding resource settings for the objects of a namespace.
  spec: The limits.
LimitRangeList: A list of LimitRanges.
  items: The LimitRanges.
LimitRangeSpec: The limits of a LimitRange.
  limits!: The limits, per kind of object.
LimitRangeItem: Limits for one kind of object.
  type!: Kind of object: Pod, Container or PersistentVolumeClaim.
  max: Maximum of each resource.
  min: Minimum of each resource.
  default: Default limit of each resource when none is set.
  defaultRequest: Default request of each resource when none is set.
  maxLimitRequestRatio: Maximum ratio of limit to request of each resource.
ReplicationController: The legacy form of a ReplicaSet: keeps a number of pods matching an equality selector running.
  spec: Desired behavior of the ReplicationController.
  status: Most recently observed status. Read-only.
ReplicationControllerList: A list of ReplicationControllers.
  items: The ReplicationControllers.
ReplicationControllerSpec: Desired state of a ReplicationController.
  replicas: Number of desired pods. Defaults to 1.
  selector: Labels of the pods to count. Defaults to the template's labels.
  template: Template of the pods created when there are too few.
  minReadySeconds: Seconds a new pod must be ready, without a container crashing, to count as available. Defaults to 0.
ReplicationControllerStatus < ReplicaSetStatus: Observed state of a ReplicationController.
ReplicationControllerCondition < ReplicaSetCondition: A condition of a ReplicationController.
# ---- events ----
Event: A report of something that happened in the cluster, about one object. Events expire after a while.
  involvedObject!: The object the event is about.
  regarding: The object the event is about.
  related: A second object involved, if any.
  reason: Short CamelCase reason for the event, e.g. Scheduled or BackOff.
  message: Human-readable description of the event.
  note: Human-readable description of the event, at most 1 kB.
  source: Component that reported the event.
  firstTimestamp: Time the event was first recorded.
  lastTimestamp: Time the event most recently occurred.
  count: Number of times the event occurred.
  type: Normal or Warning.
  eventTime: Time the event was first observed.
  series: Data about a series of repeated events.
  action: What was done, or failed, e.g. Binding.
  reportingComponent: Controller that emitted the event, e.g. kubernetes.io/kubelet.
  reportingController: Controller that emitted the event, e.g. kubernetes.io/kubelet.
  reportingInstance: Instance of the controller that emitted the event, e.g. the kubelet's node name.
  deprecatedSource: Deprecated: source of the event in the core/v1 form.
  deprecatedFirstTimestamp: Deprecated: firstTimestamp of the core/v1 form.
  deprecatedLastTimestamp: Deprecated: lastTimestamp of the core/v1 form.
  deprecatedCount: Deprecated: count of the core/v1 form.
EventList: A list of Events.
  items: The Events.
EventSource: The component that reported an event.
  component: Name of the component.
  host: Node the component runs on.
EventSeries: A series of repeated events.
  count: Number of occurrences in the series so far.
  lastObservedTime: Time of the last occurrence.
# ---- auth ----
TokenRequest: Requests a token for a service account (the serviceaccounts/token subresource).
  spec: The token requested.
  status: The issued token.
TokenRequestSpec: The token requested.
  audiences: Intended audiences of the token; defaults to the API server's.
  expirationSeconds: Requested lifetime of the token; the server may shorten it. Defaults to 3600.
  boundObjectRef: Object (Pod, Secret or Node) the token is bound to: the token stops being valid when it is deleted.
BoundObjectReference: The object a token is bound to.
  kind: Pod, Secret or Node.
  apiVersion: API version of the object.
  name: Name of the object.
  uid: UID of the object.
TokenRequestStatus: The issued token.
  token!: The opaque bearer token.
  expirationTimestamp!: Time the token expires.
TokenReview: Asks the server to authenticate a token; results may be cached.
  spec: The token to check.
  status: Whether the token is valid, and whose it is.
TokenReviewSpec: The token to check.
  token: The opaque bearer token.
  audiences: Audiences the token must be valid for, at least one of them.
TokenReviewStatus: Result of a token review.
  authenticated: Whether the token is valid.
  user: The user the token belongs to.
  audiences: Audiences the token is valid for, among those asked.
  error: Why the token could not be checked.
UserInfo: A user's identity.
  username: Name of the user.
  uid: Unique identifier of the user, stable over time.
  groups: Groups the user belongs to.
  extra: Further information from the authenticator.
SelfSubjectReview: Returns the identity of the caller as the server sees it (kubectl auth whoami).
  status: The caller's identity.
SelfSubjectReviewStatus: The caller's identity.
  userInfo: Attributes of the user.
SelfSubjectAccessReview: Checks whether the caller may perform an action (kubectl auth can-i).
  spec: The action to check.
  status: Whether it is allowed.
SelfSubjectAccessReviewSpec: An action to check; set exactly one of the two attribute sets.
  resourceAttributes: An action on a resource.
  nonResourceAttributes: An action on a non-resource path.
SubjectAccessReview: Checks whether a user or group may perform an action.
  spec: The user and action to check.
  status: Whether it is allowed.
LocalSubjectAccessReview: Checks whether a user or group may perform an action in a namespace.
  spec: The user and action to check; its namespace must be this object's.
  status: Whether it is allowed.
SubjectAccessReviewSpec: A user and an action; set exactly one of the two attribute sets.
  resourceAttributes: An action on a resource.
  nonResourceAttributes: An action on a non-resource path.
  user: User to check.
  groups: Groups of the user.
  extra: Extra attributes of the user.
  uid: UID of the user.
ResourceAttributes: An action on a resource, for authorization.
  namespace: Namespace of the action; empty means all namespaces for namespaced resources.
  verb: Verb, e.g. get, list, watch, create, update, delete, or "*".
  group: API group of the resource; "*" means all.
  version: API version of the resource; "*" means all.
  resource: Resource, e.g. pods; "*" means all.
  subresource: Subresource, e.g. log.
  name: Name of the object; empty means all.
  fieldSelector: Field selector of a list or watch.
  labelSelector: Label selector of a list or watch.
FieldSelectorAttributes: A field selector, for authorization.
  rawSelector: The selector as sent in the query.
  requirements: The parsed requirements.
LabelSelectorAttributes: A label selector, for authorization.
  rawSelector: The selector as sent in the query.
  requirements: The parsed requirements.
NonResourceAttributes: An action on a non-resource path.
  path: The URL path.
  verb: The HTTP verb (get, post, ...).
SubjectAccessReviewStatus: Result of an access review.
  allowed!: Whether the action is allowed.
  denied: Whether the action is explicitly denied (as opposed to not allowed).
  reason: Why it was allowed or denied.
  evaluationError: Error evaluating the rules; the result may still be usable.
SelfSubjectRulesReview: Lists the actions the caller may perform in a namespace.
  spec: The namespace to check.
  status: The rules that apply.
SelfSubjectRulesReviewSpec: The namespace to check.
  namespace: Namespace to evaluate rules in.
SubjectRulesReviewStatus: Rules that apply to a user in a namespace; possibly incomplete.
  resourceRules!: Allowed actions on resources.
  nonResourceRules!: Allowed actions on non-resource paths.
  incomplete!: True when the list is incomplete, e.g. with an external authorizer.
  evaluationError: Error evaluating the rules.
ResourceRule: Allowed actions on resources.
  verbs!: Allowed verbs; "*" means all.
  apiGroups: API groups; "*" means all.
  resources: Resources; "*" means all, "*/foo" subresource foo of all.
  resourceNames: Names of the objects; empty means all.
NonResourceRule: Allowed actions on non-resource paths.
  verbs!: Allowed verbs; "*" means all.
  nonResourceURLs: Paths, ending with "*" for a prefix.
# ---- rbac ----
Role: Namespaced permissions, granted by RoleBindings.
  rules: The permissions.
RoleList: A list of Roles.
  items: The Roles.
ClusterRole: Cluster-wide permissions, granted by ClusterRoleBindings or, within a namespace, RoleBindings.
  rules: The permissions.
  aggregationRule: Selects ClusterRoles whose rules are aggregated into this one; the controller then manages rules.
ClusterRoleList: A list of ClusterRoles.
  items: The ClusterRoles.
PolicyRule: Permitted actions on resources or non-resource paths.
  verbs!: Verbs allowed, e.g. get, list, create; "*" means all.
  apiGroups: API groups of the resources; "" is the core group and "*" all groups.
  resources: Resources the rule covers; "*" means all.
  resourceNames: Names of the objects the rule covers; empty means all.
  nonResourceURLs: Non-resource paths (e.g. /healthz), only in ClusterRoles bound cluster-wide; "*" as a suffix matches a prefix.
AggregationRule: How a ClusterRole is aggregated from others.
  clusterRoleSelectors: Selectors of the ClusterRoles whose rules are included.
RoleBinding: Grants the permissions of a Role or ClusterRole to subjects within a namespace.
  subjects: Users, groups and service accounts the role is granted to.
  roleRef!: The Role (in this namespace) or ClusterRole granted. Immutable.
RoleBindingList: A list of RoleBindings.
  items: The RoleBindings.
ClusterRoleBinding: Grants the permissions of a ClusterRole cluster-wide.
  subjects: Users, groups and service accounts the role is granted to.
  roleRef!: The ClusterRole granted. Immutable.
ClusterRoleBindingList: A list of ClusterRoleBindings.
  items: The ClusterRoleBindings.
Subject: A user, group or service account.
  kind!: User, Group or ServiceAccount.
  apiGroup: "" for service accounts, "rbac.authorization.k8s.io" for users and groups.
  name!: Name of the subject.
  namespace: Namespace of a service account; empty for users and groups.
RoleRef: The role a binding grants.
  apiGroup!: API group of the role, rbac.authorization.k8s.io.
  kind!: Role or ClusterRole.
  name!: Name of the role.
# ---- autoscaling ----
Scale: The scale subresource of a workload.
  spec: Desired number of replicas.
  status: Current number of replicas and their selector.
ScaleSpec: Desired scale.
  replicas: Desired number of replicas.
ScaleStatus: Observed scale.
  replicas!: Actual number of replicas.
  selector: Label selector of the replicas, in query form.
HorizontalPodAutoscaler: Scales a workload's replicas automatically from observed metrics.
  spec: Desired behavior of the autoscaler.
  status: Current state of the autoscaler. Read-only.
HorizontalPodAutoscalerList: A list of HorizontalPodAutoscalers.
  items: The HorizontalPodAutoscalers.
HorizontalPodAutoscalerSpec: Desired state of an autoscaler.
  scaleTargetRef!: The workload to scale (through its scale subresource).
  minReplicas: Lowest number of replicas. Defaults to 1.
  maxReplicas!: Highest number of replicas; at least minReplicas.
  targetCPUUtilizationPercentage: Target average CPU utilization, as a percentage of requests. Defaults to a policy of the autoscaler.
  metrics: Metrics that drive the replica count; the largest proposal wins. Defaults to 80% average CPU utilization.
  behavior: Scaling behavior up and down. Defaults apply when unset.
CrossVersionObjectReference: A reference to an object of some kind.
  kind!: Kind of the referent.
  name!: Name of the referent.
  apiVersion: API version of the referent.
HorizontalPodAutoscalerStatus: Observed state of an autoscaler.
  observedGeneration: The generation observed by the autoscaler.
  lastScaleTime: Last time the replica count changed.
  currentReplicas: Current number of replicas.
  desiredReplicas!: Replica count last computed.
  currentCPUUtilizationPercentage: Current average CPU utilization, as a percentage of requests.
  currentMetrics: Last read state of the metrics.
  conditions: Conditions of the autoscaler: AbleToScale, ScalingActive, ScalingLimited.
HorizontalPodAutoscalerCondition: A condition of an autoscaler.
  type!: AbleToScale, ScalingActive or ScalingLimited.
  status!: True, False or Unknown.
  lastTransitionTime: Last time the status changed.
  reason: CamelCase reason for the last transition.
  message: Human-readable details of the last transition.
MetricSpec: A metric to scale on; the source matching type must be set.
  type!: Object, Pods, Resource, ContainerResource or External.
  object: A metric of a single object.
  pods: A metric averaged over the target's pods.
  resource: A resource (cpu, memory) of the target's pods.
  containerResource: A resource of one container of the target's pods.
  external: A metric from outside the cluster.
ObjectMetricSource: A metric of an object.
  describedObject!: The object.
  metric!: The metric.
  target!: Target value.
PodsMetricSource: A metric averaged over pods.
  metric!: The metric.
  target!: Target value (AverageValue only).
ResourceMetricSource: A resource of the pods, as requested.
  name!: Name of the resource.
  target!: Target value.
ContainerResourceMetricSource: A resource of one container of the pods.
  name!: Name of the resource.
  container!: Name of the container.
  target!: Target value.
ExternalMetricSource: A metric from outside the cluster.
  metric!: The metric.
  target!: Target value.
MetricTarget: Target value of a metric.
  type!: Utilization, Value or AverageValue.
  value: Target value.
  averageValue: Target value averaged over pods.
  averageUtilization: Target average utilization, as a percentage of requests (Resource metrics).
MetricIdentifier: A metric, by name and selector.
  name!: Name of the metric.
  selector: Label selector narrowing the metric; passed to the metrics server.
HorizontalPodAutoscalerBehavior: Scaling behavior in both directions.
  scaleUp: Rules for scaling up. Defaults to the larger of 4 pods or 100% every 15 seconds, with no stabilization.
  scaleDown: Rules for scaling down. Defaults to removing up to 100% with a 300-second stabilization window.
HPAScalingRules: Rules for one scaling direction.
  stabilizationWindowSeconds: Seconds of past recommendations considered to avoid flapping, 0-3600.
  selectPolicy: Which policy applies: Max (the default), Min or Disabled.
  policies: Limits on the rate of change; at least one.
HPAScalingPolicy: A limit on the rate of scaling.
  type!: Pods or Percent.
  value!: Amount of change allowed; greater than zero.
  periodSeconds!: Window the policy applies over, 1-1800 seconds.
MetricStatus: Last read state of a metric.
  type!: Object, Pods, Resource, ContainerResource or External.
  object: State of an object metric.
  pods: State of a pods metric.
  resource: State of a resource metric.
  containerResource: State of a container resource metric.
  external: State of an external metric.
ObjectMetricStatus: State of an object metric.
  metric!: The metric.
  current!: Current value.
  describedObject!: The object.
PodsMetricStatus: State of a pods metric.
  metric!: The metric.
  current!: Current value.
ResourceMetricStatus: State of a resource metric.
  name!: Name of the resource.
  current!: Current value.
ContainerResourceMetricStatus: State of a container resource metric.
  name!: Name of the resource.
  container!: Name of the container.
  current!: Current value.
ExternalMetricStatus: State of an external metric.
  metric!: The metric.
  current!: Current value.
MetricValueStatus: Current value of a metric.
  value: Current value.
  averageValue: Current value averaged over pods.
  averageUtilization: Current average utilization, as a percentage of requests.
# ---- coordination, storage, certificates ----
Lease: A lease, used for leader election and node heartbeats.
  spec: The lease's holder and timing.
LeaseList: A list of Leases.
  items: The Leases.
LeaseSpec: State of a lease.
  holderIdentity: Identity of the current holder.
  leaseDurationSeconds: Seconds candidates wait after the last renewal before taking over.
  acquireTime: Time the current holder acquired the lease.
  renewTime: Time the holder last renewed the lease.
  leaseTransitions: Number of times the lease changed holders.
  strategy: Strategy for picking a leader in coordinated election.
  preferredHolder: Holder preferred by coordinated election.
StorageClass: A class of storage, with the provisioner and parameters volumes of the class are created with.
  provisioner!: Name of the volume plugin or CSI driver that provisions volumes.
  parameters: Provisioner-specific parameters, at most 512 entries.
  reclaimPolicy: Reclaim policy of provisioned volumes: Delete (the default) or Retain.
  mountOptions: Mount options of provisioned volumes, not validated.
  allowVolumeExpansion: Whether claims of the class may be expanded.
  volumeBindingMode: When volumes are provisioned and bound: Immediate (the default) or WaitForFirstConsumer.
  allowedTopologies: Topologies where volumes may be provisioned; empty means anywhere.
StorageClassList: A list of StorageClasses.
  items: The StorageClasses.
TopologySelectorTerm: Topology requirements, ANDed.
  matchLabelExpressions: Requirements on labels.
TopologySelectorLabelRequirement: A topology label requirement.
  key!: The label key.
  values!: Values, one of which must match.
CertificateSigningRequest: A request to have a certificate signed by a signer, approved or denied before it is issued.
  spec: The request.
  status: Approval conditions and the issued certificate.
CertificateSigningRequestList: A list of CertificateSigningRequests.
  items: The CertificateSigningRequests.
CertificateSigningRequestSpec: A certificate request.
  request!: PEM-encoded PKCS#10 certificate request.
  signerName!: Signer asked to sign, e.g. kubernetes.io/kube-apiserver-client.
  expirationSeconds: Requested validity of the certificate; the signer may ignore it. At least 600.
  usages: Key usages requested, e.g. client auth or digital signature.
  username: User who created the request. Set by the server.
  uid: UID of the user who created the request. Set by the server.
  groups: Groups of the user who created the request. Set by the server.
  extra: Extra attributes of the user who created the request. Set by the server.
CertificateSigningRequestStatus: State of a request.
  conditions: Approved, Denied or Failed.
  certificate: The issued certificate, PEM-encoded, set once signed.
CertificateSigningRequestCondition: A condition of a request.
  type!: Approved, Denied or Failed.
  status!: True, False or Unknown.
  reason: CamelCase reason.
  message: Human-readable details.
  lastUpdateTime: Last time the condition was updated.
  lastTransitionTime: Last time the status changed.
)DESC";
  return kText;
}

}  // namespace kiln::api::internal
