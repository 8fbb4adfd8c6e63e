// Field ownership and server-side apply (see managed_fields.h). A field set is a set of leaf
// paths; a path is a sequence of FieldsV1 elements ("f:spec", "k:{\"name\":\"app\"}", "v:\"a\"")
// joined with '\x1f'. An item path (ending in k: or v:) stands for the item itself (FieldsV1's
// ".").
#include "api/managed_fields.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "api/patch_meta.h"

namespace kiln::api {

using meta::FieldMeta;
using meta::TypeMeta;
using nlohmann::json;

namespace {

constexpr char kSep = '\x1f';
constexpr int kMaxDepth = 100;

using Path = std::vector<std::string>;
using FieldSet = std::set<std::string>;

std::string joinPath(const Path& p) {
  std::string s;
  for (size_t i = 0; i < p.size(); ++i) {
    if (i) s += kSep;
    s += p[i];
  }
  return s;
}

Path splitPath(const std::string& s) {
  Path p;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(kSep, i);
    p.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return p;
}

// Server-set metadata that no manager owns.
bool ignoredMeta(const std::string& k) {
  static const std::set<std::string> kIgnored = {"name",
                                                 "namespace",
                                                 "uid",
                                                 "resourceVersion",
                                                 "generation",
                                                 "creationTimestamp",
                                                 "deletionTimestamp",
                                                 "deletionGracePeriodSeconds",
                                                 "managedFields",
                                                 "selfLink",
                                                 "generateName"};
  return kIgnored.count(k) > 0;
}

FieldMeta fieldMeta(const TypeMeta* type, const std::string& name) {
  if (!type) return {};
  auto it = type->find(name);
  return it == type->end() ? FieldMeta{} : it->second;
}

void collect(const json& v, const TypeMeta* type, Path& p, FieldSet& out, int depth);

void collectField(const std::string& name, const json& v, const TypeMeta* type, Path& p,
                  FieldSet& out, int depth) {
  if (v.is_null()) return;
  FieldMeta fm = fieldMeta(type, name);
  p.push_back("f:" + name);
  if (v.is_object() && !v.empty()) {
    collect(v, meta::lookupType(fm.type), p, out, depth + 1);
  } else if (v.is_array() && fm.merge && *fm.mergeKey != '\0') {
    bool any = false;
    for (const auto& item : v) {
      if (!item.is_object() || !item.contains(fm.mergeKey)) continue;
      any = true;
      json key = {{fm.mergeKey, item[fm.mergeKey]}};
      p.push_back("k:" + key.dump());
      out.insert(joinPath(p));
      collect(item, meta::lookupType(fm.type), p, out, depth + 1);
      p.pop_back();
    }
    if (!any) out.insert(joinPath(p));
  } else if (v.is_array() && fm.merge) {
    for (const auto& item : v) {
      p.push_back("v:" + item.dump());
      out.insert(joinPath(p));
      p.pop_back();
    }
    if (v.empty()) out.insert(joinPath(p));
  } else {
    out.insert(joinPath(p));  // scalars, empty maps, atomic lists
  }
  p.pop_back();
}

void collect(const json& v, const TypeMeta* type, Path& p, FieldSet& out, int depth) {
  if (depth > kMaxDepth || !v.is_object()) return;
  for (auto it = v.begin(); it != v.end(); ++it) collectField(it.key(), *it, type, p, out, depth);
}

FieldSet fieldsOf(const json& obj, const std::string& kind) {
  FieldSet out;
  if (!obj.is_object()) return out;
  TypeMeta root = meta::rootType(kind);
  Path p;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& k = it.key();
    if (k == "apiVersion" || k == "kind" || k == "status") continue;
    if (k == "metadata" && it->is_object()) {
      p.push_back("f:metadata");
      const TypeMeta* mt = meta::lookupType("ObjectMeta");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!ignoredMeta(m.key())) collectField(m.key(), *m, mt, p, out, 1);
      }
      p.pop_back();
      continue;
    }
    collectField(k, *it, &root, p, out, 0);
  }
  return out;
}

// --- FieldsV1 <-> field sets
// ------------------------------------------------------------------------

json toFieldsV1(const FieldSet& set) {
  json root = json::object();
  for (const auto& s : set) {
    Path p = splitPath(s);
    json* node = &root;
    for (const auto& e : p) {
      if (!(*node).contains(e)) (*node)[e] = json::object();
      node = &(*node)[e];
    }
    if (p.back().rfind("k:", 0) == 0) (*node)["."] = json::object();
  }
  return root;
}

