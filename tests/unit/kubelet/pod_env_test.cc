// The container environment: every source kind, expansion, optional objects, envFrom prefixes and
// invalid keys, resourceFieldRef divisors and node-allocatable defaults, service link variables.
#include "agent/kubelet/pod_env.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

namespace kiln::kubelet {
namespace {

using nlohmann::json;

std::map<std::string, std::string> asMap(const std::vector<EnvVar>& env) {
  std::map<std::string, std::string> m;
  for (const auto& e : env) {
    EXPECT_EQ(m.count(e.name), 0u) << "duplicate " << e.name;
    m[e.name] = e.value;
  }
  return m;
}

json pod(json spec = json::object()) {
  return {{"metadata",
           {{"name", "web-0"},
            {"namespace", "prod"},
            {"uid", "u-123"},
            {"labels", {{"app", "web"}, {"tier", "front"}}},
            {"annotations", {{"note", "say \"hi\""}}}}},
          {"spec", spec}};
}

class PodEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    configMaps["prod/cfg"] = {{"data", {{"LEVEL", "debug"}, {"1bad", "x"}, {"ok.key", "y"}}},
                              {"binaryData", {{"BIN", "AAE="}}}};
    secrets["prod/sec"] = {{"data", {{"PASSWORD", "czNjcjN0"}}}};  // "s3cr3t"
    src.getConfigMap = [this](const std::string& ns, const std::string& name) -> StatusOr<json> {
      ++fetches;
      auto it = configMaps.find(ns + "/" + name);
      if (it == configMaps.end()) return notFound("configmaps \"" + name + "\" not found");
      return it->second;
    };
    src.getSecret = [this](const std::string& ns, const std::string& name) -> StatusOr<json> {
      auto it = secrets.find(ns + "/" + name);
      if (it == secrets.end()) return notFound("secrets \"" + name + "\" not found");
      return it->second;
    };
    src.warn = [this](const std::string& reason, const std::string& msg) {
      warnings.push_back(reason + ": " + msg);
    };
  }

  StatusOr<std::vector<EnvVar>> env(const json& p, const json& c) {
    return containerEnv(p, c, "192.168.1.5", {"10.42.0.7", "fd00::7"},
                        {{"cpu", "4"}, {"memory", "8Gi"}, {"ephemeral-storage", "100Gi"}}, src);
  }

  std::map<std::string, json> configMaps, secrets;
  std::vector<std::string> warnings;
  int fetches = 0;
  EnvSources src;
};

TEST_F(PodEnvTest, ValuesAndExpansion) {
  json c = {{"name", "app"},
            {"env",
             {{{"name", "A"}, {"value", "alpha"}},
              {{"name", "B"}, {"value", "$(A)-beta"}},
              {{"name", "C"}, {"value", "$$(A) $(MISSING) $(LATER) $$ $x $("}},
              {{"name", "LATER"}, {"value", "late"}},
              {{"name", "EMPTY"}, {"value", ""}}}}};
  auto r = env(pod(), c);
  ASSERT_TRUE(r.ok()) << r.status().toString();
  auto m = asMap(*r);
  EXPECT_EQ(m["A"], "alpha");
  EXPECT_EQ(m["B"], "alpha-beta");
  // $$ escapes, unknown and not-yet-defined references stay as written, lone $ kept.
  EXPECT_EQ(m["C"], "$(A) $(MISSING) $(LATER) $ $x $(");
  EXPECT_EQ(m["EMPTY"], "");
  // Declaration order is kept.
  ASSERT_GE(r->size(), 5u);
  EXPECT_EQ((*r)[0].name, "A");
  EXPECT_EQ((*r)[4].name, "EMPTY");
}

TEST_F(PodEnvTest, ExpandEnvRefsHelper) {
  std::vector<EnvVar> e = {{"X", "1"}, {"Y", "two"}};
  EXPECT_EQ(expandEnvRefs("$(X)/$(Y)/$(Z)/$$(X)", e), "1/two/$(Z)/$(X)");
  EXPECT_EQ(expandEnvRefs("no refs", e), "no refs");
  EXPECT_EQ(expandEnvRefs("trailing $", e), "trailing $");
}

