// `kiln server`: resolves the configuration, prepares the data dir, writes the kubeconfig and
// runs the server's components under the supervisor until SIGTERM/SIGINT.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "addons/dns/dns_component.h"
#include "agent/kubelet/kubelet.h"
#include "agent/kubelet/kubelet_server.h"
#include "agent/network/bridge_network.h"
#include "agent/proxy/ebpf/ebpf_dataplane.h"
#include "agent/proxy/nftables_dataplane.h"
#include "agent/proxy/proxy.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/datastore_flags.h"
#include "common/encoding.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/supervisor.h"
#include "embedded/runtime/runtime_component.h"
#include "embedded/store/sqlite/sqlite_store.h"
#include "embedded/store/store_component.h"
#include "server/apiserver/api_server.h"
#include "server/controllers/manager.h"
#include "server/pki/pki.h"
#include "server/scheduler/scheduler.h"

namespace kiln::cli {
namespace {

using common::FlagSpec;
using common::FlagType;
namespace checks = common::checks;

std::string checkDisable(std::string_view v) {
  if (v == "ingress" || v == "servicelb" || v == "dns" || v == "local-storage" || v == "metrics") {
    return "";
  }
  return "must be one of ingress, servicelb, dns, local-storage, metrics";
}

CommandSpec serverSpec() {
  CommandSpec s;
  s.name = "server";
  s.usage = "kiln server [flags]";
  s.summary =
      "Run the kiln control plane (API server, datastore, scheduler, controllers) and, unless\n"
      "--disable-agent is given, the node agent on this machine.";
  s.useConfigFile = true;
  s.flags = {
      dataDirFlag(),
      {.name = "bind-address",
       .defaultValue = "0.0.0.0",
       .help = "address the API server binds to",
       .valueName = "IP",
       .check = checks::ip},
      {.name = "https-listen-port",
       .type = FlagType::kInt,
       .defaultValue = "6443",
       .help = "API server port",
       .valueName = "PORT",
       .check = checks::port},
      {.name = "kubelet-port",
       .type = FlagType::kInt,
       .defaultValue = "10250",
       .help = "kubelet API port (logs, exec, attach, port-forward)",
       .valueName = "PORT",
       .check = checks::port},
      {.name = "advertise-address",
       .help = "address other nodes use to reach the API server",
       .valueName = "IP",
       .check = nullptr},
      {.name = "node-ip",
       .type = FlagType::kList,
       .help = "IP addresses to advertise for this node",
       .valueName = "IP",
       .check = checks::ip},
      {.name = "node-name", .help = "node name (default: the hostname)", .valueName = "NAME"},
      {.name = "tls-san",
       .type = FlagType::kList,
       .help = "extra hostnames or IPs in the serving certificate",
       .valueName = "NAME"},
      {.name = "write-kubeconfig",
       .shorthand = 'o',
       .defaultValue = "/etc/kiln/kiln.yaml",
       .help = "write the admin kubeconfig to this file",
       .valueName = "FILE",
       .check = checks::nonEmpty},
      {.name = "write-kubeconfig-mode",
       .defaultValue = "0600",
       .help = "file mode of the written kubeconfig",
       .valueName = "MODE",
       .check = checks::fileMode},
      {.name = "token",
       .shorthand = 't',
       .help = "shared secret used to join servers and agents",
       .valueName = "TOKEN"},
      {.name = "server",
       .shorthand = 's',
       .help = "server to join (for more servers)",
       .valueName = "URL",
       .check = checks::url},
      {.name = "cluster-cidr",
       .defaultValue = "10.42.0.0/16",
       .help = "pod network",
       .valueName = "CIDR",
       .check = checks::cidrList},
      {.name = "service-cidr",
       .defaultValue = "10.43.0.0/16",
       .help = "service network",
       .valueName = "CIDR",
       .check = checks::cidrList},
      {.name = "cluster-dns",
       .defaultValue = "10.43.0.10",
       .help = "cluster DNS service IP",
       .valueName = "IP",
       .check = checks::ip},
      {.name = "cluster-domain",
       .defaultValue = "cluster.local",
       .help = "cluster domain",
       .valueName = "DOMAIN",
       .check = checks::nonEmpty},
      {.name = "resolv-conf",
       .help = "resolv.conf whose nameservers the cluster DNS forwards other names to (default: "
               "/etc/resolv.conf, else systemd-resolved's upstream file)",
       .valueName = "FILE"},
      {.name = "service-node-port-range",
       .defaultValue = "30000-32767",
       .help = "port range for NodePort services",
       .valueName = "RANGE",
       .check = checks::portRange},
      {.name = "disable",
       .type = FlagType::kList,
       .help = "packaged components not to run (ingress, servicelb, dns, local-storage, metrics)",
       .valueName = "NAME",
       .check = checkDisable},
      {.name = "disable-agent",
       .type = FlagType::kBool,
       .defaultValue = "false",
       .help = "do not run the node agent"},
      {.name = "disable-controller-manager",
       .type = FlagType::kBool,
       .defaultValue = "false",
       .help = "do not run the controller manager (as k3s's flag)"},
      {.name = "disable-scheduler",
       .type = FlagType::kBool,
       .defaultValue = "false",
       .help = "do not run the scheduler (as k3s's flag)"},
      {.name = "proxy-mode",
       .help = "Service proxy data plane: ebpf or nftables (default: the best this host supports)",
       .valueName = "MODE",
       .check = [](std::string_view v) -> std::string {
         return v.empty() || v == "ebpf" || v == "nftables" ? "" : "must be ebpf or nftables";
       }},
      {.name = "proxy-ebpf-cgroup",
       .help = "cgroup v2 directory the eBPF Service proxy attaches to (default: the cgroup2 root)",
       .valueName = "DIR"},
      {.name = "container-runtime-endpoint",
       .help = "use this CRI socket (e.g. containerd) instead of the embedded runtime",
       .valueName = "PATH"},
      {.name = "cri-socket",
       .defaultValue = "/run/kiln/cri.sock",
       .help = "socket of the embedded runtime's CRI server (mode 0600)",
       .valueName = "PATH",
       .check = checks::nonEmpty},
      {.name = "cri-stream-address",
       .defaultValue = "127.0.0.1:0",
       .help = "HOST:PORT of the embedded runtime's streaming server (CRI Exec/PortForward URLs; "
               "port 0: an ephemeral one)",
       .valueName = "HOST:PORT",
       .check = checks::nonEmpty},
      {.name = "private-registry",
       .defaultValue = "/etc/kiln/registries.yaml",
       .help = "registries.yaml with mirrors, rewrites, credentials and TLS for image pulls (k3s "
               "format; a missing file means none)",
       .valueName = "FILE",
       .check = checks::nonEmpty},
      {.name = "kubelet-arg",
       .type = FlagType::kList,
       .help = "extra kubelet settings",
       .valueName = "KEY=VALUE"},
      {.name = "node-label",
       .type = FlagType::kList,
       .help = "labels for this node",
       .valueName = "KEY=VALUE",
       .check = checks::label},
      {.name = "node-taint",
       .type = FlagType::kList,
       .help = "taints for this node",
       .valueName = "KEY=VALUE:EFFECT",
       .check = checks::taint},
      {.name = "debug",
       .type = FlagType::kBool,
       .defaultValue = "false",
       .help = "log at debug level"},
      {.name = "log",
       .shorthand = 'l',
       .help = "log to this file instead of stderr",
       .valueName = "FILE"},
  };
  for (auto& f : datastoreFlags()) s.flags.push_back(std::move(f));
  return s;
}

// The admin kubeconfig, as k3s writes it: cluster, user and context all named "default".
std::string kubeconfigYaml(const std::string& serverUrl, const pki::Pki& p) {
  return "apiVersion: v1\n"
         "kind: Config\n"
         "clusters:\n"
         "- cluster:\n"
         "    certificate-authority-data: " +
         common::base64Encode(p.serverCaCertPem) +
         "\n"
         "    server: " +
         serverUrl +
         "\n"
         "  name: default\n"
         "contexts:\n"
         "- context:\n"
         "    cluster: default\n"
         "    user: default\n"
         "  name: default\n"
         "current-context: default\n"
         "preferences: {}\n"
         "users:\n"
         "- name: default\n"
         "  user:\n"
         "    client-certificate-data: " +
         common::base64Encode(p.adminCertPem) +
         "\n"
         "    client-key-data: " +
         common::base64Encode(p.adminKeyPem) + "\n";
}

}  // namespace

int runServer(const Args& args) {
  CommandSpec spec = serverSpec();
  int code = kExitOk;
  auto cl = parseOrExit(spec, args, code);
  if (!cl) return code;
  const common::Config& cfg = cl->config;

  if (auto s = log::setFile(cfg.str("log")); !s.ok()) {
    printError("server", s.message());
    return kExitError;
  }
  if (cfg.boolean("debug")) log::setLevel(log::Level::kDebug);
  log::Logger logger("server");

  // Every watch and client is a connection: lift the soft open-file limit to the hard one
  // (what k3s's service units do with LimitNOFILE).
  if (rlimit nofile{};
      ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }

  // Signals must be blocked before any thread exists so that only the supervisor sees them.
  common::blockTerminationSignals();

  const std::string dataDir = cfg.str("data-dir");
  for (const char* sub : {"server/db", "server/tls", "server/manifests", "agent/images",
                          "agent/containers", "storage"}) {
    if (auto s = common::makeDirs(dataDir + "/" + sub, 0700); !s.ok()) {
      printError("server", s.message());
      return kExitError;
    }
  }
  auto lock = common::FileLock::acquire(dataDir + "/server/kiln.lock");
  if (!lock.ok()) {
    printError("server", lock.status().message());
    return kExitError;
  }

  const std::string bind = cfg.str("bind-address");
  const auto port = static_cast<uint16_t>(cfg.integer("https-listen-port"));
  std::string host = (bind == "0.0.0.0" || bind == "::") ? "127.0.0.1" : bind;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  // The PKI (CAs, serving and admin certificates, server token) under server/tls.
  pki::PkiOptions po;
  po.dir = dataDir + "/server/tls";
  {
    std::vector<std::string> extra = cfg.list("tls-san");
    for (const auto& ip : cfg.list("node-ip")) extra.push_back(ip);
    extra.push_back(cfg.str("advertise-address"));
    extra.push_back(bind);
    pki::defaultSans(cfg.str("cluster-domain"), cfg.str("service-cidr"), extra, &po.dnsNames,
                     &po.ipAddresses);
  }
  auto tls = pki::ensurePki(po);
  if (!tls.ok()) {
    printError("server", tls.status().message());
    return kExitError;
  }
  const std::string kubeconfig = cfg.str("write-kubeconfig");
  {
    size_t slash = kubeconfig.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      if (auto s = common::makeDirs(kubeconfig.substr(0, slash), 0755); !s.ok()) {
        printError("server", s.message());
        return kExitError;
      }
    }
    unsigned mode =
        static_cast<unsigned>(std::strtoul(cfg.str("write-kubeconfig-mode").c_str(), nullptr, 8));
    auto s = common::writeFileAtomic(
        kubeconfig, kubeconfigYaml("https://" + host + ":" + std::to_string(port), *tls), mode);
    if (!s.ok()) {
      printError("server", s.message());
      return kExitError;
    }
  }
  auto etcd = etcdOptionsFrom(cfg);
  if (!etcd.ok()) {
    printError("server", etcd.status().message());
    return kExitError;
  }
  logger.info("starting kiln server",
              {{"data_dir", dataDir},
               {"config_file", cfg.configFile().empty() ? "none" : cfg.configFile()},
               {"kubeconfig", kubeconfig},
               {"pid", static_cast<int64_t>(::getpid())}});

