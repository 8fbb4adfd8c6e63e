// Pod volumes in a temporary directory: the AtomicWriter layout and its update swap, modes, items,
// optional sources, projected service account tokens and their refresh, hostPath types, PVCs,
// subPath handling, and a real tmpfs emptyDir (unit tests run as root; skipped otherwise).
#include "agent/kubelet/volumes.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

namespace kiln::kubelet {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string readAll(const std::string& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
unsigned modeOf(const std::string& p) {
  struct stat st;
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}
std::string linkOf(const std::string& p) {
  std::error_code ec;
  auto t = fs::read_symlink(p, ec);
  return ec ? "" : t.string();
}
bool mounted(const std::string& p) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + p + " ") != std::string::npos) return true;
  }
  return false;
}

class VolumesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-volumes-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root = tmpl;
    podsDir = root + "/agent/pods";
    configMaps["ns1/cfg"] = {{"data", {{"app.conf", "v1"}, {"other", "o"}}},
                             {"binaryData", {{"bin", "AAEC"}}}};
    secrets["ns1/sec"] = {{"data", {{"token", "c2VjcmV0"}}}};  // "secret"
    VolumeSources s;
    s.getConfigMap = [this](const std::string& ns, const std::string& n) -> StatusOr<json> {
      if (unreachable) return Status(Code::kUnavailable, "connection refused");
      auto it = configMaps.find(ns + "/" + n);
      if (it == configMaps.end()) return notFound("configmaps \"" + n + "\" not found");
      return it->second;
    };
    s.getSecret = [this](const std::string& ns, const std::string& n) -> StatusOr<json> {
      auto it = secrets.find(ns + "/" + n);
      if (it == secrets.end()) return notFound("secrets \"" + n + "\" not found");
      return it->second;
    };
    s.getPVC = [this](const std::string& ns, const std::string& n) -> StatusOr<json> {
      auto it = pvcs.find(ns + "/" + n);
      if (it == pvcs.end()) return notFound("not found");
      return it->second;
    };
    s.getPV = [this](const std::string& n) -> StatusOr<json> {
      auto it = pvs.find(n);
      if (it == pvs.end()) return notFound("not found");
      return it->second;
    };
    s.requestToken = [this](const std::string& ns, const std::string& sa,
                            const json& spec) -> StatusOr<json> {
      tokenRequests.push_back({{"ns", ns}, {"sa", sa}, {"spec", spec}});
      return json{{"token", "tok-" + std::to_string(tokenRequests.size())},
                  {"expirationTimestamp", "2099-01-01T00:00:00Z"}};
    };
    s.nodeAllocatable = [] { return json{{"cpu", "2"}, {"memory", "4Gi"}}; };
    vm = std::make_unique<VolumeManager>(podsDir, s);
  }
  void TearDown() override {
    // Whatever a test did, leave no mount behind and no files.
    if (vm) (void)vm->tearDown(uid);
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    std::vector<std::string> left;
    while (std::getline(in, line)) {
      if (line.find(root) != std::string::npos) left.push_back(line);
    }
    for (const auto& l : left) {
      std::istringstream ss(l);
      std::string a, b, c, d, mp;
      ss >> a >> b >> c >> d >> mp;
      ::umount2(mp.c_str(), MNT_DETACH);
    }
    EXPECT_TRUE(left.empty()) << "mounts left behind";
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  json pod(json volumes, json containers = json::array()) {
    return {
        {"metadata", {{"name", "p"}, {"namespace", "ns1"}, {"uid", uid}, {"labels", {{"a", "b"}}}}},
        {"spec",
         {{"volumes", volumes}, {"containers", containers}, {"serviceAccountName", "robot"}}}};
  }
  std::string dir(const std::string& plugin, const std::string& name) {
    return podsDir + "/" + uid + "/volumes/" + plugin + "/" + name;
  }

  std::string root, podsDir, uid = "uid-1";
  std::map<std::string, json> configMaps, secrets, pvcs, pvs;
  std::vector<json> tokenRequests;
  bool unreachable = false;  // getConfigMap fails as with the API server cut off
  std::unique_ptr<VolumeManager> vm;
};

