// Tests for flag parsing, KILN_* environment variables, the YAML config file and precedence.
#include "common/flags.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace kiln::common {
namespace {

std::vector<FlagSpec> specs() {
  return {
      {.name = "data-dir",
       .shorthand = 'd',
       .defaultValue = "/var/lib/kiln",
       .check = checks::nonEmpty},
      {.name = "https-listen-port",
       .type = FlagType::kInt,
       .defaultValue = "6443",
       .check = checks::port},
      {.name = "debug", .type = FlagType::kBool, .defaultValue = "false"},
      {.name = "tls-san", .type = FlagType::kList},
      {.name = "cluster-cidr", .defaultValue = "10.42.0.0/16", .check = checks::cidrList},
      {.name = "write-kubeconfig-mode", .defaultValue = "0600", .check = checks::fileMode},
  };
}

class FlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-flags-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    opts_.useConfigFile = true;
    opts_.defaultConfigPath = dir_ + "/config.yaml";  // absent unless a test writes it
    opts_.env = [this](const std::string& n) -> std::optional<std::string> {
      auto it = env_.find(n);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string writeConfig(const std::string& body, const std::string& name = "config.yaml") {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << body;
    return p;
  }
  StatusOr<CommandLine> parse(std::vector<std::string> args) {
    return parseCommandLine(specs(), args, opts_);
  }

  std::string dir_;
  ParseOptions opts_;
  std::map<std::string, std::string> env_;
};

TEST_F(FlagsTest, Defaults) {
  auto cl = parse({});
  ASSERT_TRUE(cl.ok()) << cl.status().toString();
  EXPECT_EQ(cl->config.str("data-dir"), "/var/lib/kiln");
  EXPECT_EQ(cl->config.integer("https-listen-port"), 6443);
  EXPECT_FALSE(cl->config.boolean("debug"));
  EXPECT_TRUE(cl->config.list("tls-san").empty());
  EXPECT_EQ(cl->config.source("data-dir"), Source::kDefault);
  EXPECT_EQ(cl->config.configFile(), "");  // default file absent: fine
}

TEST_F(FlagsTest, FlagForms) {
  auto cl =
      parse({"-d", "/a", "--https-listen-port=7443", "--debug", "--tls-san", "x,y", "--tls-san=z"});
  ASSERT_TRUE(cl.ok()) << cl.status().toString();
  EXPECT_EQ(cl->config.str("data-dir"), "/a");
  EXPECT_EQ(cl->config.integer("https-listen-port"), 7443);
  EXPECT_TRUE(cl->config.boolean("debug"));
  EXPECT_EQ(cl->config.list("tls-san"), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(cl->config.source("data-dir"), Source::kFlag);
  auto off = parse({"--debug=false", "-d=/b"});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->config.boolean("debug"));
  EXPECT_EQ(off->config.str("data-dir"), "/b");
}

TEST_F(FlagsTest, Help) {
  auto cl = parse({"--https-listen-port=bad", "--help"});
  ASSERT_TRUE(cl.ok());
  EXPECT_TRUE(cl->help);
}

TEST_F(FlagsTest, UnknownFlagAndBadValues) {
  EXPECT_EQ(parse({"--nope"}).status().message(), "unknown flag \"--nope\"");
  EXPECT_EQ(parse({"-x"}).status().message(), "unknown flag \"-x\"");
  EXPECT_EQ(parse({"--https-listen-port", "70000"}).status().message(),
            "flag --https-listen-port: invalid value \"70000\": must be a port number (1-65535)");
  EXPECT_EQ(parse({"--https-listen-port", "abc"}).status().message(),
            "flag --https-listen-port: invalid value \"abc\": must be an integer");
  EXPECT_EQ(parse({"--debug=maybe"}).status().message(),
            "flag --debug: invalid value \"maybe\": must be true or false");
  EXPECT_EQ(parse({"--data-dir"}).status().message(), "flag --data-dir needs a value");
  EXPECT_EQ(parse({"stray"}).status().message(), "unexpected argument \"stray\"");
  EXPECT_EQ(parse({"--cluster-cidr", "10.42.0.0"}).status().message(),
            "flag --cluster-cidr: invalid value \"10.42.0.0\": must be a CIDR such as "
            "10.42.0.0/16");
}

TEST_F(FlagsTest, ConfigFileValues) {
  writeConfig(
      "data-dir: /from-file\nhttps-listen-port: 8443\ndebug: true\n"
      "tls-san:\n  - a.example\n  - 10.0.0.1\n");
  auto cl = parse({});
  ASSERT_TRUE(cl.ok()) << cl.status().toString();
  EXPECT_EQ(cl->config.str("data-dir"), "/from-file");
  EXPECT_EQ(cl->config.integer("https-listen-port"), 8443);
  EXPECT_TRUE(cl->config.boolean("debug"));
  EXPECT_EQ(cl->config.list("tls-san"), (std::vector<std::string>{"a.example", "10.0.0.1"}));
  EXPECT_EQ(cl->config.source("data-dir"), Source::kFile);
  EXPECT_EQ(cl->config.configFile(), dir_ + "/config.yaml");
}

TEST_F(FlagsTest, PrecedenceFlagOverEnvOverFile) {
  writeConfig("data-dir: /file\nhttps-listen-port: 8443\ndebug: true\n");
  env_["KILN_DATA_DIR"] = "/env";
  env_["KILN_HTTPS_LISTEN_PORT"] = "9443";
  auto cl = parse({"--https-listen-port", "10443"});
  ASSERT_TRUE(cl.ok()) << cl.status().toString();
  EXPECT_EQ(cl->config.str("data-dir"), "/env");
  EXPECT_EQ(cl->config.source("data-dir"), Source::kEnv);
  EXPECT_EQ(cl->config.integer("https-listen-port"), 10443);
  EXPECT_TRUE(cl->config.boolean("debug"));  // only the file sets it
}

TEST_F(FlagsTest, ConfigFileErrorsNameKeyAndFile) {
  std::string p = writeConfig("data-dir: /x\nhttps-listen-prot: 1\n");
  EXPECT_EQ(parse({}).status().message(), p + ": unknown key \"https-listen-prot\"");
  writeConfig("https-listen-port: http\n");
  EXPECT_EQ(parse({}).status().message(),
            p + ": key \"https-listen-port\": invalid value \"http\": must be an integer");
  writeConfig("write-kubeconfig-mode: \"0999\"\n");
  EXPECT_EQ(parse({}).status().message(),
            p + ": key \"write-kubeconfig-mode\": invalid value \"0999\": must be an octal file "
                "mode such as 0600");
  writeConfig("data-dir:\n  - a\n  - b\n");
  EXPECT_EQ(parse({}).status().message(),
            p + ": key \"data-dir\": must be a single value, not a list");
  writeConfig("- just\n- a list\n");
  EXPECT_EQ(parse({}).status().message(), p + ": must be a mapping of flag names to values");
  writeConfig("data-dir: [unclosed\n");
  std::string m = parse({}).status().message();
  EXPECT_EQ(m.rfind(p + ": line ", 0), 0u) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;  // one line
  writeConfig("config: /other\n");
  EXPECT_EQ(parse({}).status().message(), p + ": unknown key \"config\"");
}

TEST_F(FlagsTest, EmptyConfigFileIsFine) {
  writeConfig("");
  EXPECT_TRUE(parse({}).ok());
  writeConfig("# only a comment\n");
  EXPECT_TRUE(parse({}).ok());
}

TEST_F(FlagsTest, ExplicitConfigFile) {
  std::string p = writeConfig("data-dir: /explicit\n", "other.yaml");
  auto cl = parse({"--config", p});
  ASSERT_TRUE(cl.ok()) << cl.status().toString();
  EXPECT_EQ(cl->config.str("data-dir"), "/explicit");
  env_["KILN_CONFIG_FILE"] = p;
  auto viaEnv = parse({});
  ASSERT_TRUE(viaEnv.ok());
  EXPECT_EQ(viaEnv->config.str("data-dir"), "/explicit");
  // A file named explicitly must exist.
  auto missing = parse({"-c", dir_ + "/missing.yaml"});
  EXPECT_EQ(missing.status().message(), dir_ + "/missing.yaml: No such file or directory");
}

TEST_F(FlagsTest, EnvErrorsNameTheVariable) {
  env_["KILN_DEBUG"] = "sometimes";
  EXPECT_EQ(parse({}).status().message(),
            "environment variable KILN_DEBUG: invalid value \"sometimes\": must be true or false");
}

TEST(FlagNames, EnvName) {
  EXPECT_EQ(envName("data-dir"), "KILN_DATA_DIR");
  EXPECT_EQ(envName("service-node-port-range"), "KILN_SERVICE_NODE_PORT_RANGE");
}

TEST(Checks, Values) {
  EXPECT_EQ(checks::port("6443"), "");
  EXPECT_NE(checks::port("0"), "");
  EXPECT_EQ(checks::ip("10.43.0.10"), "");
  EXPECT_EQ(checks::ip("::1"), "");
  EXPECT_NE(checks::ip("10.43.0"), "");
  EXPECT_EQ(checks::cidr("fd00::/64"), "");
  EXPECT_NE(checks::cidr("10.0.0.0/33"), "");
  EXPECT_EQ(checks::cidrList("10.42.0.0/16,fd42::/56"), "");
  EXPECT_EQ(checks::portRange("30000-32767"), "");
  EXPECT_NE(checks::portRange("32767-30000"), "");
  EXPECT_EQ(checks::fileMode("0644"), "");
  EXPECT_NE(checks::fileMode("rw"), "");
  EXPECT_EQ(checks::url("https://10.0.0.1:2379,https://10.0.0.2:2379"), "");
  EXPECT_NE(checks::url("10.0.0.1:2379"), "");
  EXPECT_EQ(checks::label("role=edge"), "");
  EXPECT_NE(checks::label("=edge"), "");
  EXPECT_EQ(checks::taint("dedicated=gpu:NoSchedule"), "");
  EXPECT_EQ(checks::taint("dedicated:NoExecute"), "");
  EXPECT_NE(checks::taint("dedicated=gpu:Never"), "");
}

TEST(Usage, ListsFlagsDefaultsAndEnv) {
  std::string u = flagUsage(specs(), true);
  EXPECT_NE(u.find("-d, --data-dir"), std::string::npos) << u;
  EXPECT_NE(u.find("(default \"/var/lib/kiln\") [$KILN_DATA_DIR]"), std::string::npos) << u;
  EXPECT_NE(u.find("-c, --config FILE"), std::string::npos) << u;
  EXPECT_NE(u.find("[$KILN_CONFIG_FILE]"), std::string::npos) << u;
}

}  // namespace
}  // namespace kiln::common
