#include <keel/market/store.hpp>

namespace keel::market {

void StoreLayout::create_directories() const {
  for (auto& dir : {trusted_keys(), marketplaces(), packages(), modules(), sessions()})
    std::filesystem::create_directories(dir);
}

}  // namespace keel::market