TEST_F(VolumesTest, ConfigMapAtomicWriterLayoutAndUpdateSwap) {
  json p = pod({{{"name", "cfg"}, {"configMap", {{"name", "cfg"}}}}});
  ASSERT_TRUE(vm->setUp(p).ok());
  std::string d = dir("kubernetes.io~configmap", "cfg");
  EXPECT_EQ(vm->volumeDir(uid, "kubernetes.io~configmap", "cfg"), d);
  std::string ts1 = linkOf(d + "/..data");
  ASSERT_TRUE(ts1.starts_with("..")) << ts1;
  EXPECT_NE(ts1, "..data");
  EXPECT_EQ(modeOf(d + "/" + ts1), 0755u);
  EXPECT_EQ(linkOf(d + "/app.conf"), "..data/app.conf");
  EXPECT_EQ(readAll(d + "/app.conf"), "v1");
  EXPECT_EQ(readAll(d + "/bin"), std::string("\x00\x01\x02", 3));
  EXPECT_EQ(modeOf(d + "/" + ts1 + "/app.conf"), 0644u);

  // Unchanged: nothing rewritten.
  ASSERT_TRUE(vm->setUp(p).ok());
  EXPECT_EQ(linkOf(d + "/..data"), ts1);

  // Updated and a key removed: a new timestamp dir, the old one and the stale link gone.
  configMaps["ns1/cfg"] = {{"data", {{"app.conf", "v2"}}}};
  ASSERT_TRUE(vm->setUp(p).ok());
  std::string ts2 = linkOf(d + "/..data");
  EXPECT_NE(ts2, ts1);
  EXPECT_EQ(readAll(d + "/app.conf"), "v2");
  EXPECT_FALSE(fs::exists(d + "/" + ts1));
  EXPECT_FALSE(fs::is_symlink(d + "/other"));
  EXPECT_FALSE(fs::exists(d + "/..data_tmp"));
  // Only ..data, the timestamp dir and app.conf remain.
  int n = 0;
  for (auto& e : fs::directory_iterator(d)) (void)e, ++n;
  EXPECT_EQ(n, 3);

  // The CRI mount of a configMap volume is read-only.
  json c = {{"name", "c"}, {"volumeMounts", {{{"name", "cfg"}, {"mountPath", "/etc/cfg"}}}}};
  auto m = vm->mountsFor(p, c, {});
  ASSERT_TRUE(m.ok()) << m.status().toString();
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].containerPath, "/etc/cfg");
  EXPECT_EQ((*m)[0].hostPath, d);
  EXPECT_TRUE((*m)[0].readOnly);
}

TEST_F(VolumesTest, ItemsModesAndOptional) {
  json p = pod(
      {{{"name", "cfg"},
        {"configMap",
         {{"name", "cfg"},
          {"defaultMode", 0400},
          {"items",
           {{{"key", "app.conf"}, {"path", "conf/app.conf"}, {"mode", 0600}},
            {{"key", "other"}, {"path", "o.txt"}}}}}}},
       {{"name", "sec"}, {"secret", {{"secretName", "sec"}, {"defaultMode", 0440}}}},
       {{"name", "optcm"}, {"configMap", {{"name", "absent"}, {"optional", true}}}},
       {{"name", "optkey"},
        {"configMap",
         {{"name", "cfg"}, {"optional", true}, {"items", {{{"key", "zz"}, {"path", "zz"}}}}}}}});
  ASSERT_TRUE(vm->setUp(p).ok());
  std::string d = dir("kubernetes.io~configmap", "cfg");
  EXPECT_EQ(readAll(d + "/conf/app.conf"), "v1");
  EXPECT_EQ(linkOf(d + "/conf"), "..data/conf");
  EXPECT_EQ(modeOf(d + "/conf/app.conf"), 0600u);
  EXPECT_EQ(modeOf(d + "/o.txt"), 0400u);
  EXPECT_FALSE(fs::exists(d + "/app.conf"));
  std::string s = dir("kubernetes.io~secret", "sec");
  EXPECT_EQ(readAll(s + "/token"), "secret");
  EXPECT_EQ(modeOf(s + "/token"), 0440u);
  EXPECT_TRUE(fs::is_directory(dir("kubernetes.io~configmap", "optcm")));
  EXPECT_TRUE(fs::is_symlink(dir("kubernetes.io~configmap", "optcm") + "/..data"));
  EXPECT_FALSE(fs::exists(dir("kubernetes.io~configmap", "optkey") + "/zz"));
}

