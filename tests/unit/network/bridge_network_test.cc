// Tests for BridgeNetwork against the real kernel: as root, inside a child process with its own
// network namespace (standing for the node's), with a grandchild's namespace as the pod's.
#include "agent/network/bridge_network.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "agent/network/netlink.h"
#include "agent/network/nftables.h"
#include "common/fs.h"

namespace kiln::network {
namespace {

// A process in a new network namespace until killed; its pid.
pid_t podNamespace() {
  int p[2];
  if (::pipe(p) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(1);
    char c = 'x';
    (void)::write(p[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(p[1]);
  char c;
  bool ok = ::read(p[0], &c, 1) == 1;
  ::close(p[0]);
  return ok ? pid : -1;
}

const std::string kSandboxA(64, 'a');
const std::string kSandboxB = "b1234567" + std::string(56, '0');

TEST(BridgeNetworkTest, SetUpTearDownAndRestartInAFreshNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  char tmpl[] = "/tmp/kiln-bridge-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string state = std::string(tmpl) + "/network";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    pid_t podA = -1, podB = -1;
    auto check = [&](bool ok, int code) {
      if (ok) return;
      if (podA > 0) ::kill(podA, SIGKILL);
      if (podB > 0) ::kill(podB, SIGKILL);
      ::_exit(code);
    };
    check(::unshare(CLONE_NEWNET) == 0, 10);
    {
      auto n = BridgeNetwork::open({.stateDir = state});
      check(n.ok(), 11);
      check(!(*n)->notReadyReason().empty(), 12);
      auto early = (*n)->setUp(kSandboxA, "/proc/self/ns/net");
      check(!early.ok() && early.status().code() == Code::kFailedPrecondition, 13);
      check((*n)->setPodCidr("10.77.0.0/24x").code() == Code::kInvalidArgument, 14);
      check((*n)->setPodCidr("10.77.0.0/24").ok(), 15);
      check((*n)->notReadyReason().empty(), 16);
      podA = podNamespace();
      podB = podNamespace();
      check(podA > 0 && podB > 0, 17);
      const std::string nsA = "/proc/" + std::to_string(podA) + "/ns/net";
      const std::string nsB = "/proc/" + std::to_string(podB) + "/ns/net";
      auto ipA = (*n)->setUp(kSandboxA, nsA);
      auto ipB = (*n)->setUp(kSandboxB, nsB);
      check(ipA.ok() && ipB.ok() && *ipA != *ipB, 18);
      check((*n)->podIp(kSandboxA) == *ipA, 19);
      // Again for the same sandbox: the same IP (the pair is rebuilt).
      auto again = (*n)->setUp(kSandboxA, nsA);
      check(again.ok() && *again == *ipA, 20);
      auto host = Rtnl::open();
      check(host.ok(), 21);
      auto br = host->link("kiln0");
      check(br.ok() && br->kind == "bridge", 22);
      auto veth = host->link("vethaaaaaaaa");
      check(veth.ok() && veth->master == br->index, 23);
      auto pod = Rtnl::openInNetns(nsA);
      check(pod.ok(), 24);
      auto eth0 = pod->link("eth0");
      check(eth0.ok() && (eth0->flags & 1) != 0, 25);  // IFF_UP
      auto nft = NfTables::open();
      check(nft.ok(), 26);
      auto comments = nft->ruleComments(kNftFamilyIp, "kiln-pod-net");
      check(comments.ok() && comments->size() == 1, 27);
      // Connectivity: pod A pings pod B through the bridge (with busybox, when there).
      if (::access("/usr/bin/nsenter", X_OK) == 0 && ::access("/usr/bin/busybox", X_OK) == 0) {
        std::string cmd = "/usr/bin/nsenter --net=" + nsA + " /usr/bin/busybox ping -c 1 -W 2 " +
                          *ipB + " >/dev/null 2>&1";
        check(std::system(cmd.c_str()) == 0, 28);
      }
      check((*n)->tearDown(kSandboxA, nsA).ok(), 29);
      check((*n)->tearDown(kSandboxA, nsA).ok(), 30);  // idempotent
      check(host->link("vethaaaaaaaa").status().code() == Code::kNotFound, 31);
      check((*n)->podIp(kSandboxA).empty(), 32);
    }
    // A restart: the pod CIDR and pod B's IP come back from disk, ready at once.
    auto n = BridgeNetwork::open({.stateDir = state});
    check(n.ok() && (*n)->notReadyReason().empty(), 33);
    check((*n)->podCidr() && (*n)->podCidr()->toString() == "10.77.0.0/24", 34);
    check(!(*n)->podIp(kSandboxB).empty(), 35);
    // The explicit teardown removes the bridge, its ports and the table.
    check(cleanupPodNetwork(state).ok(), 36);
    auto host = Rtnl::open();
    check(host->link("kiln0").status().code() == Code::kNotFound, 37);
    check(host->link("vethb1234567").status().code() == Code::kNotFound, 38);
    check(NfTables::open()->ruleComments(kNftFamilyIp, "kiln-pod-net").status().code() ==
              Code::kNotFound,
          39);
    check(!std::filesystem::exists(state + "/pod-cidr"), 40);
    check(cleanupPodNetwork(state).ok(), 41);  // nothing there: fine
    ::kill(podA, SIGKILL);
    ::kill(podB, SIGKILL);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  std::filesystem::remove_all(tmpl);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the check with this exit code failed";
}

}  // namespace
}  // namespace kiln::network
