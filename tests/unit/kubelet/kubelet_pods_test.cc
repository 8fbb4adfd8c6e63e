// Unit tests of the kubelet's pure pod logic (agent/kubelet/kubelet_pods.h): QoS classes, DNS
// config per dnsPolicy, /etc/hosts, back-off, restart decisions and the status generated from
// CRI container states (what `kubectl get pods` prints from).
#include "agent/kubelet/kubelet_pods.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln::kubelet {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json pod(json containers, std::string restartPolicy = "Always", json init = json::array()) {
  json p = {{"metadata", {{"name", "web"}, {"namespace", "team"}, {"uid", "u1"}}},
            {"spec", {{"containers", containers}, {"restartPolicy", restartPolicy}}},
            {"status", json::object()}};
  if (!init.empty()) p["spec"]["initContainers"] = init;
  return p;
}
json ctr(const std::string& name, json resources = json::object()) {
  return {{"name", name}, {"image", "busybox"}, {"resources", resources}};
}
RuntimeContainer rc(const std::string& name, const std::string& state, int exitCode = 0,
                    int attempt = 0) {
  RuntimeContainer c;
  c.id = name + "-id" + std::to_string(attempt);
  c.name = name;
  c.state = state;
  c.exitCode = exitCode;
  c.attempt = attempt;
  c.createdAt = 1'700'000'000'000'000'000 + attempt;
  c.startedAt = c.createdAt;
  if (state == "CONTAINER_EXITED") c.finishedAt = c.createdAt + 1'000'000'000;
  c.imageRef = "sha256:abc";
  return c;
}
std::string stateKey(const json& s) { return s["state"].begin().key(); }

TEST(KubeletQos, ClassesAsUpstream) {
  EXPECT_EQ(qosClass(pod(json::array({ctr("a")}))), "BestEffort");
  EXPECT_EQ(qosClass(pod(json::array({ctr("a", {{"requests", {{"cpu", "100m"}}}})}))), "Burstable");
  EXPECT_EQ(
      qosClass(pod(json::array({ctr("a", {{"limits", {{"cpu", "1"}, {"memory", "64Mi"}}}})}))),
      "Guaranteed");
  EXPECT_EQ(qosClass(pod(json::array({ctr("a", {{"limits", {{"cpu", "1"}, {"memory", "64Mi"}}},
                                                {"requests", {{"cpu", "500m"}}}})}))),
            "Burstable");
  // One container without limits makes the pod Burstable.
  EXPECT_EQ(qosClass(pod(json::array(
                {ctr("a", {{"limits", {{"cpu", "1"}, {"memory", "64Mi"}}}}), ctr("b")}))),
            "Burstable");
  EXPECT_EQ(podCgroupParent("kiln", pod(json::array({ctr("a")}))),
            "kiln/kubepods/besteffort/podu1");
  // Malformed input never throws.
  EXPECT_EQ(qosClass(json{{"spec", {{"containers", "x"}}}}), "BestEffort");
  EXPECT_EQ(qosClass(json::array()), "BestEffort");
}

TEST(KubeletDns, PoliciesAsUpstream) {
  DnsSettings d;
  parseResolvConf("nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n", &d);
  json p = pod(json::array({ctr("a")}));
  json cf = podDnsConfig(p, d);
  EXPECT_EQ(cf["servers"], json::array({"10.43.0.10"}));
  EXPECT_EQ(cf["searches"], json::array({"team.svc.cluster.local", "svc.cluster.local",
                                         "cluster.local", "corp.example"}));
  EXPECT_EQ(cf["options"], json::array({"ndots:5"}));
  p["spec"]["dnsPolicy"] = "Default";
  json def = podDnsConfig(p, d);
  EXPECT_EQ(def["servers"], json::array({"192.0.2.53"}));
  EXPECT_EQ(def["options"], json::array({"edns0"}));
  // ClusterFirst on the host network falls back to Default; WithHostNet keeps the cluster DNS.
  p["spec"]["dnsPolicy"] = "ClusterFirst";
  p["spec"]["hostNetwork"] = true;
  EXPECT_EQ(podDnsConfig(p, d)["servers"], json::array({"192.0.2.53"}));
  p["spec"]["dnsPolicy"] = "ClusterFirstWithHostNet";
  EXPECT_EQ(podDnsConfig(p, d)["servers"], json::array({"10.43.0.10"}));
  p["spec"]["dnsPolicy"] = "None";
  p["spec"]["dnsConfig"] = {
      {"nameservers", {"192.0.2.1"}},
      {"searches", {"a.example"}},
      {"options", {{{"name", "ndots"}, {"value", "2"}}, {{"name", "rotate"}}}}};
  json none = podDnsConfig(p, d);
  EXPECT_EQ(none["servers"], json::array({"192.0.2.1"}));
  EXPECT_EQ(none["searches"], json::array({"a.example"}));
  EXPECT_EQ(none["options"], json::array({"ndots:2", "rotate"}));
}

