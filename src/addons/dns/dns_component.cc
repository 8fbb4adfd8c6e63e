// The `dns` component: the dummy interface, the informers, the kube-dns Service and the server
// (see dns_component.h).
#include "addons/dns/dns_component.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "addons/dns/dns_cache.h"
#include "addons/dns/dns_resolver.h"
#include "addons/dns/dns_server.h"
#include "agent/network/netlink.h"
#include "client/api_client.h"
#include "client/informer.h"
#include "common/fs.h"
#include "common/io_component.h"
#include "server/apiserver/api_server.h"

namespace kiln::dns {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const api::ResourceInfo& res(const char* group, const char* version, const char* resource) {
  return *api::findResource(group, version, resource);
}

// The dummy interface holding the cluster DNS address (NodeLocal DNSCache's trick).
Status ensureDummy(const std::string& name, const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) {
    return invalidArgument("--cluster-dns " + ip + ": only IPv4 is supported");
  }
  KILN_ASSIGN_OR_RETURN(auto sock, network::NetlinkSocket::open(NETLINK_ROUTE));
  // Kernels without the dummy driver (some CI VMs) get an ifb device: it needs no carrier
  // either and its addresses are local all the same.
  Status made;
  for (const char* kind : {"dummy", "ifb"}) {
    network::NetlinkMessage m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    m.putHeader(ifi);
    m.putAttrString(IFLA_IFNAME, name);
    size_t li = m.beginNested(IFLA_LINKINFO);
    m.putAttrString(IFLA_INFO_KIND, kind);
    m.endNested(li);
    made = sock.request(m, std::string("create ") + kind + " link " + name);
    if (made.ok() || sock.lastErrno() == EEXIST) {
      made = Status::Ok();
      break;
    }
  }
  KILN_RETURN_IF_ERROR(made);
  KILN_ASSIGN_OR_RETURN(auto rt, network::Rtnl::open());
  KILN_ASSIGN_OR_RETURN(auto link, rt.link(name));
  if (link.kind != "dummy" && link.kind != "ifb") {
    return failedPrecondition("link " + name + " exists and is a " + link.kind + ", not a dummy");
  }
  KILN_RETURN_IF_ERROR(rt.addAddress(link.index, ntohl(a.s_addr), 32));
  return rt.setUp(link.index);
}

Status removeDummy(const std::string& name) {
  KILN_ASSIGN_OR_RETURN(auto rt, network::Rtnl::open());
  auto link = rt.link(name);
  if (!link.ok() || (link->kind != "dummy" && link->kind != "ifb")) return Status::Ok();
  return rt.deleteLink(name);
}

json kubeDnsService(const std::string& ip) {
  return json{
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata",
       {{"name", "kube-dns"},
        {"namespace", "kube-system"},
        {"labels",
         {{"k8s-app", "kube-dns"},
          {"kubernetes.io/cluster-service", "true"},
          {"kubernetes.io/name", "CoreDNS"}}},
        {"annotations", {{"prometheus.io/port", "9153"}, {"prometheus.io/scrape", "true"}}}}},
      {"spec",
       {{"clusterIP", ip},
        {"clusterIPs", {ip}},
        {"ipFamilyPolicy", "SingleStack"},
        {"ports",
         {{{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}, {"targetPort", 53}},
          {{"name", "dns-tcp"}, {"port", 53}, {"protocol", "TCP"}, {"targetPort", 53}},
          {{"name", "metrics"}, {"port", 9153}, {"protocol", "TCP"}, {"targetPort", 9153}}}}}}};
}

class DnsComponent final : public common::IoComponent {
 public:
  explicit DnsComponent(DnsOptions o) : o_(std::move(o)), log_("dns") {}
  ~DnsComponent() override { cleanup(); }

  std::string name() const override { return "dns"; }
  std::vector<std::string> dependencies() const override { return o_.dependencies; }