void fromFieldsV1(const json& node, Path& p, FieldSet& out, int depth) {
  if (!node.is_object() || depth > kMaxDepth) return;
  if (!p.empty() && (node.empty() || node.contains("."))) out.insert(joinPath(p));
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (it.key() == ".") continue;
    p.push_back(it.key());
    fromFieldsV1(*it, p, out, depth + 1);
    p.pop_back();
  }
}

FieldSet fromFieldsV1(const json& fields) {
  FieldSet out;
  Path p;
  fromFieldsV1(fields, p, out, 0);
  return out;
}

// --- reading and removing by path
// ---------------------------------------------------------------------

bool itemMatches(const json& item, const json& key) {
  if (!item.is_object()) return false;
  for (auto it = key.begin(); it != key.end(); ++it) {
    auto f = item.find(it.key());
    if (f == item.end() || *f != *it) return false;
  }
  return true;
}

// The value at `p`, if present.
std::optional<json> valueAt(const json& obj, const Path& p) {
  const json* cur = &obj;
  for (const auto& e : p) {
    std::string body = e.substr(2);
    if (e.rfind("f:", 0) == 0) {
      if (!cur->is_object()) return std::nullopt;
      auto it = cur->find(body);
      if (it == cur->end()) return std::nullopt;
      cur = &*it;
    } else if (e.rfind("k:", 0) == 0) {
      if (!cur->is_array()) return std::nullopt;
      json key = json::parse(body, nullptr, false);
      auto it = std::find_if(cur->begin(), cur->end(),
                             [&](const json& i) { return itemMatches(i, key); });
      if (it == cur->end()) return std::nullopt;
      cur = &*it;
    } else if (e.rfind("v:", 0) == 0) {
      if (!cur->is_array()) return std::nullopt;
      json v = json::parse(body, nullptr, false);
      auto it = std::find(cur->begin(), cur->end(), v);
      if (it == cur->end()) return std::nullopt;
      cur = &*it;
    } else {
      return std::nullopt;
    }
  }
  return *cur;
}

void removeAt(json& obj, const Path& p) {
  json* cur = &obj;
  for (size_t i = 0; i < p.size(); ++i) {
    const std::string& e = p[i];
    std::string body = e.substr(2);
    bool last = i + 1 == p.size();
    if (e.rfind("f:", 0) == 0) {
      if (!cur->is_object()) return;
      auto it = cur->find(body);
      if (it == cur->end()) return;
      if (last) {
        cur->erase(it);
        return;
      }
      cur = &*it;
    } else if (e.rfind("k:", 0) == 0 || e.rfind("v:", 0) == 0) {
      if (!cur->is_array()) return;
      json key = json::parse(body, nullptr, false);
      bool keyed = e[0] == 'k';
      auto match = [&](const json& item) { return keyed ? itemMatches(item, key) : item == key; };
      if (last) {
        cur->erase(std::remove_if(cur->begin(), cur->end(), match), cur->end());
        return;
      }
      auto it = std::find_if(cur->begin(), cur->end(), match);
      if (it == cur->end()) return;
      cur = &*it;
    }
  }
}

std::string displayPath(const Path& p) {
  std::string s;
  for (const auto& e : p) {
    std::string body = e.substr(2);
    if (e.rfind("f:", 0) == 0) {
      s += "." + body;
    } else if (e.rfind("k:", 0) == 0) {
      json key = json::parse(body, nullptr, false);
      std::string inner;
      if (key.is_object()) {
        for (auto it = key.begin(); it != key.end(); ++it) {
          inner += (inner.empty() ? "" : ",") + it.key() + "=" + it->dump();
        }
      }
      s += "[" + inner + "]";
    } else {
      s += "[=" + body + "]";
    }
  }
  return s;
}

// --- merging an applied configuration
// ---------------------------------------------------------------

