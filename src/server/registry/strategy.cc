// Defaults and validation of the built-in kinds (see strategy.h). Messages are upstream's
// (k8s.io/apimachinery/pkg/util/validation and pkg/apis/core/validation) so kubectl users see
// the same text as on any cluster.
#include "server/registry/strategy.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "api/cron.h"
#include "api/resources.h"
#include "api/selector.h"

namespace kiln::registry {

using nlohmann::json;

namespace {

const char* kLabelMsg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const char* kSubdomainMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* kDns1035Msg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const char* kConfigKeyMsg =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

bool lowerAlnum(char c) {
  return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c));
}

bool isLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || !lowerAlnum(s.front()) || !lowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return lowerAlnum(c) || c == '-'; });
}

bool isSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t i = 0;
  while (true) {
    size_t dot = s.find('.', i);
    if (!isLabel(s.substr(i, dot == std::string::npos ? std::string::npos : dot - i))) return false;
    if (dot == std::string::npos) return true;
    i = dot + 1;
  }
}

bool isDns1035(const std::string& s) {
  return isLabel(s) && std::islower(static_cast<unsigned char>(s.front()));
}

std::string quote(const json& v) {
  if (v.is_string()) return json(v.get<std::string>()).dump();
  return v.dump();
}

struct Errors {
  FieldErrors list;
  void required(const std::string& f, const std::string& detail = "") {
    list.push_back(
        {"FieldValueRequired", f, detail.empty() ? "Required value" : "Required value: " + detail});
  }
  void invalid(const std::string& f, const json& v, const std::string& why) {
    list.push_back({"FieldValueInvalid", f, "Invalid value: " + quote(v) + ": " + why});
  }
  void notSupported(const std::string& f, const json& v, const std::vector<std::string>& ok) {
    std::string s;
    for (const auto& o : ok) s += (s.empty() ? "" : ", ") + json(o).dump();
    list.push_back({"FieldValueNotSupported", f,
                    "Unsupported value: " + quote(v) + ": supported values: " + s});
  }
  void duplicate(const std::string& f, const json& v) {
    list.push_back({"FieldValueDuplicate", f, "Duplicate value: " + quote(v)});
  }
  void notFound(const std::string& f, const json& v) {
    list.push_back({"FieldValueNotFound", f, "Not found: " + quote(v)});
  }
  void forbidden(const std::string& f, const std::string& why) {
    list.push_back({"FieldValueForbidden", f, "Forbidden: " + why});
  }
};

const json& field(const json& obj, const char* k) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(k);
  return it == obj.end() ? kNull : *it;
}

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : std::string(); }

// --- names, labels
// ---------------------------------------------------------------------------------

enum class NameRule { kSubdomain, kLabel, kDns1035, kNone };

NameRule nameRule(const std::string& kind) {
  static const std::set<std::string> labels = {"Namespace"};
  static const std::set<std::string> dns1035 = {"Service"};
  static const std::set<std::string> none = {"Event"};
  if (labels.count(kind)) return NameRule::kLabel;
  if (dns1035.count(kind)) return NameRule::kDns1035;
  if (none.count(kind)) return NameRule::kNone;
  return NameRule::kSubdomain;
}

void validateName(Errors& e, const std::string& f, const std::string& name, NameRule rule) {
  if (name.empty()) return;  // generateName or a missing name is reported elsewhere
  switch (rule) {
    case NameRule::kSubdomain:
      if (!isSubdomain(name))
        e.invalid(f, name,
                  name.size() > 253 ? "must be no more than 253 characters" : kSubdomainMsg);
      break;
    case NameRule::kLabel:
      if (name.size() > 63)
        e.invalid(f, name, "must be no more than 63 characters");
      else if (!isLabel(name))
        e.invalid(f, name, kLabelMsg);
      break;
    case NameRule::kDns1035:
      if (name.size() > 63)
        e.invalid(f, name, "must be no more than 63 characters");
      else if (!isDns1035(name))
        e.invalid(f, name, kDns1035Msg);
      break;
    case NameRule::kNone:
      break;
  }
}

void validateLabels(Errors& e, const std::string& f, const json& labels) {
  if (!labels.is_object()) return;
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (!it->is_string()) {
      e.invalid(f, it.key(), "label values must be strings");
      continue;
    }
    auto p = api::LabelSelector::parse(it.key() + "=" + it->get<std::string>());
    if (!p.ok()) {
      std::string m = p.status().message();
      const std::string pre = "unable to parse requirement: ";
      if (m.rfind(pre, 0) == 0) m = m.substr(pre.size());
      e.invalid(f, it.key(), m);
    }
  }
}

