// Tests for per-kind defaults and validation (src/server/registry/strategy.h).
#include "server/registry/strategy.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/resources.h"

namespace kiln::registry {
namespace {

using nlohmann::json;

const api::ResourceInfo& res(const char* group, const char* resource) {
  return *api::findResource(group, "v1", resource);
}

std::vector<std::string> errs(const char* group, const char* resource, json obj,
                              const json* old = nullptr) {
  applyDefaults(res(group, resource), obj);
  std::vector<std::string> out;
  for (const auto& e : validateObject(res(group, resource), obj, old)) out.push_back(e.toString());
  return out;
}

TEST(Strategy, PodDefaultsAsUpstream) {
  json pod = json::parse(R"({"metadata": {"name": "p"}, "spec": {"containers": [
      {"name": "a", "image": "busybox:1.36", "ports": [{"containerPort": 80}],
       "readinessProbe": {"httpGet": {"port": 80}}},
      {"name": "b", "image": "busybox"}],
      "volumes": [{"name": "c", "configMap": {"name": "x"}}]}})");
  applyDefaults(res("", "pods"), pod);
  const json& s = pod["spec"];
  EXPECT_EQ(s["restartPolicy"], "Always");
  EXPECT_EQ(s["dnsPolicy"], "ClusterFirst");
  EXPECT_EQ(s["schedulerName"], "default-scheduler");
  EXPECT_EQ(s["terminationGracePeriodSeconds"], 30);
  EXPECT_EQ(s["enableServiceLinks"], true);
  EXPECT_EQ(s["containers"][0]["imagePullPolicy"], "IfNotPresent");
  EXPECT_EQ(s["containers"][1]["imagePullPolicy"], "Always");  // no tag = latest
  EXPECT_EQ(s["containers"][0]["terminationMessagePath"], "/dev/termination-log");
  EXPECT_EQ(s["containers"][0]["ports"][0]["protocol"], "TCP");
  EXPECT_EQ(s["containers"][0]["readinessProbe"]["periodSeconds"], 10);
  EXPECT_EQ(s["containers"][0]["readinessProbe"]["httpGet"]["scheme"], "HTTP");
  EXPECT_EQ(s["volumes"][0]["configMap"]["defaultMode"], 420);
}

TEST(Strategy, WorkloadDefaults) {
  json d = json::parse(R"({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels":
      {"app": "a"}}, "template": {"metadata": {"labels": {"app": "a"}},
      "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}})");
  applyDefaults(res("apps", "deployments"), d);
  EXPECT_EQ(d["spec"]["replicas"], 1);
  EXPECT_EQ(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
  EXPECT_EQ(d["spec"]["revisionHistoryLimit"], 10);
  EXPECT_EQ(d["spec"]["progressDeadlineSeconds"], 600);
  EXPECT_EQ(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
  json job = json::parse(R"({"spec": {"template": {"spec": {"restartPolicy": "Never",
      "containers": [{"name": "c", "image": "x"}]}}}})");
  applyDefaults(res("batch", "jobs"), job);
  EXPECT_EQ(job["spec"]["completions"], 1);
  EXPECT_EQ(job["spec"]["parallelism"], 1);
  EXPECT_EQ(job["spec"]["backoffLimit"], 6);
  json queue = json::parse(R"({"spec": {"parallelism": 3}})");
  applyDefaults(res("batch", "jobs"), queue);
  EXPECT_FALSE(queue["spec"].contains("completions"));  // a work queue
  json secret = json::parse(R"({"metadata": {"name": "s"}})");
  applyDefaults(res("", "secrets"), secret);
  EXPECT_EQ(secret["type"], "Opaque");
}

TEST(Strategy, PodValidationMessages) {
  auto e = errs("", "pods", json::parse(R"({"metadata": {"name": "Bad_Pod"}, "spec": {
      "containers": [{"name": "App", "ports": [{"containerPort": 70000}],
                      "volumeMounts": [{"name": "nope", "mountPath": "/x"}]},
                     {"name": "ok", "image": "x"}, {"name": "ok", "image": "y"}],
      "restartPolicy": "Sometimes"}})"));
  ASSERT_EQ(e.size(), 7u);
  EXPECT_EQ(e[0].substr(0, 40), "metadata.name: Invalid value: \"Bad_Pod\":");
  EXPECT_EQ(e[2], "spec.containers[0].image: Required value");
  EXPECT_EQ(e[3],
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 "
            "and 65535, inclusive");
  EXPECT_EQ(e[4], "spec.containers[0].volumeMounts[0].name: Not found: \"nope\"");
  EXPECT_EQ(e[5], "spec.containers[2].name: Duplicate value: \"ok\"");
  EXPECT_EQ(e[6],
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", "
            "\"OnFailure\", \"Never\"");
  EXPECT_EQ(errs("", "pods", json::parse(R"({"metadata": {"name": "p"}, "spec": {}})")),
            std::vector<std::string>{"spec.containers: Required value"});
}

