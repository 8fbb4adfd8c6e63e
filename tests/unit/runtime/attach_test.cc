// Unit tests of the attach plumbing between the streaming server and the shim (shim.h): the
// packet encoding, the resize payload, containerd's stdin_once rule, the spec's tty/stdin
// fields, and connectAttach reaching a socket in a directory whose path is longer than a
// sockaddr_un can hold.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "embedded/runtime/oci_spec.h"
#include "embedded/runtime/shim.h"

namespace kiln::runtime {
namespace {

namespace fs = std::filesystem;

TEST(Attach, MessagesAreATypeByteAndThePayload) {
  EXPECT_EQ(encodeAttachMessage(kAttachStdin, "abc"), "0abc");
  EXPECT_EQ(encodeAttachMessage(kAttachStdinEnd, ""), "e");
  EXPECT_EQ(encodeAttachMessage(kAttachExit, "137"), "x137");
  std::string big(kAttachMaxPacket - 1, 'z');
  EXPECT_EQ(encodeAttachMessage(kAttachStdout, big).size(), kAttachMaxPacket);
}

TEST(Attach, ResizeRoundTrips) {
  uint16_t c = 0, r = 0;
  ASSERT_TRUE(decodeResize(encodeResize(300, 45), &c, &r));
  EXPECT_EQ(c, 300);
  EXPECT_EQ(r, 45);
  ASSERT_TRUE(decodeResize(encodeResize(65535, 1), &c, &r));
  EXPECT_EQ(c, 65535);
  EXPECT_EQ(r, 1);
  EXPECT_FALSE(decodeResize(encodeResize(0, 10), &c, &r)) << "a zero size is refused";
  EXPECT_FALSE(decodeResize("abc", &c, &r));
  EXPECT_FALSE(decodeResize("abcde", &c, &r));
}

TEST(Attach, OnlyStdinOnceWithoutTtyOutlivesTheSessionsStdin) {
  EXPECT_FALSE(attachDetachesOnStdinEnd(true, false));  // stdin closed, output until exit
  EXPECT_TRUE(attachDetachesOnStdinEnd(true, true));
  EXPECT_TRUE(attachDetachesOnStdinEnd(false, false));
  EXPECT_TRUE(attachDetachesOnStdinEnd(false, true));
}

TEST(Attach, SpecKeepsTtyAndStdin) {
  oci::ContainerSpec s;
  s.id = "c";
  s.args = {"sh"};
  s.tty = true;
  s.stdin = true;
  s.stdinOnce = true;
  auto back = oci::containerSpecFromJson(oci::toJson(s));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->tty);
  EXPECT_TRUE(back->stdin);
  EXPECT_TRUE(back->stdinOnce);
  oci::ContainerSpec plain;
  plain.id = "d";
  plain.args = {"true"};
  auto p = oci::containerSpecFromJson(oci::toJson(plain));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->tty || p->stdin || p->stdinOnce);
}

TEST(Attach, ConnectsThroughALongDirectoryPath) {
  char t[] = "/tmp/kiln-attach-XXXXXX";
  ASSERT_NE(::mkdtemp(t), nullptr);
  std::string dir = std::string(t) + "/" + std::string(60, 'a') + "/" + std::string(64, 'b');
  fs::create_directories(dir);
  ASSERT_GT(dir.size() + 12, sizeof(sockaddr_un::sun_path));
  auto missing = connectAttach(dir);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  // A listener bound the same way the shim binds (chdir + relative name, here).
  std::string cwd = fs::current_path();
  ASSERT_EQ(::chdir(dir.c_str()), 0);
  int l = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", kAttachSocketName);
  ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::chdir(cwd.c_str()), 0);
  auto refused = connectAttach(dir);
  EXPECT_EQ(refused.status().code(), Code::kUnavailable) << "bound but not listening";
  ASSERT_EQ(::listen(l, 1), 0);
  auto c = connectAttach(dir);
  ASSERT_TRUE(c.ok()) << c.status().message();
  int s = ::accept(l, nullptr, nullptr);
  ASSERT_GE(s, 0);
  std::string m = encodeAttachMessage(kAttachStdout, "hi");
  ASSERT_EQ(::send(s, m.data(), m.size(), 0), static_cast<ssize_t>(m.size()));
  char buf[16];
  EXPECT_EQ(::recv(*c, buf, sizeof buf, 0), 3) << "one packet, boundaries kept";
  EXPECT_EQ(std::string(buf, 3), "1hi");
  ::close(s);
  ::close(*c);
  ::close(l);
  fs::remove_all(t);
}

}  // namespace
}  // namespace kiln::runtime
