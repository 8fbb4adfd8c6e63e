// `kiln snapshot save|ls|restore`: backups of the datastore. save takes a consistent online copy
// of the SQLite database (SQLite's backup API; safe while the server runs), or with
// --datastore-endpoint etcd's own snapshot; restore puts a SQLite snapshot in place in a stopped
// server's data dir, keeping the previous database beside it.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/datastore_flags.h"
#include "common/fs.h"
#include "embedded/store/sqlite/sqlite_store.h"
#include "embedded/store/store_component.h"

namespace kiln::cli {
namespace {

CommandSpec snapshotSpec() {
  return {.name = "snapshot",
          .usage = "kiln snapshot save [--name NAME] | ls | restore NAME|FILE [flags]",
          .summary =
              "Back up and restore the datastore. `save` is safe while the server runs;\n"
              "`restore` needs the server stopped and keeps the replaced database.",
          .flags = {dataDirFlag(),
                    {.name = "name",
                     .defaultValue = "on-demand",
                     .help = "name prefix of a saved snapshot",
                     .valueName = "NAME",
                     .check = common::checks::nonEmpty},
                    {.name = "snapshot-dir",
                     .help = "where snapshots live (default <data-dir>/server/db/snapshots)",
                     .valueName = "DIR"},
                    datastoreFlags()[0],
                    datastoreFlags()[1],
                    datastoreFlags()[2],
                    datastoreFlags()[3]},
          .useConfigFile = false,
          .allowPositional = true};
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "node";
  return buf;
}

int fail(const std::string& message) {
  printError("snapshot", message);
  return kExitError;
}

int save(const std::string& dataDir, const std::string& dir, const std::string& name) {
  if (auto s = common::makeDirs(dir, 0700); !s.ok()) return fail(s.message());
  std::string out = dir + "/" + name + "-" + hostName() + "-" + std::to_string(::time(nullptr));
  if (auto s = store::backupSqlite(store::sqlitePath(dataDir), out); !s.ok()) {
    return fail(s.message());
  }
  auto rev = store::inspectSqlite(out);
  if (!rev.ok()) return fail(rev.status().message());
  struct stat st {};
  ::stat(out.c_str(), &st);
  std::cout << "Snapshot saved: " << out << " (revision " << *rev << ", " << st.st_size
            << " bytes)\n";
  return kExitOk;
}

// With an etcd datastore: etcd's own snapshot (Maintenance.Snapshot), a bbolt file that
// `etcdctl snapshot restore` takes.
int saveEtcd(const store::EtcdOptions& etcd, const std::string& dir, const std::string& name) {
  if (auto s = common::makeDirs(dir, 0700); !s.ok()) return fail(s.message());
  std::string out =
      dir + "/etcd-" + name + "-" + hostName() + "-" + std::to_string(::time(nullptr));
  int64_t rev = 0;
  if (auto s = store::etcdSnapshot(etcd, out, &rev); !s.ok()) return fail(s.message());
  struct stat st {};
  ::stat(out.c_str(), &st);
  std::cout << "Snapshot saved: " << out << " (revision " << rev << ", " << st.st_size
            << " bytes)\n";
  return kExitOk;
}

int list(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == ".." || n.ends_with(".tmp")) continue;
      names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  std::printf("%-48s %12s %10s  %s\n", "NAME", "SIZE", "REVISION", "CREATED");
  for (const auto& n : names) {
    std::string path = dir + "/" + n;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto rev = store::inspectSqlite(path);
    char when[32];
    std::tm tm{};
    gmtime_r(&st.st_mtime, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::printf("%-48s %12lld %10s  %s\n", n.c_str(), static_cast<long long>(st.st_size),
                rev.ok() ? std::to_string(*rev).c_str() : "invalid", when);
  }
  return kExitOk;
}

int restore(const std::string& dataDir, const std::string& dir, const std::string& what) {
  std::string file = what.find('/') == std::string::npos ? dir + "/" + what : what;
  auto rev = store::inspectSqlite(file);
  if (!rev.ok()) return fail(rev.status().message());
  if (auto s = common::makeDirs(dataDir + "/server/db", 0700); !s.ok()) return fail(s.message());
  // Holding the server's lock proves no server uses this data dir, and keeps one from starting.
  auto lock = common::FileLock::acquire(dataDir + "/server/kiln.lock");
  if (!lock.ok()) {
    return fail("a kiln server is running on " + dataDir + "; stop it before restoring");
  }
  std::string db = store::sqlitePath(dataDir);
  std::string kept;
  if (::access(db.c_str(), F_OK) == 0) {
    kept = db + ".pre-restore-" + std::to_string(::time(nullptr));
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::string from = db + suffix, to = kept + suffix;
      if (::access(from.c_str(), F_OK) == 0 && ::rename(from.c_str(), to.c_str()) != 0) {
        return fail(errnoStatus("move " + from + " aside", errno).message());
      }
    }
  }
  if (auto s = common::copyFile(file, db, 0600); !s.ok()) return fail(s.message());
  std::cout << "Restored " << file << " (revision " << *rev << ") into " << db << "\n";
  if (!kept.empty()) std::cout << "The replaced database is kept as " << kept << "\n";
  return kExitOk;
}

}  // namespace

int runSnapshot(const Args& args) {
  CommandSpec spec = snapshotSpec();
  int code = kExitOk;
  auto cl = parseOrExit(spec, args, code);
  if (!cl) return code;
  const auto& cfg = cl->config;
  const std::string dataDir = cfg.str("data-dir");
  std::string dir = cfg.str("snapshot-dir");
  if (dir.empty()) dir = dataDir + "/server/db/snapshots";
  const auto& pos = cl->positional;
  if (pos.empty()) return fail("missing subcommand: save, ls or restore (see --help)");
  auto etcd = etcdOptionsFrom(cfg);
  if (!etcd.ok()) return fail(etcd.status().message());
  if (pos[0] == "save" && pos.size() == 1) {
    if (!etcd->endpoints.empty()) return saveEtcd(*etcd, dir, cfg.str("name"));
    return save(dataDir, dir, cfg.str("name"));
  }
  if ((pos[0] == "ls" || pos[0] == "list") && pos.size() == 1) return list(dir);
  if (pos[0] == "restore") {
    if (pos.size() != 2) return fail("restore takes one snapshot name or file");
    return restore(dataDir, dir, pos[1]);
  }
  return fail("unknown subcommand \"" + pos[0] + "\" (want save, ls or restore)");
}

}  // namespace kiln::cli