TEST(KubeletHosts, ManagedHostsFile) {
  json p = pod(json::array({ctr("a")}));
  p["spec"]["hostname"] = "h1";
  p["spec"]["subdomain"] = "sub";
  p["spec"]["hostAliases"] = {{{"ip", "192.0.2.9"}, {"hostnames", {"foo", "bar"}}}};
  std::string h = managedHostsFile(p, {"10.42.0.5"}, "cluster.local");
  EXPECT_NE(h.find("127.0.0.1\tlocalhost\n"), std::string::npos);
  EXPECT_NE(h.find("10.42.0.5\th1.sub.team.svc.cluster.local\th1\n"), std::string::npos) << h;
  EXPECT_NE(h.find("# Entries added by HostAliases.\n192.0.2.9\tfoo\tbar\n"), std::string::npos);
}

TEST(KubeletBackoff, DoublesToMaxAndResetsAfterStableRun) {
  Backoff b(10s, 300s);
  auto t0 = Clock::now();
  EXPECT_FALSE(b.inBackoffSince("k", t0, t0));
  EXPECT_EQ(b.next("k", t0), 10s);
  EXPECT_TRUE(b.inBackoffSince("k", t0, t0 + 5s));
  EXPECT_FALSE(b.inBackoffSince("k", t0, t0 + 11s));
  EXPECT_EQ(b.next("k", t0 + 11s), 20s);
  EXPECT_EQ(b.next("k", t0 + 40s), 40s);
  auto t = t0 + 40s;
  for (int i = 0; i < 6; ++i) b.next("k", t += 1s);
  EXPECT_EQ(b.get("k"), 300s);
  // Ten minutes without a restart: back to the initial delay.
  EXPECT_EQ(b.next("k", t + 601s), 10s);
  b.forgetPrefix("k");
  EXPECT_EQ(b.get("k"), 0s);
}

TEST(KubeletActions, RestartPolicies) {
  PodRuntimeView v;
  v.sandboxReady = true;
  v.containers = {rc("a", "CONTAINER_EXITED", 1)};
  EXPECT_EQ(computePodActions(pod(json::array({ctr("a")}), "Always"), v).start,
            std::vector<std::string>{"a"});
  EXPECT_EQ(computePodActions(pod(json::array({ctr("a")}), "OnFailure"), v).start,
            std::vector<std::string>{"a"});
  auto never = computePodActions(pod(json::array({ctr("a")}), "Never"), v);
  EXPECT_TRUE(never.start.empty());
  EXPECT_TRUE(never.podDone);
  v.containers = {rc("a", "CONTAINER_EXITED", 0)};
  EXPECT_TRUE(computePodActions(pod(json::array({ctr("a")}), "OnFailure"), v).podDone);
  // No sandbox yet: create it and start everything.
  PodRuntimeView empty;
  auto first = computePodActions(pod(json::array({ctr("a"), ctr("b")})), empty);
  EXPECT_TRUE(first.createSandbox);
  EXPECT_EQ(first.start, (std::vector<std::string>{"a", "b"}));
}