TEST_F(PodEnvTest, ConfigMapAndSecretKeyRefs) {
  json c = {
      {"name", "app"},
      {"env",
       {{{"name", "LVL"},
         {"valueFrom", {{"configMapKeyRef", {{"name", "cfg"}, {"key", "LEVEL"}}}}}},
        {{"name", "PW"}, {"valueFrom", {{"secretKeyRef", {{"name", "sec"}, {"key", "PASSWORD"}}}}}},
        {{"name", "OPT"},
         {"valueFrom",
          {{"configMapKeyRef", {{"name", "nope"}, {"key", "k"}, {"optional", true}}}}}},
        {{"name", "OPTKEY"},
         {"valueFrom",
          {{"configMapKeyRef", {{"name", "cfg"}, {"key", "nokey"}, {"optional", true}}}}}},
        {{"name", "USE"}, {"value", "$(LVL):$(PW)"}}}}};
  auto r = env(pod(), c);
  ASSERT_TRUE(r.ok()) << r.status().toString();
  auto m = asMap(*r);
  EXPECT_EQ(m["LVL"], "debug");
  EXPECT_EQ(m["PW"], "s3cr3t");
  EXPECT_EQ(m.count("OPT"), 0u);
  EXPECT_EQ(m.count("OPTKEY"), 0u);
  EXPECT_EQ(m["USE"], "debug:s3cr3t");
  EXPECT_EQ(fetches, 2);  // "cfg" fetched once, "nope" once
}

TEST_F(PodEnvTest, MissingObjectsAndKeysNameThemAsUpstream) {
  json c1 = {
      {"name", "app"},
      {"env",
       {{{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "gone"}, {"key", "k"}}}}}}}}};
  auto r = env(pod(), c1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), "configmap \"gone\" not found");

  json c2 = {
      {"name", "app"},
      {"env",
       {{{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "cfg"}, {"key", "k"}}}}}}}}};
  r = env(pod(), c2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "couldn't find key k in ConfigMap prod/cfg");

  json c3 = {
      {"name", "app"},
      {"env",
       {{{"name", "X"}, {"valueFrom", {{"secretKeyRef", {{"name", "sec"}, {"key", "k"}}}}}}}}};
  r = env(pod(), c3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "couldn't find key k in Secret prod/sec");

  json c4 = {{"name", "app"}, {"envFrom", {{{"secretRef", {{"name", "nosec"}}}}}}};
  r = env(pod(), c4);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "secret \"nosec\" not found");

  // Other errors pass through unchanged.
  src.getSecret = [](const std::string&, const std::string&) -> StatusOr<json> {
    return unavailable("apiserver down");
  };
  r = env(pod(), c4);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
}

TEST_F(PodEnvTest, EnvFromPrefixOptionalInvalidKeysAndOverride) {
  json c = {{"name", "app"},
            {"envFrom",
             {{{"configMapRef", {{"name", "cfg"}}}, {"prefix", "CFG_"}},
              {{"configMapRef", {{"name", "cfg"}}}},
              {{"secretRef", {{"name", "sec"}}}},
              {{"configMapRef", {{"name", "absent"}, {"optional", true}}}}}},
            {"env", {{{"name", "LEVEL"}, {"value", "override"}}}}};
  auto r = env(pod(), c);
  ASSERT_TRUE(r.ok()) << r.status().toString();
  auto m = asMap(*r);
  EXPECT_EQ(m["CFG_LEVEL"], "debug");
  EXPECT_EQ(m["CFG_1bad"], "x");  // valid with the prefix
  EXPECT_EQ(m["CFG_ok.key"], "y");
  EXPECT_EQ(m["ok.key"], "y");        // dots are valid in env var names
  EXPECT_EQ(m.count("1bad"), 0u);     // starts with a digit: skipped
  EXPECT_EQ(m["LEVEL"], "override");  // env wins over envFrom
  EXPECT_EQ(m["PASSWORD"], "s3cr3t");
  EXPECT_EQ(m.count("BIN"), 0u);  // binaryData never reaches the environment
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "InvalidEnvironmentVariableNames: Keys [1bad] from the EnvFrom configMap prod/cfg were "
            "skipped since they are considered invalid environment variable names.");
}

