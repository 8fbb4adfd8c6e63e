// kiln-fuzz: one libFuzzer target over everything that decodes API input: request paths and
// queries, JSON, YAML and Kubernetes-protobuf bodies (and their unknown fields), the three patch
// types, label and field selectors, per-kind defaults and validation, and field management /
// server-side apply. The first byte picks the decoder; the rest is its input (for patches:
// "document\npatch"). Any crash, sanitizer report or uncaught exception is a bug: input from the
// network must only ever produce a Status.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "api/k8s_protobuf.h"
#include "api/managed_fields.h"
#include "api/patch.h"
#include "api/resources.h"
#include "api/selector.h"
#include "api/yaml_json.h"
#include "server/apiserver/request_info.h"
#include "server/registry/strategy.h"

namespace {

using nlohmann::json;

const char* kKinds[] = {"Pod",     "Deployment", "Service",     "ConfigMap", "Node",      "Job",
                        "CronJob", "Secret",     "StatefulSet", "DaemonSet", "Namespace", "Scale"};

json parseOrNull(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  return j.is_discarded() ? json() : j;
}

const kiln::api::ResourceInfo* resourceFor(uint8_t b) {
  const auto& all = kiln::api::allResources();
  return &all[b % all.size()];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  const uint8_t arg = data[1];
  const std::string in(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t nl = in.find('\n');
  const std::string first = in.substr(0, nl);
  const std::string rest = nl == std::string::npos ? std::string() : in.substr(nl + 1);
  const std::string kind = kKinds[arg % (sizeof(kKinds) / sizeof(kKinds[0]))];
  switch (mode % 9) {
    case 0: {  // request line
      static const char* methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
      (void)kiln::apiserver::parseRequestInfo(methods[arg % 5], in);
      (void)kiln::apiserver::queryParam(in, "labelSelector");
      (void)kiln::apiserver::queryParams(in, "command");
      break;
    }
    case 1: {  // YAML and JSON bodies, and strict field validation of them
      (void)kiln::api::yamlToJson(in);
      json body = parseOrNull(in);
      if (body.is_object()) {
        const auto* info = resourceFor(arg);
        body["apiVersion"] = info->groupVersion();
        body["kind"] = info->kind;
        (void)kiln::api::pruneUnknownK8sFields(body);
      }
      break;
    }
    case 2: {  // the three patch types
      json doc = parseOrNull(first), patch = parseOrNull(rest);
      (void)kiln::api::applyJsonPatch(doc, patch);
      (void)kiln::api::applyMergePatch(doc, patch);
      (void)kiln::api::applyStrategicMergePatch(doc, patch, "apps/v1", kind);
      break;
    }
    case 3: {  // selectors
      auto ls = kiln::api::LabelSelector::parse(in);
      if (ls.ok()) {
        (void)ls->matches(parseOrNull(rest));
        (void)ls->toString();
      }
      (void)kiln::api::LabelSelector::fromJson(parseOrNull(in));
      auto fs = kiln::api::FieldSelector::parse(first, kind);
      if (fs.ok()) (void)fs->matches(parseOrNull(rest));
      break;
    }
    case 4: {  // defaults and validation of an arbitrary object, old and new
      const auto* info = resourceFor(arg);
      json obj = parseOrNull(first), old = parseOrNull(rest);
      kiln::registry::applyDefaults(*info, obj);
      (void)kiln::registry::validateObject(*info, obj, old.is_null() ? nullptr : &old);
      break;
    }
    case 5: {  // field management
      json old = parseOrNull(first), obj = parseOrNull(rest);
      if (!obj.is_object()) break;
      kiln::api::ManagerInfo who{"fuzz", "v1", "2026-01-01T00:00:00Z", arg % 2 ? "scale" : ""};
      kiln::api::recordUpdate(old.is_object() ? &old : nullptr, obj, kind, who);
      (void)kiln::api::fieldsV1Of(obj, kind);
      break;
    }
    case 6: {  // server-side apply
      json cur = parseOrNull(first), cfg = parseOrNull(rest);
      if (!cfg.is_object()) break;
      json out;
      kiln::api::ManagerInfo who{"fuzz", "apps/v1", "2026-01-01T00:00:00Z", ""};
      auto r = kiln::api::serverSideApply(cur.is_object() ? &cur : nullptr, cfg, kind, who, arg % 2,
                                          out);
      if (r.ok()) (void)kiln::api::conflictMessage(*r);
      break;
    }
    case 7: {  // a Kubernetes-protobuf body: decoding what the encoder wrote is a fixpoint
      auto obj = kiln::api::decodeK8sProtobuf(std::string("k8s\0", 4) + in);
      if (!obj.ok()) break;
      auto enc = kiln::api::encodeK8sProtobuf(*obj);
      if (!enc.ok()) break;
      auto once = kiln::api::decodeK8sProtobuf(*enc);  // may drop explicit nulls of the input
      if (!once.ok()) __builtin_trap();
      auto enc2 = kiln::api::encodeK8sProtobuf(*once);
      if (!enc2.ok() || *enc2 != *enc) __builtin_trap();
      break;
    }
    default: {  // a patch applied twice, then validated: chained decoders
      json doc = parseOrNull(first), patch = parseOrNull(rest);
      auto once = kiln::api::applyStrategicMergePatch(doc, patch, "v1", kind);
      if (once.ok()) {
        auto twice = kiln::api::applyStrategicMergePatch(*once, patch, "v1", kind);
        if (twice.ok()) {
          json o = *twice;
          kiln::registry::applyDefaults(*resourceFor(arg), o);
          (void)kiln::registry::validateObject(*resourceFor(arg), o, nullptr);
        }
      }
      break;
    }
  }
  return 0;
}