// --- pods ----------------------------------------------------------------------------------------

void defaultContainer(json& c) {
  if (!c.is_object()) return;
  if (!c.contains("terminationMessagePath")) c["terminationMessagePath"] = "/dev/termination-log";
  if (!c.contains("terminationMessagePolicy")) c["terminationMessagePolicy"] = "File";
  if (!c.contains("imagePullPolicy")) {
    std::string image = str(field(c, "image"));
    std::string tail =
        image.substr(image.rfind('/') == std::string::npos ? 0 : image.rfind('/') + 1);
    bool digest = image.find('@') != std::string::npos;
    size_t colon = tail.find(':');
    std::string tag = colon == std::string::npos ? "" : tail.substr(colon + 1);
    c["imagePullPolicy"] =
        (!digest && (tag.empty() || tag == "latest")) ? "Always" : "IfNotPresent";
  }
  if (c.contains("ports") && c["ports"].is_array()) {
    for (auto& p : c["ports"]) {
      if (p.is_object() && !p.contains("protocol")) p["protocol"] = "TCP";
    }
  }
  if (!c.contains("resources")) c["resources"] = json::object();
  for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"}) {
    if (!c.contains(probe) || !c[probe].is_object()) continue;
    json& p = c[probe];
    if (!p.contains("timeoutSeconds")) p["timeoutSeconds"] = 1;
    if (!p.contains("periodSeconds")) p["periodSeconds"] = 10;
    if (!p.contains("successThreshold")) p["successThreshold"] = 1;
    if (!p.contains("failureThreshold")) p["failureThreshold"] = 3;
    if (p.contains("httpGet") && p["httpGet"].is_object()) {
      if (!p["httpGet"].contains("path")) p["httpGet"]["path"] = "/";
      if (!p["httpGet"].contains("scheme")) p["httpGet"]["scheme"] = "HTTP";
    }
  }
}

void defaultPodSpec(json& spec) {
  if (!spec.is_object()) return;
  if (!spec.contains("restartPolicy")) spec["restartPolicy"] = "Always";
  if (!spec.contains("dnsPolicy")) spec["dnsPolicy"] = "ClusterFirst";
  if (!spec.contains("schedulerName")) spec["schedulerName"] = "default-scheduler";
  if (!spec.contains("terminationGracePeriodSeconds")) spec["terminationGracePeriodSeconds"] = 30;
  if (!spec.contains("securityContext")) spec["securityContext"] = json::object();
  if (!spec.contains("enableServiceLinks")) spec["enableServiceLinks"] = true;
  if (!spec.contains("serviceAccountName") && spec.contains("serviceAccount")) {
    spec["serviceAccountName"] = spec["serviceAccount"];
  }
  // The deprecated field mirrors the name (upstream's v1 conversion).
  if (spec.contains("serviceAccountName") && spec["serviceAccountName"].is_string() &&
      !spec["serviceAccountName"].get<std::string>().empty()) {
    spec["serviceAccount"] = spec["serviceAccountName"];
  }
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (spec.contains(list) && spec[list].is_array()) {
      for (auto& c : spec[list]) defaultContainer(c);
    }
  }
  if (spec.contains("volumes") && spec["volumes"].is_array()) {
    for (auto& v : spec["volumes"]) {
      if (!v.is_object()) continue;
      for (const char* src : {"configMap", "secret", "downwardAPI", "projected"}) {
        if (v.contains(src) && v[src].is_object() && !v[src].contains("defaultMode")) {
          v[src]["defaultMode"] = 420;
        }
      }
      if (v.contains("hostPath") && v["hostPath"].is_object() && !v["hostPath"].contains("type")) {
        v["hostPath"]["type"] = "";
      }
    }
  }
}