 protected:
  Status start(common::ComponentContext& ctx) override {
    auto local = o_.api ? o_.api->get() : nullptr;
    if (!local) return failedPrecondition("the API server published no in-process API");
    api_ = client::makeLocalClient(local, "kiln-dns");

    std::vector<std::string> files =
        o_.resolvConf.empty()
            ? std::vector<std::string>{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}
            : std::vector<std::string>{o_.resolvConf};
    watcher_ = std::make_unique<ResolvConfWatcher>(files, o_.clusterDns);
    KILN_RETURN_IF_ERROR(watcher_->load(!o_.resolvConf.empty()));
    const std::vector<std::string>& upstreams = watcher_->upstreams();
    const std::string& source = watcher_->source();
    if (upstreams.empty()) {
      ctx.logger().warn("no usable upstream resolver: names outside the cluster get SERVFAIL",
                        {{"resolv_conf", source}});
    }

    KILN_RETURN_IF_ERROR(ensureDummy(o_.interfaceName, o_.clusterDns));
    dummyMade_ = true;

    services_ =
        std::make_unique<client::Informer>(client::makeListWatch(*api_, res("", "v1", "services")));
    slices_ = std::make_unique<client::Informer>(
        client::makeListWatch(*api_, res("discovery.k8s.io", "v1", "endpointslices")));
    namespaces_ = std::make_unique<client::Informer>(
        client::makeListWatch(*api_, res("", "v1", "namespaces"), "", true));
    namespaces_->setTransform(client::metadataOnly);

    ResolverConfig rc;
    rc.zone = o_.clusterDomain;
    rc.dnsIp = o_.clusterDns;
    rc.reverseCidrs = o_.serviceCidrs;
    rc.reverseCidrs.insert(rc.reverseCidrs.end(), o_.clusterCidrs.begin(), o_.clusterCidrs.end());
    resolver_ = std::make_unique<Resolver>(rc, [this] {
      ClusterObjects c;
      c.services = services_->list();
      c.endpointSlices = slices_->list();
      c.namespaces = namespaces_->list();
      return c;
    });
    auto dirty = [this](const client::Object&) { resolver_->markDirty(); };
    auto dirty2 = [this](const client::Object&, const client::Object&) { resolver_->markDirty(); };
    slices_->addHandlers({dirty, dirty2, dirty});
    namespaces_->addHandlers({dirty, dirty2, dirty});
    services_->addHandlers({dirty, dirty2, [this](const client::Object& o) {
                              resolver_->markDirty();
                              if (client::objectKey(*o) == "kube-system/kube-dns") wakeKeeper();
                            }});
    services_->start();
    slices_->start();
    namespaces_->start();
    for (auto* inf : {services_.get(), slices_.get(), namespaces_.get()}) {
      if (!inf->waitForSync(30s)) return unavailable("DNS: informers did not sync in 30 s");
    }

    cache_ = std::make_unique<ResponseCache>();
    DnsServerOptions so;
    so.address = o_.clusterDns;
    so.port = o_.port;
    so.upstreams = upstreams;
    so.metricsPort = o_.metricsPort;
    server_ = std::make_unique<DnsServer>(io(), *resolver_, *cache_, so);
    if (Status s = server_->start(); !s.ok()) {
      if (s.code() != Code::kAlreadyExists) return s;
      // Another server on this node (a second kiln server in the same network namespace)
      // serves the address: leave it, and its interface, to that one.
      ctx.logger().warn("the cluster DNS address is served by another process; not serving",
                        {{"error", s.message()}});
      server_.reset();
      dummyMade_ = false;
    }
    keeper_ = std::thread([this] { keepService(); });
    ctx.logger().info("cluster DNS serving",
                      {{"address", o_.clusterDns + ":" + std::to_string(o_.port)},
                       {"metrics", server_ && server_->metricsPort()
                                       ? "http://" + o_.clusterDns + ":" +
                                             std::to_string(server_->metricsPort()) + "/metrics"
                                       : std::string("none")},
                       {"domain", o_.clusterDomain},
                       {"interface", o_.interfaceName},
                       {"upstreams", static_cast<int64_t>(upstreams.size())},
                       {"resolv_conf", source}});
    if (server_) {
      pollTimer_ = std::make_unique<boost::asio::steady_timer>(io());
      schedulePoll();
    }
    return Status::Ok();
  }

  void shutdown() override {
    if (pollTimer_) pollTimer_->cancel();
    if (server_) server_->stop();
    cleanup();
  }

 private:
  // CoreDNS re-reads the resolv.conf its forward plugin names when it reloads; here the file
  // is watched (stat every resolvConfPoll) and a change of nameservers applies at once.
  void schedulePoll() {
    pollTimer_->expires_after(o_.resolvConfPoll);
    pollTimer_->async_wait([this](boost::system::error_code ec) {
      if (ec || !server_) return;
      std::vector<std::string> before = watcher_->upstreams();
      if (watcher_->poll()) {
        server_->setUpstreams(watcher_->upstreams());
        auto join = [](const std::vector<std::string>& v) {
          std::string out;
          for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
          return out;
        };
        log_.info("upstream resolvers changed", {{"resolv_conf", watcher_->source()},
                                                 {"from", join(before)},
                                                 {"to", join(watcher_->upstreams())}});
      }
      schedulePoll();
    });
  }

  void wakeKeeper() {
    std::lock_guard lock(mu_);
    wake_ = true;
    cv_.notify_all();
  }

  // Keeps kube-system/kube-dns: created when missing (at start, and when deleted).
  void keepService() {
    const auto& svcs = res("", "v1", "services");
    while (true) {
      std::chrono::milliseconds next = 30s;
      if (!services_->get("kube-system/kube-dns")) {
        auto made = api_->create(svcs, "kube-system", kubeDnsService(o_.clusterDns));
        if (!made.ok() && made.status().code() != Code::kAlreadyExists) {
          log_.warn("creating the kube-dns Service failed, retrying",
                    {{"error", made.status().message()}});
          next = 2s;
        }
      }
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, next, [this] { return stop_ || wake_; });
      if (stop_) return;
      wake_ = false;
    }
  }

  void cleanup() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    if (keeper_.joinable()) keeper_.join();
    for (auto* inf : {services_.get(), slices_.get(), namespaces_.get()}) {
      if (inf) inf->stop();
    }
    if (dummyMade_) {
      dummyMade_ = false;
      if (Status s = removeDummy(o_.interfaceName); !s.ok()) {
        log_.warn("removing the DNS interface failed",
                  {{"interface", o_.interfaceName}, {"error", s.message()}});
      }
    }
  }

  DnsOptions o_;
  log::Logger log_;
  std::unique_ptr<client::ApiClient> api_;
  std::unique_ptr<client::Informer> services_, slices_, namespaces_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<ResponseCache> cache_;
  std::unique_ptr<DnsServer> server_;
  std::unique_ptr<ResolvConfWatcher> watcher_;
  std::unique_ptr<boost::asio::steady_timer> pollTimer_;
  std::thread keeper_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, wake_ = false;
  bool dummyMade_ = false;
};

}  // namespace

std::unique_ptr<common::Component> makeDnsComponent(DnsOptions options) {
  return std::make_unique<DnsComponent>(std::move(options));
}

}  // namespace kiln::dns
