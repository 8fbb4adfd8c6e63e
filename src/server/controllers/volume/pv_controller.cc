// PersistentVolumeController implementation (see pv_controller.h).
#include "server/controllers/volume/pv_controller.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "server/scheduler/quantity.h"

namespace kiln::controllers {

using nlohmann::json;

namespace {

constexpr const char* kSelectedNode = "volume.kubernetes.io/selected-node";
constexpr const char* kStorageProvisioner = "volume.kubernetes.io/storage-provisioner";
constexpr const char* kBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner";
constexpr const char* kProvisionedBy = "pv.kubernetes.io/provisioned-by";

int64_t requestOf(const json& claim) {
  return scheduler::quantityValue(
      member(member(member(member(claim, "spec"), "resources"), "requests"), "storage"));
}

int64_t capacityOf(const json& volume) {
  return scheduler::quantityValue(member(member(member(volume, "spec"), "capacity"), "storage"));
}

std::set<std::string> accessModes(const json& o) {
  std::set<std::string> out;
  const json& m = member(member(o, "spec"), "accessModes");
  if (m.is_array()) {
    for (const auto& x : m) {
      if (x.is_string()) out.insert(x.get<std::string>());
    }
  }
  return out;
}

std::string classOf(const json& o) { return str(member(o, "spec"), "storageClassName"); }

}  // namespace

PersistentVolumeController::PersistentVolumeController(
    client::ApiClient& api, client::Informer& claims, client::Informer& volumes,
    client::Informer& classes, std::string storageRoot, client::Clock& clock)
    : api_(api),
      claimResource_(*api::findResource("", "v1", "persistentvolumeclaims")),
      volumeResource_(*api::findResource("", "v1", "persistentvolumes")),
      classResource_(*api::findResource("storage.k8s.io", "v1", "storageclasses")),
      claims_(claims),
      volumes_(volumes),
      classes_(classes),
      storageRoot_(std::move(storageRoot)),
      events_(api, "persistentvolume-controller", clock),
      loop_(
          "persistentvolume", [this](const std::string& k) { return sync(k); }, clock) {
  auto claim = [this](const client::Object& o) {
    loop_.queue().add("claim/" + client::objectKey(*o));
  };
  claims_.addHandlers({claim,
                       [claim](const client::Object&, const client::Object& cur) { claim(cur); },
                       [this](const client::Object& o) {
                         // Its volume may now be released.
                         std::string v = str(member(*o, "spec"), "volumeName");
                         if (!v.empty()) loop_.queue().add("volume/" + v);
                       }});
  auto volume = [this](const client::Object& o) { loop_.queue().add("volume/" + nameOf(*o)); };
  volumes_.addHandlers(
      {volume, [volume](const client::Object&, const client::Object& cur) { volume(cur); },
       [this](const client::Object& o) {
         const json& ref = member(member(*o, "spec"), "claimRef");
         if (ref.is_object()) {
           loop_.queue().add("claim/" + str(ref, "namespace") + "/" + str(ref, "name"));
         }
       }});
}

Status PersistentVolumeController::ensureDefaultClass() {
  auto existing = api_.get(classResource_, "", "local-path");
  if (existing.ok()) return Status::Ok();
  if (existing.status().code() != Code::kNotFound) return existing.status();
  json sc = {{"apiVersion", "storage.k8s.io/v1"},
             {"kind", "StorageClass"},
             {"metadata",
              {{"name", "local-path"},
               {"annotations", {{"storageclass.kubernetes.io/is-default-class", "true"}}}}},
             {"provisioner", kLocalPathProvisioner},
             {"reclaimPolicy", "Delete"},
             {"volumeBindingMode", "WaitForFirstConsumer"}};
  auto r = api_.create(classResource_, "", sc);
  return r.ok() || r.status().code() == Code::kAlreadyExists ? Status::Ok() : r.status();
}

Status PersistentVolumeController::sync(const std::string& key) {
  if (key.rfind("claim/", 0) == 0) {
    auto c = claims_.get(key.substr(6));
    return c ? syncClaim(*c) : Status::Ok();
  }
  if (key.rfind("volume/", 0) == 0) {
    auto v = volumes_.get(key.substr(7));
    return v ? syncVolume(*v) : Status::Ok();
  }
  return Status::Ok();
}

Status PersistentVolumeController::syncClaim(const json& claim) {
  if (isDeleting(claim)) return Status::Ok();
  const std::string volumeName = str(member(claim, "spec"), "volumeName");
  if (!volumeName.empty()) {
    auto v = volumes_.get(volumeName);
    if (!v) return Status::Ok();  // Lost, or the cache is behind
    const json& ref = member(member(*v, "spec"), "claimRef");
    if (str(ref, "uid") == uidOf(claim) && str(member(claim, "status"), "phase") != "Bound") {
      return bind(claim, *v);
    }
    return Status::Ok();
  }
  // Unbound: a matching Available volume, else provisioning.
  const std::string cls = classOf(claim);
  const int64_t want = requestOf(claim);
  const auto modes = accessModes(claim);
  const std::string node = annotation(claim, kSelectedNode);
  client::Object sc = cls.empty() ? nullptr : classes_.get(cls);
  const bool waitForConsumer = sc && str(*sc, "volumeBindingMode") == "WaitForFirstConsumer";
  if (waitForConsumer && node.empty()) {
    if (str(member(claim, "status"), "phase") == "Pending" &&
        annotation(claim, "kiln.io/waiting-for-consumer").empty()) {
      events_.event(claim, "Normal", "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding");
      json patch = {{"metadata", {{"annotations", {{"kiln.io/waiting-for-consumer", "true"}}}}}};
      (void)api_.patch(claimResource_, namespaceOf(claim), nameOf(claim), patch);
    }
    return Status::Ok();
  }
  client::Object best;
  for (const auto& v : volumes_.list()) {
    const json& pv = *v;
    if (isDeleting(pv) || member(member(pv, "spec"), "claimRef").is_object()) continue;
    if (classOf(pv) != cls || capacityOf(pv) < want) continue;
    auto have = accessModes(pv);
    bool ok = true;
    for (const auto& m : modes) ok = ok && have.count(m);
    if (!ok) continue;
    if (!best || capacityOf(pv) < capacityOf(*best)) best = v;  // the smallest that fits
  }
  if (best) {
    json pv = *best;
    pv["spec"]["claimRef"] = {{"kind", "PersistentVolumeClaim"},
                              {"namespace", namespaceOf(claim)},
                              {"name", nameOf(claim)},
                              {"uid", uidOf(claim)},
                              {"apiVersion", "v1"}};
    auto r = api_.update(volumeResource_, "", pv);
    if (!r.ok()) return r.status();
    return bind(claim, *r);
  }
  if (!sc || str(*sc, "provisioner").empty()) {
    return Status::Ok();  // nothing can satisfy it yet: stays Pending
  }
  const std::string provisioner = str(*sc, "provisioner");
  json current = claim;
  if (annotation(claim, kStorageProvisioner) != provisioner) {
    json patch = {
        {"metadata",
         {{"annotations",
           {{kStorageProvisioner, provisioner}, {kBetaStorageProvisioner, provisioner}}}}}};
    auto r = api_.patch(claimResource_, namespaceOf(claim), nameOf(claim), patch);
    if (!r.ok()) return r.status();
    current = std::move(*r);
  }
  if (provisioner != kLocalPathProvisioner) {
    return Status::Ok();  // an external provisioner's job
  }
  if (node.empty()) {
    events_.event(claim, "Warning", "ProvisioningFailed",
                  "the local-path provisioner needs a node: use volumeBindingMode "
                  "WaitForFirstConsumer");
    return Status::Ok();
  }
  return provision(current, *sc, node);
}

Status PersistentVolumeController::provision(const json& claim, const json& sc,
                                             const std::string& node) {
  const std::string name = "pvc-" + uidOf(claim);
  if (volumes_.get(name)) return Status::Ok();
  const std::string path =
      (storageRoot_.empty() ? std::string("/var/lib/kiln/storage") : storageRoot_) + "/" + name +
      "_" + namespaceOf(claim) + "_" + nameOf(claim);
  json modes = member(member(claim, "spec"), "accessModes");
  if (!modes.is_array() || modes.empty()) modes = json::array({"ReadWriteOnce"});
  json storage = member(member(member(member(claim, "spec"), "resources"), "requests"), "storage");
  if (storage.is_null()) storage = "0";
  std::string reclaim = str(sc, "reclaimPolicy").empty() ? "Delete" : str(sc, "reclaimPolicy");
  json pv = {
      {"apiVersion", "v1"},
      {"kind", "PersistentVolume"},
      {"metadata",
       {{"name", name},
        {"annotations",
         {{kProvisionedBy, kLocalPathProvisioner}, {"local.path.provisioner/selected-node", node}}},
        {"finalizers", json::array({"kubernetes.io/pv-protection"})}}},
      {"spec",
       {{"capacity", {{"storage", storage}}},
        {"accessModes", modes},
        {"persistentVolumeReclaimPolicy", reclaim},
        {"storageClassName", nameOf(sc)},
        {"volumeMode", "Filesystem"},
        {"hostPath", {{"path", path}, {"type", "DirectoryOrCreate"}}},
        {"nodeAffinity",
         {{"required",
           {{"nodeSelectorTerms",
             json::array(
                 {{{"matchExpressions", json::array({{{"key", "kubernetes.io/hostname"},
                                                      {"operator", "In"},
                                                      {"values", json::array({node})}}})}}})}}}}},
        {"claimRef",
         {{"kind", "PersistentVolumeClaim"},
          {"namespace", namespaceOf(claim)},
          {"name", nameOf(claim)},
          {"uid", uidOf(claim)},
          {"apiVersion", "v1"}}}}}};
  events_.event(claim, "Normal", "Provisioning",
                std::string("External provisioner is provisioning volume for claim \"") +
                    namespaceOf(claim) + "/" + nameOf(claim) + "\"");
  auto r = api_.create(volumeResource_, "", pv);
  if (!r.ok() && r.status().code() != Code::kAlreadyExists) {
    events_.event(claim, "Warning", "ProvisioningFailed",
                  "failed to provision volume with StorageClass \"" + nameOf(sc) +
                      "\": " + r.status().message());
    return r.status();
  }
  events_.event(claim, "Normal", "ProvisioningSucceeded",
                "Successfully provisioned volume " + name);
  return r.ok() ? bind(claim, *r) : Status::Ok();
}

// Binds `claim` to `volume` (whose claimRef already names it): claim spec and both statuses.
Status PersistentVolumeController::bind(const json& claim, json volume) {
  if (str(member(volume, "status"), "phase") != "Bound") {
    volume["status"] = {{"phase", "Bound"}};
    auto r = api_.update(volumeResource_, "", volume, "status");
    if (!r.ok()) return r.status();
  }
  json c = claim;
  if (str(member(c, "spec"), "volumeName") != nameOf(volume)) {
    c["spec"]["volumeName"] = nameOf(volume);
    json& ann = c["metadata"]["annotations"];
    if (!ann.is_object()) ann = json::object();
    ann["pv.kubernetes.io/bind-completed"] = "yes";
    ann["pv.kubernetes.io/bound-by-controller"] = "yes";
    ann.erase("kiln.io/waiting-for-consumer");
    auto r = api_.update(claimResource_, namespaceOf(c), c);
    if (!r.ok() && r.status().code() == Code::kConflict) {  // the cache was behind: once more
      auto live = api_.get(claimResource_, namespaceOf(c), nameOf(c));
      if (!live.ok()) return live.status();
      if (uidOf(*live) != uidOf(claim)) return Status::Ok();
      (*live)["spec"]["volumeName"] = nameOf(volume);
      (*live)["metadata"]["annotations"] = ann;
      r = api_.update(claimResource_, namespaceOf(c), *live);
    }
    if (!r.ok()) return r.status();
    c = std::move(*r);
  }
  json status = {{"phase", "Bound"},
                 {"accessModes", member(member(volume, "spec"), "accessModes")},
                 {"capacity", member(member(volume, "spec"), "capacity")}};
  if (member(c, "status") != status) {
    c["status"] = status;
    auto r = api_.update(claimResource_, namespaceOf(c), c, "status");
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

Status PersistentVolumeController::syncVolume(const json& volume) {
  const json& ref = member(member(volume, "spec"), "claimRef");
  const std::string phase = str(member(volume, "status"), "phase");
  if (!ref.is_object()) {
    if (phase == "Available" || isDeleting(volume)) return Status::Ok();
    json v = volume;
    v["status"] = {{"phase", "Available"}};
    auto r = api_.update(volumeResource_, "", v, "status");
    return r.ok() ? Status::Ok() : r.status();
  }
  auto claim = claims_.get(str(ref, "namespace") + "/" + str(ref, "name"));
  if (claim && uidOf(*claim) == str(ref, "uid")) {
    if (str(member(*claim, "spec"), "volumeName").empty() ||
        str(member(*claim, "status"), "phase") != "Bound" || phase != "Bound") {
      return bind(*claim, volume);
    }
    return Status::Ok();
  }
  if (claim) return Status::Ok();  // a claim of that name but another uid: not ours
  // The claim is gone: confirm with the API before releasing (the cache may be behind).
  auto live = api_.get(claimResource_, str(ref, "namespace"), str(ref, "name"));
  if (live.ok() && uidOf(*live) == str(ref, "uid")) return Status::Ok();
  const std::string policy = str(member(volume, "spec"), "persistentVolumeReclaimPolicy");
  if (policy == "Delete") {
    if (annotation(volume, kProvisionedBy) == kLocalPathProvisioner && !storageRoot_.empty()) {
      const std::string path = str(member(member(volume, "spec"), "hostPath"), "path");
      namespace fs = std::filesystem;
      if (!path.empty() && path.rfind(storageRoot_ + "/pvc-", 0) == 0 &&
          path.find("/..") == std::string::npos) {
        std::error_code ec;
        fs::remove_all(path, ec);
      }
    }
    if (!isDeleting(volume)) {
      Status s = api_.remove(volumeResource_, "", nameOf(volume), json());
      if (!s.ok() && s.code() != Code::kNotFound) return s;
    }
    // The pv-protection finalizer: the volume is no longer in use once its claim is gone.
    auto cur = api_.get(volumeResource_, "", nameOf(volume));
    if (cur.ok() && isDeleting(*cur)) {
      json v = *cur;
      json fins = json::array();
      for (const auto& f : member(v["metadata"], "finalizers")) {
        if (f != "kubernetes.io/pv-protection") fins.push_back(f);
      }
      v["metadata"]["finalizers"] = fins;
      auto r = api_.update(volumeResource_, "", v);
      if (!r.ok() && r.status().code() != Code::kNotFound) return r.status();
    }
    return Status::Ok();
  }
  if (phase != "Released") {
    json v = volume;
    v["status"] = {{"phase", "Released"}};
    auto r = api_.update(volumeResource_, "", v, "status");
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

}  // namespace kiln::controllers