  common::Supervisor supervisor;
  auto disabled = [&cfg](const std::string& name) {
    for (const auto& d : cfg.list("disable")) {
      if (d == name) return true;
    }
    return false;
  };
  std::unique_ptr<store::StoreComponent> datastore;
  if (!etcd->endpoints.empty()) {
    store::EtcdOptions o = *etcd;
    datastore =
        std::make_unique<store::StoreComponent>("etcd", [o]() { return store::openEtcdStore(o); });
  } else {
    store::SqliteOptions sqlite;
    sqlite.path = store::sqlitePath(dataDir);
    datastore = std::make_unique<store::StoreComponent>(
        "sqlite", [sqlite]() -> StatusOr<std::unique_ptr<store::Store>> {
          KILN_ASSIGN_OR_RETURN(auto s, store::SqliteStore::open(sqlite));
          return std::unique_ptr<store::Store>(std::move(s));
        });
  }
  store::StoreComponent* datastorePtr = datastore.get();
  supervisor.add(std::move(datastore));
  apiserver::ApiServerOptions api;
  api.bindAddress = bind;
  api.port = port;
  api.ready = [&supervisor] { return supervisor.allReady(); };
  api.dependencies = {"datastore"};
  api.store = [datastorePtr] { return datastorePtr->store(); };
  api.serviceCidr = cfg.str("service-cidr");
  api.tlsCertFile = tls->servingCertFile;
  api.tlsKeyFile = tls->servingKeyFile;
  api.clientCaFile = tls->clientCaFile;
  api.kubeletClientCertFile = tls->kubeletClientCertFile;
  api.kubeletClientKeyFile = tls->kubeletClientKeyFile;
  api.kubeletCaFile = tls->serverCaFile;
  api.tokens = {tls->token, tls->token.substr(tls->token.find("::") + 2)};
  api.nodePortRange = cfg.str("service-node-port-range");
  api.serviceAccountIssuer = "https://kubernetes.default.svc." + cfg.str("cluster-domain");
  api.serviceAccountKeyPem = tls->serviceAccountKeyPem;
  api.local = std::make_shared<apiserver::LocalApiSlot>();
  // The kubernetes Service's endpoints: --advertise-address, else the first IPv4 --node-ip,
  // else this host's address (never loopback: pods could not reach it).
  {
    std::string adv = cfg.str("advertise-address");
    for (const auto& ip : cfg.list("node-ip")) {
      if (adv.empty() && ip.find(':') == std::string::npos) adv = ip;
    }
    if (adv.empty()) adv = network::nodeIp("kiln0");
    if (adv.empty() && bind != "0.0.0.0" && bind != "::") adv = bind;
    if (adv.rfind("127.", 0) == 0 || adv == "::1") adv.clear();
    api.advertiseAddress = adv;
  }
  api.extraMetrics = [](std::string& out) { proxy::renderProxyMetrics(out); };
  auto localApi = api.local;
  supervisor.add(apiserver::makeApiServer(std::move(api)));
  if (!cfg.boolean("disable-controller-manager")) {
    supervisor.add(
        controllers::makeControllerManager({.api = localApi,
                                            .rootCaPem = tls->serverCaCertPem,
                                            .serviceAccountKeyPem = tls->serviceAccountKeyPem,
                                            .storageRoot = dataDir + "/storage",
                                            .clusterCidr = cfg.str("cluster-cidr"),
                                            .leaderElect = !etcd->endpoints.empty(),
                                            .serviceLb = !disabled("servicelb")}));
  }
  if (!cfg.boolean("disable-scheduler")) {
    supervisor.add(scheduler::makeScheduler(
        {.api = localApi, .scheduler = {}, .leaderElect = !etcd->endpoints.empty()}));
  }

