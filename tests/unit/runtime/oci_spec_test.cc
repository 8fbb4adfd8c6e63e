// Unit tests of the container spec's pure rules: upstream defaults (mounts, devices,
// capabilities, masked and read-only paths), containerd's command/env/working-dir merge with the
// image config, image users and their resolution against /etc/passwd and /etc/group,
// capability add/drop, signals, the overlay options' size limit, secureJoin, and the
// ContainerSpec JSON round trip.
#include "embedded/runtime/oci_spec.h"

#include <gtest/gtest.h>

#include <map>

#include "embedded/runtime/cgroups.h"

namespace kiln::runtime::oci {
namespace {

using Strings = std::vector<std::string>;

TEST(RuntimeOciSpec, DefaultsMatchUpstream) {
  Strings dests;
  for (const auto& m : defaultMounts()) dests.push_back(m.destination);
  EXPECT_EQ(dests,
            (Strings{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run"}));
  auto sys = defaultMounts()[5];
  EXPECT_NE(std::find(sys.options.begin(), sys.options.end(), "ro"), sys.options.end());
  EXPECT_EQ(defaultCapabilities().size(), 14u);
  // containerd's set is CapEff 0xa80425fb.
  uint64_t mask = 0;
  for (const auto& c : defaultCapabilities()) mask |= uint64_t{1} << *capabilityNumber(c);
  EXPECT_EQ(mask, 0xa80425fbULL);
  EXPECT_NE(std::find(defaultMaskedPaths().begin(), defaultMaskedPaths().end(), "/proc/kcore"),
            defaultMaskedPaths().end());
  EXPECT_EQ(defaultReadonlyPaths(),
            (Strings{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
  Strings devs;
  for (const auto& d : defaultDevices()) devs.push_back(d.path);
  EXPECT_EQ(devs, (Strings{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                           "/dev/tty"}));
}

TEST(RuntimeOciSpec, MergesArgsAsContainerd) {
  ImageConfig img{.entrypoint = {"/ep"}, .cmd = {"c1", "c2"}};
  EXPECT_EQ(*mergeArgs({}, {}, img), (Strings{"/ep", "c1", "c2"}));
  EXPECT_EQ(*mergeArgs({}, {"a"}, img), (Strings{"/ep", "a"}));
  EXPECT_EQ(*mergeArgs({"/cmd"}, {}, img), (Strings{"/cmd"}));  // command drops image Cmd too
  EXPECT_EQ(*mergeArgs({"/cmd"}, {"x"}, img), (Strings{"/cmd", "x"}));
  ImageConfig emptyEp{.entrypoint = {""}, .cmd = {"sh"}};
  EXPECT_EQ(*mergeArgs({}, {}, emptyEp), (Strings{"sh"}));
  auto none = mergeArgs({}, {}, ImageConfig{});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kInvalidArgument);
}

TEST(RuntimeOciSpec, MergesEnvAsContainerd) {
  ImageConfig img{.env = {"PATH=/img/bin", "A=image", "B=image"}};
  auto env = mergeEnv("host1", img, {{"B", "cri"}, {"C", "x=y"}});
  EXPECT_EQ(env, (Strings{"PATH=/img/bin", "HOSTNAME=host1", "A=image", "B=cri", "C=x=y"}));
  auto plain = mergeEnv("h", ImageConfig{}, {});
  EXPECT_EQ(plain[0], std::string(kDefaultPath));
}

TEST(RuntimeOciSpec, ParsesImageConfig) {
  auto c = parseImageConfig(R"({"config":{"Entrypoint":["/e"],"Cmd":["sh"],"Env":["A=1"],
    "WorkingDir":"/w","User":"nobody:nogroup","StopSignal":"SIGQUIT"}})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->entrypoint, Strings{"/e"});
  EXPECT_EQ(c->workingDir, "/w");
  EXPECT_EQ(c->user, "nobody:nogroup");
  EXPECT_EQ(*signalNumber(c->stopSignal), 3);
  EXPECT_TRUE(parseImageConfig("{}").ok());
  EXPECT_FALSE(parseImageConfig("[").ok());
}

TEST(RuntimeOciSpec, ImageUsers) {
  EXPECT_EQ(*parseImageUser(""), UserSpec{});
  EXPECT_EQ(*parseImageUser("1000"), (UserSpec{.uid = 1000u}));
  EXPECT_EQ(*parseImageUser("1000:50"), (UserSpec{.uid = 1000u, .gid = 50u}));
  EXPECT_EQ(*parseImageUser("app:staff"), (UserSpec{.userName = "app", .groupName = "staff"}));
  EXPECT_FALSE(parseImageUser(":5").ok());
}

TEST(RuntimeOciSpec, ResolvesUsersAgainstPasswdAndGroup) {
  const std::string passwd =
      "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\nbad line\n";
  const std::string group = "root:x:0:\napp:x:1001:\nwheel:x:10:app,other\nstaff:x:50:\n";
  auto root = resolveUser({}, passwd, group);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->home, "/root");
  auto app = resolveUser({.userName = "app"}, passwd, group);
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->uid, 1000u);
  EXPECT_EQ(app->gid, 1001u);
  EXPECT_EQ(app->additionalGids, std::vector<uint32_t>{10});
  EXPECT_EQ(app->home, "/home/app");
  auto byId =
      resolveUser({.uid = 1000u, .groupName = "staff", .supplementalGroups = {7}}, passwd, group);
  ASSERT_TRUE(byId.ok());
  EXPECT_EQ(byId->gid, 50u);
  EXPECT_EQ(byId->additionalGids, (std::vector<uint32_t>{10, 7}));
  auto unknownUid = resolveUser({.uid = 4242u}, passwd, group);
  ASSERT_TRUE(unknownUid.ok());
  EXPECT_EQ(unknownUid->uid, 4242u);
  EXPECT_EQ(unknownUid->gid, 0u);
  EXPECT_EQ(resolveUser({.userName = "ghost"}, passwd, group).status().code(), Code::kNotFound);
  EXPECT_EQ(resolveUser({.uid = 0u, .groupName = "ghosts"}, passwd, group).status().code(),
            Code::kNotFound);
}

TEST(RuntimeOciSpec, CapabilitiesAddDrop) {
  auto c = mergeCapabilities({"NET_ADMIN", "cap_sys_time"}, {"CAP_MKNOD", "kill"});
  ASSERT_TRUE(c.ok());
  EXPECT_NE(std::find(c->begin(), c->end(), "CAP_NET_ADMIN"), c->end());
  EXPECT_NE(std::find(c->begin(), c->end(), "CAP_SYS_TIME"), c->end());
  EXPECT_EQ(std::find(c->begin(), c->end(), "CAP_MKNOD"), c->end());
  EXPECT_EQ(std::find(c->begin(), c->end(), "CAP_KILL"), c->end());
  EXPECT_EQ(*mergeCapabilities({}, {"ALL"}), Strings{});
  EXPECT_EQ(*mergeCapabilities({"CHOWN"}, {"ALL"}), Strings{"CAP_CHOWN"});
  EXPECT_EQ(mergeCapabilities({"ALL"}, {})->size(), allCapabilities().size());
  EXPECT_EQ(mergeCapabilities({"CAP_BOGUS"}, {}).status().code(), Code::kInvalidArgument);
}

TEST(RuntimeOciSpec, Signals) {
  EXPECT_EQ(*signalNumber("SIGTERM"), 15);
  EXPECT_EQ(*signalNumber("kill"), 9);
  EXPECT_EQ(*signalNumber("10"), 10);
  EXPECT_FALSE(signalNumber("SIGNOPE").has_value());
  EXPECT_FALSE(signalNumber("99").has_value());
}

TEST(RuntimeOciSpec, OverlayOptionsStayUnderAPage) {
  ContainerSpec s;
  s.upperDir = "containers/containers/x/fs/upper";
  s.workDir = "containers/containers/x/fs/work";
  s.lowerDirs = {"snapshots/a/fs", "snapshots/b/fs"};
  EXPECT_EQ(*overlayOptions(s),
            "lowerdir=snapshots/a/fs:snapshots/b/fs,upperdir=containers/containers/x/fs/upper,"
            "workdir=containers/containers/x/fs/work");
  s.lowerDirs.assign(60, "snapshots/" + std::string(64, 'a') + "/fs");
  EXPECT_EQ(overlayOptions(s).status().code(), Code::kInvalidArgument);
  s.lowerDirs = {"a:b"};
  EXPECT_FALSE(overlayOptions(s).ok());
  s.lowerDirs.clear();
  EXPECT_FALSE(overlayOptions(s).ok());
}

TEST(RuntimeOciSpec, SecureJoinStaysInsideTheRoot) {
  std::map<std::string, std::string> links = {
      {"/r/var/run", "/run"},         // absolute: relative to the root
      {"/r/escape", "../../../etc"},  // .. never leaves the root
      {"/r/loop", "loop"},
  };
  auto readLink = [&](const std::string& p) -> std::optional<std::string> {
    auto it = links.find(p);
    if (it == links.end()) return std::nullopt;
    return it->second;
  };
  EXPECT_EQ(*secureJoin("/r", "/var/run/secrets", readLink), "/r/run/secrets");
  EXPECT_EQ(*secureJoin("/r", "/escape/passwd", readLink), "/r/etc/passwd");
  EXPECT_EQ(*secureJoin("/r", "/../../x/./y//z", readLink), "/r/x/y/z");
  EXPECT_EQ(*secureJoin("/r", "/", readLink), "/r");
  EXPECT_FALSE(secureJoin("/r", "/loop/x", readLink).ok());
}

TEST(RuntimeOciSpec, ContainerSpecRoundTrip) {
  ContainerSpec s;
  s.id = "abc";
  s.args = {"sh", "-c", "echo \"hi\""};
  s.env = {"A=1"};
  s.cwd = "/work";
  s.user = {.uid = 5u, .gid = 6u, .userName = "", .groupName = "", .supplementalGroups = {7}};
  s.capabilities = defaultCapabilities();
  s.noNewPrivileges = false;
  s.oomScoreAdj = -5;
  s.agentDir = "/data/agent";
  s.lowerDirs = {"snapshots/a/fs"};
  s.upperDir = "u";
  s.workDir = "w";
  s.rootfs = "/data/agent/containers/containers/abc/rootfs";
  s.readonlyRootfs = true;
  s.mounts = defaultMounts();
  s.maskedPaths = defaultMaskedPaths();
  s.readonlyPaths = defaultReadonlyPaths();
  s.holderPid = 42;
  s.holderStartTime = 123456789;
  s.cgroupDirs = {"/sys/fs/cgroup/memory/kiln/p/abc"};
  s.logPath = "/logs/abc/0.log";
  auto back = containerSpecFromJson(toJson(s));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(toJson(*back), toJson(s));
  EXPECT_EQ(back->user, s.user);
  EXPECT_EQ(back->mounts, s.mounts);
  EXPECT_FALSE(containerSpecFromJson("{}").ok());
  EXPECT_FALSE(containerSpecFromJson("nope").ok());
}

TEST(RuntimeCgroups, SharesToWeight) {
  EXPECT_EQ(cpuSharesToWeight(2), 1u);
  EXPECT_EQ(cpuSharesToWeight(1024), 39u);
  EXPECT_EQ(cpuSharesToWeight(262144), 10000u);
  EXPECT_EQ(cpuSharesToWeight(0), 0u);
}

}  // namespace
}  // namespace kiln::runtime::oci