// A refresh that fails because the API server is unreachable keeps the content a volume was set
// up with: the pod's containers still start (issue #7).
TEST_F(VolumesTest, AnUnreachableApiKeepsAVolumeSetUpBefore) {
  json c = {{"name", "c"}, {"volumeMounts", {{{"name", "cfg"}, {"mountPath", "/etc/cfg"}}}}};
  json p = pod({{{"name", "cfg"}, {"configMap", {{"name", "cfg"}}}}}, json::array({c}));
  ASSERT_TRUE(vm->setUp(p).ok());
  const std::string d = dir("kubernetes.io~configmap", "cfg");
  unreachable = true;
  EXPECT_TRUE(vm->setUp(p).ok());
  EXPECT_EQ(readAll(d + "/app.conf"), "v1");
  auto m = vm->mountsFor(p, c, {});
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->size(), 1u);
  // A volume never set up is still an error, and so is any other failure.
  ASSERT_TRUE(vm->tearDown(uid).ok());
  EXPECT_EQ(vm->setUp(p).code(), Code::kUnavailable);
  unreachable = false;
  ASSERT_TRUE(vm->setUp(p).ok());
  configMaps.erase("ns1/cfg");
  EXPECT_EQ(vm->setUp(p).code(), Code::kNotFound);
}

TEST_F(VolumesTest, MissingSourcesAreReadableErrors) {
  json p = pod({{{"name", "a"}, {"configMap", {{"name", "gone"}}}},
                {{"name", "b"}, {"emptyDir", json::object()}}});
  Status s = vm->setUp(p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "MountVolume.SetUp failed for volume \"a\" : configmap \"gone\" not found");
  // The other volumes are still set up.
  EXPECT_TRUE(fs::is_directory(dir("kubernetes.io~empty-dir", "b")));

  p = pod({{{"name", "k"},
            {"configMap", {{"name", "cfg"}, {"items", {{{"key", "no"}, {"path", "x"}}}}}}}});
  s = vm->setUp(p);
  EXPECT_EQ(s.message(),
            "MountVolume.SetUp failed for volume \"k\" : configmap references non-existent config "
            "key: no");
  p = pod({{{"name", "s"}, {"secret", {{"secretName", "nope"}}}}});
  EXPECT_EQ(vm->setUp(p).message(),
            "MountVolume.SetUp failed for volume \"s\" : secret \"nope\" not found");
  p = pod({{{"name", "bad"},
            {"configMap", {{"name", "cfg"}, {"items", {{{"key", "other"}, {"path", "../x"}}}}}}}});
  EXPECT_EQ(
      vm->setUp(p).message(),
      "MountVolume.SetUp failed for volume \"bad\" : invalid path: must not contain '..': ../x");
  p = pod({{{"name", "m"}, {"configMap", {{"name", "cfg"}, {"defaultMode", 070000}}}}});
  EXPECT_FALSE(vm->setUp(p).ok());
  p = pod({{{"name", "n"}, {"nfs", {{"server", "x"}}}}});
  EXPECT_EQ(vm->setUp(p).code(), Code::kUnimplemented);
}