void mergeApplied(json& dst, const json& src, const TypeMeta* type, int depth) {
  if (depth > kMaxDepth) return;
  if (!dst.is_object()) dst = json::object();
  for (auto it = src.begin(); it != src.end(); ++it) {
    const std::string& k = it.key();
    const json& v = *it;
    if (v.is_null()) continue;  // null in an applied configuration: no opinion
    FieldMeta fm = fieldMeta(type, k);
    json& d = dst[k];
    if (v.is_object()) {
      if (!d.is_object()) d = json::object();
      mergeApplied(d, v, meta::lookupType(fm.type), depth + 1);
    } else if (v.is_array() && fm.merge && *fm.mergeKey != '\0') {
      if (!d.is_array()) d = json::array();
      for (const auto& item : v) {
        if (!item.is_object() || !item.contains(fm.mergeKey)) {
          d.push_back(item);
          continue;
        }
        json key = {{fm.mergeKey, item[fm.mergeKey]}};
        auto pos =
            std::find_if(d.begin(), d.end(), [&](const json& x) { return itemMatches(x, key); });
        if (pos == d.end()) {
          json fresh = json::object();
          mergeApplied(fresh, item, meta::lookupType(fm.type), depth + 1);
          d.push_back(std::move(fresh));
        } else {
          mergeApplied(*pos, item, meta::lookupType(fm.type), depth + 1);
        }
      }
    } else if (v.is_array() && fm.merge) {
      if (!d.is_array()) d = json::array();
      for (const auto& item : v) {
        if (std::find(d.begin(), d.end(), item) == d.end()) d.push_back(item);
      }
    } else {
      d = v;
    }
  }
}

// --- managedFields entries
// ------------------------------------------------------------------------------

struct Entry {
  json raw;  // the entry as stored (manager, operation, apiVersion, time, subresource)
  FieldSet fields;
  // Entries come from clients: a member of the wrong type reads as absent rather than throwing.
  std::string str(const char* key) const {
    auto it = raw.find(key);
    return it != raw.end() && it->is_string() ? it->get<std::string>() : std::string();
  }
  std::string manager() const { return str("manager"); }
  std::string operation() const { return str("operation"); }
  std::string apiVersion() const { return str("apiVersion"); }
  std::string subresource() const { return str("subresource"); }
};

std::vector<Entry> readEntries(const json& obj) {
  std::vector<Entry> out;
  const json* meta = obj.is_object() && obj.contains("metadata") ? &obj["metadata"] : nullptr;
  if (!meta || !meta->is_object() || !meta->contains("managedFields")) return out;
  const json& mf = (*meta)["managedFields"];
  if (!mf.is_array()) return out;
  for (const auto& e : mf) {
    if (!e.is_object()) continue;
    Entry en;
    en.raw = e;
    en.fields = fromFieldsV1(e.value("fieldsV1", json::object()));
    en.raw.erase("fieldsV1");
    out.push_back(std::move(en));
  }
  return out;
}

void writeEntries(json& obj, const std::vector<Entry>& entries) {
  json arr = json::array();
  for (const auto& e : entries) {
    if (e.fields.empty()) continue;
    json raw = e.raw;
    raw["fieldsType"] = "FieldsV1";
    raw["fieldsV1"] = toFieldsV1(e.fields);
    arr.push_back(std::move(raw));
  }
  if (!obj["metadata"].is_object()) obj["metadata"] = json::object();
  if (arr.empty()) {
    obj["metadata"].erase("managedFields");
  } else {
    obj["metadata"]["managedFields"] = std::move(arr);
  }
}

Entry& entryFor(std::vector<Entry>& entries, const ManagerInfo& who, const std::string& op) {
  for (auto& e : entries) {
    if (e.manager() == who.manager && e.operation() == op && e.subresource() == who.subresource &&
        (op == "Apply" || e.apiVersion() == who.apiVersion)) {
      e.raw["apiVersion"] = who.apiVersion;
      e.raw["time"] = who.time;
      return e;
    }
  }
  Entry e;
  e.raw = {{"manager", who.manager},
           {"operation", op},
           {"apiVersion", who.apiVersion},
           {"time", who.time}};
  if (!who.subresource.empty()) e.raw["subresource"] = who.subresource;
  entries.push_back(std::move(e));
  return entries.back();
}

}  // namespace

json fieldsV1Of(const json& obj, const std::string& kind) {
  return toFieldsV1(fieldsOf(obj, kind));
}

