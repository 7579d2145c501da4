// keel-pack — the module author's tool. Usable without building keel:
//   keel-pack keygen -p PUB -s SEC [--force]
//   keel-pack pack --manifest module.json --lib libX.so [--asset FILE]... --key SEC -o OUT.keelpkg
//   keel-pack sign --key SEC FILE [-t "trusted comment"]
//   keel-pack verify --pub PUB FILE
//   keel-pack install --home KEEL_HOME PKG
//   keel-pack index DIR --key SEC [--name NAME] [--version N] [--expires-days D]
//                   [--yank NAME@VERSION]... [--unyank NAME@VERSION]...
// Secret keys are minisign's own format; an encrypted one takes its password from
// KEEL_SIGN_PASSWORD or a prompt.
#include <keel/market/archive.hpp>
#include <keel/market/binding.hpp>
#include <keel/market/minisign.hpp>
#include <keel/market/sha256.hpp>
#include <keel/market/store.hpp>

#include "index_command.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace keel::market;

namespace {

struct Args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> options;
  bool has(const std::string& k) const { return options.count(k) != 0; }
  std::string get(const std::string& k) const {
    auto it = options.find(k);
    if (it == options.end()) throw std::runtime_error("missing option " + k);
    return it->second;
  }
};

Args parse(int argc, char** argv, int first, const std::vector<std::string>& flags) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 1 && s[0] == '-') {
      bool flag = std::find(flags.begin(), flags.end(), s) != flags.end();
      if (flag) {
        a.options.emplace(s, "");
      } else {
        if (i + 1 >= argc) throw std::runtime_error("option " + s + " needs a value");
        a.options.emplace(s, argv[++i]);
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

void write_file(const fs::path& path, const std::string& text, bool secret) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  if (secret) fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  fs::rename(tmp, path);
}

std::string read_password() {
  if (const char* env = std::getenv("KEEL_SIGN_PASSWORD")) return env;
  std::cerr << "Password: " << std::flush;
  termios old{};
  bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string pw;
  std::getline(std::cin, pw);
  if (tty) tcsetattr(STDIN_FILENO, TCSANOW, &old);
  std::cerr << "\n";
  return pw;
}

SecretKey load_secret(const fs::path& path) {
  try {
    return SecretKey::load(path);
  } catch (const SignatureError& e) {
    if (std::string(e.what()).find("password") == std::string::npos) throw;
    return SecretKey::load(path, read_password());
  }
}

int keygen(const Args& a) {
  fs::path pub = a.get("-p"), sec = a.get("-s");
  if (!a.has("--force") && (fs::exists(pub) || fs::exists(sec)))
    throw std::runtime_error("key files exist; pass --force to overwrite");
  if (a.has("--force") && fs::exists(sec) && fs::exists(pub)) return 0;  // keep an existing pair stable
  auto kp = generate_keypair();
  if (!sec.parent_path().empty()) fs::create_directories(sec.parent_path());
  if (!pub.parent_path().empty()) fs::create_directories(pub.parent_path());
  write_file(sec, kp.secret_key.to_file(), true);
  write_file(pub, kp.public_key.to_file(), false);
  std::cout << "key " << kp.public_key.key_id_hex() << "\npublic key: " << pub.string() << "\nsecret key: " << sec.string()
            << "\n";
  return 0;
}

int pack(const Args& a) {
  PackInput in{a.get("--manifest"), a.get("--lib"), {}};
  for (auto [it, end] = a.options.equal_range("--asset"); it != end; ++it) in.assets.push_back(it->second);
  fs::path out = a.get("-o");
  auto manifest = ModuleManifest::load(in.manifest);
  if (fs::is_directory(out)) out /= manifest.name + "-" + manifest.version + ".keelpkg";
  pack_module(in, load_secret(a.get("--key")), out);
  std::cout << out.string() << "\n";
  return 0;
}

int sign_cmd(const Args& a) {
  if (a.positional.size() != 1) throw std::runtime_error("usage: keel-pack sign --key SEC FILE");
  fs::path file = a.positional[0];
  std::string comment;
  if (a.has("-t")) {
    comment = a.get("-t");
  } else if (auto index = keel::pack::index_binding_of(file)) {
    comment = *index;  // a marketplace index: bind its name, index_version and sha256
  } else {
    // A package: bind the signature to the name and version inside it.
    auto bytes = read_file_bytes(file);
    fs::path tmp = fs::temp_directory_path() / ("keel-pack-" + std::to_string(getpid()));
    fs::remove_all(tmp);
    extract_archive(bytes, tmp);
    auto manifest = ModuleManifest::load(tmp / "module.json");
    fs::remove_all(tmp);
    comment = package_binding(manifest, sha256_hex(bytes));
  }
  auto sig = sign_file(load_secret(a.get("--key")), file, comment);
  auto sig_path = file;
  sig_path += ".minisig";
  write_file(sig_path, sig.to_file(), false);
  std::cout << sig_path.string() << "\n";
  return 0;
}

int verify_cmd(const Args& a) {
  if (a.positional.size() != 1) throw std::runtime_error("usage: keel-pack verify --pub PUB FILE");
  fs::path file = a.positional[0];
  auto sig_path = file;
  sig_path += ".minisig";
  auto comment = verify_file(PublicKey::load(a.get("--pub")), file, Signature::load(sig_path));
  std::cout << "verified; trusted comment: " << comment << "\n";
  return 0;
}

int install(const Args& a) {
  if (a.positional.empty()) throw std::runtime_error("usage: keel-pack install --home KEEL_HOME PKG...");
  StoreLayout store{a.get("--home")};
  std::vector<std::string> warnings;
  auto trusted = load_trusted_keys(store.trusted_keys(), warnings);
  for (auto& w : warnings) std::cerr << "keel-pack: " << w << "\n";
  for (auto& pkg : a.positional) {
    auto r = install_package(pkg, store, trusted);
    std::cout << "installed " << r.module.manifest.name << " " << r.module.manifest.version << " (signed by " << r.signer
              << ")\n";
  }
  return 0;
}

int index_cmd(const Args& a) {
  if (a.positional.size() != 1) throw std::runtime_error("usage: keel-pack index DIR --key SEC");
  keel::pack::IndexOptions o;
  o.dir = a.positional[0];
  if (a.has("--name")) o.name = a.get("--name");
  if (a.has("--version")) o.version = std::stoull(a.get("--version"));
  if (a.has("--expires-days")) o.expires_days = std::stoi(a.get("--expires-days"));
  for (auto [it, end] = a.options.equal_range("--yank"); it != end; ++it) o.yank.push_back(it->second);
  for (auto [it, end] = a.options.equal_range("--unyank"); it != end; ++it) o.unyank.push_back(it->second);
  if (!o.name.empty() && !valid_module_name(o.name)) throw std::runtime_error("invalid --name '" + o.name + "'");
  keel::pack::build_index(o, load_secret(a.get("--key")), std::cout, std::cerr);
  return 0;
}

void usage() {
  std::cerr << "usage: keel-pack keygen -p PUB -s SEC [--force]\n"
               "       keel-pack pack --manifest module.json --lib LIB [--asset FILE]... --key SEC -o OUT\n"
               "       keel-pack sign --key SEC FILE [-t COMMENT]\n"
               "       keel-pack verify --pub PUB FILE\n"
               "       keel-pack install --home KEEL_HOME PKG...\n"
               "       keel-pack index DIR --key SEC [--name NAME] [--version N] [--expires-days D]\n"
               "                       [--yank NAME@VERSION]... [--unyank NAME@VERSION]...\n"
               "A FILE named *.json holding a marketplace index is signed with its index binding.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "keygen") return keygen(parse(argc, argv, 2, {"--force"}));
    if (cmd == "pack") return pack(parse(argc, argv, 2, {}));
    if (cmd == "sign") return sign_cmd(parse(argc, argv, 2, {}));
    if (cmd == "verify") return verify_cmd(parse(argc, argv, 2, {}));
    if (cmd == "install") return install(parse(argc, argv, 2, {}));
    if (cmd == "index") return index_cmd(parse(argc, argv, 2, {}));
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
      usage();
      return 0;
    }
    std::cerr << "keel-pack: unknown command '" << cmd << "'\n";
    usage();
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "keel-pack " << cmd << ": " << e.what() << "\n";
    return 1;
  }
}