TEST_F(VolumesTest, ProjectedKubeApiAccessAndTokenRefresh) {
  configMaps["ns1/kube-root-ca.crt"] = {{"data", {{"ca.crt", "PEM"}}}};
  json vol = {
      {"name", "kube-api-access-abcde"},
      {"projected",
       {{"defaultMode", 0644},
        {"sources",
         {{{"serviceAccountToken", {{"expirationSeconds", 3607}, {"path", "token"}}}},
          {{"configMap",
            {{"name", "kube-root-ca.crt"}, {"items", {{{"key", "ca.crt"}, {"path", "ca.crt"}}}}}}},
          {{"downwardAPI",
            {{"items",
              {{{"path", "namespace"},
                {"fieldRef", {{"apiVersion", "v1"}, {"fieldPath", "metadata.namespace"}}}}}}}}},
          {{"secret", {{"name", "sec"}, {"items", {{{"key", "token"}, {"path", "s/t"}}}}}}}}}}}};
  json p = pod({vol});
  auto now = std::chrono::system_clock::now();
  vm->setClockForTest([&] { return now; });
  ASSERT_TRUE(vm->setUp(p).ok());
  std::string d = dir("kubernetes.io~projected", "kube-api-access-abcde");
  EXPECT_EQ(readAll(d + "/token"), "tok-1");
  EXPECT_EQ(readAll(d + "/ca.crt"), "PEM");
  EXPECT_EQ(readAll(d + "/namespace"), "ns1");
  EXPECT_EQ(readAll(d + "/s/t"), "secret");
  ASSERT_EQ(tokenRequests.size(), 1u);
  EXPECT_EQ(tokenRequests[0]["ns"], "ns1");
  EXPECT_EQ(tokenRequests[0]["sa"], "robot");
  EXPECT_EQ(tokenRequests[0]["spec"]["expirationSeconds"], 3607);
  EXPECT_EQ(tokenRequests[0]["spec"]["boundObjectRef"]["kind"], "Pod");
  EXPECT_EQ(tokenRequests[0]["spec"]["boundObjectRef"]["uid"], uid);
  EXPECT_FALSE(tokenRequests[0]["spec"].contains("audiences"));

  // Token lifetime here: until 2099 (the fake's expirationTimestamp); 1h later nothing changes.
  now += std::chrono::hours(1);
  ASSERT_TRUE(vm->setUp(p).ok());
  EXPECT_EQ(tokenRequests.size(), 1u);
  // After 24h a token is always refreshed.
  now += std::chrono::hours(24);
  ASSERT_TRUE(vm->setUp(p).ok());
  EXPECT_EQ(tokenRequests.size(), 2u);
  EXPECT_EQ(readAll(d + "/token"), "tok-2");
}

