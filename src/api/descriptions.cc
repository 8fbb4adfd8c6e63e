// Parses the description table (descriptions_text.cc) and attaches it to OpenAPI schemas.
//
// Table grammar, one item a line (blank lines and lines starting with '#' are ignored):
//   Type: text                 a type's description
//   Type < Base: text          the same, and fields missing here are looked up in Base
//     field: text              a field of the last type (two leading spaces)
//     field!: text             the same, and the field is required
#include "api/descriptions.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace kiln::api {
namespace {

struct Table {
  std::map<std::string, std::string_view, std::less<>> text;  // "Type" / "Type.field" -> text
  std::map<std::string, std::string, std::less<>> base;       // "Type" -> "Base"
  std::set<std::string, std::less<>> required;                // "Type.field"
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

const Table& table() {
  static const Table* t = [] {
    auto* out = new Table();
    std::string_view text = internal::openApiDescriptionsText();
    std::string type;
    while (!text.empty()) {
      size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      if (trim(line).empty() || trim(line).front() == '#') continue;
      size_t colon = line.find(": ");
      if (colon == std::string_view::npos) continue;
      std::string_view key = line.substr(0, colon);
      std::string_view desc = trim(line.substr(colon + 2));
      if (line.front() != ' ') {
        size_t lt = key.find('<');
        type = std::string(trim(key.substr(0, lt)));
        if (lt != std::string_view::npos) out->base[type] = std::string(trim(key.substr(lt + 1)));
        if (!desc.empty()) out->text[type] = desc;
        continue;
      }
      key = trim(key);
      bool required = !key.empty() && key.back() == '!';
      if (required) key.remove_suffix(1);
      std::string k = type + "." + std::string(key);
      if (required) out->required.insert(k);
      out->text[k] = desc;
    }
    return out;
  }();
  return *t;
}

// `type` and its bases, nearest first.
template <typename F>
bool forTypeChain(std::string_view type, F&& f) {
  const Table& t = table();
  std::string cur(type);
  for (int depth = 0; depth < 8 && !cur.empty(); ++depth) {
    if (f(cur)) return true;
    auto it = t.base.find(cur);
    if (it == t.base.end()) break;
    cur = it->second;
  }
  return false;
}

}  // namespace

std::string_view openApiDescription(std::string_view type, std::string_view field) {
  const Table& t = table();
  std::string_view found;
  auto look = [&](const std::string& key) {
    auto it = t.text.find(key);
    if (it == t.text.end()) return false;
    found = it->second;
    return true;
  };
  if (field.empty()) {
    look(std::string(type));
    return found;
  }
  if (forTypeChain(type,
                   [&](const std::string& ty) { return look(ty + "." + std::string(field)); }))
    return found;
  if (type.size() > 4 && type.substr(type.size() - 4) == "List" &&
      look("List." + std::string(field))) {
    return found;
  }
  look("*." + std::string(field));
  return found;
}

bool openApiFieldRequired(std::string_view type, std::string_view field) {
  const Table& t = table();
  return forTypeChain(type, [&](const std::string& ty) {
    return t.required.count(ty + "." + std::string(field)) > 0;
  });
}

void describeOpenApiSchemas(nlohmann::json& schemas) {
  if (!schemas.is_object()) return;
  for (auto& [name, schema] : schemas.items()) {
    if (!schema.is_object()) continue;
    std::string type = name.substr(name.rfind('.') + 1);
    if (auto d = openApiDescription(type); !d.empty()) schema["description"] = std::string(d);
    auto props = schema.find("properties");
    if (props == schema.end() || !props->is_object()) continue;
    nlohmann::json required = nlohmann::json::array();
    for (auto& [field, prop] : props->items()) {
      if (!prop.is_object()) continue;
      if (auto d = openApiDescription(type, field); !d.empty())
        prop["description"] = std::string(d);
      if (openApiFieldRequired(type, field)) required.push_back(field);
    }
    if (!required.empty()) schema["required"] = std::move(required);
  }
}

}  // namespace kiln::api
