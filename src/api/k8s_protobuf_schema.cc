// kiln's own schema of Kubernetes' protobuf messages (v1.32 field numbers, the Go `json:` names and
// their omitempty/pointer/inline traits), read by k8s_protobuf.cc. Facts taken from the upstream
// k8s.io/api and k8s.io/apimachinery types (generated.proto numbering, types.go struct tags).
//
// Grammar, one item a line:
//   %ALIAS APIVERSION      message names with prefix ALIAS. live in APIVERSION ("*": any version)
//   ALIAS.Name [+tm] [@list]
//                          a message; +tm: embeds TypeMeta (the kind ALIAS.Name is a root: its
//                          apiVersion/kind select it); @list: a named Go slice whose only field
//                          is `1 items`, rendered as a bare JSON array
//    NUM JSON TYPE         a field: proto number, JSON name ("-" when inlined), type:
//       prefix ^           the Go struct is embedded (`json:",inline"`): its fields are promoted
//       prefix *           Go pointer: present on the wire => present in JSON, even when zero
//       prefix [ / {       repeated / map with string keys (map value type follows)
//       base               s string, b bool, i32 i64 u32 u64 integers, f32 f64, y bytes (base64),
//                          Time MicroTime Duration Quantity IntOrString RawExtension FieldsV1,
//                          or a message name
//       suffix !           no omitempty in the json tag: zero/absent values are still printed
// Fields are listed in field-number order. Kept compact on purpose: it is compiled into the binary.
#include <string_view>