TEST_F(VolumesTest, TokenRefreshAtEightyPercent) {
  auto now = std::chrono::system_clock::now();
  vm->setClockForTest([&] { return now; });
  // The fake answers with no expirationTimestamp: the requested 1000s lifetime counts.
  VolumeSources s;
  int calls = 0;
  s.requestToken = [&](const std::string&, const std::string&, const json& spec) -> StatusOr<json> {
    ++calls;
    EXPECT_EQ(spec["audiences"], json::array({"vault"}));
    return json{{"token", "t" + std::to_string(calls)}};
  };
  VolumeManager m(podsDir, s);
  m.setClockForTest([&] { return now; });
  json p =
      pod({{{"name", "t"},
            {"projected",
             {{"sources",
               {{{"serviceAccountToken",
                  {{"audience", "vault"}, {"expirationSeconds", 1000}, {"path", "tok"}}}}}}}}}});
  ASSERT_TRUE(m.setUp(p).ok());
  now += std::chrono::seconds(790);
  ASSERT_TRUE(m.setUp(p).ok());
  EXPECT_EQ(calls, 1);
  now += std::chrono::seconds(20);  // 810s > 80% of 1000s
  ASSERT_TRUE(m.setUp(p).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(readAll(dir("kubernetes.io~projected", "t") + "/tok"), "t2");
  EXPECT_EQ(modeOf(dir("kubernetes.io~projected", "t") + "/tok"), 0644u);
  ASSERT_TRUE(m.tearDown(uid).ok());
}

TEST_F(VolumesTest, DownwardAPIVolume) {
  json p = pod(
      {{{"name", "info"},
        {"downwardAPI",
         {{"items",
           {{{"path", "labels"}, {"fieldRef", {{"fieldPath", "metadata.labels"}}}},
            {{"path", "name"}, {"fieldRef", {{"fieldPath", "metadata.name"}}}, {"mode", 0400}},
            {{"path", "mem"},
             {"resourceFieldRef",
              {{"containerName", "c"}, {"resource", "limits.memory"}, {"divisor", "1Mi"}}}}}}}}}},
      {{{"name", "c"}}});
  ASSERT_TRUE(vm->setUp(p).ok());
  std::string d = dir("kubernetes.io~downward-api", "info");
  EXPECT_EQ(readAll(d + "/labels"), "a=\"b\"");
  EXPECT_EQ(readAll(d + "/name"), "p");
  EXPECT_EQ(modeOf(d + "/name"), 0400u);
  EXPECT_EQ(readAll(d + "/mem"), "4096");  // node allocatable 4Gi
  // A label change reaches the file on the next sync.
  p["metadata"]["labels"]["a"] = "c";
  ASSERT_TRUE(vm->setUp(p).ok());
  EXPECT_EQ(readAll(d + "/labels"), "a=\"c\"");
}

TEST_F(VolumesTest, HostPathTypes) {
  std::string h = root + "/host";
  fs::create_directories(h + "/dir");
  std::ofstream(h + "/file") << "x";
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::string sp = h + "/sock";
  std::strncpy(sa.sun_path, sp.c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  auto one = [&](const std::string& path, const std::string& type) {
    json hp = {{"path", path}};
    if (!type.empty()) hp["type"] = type;
    return vm->setUp(pod({{{"name", "h"}, {"hostPath", hp}}}));
  };
  EXPECT_TRUE(one(h + "/dir", "Directory").ok());
  EXPECT_EQ(one(h + "/file", "Directory").message(),
            "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: " + h +
                "/file is not a directory");
  EXPECT_FALSE(one(h + "/missing", "Directory").ok());
  EXPECT_TRUE(one(h + "/new/deep", "DirectoryOrCreate").ok());
  EXPECT_TRUE(fs::is_directory(h + "/new/deep"));
  EXPECT_EQ(modeOf(h + "/new/deep"), 0755u);
  EXPECT_TRUE(one(h + "/file", "File").ok());
  EXPECT_FALSE(one(h + "/dir", "File").ok());
  EXPECT_TRUE(one(h + "/created", "FileOrCreate").ok());
  EXPECT_TRUE(fs::is_regular_file(h + "/created"));
  EXPECT_FALSE(one(h + "/nodir/created", "FileOrCreate").ok());
  EXPECT_TRUE(one(sp, "Socket").ok());
  EXPECT_EQ(one(h + "/file", "Socket").message(),
            "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: " + h +
                "/file is not a socket file");
  EXPECT_TRUE(one("/dev/null", "CharDevice").ok());
  EXPECT_FALSE(one(h + "/file", "CharDevice").ok());
  EXPECT_FALSE(one("/dev/null", "BlockDevice").ok());
  EXPECT_TRUE(one(h + "/whatever", "").ok());  // unset: no check
  EXPECT_FALSE(one(h + "/x", "Bogus").ok());
  EXPECT_FALSE(one(h + "/../etc", "").ok());
  ::close(sock);

  // hostPath mounts are read-write unless the volumeMount says otherwise.
  json p = pod({{{"name", "h"}, {"hostPath", {{"path", h + "/dir"}}}}});
  ASSERT_TRUE(vm->setUp(p).ok());
  json c = {{"name", "c"},
            {"volumeMounts",
             {{{"name", "h"}, {"mountPath", "/a"}},
              {{"name", "h"}, {"mountPath", "/b"}, {"readOnly", true}}}}};
  auto m = vm->mountsFor(p, c, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].hostPath, h + "/dir");
  EXPECT_FALSE((*m)[0].readOnly);
  EXPECT_TRUE((*m)[1].readOnly);
  EXPECT_EQ((*m)[0].propagation, "");

  json c2 = {{"name", "c"},
             {"volumeMounts",
              {{{"name", "h"}, {"mountPath", "/a"}, {"mountPropagation", "HostToContainer"}}}}};
  m = vm->mountsFor(p, c2, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].propagation, "HostToContainer");
  c2["volumeMounts"][0]["mountPropagation"] = "Sideways";
  EXPECT_FALSE(vm->mountsFor(p, c2, {}).ok());
}

