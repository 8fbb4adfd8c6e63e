// YAML to JSON (see yaml_json.h), on yaml-cpp.
#include "api/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>

namespace kiln::api {

using nlohmann::json;

namespace {

constexpr int kMaxDepth = 100;

json scalar(const YAML::Node& n) {
  const std::string& v = n.Scalar();
  if (n.Tag() != "?") return v;  // quoted, or explicitly tagged: a string
  if (v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL") return nullptr;
  if (v == "true" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "False" || v == "FALSE") return false;
  static const std::regex kInt("[-+]?(0|[1-9][0-9]*)");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (std::regex_match(v, kInt)) {
    errno = 0;
    char* end = nullptr;
    long long i = std::strtoll(v.c_str(), &end, 10);
    if (errno == 0) return i;
    return std::strtod(v.c_str(), nullptr);
  }
  if (std::regex_match(v, kFloat)) return std::strtod(v.c_str(), nullptr);
  return v;
}

StatusOr<json> convert(const YAML::Node& n, int depth) {
  if (depth > kMaxDepth) return Status(Code::kInvalidArgument, "yaml: nesting too deep");
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      return scalar(n);
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& e : n) {
        KILN_ASSIGN_OR_RETURN(json v, convert(e, depth + 1));
        a.push_back(std::move(v));
      }
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          return Status(Code::kInvalidArgument, "yaml: mapping keys must be scalars");
        }
        KILN_ASSIGN_OR_RETURN(json v, convert(kv.second, depth + 1));
        o[kv.first.Scalar()] = std::move(v);
      }
      return o;
    }
  }
  return json(nullptr);
}

}  // namespace

StatusOr<json> yamlToJson(const std::string& text) {
  try {
    YAML::Node root = YAML::Load(text);
    return convert(root, 0);
  } catch (const YAML::Exception& e) {
    return Status(Code::kInvalidArgument,
                  std::string("yaml: line ") + std::to_string(e.mark.line + 1) + ": " + e.msg);
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, std::string("yaml: ") + e.what());
  }
}

}  // namespace kiln::api