namespace kiln::api::internal {

std::string_view k8sProtobufSchemaText() {
  static constexpr std::string_view kText =
      R"(
%core v1
%apps apps/v1
%batch batch/v1
%net networking.k8s.io/v1
%policy policy/v1
%sched scheduling.k8s.io/v1
%authn authentication.k8s.io/v1
%authz authorization.k8s.io/v1
%as1 autoscaling/v1
%as2 autoscaling/v2
%rbac rbac.authorization.k8s.io/v1
%coord coordination.k8s.io/v1
%disc discovery.k8s.io/v1
%storage storage.k8s.io/v1
%cert certificates.k8s.io/v1
%events events.k8s.io/v1
%meta *
core.Pod +tm
 1 metadata meta.ObjectMeta
 2 spec core.PodSpec
 3 status core.PodStatus
meta.ObjectMeta
 1 name s
 2 generateName s
 3 namespace s
 4 selfLink s
 5 uid s
 6 resourceVersion s
 7 generation i64
 8 creationTimestamp Time
 9 deletionTimestamp *Time
 10 deletionGracePeriodSeconds *i64
 11 labels {s
 12 annotations {s
 13 ownerReferences [meta.OwnerReference
 14 finalizers [s
 17 managedFields [meta.ManagedFieldsEntry
meta.OwnerReference
 1 kind s!
 3 name s!
 4 uid s!
 5 apiVersion s!
 6 controller *b
 7 blockOwnerDeletion *b
meta.ManagedFieldsEntry
 1 manager s
 2 operation s
 3 apiVersion s
 4 time *Time
 6 fieldsType s
 7 fieldsV1 *FieldsV1
 8 subresource s
core.PodSpec
 1 volumes [core.Volume
 2 containers [core.Container!
 3 restartPolicy s
 4 terminationGracePeriodSeconds *i64
 5 activeDeadlineSeconds *i64
 6 dnsPolicy s
 7 nodeSelector {s
 8 serviceAccountName s
 9 serviceAccount s
 10 nodeName s
 11 hostNetwork b
 12 hostPID b
 13 hostIPC b
 14 securityContext *core.PodSecurityContext
 15 imagePullSecrets [core.LocalObjectReference
 16 hostname s
 17 subdomain s
 18 affinity *core.Affinity
 19 schedulerName s
 20 initContainers [core.Container
 21 automountServiceAccountToken *b
 22 tolerations [core.Toleration
 23 hostAliases [core.HostAlias
 24 priorityClassName s
 25 priority *i32
 26 dnsConfig *core.PodDNSConfig
 27 shareProcessNamespace *b
 28 readinessGates [core.PodReadinessGate
 29 runtimeClassName *s
 30 enableServiceLinks *b
 31 preemptionPolicy *s
 32 overhead {Quantity
 33 topologySpreadConstraints [core.TopologySpreadConstraint
 34 ephemeralContainers [core.EphemeralContainer
 35 setHostnameAsFQDN *b
 36 os *core.PodOS
 37 hostUsers *b
 38 schedulingGates [core.PodSchedulingGate
 39 resourceClaims [core.PodResourceClaim
 40 resources *core.ResourceRequirements
core.Volume
 1 name s!
 2 - ^core.VolumeSource
core.VolumeSource
 1 hostPath *core.HostPathVolumeSource
 2 emptyDir *core.EmptyDirVolumeSource
 3 gcePersistentDisk *core.GCEPersistentDiskVolumeSource
 4 awsElasticBlockStore *core.AWSElasticBlockStoreVolumeSource
 5 gitRepo *core.GitRepoVolumeSource
 6 secret *core.SecretVolumeSource
 7 nfs *core.NFSVolumeSource
 8 iscsi *core.ISCSIVolumeSource
 9 glusterfs *core.GlusterfsVolumeSource
 10 persistentVolumeClaim *core.PersistentVolumeClaimVolumeSource
 11 rbd *core.RBDVolumeSource
 12 flexVolume *core.FlexVolumeSource
 13 cinder *core.CinderVolumeSource
 14 cephfs *core.CephFSVolumeSource
 15 flocker *core.FlockerVolumeSource
 16 downwardAPI *core.DownwardAPIVolumeSource
 17 fc *core.FCVolumeSource
 18 azureFile *core.AzureFileVolumeSource
 19 configMap *core.ConfigMapVolumeSource
 20 vsphereVolume *core.VsphereVirtualDiskVolumeSource
 21 quobyte *core.QuobyteVolumeSource
 22 azureDisk *core.AzureDiskVolumeSource
 23 photonPersistentDisk *core.PhotonPersistentDiskVolumeSource
 24 portworxVolume *core.PortworxVolumeSource
 25 scaleIO *core.ScaleIOVolumeSource
 26 projected *core.ProjectedVolumeSource
 27 storageos *core.StorageOSVolumeSource
 28 csi *core.CSIVolumeSource
 29 ephemeral *core.EphemeralVolumeSource
 30 image *core.ImageVolumeSource
core.HostPathVolumeSource
 1 path s!
 2 type *s
core.EmptyDirVolumeSource
 1 medium s
 2 sizeLimit *Quantity
core.GCEPersistentDiskVolumeSource
 1 pdName s!
 2 fsType s
 3 partition i32
 4 readOnly b
core.AWSElasticBlockStoreVolumeSource
 1 volumeID s!
 2 fsType s
 3 partition i32
 4 readOnly b
core.GitRepoVolumeSource
 1 repository s!
 2 revision s
 3 directory s
core.SecretVolumeSource
 1 secretName s
 2 items [core.KeyToPath
 3 defaultMode *i32
 4 optional *b
core.KeyToPath
 1 key s!
 2 path s!
 3 mode *i32
core.NFSVolumeSource
 1 server s!
 2 path s!
 3 readOnly b
core.ISCSIVolumeSource
 1 targetPortal s!
 2 iqn s!
 3 lun i32!
 4 iscsiInterface s
 5 fsType s
 6 readOnly b
 7 portals [s
 8 chapAuthDiscovery b
 10 secretRef *core.LocalObjectReference
 11 chapAuthSession b
 12 initiatorName *s
core.LocalObjectReference
 1 name s
core.GlusterfsVolumeSource
 1 endpoints s!
 2 path s!
 3 readOnly b
core.PersistentVolumeClaimVolumeSource
 1 claimName s!
 2 readOnly b
core.RBDVolumeSource
 1 monitors [s!
 2 image s!
 3 fsType s
 4 pool s
 5 user s
 6 keyring s
 7 secretRef *core.LocalObjectReference
 8 readOnly b
core.FlexVolumeSource
 1 driver s!
 2 fsType s
 3 secretRef *core.LocalObjectReference
 4 readOnly b
 5 options {s
core.CinderVolumeSource
 1 volumeID s!
 2 fsType s
 3 readOnly b
 4 secretRef *core.LocalObjectReference
core.CephFSVolumeSource
 1 monitors [s!
 2 path s
 3 user s
 4 secretFile s
 5 secretRef *core.LocalObjectReference
 6 readOnly b
core.FlockerVolumeSource
 1 datasetName s
 2 datasetUUID s
core.DownwardAPIVolumeSource
 1 items [core.DownwardAPIVolumeFile
 2 defaultMode *i32
core.DownwardAPIVolumeFile
 1 path s!
 2 fieldRef *core.ObjectFieldSelector
 3 resourceFieldRef *core.ResourceFieldSelector
 4 mode *i32
core.ObjectFieldSelector
 1 apiVersion s
 2 fieldPath s!
core.ResourceFieldSelector
 1 containerName s
 2 resource s!
 3 divisor Quantity
core.FCVolumeSource
 1 targetWWNs [s
 2 lun *i32
 3 fsType s
 4 readOnly b
 5 wwids [s
core.AzureFileVolumeSource
 1 secretName s!
 2 shareName s!
 3 readOnly b
core.ConfigMapVolumeSource
 1 - ^core.LocalObjectReference
 2 items [core.KeyToPath
 3 defaultMode *i32
 4 optional *b
core.VsphereVirtualDiskVolumeSource
 1 volumePath s!
 2 fsType s
 3 storagePolicyName s
 4 storagePolicyID s
core.QuobyteVolumeSource
 1 registry s!
 2 volume s!
 3 readOnly b
 4 user s
 5 group s
 6 tenant s
core.AzureDiskVolumeSource
 1 diskName s!
 2 diskURI s!
 3 cachingMode *s
 4 fsType *s
 5 readOnly *b
 6 kind *s
core.PhotonPersistentDiskVolumeSource
 1 pdID s!
 2 fsType s
core.ProjectedVolumeSource
 1 sources [core.VolumeProjection!
 2 defaultMode *i32
core.VolumeProjection
 1 secret *core.SecretProjection
 2 downwardAPI *core.DownwardAPIProjection
 3 configMap *core.ConfigMapProjection
 4 serviceAccountToken *core.ServiceAccountTokenProjection
 5 clusterTrustBundle *core.ClusterTrustBundleProjection
core.SecretProjection
 1 - ^core.LocalObjectReference
 2 items [core.KeyToPath
 4 optional *b
core.DownwardAPIProjection
 1 items [core.DownwardAPIVolumeFile
core.ConfigMapProjection
 1 - ^core.LocalObjectReference
 2 items [core.KeyToPath
 4 optional *b
core.ServiceAccountTokenProjection
 1 audience s
 2 expirationSeconds *i64
 3 path s!
core.ClusterTrustBundleProjection
 1 name *s
 2 signerName *s
 3 labelSelector *meta.LabelSelector
 4 path s!
 5 optional *b
meta.LabelSelector
 1 matchLabels {s
 2 matchExpressions [meta.LabelSelectorRequirement
meta.LabelSelectorRequirement
 1 key s!
 2 operator s!
 3 values [s
core.PortworxVolumeSource
 1 volumeID s!
 2 fsType s
 3 readOnly b
core.ScaleIOVolumeSource
 1 gateway s!
 2 system s!
 3 secretRef *core.LocalObjectReference!
 4 sslEnabled b
 5 protectionDomain s
 6 storagePool s
 7 storageMode s
 8 volumeName s
 9 fsType s
 10 readOnly b
core.StorageOSVolumeSource
 1 volumeName s
 2 volumeNamespace s
 3 fsType s
 4 readOnly b
 5 secretRef *core.LocalObjectReference
core.CSIVolumeSource
 1 driver s!
 2 readOnly *b
 3 fsType *s
 4 volumeAttributes {s
 5 nodePublishSecretRef *core.LocalObjectReference
core.EphemeralVolumeSource
 1 volumeClaimTemplate *core.PersistentVolumeClaimTemplate
core.PersistentVolumeClaimTemplate
 1 metadata meta.ObjectMeta
 2 spec core.PersistentVolumeClaimSpec!
core.PersistentVolumeClaimSpec
 1 accessModes [s
 2 resources core.VolumeResourceRequirements
 3 volumeName s
 4 selector *meta.LabelSelector
 5 storageClassName *s
 6 volumeMode *s
 7 dataSource *core.TypedLocalObjectReference
 8 dataSourceRef *core.TypedObjectReference
 9 volumeAttributesClassName *s
core.VolumeResourceRequirements
 1 limits {Quantity
 2 requests {Quantity
core.TypedLocalObjectReference
 1 apiGroup *s!
 2 kind s!
 3 name s!
core.TypedObjectReference
 1 apiGroup *s!
 2 kind s!
 3 name s!
 4 namespace *s
core.ImageVolumeSource
 1 reference s
 2 pullPolicy s
core.Container
 1 name s!
 2 image s
 3 command [s
 4 args [s
 5 workingDir s
 6 ports [core.ContainerPort
 7 env [core.EnvVar
 8 resources core.ResourceRequirements
 9 volumeMounts [core.VolumeMount
 10 livenessProbe *core.Probe
 11 readinessProbe *core.Probe
 12 lifecycle *core.Lifecycle
 13 terminationMessagePath s
 14 imagePullPolicy s
 15 securityContext *core.SecurityContext
 16 stdin b
 17 stdinOnce b
 18 tty b
 19 envFrom [core.EnvFromSource
 20 terminationMessagePolicy s
 21 volumeDevices [core.VolumeDevice
 22 startupProbe *core.Probe
 23 resizePolicy [core.ContainerResizePolicy
 24 restartPolicy *s
core.ContainerPort
 1 name s
 2 hostPort i32
 3 containerPort i32!
 4 protocol s
 5 hostIP s
core.EnvFromSource
 1 prefix s
 2 configMapRef *core.ConfigMapEnvSource
 3 secretRef *core.SecretEnvSource
core.ConfigMapEnvSource
 1 - ^core.LocalObjectReference
 2 optional *b
core.SecretEnvSource
 1 - ^core.LocalObjectReference
 2 optional *b
core.EnvVar
 1 name s!
 2 value s
 3 valueFrom *core.EnvVarSource
core.EnvVarSource
 1 fieldRef *core.ObjectFieldSelector
 2 resourceFieldRef *core.ResourceFieldSelector
 3 configMapKeyRef *core.ConfigMapKeySelector
 4 secretKeyRef *core.SecretKeySelector
core.ConfigMapKeySelector
 1 - ^core.LocalObjectReference
 2 key s!
 3 optional *b
core.SecretKeySelector
 1 - ^core.LocalObjectReference
 2 key s!
 3 optional *b
core.ResourceRequirements
 1 limits {Quantity
 2 requests {Quantity
 3 claims [core.ResourceClaim
core.ResourceClaim
 1 name s!
 2 request s
core.ContainerResizePolicy
 1 resourceName s!
 2 restartPolicy s!
core.VolumeMount
 1 name s!
 2 readOnly b
 3 mountPath s!
 4 subPath s
 5 mountPropagation *s
 6 subPathExpr s
 7 recursiveReadOnly *s
core.VolumeDevice
 1 name s!
 2 devicePath s!
core.Probe
 1 - ^core.ProbeHandler
 2 initialDelaySeconds i32
 3 timeoutSeconds i32
 4 periodSeconds i32
 5 successThreshold i32
 6 failureThreshold i32
 7 terminationGracePeriodSeconds *i64
core.ProbeHandler
 1 exec *core.ExecAction
 2 httpGet *core.HTTPGetAction
 3 tcpSocket *core.TCPSocketAction
 4 grpc *core.GRPCAction
core.ExecAction
 1 command [s
core.HTTPGetAction
 1 path s
 2 port IntOrString!
 3 host s
 4 scheme s
 5 httpHeaders [core.HTTPHeader
core.HTTPHeader
 1 name s!
 2 value s!
core.TCPSocketAction
 1 port IntOrString!
 2 host s
core.GRPCAction
 1 port i32!
 2 service *s!
core.Lifecycle
 1 postStart *core.LifecycleHandler
 2 preStop *core.LifecycleHandler
core.LifecycleHandler
 1 exec *core.ExecAction
 2 httpGet *core.HTTPGetAction
 3 tcpSocket *core.TCPSocketAction
 4 sleep *core.SleepAction
core.SleepAction
 1 seconds i64!
core.SecurityContext
 1 capabilities *core.Capabilities
 2 privileged *b
 3 seLinuxOptions *core.SELinuxOptions
 4 runAsUser *i64
 5 runAsNonRoot *b
 6 readOnlyRootFilesystem *b
 7 allowPrivilegeEscalation *b
 8 runAsGroup *i64
 9 procMount *s
 10 windowsOptions *core.WindowsSecurityContextOptions
 11 seccompProfile *core.SeccompProfile
 12 appArmorProfile *core.AppArmorProfile
core.Capabilities
 1 add [s
 2 drop [s
core.SELinuxOptions
 1 user s
 2 role s
 3 type s
 4 level s
core.WindowsSecurityContextOptions
 1 gmsaCredentialSpecName *s
 2 gmsaCredentialSpec *s
 3 runAsUserName *s
 4 hostProcess *b
core.SeccompProfile
 1 type s!
 2 localhostProfile *s
core.AppArmorProfile
 1 type s!
 2 localhostProfile *s
core.EphemeralContainer
 1 - ^core.EphemeralContainerCommon
 2 targetContainerName s
core.EphemeralContainerCommon
 1 name s!
 2 image s
 3 command [s
 4 args [s
 5 workingDir s
 6 ports [core.ContainerPort
 7 env [core.EnvVar
 8 resources core.ResourceRequirements
 9 volumeMounts [core.VolumeMount
 10 livenessProbe *core.Probe
 11 readinessProbe *core.Probe
 12 lifecycle *core.Lifecycle
 13 terminationMessagePath s
 14 imagePullPolicy s
 15 securityContext *core.SecurityContext
 16 stdin b
 17 stdinOnce b
 18 tty b
 19 envFrom [core.EnvFromSource
 20 terminationMessagePolicy s
 21 volumeDevices [core.VolumeDevice
 22 startupProbe *core.Probe
 23 resizePolicy [core.ContainerResizePolicy
 24 restartPolicy *s
)"
      R"(
core.PodSecurityContext
 1 seLinuxOptions *core.SELinuxOptions
 2 runAsUser *i64
 3 runAsNonRoot *b
 4 supplementalGroups [i64
 5 fsGroup *i64
 6 runAsGroup *i64
 7 sysctls [core.Sysctl
 8 windowsOptions *core.WindowsSecurityContextOptions
 9 fsGroupChangePolicy *s
 10 seccompProfile *core.SeccompProfile
 11 appArmorProfile *core.AppArmorProfile
 12 supplementalGroupsPolicy *s
 13 seLinuxChangePolicy *s
core.Sysctl
 1 name s!
 2 value s!
core.Affinity
 1 nodeAffinity *core.NodeAffinity
 2 podAffinity *core.PodAffinity
 3 podAntiAffinity *core.PodAntiAffinity
core.NodeAffinity
 1 requiredDuringSchedulingIgnoredDuringExecution *core.NodeSelector
 2 preferredDuringSchedulingIgnoredDuringExecution [core.PreferredSchedulingTerm
core.NodeSelector
 1 nodeSelectorTerms [core.NodeSelectorTerm!
core.NodeSelectorTerm
 1 matchExpressions [core.NodeSelectorRequirement
 2 matchFields [core.NodeSelectorRequirement
core.NodeSelectorRequirement
 1 key s!
 2 operator s!
 3 values [s
core.PreferredSchedulingTerm
 1 weight i32!
 2 preference core.NodeSelectorTerm!
core.PodAffinity
 1 requiredDuringSchedulingIgnoredDuringExecution [core.PodAffinityTerm
 2 preferredDuringSchedulingIgnoredDuringExecution [core.WeightedPodAffinityTerm
core.PodAffinityTerm
 1 labelSelector *meta.LabelSelector
 2 namespaces [s
 3 topologyKey s!
 4 namespaceSelector *meta.LabelSelector
 5 matchLabelKeys [s
 6 mismatchLabelKeys [s
core.WeightedPodAffinityTerm
 1 weight i32!
 2 podAffinityTerm core.PodAffinityTerm!
core.PodAntiAffinity
 1 requiredDuringSchedulingIgnoredDuringExecution [core.PodAffinityTerm
 2 preferredDuringSchedulingIgnoredDuringExecution [core.WeightedPodAffinityTerm
core.Toleration
 1 key s
 2 operator s
 3 value s
 4 effect s
 5 tolerationSeconds *i64
core.HostAlias
 1 ip s!
 2 hostnames [s
core.PodDNSConfig
 1 nameservers [s
 2 searches [s
 3 options [core.PodDNSConfigOption
core.PodDNSConfigOption
 1 name s
 2 value *s
core.PodReadinessGate
 1 conditionType s!
core.TopologySpreadConstraint
 1 maxSkew i32!
 2 topologyKey s!
 3 whenUnsatisfiable s!
 4 labelSelector *meta.LabelSelector
 5 minDomains *i32
 6 nodeAffinityPolicy *s
 7 nodeTaintsPolicy *s
 8 matchLabelKeys [s
core.PodOS
 1 name s!
core.PodSchedulingGate
 1 name s!
core.PodResourceClaim
 1 name s!
 3 resourceClaimName *s
 4 resourceClaimTemplateName *s
core.PodStatus
 1 phase s
 2 conditions [core.PodCondition
 3 message s
 4 reason s
 5 hostIP s
 6 podIP s
 7 startTime *Time
 8 containerStatuses [core.ContainerStatus
 9 qosClass s
 10 initContainerStatuses [core.ContainerStatus
 11 nominatedNodeName s
 12 podIPs [core.PodIP
 13 ephemeralContainerStatuses [core.ContainerStatus
 14 resize s
 15 resourceClaimStatuses [core.PodResourceClaimStatus
 16 hostIPs [core.HostIP
core.PodCondition
 1 type s!
 2 status s!
 3 lastProbeTime Time
 4 lastTransitionTime Time
 5 reason s
 6 message s
core.HostIP
 1 ip s!
core.PodIP
 1 ip s!
core.ContainerStatus
 1 name s!
 2 state core.ContainerState
 3 lastState core.ContainerState
 4 ready b!
 5 restartCount i32!
 6 image s!
 7 imageID s!
 8 containerID s
 9 started *b
 10 allocatedResources {Quantity
 11 resources *core.ResourceRequirements
 12 volumeMounts [core.VolumeMountStatus
 13 user *core.ContainerUser
 14 allocatedResourcesStatus [core.ResourceStatus
core.ContainerState
 1 waiting *core.ContainerStateWaiting
 2 running *core.ContainerStateRunning
 3 terminated *core.ContainerStateTerminated
core.ContainerStateWaiting
 1 reason s
 2 message s
core.ContainerStateRunning
 1 startedAt Time
core.ContainerStateTerminated
 1 exitCode i32!
 2 signal i32
 3 reason s
 4 message s
 5 startedAt Time
 6 finishedAt Time
 7 containerID s
core.VolumeMountStatus
 1 name s!
 2 mountPath s!
 3 readOnly b
 4 recursiveReadOnly *s
core.ContainerUser
 1 linux *core.LinuxContainerUser
core.LinuxContainerUser
 1 uid i64!
 2 gid i64!
 3 supplementalGroups [i64
core.ResourceStatus
 1 name s!
 2 resources [core.ResourceHealth
core.ResourceHealth
 1 resourceID s!
 2 health s
core.PodResourceClaimStatus
 1 name s!
 2 resourceClaimName *s
core.PodList +tm
 1 metadata meta.ListMeta
 2 items [core.Pod!
meta.ListMeta
 1 selfLink s
 2 resourceVersion s
 3 continue s
 4 remainingItemCount *i64
core.PodTemplate +tm
 1 metadata meta.ObjectMeta
 2 template core.PodTemplateSpec
core.PodTemplateSpec
 1 metadata meta.ObjectMeta
 2 spec core.PodSpec
core.PodTemplateList +tm
 1 metadata meta.ListMeta
 2 items [core.PodTemplate!
core.ReplicationController +tm
 1 metadata meta.ObjectMeta
 2 spec core.ReplicationControllerSpec
 3 status core.ReplicationControllerStatus
core.ReplicationControllerSpec
 1 replicas *i32
 2 selector {s
 3 template *core.PodTemplateSpec
 4 minReadySeconds i32
core.ReplicationControllerStatus
 1 replicas i32!
 2 fullyLabeledReplicas i32
 3 observedGeneration i64
 4 readyReplicas i32
 5 availableReplicas i32
 6 conditions [core.ReplicationControllerCondition
core.ReplicationControllerCondition
 1 type s!
 2 status s!
 3 lastTransitionTime Time
 4 reason s
 5 message s
core.ReplicationControllerList +tm
 1 metadata meta.ListMeta
 2 items [core.ReplicationController!
core.Service +tm
 1 metadata meta.ObjectMeta
 2 spec core.ServiceSpec
 3 status core.ServiceStatus
core.ServiceSpec
 1 ports [core.ServicePort
 2 selector {s
 3 clusterIP s
 4 type s
 5 externalIPs [s
 7 sessionAffinity s
 8 loadBalancerIP s
 9 loadBalancerSourceRanges [s
 10 externalName s
 11 externalTrafficPolicy s
 12 healthCheckNodePort i32
 13 publishNotReadyAddresses b
 14 sessionAffinityConfig *core.SessionAffinityConfig
 17 ipFamilyPolicy *s
 18 clusterIPs [s
 19 ipFamilies [s
 20 allocateLoadBalancerNodePorts *b
 21 loadBalancerClass *s
 22 internalTrafficPolicy *s
 23 trafficDistribution *s
core.ServicePort
 1 name s
 2 protocol s
 3 port i32!
 4 targetPort IntOrString
 5 nodePort i32
 6 appProtocol *s
core.SessionAffinityConfig
 1 clientIP *core.ClientIPConfig
core.ClientIPConfig
 1 timeoutSeconds *i32
core.ServiceStatus
 1 loadBalancer core.LoadBalancerStatus
 2 conditions [meta.Condition
core.LoadBalancerStatus
 1 ingress [core.LoadBalancerIngress
core.LoadBalancerIngress
 1 ip s
 2 hostname s
 3 ipMode *s
 4 ports [core.PortStatus
core.PortStatus
 1 port i32!
 2 protocol s!
 3 error *s
meta.Condition
 1 type s!
 2 status s!
 3 observedGeneration i64
 4 lastTransitionTime Time!
 5 reason s!
 6 message s!
core.ServiceList +tm
 1 metadata meta.ListMeta
 2 items [core.Service!
core.Namespace +tm
 1 metadata meta.ObjectMeta
 2 spec core.NamespaceSpec
 3 status core.NamespaceStatus
core.NamespaceSpec
 1 finalizers [s
core.NamespaceStatus
 1 phase s
 2 conditions [core.NamespaceCondition
core.NamespaceCondition
 1 type s!
 2 status s!
 4 lastTransitionTime Time
 5 reason s
 6 message s
core.NamespaceList +tm
 1 metadata meta.ListMeta
 2 items [core.Namespace!
core.ConfigMap +tm
 1 metadata meta.ObjectMeta
 2 data {s
 3 binaryData {y
 4 immutable *b
core.ConfigMapList +tm
 1 metadata meta.ListMeta
 2 items [core.ConfigMap!
core.Secret +tm
 1 metadata meta.ObjectMeta
 2 data {y
 3 type s
 4 stringData {s
 5 immutable *b
core.SecretList +tm
 1 metadata meta.ListMeta
 2 items [core.Secret!
core.ServiceAccount +tm
 1 metadata meta.ObjectMeta
 2 secrets [core.ObjectReference
 3 imagePullSecrets [core.LocalObjectReference
 4 automountServiceAccountToken *b
core.ObjectReference
 1 kind s
 2 namespace s
 3 name s
 4 uid s
 5 apiVersion s
 6 resourceVersion s
 7 fieldPath s
core.ServiceAccountList +tm
 1 metadata meta.ListMeta
 2 items [core.ServiceAccount!
core.ResourceQuota +tm
 1 metadata meta.ObjectMeta
 2 spec core.ResourceQuotaSpec
 3 status core.ResourceQuotaStatus
core.ResourceQuotaSpec
 1 hard {Quantity
 2 scopes [s
 3 scopeSelector *core.ScopeSelector
core.ScopeSelector
 1 matchExpressions [core.ScopedResourceSelectorRequirement
core.ScopedResourceSelectorRequirement
 1 scopeName s!
 2 operator s!
 3 values [s
core.ResourceQuotaStatus
 1 hard {Quantity
 2 used {Quantity
core.ResourceQuotaList +tm
 1 metadata meta.ListMeta
 2 items [core.ResourceQuota!
core.LimitRange +tm
 1 metadata meta.ObjectMeta
 2 spec core.LimitRangeSpec
core.LimitRangeSpec
 1 limits [core.LimitRangeItem!
core.LimitRangeItem
 1 type s!
 2 max {Quantity
 3 min {Quantity
 4 default {Quantity
 5 defaultRequest {Quantity
 6 maxLimitRequestRatio {Quantity
core.LimitRangeList +tm
 1 metadata meta.ListMeta
 2 items [core.LimitRange!
core.Endpoints +tm
 1 metadata meta.ObjectMeta
 2 subsets [core.EndpointSubset
core.EndpointSubset
 1 addresses [core.EndpointAddress
 2 notReadyAddresses [core.EndpointAddress
 3 ports [core.EndpointPort
core.EndpointAddress
 1 ip s!
 2 targetRef *core.ObjectReference
 3 hostname s
 4 nodeName *s
core.EndpointPort
 1 name s
 2 port i32!
 3 protocol s
 4 appProtocol *s
core.EndpointsList +tm
 1 metadata meta.ListMeta
 2 items [core.Endpoints!
core.Event +tm
 1 metadata meta.ObjectMeta!
 2 involvedObject core.ObjectReference!
 3 reason s
 4 message s
 5 source core.EventSource
 6 firstTimestamp Time
 7 lastTimestamp Time
 8 count i32
 9 type s
 10 eventTime MicroTime
 11 series *core.EventSeries
 12 action s
 13 related *core.ObjectReference
 14 reportingComponent s!
 15 reportingInstance s!
core.EventSource
 1 component s
 2 host s
core.EventSeries
 1 count i32
 2 lastObservedTime MicroTime
core.EventList +tm
 1 metadata meta.ListMeta
 2 items [core.Event!
core.Node +tm
 1 metadata meta.ObjectMeta
 2 spec core.NodeSpec
 3 status core.NodeStatus
core.NodeSpec
 1 podCIDR s
 2 externalID s
 3 providerID s
 4 unschedulable b
 5 taints [core.Taint
 6 configSource *core.NodeConfigSource
 7 podCIDRs [s
core.Taint
 1 key s!
 2 value s
 3 effect s!
 4 timeAdded *Time
core.NodeConfigSource
 2 configMap *core.ConfigMapNodeConfigSource
core.ConfigMapNodeConfigSource
 1 namespace s!
 2 name s!
 3 uid s
 4 resourceVersion s
 5 kubeletConfigKey s!
core.NodeStatus
 1 capacity {Quantity
 2 allocatable {Quantity
 3 phase s
 4 conditions [core.NodeCondition
 5 addresses [core.NodeAddress
 6 daemonEndpoints core.NodeDaemonEndpoints
 7 nodeInfo core.NodeSystemInfo
 8 images [core.ContainerImage
 9 volumesInUse [s
 10 volumesAttached [core.AttachedVolume
 11 config *core.NodeConfigStatus
 12 runtimeHandlers [core.NodeRuntimeHandler
 13 features *core.NodeFeatures
core.NodeCondition
 1 type s!
 2 status s!
 3 lastHeartbeatTime Time
 4 lastTransitionTime Time
 5 reason s
 6 message s
core.NodeAddress
 1 type s!
 2 address s!
core.NodeDaemonEndpoints
 1 kubeletEndpoint core.DaemonEndpoint
core.DaemonEndpoint
 1 Port i32!
core.NodeSystemInfo
 1 machineID s!
 2 systemUUID s!
 3 bootID s!
 4 kernelVersion s!
 5 osImage s!
 6 containerRuntimeVersion s!
 7 kubeletVersion s!
 8 kubeProxyVersion s!
 9 operatingSystem s!
 10 architecture s!
core.ContainerImage
 1 names [s!
 2 sizeBytes i64
core.AttachedVolume
 1 name s!
 2 devicePath s!
core.NodeConfigStatus
 1 assigned *core.NodeConfigSource
 2 active *core.NodeConfigSource
 3 lastKnownGood *core.NodeConfigSource
 4 error s
core.NodeRuntimeHandler
 1 name s!
 2 features *core.NodeRuntimeHandlerFeatures
core.NodeRuntimeHandlerFeatures
 1 recursiveReadOnlyMounts *b
 2 userNamespaces *b
core.NodeFeatures
 1 supplementalGroupsPolicy *b
core.NodeList +tm
 1 metadata meta.ListMeta
 2 items [core.Node!
core.PersistentVolume +tm
 1 metadata meta.ObjectMeta
 2 spec core.PersistentVolumeSpec
 3 status core.PersistentVolumeStatus
core.PersistentVolumeSpec
 1 capacity {Quantity
 2 - ^core.PersistentVolumeSource
 3 accessModes [s
 4 claimRef *core.ObjectReference
 5 persistentVolumeReclaimPolicy s
 6 storageClassName s
 7 mountOptions [s
 8 volumeMode *s
 9 nodeAffinity *core.VolumeNodeAffinity
 10 volumeAttributesClassName *s
core.PersistentVolumeSource
 1 gcePersistentDisk *core.GCEPersistentDiskVolumeSource
 2 awsElasticBlockStore *core.AWSElasticBlockStoreVolumeSource
 3 hostPath *core.HostPathVolumeSource
 4 glusterfs *core.GlusterfsPersistentVolumeSource
 5 nfs *core.NFSVolumeSource
 6 rbd *core.RBDPersistentVolumeSource
 7 iscsi *core.ISCSIPersistentVolumeSource
 8 cinder *core.CinderPersistentVolumeSource
 9 cephfs *core.CephFSPersistentVolumeSource
 10 fc *core.FCVolumeSource
 11 flocker *core.FlockerVolumeSource
 12 flexVolume *core.FlexPersistentVolumeSource
 13 azureFile *core.AzureFilePersistentVolumeSource
 14 vsphereVolume *core.VsphereVirtualDiskVolumeSource
 15 quobyte *core.QuobyteVolumeSource
 16 azureDisk *core.AzureDiskVolumeSource
 17 photonPersistentDisk *core.PhotonPersistentDiskVolumeSource
 18 portworxVolume *core.PortworxVolumeSource
 19 scaleIO *core.ScaleIOPersistentVolumeSource
 20 local *core.LocalVolumeSource
 21 storageos *core.StorageOSPersistentVolumeSource
 22 csi *core.CSIPersistentVolumeSource
)"
      R"(
core.GlusterfsPersistentVolumeSource
 1 endpoints s!
 2 path s!
 3 readOnly b
 4 endpointsNamespace *s
core.RBDPersistentVolumeSource
 1 monitors [s!
 2 image s!
 3 fsType s
 4 pool s
 5 user s
 6 keyring s
 7 secretRef *core.SecretReference
 8 readOnly b
core.SecretReference
 1 name s
 2 namespace s
core.ISCSIPersistentVolumeSource
 1 targetPortal s!
 2 iqn s!
 3 lun i32!
 4 iscsiInterface s
 5 fsType s
 6 readOnly b
 7 portals [s
 8 chapAuthDiscovery b
 10 secretRef *core.SecretReference
 11 chapAuthSession b
 12 initiatorName *s
core.CinderPersistentVolumeSource
 1 volumeID s!
 2 fsType s
 3 readOnly b
 4 secretRef *core.SecretReference
core.CephFSPersistentVolumeSource
 1 monitors [s!
 2 path s
 3 user s
 4 secretFile s
 5 secretRef *core.SecretReference
 6 readOnly b
core.FlexPersistentVolumeSource
 1 driver s!
 2 fsType s
 3 secretRef *core.SecretReference
 4 readOnly b
 5 options {s
core.AzureFilePersistentVolumeSource
 1 secretName s!
 2 shareName s!
 3 readOnly b
 4 secretNamespace *s!
core.ScaleIOPersistentVolumeSource
 1 gateway s!
 2 system s!
 3 secretRef *core.SecretReference!
 4 sslEnabled b
 5 protectionDomain s
 6 storagePool s
 7 storageMode s
 8 volumeName s
 9 fsType s
 10 readOnly b
core.LocalVolumeSource
 1 path s!
 2 fsType *s
core.StorageOSPersistentVolumeSource
 1 volumeName s
 2 volumeNamespace s
 3 fsType s
 4 readOnly b
 5 secretRef *core.ObjectReference
core.CSIPersistentVolumeSource
 1 driver s!
 2 volumeHandle s!
 3 readOnly b
 4 fsType s
 5 volumeAttributes {s
 6 controllerPublishSecretRef *core.SecretReference
 7 nodeStageSecretRef *core.SecretReference
 8 nodePublishSecretRef *core.SecretReference
 9 controllerExpandSecretRef *core.SecretReference
 10 nodeExpandSecretRef *core.SecretReference
core.VolumeNodeAffinity
 1 required *core.NodeSelector
core.PersistentVolumeStatus
 1 phase s
 2 message s
 3 reason s
 4 lastPhaseTransitionTime *Time
core.PersistentVolumeList +tm
 1 metadata meta.ListMeta
 2 items [core.PersistentVolume!
core.PersistentVolumeClaim +tm
 1 metadata meta.ObjectMeta
 2 spec core.PersistentVolumeClaimSpec
 3 status core.PersistentVolumeClaimStatus
core.PersistentVolumeClaimStatus
 1 phase s
 2 accessModes [s
 3 capacity {Quantity
 4 conditions [core.PersistentVolumeClaimCondition
 5 allocatedResources {Quantity
 7 allocatedResourceStatuses {s
 8 currentVolumeAttributesClassName *s
 9 modifyVolumeStatus *core.ModifyVolumeStatus
core.PersistentVolumeClaimCondition
 1 type s!
 2 status s!
 3 lastProbeTime Time
 4 lastTransitionTime Time
 5 reason s
 6 message s
core.ModifyVolumeStatus
 1 targetVolumeAttributesClassName s
 2 status s!
core.PersistentVolumeClaimList +tm
 1 metadata meta.ListMeta
 2 items [core.PersistentVolumeClaim!
core.Binding +tm
 1 metadata meta.ObjectMeta
 2 target core.ObjectReference!
apps.Deployment +tm
 1 metadata meta.ObjectMeta
 2 spec apps.DeploymentSpec
 3 status apps.DeploymentStatus
apps.DeploymentSpec
 1 replicas *i32
 2 selector *meta.LabelSelector!
 3 template core.PodTemplateSpec!
 4 strategy apps.DeploymentStrategy
 5 minReadySeconds i32
 6 revisionHistoryLimit *i32
 7 paused b
 9 progressDeadlineSeconds *i32
apps.DeploymentStrategy
 1 type s
 2 rollingUpdate *apps.RollingUpdateDeployment
apps.RollingUpdateDeployment
 1 maxUnavailable *IntOrString
 2 maxSurge *IntOrString
apps.DeploymentStatus
 1 observedGeneration i64
 2 replicas i32
 3 updatedReplicas i32
 4 availableReplicas i32
 5 unavailableReplicas i32
 6 conditions [apps.DeploymentCondition
 7 readyReplicas i32
 8 collisionCount *i32
apps.DeploymentCondition
 1 type s!
 2 status s!
 4 reason s
 5 message s
 6 lastUpdateTime Time
 7 lastTransitionTime Time
apps.DeploymentList +tm
 1 metadata meta.ListMeta
 2 items [apps.Deployment!
apps.ReplicaSet +tm
 1 metadata meta.ObjectMeta
 2 spec apps.ReplicaSetSpec
 3 status apps.ReplicaSetStatus
apps.ReplicaSetSpec
 1 replicas *i32
 2 selector *meta.LabelSelector!
 3 template core.PodTemplateSpec
 4 minReadySeconds i32
apps.ReplicaSetStatus
 1 replicas i32!
 2 fullyLabeledReplicas i32
 3 observedGeneration i64
 4 readyReplicas i32
 5 availableReplicas i32
 6 conditions [apps.ReplicaSetCondition
apps.ReplicaSetCondition
 1 type s!
 2 status s!
 3 lastTransitionTime Time
 4 reason s
 5 message s
apps.ReplicaSetList +tm
 1 metadata meta.ListMeta
 2 items [apps.ReplicaSet!
apps.StatefulSet +tm
 1 metadata meta.ObjectMeta
 2 spec apps.StatefulSetSpec
 3 status apps.StatefulSetStatus
apps.StatefulSetSpec
 1 replicas *i32
 2 selector *meta.LabelSelector!
 3 template core.PodTemplateSpec!
 4 volumeClaimTemplates [core.PersistentVolumeClaim
 5 serviceName s!
 6 podManagementPolicy s
 7 updateStrategy apps.StatefulSetUpdateStrategy
 8 revisionHistoryLimit *i32
 9 minReadySeconds i32
 10 persistentVolumeClaimRetentionPolicy *apps.StatefulSetPersistentVolumeClaimRetentionPolicy
 11 ordinals *apps.StatefulSetOrdinals
apps.StatefulSetUpdateStrategy
 1 type s
 2 rollingUpdate *apps.RollingUpdateStatefulSetStrategy
apps.RollingUpdateStatefulSetStrategy
 1 partition *i32
 2 maxUnavailable *IntOrString
apps.StatefulSetPersistentVolumeClaimRetentionPolicy
 1 whenDeleted s
 2 whenScaled s
apps.StatefulSetOrdinals
 1 start i32!
apps.StatefulSetStatus
 1 observedGeneration i64
 2 replicas i32!
 3 readyReplicas i32
 4 currentReplicas i32
 5 updatedReplicas i32
 6 currentRevision s
 7 updateRevision s
 9 collisionCount *i32
 10 conditions [apps.StatefulSetCondition
 11 availableReplicas i32!
apps.StatefulSetCondition
 1 type s!
 2 status s!
 3 lastTransitionTime Time
 4 reason s
 5 message s
apps.StatefulSetList +tm
 1 metadata meta.ListMeta
 2 items [apps.StatefulSet!
apps.DaemonSet +tm
 1 metadata meta.ObjectMeta
 2 spec apps.DaemonSetSpec
 3 status apps.DaemonSetStatus
apps.DaemonSetSpec
 1 selector *meta.LabelSelector!
 2 template core.PodTemplateSpec!
 3 updateStrategy apps.DaemonSetUpdateStrategy
 4 minReadySeconds i32
 6 revisionHistoryLimit *i32
apps.DaemonSetUpdateStrategy
 1 type s
 2 rollingUpdate *apps.RollingUpdateDaemonSet
apps.RollingUpdateDaemonSet
 1 maxUnavailable *IntOrString
 2 maxSurge *IntOrString
apps.DaemonSetStatus
 1 currentNumberScheduled i32!
 2 numberMisscheduled i32!
 3 desiredNumberScheduled i32!
 4 numberReady i32!
 5 observedGeneration i64
 6 updatedNumberScheduled i32
 7 numberAvailable i32
 8 numberUnavailable i32
 9 collisionCount *i32
 10 conditions [apps.DaemonSetCondition
apps.DaemonSetCondition
 1 type s!
 2 status s!
 3 lastTransitionTime Time
 4 reason s
 5 message s
apps.DaemonSetList +tm
 1 metadata meta.ListMeta
 2 items [apps.DaemonSet!
apps.ControllerRevision +tm
 1 metadata meta.ObjectMeta
 2 data RawExtension
 3 revision i64!
apps.ControllerRevisionList +tm
 1 metadata meta.ListMeta
 2 items [apps.ControllerRevision!
batch.Job +tm
 1 metadata meta.ObjectMeta
 2 spec batch.JobSpec
 3 status batch.JobStatus
batch.JobSpec
 1 parallelism *i32
 2 completions *i32
 3 activeDeadlineSeconds *i64
 4 selector *meta.LabelSelector
 5 manualSelector *b
 6 template core.PodTemplateSpec!
 7 backoffLimit *i32
 8 ttlSecondsAfterFinished *i32
 9 completionMode *s
 10 suspend *b
 11 podFailurePolicy *batch.PodFailurePolicy
 12 backoffLimitPerIndex *i32
 13 maxFailedIndexes *i32
 14 podReplacementPolicy *s
 15 managedBy *s
 16 successPolicy *batch.SuccessPolicy
batch.PodFailurePolicy
 1 rules [batch.PodFailurePolicyRule!
batch.PodFailurePolicyRule
 1 action s!
 2 onExitCodes *batch.PodFailurePolicyOnExitCodesRequirement
 3 onPodConditions [batch.PodFailurePolicyOnPodConditionsPattern
batch.PodFailurePolicyOnExitCodesRequirement
 1 containerName *s
 2 operator s!
 3 values [i32!
batch.PodFailurePolicyOnPodConditionsPattern
 1 type s!
 2 status s!
batch.SuccessPolicy
 1 rules [batch.SuccessPolicyRule!
batch.SuccessPolicyRule
 1 succeededIndexes *s
 2 succeededCount *i32
batch.JobStatus
 1 conditions [batch.JobCondition
 2 startTime *Time
 3 completionTime *Time
 4 active i32
 5 succeeded i32
 6 failed i32
 7 completedIndexes s
 8 uncountedTerminatedPods *batch.UncountedTerminatedPods
 9 ready *i32
 10 failedIndexes *s
 11 terminating *i32
batch.JobCondition
 1 type s!
 2 status s!
 3 lastProbeTime Time
 4 lastTransitionTime Time
 5 reason s
 6 message s
batch.UncountedTerminatedPods
 1 succeeded [s
 2 failed [s
batch.JobList +tm
 1 metadata meta.ListMeta
 2 items [batch.Job!
batch.CronJob +tm
 1 metadata meta.ObjectMeta
 2 spec batch.CronJobSpec
 3 status batch.CronJobStatus
batch.CronJobSpec
 1 schedule s!
 2 startingDeadlineSeconds *i64
 3 concurrencyPolicy s
 4 suspend *b
 5 jobTemplate batch.JobTemplateSpec!
 6 successfulJobsHistoryLimit *i32
 7 failedJobsHistoryLimit *i32
 8 timeZone *s
batch.JobTemplateSpec
 1 metadata meta.ObjectMeta
 2 spec batch.JobSpec
batch.CronJobStatus
 1 active [core.ObjectReference
 4 lastScheduleTime *Time
 5 lastSuccessfulTime *Time
batch.CronJobList +tm
 1 metadata meta.ListMeta
 2 items [batch.CronJob!
net.Ingress +tm
 1 metadata meta.ObjectMeta
 2 spec net.IngressSpec
 3 status net.IngressStatus
net.IngressSpec
 1 defaultBackend *net.IngressBackend
 2 tls [net.IngressTLS
 3 rules [net.IngressRule
 4 ingressClassName *s
net.IngressBackend
 3 resource *core.TypedLocalObjectReference
 4 service *net.IngressServiceBackend
net.IngressServiceBackend
 1 name s!
 2 port net.ServiceBackendPort
net.ServiceBackendPort
 1 name s
 2 number i32
net.IngressTLS
 1 hosts [s
 2 secretName s
net.IngressRule
 1 host s
 2 - ^net.IngressRuleValue
net.IngressRuleValue
 1 http *net.HTTPIngressRuleValue
net.HTTPIngressRuleValue
 1 paths [net.HTTPIngressPath!
net.HTTPIngressPath
 1 path s
 2 backend net.IngressBackend!
 3 pathType *s!
net.IngressStatus
 1 loadBalancer net.IngressLoadBalancerStatus
net.IngressLoadBalancerStatus
 1 ingress [net.IngressLoadBalancerIngress
net.IngressLoadBalancerIngress
 1 ip s
 2 hostname s
 4 ports [net.IngressPortStatus
net.IngressPortStatus
 1 port i32!
 2 protocol s!
 3 error *s
net.IngressList +tm
 1 metadata meta.ListMeta
 2 items [net.Ingress!
net.IngressClass +tm
 1 metadata meta.ObjectMeta
 2 spec net.IngressClassSpec
net.IngressClassSpec
 1 controller s
 2 parameters *net.IngressClassParametersReference
net.IngressClassParametersReference
 1 apiGroup *s
 2 kind s!
 3 name s!
 4 scope *s!
 5 namespace *s
net.IngressClassList +tm
 1 metadata meta.ListMeta
 2 items [net.IngressClass!
net.NetworkPolicy +tm
 1 metadata meta.ObjectMeta
 2 spec net.NetworkPolicySpec
net.NetworkPolicySpec
 1 podSelector meta.LabelSelector!
 2 ingress [net.NetworkPolicyIngressRule
 3 egress [net.NetworkPolicyEgressRule
 4 policyTypes [s
net.NetworkPolicyIngressRule
 1 ports [net.NetworkPolicyPort
 2 from [net.NetworkPolicyPeer
net.NetworkPolicyPort
 1 protocol *s
 2 port *IntOrString
 3 endPort *i32
net.NetworkPolicyPeer
 1 podSelector *meta.LabelSelector
 2 namespaceSelector *meta.LabelSelector
 3 ipBlock *net.IPBlock
net.IPBlock
 1 cidr s!
 2 except [s
net.NetworkPolicyEgressRule
 1 ports [net.NetworkPolicyPort
 2 to [net.NetworkPolicyPeer
net.NetworkPolicyList +tm
 1 metadata meta.ListMeta
 2 items [net.NetworkPolicy!
policy.PodDisruptionBudget +tm
 1 metadata meta.ObjectMeta
 2 spec policy.PodDisruptionBudgetSpec
 3 status policy.PodDisruptionBudgetStatus
policy.PodDisruptionBudgetSpec
 1 minAvailable *IntOrString
 2 selector *meta.LabelSelector
 3 maxUnavailable *IntOrString
 4 unhealthyPodEvictionPolicy *s
policy.PodDisruptionBudgetStatus
 1 observedGeneration i64
 2 disruptedPods {Time
 3 disruptionsAllowed i32!
 4 currentHealthy i32!
 5 desiredHealthy i32!
 6 expectedPods i32!
 7 conditions [meta.Condition
policy.PodDisruptionBudgetList +tm
 1 metadata meta.ListMeta
 2 items [policy.PodDisruptionBudget!
policy.Eviction +tm
 1 metadata meta.ObjectMeta
 2 deleteOptions *meta.DeleteOptions
meta.DeleteOptions +tm
 1 gracePeriodSeconds *i64
 2 preconditions *meta.Preconditions
 3 orphanDependents *b
 4 propagationPolicy *s
 5 dryRun [s
 6 ignoreStoreReadErrorWithClusterBreakingPotential *b
meta.Preconditions
 1 uid *s
 2 resourceVersion *s
sched.PriorityClass +tm
 1 metadata meta.ObjectMeta
 2 value i32!
 3 globalDefault b
 4 description s
 5 preemptionPolicy *s
)"
      R"(
sched.PriorityClassList +tm
 1 metadata meta.ListMeta
 2 items [sched.PriorityClass!
authn.TokenRequest +tm
 1 metadata meta.ObjectMeta
 2 spec authn.TokenRequestSpec!
 3 status authn.TokenRequestStatus
authn.TokenRequestSpec
 1 audiences [s!
 3 boundObjectRef *authn.BoundObjectReference!
 4 expirationSeconds *i64!
authn.BoundObjectReference
 1 kind s
 2 apiVersion s
 3 name s
 4 uid s
authn.TokenRequestStatus
 1 token s!
 2 expirationTimestamp Time!
authn.TokenReview +tm
 1 metadata meta.ObjectMeta
 2 spec authn.TokenReviewSpec!
 3 status authn.TokenReviewStatus
authn.TokenReviewSpec
 1 token s
 2 audiences [s
authn.TokenReviewStatus
 1 authenticated b
 2 user authn.UserInfo
 3 error s
 4 audiences [s
authn.UserInfo
 1 username s
 2 uid s
 3 groups [s
 4 extra {authn.ExtraValue
authn.ExtraValue @list
 1 items [s
authn.SelfSubjectReview +tm
 1 metadata meta.ObjectMeta
 2 status authn.SelfSubjectReviewStatus
authn.SelfSubjectReviewStatus
 1 userInfo authn.UserInfo
authz.SelfSubjectAccessReview +tm
 1 metadata meta.ObjectMeta
 2 spec authz.SelfSubjectAccessReviewSpec!
 3 status authz.SubjectAccessReviewStatus
authz.SelfSubjectAccessReviewSpec
 1 resourceAttributes *authz.ResourceAttributes
 2 nonResourceAttributes *authz.NonResourceAttributes
authz.ResourceAttributes
 1 namespace s
 2 verb s
 3 group s
 4 version s
 5 resource s
 6 subresource s
 7 name s
 8 fieldSelector *authz.FieldSelectorAttributes
 9 labelSelector *authz.LabelSelectorAttributes
authz.FieldSelectorAttributes
 1 rawSelector s
 2 requirements [meta.FieldSelectorRequirement
meta.FieldSelectorRequirement
 1 key s!
 2 operator s!
 3 values [s
authz.LabelSelectorAttributes
 1 rawSelector s
 2 requirements [meta.LabelSelectorRequirement
authz.NonResourceAttributes
 1 path s
 2 verb s
authz.SubjectAccessReviewStatus
 1 allowed b!
 2 reason s
 3 evaluationError s
 4 denied b
authz.SubjectAccessReview +tm
 1 metadata meta.ObjectMeta
 2 spec authz.SubjectAccessReviewSpec!
 3 status authz.SubjectAccessReviewStatus
authz.SubjectAccessReviewSpec
 1 resourceAttributes *authz.ResourceAttributes
 2 nonResourceAttributes *authz.NonResourceAttributes
 3 user s
 4 groups [s
 5 extra {authz.ExtraValue
 6 uid s
authz.ExtraValue @list
 1 items [s
authz.LocalSubjectAccessReview +tm
 1 metadata meta.ObjectMeta
 2 spec authz.SubjectAccessReviewSpec!
 3 status authz.SubjectAccessReviewStatus
authz.SelfSubjectRulesReview +tm
 1 metadata meta.ObjectMeta
 2 spec authz.SelfSubjectRulesReviewSpec!
 3 status authz.SubjectRulesReviewStatus
authz.SelfSubjectRulesReviewSpec
 1 namespace s
authz.SubjectRulesReviewStatus
 1 resourceRules [authz.ResourceRule!
 2 nonResourceRules [authz.NonResourceRule!
 3 incomplete b!
 4 evaluationError s
authz.ResourceRule
 1 verbs [s!
 2 apiGroups [s
 3 resources [s
 4 resourceNames [s
authz.NonResourceRule
 1 verbs [s!
 2 nonResourceURLs [s
as1.Scale +tm
 1 metadata meta.ObjectMeta
 2 spec as1.ScaleSpec
 3 status as1.ScaleStatus
as1.ScaleSpec
 1 replicas i32
as1.ScaleStatus
 1 replicas i32!
 2 selector s
as1.HorizontalPodAutoscaler +tm
 1 metadata meta.ObjectMeta
 2 spec as1.HorizontalPodAutoscalerSpec
 3 status as1.HorizontalPodAutoscalerStatus
as1.HorizontalPodAutoscalerSpec
 1 scaleTargetRef as1.CrossVersionObjectReference!
 2 minReplicas *i32
 3 maxReplicas i32!
 4 targetCPUUtilizationPercentage *i32
as1.CrossVersionObjectReference
 1 kind s!
 2 name s!
 3 apiVersion s
as1.HorizontalPodAutoscalerStatus
 1 observedGeneration *i64
 2 lastScaleTime *Time
 3 currentReplicas i32!
 4 desiredReplicas i32!
 5 currentCPUUtilizationPercentage *i32
as1.HorizontalPodAutoscalerList +tm
 1 metadata meta.ListMeta
 2 items [as1.HorizontalPodAutoscaler!
as2.HorizontalPodAutoscaler +tm
 1 metadata meta.ObjectMeta
 2 spec as2.HorizontalPodAutoscalerSpec
 3 status as2.HorizontalPodAutoscalerStatus
as2.HorizontalPodAutoscalerSpec
 1 scaleTargetRef as2.CrossVersionObjectReference!
 2 minReplicas *i32
 3 maxReplicas i32!
 4 metrics [as2.MetricSpec
 5 behavior *as2.HorizontalPodAutoscalerBehavior
as2.CrossVersionObjectReference
 1 kind s!
 2 name s!
 3 apiVersion s
as2.MetricSpec
 1 type s!
 2 object *as2.ObjectMetricSource
 3 pods *as2.PodsMetricSource
 4 resource *as2.ResourceMetricSource
 5 external *as2.ExternalMetricSource
 7 containerResource *as2.ContainerResourceMetricSource
as2.ObjectMetricSource
 1 describedObject as2.CrossVersionObjectReference!
 2 target as2.MetricTarget!
 3 metric as2.MetricIdentifier!
as2.MetricTarget
 1 type s!
 2 value *Quantity
 3 averageValue *Quantity
 4 averageUtilization *i32
as2.MetricIdentifier
 1 name s!
 2 selector *meta.LabelSelector
as2.PodsMetricSource
 1 metric as2.MetricIdentifier!
 2 target as2.MetricTarget!
as2.ResourceMetricSource
 1 name s!
 2 target as2.MetricTarget!
as2.ContainerResourceMetricSource
 1 name s!
 2 target as2.MetricTarget!
 3 container s!
as2.ExternalMetricSource
 1 metric as2.MetricIdentifier!
 2 target as2.MetricTarget!
as2.HorizontalPodAutoscalerBehavior
 1 scaleUp *as2.HPAScalingRules
 2 scaleDown *as2.HPAScalingRules
as2.HPAScalingRules
 1 selectPolicy *s
 2 policies [as2.HPAScalingPolicy
 3 stabilizationWindowSeconds *i32
as2.HPAScalingPolicy
 1 type s!
 2 value i32!
 3 periodSeconds i32!
as2.HorizontalPodAutoscalerStatus
 1 observedGeneration *i64
 2 lastScaleTime *Time
 3 currentReplicas i32
 4 desiredReplicas i32!
 5 currentMetrics [as2.MetricStatus!
 6 conditions [as2.HorizontalPodAutoscalerCondition
as2.MetricStatus
 1 type s!
 2 object *as2.ObjectMetricStatus
 3 pods *as2.PodsMetricStatus
 4 resource *as2.ResourceMetricStatus
 5 external *as2.ExternalMetricStatus
 7 containerResource *as2.ContainerResourceMetricStatus
as2.ObjectMetricStatus
 1 metric as2.MetricIdentifier!
 2 current as2.MetricValueStatus!
 3 describedObject as2.CrossVersionObjectReference!
as2.MetricValueStatus
 1 value *Quantity
 2 averageValue *Quantity
 3 averageUtilization *i32
as2.PodsMetricStatus
 1 metric as2.MetricIdentifier!
 2 current as2.MetricValueStatus!
as2.ResourceMetricStatus
 1 name s!
 2 current as2.MetricValueStatus!
as2.ContainerResourceMetricStatus
 1 name s!
 2 current as2.MetricValueStatus!
 3 container s!
as2.ExternalMetricStatus
 1 metric as2.MetricIdentifier!
 2 current as2.MetricValueStatus!
as2.HorizontalPodAutoscalerCondition
 1 type s!
 2 status s!
 3 lastTransitionTime Time
 4 reason s
 5 message s
as2.HorizontalPodAutoscalerList +tm
 1 metadata meta.ListMeta
 2 items [as2.HorizontalPodAutoscaler!
rbac.Role +tm
 1 metadata meta.ObjectMeta
 2 rules [rbac.PolicyRule!
rbac.PolicyRule
 1 verbs [s!
 2 apiGroups [s
 3 resources [s
 4 resourceNames [s
 5 nonResourceURLs [s
rbac.RoleList +tm
 1 metadata meta.ListMeta
 2 items [rbac.Role!
rbac.ClusterRole +tm
 1 metadata meta.ObjectMeta
 2 rules [rbac.PolicyRule!
 3 aggregationRule *rbac.AggregationRule
rbac.AggregationRule
 1 clusterRoleSelectors [meta.LabelSelector
rbac.ClusterRoleList +tm
 1 metadata meta.ListMeta
 2 items [rbac.ClusterRole!
rbac.RoleBinding +tm
 1 metadata meta.ObjectMeta
 2 subjects [rbac.Subject
 3 roleRef rbac.RoleRef!
rbac.Subject
 1 kind s!
 2 apiGroup s
 3 name s!
 4 namespace s
rbac.RoleRef
 1 apiGroup s!
 2 kind s!
 3 name s!
rbac.RoleBindingList +tm
 1 metadata meta.ListMeta
 2 items [rbac.RoleBinding!
rbac.ClusterRoleBinding +tm
 1 metadata meta.ObjectMeta
 2 subjects [rbac.Subject
 3 roleRef rbac.RoleRef!
rbac.ClusterRoleBindingList +tm
 1 metadata meta.ListMeta
 2 items [rbac.ClusterRoleBinding!
coord.Lease +tm
 1 metadata meta.ObjectMeta
 2 spec coord.LeaseSpec
coord.LeaseSpec
 1 holderIdentity *s
 2 leaseDurationSeconds *i32
 3 acquireTime *MicroTime
 4 renewTime *MicroTime
 5 leaseTransitions *i32
 6 strategy *s
 7 preferredHolder *s
coord.LeaseList +tm
 1 metadata meta.ListMeta
 2 items [coord.Lease!
disc.EndpointSlice +tm
 1 metadata meta.ObjectMeta
 2 endpoints [disc.Endpoint!
 3 ports [disc.EndpointPort!
 4 addressType s!
disc.Endpoint
 1 addresses [s!
 2 conditions disc.EndpointConditions
 3 hostname *s
 4 targetRef *core.ObjectReference
 5 deprecatedTopology {s
 6 nodeName *s
 7 zone *s
 8 hints *disc.EndpointHints
disc.EndpointConditions
 1 ready *b
 2 serving *b
 3 terminating *b
disc.EndpointHints
 1 forZones [disc.ForZone
disc.ForZone
 1 name s!
disc.EndpointPort
 1 name *s
 2 protocol *s
 3 port *i32
 4 appProtocol *s
disc.EndpointSliceList +tm
 1 metadata meta.ListMeta
 2 items [disc.EndpointSlice!
storage.StorageClass +tm
 1 metadata meta.ObjectMeta
 2 provisioner s!
 3 parameters {s
 4 reclaimPolicy *s
 5 mountOptions [s
 6 allowVolumeExpansion *b
 7 volumeBindingMode *s
 8 allowedTopologies [core.TopologySelectorTerm
core.TopologySelectorTerm
 1 matchLabelExpressions [core.TopologySelectorLabelRequirement
core.TopologySelectorLabelRequirement
 1 key s!
 2 values [s!
storage.StorageClassList +tm
 1 metadata meta.ListMeta
 2 items [storage.StorageClass!
cert.CertificateSigningRequest +tm
 1 metadata meta.ObjectMeta
 2 spec cert.CertificateSigningRequestSpec!
 3 status cert.CertificateSigningRequestStatus
cert.CertificateSigningRequestSpec
 1 request y!
 2 username s
 3 uid s
 4 groups [s
 5 usages [s
 6 extra {cert.ExtraValue
 7 signerName s!
 8 expirationSeconds *i32
cert.ExtraValue @list
 1 items [s
cert.CertificateSigningRequestStatus
 1 conditions [cert.CertificateSigningRequestCondition
 2 certificate y
cert.CertificateSigningRequestCondition
 1 type s!
 2 reason s
 3 message s
 4 lastUpdateTime Time
 5 lastTransitionTime Time
 6 status s!
cert.CertificateSigningRequestList +tm
 1 metadata meta.ListMeta
 2 items [cert.CertificateSigningRequest!
events.Event +tm
 1 metadata meta.ObjectMeta!
 2 eventTime MicroTime!
 3 series *events.EventSeries
 4 reportingController s
 5 reportingInstance s
 6 action s
 7 reason s
 8 regarding core.ObjectReference
 9 related *core.ObjectReference
 10 note s
 11 type s
 12 deprecatedSource core.EventSource
 13 deprecatedFirstTimestamp Time
 14 deprecatedLastTimestamp Time
 15 deprecatedCount i32
events.EventSeries
 1 count i32!
 2 lastObservedTime MicroTime!
events.EventList +tm
 1 metadata meta.ListMeta
 2 items [events.Event!
meta.Status +tm
 1 metadata meta.ListMeta
 2 status s
 3 message s
 4 reason s
 5 details *meta.StatusDetails
 6 code i32
meta.StatusDetails
 1 name s
 2 group s
 3 kind s
 4 causes [meta.StatusCause
 5 retryAfterSeconds i32
 6 uid s
meta.StatusCause
 1 reason s
 2 message s
 3 field s
)";
  return kText;
}

}  // namespace kiln::api::internal
