// Label and field selectors as the Kubernetes API defines them.
// - Label selectors, string form (`?labelSelector=`, k8s.io/apimachinery/pkg/labels): comma-
//   separated requirements `key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (a,b)`,
//   `key notin (a,b)`, `key>n`, `key<n`, with upstream's key/value syntax checks; and the
//   structured metav1.LabelSelector (matchLabels + matchExpressions) that workloads carry.
// - Field selectors (`?fieldSelector=`): `path=v`, `path==v`, `path!=v`, over the fields each
//   kind supports upstream (metadata.name and metadata.namespace everywhere, spec.nodeName and
//   status.phase for pods, involvedObject.* for events, ...).
// Parsed selectors are immutable values, safe to share between threads.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::api {

class LabelSelector {
 public:
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist, kGreater, kLess };
  struct Requirement {
    std::string key;
    Op op = Op::kEquals;
    std::vector<std::string> values;
  };

  // Matches everything.
  LabelSelector() = default;
  // The string form; InvalidArgument with upstream-like text on bad input.
  static StatusOr<LabelSelector> parse(const std::string& s);
  // A metav1.LabelSelector object. `null`/absent means "nothing" upstream for workloads; callers
  // decide: this returns a selector matching everything for an empty object {}.
  static StatusOr<LabelSelector> fromJson(const nlohmann::json& selector);

  // `labels` is an object of string values (or null/absent: no labels).
  bool matches(const nlohmann::json& labels) const;
  bool empty() const { return reqs_.empty(); }
  const std::vector<Requirement>& requirements() const { return reqs_; }
  // The canonical string form, requirements sorted by key ("a=b,c in (d,e)").
  std::string toString() const;

 private:
  std::vector<Requirement> reqs_;
};

class FieldSelector {
 public:
  struct Requirement {
    std::string field;
    bool equals = true;
    std::string value;
  };
  FieldSelector() = default;
  // Checks each field against what `kind` supports upstream ("field label not supported: x").
  static StatusOr<FieldSelector> parse(const std::string& s, const std::string& kind);
  bool matches(const nlohmann::json& object) const;
  bool empty() const { return reqs_.empty(); }
  const std::vector<Requirement>& requirements() const { return reqs_; }

 private:
  std::vector<Requirement> reqs_;
  std::string kind_;
};

}  // namespace kiln::api