void recordUpdate(const json* old, json& obj, const std::string& kind, const ManagerInfo& who) {
  std::vector<Entry> entries = old ? readEntries(*old) : std::vector<Entry>{};
  FieldSet now = fieldsOf(obj, kind);
  FieldSet changed, removed;
  if (!old) {
    changed = now;
  } else {
    for (const auto& f : now) {
      if (valueAt(*old, splitPath(f)) != valueAt(obj, splitPath(f))) changed.insert(f);
    }
    for (const auto& f : fieldsOf(*old, kind)) {
      if (!now.count(f)) removed.insert(f);
    }
  }
  if (changed.empty() && removed.empty() && old) {
    writeEntries(obj, entries);  // keep the stored ownership as it was
    return;
  }
  for (auto& e : entries) {
    for (const auto& f : changed) e.fields.erase(f);
    for (const auto& f : removed) e.fields.erase(f);
  }
  Entry& mine = entryFor(entries, who, "Update");
  mine.fields.insert(changed.begin(), changed.end());
  writeEntries(obj, entries);
}

StatusOr<std::vector<ApplyConflict>> serverSideApply(const json* current, const json& applied,
                                                     const std::string& kind,
                                                     const ManagerInfo& who, bool force,
                                                     json& out) {
  if (!applied.is_object()) {
    return Status(Code::kInvalidArgument, "the applied configuration must be an object");
  }
  FieldSet mine = fieldsOf(applied, kind);
  std::vector<Entry> entries = current ? readEntries(*current) : std::vector<Entry>{};
  // Conflicts: fields others own whose value the configuration changes.
  if (current) {
    std::vector<ApplyConflict> conflicts;
    for (auto& e : entries) {
      if (e.manager() == who.manager && e.operation() == "Apply") continue;
      std::vector<std::string> lost;
      for (const auto& f : mine) {
        if (!e.fields.count(f)) continue;
        Path p = splitPath(f);
        bool item = p.back().rfind("k:", 0) == 0 || p.back().rfind("v:", 0) == 0;
        if (item || valueAt(*current, p) == valueAt(applied, p)) continue;
        if (force) {
          lost.push_back(f);
        } else {
          conflicts.push_back({e.manager(), e.apiVersion(), displayPath(p), e.subresource()});
        }
      }
      for (const auto& f : lost) e.fields.erase(f);
    }
    if (!conflicts.empty()) return conflicts;
  }
  json obj = current ? *current : json::object();
  TypeMeta root = meta::rootType(kind);
  json cfg = applied;
  if (cfg.contains("metadata") && cfg["metadata"].is_object())
    cfg["metadata"].erase("managedFields");
  cfg.erase("status");
  mergeApplied(obj, cfg, &root, 0);
  // Fields this manager applied before and no longer applies go, unless someone else owns them.
  Entry& me = entryFor(entries, who, "Apply");
  std::vector<Path> drop;
  for (const auto& f : me.fields) {
    if (mine.count(f)) continue;
    bool shared = false;
    for (const auto& e : entries) {
      if (&e != &me && e.fields.count(f)) shared = true;
    }
    if (!shared) drop.push_back(splitPath(f));
  }
  // Ancestors first: removing a list item by its key takes its fields with it (removing the
  // key field first would leave the item unmatchable).
  std::sort(drop.begin(), drop.end(),
            [](const Path& a, const Path& b) { return a.size() < b.size(); });
  for (const auto& p : drop) removeAt(obj, p);
  me.fields = mine;
  writeEntries(obj, entries);
  out = std::move(obj);
  return std::vector<ApplyConflict>{};
}

std::string conflictWith(const ApplyConflict& c) {
  std::string s = "\"" + c.manager + "\"";
  if (!c.subresource.empty()) s += " with subresource \"" + c.subresource + "\"";
  return s + " using " + c.apiVersion;
}

std::string conflictMessage(const std::vector<ApplyConflict>& conflicts) {
  auto who = [](const ApplyConflict& c) { return conflictWith(c); };
  if (conflicts.size() == 1) {
    const auto& c = conflicts[0];
    return "Apply failed with 1 conflict: conflict with " + who(c) + ": " + c.field;
  }
  std::string s = "Apply failed with " + std::to_string(conflicts.size()) + " conflicts: ";
  // Grouped by manager, as upstream prints them.
  std::map<std::string, std::vector<const ApplyConflict*>> byManager;
  std::vector<std::string> order;
  for (const auto& c : conflicts) {
    std::string k = who(c);
    if (!byManager.count(k)) order.push_back(k);
    byManager[k].push_back(&c);
  }
  bool first = true;
  for (const auto& k : order) {
    if (!first) s += "\n";
    first = false;
    s += "conflicts with " + k + ":";
    for (const auto* c : byManager[k]) s += "\n- " + c->field;
  }
  return s;
}

}  // namespace kiln::api