TEST(Strategy, WorkloadSelectorMustMatchTemplate) {
  json d = json::parse(R"({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels":
      {"app": "a"}}, "template": {"metadata": {"labels": {"app": "b"}},
      "spec": {"containers": [{"name": "c", "image": "x"}]}}}})");
  EXPECT_EQ(errs("apps", "deployments", d),
            std::vector<std::string>{"spec.template.metadata.labels: Invalid value: "
                                     "map[string]string{\"app\":\"b\"}: `selector` does not "
                                     "match template `labels`"});
  json noSel = d;
  noSel["spec"].erase("selector");
  EXPECT_EQ(errs("apps", "deployments", noSel)[0], "spec.selector: Required value");
  json ok = d;
  ok["spec"]["template"]["metadata"]["labels"]["app"] = "a";
  EXPECT_TRUE(errs("apps", "deployments", ok).empty());
  json changed = ok;
  changed["spec"]["selector"]["matchLabels"]["app"] = "z";
  changed["spec"]["template"]["metadata"]["labels"]["app"] = "z";
  auto e = errs("apps", "deployments", changed, &ok);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("spec.selector: Invalid value:"), std::string::npos);
  EXPECT_NE(e[0].find("field is immutable"), std::string::npos);
}

TEST(Strategy, ImmutableFieldsOnUpdate) {
  json pod = json::parse(R"({"metadata": {"name": "p"}, "spec": {"containers": [
      {"name": "a", "image": "busybox:1.36"}], "tolerations": []}})");
  applyDefaults(res("", "pods"), pod);
  json image = pod;
  image["spec"]["containers"][0]["image"] = "busybox:1.37";
  image["spec"]["activeDeadlineSeconds"] = 30;
  image["spec"]["tolerations"] = json::parse(R"([{"key": "k", "operator": "Exists"}])");
  EXPECT_TRUE(errs("", "pods", image, &pod).empty()) << "image, deadline, tolerations may change";
  json env = pod;
  env["spec"]["containers"][0]["env"] = json::parse(R"([{"name": "A", "value": "1"}])");
  auto e = errs("", "pods", env, &pod);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("spec: Forbidden: pod updates may not change fields other than "
                       "`spec.containers[*].image`",
                       0),
            0u);

  json cm = json::parse(R"({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": true})");
  json cm2 = cm;
  cm2["data"]["a"] = "2";
  EXPECT_EQ(
      errs("", "configmaps", cm2, &cm),
      std::vector<std::string>{"data: Forbidden: field is immutable when `immutable` is set"});
  json unset = cm;
  unset.erase("immutable");
  EXPECT_EQ(errs("", "configmaps", unset, &cm)[0],
            "immutable: Forbidden: field is immutable when `immutable` is set");
  EXPECT_TRUE(errs("", "configmaps", cm, &cm).empty());

  json secret = json::parse(R"({"metadata": {"name": "s"}, "type": "Opaque"})");
  json retyped = secret;
  retyped["type"] = "kubernetes.io/tls";
  EXPECT_EQ(errs("", "secrets", retyped, &secret)[0],
            "type: Invalid value: \"kubernetes.io/tls\": field is immutable");

  json job = json::parse(R"({"metadata": {"name": "j"}, "spec": {"template": {"spec": {
      "restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}})");
  applyDefaults(*api::findResource("batch", "v1", "jobs"), job);
  json job2 = job;
  job2["spec"]["template"]["spec"]["containers"][0]["image"] = "y";
  e = errs("batch", "jobs", job2, &job);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("spec.template: Invalid value:"), std::string::npos);
  EXPECT_NE(e[0].find("field is immutable"), std::string::npos);

  json pvc = json::parse(R"({"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"],
      "resources": {"requests": {"storage": "1Gi"}}}})");
  applyDefaults(res("", "persistentvolumeclaims"), pvc);
  json grown = pvc;
  grown["spec"]["resources"]["requests"]["storage"] = "2Gi";
  EXPECT_TRUE(errs("", "persistentvolumeclaims", grown, &pvc).empty());
  json modes = pvc;
  modes["spec"]["accessModes"] = {"ReadWriteMany"};
  EXPECT_EQ(errs("", "persistentvolumeclaims", modes, &pvc)[0].rfind(
                "spec: Forbidden: spec is immutable after creation", 0),
            0u);
}

TEST(Strategy, ServiceConfigMapNamespaceAndMessage) {
  auto e = errs("", "services", json::parse(R"({"metadata": {"name": "1svc"}, "spec": {
      "ports": [{"port": 80}, {"port": 0, "name": "b"}]}})"));
  ASSERT_EQ(e.size(), 3u);
  EXPECT_NE(e[0].find("a DNS-1035 label must consist"), std::string::npos);
  EXPECT_EQ(e[1], "spec.ports[0].name: Required value");
  EXPECT_EQ(e[2], "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive");
  e = errs("", "configmaps",
           json::parse(R"({"metadata": {"name": "c"}, "data": {"bad key": "v"}})"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].substr(0, 44), "data[bad key]: Invalid value: \"bad key\": a v");
  e = errs("", "namespaces", json::parse(R"({"metadata": {"name": "a.b"}})"));
  ASSERT_EQ(e.size(), 1u);
  FieldErrors two = {{"FieldValueRequired", "a", "Required value"},
                     {"FieldValueRequired", "b", "Required value"}};
  EXPECT_EQ(invalidMessage("Pod", "p", two),
            "Pod \"p\" is invalid: [a: Required value, b: Required value]");
  EXPECT_EQ(invalidMessage("Pod", "p", {two[0]}), "Pod \"p\" is invalid: a: Required value");
}

}  // namespace
}  // namespace kiln::registry