TEST_F(VolumesTest, PersistentVolumeClaims) {
  std::string local = root + "/storage/pvc-1";
  fs::create_directories(local);
  pvcs["ns1/data"] = {{"spec", {{"volumeName", "pv-1"}}}, {"status", {{"phase", "Bound"}}}};
  pvs["pv-1"] = {{"spec", {{"hostPath", {{"path", local}, {"type", "DirectoryOrCreate"}}}}}};
  pvcs["ns1/pending"] = {{"spec", json::object()}, {"status", {{"phase", "Pending"}}}};
  pvcs["ns1/loc"] = {{"spec", {{"volumeName", "pv-2"}}}, {"status", {{"phase", "Bound"}}}};
  pvs["pv-2"] = {{"spec", {{"local", {{"path", root + "/nolocal"}}}}}};
  json p = pod(
      {{{"name", "d"}, {"persistentVolumeClaim", {{"claimName", "data"}, {"readOnly", true}}}}});
  ASSERT_TRUE(vm->setUp(p).ok());
  json c = {{"name", "c"}, {"volumeMounts", {{{"name", "d"}, {"mountPath", "/data"}}}}};
  auto m = vm->mountsFor(p, c, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].hostPath, local);
  EXPECT_TRUE((*m)[0].readOnly);
  EXPECT_EQ(vm->setUp(pod({{{"name", "d"}, {"persistentVolumeClaim", {{"claimName", "pending"}}}}}))
                .message(),
            "MountVolume.SetUp failed for volume \"d\" : PVC ns1/pending has non-bound phase "
            "(\"Pending\") or empty pvc.Spec.VolumeName (\"\")");
  EXPECT_EQ(
      vm->setUp(pod({{{"name", "d"}, {"persistentVolumeClaim", {{"claimName", "nope"}}}}})).code(),
      Code::kNotFound);
  EXPECT_FALSE(
      vm->setUp(pod({{{"name", "d"}, {"persistentVolumeClaim", {{"claimName", "loc"}}}}})).ok());
}