TEST(KubeletActions, InitContainersRunOneByOneThenContainers) {
  json p = pod(json::array({ctr("main")}), "Always", json::array({ctr("i1"), ctr("i2")}));
  PodRuntimeView v;
  v.sandboxReady = true;
  auto a = computePodActions(p, v);
  EXPECT_EQ(a.start, std::vector<std::string>{"i1"});
  EXPECT_TRUE(a.startAreInit);
  v.containers = {rc("i1", "CONTAINER_RUNNING")};
  EXPECT_TRUE(computePodActions(p, v).start.empty());  // waits for i1
  v.containers = {rc("i1", "CONTAINER_EXITED", 0)};
  EXPECT_EQ(computePodActions(p, v).start, std::vector<std::string>{"i2"});
  v.containers.push_back(rc("i2", "CONTAINER_EXITED", 0));
  a = computePodActions(p, v);
  EXPECT_EQ(a.start, std::vector<std::string>{"main"});
  EXPECT_FALSE(a.startAreInit);
  // A failed init container under Never fails the pod.
  json never = pod(json::array({ctr("main")}), "Never", json::array({ctr("i1")}));
  v.containers = {rc("i1", "CONTAINER_EXITED", 3)};
  EXPECT_TRUE(computePodActions(never, v).podDone);
  // A sidecar starts and stays running while the next init container runs.
  json side = ctr("proxy");
  side["restartPolicy"] = "Always";
  json ps = pod(json::array({ctr("main")}), "Always", json::array({side, ctr("i1")}));
  v.containers = {};
  EXPECT_EQ(computePodActions(ps, v).start, std::vector<std::string>{"proxy"});
  v.containers = {rc("proxy", "CONTAINER_RUNNING")};
  EXPECT_EQ(computePodActions(ps, v).start, std::vector<std::string>{"i1"});
}

TEST(KubeletStatus, RunningPodIsReady) {
  json p = pod(json::array({ctr("a")}));
  PodRuntimeView v;
  v.sandboxReady = true;
  v.podIPs = {"10.42.0.7"};
  v.containers = {rc("a", "CONTAINER_RUNNING")};
  json st = generatePodStatus(p, v, {"192.0.2.10"}, Clock::now());
  EXPECT_EQ(st["phase"], "Running");
  EXPECT_EQ(st["podIP"], "10.42.0.7");
  EXPECT_EQ(st["hostIP"], "192.0.2.10");
  EXPECT_EQ(st["qosClass"], "BestEffort");
  const json& cs = st["containerStatuses"][0];
  EXPECT_EQ(cs["ready"], true);
  EXPECT_EQ(cs["started"], true);
  EXPECT_EQ(cs["restartCount"], 0);
  EXPECT_EQ(cs["containerID"], "kiln://a-id0");
  EXPECT_EQ(stateKey(cs), "running");
  std::map<std::string, std::string> conds;
  for (const auto& c : st["conditions"]) conds[c["type"]] = c["status"];
  EXPECT_EQ(conds["Ready"], "True");
  EXPECT_EQ(conds["ContainersReady"], "True");
  EXPECT_EQ(conds["Initialized"], "True");
  EXPECT_EQ(conds["PodReadyToStartContainers"], "True");
  // A readiness probe that has not succeeded keeps the pod unready.
  v.extra["a"].ready = false;
  json unready = generatePodStatus(p, v, {}, Clock::now());
  EXPECT_EQ(unready["containerStatuses"][0]["ready"], false);
  for (const auto& c : unready["conditions"]) {
    if (c["type"] == "Ready") {
      EXPECT_EQ(c["status"], "False");
      EXPECT_EQ(c["reason"], "ContainersNotReady");
      EXPECT_EQ(c["message"], "containers with unready status: [a]");
    }
  }
}