TEST_F(PodEnvTest, FieldRefs) {
  json p = pod({{"nodeName", "node-a"}, {"serviceAccountName", "builder"}});
  auto f = [](const std::string& path) {
    return json{{"name", "V_" + std::to_string(std::hash<std::string>()(path) % 100000)},
                {"valueFrom", {{"fieldRef", {{"fieldPath", path}}}}}};
  };
  std::vector<std::string> paths = {"metadata.name",
                                    "metadata.namespace",
                                    "metadata.uid",
                                    "metadata.labels['app']",
                                    "metadata.annotations['note']",
                                    "metadata.labels",
                                    "spec.nodeName",
                                    "spec.serviceAccountName",
                                    "status.hostIP",
                                    "status.hostIPs",
                                    "status.podIP",
                                    "status.podIPs"};
  std::vector<std::string> want = {"web-0",       "prod",       "u-123",
                                   "web",         "say \"hi\"", "app=\"web\"\ntier=\"front\"",
                                   "node-a",      "builder",    "192.168.1.5",
                                   "192.168.1.5", "10.42.0.7",  "10.42.0.7,fd00::7"};
  for (size_t i = 0; i < paths.size(); ++i) {
    json c = {{"name", "app"}, {"env", {f(paths[i])}}};
    auto r = env(p, c);
    ASSERT_TRUE(r.ok()) << paths[i] << ": " << r.status().toString();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].value, want[i]) << paths[i];
  }
  auto a = podFieldValue(p, "v1", "metadata.annotations", "", {});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "note=\"say \\\"hi\\\"\"");

  json bad = {{"name", "app"}, {"env", {f("spec.containers")}}};
  auto r = env(p, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "field label not supported: spec.containers");
  EXPECT_FALSE(podFieldValue(p, "v2", "metadata.name", "", {}).ok());
}