void validateContainers(Errors& e, const std::string& f, const json& list, bool required,
                        const std::set<std::string>& volumes, std::set<std::string>& names) {
  if (list.is_null()) {
    if (required) e.required(f);
    return;
  }
  if (!list.is_array()) {
    e.invalid(f, list, "must be a list");
    return;
  }
  if (list.empty() && required) e.required(f);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = f + "[" + std::to_string(i) + "]";
    const json& c = list[i];
    if (!c.is_object()) {
      e.invalid(p, c, "must be an object");
      continue;
    }
    std::string name = str(field(c, "name"));
    if (name.empty()) {
      e.required(p + ".name");
    } else if (!isLabel(name)) {
      e.invalid(p + ".name", name,
                name.size() > 63 ? "must be no more than 63 characters" : kLabelMsg);
    } else if (!names.insert(name).second) {
      e.duplicate(p + ".name", name);
    }
    if (str(field(c, "image")).empty()) e.required(p + ".image");
    const json& pol = field(c, "imagePullPolicy");
    if (pol.is_string() && pol != "Always" && pol != "IfNotPresent" && pol != "Never") {
      e.notSupported(p + ".imagePullPolicy", pol, {"Always", "IfNotPresent", "Never"});
    }
    const json& ports = field(c, "ports");
    if (ports.is_array()) {
      std::set<std::string> portNames;
      for (size_t j = 0; j < ports.size(); ++j) {
        const std::string pp = p + ".ports[" + std::to_string(j) + "]";
        const json& port = ports[j];
        const json& cp = field(port, "containerPort");
        if (cp.is_null()) {
          e.required(pp + ".containerPort");
        } else if (!cp.is_number_integer() || cp.get<int64_t>() < 1 || cp.get<int64_t>() > 65535) {
          e.invalid(pp + ".containerPort", cp, "must be between 1 and 65535, inclusive");
        }
        const json& proto = field(port, "protocol");
        if (proto.is_string() && proto != "TCP" && proto != "UDP" && proto != "SCTP") {
          e.notSupported(pp + ".protocol", proto, {"SCTP", "TCP", "UDP"});
        }
        std::string pn = str(field(port, "name"));
        if (!pn.empty() && !portNames.insert(pn).second) e.duplicate(pp + ".name", pn);
      }
    }
    const json& mounts = field(c, "volumeMounts");
    if (mounts.is_array()) {
      for (size_t j = 0; j < mounts.size(); ++j) {
        const std::string mp = p + ".volumeMounts[" + std::to_string(j) + "]";
        std::string vn = str(field(mounts[j], "name"));
        if (vn.empty())
          e.required(mp + ".name");
        else if (!volumes.count(vn))
          e.notFound(mp + ".name", vn);
        if (str(field(mounts[j], "mountPath")).empty()) e.required(mp + ".mountPath");
      }
    }
  }
}

// `extraVolumes`: volume names provided from outside the pod spec (a StatefulSet's
// volumeClaimTemplates).
void validatePodSpec(Errors& e, const std::string& f, const json& spec,
                     const std::vector<std::string>& allowedRestart,
                     const std::set<std::string>& extraVolumes = {}) {
  if (!spec.is_object()) {
    e.required(f);
    return;
  }
  std::set<std::string> volumes = extraVolumes;
  const json& vols = field(spec, "volumes");
  if (vols.is_array()) {
    for (size_t i = 0; i < vols.size(); ++i) {
      const std::string p = f + ".volumes[" + std::to_string(i) + "]";
      std::string n = str(field(vols[i], "name"));
      if (n.empty())
        e.required(p + ".name");
      else if (!isLabel(n))
        e.invalid(p + ".name", n, kLabelMsg);
      else if (!volumes.insert(n).second)
        e.duplicate(p + ".name", n);
    }
  }
  std::set<std::string> names;
  validateContainers(e, f + ".containers", field(spec, "containers"), true, volumes, names);
  validateContainers(e, f + ".initContainers", field(spec, "initContainers"), false, volumes,
                     names);
  const json& rp = field(spec, "restartPolicy");
  if (rp.is_string() && std::find(allowedRestart.begin(), allowedRestart.end(),
                                  rp.get<std::string>()) == allowedRestart.end()) {
    e.notSupported(f + ".restartPolicy", rp, allowedRestart);
  }
  const json& dp = field(spec, "dnsPolicy");
  if (dp.is_string() && dp != "ClusterFirst" && dp != "ClusterFirstWithHostNet" &&
      dp != "Default" && dp != "None") {
    e.notSupported(f + ".dnsPolicy", dp,
                   {"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"});
  }
  const json& tg = field(spec, "terminationGracePeriodSeconds");
  if (!tg.is_null() && (!tg.is_number_integer() || tg.get<int64_t>() < 0)) {
    e.invalid(f + ".terminationGracePeriodSeconds", tg, "must be greater than or equal to 0");
  }
}

// --- workloads -----------------------------------------------------------------------------------

void defaultTemplate(json& obj) {
  json& spec = obj["spec"];
  if (!spec.is_object()) return;
  if (spec.contains("template") && spec["template"].is_object()) {
    defaultPodSpec(spec["template"]["spec"]);
  }
}

