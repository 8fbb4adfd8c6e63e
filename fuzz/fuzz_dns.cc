// kiln-fuzz-dns: a libFuzzer target over the cluster DNS's handling of a packet from the
// network: the message parser (compression pointers, counts, EDNS0), then the whole query path
// (handleQuery over a resolver with a few Services and EndpointSlices, UDP and TCP limits),
// and re-parsing what we answer. Any crash or sanitizer report is a bug: a packet must only
// ever produce an answer, FORMERR or a drop.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "addons/dns/dns_handler.h"
#include "addons/dns/dns_message.h"
#include "addons/dns/dns_resolver.h"

namespace {

using nlohmann::json;
using namespace kiln::dns;

ClusterObjects fixture() {
  auto o = [](json j) { return std::make_shared<const json>(std::move(j)); };
  ClusterObjects c;
  c.namespaces = {o({{"metadata", {{"name", "default"}}}})};
  c.services = {
      o({{"metadata", {{"name", "web"}, {"namespace", "default"}}},
         {"spec", {{"clusterIP", "10.43.0.20"}, {"ports", {{{"name", "http"}, {"port", 80}}}}}}}),
      o({{"metadata", {{"name", "hl"}, {"namespace", "default"}}},
         {"spec", {{"clusterIP", "None"}}}}),
      o({{"metadata", {{"name", "ext"}, {"namespace", "default"}}},
         {"spec", {{"type", "ExternalName"}, {"externalName", "web.default.svc.cluster.local"}}}}),
  };
  json slice = {{"metadata",
                 {{"name", "hl-1"},
                  {"namespace", "default"},
                  {"labels", {{"kubernetes.io/service-name", "hl"}}}}},
                {"addressType", "IPv4"}};
  slice["endpoints"] = json::array({{{"addresses", {"10.42.0.5"}}, {"hostname", "web-0"}}});
  c.endpointSlices = {o(slice)};
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Resolver resolver(ResolverConfig{}, [] { return fixture(); });
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = parseMessage(in);
  if (m.ok()) {
    auto again = serializeMessage(*m);
    if (again.ok()) (void)parseMessage(*again);
  }
  for (bool udp : {true, false}) {
    Handled h = handleQuery(resolver, in, udp);
    if (h.kind == Handled::Kind::kReply) {
      if (udp && h.reply.size() > 4096) __builtin_trap();
      auto r = parseMessage(h.reply);
      if (!r.ok()) __builtin_trap();  // we must always write valid messages
    } else if (h.kind == Handled::Kind::kForward) {
      (void)upstreamQuestion(h);
      (void)answerFromUpstream(h.query, h.partial, nullptr, h.limit);
    }
  }
  return 0;
}
