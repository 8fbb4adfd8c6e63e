// JSON patch, JSON merge patch and strategic merge patch (see patch.h). The strategic merge
// metadata of the built-in types comes from patch_meta.h.
#include "api/patch.h"

#include "api/patch_meta.h"

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

namespace kiln::api {

using nlohmann::json;

namespace {

using meta::FieldMeta;
using meta::lookupType;
using meta::rootType;
using meta::TypeMeta;

Status invalid(const std::string& m) { return Status(Code::kInvalidArgument, m); }

// ------------------------------------------------------------------------------------------------
// JSON patch (RFC 6902)
// ------------------------------------------------------------------------------------------------

StatusOr<std::vector<std::string>> parsePointer(const std::string& p) {
  std::vector<std::string> out;
  if (p.empty()) return out;
  if (p[0] != '/') return invalid("invalid JSON pointer \"" + p + "\": must start with /");
  size_t i = 1;
  while (true) {
    size_t j = p.find('/', i);
    std::string tok = p.substr(i, j == std::string::npos ? std::string::npos : j - i);
    std::string dec;
    for (size_t k = 0; k < tok.size(); ++k) {
      if (tok[k] == '~') {
        if (k + 1 < tok.size() && tok[k + 1] == '0')
          dec += '~';
        else if (k + 1 < tok.size() && tok[k + 1] == '1')
          dec += '/';
        else
          return invalid("invalid JSON pointer \"" + p + "\": bad escape");
        ++k;
      } else {
        dec += tok[k];
      }
    }
    out.push_back(std::move(dec));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

StatusOr<size_t> arrayIndex(const json& arr, const std::string& tok, bool allowEnd,
                            const std::string& path) {
  if (tok == "-" && allowEnd) return arr.size();
  if (tok.empty() || tok.size() > 9 || !std::all_of(tok.begin(), tok.end(), ::isdigit) ||
      (tok.size() > 1 && tok[0] == '0')) {
    return invalid("invalid array index \"" + tok + "\" in " + path);
  }
  size_t i = std::stoul(tok);
  if (i > arr.size() || (!allowEnd && i == arr.size())) {
    return invalid("array index " + tok + " out of bounds in " + path);
  }
  return i;
}

// The parent container of `path` and the last token.
StatusOr<json*> parentOf(json& doc, const std::vector<std::string>& toks, const std::string& path) {
  json* cur = &doc;
  for (size_t i = 0; i + 1 < toks.size(); ++i) {
    if (cur->is_object()) {
      auto it = cur->find(toks[i]);
      if (it == cur->end()) return invalid("doc is missing path: \"" + path + "\"");
      cur = &*it;
    } else if (cur->is_array()) {
      KILN_ASSIGN_OR_RETURN(size_t idx, arrayIndex(*cur, toks[i], false, path));
      cur = &(*cur)[idx];
    } else {
      return invalid("doc is missing path: \"" + path + "\"");
    }
  }
  return cur;
}

StatusOr<json> getAt(json& doc, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto toks, parsePointer(path));
  if (toks.empty()) return doc;
  KILN_ASSIGN_OR_RETURN(json * parent, parentOf(doc, toks, path));
  if (parent->is_object()) {
    auto it = parent->find(toks.back());
    if (it == parent->end()) return invalid("doc is missing path: \"" + path + "\"");
    return *it;
  }
  if (parent->is_array()) {
    KILN_ASSIGN_OR_RETURN(size_t idx, arrayIndex(*parent, toks.back(), false, path));
    return (*parent)[idx];
  }
  return invalid("doc is missing path: \"" + path + "\"");
}

Status removeAt(json& doc, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto toks, parsePointer(path));
  if (toks.empty()) return invalid("cannot remove the whole document");
  KILN_ASSIGN_OR_RETURN(json * parent, parentOf(doc, toks, path));
  if (parent->is_object()) {
    if (parent->erase(toks.back()) == 0) {
      return invalid("unable to remove nonexistent key: " + toks.back() + ": missing value");
    }
    return Status::Ok();
  }
  if (parent->is_array()) {
    KILN_ASSIGN_OR_RETURN(size_t idx, arrayIndex(*parent, toks.back(), false, path));
    parent->erase(idx);
    return Status::Ok();
  }
  return invalid("doc is missing path: \"" + path + "\"");
}

Status addAt(json& doc, const std::string& path, json value, bool replace) {
  KILN_ASSIGN_OR_RETURN(auto toks, parsePointer(path));
  if (toks.empty()) {
    doc = std::move(value);
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(json * parent, parentOf(doc, toks, path));
  if (parent->is_object()) {
    if (replace && !parent->contains(toks.back())) {
      return invalid("replace operation does not apply: doc is missing key: " + path);
    }
    (*parent)[toks.back()] = std::move(value);
    return Status::Ok();
  }
  if (parent->is_array()) {
    KILN_ASSIGN_OR_RETURN(size_t idx, arrayIndex(*parent, toks.back(), !replace, path));
    if (replace) {
      (*parent)[idx] = std::move(value);
    } else {
      parent->insert(parent->begin() + static_cast<std::ptrdiff_t>(idx), std::move(value));
    }
    return Status::Ok();
  }
  return invalid("doc is missing path: \"" + path + "\"");
}

// ------------------------------------------------------------------------------------------------
// Strategic merge patch
// ------------------------------------------------------------------------------------------------

constexpr std::string_view kPatch = "$patch";
constexpr std::string_view kRetainKeys = "$retainKeys";
constexpr std::string_view kDeletePrimitive = "$deleteFromPrimitiveList/";
constexpr std::string_view kSetOrder = "$setElementOrder/";
constexpr int kMaxDepth = 100;

Status mergeMap(json& orig, const json& patch, const TypeMeta* type, int depth);

bool sameKey(const json& item, const char* key, const json& value) {
  if (!item.is_object()) return false;
  auto it = item.find(key);
  return it != item.end() && *it == value;
}

// Orders `merged` per a $setElementOrder list: items named there in that order, server-only
// items kept at their relative positions from the original list (upstream's interleaving).
json applyOrder(const json& merged, const json& order, const json& original, const char* key) {
  auto keyOf = [&](const json& item) -> json {
    if (*key == '\0') return item;
    return item.is_object() && item.contains(key) ? item[key] : json();
  };
  auto orderKeyOf = [&](const json& o) -> json {
    if (*key == '\0') return o;
    return o.is_object() && o.contains(key) ? o[key] : json();
  };
  auto origIndex = [&](const json& k) -> size_t {
    if (original.is_array()) {
      for (size_t i = 0; i < original.size(); ++i) {
        if (keyOf(original[i]) == k) return i;
      }
    }
    return std::numeric_limits<size_t>::max();
  };
  json patchItems = json::array(), serverOnly = json::array();
  std::vector<json> orderKeys;
  for (const auto& o : order) orderKeys.push_back(orderKeyOf(o));
  for (const auto& k : orderKeys) {
    for (const auto& item : merged) {
      if (keyOf(item) == k) {
        patchItems.push_back(item);
        break;
      }
    }
  }
  for (const auto& item : merged) {
    if (std::find(orderKeys.begin(), orderKeys.end(), keyOf(item)) == orderKeys.end()) {
      serverOnly.push_back(item);
    }
  }
  json out = json::array();
  size_t i = 0, j = 0;
  while (i < patchItems.size() && j < serverOnly.size()) {
    if (origIndex(keyOf(patchItems[i])) < origIndex(keyOf(serverOnly[j]))) {
      out.push_back(patchItems[i++]);
    } else {
      out.push_back(serverOnly[j++]);
    }
  }
  while (i < patchItems.size()) out.push_back(patchItems[i++]);
  while (j < serverOnly.size()) out.push_back(serverOnly[j++]);
  return out;
}

StatusOr<json> mergeList(const json& orig, const json& patch, const FieldMeta& meta,
                         const std::string& field, int depth) {
  if (!patch.is_array()) return invalid("strategic merge patch: " + field + " must be a list");
  // A {"$patch": "replace"} element replaces the list with the other elements.
  for (const auto& item : patch) {
    if (item.is_object() && item.contains(kPatch) && item[kPatch] == "replace") {
      json out = json::array();
      for (const auto& it : patch) {
        if (!(it.is_object() && it.contains(kPatch))) out.push_back(it);
      }
      return out;
    }
  }
  json out = orig.is_array() ? orig : json::array();
  if (*meta.mergeKey == '\0') {
    // A list of primitives with the merge strategy: a union.
    for (const auto& item : patch) {
      if (item.is_object()) {
        return invalid("strategic merge patch: " + field + " is a list of primitives");
      }
      if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    }
    return out;
  }
  const TypeMeta* elemType = lookupType(meta.type);
  for (const auto& item : patch) {
    if (!item.is_object()) {
      return invalid("strategic merge patch: " + field + " elements must be objects");
    }
    auto k = item.find(meta.mergeKey);
    if (k == item.end()) {
      return invalid("map: " + item.dump() +
                     " does not contain declared merge key: " + meta.mergeKey);
    }
    auto pos = std::find_if(out.begin(), out.end(),
                            [&](const json& o) { return sameKey(o, meta.mergeKey, *k); });
    std::string directive = item.contains(kPatch) && item[kPatch].is_string()
                                ? item[kPatch].get<std::string>()
                                : std::string();
    if (directive == "delete") {
      out.erase(std::remove_if(out.begin(), out.end(),
                               [&](const json& o) { return sameKey(o, meta.mergeKey, *k); }),
                out.end());
      continue;
    }
    if (!directive.empty() && directive != "merge" && directive != "replace") {
      return invalid("Unknown patch type: " + directive);
    }
    if (pos == out.end()) {
      json fresh = json::object();
      KILN_RETURN_IF_ERROR(mergeMap(fresh, item, elemType, depth + 1));
      out.push_back(std::move(fresh));
    } else if (directive == "replace") {
      json fresh = item;
      fresh.erase(kPatch);
      *pos = std::move(fresh);
    } else {
      KILN_RETURN_IF_ERROR(mergeMap(*pos, item, elemType, depth + 1));
    }
  }
  return out;
}

Status mergeMap(json& orig, const json& patch, const TypeMeta* type, int depth) {
  if (depth > kMaxDepth) return invalid("strategic merge patch: nesting too deep");
  if (!patch.is_object()) return invalid("strategic merge patch: expected a map");
  if (!orig.is_object()) orig = json::object();
  if (auto d = patch.find(kPatch); d != patch.end()) {
    if (!d->is_string()) return invalid("$patch must be a string");
    const std::string v = d->get<std::string>();
    if (v == "replace") {
      json r = patch;
      r.erase(kPatch);
      orig = std::move(r);
      return Status::Ok();
    }
    if (v == "delete") {
      orig = json::object();
      return Status::Ok();
    }
    if (v != "merge") return invalid("Unknown patch type: " + v);
  }
  // $deleteFromPrimitiveList first, so values re-added by the patch win.
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& k = it.key();
    if (k.rfind(kDeletePrimitive, 0) != 0) continue;
    std::string field = k.substr(kDeletePrimitive.size());
    if (!it->is_array()) return invalid(k + " must be a list");
    auto f = orig.find(field);
    if (f == orig.end() || !f->is_array()) continue;
    json kept = json::array();
    for (const auto& v : *f) {
      if (std::find(it->begin(), it->end(), v) == it->end()) kept.push_back(v);
    }
    *f = std::move(kept);
  }
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& k = it.key();
    if (k == kPatch || k == kRetainKeys || k.rfind(kDeletePrimitive, 0) == 0 ||
        k.rfind(kSetOrder, 0) == 0) {
      continue;
    }
    const json& pv = *it;
    if (pv.is_null()) {
      orig.erase(k);
      continue;
    }
    FieldMeta meta;
    if (type) {
      if (auto m = type->find(k); m != type->end()) meta = m->second;
    }
    const bool existed = orig.contains(k);
    json& ov = orig[k];
    if (pv.is_object()) {
      if (!ov.is_object()) ov = json::object();
      KILN_RETURN_IF_ERROR(mergeMap(ov, pv, lookupType(meta.type), depth + 1));
      // Deleting keys of a map that did not exist does not create it (upstream).
      if (!existed && ov.empty() && !pv.empty() && !pv.contains(kPatch)) orig.erase(k);
    } else if (pv.is_array() && meta.merge) {
      KILN_ASSIGN_OR_RETURN(ov, mergeList(ov, pv, meta, k, depth));
    } else if (pv.is_array()) {
      // Replaced, but elements of a typed list may carry directives of their own.
      json out = json::array();
      for (const auto& item : pv) {
        if (item.is_object() && item.contains(kPatch)) continue;
        out.push_back(item);
      }
      ov = std::move(out);
    } else {
      ov = pv;
    }
  }
  // $setElementOrder/<field> reorders the merged list.
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& k = it.key();
    if (k.rfind(kSetOrder, 0) != 0) continue;
    std::string field = k.substr(kSetOrder.size());
    if (!it->is_array()) return invalid(k + " must be a list");
    auto f = orig.find(field);
    if (f == orig.end() || !f->is_array()) continue;
    FieldMeta meta;
    if (type) {
      if (auto m = type->find(field); m != type->end()) meta = m->second;
    }
    *f = applyOrder(*f, *it, *f, meta.mergeKey);
  }
  // $retainKeys: keys of the map not listed are dropped.
  if (auto r = patch.find(kRetainKeys); r != patch.end()) {
    if (!r->is_array()) return invalid("$retainKeys must be a list");
    std::set<std::string> keep;
    for (const auto& k : *r) {
      if (!k.is_string()) return invalid("$retainKeys must be a list of strings");
      keep.insert(k.get<std::string>());
    }
    for (auto it = orig.begin(); it != orig.end();) {
      if (!keep.count(it.key())) {
        it = orig.erase(it);
      } else {
        ++it;
      }
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<json> applyJsonPatch(const json& doc, const json& patch) {
  if (!patch.is_array()) return invalid("json patch must be a list of operations");
  json out = doc;
  for (const auto& op : patch) {
    if (!op.is_object() || !op.contains("op") || !op["op"].is_string()) {
      return invalid("json patch operation must be an object with an \"op\" string");
    }
    const std::string o = op["op"].get<std::string>();
    if (!op.contains("path") || !op["path"].is_string()) {
      return invalid("json patch " + o + " operation is missing \"path\"");
    }
    const std::string path = op["path"].get<std::string>();
    if (o == "add" || o == "replace" || o == "test") {
      if (!op.contains("value")) return invalid("json patch " + o + " operation has no value");
    }
    if (o == "add") {
      KILN_RETURN_IF_ERROR(addAt(out, path, op["value"], false));
    } else if (o == "replace") {
      KILN_RETURN_IF_ERROR(addAt(out, path, op["value"], true));
    } else if (o == "remove") {
      KILN_RETURN_IF_ERROR(removeAt(out, path));
    } else if (o == "move" || o == "copy") {
      if (!op.contains("from") || !op["from"].is_string()) {
        return invalid("json patch " + o + " operation is missing \"from\"");
      }
      const std::string from = op["from"].get<std::string>();
      if (o == "move" && path.rfind(from + "/", 0) == 0) {
        return invalid("json patch move: cannot move " + from + " into its own child " + path);
      }
      KILN_ASSIGN_OR_RETURN(json v, getAt(out, from));
      if (o == "move") KILN_RETURN_IF_ERROR(removeAt(out, from));
      KILN_RETURN_IF_ERROR(addAt(out, path, std::move(v), false));
    } else if (o == "test") {
      KILN_ASSIGN_OR_RETURN(json v, getAt(out, path));
      if (v != op["value"]) {
        return invalid("testing value " + path + " failed: test failed");
      }
    } else {
      return invalid("Unexpected kind: " + o);
    }
  }
  return out;
}

json applyMergePatch(const json& doc, const json& patch) {
  json out = doc;
  out.merge_patch(patch);
  return out;
}

StatusOr<json> applyStrategicMergePatch(const json& doc, const json& patch,
                                        const std::string& /*apiVersion*/,
                                        const std::string& kind) {
  if (!patch.is_object()) return invalid("strategic merge patch must be a JSON object");
  json out = doc;
  TypeMeta root = rootType(kind);
  KILN_RETURN_IF_ERROR(mergeMap(out, patch, &root, 0));
  return out;
}

}  // namespace kiln::api