void validateReplicas(Errors& e, const json& spec) {
  const json& r = field(spec, "replicas");
  if (!r.is_null() && (!r.is_number_integer() || r.get<int64_t>() < 0)) {
    e.invalid("spec.replicas", r, "must be greater than or equal to 0");
  }
}

std::string goMap(const json& labels) {
  std::string s = "map[string]string{";
  bool first = true;
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      s += (first ? "" : ", ") + json(it.key()).dump() + ":" + quote(*it);
      first = false;
    }
  }
  return s + "}";
}

void validateSelectorAndTemplate(Errors& e, const json& spec, const std::string& kindLower,
                                 const std::vector<std::string>& restart) {
  const json& sel = field(spec, "selector");
  const json& tmpl = field(spec, "template");
  if (sel.is_null()) {
    e.required("spec.selector");
  } else {
    auto ls = api::LabelSelector::fromJson(sel);
    if (!ls.ok()) {
      e.invalid("spec.selector", sel.dump(), ls.status().message());
    } else if (ls->empty()) {
      e.invalid("spec.selector", "", "empty selector is invalid for " + kindLower);
    } else if (tmpl.is_object()) {
      const json& labels = field(field(tmpl, "metadata"), "labels");
      if (!ls->matches(labels)) {
        e.list.push_back(
            {"FieldValueInvalid", "spec.template.metadata.labels",
             "Invalid value: " + goMap(labels) + ": `selector` does not match template `labels`"});
      }
    }
  }
  if (!tmpl.is_object()) {
    e.required("spec.template");
    return;
  }
  validateLabels(e, "spec.template.metadata.labels", field(field(tmpl, "metadata"), "labels"));
  std::set<std::string> claimVolumes;
  if (const json& vcts = field(spec, "volumeClaimTemplates"); vcts.is_array()) {
    for (const auto& v : vcts) {
      std::string n = str(field(field(v, "metadata"), "name"));
      if (!n.empty()) claimVolumes.insert(n);
    }
  }
  validatePodSpec(e, "spec.template.spec", field(tmpl, "spec"), restart, claimVolumes);
}

// A CronJob's schedule, startingDeadlineSeconds and timeZone (upstream's validateCronJobSpec,
// validateScheduleFormat, validateTimeZone). `oldSpec`: the spec being replaced, on update.
void validateCronJobScheduling(Errors& e, const json& spec, const json* oldSpec) {
  const std::string schedule = str(field(spec, "schedule"));
  if (schedule.empty()) {
    e.required("spec.schedule");
  } else {
    if (auto parsed = api::parseCronSchedule(schedule); !parsed.ok()) {
      e.invalid("spec.schedule", schedule, parsed.status().message());
    }
    const bool tzBefore =
        oldSpec && str(field(*oldSpec, "schedule")).find("TZ") != std::string::npos;
    const bool tz = schedule.find("TZ") != std::string::npos;
    if (tzBefore && tz && !field(spec, "timeZone").is_null()) {
      e.invalid("spec.schedule", schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule");
    } else if (!tzBefore && tz) {
      e.invalid("spec.schedule", schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    }
  }
  const json& sds = field(spec, "startingDeadlineSeconds");
  if (sds.is_number_integer() && sds.get<int64_t>() < 0) {
    e.invalid("spec.startingDeadlineSeconds", sds, "must be greater than or equal to 0");
  }
  const json& tzv = field(spec, "timeZone");
  if (!tzv.is_string() || (oldSpec && field(*oldSpec, "timeZone") == tzv)) return;
  const std::string zone = tzv.get<std::string>();
  if (zone.empty()) {
    e.invalid("spec.timeZone", zone, "timeZone must be nil or non-empty string");
    return;
  }
  size_t i = 0;
  while (true) {
    const size_t j = zone.find('/', i);
    const std::string part = zone.substr(i, j == std::string::npos ? std::string::npos : j - i);
    const bool ok = !part.empty() && part.size() <= 14 && part != "." && part != ".." &&
                    part[0] != '-' && std::all_of(part.begin(), part.end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                             c == '_' || c == '+';
                    });
    if (!ok) {
      e.invalid("spec.timeZone", zone, "unknown time zone " + zone);
      return;
    }
    if (j == std::string::npos) break;
    i = j + 1;
  }
  std::string lower = zone;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower == "local") {
    e.invalid("spec.timeZone", zone,
              "timeZone must be an explicit time zone as defined in "
              "https://www.iana.org/time-zones");
  }
  if (auto z = api::TimeZone::load(zone); !z.ok()) {
    e.invalid("spec.timeZone", zone, z.status().message());
  }
}

}  // namespace

