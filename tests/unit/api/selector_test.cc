// Tests for label and field selectors (src/api/selector.h).
#include "api/selector.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln::api {
namespace {

using nlohmann::json;

bool sel(const std::string& s, const json& labels) {
  auto p = LabelSelector::parse(s);
  EXPECT_TRUE(p.ok()) << s << ": " << p.status().toString();
  return p.ok() && p->matches(labels);
}

TEST(LabelSelector, EqualityAndSetBasedForms) {
  json l = {{"app", "web"}, {"tier", "front"}, {"n", "5"}};
  EXPECT_TRUE(sel("", l));
  EXPECT_TRUE(sel("app=web", l));
  EXPECT_TRUE(sel("app==web,tier=front", l));
  EXPECT_FALSE(sel("app=db", l));
  EXPECT_TRUE(sel("app!=db", l));
  EXPECT_TRUE(sel("missing!=x", l));  // != matches objects without the label
  EXPECT_TRUE(sel("app in (web, db)", l));
  EXPECT_FALSE(sel("app notin (web,db)", l));
  EXPECT_TRUE(sel("missing notin (a)", l));
  EXPECT_TRUE(sel("app", l));
  EXPECT_FALSE(sel("!app", l));
  EXPECT_TRUE(sel("!missing", l));
  EXPECT_TRUE(sel("n>3,n<6", l));
  EXPECT_FALSE(sel("n>5", l));
  EXPECT_TRUE(sel("example.com/role in (x,y),app", json{{"example.com/role", "y"}, {"app", ""}}));
  EXPECT_FALSE(sel("app", json()));
}

TEST(LabelSelector, Errors) {
  for (const char* bad : {"app in web", "app in ()", "=x", "a b", "app=web,", "-bad=x",
                          "app=va lue", "x>y", "Bad.Prefix/x=y", "a,,b", "app in (a b)"}) {
    auto p = LabelSelector::parse(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
      EXPECT_NE(p.status().message().find("unable to parse requirement"), std::string::npos)
          << p.status().message();
    }
  }
  // An empty value is valid upstream.
  EXPECT_TRUE(LabelSelector::parse("a=").ok());
  EXPECT_TRUE(LabelSelector::parse("a==").ok());
}

TEST(LabelSelector, FromJsonAndToString) {
  auto s = LabelSelector::fromJson(json::parse(R"({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                           {"key": "legacy", "operator": "DoesNotExist"}]})"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->toString(), "app=web,!legacy,tier in (a,b)");
  EXPECT_TRUE(s->matches({{"app", "web"}, {"tier", "a"}}));
  EXPECT_FALSE(s->matches({{"app", "web"}, {"tier", "a"}, {"legacy", "1"}}));
  EXPECT_FALSE(
      LabelSelector::fromJson(
          json::parse(R"({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})"))
          .ok());
  EXPECT_FALSE(LabelSelector::fromJson(
                   json::parse(R"({"matchExpressions": [{"key": "a", "operator": "Near"}]})"))
                   .ok());
  EXPECT_TRUE(LabelSelector::fromJson(json::object())->matches(json()));
}

TEST(FieldSelector, PerKindFields) {
  json pod = json::parse(R"({"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
      "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})");
  auto f = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed,metadata.name==p", "Pod");
  ASSERT_TRUE(f.ok()) << f.status().toString();
  EXPECT_TRUE(f->matches(pod));
  f = FieldSelector::parse("spec.hostNetwork=false,metadata.namespace=other", "Pod");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->matches(pod));
  f = FieldSelector::parse("spec.hostNetwork=false", "Pod");
  EXPECT_TRUE(f->matches(pod));  // absent bool reads as false, as upstream
  json ev = json::parse(R"({"involvedObject": {"kind": "Pod", "name": "p"},
                            "source": {"component": "kubelet"}, "type": "Normal"})");
  f = FieldSelector::parse("involvedObject.name=p,source=kubelet,type=Normal", "Event");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->matches(ev));
  auto bad = FieldSelector::parse("status.hostIP=1.2.3.4", "Pod");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "field label not supported: status.hostIP");
  EXPECT_FALSE(FieldSelector::parse("spec.nodeName=x", "ConfigMap").ok());
  EXPECT_FALSE(FieldSelector::parse("nonsense", "Pod").ok());
  f = FieldSelector::parse(R"(metadata.name=a\,b)", "ConfigMap");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->matches(json::parse(R"({"metadata": {"name": "a,b"}})")));
}

}  // namespace
}  // namespace kiln::api