  // The embedded container runtime, unless there is no agent or an external runtime is used.
  if (!cfg.boolean("disable-agent") && cfg.str("container-runtime-endpoint").empty()) {
    runtime::RuntimeOptions ro{.dataDir = dataDir,
                               .socketPath = cfg.str("cri-socket"),
                               .registriesFile = cfg.str("private-registry"),
                               .clusterCidr = cfg.str("cluster-cidr"),
                               .streamingAddress = cfg.str("cri-stream-address")};
    // Image GC thresholds and container log rotation: the kubelet settings k3s passes with
    // --kubelet-arg, applied by the runtime.
    if (auto st = runtime::applyKubeletArgs(cfg.list("kubelet-arg"), &ro); !st.ok()) {
      printError("server", st.message());
      return kExitError;
    }
    supervisor.add(runtime::makeRuntimeComponent(std::move(ro)));
  }
  // The kubelet: this machine's Node and its pods, over the embedded runtime's CRI socket or
  // --container-runtime-endpoint.
  if (!cfg.boolean("disable-agent")) {
    kubelet::KubeletOptions ko;
    ko.api = localApi;
    ko.dataDir = dataDir;
    ko.nodeName = cfg.str("node-name");
    ko.nodeIps = cfg.list("node-ip");
    ko.nodeLabels = cfg.list("node-label");
    ko.nodeTaints = cfg.list("node-taint");
    ko.clusterDns = cfg.str("cluster-dns");
    ko.clusterDomain = cfg.str("cluster-domain");
    ko.kubeletPort = static_cast<int>(cfg.integer("kubelet-port"));
    // --kubelet-arg sync-frequency, eviction-hard, eviction-pressure-transition-period,
    // pod-manifest-path, file-check-frequency (upstream's flags, kubelet.h).
    if (auto st = kubelet::applyKubeletArgs(cfg.list("kubelet-arg"), &ko); !st.ok()) {
      printError("server", st.message());
      return kExitError;
    }
    ko.criEndpoint = cfg.str("container-runtime-endpoint");
    if (ko.criEndpoint.empty()) {
      ko.criEndpoint = cfg.str("cri-socket");
      ko.dependencies = {"apiserver", "runtime"};
    }
    supervisor.add(kubelet::makeKubelet(std::move(ko)));
    // The kubelet API on :10250 (logs, exec, attach, port-forward for the API server).
    kubelet::KubeletServerOptions ks;
    ks.port = static_cast<uint16_t>(cfg.integer("kubelet-port"));
    ks.tlsCertFile = tls->kubeletServingCertFile;
    ks.tlsKeyFile = tls->kubeletServingKeyFile;
    ks.clientCaFile = tls->clientCaFile;
    ks.allowedClientCommonName = pki::kKubeletClientCommonName;
    ks.nodeName = kubelet::nodeNameOrHostname(cfg.str("node-name"));
    ks.dataDir = dataDir;
    ks.criEndpoint = cfg.str("container-runtime-endpoint").empty()
                         ? cfg.str("cri-socket")
                         : cfg.str("container-runtime-endpoint");
    if (cfg.str("container-runtime-endpoint").empty()) ks.dependencies = {"runtime"};
    supervisor.add(kubelet::makeKubeletServer(std::move(ks)));
  }
  // The cluster DNS at --cluster-dns on this node (issue 8), unless --disable dns.
  if (!cfg.boolean("disable-agent")) {
    bool dnsDisabled = false;
    for (const auto& d : cfg.list("disable")) dnsDisabled = dnsDisabled || d == "dns";
    if (!dnsDisabled) {
      dns::DnsOptions dn;
      dn.api = localApi;
      dn.clusterDns = cfg.str("cluster-dns");
      dn.clusterDomain = cfg.str("cluster-domain");
      auto cidrs = [](const std::string& v) {  // "A,B" (dual stack)
        std::vector<std::string> out;
        for (size_t p = 0; p <= v.size();) {
          size_t c = std::min(v.find(',', p), v.size());
          if (c > p) out.push_back(v.substr(p, c - p));
          p = c + 1;
        }
        return out;
      };
      dn.serviceCidrs = cidrs(cfg.str("service-cidr"));
      dn.clusterCidrs = cidrs(cfg.str("cluster-cidr"));
      dn.resolvConf = cfg.str("resolv-conf");
      supervisor.add(dns::makeDnsComponent(std::move(dn)));
    }
  }