void prepareForCreate(const api::ResourceInfo& info, json& obj) {
  if (info.kind != "Job" || !obj.is_object() || !obj["spec"].is_object()) return;
  json& spec = obj["spec"];
  if (field(spec, "manualSelector") == json(true)) return;
  if (!spec["template"].is_object()) return;
  const json& meta = field(obj, "metadata");
  const std::string name = str(field(meta, "name"));
  const std::string uid = str(field(meta, "uid"));
  json& tmeta = spec["template"]["metadata"];
  if (!tmeta.is_object()) tmeta = json::object();
  json& labels = tmeta["labels"];
  if (!labels.is_object()) labels = json::object();
  // Labels the user set are kept (a conflict with the selector fails validation upstream).
  for (const char* k : {"job-name", "batch.kubernetes.io/job-name"}) {
    if (!labels.contains(k)) labels[k] = name;
  }
  for (const char* k : {"controller-uid", "batch.kubernetes.io/controller-uid"}) {
    if (!labels.contains(k)) labels[k] = uid;
  }
  json& sel = spec["selector"];
  if (!sel.is_object()) sel = json::object();
  json& ml = sel["matchLabels"];
  if (!ml.is_object()) ml = json::object();
  if (!ml.contains("batch.kubernetes.io/controller-uid")) {
    ml["batch.kubernetes.io/controller-uid"] = uid;
  }
}

void applyDefaults(const api::ResourceInfo& info, json& obj) {
  if (!obj.is_object()) return;
  const std::string& k = info.kind;
  if (k == "Pod") {
    defaultPodSpec(obj["spec"]);
  } else if (k == "PodTemplate") {
    if (obj.contains("template") && obj["template"].is_object())
      defaultPodSpec(obj["template"]["spec"]);
  } else if (k == "Deployment") {
    json& spec = obj["spec"];
    if (!spec.is_object()) return;
    if (!spec.contains("replicas")) spec["replicas"] = 1;
    if (!spec.contains("strategy") || !spec["strategy"].is_object())
      spec["strategy"] = json::object();
    json& st = spec["strategy"];
    if (!st.contains("type")) st["type"] = "RollingUpdate";
    if (st["type"] == "RollingUpdate") {
      if (!st.contains("rollingUpdate") || !st["rollingUpdate"].is_object())
        st["rollingUpdate"] = json::object();
      if (!st["rollingUpdate"].contains("maxUnavailable"))
        st["rollingUpdate"]["maxUnavailable"] = "25%";
      if (!st["rollingUpdate"].contains("maxSurge")) st["rollingUpdate"]["maxSurge"] = "25%";
    }
    if (!spec.contains("revisionHistoryLimit")) spec["revisionHistoryLimit"] = 10;
    if (!spec.contains("progressDeadlineSeconds")) spec["progressDeadlineSeconds"] = 600;
    defaultTemplate(obj);
  } else if (k == "ReplicaSet" || k == "ReplicationController") {
    if (obj["spec"].is_object() && !obj["spec"].contains("replicas")) obj["spec"]["replicas"] = 1;
    defaultTemplate(obj);
  } else if (k == "StatefulSet") {
    json& spec = obj["spec"];
    if (!spec.is_object()) return;
    if (!spec.contains("replicas")) spec["replicas"] = 1;
    if (!spec.contains("podManagementPolicy")) spec["podManagementPolicy"] = "OrderedReady";
    if (!spec.contains("updateStrategy")) {
      spec["updateStrategy"] = {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 0}}}};
    }
    if (!spec.contains("revisionHistoryLimit")) spec["revisionHistoryLimit"] = 10;
    if (!spec.contains("persistentVolumeClaimRetentionPolicy")) {
      spec["persistentVolumeClaimRetentionPolicy"] = {{"whenDeleted", "Retain"},
                                                      {"whenScaled", "Retain"}};
    }
    defaultTemplate(obj);
  } else if (k == "DaemonSet") {
    json& spec = obj["spec"];
    if (!spec.is_object()) return;
    if (!spec.contains("updateStrategy")) {
      spec["updateStrategy"] = {{"type", "RollingUpdate"},
                                {"rollingUpdate", {{"maxUnavailable", 1}, {"maxSurge", 0}}}};
    }
    if (!spec.contains("revisionHistoryLimit")) spec["revisionHistoryLimit"] = 10;
    defaultTemplate(obj);
  } else if (k == "Job") {
    json& spec = obj["spec"];
    if (!spec.is_object()) return;
    // Both unset: one pod to completion. Only parallelism set: a work queue (completions nil).
    if (!spec.contains("completions") && !spec.contains("parallelism")) spec["completions"] = 1;
    if (!spec.contains("parallelism")) spec["parallelism"] = 1;
    if (!spec.contains("backoffLimit")) spec["backoffLimit"] = 6;
    if (!spec.contains("completionMode")) spec["completionMode"] = "NonIndexed";
    if (!spec.contains("suspend")) spec["suspend"] = false;
    if (!spec.contains("podReplacementPolicy"))
      spec["podReplacementPolicy"] = "TerminatingOrFailed";
    defaultTemplate(obj);
  } else if (k == "CronJob") {
    json& spec = obj["spec"];
    if (!spec.is_object()) return;
    if (!spec.contains("concurrencyPolicy")) spec["concurrencyPolicy"] = "Allow";
    if (!spec.contains("suspend")) spec["suspend"] = false;
    if (!spec.contains("successfulJobsHistoryLimit")) spec["successfulJobsHistoryLimit"] = 3;
    if (!spec.contains("failedJobsHistoryLimit")) spec["failedJobsHistoryLimit"] = 1;
    if (spec.contains("jobTemplate") && spec["jobTemplate"].is_object() &&
        spec["jobTemplate"].contains("spec") && spec["jobTemplate"]["spec"].is_object()) {
      json& js = spec["jobTemplate"]["spec"];
      if (js.contains("template") && js["template"].is_object())
        defaultPodSpec(js["template"]["spec"]);
    }
  } else if (k == "Secret") {
    if (!obj.contains("type")) obj["type"] = "Opaque";
  } else if (k == "PersistentVolumeClaim") {
    if (obj["spec"].is_object() && !obj["spec"].contains("volumeMode"))
      obj["spec"]["volumeMode"] = "Filesystem";
  }
}

