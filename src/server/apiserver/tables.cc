// Table columns per kind, following kubernetes pkg/printers/internalversion/printers.go (column
// names, order, priorities and cell formats); kinds without a printer get Name and Age.
#include "server/apiserver/tables.h"

#include <cctype>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>

namespace kiln::apiserver {
namespace {

using nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;

struct Row {
  const json& obj;
  const std::string& age;
  TimePoint now;
};

struct Column {
  const char* name;
  const char* type;
  const char* format;
  const char* description;
  int priority;
  std::function<json(const Row&)> cell;
};

const json& at(const json& obj, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(p);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

std::string str(const json& obj, std::initializer_list<const char*> path) {
  const json& v = at(obj, path);
  return v.is_string() ? v.get<std::string>() : "";
}

int64_t num(const json& obj, std::initializer_list<const char*> path) {
  const json& v = at(obj, path);
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

std::string orNone(const std::string& s) { return s.empty() ? "<none>" : s; }
std::string orUnset(const std::string& s) { return s.empty() ? "<unset>" : s; }

std::string join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

size_t count(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_object() ? it->size() : 0;
}

TimePoint parseTime(const std::string& ts) {
  std::tm tm{};
  if (ts.size() < 20 || !strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string since(const std::string& ts, TimePoint now) {
  auto t = parseTime(ts);
  if (t == TimePoint{}) return "<unknown>";
  return humanDuration(std::chrono::duration_cast<std::chrono::seconds>(now - t));
}

// metav1.LabelSelector (matchLabels + matchExpressions) or a plain map, as upstream prints it.
std::string selectorString(const json& sel) {
  if (!sel.is_object()) return "";
  bool structured = sel.contains("matchLabels") || sel.contains("matchExpressions");
  const json& labels = structured ? at(sel, {"matchLabels"}) : sel;
  std::vector<std::string> parts;
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      parts.push_back(it.key() + "=" +
                      (it.value().is_string() ? it.value().get<std::string>() : ""));
    }
  }
  const json& exprs = at(sel, {"matchExpressions"});
  if (structured && exprs.is_array()) {
    for (const auto& e : exprs) {
      std::string op = e.value("operator", ""), key = e.value("key", "");
      std::vector<std::string> vals;
      if (e.contains("values") && e["values"].is_array()) {
        for (const auto& v : e["values"]) vals.push_back(v.is_string() ? v.get<std::string>() : "");
      }
      if (op == "In")
        parts.push_back(key + " in (" + join(vals) + ")");
      else if (op == "NotIn")
        parts.push_back(key + " notin (" + join(vals) + ")");
      else if (op == "Exists")
        parts.push_back(key);
      else if (op == "DoesNotExist")
        parts.push_back("!" + key);
    }
  }
  return join(parts);
}

std::string containerField(const json& podSpec, const char* field) {
  std::vector<std::string> out;
  const json& cs = at(podSpec, {"containers"});
  if (cs.is_array()) {
    for (const auto& c : cs) out.push_back(c.value(field, ""));
  }
  return join(out);
}

Column nameColumn() {
  return {"Name",
          "string",
          "name",
          "Name must be unique within a namespace. More info: "
          "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
          0,
          [](const Row& r) {
            return json(str(r.obj, {"metadata", "name"}));
          }};
}
Column ageColumn() {
  return {"Age",
          "string",
          "",
          "CreationTimestamp is a timestamp representing the server time when this object was "
          "created.",
          0,
          [](const Row& r) { return json(r.age); }};
}
Column col(const char* name, int priority, std::function<json(const Row&)> cell,
           const char* type = "string") {
  return {name, type, "", "", priority, std::move(cell)};
}
// -o wide columns of workloads: containers, images, selector.
void addWorkloadWide(std::vector<Column>& c, std::initializer_list<const char*> podSpecPath) {
  std::vector<const char*> path(podSpecPath);
  auto spec = [path](const json& o) -> const json& {
    const json* cur = &o;
    for (const char* p : path) cur = &at(*cur, {p});
    return *cur;
  };
  c.push_back(col("Containers", 1,
                  [spec](const Row& r) { return json(containerField(spec(r.obj), "name")); }));
  c.push_back(col("Images", 1,
                  [spec](const Row& r) { return json(containerField(spec(r.obj), "image")); }));
  c.push_back(col("Selector", 1, [](const Row& r) {
    return json(orNone(selectorString(at(r.obj, {"spec", "selector"}))));
  }));
}

// The STATUS, READY and RESTARTS of a pod, as upstream's printPod computes them.
struct PodView {
  std::string ready, status, restarts;
};
PodView podView(const json& pod, TimePoint now) {
  const json& statuses = at(pod, {"status", "containerStatuses"});
  size_t total =
      at(pod, {"spec", "containers"}).is_array() ? at(pod, {"spec", "containers"}).size() : 0;
  size_t ready = 0;
  int64_t restarts = 0;
  std::string lastRestart;
  std::string reason = str(pod, {"status", "phase"});
  if (!str(pod, {"status", "reason"}).empty()) reason = str(pod, {"status", "reason"});
  const json& inits = at(pod, {"status", "initContainerStatuses"});
  bool initializing = false;
  if (inits.is_array()) {
    size_t i = 0;
    for (const auto& c : inits) {
      restarts += c.value("restartCount", 0);
      const json& term = at(c, {"state", "terminated"});
      const json& wait = at(c, {"state", "waiting"});
      if (term.is_object() && term.value("exitCode", 0) == 0) {
        ++i;
        continue;
      }
      initializing = true;
      if (term.is_object()) {
        reason = "Init:" + (term.value("reason", "").empty()
                                ? "ExitCode:" + std::to_string(term.value("exitCode", 0))
                                : term.value("reason", ""));
      } else if (wait.is_object() && !wait.value("reason", "").empty() &&
                 wait.value("reason", "") != "PodInitializing") {
        reason = "Init:" + wait.value("reason", "");
      } else {
        reason = "Init:" + std::to_string(i) + "/" + std::to_string(inits.size());
      }
      break;
    }
  }
  if (!initializing && statuses.is_array()) {
    bool hasRunning = false;
    for (auto it = statuses.rbegin(); it != statuses.rend(); ++it) {
      const json& c = *it;
      restarts += c.value("restartCount", 0);
      std::string finished = str(c, {"lastState", "terminated", "finishedAt"});
      if (!finished.empty() && finished > lastRestart) lastRestart = finished;
      const json& wait = at(c, {"state", "waiting"});
      const json& term = at(c, {"state", "terminated"});
      if (wait.is_object() && !wait.value("reason", "").empty()) {
        reason = wait.value("reason", "");
      } else if (term.is_object()) {
        reason = !term.value("reason", "").empty()
                     ? term.value("reason", "")
                     : (term.contains("signal") && term.value("signal", 0) != 0
                            ? "Signal:" + std::to_string(term.value("signal", 0))
                            : "ExitCode:" + std::to_string(term.value("exitCode", 0)));
      } else if (at(c, {"state", "running"}).is_object() && c.value("ready", false)) {
        hasRunning = true;
        ++ready;
      }
    }
    if (reason == "Completed" && hasRunning) reason = "Running";
  }
  if (!str(pod, {"metadata", "deletionTimestamp"}).empty()) {
    reason = str(pod, {"status", "reason"}) == "NodeLost" ? "Unknown" : "Terminating";
  }
  if (reason.empty()) reason = "Pending";
  std::string r = std::to_string(restarts);
  if (!lastRestart.empty()) r += " (" + since(lastRestart, now) + " ago)";
  return {std::to_string(ready) + "/" + std::to_string(total), reason, r};
}

std::string servicePorts(const json& svc) {
  std::vector<std::string> out;
  const json& ports = at(svc, {"spec", "ports"});
  if (ports.is_array()) {
    for (const auto& p : ports) {
      std::string s = std::to_string(p.value("port", 0));
      if (p.contains("nodePort") && p.value("nodePort", 0) != 0) {
        s += ":" + std::to_string(p.value("nodePort", 0));
      }
      out.push_back(s + "/" + p.value("protocol", "TCP"));
    }
  }
  return orNone(join(out));
}

std::string serviceExternalIp(const json& svc) {
  std::string type = str(svc, {"spec", "type"});
  std::vector<std::string> ips;
  const json& ext = at(svc, {"spec", "externalIPs"});
  if (ext.is_array()) {
    for (const auto& e : ext) ips.push_back(e.get<std::string>());
  }
  if (type == "LoadBalancer") {
    const json& ingress = at(svc, {"status", "loadBalancer", "ingress"});
    if (ingress.is_array()) {
      for (const auto& i : ingress) {
        ips.push_back(!i.value("ip", "").empty() ? i.value("ip", "") : i.value("hostname", ""));
      }
    }
    return ips.empty() ? "<pending>" : join(ips);
  }
  if (type == "ExternalName") return str(svc, {"spec", "externalName"});
  return orNone(join(ips));
}

// "a,b,c + 2 more..." as upstream's printers shorten long lists.
std::string truncatedList(const std::vector<std::string>& v, size_t max) {
  if (v.size() <= max) return join(v);
  std::vector<std::string> head(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(max));
  return join(head) + " + " + std::to_string(v.size() - max) + " more...";
}

// RWO, ROX, RWX, RWOP as kubectl abbreviates access modes.
std::string accessModes(const json& m) {
  std::vector<std::string> modes;
  if (m.is_array()) {
    for (const auto& x : m) {
      if (!x.is_string()) continue;
      std::string s = x.get<std::string>();
      modes.push_back(s == "ReadWriteOnce"      ? "RWO"
                      : s == "ReadOnlyMany"     ? "ROX"
                      : s == "ReadWriteMany"    ? "RWX"
                      : s == "ReadWriteOncePod" ? "RWOP"
                                                : s);
    }
  }
  return join(modes);
}

// "cpu: 0/2, pods: 1/10" for ResourceQuota's status, split as upstream into requests and
// limits (resources whose name starts with "limits").
std::string quotaUsage(const json& rq, bool limits) {
  std::vector<std::string> out;
  const json& hard = at(rq, {"status", "hard"});
  if (!hard.is_object()) return "";
  for (const auto& [res, q] : hard.items()) {  // json objects iterate in sorted key order
    if ((res.rfind("limits", 0) == 0) != limits) continue;
    const json& used = at(rq, {"status", "used"});
    std::string u = used.is_object() && used.contains(res) && used[res].is_string()
                        ? used[res].get<std::string>()
                        : "0";
    out.push_back(res + ": " + u + "/" + (q.is_string() ? q.get<std::string>() : q.dump()));
  }
  return join(out, ", ");
}

std::vector<Column> columnsFor(const std::string& kind) {
  std::vector<Column> c{nameColumn()};
  auto i64 = [](std::initializer_list<const char*> p) {
    std::vector<const char*> path(p);
    return [path](const Row& r) {
      const json* cur = &r.obj;
      for (const char* s : path) cur = &at(*cur, {s});
      return json(cur->is_number_integer() ? cur->get<int64_t>() : 0);
    };
  };
  if (kind == "Pod") {
    c.push_back(col("Ready", 0, [](const Row& r) { return json(podView(r.obj, r.now).ready); }));
    c.push_back(col("Status", 0, [](const Row& r) { return json(podView(r.obj, r.now).status); }));
    c.push_back(
        col("Restarts", 0, [](const Row& r) { return json(podView(r.obj, r.now).restarts); }));
    c.push_back(ageColumn());
    c.push_back(col("IP", 1, [](const Row& r) {
      return json(orNone(str(r.obj, {"status", "podIP"})));
    }));
    c.push_back(col("Node", 1, [](const Row& r) {
      return json(orNone(str(r.obj, {"spec", "nodeName"})));
    }));
    c.push_back(col("Nominated Node", 1, [](const Row& r) {
      return json(orNone(str(r.obj, {"status", "nominatedNodeName"})));
    }));
    c.push_back(col("Readiness Gates", 1, [](const Row& r) {
      const json& g = at(r.obj, {"spec", "readinessGates"});
      return json(g.is_array() && !g.empty() ? "0/" + std::to_string(g.size()) : "<none>");
    }));
  } else if (kind == "Service") {
    c.push_back(col("Type", 0, [](const Row& r) {
      return json(str(r.obj, {"spec", "type"}).empty() ? "ClusterIP"
                                                       : str(r.obj, {"spec", "type"}));
    }));
    c.push_back(col("Cluster-IP", 0, [](const Row& r) {
      return json(orNone(str(r.obj, {"spec", "clusterIP"})));
    }));
    c.push_back(col("External-IP", 0, [](const Row& r) { return json(serviceExternalIp(r.obj)); }));
    c.push_back(col("Port(s)", 0, [](const Row& r) { return json(servicePorts(r.obj)); }));
    c.push_back(ageColumn());
    c.push_back(col("Selector", 1, [](const Row& r) {
      return json(orNone(selectorString(at(r.obj, {"spec", "selector"}))));
    }));
  } else if (kind == "Deployment") {
    c.push_back(col("Ready", 0, [](const Row& r) {
      return json(std::to_string(num(r.obj, {"status", "readyReplicas"})) + "/" +
                  std::to_string(num(r.obj, {"spec", "replicas"})));
    }));
    c.push_back(col("Up-to-date", 0, i64({"status", "updatedReplicas"}), "integer"));
    c.push_back(col("Available", 0, i64({"status", "availableReplicas"}), "integer"));
    c.push_back(ageColumn());
    addWorkloadWide(c, {"spec", "template", "spec"});
  } else if (kind == "ReplicaSet") {
    c.push_back(col("Desired", 0, i64({"spec", "replicas"}), "integer"));
    c.push_back(col("Current", 0, i64({"status", "replicas"}), "integer"));
    c.push_back(col("Ready", 0, i64({"status", "readyReplicas"}), "integer"));
    c.push_back(ageColumn());
    addWorkloadWide(c, {"spec", "template", "spec"});
  } else if (kind == "StatefulSet") {
    c.push_back(col("Ready", 0, [](const Row& r) {
      return json(std::to_string(num(r.obj, {"status", "readyReplicas"})) + "/" +
                  std::to_string(num(r.obj, {"spec", "replicas"})));
    }));
    c.push_back(ageColumn());
    c.push_back(col("Containers", 1, [](const Row& r) {
      return json(containerField(at(r.obj, {"spec", "template", "spec"}), "name"));
    }));
    c.push_back(col("Images", 1, [](const Row& r) {
      return json(containerField(at(r.obj, {"spec", "template", "spec"}), "image"));
    }));
  } else if (kind == "DaemonSet") {
    c.push_back(col("Desired", 0, i64({"status", "desiredNumberScheduled"}), "integer"));
    c.push_back(col("Current", 0, i64({"status", "currentNumberScheduled"}), "integer"));
    c.push_back(col("Ready", 0, i64({"status", "numberReady"}), "integer"));
    c.push_back(col("Up-to-date", 0, i64({"status", "updatedNumberScheduled"}), "integer"));
    c.push_back(col("Available", 0, i64({"status", "numberAvailable"}), "integer"));
    c.push_back(col("Node Selector", 0, [](const Row& r) {
      return json(orNone(selectorString(at(r.obj, {"spec", "template", "spec", "nodeSelector"}))));
    }));
    c.push_back(ageColumn());
    addWorkloadWide(c, {"spec", "template", "spec"});
  } else if (kind == "Job") {
    c.push_back(col("Status", 0, [](const Row& r) {
      const json& conds = at(r.obj, {"status", "conditions"});
      std::string status = "Running";
      if (conds.is_array()) {
        for (const auto& cond : conds) {
          if (cond.value("status", "") != "True") continue;
          std::string t = cond.value("type", "");
          if (t == "Complete")
            status = "Complete";
          else if (t == "Failed")
            status = "Failed";
          else if (t == "Suspended")
            status = "Suspended";
          else if (t == "FailureTarget")
            status = "FailureTarget";
          else if (t == "SuccessCriteriaMet")
            status = "SuccessCriteriaMet";
        }
      }
      if (!str(r.obj, {"metadata", "deletionTimestamp"}).empty()) status = "Terminating";
      return json(status);
    }));
    c.push_back(col("Completions", 0, [](const Row& r) {
      const json& comp = at(r.obj, {"spec", "completions"});
      std::string want = comp.is_number_integer() ? std::to_string(comp.get<int64_t>()) : "1";
      if (comp.is_null() && num(r.obj, {"spec", "parallelism"}) > 1) {
        want = std::to_string(num(r.obj, {"spec", "parallelism"}));
        return json(std::to_string(num(r.obj, {"status", "succeeded"})) + "/1 of " + want);
      }
      return json(std::to_string(num(r.obj, {"status", "succeeded"})) + "/" + want);
    }));
    c.push_back(col("Duration", 0, [](const Row& r) {
      std::string start = str(r.obj, {"status", "startTime"});
      if (start.empty()) return json("");
      std::string end = str(r.obj, {"status", "completionTime"});
      auto t0 = parseTime(start);
      auto t1 = end.empty() ? r.now : parseTime(end);
      return json(humanDuration(std::chrono::duration_cast<std::chrono::seconds>(t1 - t0)));
    }));
    c.push_back(ageColumn());
    addWorkloadWide(c, {"spec", "template", "spec"});
  } else if (kind == "CronJob") {
    c.push_back(col("Schedule", 0, [](const Row& r) {
      return json(str(r.obj, {"spec", "schedule"}));
    }));
    c.push_back(col("Timezone", 0, [](const Row& r) {
      return json(orNone(str(r.obj, {"spec", "timeZone"})));
    }));
    c.push_back(col("Suspend", 0, [](const Row& r) {
      return json(at(r.obj, {"spec", "suspend"}).is_boolean() &&
                          at(r.obj, {"spec", "suspend"}).get<bool>()
                      ? "True"
                      : "False");
    }));
    c.push_back(col(
        "Active", 0,
        [](const Row& r) {
          const json& a = at(r.obj, {"status", "active"});
          return json(static_cast<int64_t>(a.is_array() ? a.size() : 0));
        },
        "integer"));
    c.push_back(col("Last Schedule", 0, [](const Row& r) {
      std::string t = str(r.obj, {"status", "lastScheduleTime"});
      return json(t.empty() ? "<none>" : since(t, r.now));
    }));
    c.push_back(ageColumn());
    addWorkloadWide(c, {"spec", "jobTemplate", "spec", "template", "spec"});
  } else if (kind == "Node") {
    c.push_back(col("Status", 0, [](const Row& r) {
      std::string status = "Unknown";
      const json& conds = at(r.obj, {"status", "conditions"});
      if (conds.is_array()) {
        for (const auto& cond : conds) {
          if (cond.value("type", "") == "Ready") {
            status = cond.value("status", "") == "True" ? "Ready" : "NotReady";
          }
        }
      }
      if (at(r.obj, {"spec", "unschedulable"}).is_boolean() &&
          at(r.obj, {"spec", "unschedulable"}).get<bool>()) {
        status += ",SchedulingDisabled";
      }
      return json(status);
    }));
    c.push_back(col("Roles", 0, [](const Row& r) {
      std::vector<std::string> roles;
      const json& labels = at(r.obj, {"metadata", "labels"});
      if (labels.is_object()) {
        for (auto it = labels.begin(); it != labels.end(); ++it) {
          const std::string& k = it.key();
          const std::string prefix = "node-role.kubernetes.io/";
          if (k.rfind(prefix, 0) == 0 && k.size() > prefix.size())
            roles.push_back(k.substr(prefix.size()));
          else if (k == "kubernetes.io/role" && it.value().is_string())
            roles.push_back(it.value().get<std::string>());
        }
      }
      return json(orNone(join(roles)));
    }));
    c.push_back(ageColumn());
    c.push_back(col("Version", 0, [](const Row& r) {
      return json(str(r.obj, {"status", "nodeInfo", "kubeletVersion"}));
    }));
    auto address = [](const char* type) {
      return [type](const Row& r) {
        const json& addrs = at(r.obj, {"status", "addresses"});
        if (addrs.is_array()) {
          for (const auto& a : addrs) {
            if (a.value("type", "") == type) return json(a.value("address", ""));
          }
        }
        return json("<none>");
      };
    };
    c.push_back(col("Internal-IP", 1, address("InternalIP")));
    c.push_back(col("External-IP", 1, address("ExternalIP")));
    c.push_back(col("OS-Image", 1, [](const Row& r) {
      return json(str(r.obj, {"status", "nodeInfo", "osImage"}));
    }));
    c.push_back(col("Kernel-Version", 1, [](const Row& r) {
      return json(str(r.obj, {"status", "nodeInfo", "kernelVersion"}));
    }));
    c.push_back(col("Container-Runtime", 1, [](const Row& r) {
      return json(str(r.obj, {"status", "nodeInfo", "containerRuntimeVersion"}));
    }));
  } else if (kind == "Event") {
    c.clear();
    c.push_back(col("Last Seen", 0, [](const Row& r) {
      std::string t = str(r.obj, {"lastTimestamp"});
      if (t.empty()) t = str(r.obj, {"eventTime"});
      if (t.empty()) t = str(r.obj, {"metadata", "creationTimestamp"});
      return json(since(t, r.now));
    }));
    c.push_back(col("Type", 0, [](const Row& r) { return json(str(r.obj, {"type"})); }));
    c.push_back(col("Reason", 0, [](const Row& r) { return json(str(r.obj, {"reason"})); }));
    c.push_back(col("Object", 0, [](const Row& r) {
      std::string kind = str(r.obj, {"involvedObject", "kind"});
      for (char& ch : kind) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return json(kind + "/" + str(r.obj, {"involvedObject", "name"}));
    }));
    c.push_back(col("Message", 0, [](const Row& r) { return json(str(r.obj, {"message"})); }));
    c.push_back(col("Subobject", 1, [](const Row& r) {
      return json(str(r.obj, {"involvedObject", "fieldPath"}));
    }));
    c.push_back(col("Source", 1, [](const Row& r) {
      return json(str(r.obj, {"source", "component"}));
    }));
    c.push_back(col("First Seen", 1, [](const Row& r) {
      return json(since(str(r.obj, {"firstTimestamp"}), r.now));
    }));
    c.push_back(col(
        "Count", 1, [](const Row& r) { return json(num(r.obj, {"count"})); }, "integer"));
    c.push_back(nameColumn());
    return c;
  } else if (kind == "Namespace") {
    c.push_back(col("Status", 0, [](const Row& r) {
      return json(str(r.obj, {"status", "phase"}));
    }));
    c.push_back(ageColumn());
  } else if (kind == "ConfigMap") {
    c.push_back(col(
        "Data", 0,
        [](const Row& r) {
          return json(static_cast<int64_t>(count(r.obj, "data") + count(r.obj, "binaryData")));
        },
        "integer"));
    c.push_back(ageColumn());
  } else if (kind == "Secret") {
    c.push_back(col("Type", 0, [](const Row& r) { return json(str(r.obj, {"type"})); }));
    c.push_back(col(
        "Data", 0, [](const Row& r) { return json(static_cast<int64_t>(count(r.obj, "data"))); },
        "integer"));
    c.push_back(ageColumn());
  } else if (kind == "ServiceAccount") {
    c.push_back(col(
        "Secrets", 0,
        [](const Row& r) {
          const json& s = at(r.obj, {"secrets"});
          return json(static_cast<int64_t>(s.is_array() ? s.size() : 0));
        },
        "integer"));
    c.push_back(ageColumn());
  } else if (kind == "Endpoints") {
    c.push_back(col("Endpoints", 0, [](const Row& r) {
      std::vector<std::string> eps;
      const json& subsets = at(r.obj, {"subsets"});
      if (subsets.is_array()) {
        for (const auto& s : subsets) {
          for (const auto& a : s.value("addresses", json::array())) {
            const json& ports = s.value("ports", json::array());
            if (ports.empty()) eps.push_back(a.value("ip", ""));
            for (const auto& p : ports)
              eps.push_back(a.value("ip", "") + ":" + std::to_string(p.value("port", 0)));
          }
        }
      }
      if (eps.size() > 3)
        return json(join({eps[0], eps[1], eps[2]}) + " + " + std::to_string(eps.size() - 3) +
                    " more...");
      return json(orNone(join(eps)));
    }));
    c.push_back(ageColumn());
  } else if (kind == "StorageClass") {
    c[0].cell = [](const Row& r) {
      std::string name = str(r.obj, {"metadata", "name"});
      if (str(r.obj, {"metadata", "annotations", "storageclass.kubernetes.io/is-default-class"}) ==
          "true") {
        name += " (default)";
      }
      return json(name);
    };
    c.push_back(
        col("Provisioner", 0, [](const Row& r) { return json(str(r.obj, {"provisioner"})); }));
    c.push_back(col("ReclaimPolicy", 0, [](const Row& r) {
      return json(str(r.obj, {"reclaimPolicy"}).empty() ? "Delete" : str(r.obj, {"reclaimPolicy"}));
    }));
    c.push_back(col("VolumeBindingMode", 0, [](const Row& r) {
      return json(str(r.obj, {"volumeBindingMode"}).empty() ? "Immediate"
                                                            : str(r.obj, {"volumeBindingMode"}));
    }));
    c.push_back(col("AllowVolumeExpansion", 0, [](const Row& r) {
      return json(at(r.obj, {"allowVolumeExpansion"}).is_boolean() &&
                          at(r.obj, {"allowVolumeExpansion"}).get<bool>()
                      ? "true"
                      : "false");
    }));
    c.push_back(ageColumn());
  } else if (kind == "PersistentVolumeClaim") {
    c.push_back(col("Status", 0, [](const Row& r) {
      return json(str(r.obj, {"status", "phase"}));
    }));
    c.push_back(col("Volume", 0, [](const Row& r) {
      return json(str(r.obj, {"spec", "volumeName"}));
    }));
    c.push_back(col("Capacity", 0, [](const Row& r) {
      return json(str(r.obj, {"status", "capacity", "storage"}));
    }));
    c.push_back(col("Access Modes", 0, [](const Row& r) {
      return json(accessModes(at(r.obj, {"status", "accessModes"})));
    }));
    c.push_back(col("StorageClass", 0, [](const Row& r) {
      return json(orNone(str(r.obj, {"spec", "storageClassName"})));
    }));
    c.push_back(col("VolumeAttributesClass", 0, [](const Row& r) {
      return json(orNone(str(r.obj, {"spec", "volumeAttributesClassName"})));
    }));
    c.push_back(ageColumn());
    c.push_back(col("VolumeMode", 1, [](const Row& r) {
      return json(str(r.obj, {"spec", "volumeMode"}).empty() ? "Filesystem"
                                                             : str(r.obj, {"spec", "volumeMode"}));
    }));
  } else if (kind == "Ingress") {
    c.push_back(col("Class", 0, [](const Row& r) {
      return json(orNone(str(r.obj, {"spec", "ingressClassName"})));
    }));
    c.push_back(col("Hosts", 0, [](const Row& r) {
      std::vector<std::string> hosts;
      const json& rules = at(r.obj, {"spec", "rules"});
      if (rules.is_array()) {
        for (const auto& rule : rules) hosts.push_back(rule.value("host", "*"));
      }
      return json(hosts.empty() ? "*" : join(hosts));
    }));
    c.push_back(col("Address", 0, [](const Row& r) {
      std::vector<std::string> out;
      const json& ing = at(r.obj, {"status", "loadBalancer", "ingress"});
      if (ing.is_array()) {
        for (const auto& i : ing)
          out.push_back(!i.value("ip", "").empty() ? i.value("ip", "") : i.value("hostname", ""));
      }
      return json(join(out));
    }));
    c.push_back(col("Ports", 0, [](const Row& r) {
      return json(at(r.obj, {"spec", "tls"}).is_array() && !at(r.obj, {"spec", "tls"}).empty()
                      ? "80, 443"
                      : "80");
    }));
    c.push_back(ageColumn());
  } else if (kind == "IngressClass") {
    c.push_back(col("Controller", 0, [](const Row& r) {
      return json(str(r.obj, {"spec", "controller"}));
    }));
    c.push_back(col("Parameters", 0, [](const Row& r) {
      return json(orNone(str(r.obj, {"spec", "parameters", "name"})));
    }));
    c.push_back(ageColumn());
  } else if (kind == "Lease") {
    c.push_back(col("Holder", 0, [](const Row& r) {
      return json(str(r.obj, {"spec", "holderIdentity"}));
    }));
    c.push_back(ageColumn());
  } else if (kind == "PodDisruptionBudget") {
    auto intOrString = [](const json& v) -> json {
      if (v.is_number_integer()) return json(std::to_string(v.get<int64_t>()));
      if (v.is_string()) return v;
      return json("N/A");
    };
    c.push_back(col("Min Available", 0, [intOrString](const Row& r) {
      return intOrString(at(r.obj, {"spec", "minAvailable"}));
    }));
    c.push_back(col("Max Unavailable", 0, [intOrString](const Row& r) {
      return intOrString(at(r.obj, {"spec", "maxUnavailable"}));
    }));
    c.push_back(col(
        "Allowed Disruptions", 0,
        [](const Row& r) {
          const json& v = at(r.obj, {"status", "disruptionsAllowed"});
          return json(v.is_number_integer() ? v.get<int64_t>() : 0);
        },
        "integer"));
    c.push_back(ageColumn());
  } else if (kind == "NetworkPolicy") {
    c.push_back(col("Pod-Selector", 0, [](const Row& r) {
      std::string s = selectorString(at(r.obj, {"spec", "podSelector"}));
      return json(s.empty() ? "<none>" : s);
    }));
    c.push_back(ageColumn());
  } else if (kind == "ResourceQuota") {
    c.push_back(ageColumn());
    c.push_back(col("Request", 0, [](const Row& r) { return json(quotaUsage(r.obj, false)); }));
    c.push_back(col("Limit", 0, [](const Row& r) { return json(quotaUsage(r.obj, true)); }));
  } else if (kind == "LimitRange") {
    c.push_back(col(
        "Created At", 0,
        [](const Row& r) {
          return json(str(r.obj, {"metadata", "creationTimestamp"}));
        },
        "date"));
  } else if (kind == "PersistentVolume") {
    c.push_back(col("Capacity", 0, [](const Row& r) {
      return json(str(r.obj, {"spec", "capacity", "storage"}));
    }));
    c.push_back(col("Access Modes", 0, [](const Row& r) {
      return json(accessModes(at(r.obj, {"spec", "accessModes"})));
    }));
    c.push_back(col("Reclaim Policy", 0, [](const Row& r) {
      return json(str(r.obj, {"spec", "persistentVolumeReclaimPolicy"}));
    }));
    c.push_back(col("Status", 0, [](const Row& r) {
      return json(str(r.obj, {"status", "phase"}));
    }));
    c.push_back(col("Claim", 0, [](const Row& r) {
      const json& ref = at(r.obj, {"spec", "claimRef"});
      if (!ref.is_object()) return json("");
      return json(ref.value("namespace", "") + "/" + ref.value("name", ""));
    }));
    c.push_back(col("StorageClass", 0, [](const Row& r) {
      return json(str(r.obj, {"spec", "storageClassName"}));
    }));
    c.push_back(col("VolumeAttributesClass", 0, [](const Row& r) {
      return json(orUnset(str(r.obj, {"spec", "volumeAttributesClassName"})));
    }));
    c.push_back(col("Reason", 0, [](const Row& r) {
      return json(str(r.obj, {"status", "reason"}));
    }));
    c.push_back(ageColumn());
    c.push_back(col("VolumeMode", 1, [](const Row& r) {
      return json(str(r.obj, {"spec", "volumeMode"}).empty() ? "Filesystem"
                                                             : str(r.obj, {"spec", "volumeMode"}));
    }));
  } else if (kind == "PodTemplate") {
    auto containers = [](const Row& r, const char* what) {
      std::vector<std::string> out;
      const json& cs = at(r.obj, {"template", "spec", "containers"});
      if (cs.is_array()) {
        for (const auto& ct : cs) out.push_back(ct.value(what, ""));
      }
      return json(join(out));
    };
    c.push_back(col("Containers", 0, [=](const Row& r) { return containers(r, "name"); }));
    c.push_back(col("Images", 0, [=](const Row& r) { return containers(r, "image"); }));
    c.push_back(col("Pod Labels", 0, [](const Row& r) {
      std::vector<std::string> out;
      const json& l = at(r.obj, {"template", "metadata", "labels"});
      if (l.is_object()) {
        for (const auto& [k, v] : l.items()) {
          out.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
        }
      }
      return json(join(out));
    }));
  } else if (kind == "EndpointSlice") {
    c.push_back(
        col("AddressType", 0, [](const Row& r) { return json(str(r.obj, {"addressType"})); }));
    c.push_back(col("Ports", 0, [](const Row& r) {
      std::vector<std::string> out;
      const json& ps = at(r.obj, {"ports"});
      if (ps.is_array()) {
        for (const auto& p : ps) {
          if (p.contains("port") && p["port"].is_number_integer()) {
            out.push_back(std::to_string(p["port"].get<int64_t>()));
          }
        }
      }
      if (out.empty()) return json("<unset>");
      return json(truncatedList(out, 3));
    }));
    c.push_back(col("Endpoints", 0, [](const Row& r) {
      std::vector<std::string> out;
      const json& es = at(r.obj, {"endpoints"});
      if (es.is_array()) {
        for (const auto& e : es) {
          const json& addrs = e.value("addresses", json::array());
          for (const auto& a : addrs) {
            if (a.is_string()) out.push_back(a.get<std::string>());
          }
        }
      }
      if (out.empty()) return json("<unset>");
      return json(truncatedList(out, 3));
    }));
    c.push_back(ageColumn());
  } else if (kind == "ControllerRevision") {
    c.push_back(col("Controller", 0, [](const Row& r) {
      const json& owners = at(r.obj, {"metadata", "ownerReferences"});
      if (owners.is_array()) {
        for (const auto& o : owners) {
          if (o.value("controller", false)) {
            std::string kind = o.value("kind", "");
            for (char& ch : kind)
              ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            std::string group = o.value("apiVersion", "");
            group =
                group.find('/') == std::string::npos ? "" : "." + group.substr(0, group.find('/'));
            return json(kind + group + "/" + o.value("name", ""));
          }
        }
      }
      return json("<none>");
    }));
    c.push_back(col(
        "Revision", 0, [](const Row& r) { return json(num(r.obj, {"revision"})); }, "integer"));
    c.push_back(ageColumn());
  } else {
    c.push_back(ageColumn());
  }
  return c;
}

}  // namespace

std::string humanDuration(std::chrono::seconds d) {
  long long s = d.count();
  if (s < -1) return "<invalid>";
  if (s < 0) return "0s";
  if (s < 60 * 2) return std::to_string(s) + "s";
  long long minutes = s / 60;
  if (minutes < 10) {
    long long rs = s % 60;
    return rs == 0 ? std::to_string(minutes) + "m"
                   : std::to_string(minutes) + "m" + std::to_string(rs) + "s";
  }
  if (minutes < 60 * 3) return std::to_string(minutes) + "m";
  long long hours = s / 3600;
  if (hours < 8) {
    long long m = minutes % 60;
    return m == 0 ? std::to_string(hours) + "h"
                  : std::to_string(hours) + "h" + std::to_string(m) + "m";
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    long long h = hours % 24;
    return h == 0 ? std::to_string(hours / 24) + "d"
                  : std::to_string(hours / 24) + "d" + std::to_string(h) + "h";
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    long long dy = (hours / 24) % 365;
    return dy == 0 ? std::to_string(hours / 24 / 365) + "y"
                   : std::to_string(hours / 24 / 365) + "y" + std::to_string(dy) + "d";
  }
  return std::to_string(hours / 24 / 365) + "y";
}

json toTable(const api::ResourceInfo& info, const json& items, const std::string& includeObject,
             TimePoint now) {
  auto columns = columnsFor(info.kind);
  json defs = json::array();
  for (const auto& c : columns) {
    defs.push_back({{"name", c.name},
                    {"type", c.type},
                    {"format", c.format},
                    {"description", c.description},
                    {"priority", c.priority}});
  }
  json rows = json::array();
  for (const auto& obj : items) {
    std::string age = since(str(obj, {"metadata", "creationTimestamp"}), now);
    Row row{obj, age, now};
    json cells = json::array();
    for (const auto& c : columns) cells.push_back(c.cell(row));
    json r = {{"cells", cells}};
    if (includeObject == "Object") {
      r["object"] = obj;
    } else if (includeObject != "None") {
      r["object"] = {{"kind", "PartialObjectMetadata"},
                     {"apiVersion", "meta.k8s.io/v1"},
                     {"metadata", obj.value("metadata", json::object())}};
    }
    rows.push_back(r);
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", json::object()},
          {"columnDefinitions", defs},
          {"rows", rows}};
}

}  // namespace kiln::apiserver