TEST_F(PodEnvTest, ResourceFieldRefsWithDivisorsAndAllocatableDefaults) {
  json c = {{"name", "app"},
            {"resources",
             {{"requests", {{"cpu", "250m"}, {"memory", "64Mi"}}},
              {"limits", {{"cpu", "1500m"}, {"memory", "128Mi"}}}}}};
  auto rf = [](const std::string& name, const std::string& res, json divisor = nullptr) {
    json ref = {{"resource", res}};
    if (!divisor.is_null()) ref["divisor"] = divisor;
    return json{{"name", name}, {"valueFrom", {{"resourceFieldRef", ref}}}};
  };
  c["env"] = {rf("LCPU", "limits.cpu"),
              rf("LCPU_M", "limits.cpu", "1m"),
              rf("RCPU", "requests.cpu"),
              rf("RCPU_M", "requests.cpu", "1m"),
              rf("LMEM", "limits.memory"),
              rf("LMEM_MI", "limits.memory", "1Mi"),
              rf("RMEM_K", "requests.memory", "1k"),
              rf("LEPH_GI", "limits.ephemeral-storage", "1Gi"),
              rf("REPH", "requests.ephemeral-storage"),
              rf("ZERO_DIV", "limits.cpu", "0")};
  auto r = env(pod(), c);
  ASSERT_TRUE(r.ok()) << r.status().toString();
  auto m = asMap(*r);
  EXPECT_EQ(m["LCPU"], "2");  // ceil(1.5)
  EXPECT_EQ(m["LCPU_M"], "1500");
  EXPECT_EQ(m["RCPU"], "1");  // ceil(0.25)
  EXPECT_EQ(m["RCPU_M"], "250");
  EXPECT_EQ(m["LMEM"], "134217728");
  EXPECT_EQ(m["LMEM_MI"], "128");
  EXPECT_EQ(m["RMEM_K"], "67109");  // ceil(67108864 / 1000)
  EXPECT_EQ(m["LEPH_GI"], "100");   // no limit: the node's allocatable
  EXPECT_EQ(m["REPH"], "0");
  EXPECT_EQ(m["ZERO_DIV"], "2");  // a zero divisor means 1

  // No limits at all: node allocatable.
  json c2 = {{"name", "app"},
             {"env", {rf("LCPU", "limits.cpu"), rf("LMEM", "limits.memory", "1Gi")}}};
  r = env(pod(), c2);
  ASSERT_TRUE(r.ok());
  m = asMap(*r);
  EXPECT_EQ(m["LCPU"], "4");
  EXPECT_EQ(m["LMEM"], "8");

  json c3 = {{"name", "app"}, {"env", {rf("X", "limits.gpu")}}};
  r = env(pod(), c3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unsupported container resource : limits.gpu");

  // containerName picks another container of the pod.
  json side = {{"name", "side"}, {"resources", {{"limits", {{"memory", "1Gi"}}}}}};
  json p = pod({{"containers", json::array({side})}});
  json ref = {{"containerName", "side"}, {"resource", "limits.memory"}, {"divisor", "1Mi"}};
  auto v = resourceFieldValue(p, json(), ref, json::object());
  ASSERT_TRUE(v.ok()) << v.status().toString();
  EXPECT_EQ(*v, "1024");
  ref["containerName"] = "nope";
  EXPECT_FALSE(resourceFieldValue(p, json(), ref, json::object()).ok());
}

TEST_F(PodEnvTest, ServiceLinkVariables) {
  std::map<std::string, std::vector<json>> services;
  services["default"] = {
      {{"metadata", {{"name", "kubernetes"}, {"namespace", "default"}}},
       {"spec", {{"clusterIP", "10.43.0.1"}, {"ports", {{{"name", "https"}, {"port", 443}}}}}}},
      {{"metadata", {{"name", "other"}, {"namespace", "default"}}},
       {"spec", {{"clusterIP", "10.43.0.9"}, {"ports", {{{"port", 1}}}}}}}};
  services["prod"] = {
      {{"metadata", {{"name", "redis-master"}, {"namespace", "prod"}}},
       {"spec",
        {{"clusterIP", "10.43.5.5"},
         {"ports",
          {{{"port", 6379}}, {{"name", "metrics"}, {"port", 9121}, {"protocol", "UDP"}}}}}}},
      {{"metadata", {{"name", "headless"}, {"namespace", "prod"}}},
       {"spec", {{"clusterIP", "None"}, {"ports", {{{"port", 80}}}}}}},
      {{"metadata", {{"name", "noports"}, {"namespace", "prod"}}},
       {"spec", {{"clusterIP", "10.43.5.6"}}}}};
  src.listServices = [&](const std::string& ns) { return services[ns]; };
  json c = {{"name", "app"}, {"env", {{{"name", "REDIS_MASTER_SERVICE_HOST"}, {"value", "mine"}}}}};
  auto r = env(pod(), c);
  ASSERT_TRUE(r.ok());
  auto m = asMap(*r);
  EXPECT_EQ(m["KUBERNETES_SERVICE_HOST"], "10.43.0.1");
  EXPECT_EQ(m["KUBERNETES_SERVICE_PORT"], "443");
  EXPECT_EQ(m["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
  EXPECT_EQ(m["KUBERNETES_PORT"], "tcp://10.43.0.1:443");
  EXPECT_EQ(m["KUBERNETES_PORT_443_TCP"], "tcp://10.43.0.1:443");
  EXPECT_EQ(m["KUBERNETES_PORT_443_TCP_PROTO"], "tcp");
  EXPECT_EQ(m["KUBERNETES_PORT_443_TCP_PORT"], "443");
  EXPECT_EQ(m["KUBERNETES_PORT_443_TCP_ADDR"], "10.43.0.1");
  EXPECT_EQ(m.count("OTHER_SERVICE_HOST"), 0u);       // other namespaces' services are not linked
  EXPECT_EQ(m["REDIS_MASTER_SERVICE_HOST"], "mine");  // the container's own value wins
  EXPECT_EQ(m["REDIS_MASTER_SERVICE_PORT"], "6379");
  EXPECT_EQ(m["REDIS_MASTER_SERVICE_PORT_METRICS"], "9121");
  EXPECT_EQ(m["REDIS_MASTER_PORT_9121_UDP"], "udp://10.43.5.5:9121");
  EXPECT_EQ(m.count("HEADLESS_SERVICE_HOST"), 0u);
  EXPECT_EQ(m.count("NOPORTS_SERVICE_HOST"), 0u);
  // Service variables come first, sorted; the container's own follow.
  EXPECT_EQ(r->front().name, "KUBERNETES_PORT");
  EXPECT_EQ(r->back().name, "REDIS_MASTER_SERVICE_HOST");

  // enableServiceLinks=false keeps only the master service.
  r = env(pod({{"enableServiceLinks", false}}), json{{"name", "app"}});
  ASSERT_TRUE(r.ok());
  m = asMap(*r);
  EXPECT_EQ(m["KUBERNETES_SERVICE_HOST"], "10.43.0.1");
  EXPECT_EQ(m.count("REDIS_MASTER_SERVICE_HOST"), 0u);
}

TEST_F(PodEnvTest, MalformedInputIsAnErrorNotACrash) {
  json c = {{"name", "app"}, {"env", {{{"name", "X"}, {"valueFrom", {{"bogus", 1}}}}}}};
  EXPECT_FALSE(env(pod(), c).ok());
  json c2 = {{"name", "app"}, {"env", "notalist"}, {"envFrom", 7}};
  EXPECT_TRUE(env(pod(), c2).ok());
  secrets["prod/bad"] = {{"data", {{"K", "!!!notbase64"}}}};
  json c3 = {{"name", "app"}, {"envFrom", {{{"secretRef", {{"name", "bad"}}}}}}};
  EXPECT_FALSE(env(pod(), c3).ok());
  EXPECT_TRUE(env(json(42), json("x")).ok());
}

}  // namespace
}  // namespace kiln::kubelet