TEST(KubeletStatus, CompletedErrorAndCrashLoop) {
  PodRuntimeView v;
  v.containers = {rc("a", "CONTAINER_EXITED", 0)};
  json done = generatePodStatus(pod(json::array({ctr("a")}), "Never"), v, {}, Clock::now());
  EXPECT_EQ(done["phase"], "Succeeded");
  EXPECT_EQ(done["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
  v.containers = {rc("a", "CONTAINER_EXITED", 2)};
  json failed = generatePodStatus(pod(json::array({ctr("a")}), "Never"), v, {}, Clock::now());
  EXPECT_EQ(failed["phase"], "Failed");
  EXPECT_EQ(failed["containerStatuses"][0]["state"]["terminated"]["reason"], "Error");
  EXPECT_EQ(failed["containerStatuses"][0]["state"]["terminated"]["exitCode"], 2);
  // Crash looping under Always: Running phase, waiting CrashLoopBackOff, lastState, restarts.
  v.sandboxReady = true;
  v.containers = {rc("a", "CONTAINER_EXITED", 1, 2), rc("a", "CONTAINER_EXITED", 1, 1)};
  v.extra["a"].waitingReason = "CrashLoopBackOff";
  v.extra["a"].waitingMessage = "back-off 20s restarting failed container=a";
  json loop = generatePodStatus(pod(json::array({ctr("a")})), v, {}, Clock::now());
  EXPECT_EQ(loop["phase"], "Running");
  const json& cs = loop["containerStatuses"][0];
  EXPECT_EQ(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
  EXPECT_EQ(cs["lastState"]["terminated"]["exitCode"], 1);
  EXPECT_EQ(cs["restartCount"], 2);
  EXPECT_EQ(cs["ready"], false);
  // OOMKilled comes through from the runtime's reason.
  RuntimeContainer oom = rc("a", "CONTAINER_EXITED", 137);
  oom.reason = "OOMKilled";
  v.containers = {oom};
  v.extra.clear();
  json o = generatePodStatus(pod(json::array({ctr("a")}), "Never"), v, {}, Clock::now());
  EXPECT_EQ(o["containerStatuses"][0]["state"]["terminated"]["reason"], "OOMKilled");
}

TEST(KubeletStatus, PendingWhileInitializing) {
  json p = pod(json::array({ctr("main")}), "Always", json::array({ctr("init")}));
  PodRuntimeView v;
  v.sandboxReady = true;
  v.containers = {rc("init", "CONTAINER_RUNNING")};
  json st = generatePodStatus(p, v, {}, Clock::now());
  EXPECT_EQ(st["phase"], "Pending");
  EXPECT_EQ(st["initContainerStatuses"][0]["state"].contains("running"), true);
  EXPECT_EQ(st["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");
  for (const auto& c : st["conditions"]) {
    if (c["type"] == "Initialized") {
      EXPECT_EQ(c["status"], "False");
      EXPECT_EQ(c["reason"], "ContainersNotInitialized");
    }
  }
  v.containers = {rc("init", "CONTAINER_EXITED", 0), rc("main", "CONTAINER_RUNNING")};
  json run = generatePodStatus(p, v, {}, Clock::now());
  EXPECT_EQ(run["phase"], "Running");
  EXPECT_EQ(run["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
  // Image pull errors show as the waiting reason.
  PodRuntimeView none;
  none.sandboxReady = true;
  none.extra["main"].waitingReason = "ImagePullBackOff";
  json pull = generatePodStatus(pod(json::array({ctr("main")})), none, {}, Clock::now());
  EXPECT_EQ(pull["phase"], "Pending");
  EXPECT_EQ(pull["containerStatuses"][0]["state"]["waiting"]["reason"], "ImagePullBackOff");
}

TEST(KubeletStatus, KeepsTransitionTimesStartTimeAndTerminalPhase) {
  json p = pod(json::array({ctr("a")}));
  PodRuntimeView v;
  v.sandboxReady = true;
  v.containers = {rc("a", "CONTAINER_RUNNING")};
  json first = generatePodStatus(p, v, {}, Clock::now() - 60s);
  p["status"] = first;
  p["status"]["conditions"].push_back({{"type", "PodScheduled"}, {"status", "True"}});
  json second = generatePodStatus(p, v, {}, Clock::now());
  EXPECT_EQ(second["startTime"], first["startTime"]);
  for (const auto& c : second["conditions"]) {
    if (c["type"] == "Ready") {
      EXPECT_EQ(c["lastTransitionTime"], first["conditions"][3]["lastTransitionTime"]);
    }
  }
  bool scheduled = false;
  for (const auto& c : second["conditions"]) scheduled |= c["type"] == "PodScheduled";
  EXPECT_TRUE(scheduled);
  p["status"]["phase"] = "Succeeded";
  EXPECT_EQ(generatePodStatus(p, v, {}, Clock::now())["phase"], "Succeeded");
}

TEST(KubeletStatus, RuntimeContainerFromCriJson) {
  json s = {{"id", "abc"},
            {"metadata", {{"name", "a"}, {"attempt", 3}}},
            {"state", "CONTAINER_EXITED"},
            {"exitCode", 137},
            {"reason", "OOMKilled"},
            {"createdAt", "1700000000000000000"},
            {"finishedAt", "1700000001000000000"},
            {"annotations", {{kRestartCountAnnotation, "4"}}}};
  RuntimeContainer c = runtimeContainerFromCri(s);
  EXPECT_EQ(c.name, "a");
  EXPECT_EQ(c.attempt, 4);
  EXPECT_EQ(c.exitCode, 137);
  EXPECT_EQ(c.finishedAt, 1700000001000000000);
  EXPECT_EQ(runtimeContainerFromCri(json("garbage")).state, "CONTAINER_CREATED");
}

}  // namespace
}  // namespace kiln::kubelet