TEST_F(VolumesTest, SubPathsAndEscapes) {
  json p = pod({{{"name", "data"}, {"emptyDir", json::object()}},
                {{"name", "cfg"}, {"configMap", {{"name", "cfg"}}}}});
  ASSERT_TRUE(vm->setUp(p).ok());
  std::string ed = dir("kubernetes.io~empty-dir", "data");
  EXPECT_EQ(modeOf(ed), 0777u);
  json c = {{"name", "c"},
            {"volumeMounts",
             {{{"name", "data"}, {"mountPath", "/logs"}, {"subPathExpr", "logs/$(POD_NAME)"}},
              {{"name", "cfg"}, {"mountPath", "/etc/app.conf"}, {"subPath", "app.conf"}}}}};
  auto m = vm->mountsFor(p, c, {{"POD_NAME", "web-1"}});
  ASSERT_TRUE(m.ok()) << m.status().toString();
  EXPECT_EQ((*m)[0].hostPath, ed + "/logs/web-1");
  EXPECT_TRUE(fs::is_directory(ed + "/logs/web-1"));
  // A configMap key through subPath resolves to the file in the current timestamp dir.
  std::string cd = dir("kubernetes.io~configmap", "cfg");
  EXPECT_EQ((*m)[1].hostPath, cd + "/" + linkOf(cd + "/..data") + "/app.conf");
  EXPECT_TRUE((*m)[1].readOnly);

  auto bad = [&](json mount, std::vector<EnvVar> env = {}) {
    json cc = {{"name", "c"}, {"volumeMounts", {mount}}};
    return vm->mountsFor(p, cc, env);
  };
  auto r = bad({{"name", "data"}, {"mountPath", "/x"}, {"subPathExpr", "$(NOPE)"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "missing value for NOPE");
  r = bad({{"name", "data"}, {"mountPath", "/x"}, {"subPath", "../../etc"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unable to provision SubPath `../../etc`: must not contain '..'");
  r = bad({{"name", "data"}, {"mountPath", "/x"}, {"subPath", "/etc"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "error SubPath `/etc` must not be an absolute path");
  r = bad({{"name", "data"}, {"mountPath", "/x"}, {"subPathExpr", "$(D)"}}, {{"D", "a/../../b"}});
  EXPECT_FALSE(r.ok());
  // A symlink planted in the volume (as a container could) must not lead outside of it.
  fs::create_directory_symlink("/etc", ed + "/evil");
  r = bad({{"name", "data"}, {"mountPath", "/x"}, {"subPath", "evil"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not within volume path"), std::string::npos);
  r = bad({{"name", "data"}, {"mountPath", "/x"}, {"subPath", "evil/newdir"}});
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(fs::exists("/etc/newdir"));
  r = bad({{"name", "nosuch"}, {"mountPath", "/x"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "cannot find volume \"nosuch\" to mount into container \"c\"");
}

// Upstream wraps secret and projected volumes in a memory-medium emptyDir: secrets never reach
// the disk. configMap and downwardAPI volumes stay on disk.
TEST_F(VolumesTest, SecretAndProjectedVolumesAreTmpfsOthersAreNot) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting needs root";
  json p =
      pod({{{"name", "sec"}, {"secret", {{"secretName", "s1"}, {"optional", true}}}},
           {{"name", "proj"},
            {"projected",
             {{"sources", json::array({{{"secret", {{"name", "s1"}, {"optional", true}}}}})}}}},
           {{"name", "cm"}, {"configMap", {{"name", "c1"}, {"optional", true}}}}});
  ASSERT_TRUE(vm->setUp(p).ok());
  EXPECT_TRUE(mounted(dir("kubernetes.io~secret", "sec")));
  EXPECT_TRUE(mounted(dir("kubernetes.io~projected", "proj")));
  EXPECT_FALSE(mounted(dir("kubernetes.io~configmap", "cm")));
  ASSERT_TRUE(vm->setUp(p).ok());  // a re-sync mounts nothing twice
  ASSERT_TRUE(vm->tearDown(uid).ok());
  EXPECT_FALSE(mounted(dir("kubernetes.io~secret", "sec")));
  EXPECT_FALSE(fs::exists(podsDir + "/" + uid));
}

TEST_F(VolumesTest, MemoryEmptyDirIsATmpfsAndTearDownUnmounts) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting needs root";
  json p = pod({{{"name", "mem"}, {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", "16Mi"}}}},
                {{"name", "disk"}, {"emptyDir", json::object()}}});
  ASSERT_TRUE(vm->setUp(p).ok());
  std::string d = dir("kubernetes.io~empty-dir", "mem");
  ASSERT_TRUE(mounted(d));
  // Mounted once only, however often the pod syncs.
  ASSERT_TRUE(vm->setUp(p).ok());
  int count = 0;
  {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) count += line.find(" " + d + " ") != std::string::npos;
  }
  EXPECT_EQ(count, 1);
  std::ifstream in("/proc/self/mountinfo");
  std::string line, opts;
  while (std::getline(in, line)) {
    if (line.find(" " + d + " ") != std::string::npos) opts = line;
  }
  EXPECT_NE(opts.find("tmpfs"), std::string::npos);
  EXPECT_NE(opts.find("size=16384k"), std::string::npos) << opts;
  std::ofstream(d + "/f") << "in memory";
  EXPECT_EQ(vm->podsOnDisk(), std::vector<std::string>{uid});

  ASSERT_TRUE(vm->tearDown(uid).ok());
  EXPECT_FALSE(mounted(d));
  EXPECT_FALSE(fs::exists(podsDir + "/" + uid));
  EXPECT_TRUE(vm->podsOnDisk().empty());
  EXPECT_TRUE(vm->tearDown(uid).ok());  // idempotent
  EXPECT_FALSE(vm->tearDown("../x").ok());
}

}  // namespace
}  // namespace kiln::kubelet
