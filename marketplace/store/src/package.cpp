// .keelpkg: a gzip tar of module.json, the library, its .minisig and assets; the archive
// itself is signed (PKG.minisig beside it). Installing verifies before unpacking, unpacks
// into a fresh directory, verifies the library inside, and only then moves it into place.
#include <keel/market/archive.hpp>
#include <keel/market/sha256.hpp>
#include <keel/market/store.hpp>

#include "binding_check.hpp"

#include <fstream>
#include <random>

namespace keel::market {
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw StoreError("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

std::string random_suffix() {
  std::random_device rd;
  return std::to_string(rd()) + std::to_string(rd());
}

}  // namespace

fs::path pack_module(const PackInput& in, const SecretKey& key, const fs::path& out) {
  auto manifest = ModuleManifest::load(in.manifest);
  if (in.library.filename().string() != manifest.library)
    throw StoreError("library " + in.library.filename().string() + " is not the one module.json names (" +
                     manifest.library + ")");
  fs::path staging = out.parent_path() / (".pack-" + random_suffix());
  fs::create_directories(staging);
  try {
    auto lib_sig = staging / (manifest.library + ".minisig");
    auto lib_bytes = read_file_bytes(in.library);
    auto sig = sign(key, lib_bytes, module_binding(manifest, sha256_hex(lib_bytes)),
                    "keel module " + manifest.name + " " + manifest.version);
    write_text(lib_sig, sig.to_file());

    std::vector<ArchiveMember> members{{"module.json", in.manifest},
                                       {manifest.library, in.library},
                                       {manifest.library + ".minisig", lib_sig}};
    for (auto& asset : in.assets) members.push_back({"assets/" + asset.filename().string(), asset});
    write_archive(out, members);

    auto pkg_bytes = read_file_bytes(out);
    auto pkg_sig = sign(key, pkg_bytes, package_binding(manifest, sha256_hex(pkg_bytes)),
                        "keel package " + manifest.name + " " + manifest.version);
    auto sig_path = out;
    sig_path += ".minisig";
    write_text(sig_path, pkg_sig.to_file());
  } catch (...) {
    fs::remove_all(staging);
    throw;
  }
  fs::remove_all(staging);
  return out;
}

InstallResult install_package(const fs::path& package, const StoreLayout& store, const std::vector<PublicKey>& trusted,
                              bool allow_legacy) {
  if (trusted.empty()) throw StoreError("no trusted keys (add one with `keel trust add`)");
  auto sig_path = package;
  sig_path += ".minisig";
  auto bytes = read_file_bytes(package);  // verify and unpack exactly these bytes
  Signature sig;
  try {
    sig = Signature::load(sig_path);
  } catch (const std::exception& e) {
    throw StoreError("package " + package.filename().string() + " has no valid signature: " + e.what());
  }
  std::string comment;
  try {
    comment = verify_with_any(trusted, bytes, sig, VerifyOptions{allow_legacy});
  } catch (const std::exception& e) {
    throw StoreError("package " + package.filename().string() + ": " + e.what());
  }

  store.create_directories();
  fs::path staging = store.modules() / (".install-" + random_suffix());
  try {
    extract_archive(bytes, staging, ExtractLimits{});
    auto manifest = ModuleManifest::load(staging / "module.json");
    check_binding(comment, "package", manifest, sha256_hex(bytes));
    InstalledModule staged{manifest, staging};
    auto verified = verify_module_library(staged, trusted, allow_legacy);

    fs::path name_dir = store.modules() / manifest.name;
    fs::path target = name_dir / manifest.version;
    fs::create_directories(name_dir);
    bool replaced = false;
    if (fs::exists(target)) {  // swap: the old copy stays usable until the rename
      fs::path old = name_dir / (".old-" + random_suffix());
      fs::rename(target, old);
      fs::rename(staging, target);
      fs::remove_all(old);
      replaced = true;
    } else {
      fs::rename(staging, target);
    }
    return InstallResult{InstalledModule{manifest, target}, verified.signer, replaced};
  } catch (const StoreError& e) {
    fs::remove_all(staging);
    throw StoreError("package " + package.filename().string() + ": " + e.what());
  } catch (const std::exception& e) {
    fs::remove_all(staging);
    throw StoreError("package " + package.filename().string() + ": " + e.what());
  }
}

}  // namespace keel::market