namespace {

// What upstream's ValidateXUpdate functions refuse to change, with their messages.
void validateImmutable(Errors& e, const std::string& k, const json& obj, const json& old) {
  const json& spec = field(obj, "spec");
  const json& oldSpec = field(old, "spec");
  auto immutable = [&](const std::string& path, const json& now, const json& before) {
    if (now != before) e.invalid(path, now, "field is immutable");
  };
  if (k == "Pod") {
    // Only images, activeDeadlineSeconds, tolerations (additions), terminationGracePeriodSeconds
    // and removing scheduling gates may change.
    json a = spec, b = oldSpec;
    if (a.is_object() && b.is_object()) {
      for (const char* list : {"containers", "initContainers"}) {
        if (!a.contains(list) || !b.contains(list) || !a[list].is_array() || !b[list].is_array())
          continue;
        for (size_t i = 0; i < a[list].size() && i < b[list].size(); ++i) {
          if (a[list][i].is_object() && b[list][i].is_object()) {
            a[list][i]["image"] = b[list][i].value("image", json());
          }
        }
      }
      for (const char* f : {"activeDeadlineSeconds", "terminationGracePeriodSeconds", "tolerations",
                            "schedulingGates"}) {
        a.erase(f);
        b.erase(f);
      }
    }
    if (a != b) {
      e.forbidden("spec",
                  "pod updates may not change fields other than `spec.containers[*].image`,"
                  "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                  "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                  "(allow it to be set to 1 if it was previously negative)");
    }
  } else if (k == "ConfigMap" || k == "Secret") {
    if (field(old, "immutable") == json(true)) {
      if (field(obj, "immutable") != json(true)) {
        e.forbidden("immutable", "field is immutable when `immutable` is set");
      }
      if (field(obj, "data") != field(old, "data")) {
        e.forbidden("data", "field is immutable when `immutable` is set");
      }
      if (k == "ConfigMap" && field(obj, "binaryData") != field(old, "binaryData")) {
        e.forbidden("binaryData", "field is immutable when `immutable` is set");
      }
    }
    if (k == "Secret") immutable("type", field(obj, "type"), field(old, "type"));
  } else if (k == "Job") {
    immutable("spec.selector", field(spec, "selector"), field(oldSpec, "selector"));
    immutable("spec.completions", field(spec, "completions"), field(oldSpec, "completions"));
    immutable("spec.completionMode", field(spec, "completionMode"),
              field(oldSpec, "completionMode"));
    // The template may change only while the job is suspended (upstream: scheduling directives).
    if (field(spec, "template") != field(oldSpec, "template") &&
        field(oldSpec, "suspend") != json(true)) {
      e.invalid("spec.template", field(spec, "template"), "field is immutable");
    }
  } else if (k == "StatefulSet") {
    json a = spec, b = oldSpec;
    if (a.is_object() && b.is_object()) {
      for (const char* f : {"replicas", "ordinals", "template", "updateStrategy",
                            "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}) {
        a.erase(f);
        b.erase(f);
      }
    }
    if (a != b) {
      e.forbidden("spec",
                  "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                  "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                  "'minReadySeconds' are forbidden");
    }
  } else if (k == "PersistentVolumeClaim") {
    json a = spec, b = oldSpec;
    if (a.is_object() && b.is_object()) {
      for (const char* f : {"resources", "volumeAttributesClassName"}) {
        a.erase(f);
        b.erase(f);
      }
      // volumeName may be set once (binding).
      if (str(field(b, "volumeName")).empty()) {
        a.erase("volumeName");
        b.erase("volumeName");
      }
    }
    if (a != b) {
      e.forbidden("spec",
                  "spec is immutable after creation except resources.requests and "
                  "volumeAttributesClassName for bound claims");
    }
  }
}

}  // namespace

FieldErrors validateObject(const api::ResourceInfo& info, const json& obj, const json* old) {
  Errors e;
  const std::string& k = info.kind;
  const json& meta = field(obj, "metadata");
  validateName(e, "metadata.name", str(field(meta, "name")), nameRule(k));
  validateLabels(e, "metadata.labels", field(meta, "labels"));
  const json& spec = field(obj, "spec");
  static const std::vector<std::string> kAllRestart = {"Always", "OnFailure", "Never"};
  if (k == "Pod") {
    validatePodSpec(e, "spec", spec, kAllRestart);
  } else if (k == "Deployment" || k == "ReplicaSet" || k == "StatefulSet" || k == "DaemonSet") {
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    validateReplicas(e, spec);
    validateSelectorAndTemplate(e, spec, lower, {"Always"});
    if (old && !field(field(*old, "spec"), "selector").is_null() &&
        field(field(*old, "spec"), "selector") != field(spec, "selector")) {
      e.list.push_back(
          {"FieldValueInvalid", "spec.selector",
           "Invalid value: " + field(spec, "selector").dump() + ": field is immutable"});
    }
  } else if (k == "Job") {
    const json& tmpl = field(spec, "template");
    if (!tmpl.is_object())
      e.required("spec.template");
    else
      validatePodSpec(e, "spec.template.spec", field(tmpl, "spec"), {"OnFailure", "Never"});
    for (const char* n : {"parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"}) {
      const json& v = field(spec, n);
      if (!v.is_null() && (!v.is_number_integer() || v.get<int64_t>() < 0)) {
        e.invalid(std::string("spec.") + n, v, "must be greater than or equal to 0");
      }
    }
    const json& mode = field(spec, "completionMode");
    if (mode.is_string() && mode != "NonIndexed" && mode != "Indexed") {
      e.notSupported("spec.completionMode", mode, {"NonIndexed", "Indexed"});
    } else if (mode == "Indexed" && field(spec, "completions").is_null()) {
      e.required("spec.completions", "when completion mode is Indexed");
    }
  } else if (k == "CronJob") {
    validateCronJobScheduling(e, spec, old ? &field(*old, "spec") : nullptr);
    const json& jt = field(field(spec, "jobTemplate"), "spec");
    const json& tmpl = field(jt, "template");
    if (!tmpl.is_object())
      e.required("spec.jobTemplate.spec.template");
    else
      validatePodSpec(e, "spec.jobTemplate.spec.template.spec", field(tmpl, "spec"),
                      {"OnFailure", "Never"});
    const json& cp = field(spec, "concurrencyPolicy");
    if (cp.is_string() && cp != "Allow" && cp != "Forbid" && cp != "Replace") {
      e.notSupported("spec.concurrencyPolicy", cp, {"Allow", "Forbid", "Replace"});
    }
    if (!field(jt, "selector").is_null()) {
      e.invalid("spec.jobTemplate.spec.selector", field(jt, "selector"),
                "`selector` will be auto-generated");
    }
    for (const char* n : {"successfulJobsHistoryLimit", "failedJobsHistoryLimit"}) {
      const json& v = field(spec, n);
      if (v.is_number_integer() && v.get<int64_t>() < 0) {
        e.invalid(std::string("spec.") + n, v, "must be greater than or equal to 0");
      }
    }
    // The controller appends an 11-character suffix ("-<minutes>") to name its Jobs.
    if (!old && str(field(meta, "name")).size() > 52) {
      e.invalid("metadata.name", field(meta, "name"), "must be no more than 52 characters");
    }
  } else if (k == "Service") {
    std::string type = str(field(spec, "type"));
    if (!type.empty() && type != "ClusterIP" && type != "NodePort" && type != "LoadBalancer" &&
        type != "ExternalName") {
      e.notSupported("spec.type", type, {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"});
    }
    const json& ports = field(spec, "ports");
    bool headless = str(field(spec, "clusterIP")) == "None";
    if ((ports.is_null() || (ports.is_array() && ports.empty())) && type != "ExternalName" &&
        !headless) {
      e.required("spec.ports");
    }
    if (type == "ExternalName" && str(field(spec, "externalName")).empty()) {
      e.required("spec.externalName");
    }
    if (ports.is_array()) {
      std::set<std::string> names;
      for (size_t i = 0; i < ports.size(); ++i) {
        const std::string p = "spec.ports[" + std::to_string(i) + "]";
        const json& port = field(ports[i], "port");
        if (port.is_null())
          e.required(p + ".port");
        else if (!port.is_number_integer() || port.get<int64_t>() < 1 ||
                 port.get<int64_t>() > 65535)
          e.invalid(p + ".port", port, "must be between 1 and 65535, inclusive");
        std::string name = str(field(ports[i], "name"));
        if (ports.size() > 1 && name.empty())
          e.required(p + ".name");
        else if (!name.empty() && !names.insert(name).second)
          e.duplicate(p + ".name", name);
        const json& proto = field(ports[i], "protocol");
        if (proto.is_string() && proto != "TCP" && proto != "UDP" && proto != "SCTP") {
          e.notSupported(p + ".protocol", proto, {"SCTP", "TCP", "UDP"});
        }
      }
    }
  } else if (k == "ConfigMap" || k == "Secret") {
    // A service-account token Secret names its account; the tokens controller fills the rest.
    if (k == "Secret" && str(field(obj, "type")) == "kubernetes.io/service-account-token" &&
        str(field(field(field(obj, "metadata"), "annotations"),
                  "kubernetes.io/service-account.name"))
            .empty()) {
      e.required("metadata.annotations[kubernetes.io/service-account.name]");
    }
    for (const char* m : {"data", "binaryData", "stringData"}) {
      const json& d = field(obj, m);
      if (!d.is_object()) continue;
      for (auto it = d.begin(); it != d.end(); ++it) {
        const std::string& key = it.key();
        bool ok = !key.empty() && key.size() <= 253 && key != "." && key != ".." &&
                  std::all_of(key.begin(), key.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                           c == '.';
                  });
        if (!ok) e.invalid(std::string(m) + "[" + key + "]", key, kConfigKeyMsg);
      }
    }
  }
  if (old) validateImmutable(e, k, obj, *old);
  return e.list;
}

std::string invalidMessage(const std::string& kind, const std::string& name,
                           const FieldErrors& errors) {
  std::string head = kind + " \"" + name + "\" is invalid: ";
  if (errors.size() == 1) return head + errors[0].toString();
  std::string s;
  for (const auto& e : errors) s += (s.empty() ? "" : ", ") + e.toString();
  return head + "[" + s + "]";
}

std::string podQosClass(const json& pod) {
  const json& spec = pod.value("spec", json::object());
  bool any = false, guaranteed = true;
  for (const char* list : {"initContainers", "containers"}) {
    const json& cs = spec.value(list, json::array());
    if (!cs.is_array()) continue;
    for (const auto& c : cs) {
      if (!c.is_object()) continue;
      const json& res = c.value("resources", json::object());
      const json& req = res.is_object() ? res.value("requests", json::object()) : json::object();
      const json& lim = res.is_object() ? res.value("limits", json::object()) : json::object();
      for (const char* r : {"cpu", "memory"}) {
        const bool hasReq = req.is_object() && req.contains(r);
        const bool hasLim = lim.is_object() && lim.contains(r);
        if (hasReq || hasLim) any = true;
        if (!hasLim || (hasReq && req[r] != lim[r])) guaranteed = false;
      }
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

}  // namespace kiln::registry
