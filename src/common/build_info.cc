// Build and library version information.
#include "common/build_info.h"

#include <bpf/libbpf.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <yaml-cpp/yaml.h>

#include <boost/version.hpp>
#include <nlohmann/json.hpp>

#include "build_info_gen.h"  // generated: KILN_VERSION, KILN_GIT_COMMIT, KILN_BUILD_DATE

namespace kiln {
namespace runtime {
// Defined where gRPC and Protobuf are used (src/embedded/runtime), which keeps them confined.
std::string grpcVersion();
std::string protobufVersion();
}  // namespace runtime

namespace common {
namespace {

std::string compilerName() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "g++ " __VERSION__;
#else
  return "unknown";
#endif
}

std::string platformName() {
#if defined(__x86_64__)
  return "linux/amd64";
#elif defined(__aarch64__)
  return "linux/arm64";
#elif defined(__arm__)
  return "linux/arm";
#else
  return "linux/unknown";
#endif
}

std::string yamlCppVersion() {
  // yaml-cpp has no run-time version query; prove it is linked by using it.
  YAML::Node n = YAML::Load("v: " KILN_YAML_CPP_VERSION);
  return n["v"].as<std::string>();
}

}  // namespace

const BuildInfo& buildInfo() {
  static const BuildInfo info{KILN_VERSION,   KILN_GIT_COMMIT, KILN_BUILD_DATE,
                              compilerName(), "v1.32.0",       platformName()};
  return info;
}

std::vector<std::pair<std::string, std::string>> libraryVersions() {
  std::string boost = std::to_string(BOOST_VERSION / 100000) + "." +
                      std::to_string(BOOST_VERSION / 100 % 1000) + "." +
                      std::to_string(BOOST_VERSION % 100);
  std::string json = std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
                     std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." +
                     std::to_string(NLOHMANN_JSON_VERSION_PATCH);
  return {
      {"boost", boost},
      {"sqlite", sqlite3_libversion()},
      {"openssl", OpenSSL_version(OPENSSL_VERSION_STRING)},
      {"grpc", runtime::grpcVersion()},
      {"protobuf", runtime::protobufVersion()},
      {"libbpf", libbpf_version_string()},
      {"yaml-cpp", yamlCppVersion()},
      {"nlohmann-json", json},
  };
}

}  // namespace common
}  // namespace kiln