  // The Service proxy (issue 8): ClusterIP, NodePort, LoadBalancer and external IPs on this
  // node. --proxy-mode "" (auto) is eBPF where this host supports it (check-config), else
  // nftables.
  if (!cfg.boolean("disable-agent")) {
    const std::string mode = cfg.str("proxy-mode");
    proxy::ProxyOptions po;
    po.dataPlane.cgroupPath = cfg.str("proxy-ebpf-cgroup");
    if (mode == "ebpf") {
      po.makeDataPlane = proxy::makeEbpfDataPlane;
    } else if (mode.empty()) {
      // Auto: the eBPF data plane when it loads (no separate probe: that would load the
      // programs twice at start), else nftables; the proxy logs the mode it runs.
      po.makeDataPlane = [](const proxy::DataPlaneOptions& o) {
        auto ebpf = proxy::makeEbpfDataPlane(o);
        return ebpf.ok() ? std::move(ebpf) : proxy::makeNftablesDataPlane(o);
      };
    }
    po.api = localApi;
    po.nodeName = cfg.str("node-name");
    po.dataPlane.clusterCidr = cfg.str("cluster-cidr");
    po.dataPlane.serviceCidr = cfg.str("service-cidr");
    po.dataPlane.nodeIps = cfg.list("node-ip");
    if (!disabled("dns")) po.dataPlane.skipClusterIps = {cfg.str("cluster-dns")};
    supervisor.add(proxy::makeProxy(std::move(po)));
  }

  Status result = supervisor.run();
  if (result.code() == Code::kDeadlineExceeded) {
    logger.error("exiting with components still running", {{"error", result}});
    std::_Exit(kExitError);  // stuck threads must not run destructors under us
  }
  if (!result.ok()) {
    logger.error("server failed", {{"error", result}});
    printError("server", result.message());
    return kExitError;
  }
  logger.info("server stopped");
  return kExitOk;
}

}  // namespace kiln::cli
