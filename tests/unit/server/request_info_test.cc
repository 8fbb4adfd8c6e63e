// Tests for request-info parsing against upstream's requestinfo_test.go cases.
#include "server/apiserver/request_info.h"

#include <gtest/gtest.h>

namespace kiln::apiserver {
namespace {

struct Case {
  const char* method;
  const char* target;
  const char* verb;
  const char* group;
  const char* version;
  const char* ns;
  const char* resource;
  const char* name;
  const char* subresource;
};

TEST(RequestInfo, ResourceRequests) {
  const Case cases[] = {
      {"GET", "/api/v1/namespaces", "list", "", "v1", "", "namespaces", "", ""},
      {"GET", "/api/v1/namespaces/other", "get", "", "v1", "other", "namespaces", "other", ""},
      {"GET", "/api/v1/namespaces/other/pods", "list", "", "v1", "other", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "foo", ""},
      {"HEAD", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "foo", ""},
      {"GET", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods/foo/log?follow=true", "get", "", "v1", "other", "pods",
       "foo", "log"},
      {"GET", "/api/v1/namespaces/other/pods?watch=true&resourceVersion=5", "watch", "", "v1",
       "other", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "", "v1", "other", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods?watch=false", "list", "", "v1", "other", "pods", "",
       ""},
      {"GET", "/api/v1/watch/namespaces/other/pods", "watch", "", "v1", "other", "pods", "", ""},
      {"POST", "/api/v1/namespaces/other/pods", "create", "", "v1", "other", "pods", "", ""},
      {"PUT", "/api/v1/namespaces/other/pods/foo", "update", "", "v1", "other", "pods", "foo", ""},
      {"PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "", "v1", "other", "pods", "foo", ""},
      {"DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "", "v1", "other", "pods", "foo",
       ""},
      {"DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "", "v1", "other", "pods", "",
       ""},
      {"PUT", "/api/v1/namespaces/other/finalize", "update", "", "v1", "other", "namespaces",
       "other", "finalize"},
      {"PUT", "/api/v1/namespaces/other/status", "update", "", "v1", "other", "namespaces", "other",
       "status"},
      {"GET", "/apis/apps/v1/namespaces/default/deployments/web/scale", "get", "apps", "v1",
       "default", "deployments", "web", "scale"},
      {"POST", "/api/v1/namespaces/default/pods/p/exec?command=sh&stdin=true", "create", "", "v1",
       "default", "pods", "p", "exec"},
      {"GET", "/apis/storage.k8s.io/v1/storageclasses/local-path", "get", "storage.k8s.io", "v1",
       "", "storageclasses", "local-path", ""},
      {"GET", "/api/v1/nodes/n1/proxy/stats/summary", "get", "", "v1", "", "nodes", "n1", "proxy"},
  };
  for (const auto& c : cases) {
    auto r = parseRequestInfo(c.method, c.target);
    ASSERT_TRUE(r.ok()) << c.target;
    EXPECT_TRUE(r->isResourceRequest) << c.target;
    EXPECT_EQ(r->verb, c.verb) << c.method << " " << c.target;
    EXPECT_EQ(r->apiGroup, c.group) << c.target;
    EXPECT_EQ(r->apiVersion, c.version) << c.target;
    EXPECT_EQ(r->namespaceName, c.ns) << c.target;
    EXPECT_EQ(r->resource, c.resource) << c.target;
    EXPECT_EQ(r->name, c.name) << c.target;
    EXPECT_EQ(r->subresource, c.subresource) << c.target;
  }
}

TEST(RequestInfo, NonResourceRequests) {
  for (const char* t : {"/", "/version", "/healthz", "/api", "/apis", "/apis/apps", "/api/v1",
                        "/apis/apps/v1", "/openapi/v3", "/readyz?verbose"}) {
    auto r = parseRequestInfo("GET", t);
    ASSERT_TRUE(r.ok()) << t;
    EXPECT_FALSE(r->isResourceRequest) << t;
    EXPECT_EQ(r->verb, "get") << t;
  }
  auto r = parseRequestInfo("GET", "/apis/apps/v1");
  EXPECT_EQ(r->apiGroup, "apps");
  EXPECT_EQ(r->apiVersion, "v1");
}

TEST(RequestInfo, PercentDecoding) {
  auto r = parseRequestInfo("GET", "/api/v1/namespaces/default/configmaps/a%2Eb");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "a.b");
  EXPECT_FALSE(parseRequestInfo("GET", "/api/v1/namespaces/%zz").ok());
  EXPECT_FALSE(parseRequestInfo("GET", "/api/v1/namespaces/%2").ok());
  EXPECT_FALSE(percentDecode("%").ok());
  EXPECT_EQ(*percentDecode("a%20b"), "a b");
}

TEST(RequestInfo, QueryParams) {
  std::string t =
      "/api/v1/pods?labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&limit=500&command=sh&command=-c"
      "&command=echo%20hi&empty=";
  EXPECT_EQ(queryParam(t, "labelSelector"), "app=web,tier in (a,b)");
  EXPECT_EQ(queryParam(t, "limit"), "500");
  EXPECT_EQ(queryParam(t, "missing"), "");
  EXPECT_EQ(queryParam(t, "empty"), "");
  EXPECT_EQ(queryParams(t, "command"), (std::vector<std::string>{"sh", "-c", "echo hi"}));
  EXPECT_EQ(queryParam("/no-query", "a"), "");
}

}  // namespace
}  // namespace kiln::apiserver
