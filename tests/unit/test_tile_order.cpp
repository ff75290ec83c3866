// The flash kernels' block order (kernels/cuda/tile_order.h), checked on the CPU: every (tile,
// pair) is one block's, groups of pairs start one after the other and differ in size by one pair
// at most, and within a group every pair's rank r starts before any pair's rank r + 1.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "kernels/cuda/tile_order.h"

using latte::kernels::cuda::tile_groups;
using latte::kernels::cuda::tile_slot;
using latte::kernels::cuda::TileSlot;

TEST_CASE("tile_slot starts blocks longest first within balanced groups of pairs") {
  struct Grid {
    int tiles, pairs, groups;
  };
  for (const auto& [tiles, pairs, groups] : std::vector<Grid>{
           {8, 256, 3}, {8, 256, 1}, {3, 10, 4}, {5, 7, 7}, {1, 9, 2}, {17, 5, 2}, {32, 64, 6}}) {
    INFO("tiles " << tiles << ", pairs " << pairs << ", groups " << groups);
    std::set<std::pair<int, int>> seen;
    std::map<int, int> group_of;  // pair -> the group it started in (groups numbered in order)
    std::vector<int> group_sizes;
    int previous_rank = 0;
    for (int block = 0; block < tiles * pairs; ++block) {
      const TileSlot s = tile_slot(block, tiles, pairs, groups);
      REQUIRE(s.rank >= 0);
      REQUIRE(s.rank < tiles);
      REQUIRE(s.pair >= 0);
      REQUIRE(s.pair < pairs);
      CHECK(seen.insert({s.rank, s.pair}).second);
      const bool new_pair = group_of.count(s.pair) == 0;
      if (new_pair && s.rank == 0 && (group_sizes.empty() || previous_rank > 0)) {
        group_sizes.push_back(0);  // a rank-0 block after higher ranks opens the next group
        previous_rank = 0;
      }
      if (new_pair) {
        REQUIRE(s.rank == 0);  // a pair's first block is its longest tile
        group_of[s.pair] = static_cast<int>(group_sizes.size()) - 1;
        ++group_sizes.back();
      }
      CHECK(group_of[s.pair] == static_cast<int>(group_sizes.size()) - 1);  // groups in turn
      CHECK(s.rank >= previous_rank);  // within a group, ranks never go back
      previous_rank = s.rank;
    }
    CHECK(static_cast<int>(seen.size()) == tiles * pairs);
    CHECK(static_cast<int>(group_sizes.size()) == (tiles > 1 ? groups : 1));
    if (tiles > 1) {
      const auto [smallest, largest] = std::minmax_element(group_sizes.begin(), group_sizes.end());
      CHECK(*largest - *smallest <= 1);
    }
  }
}

TEST_CASE("tile_groups is the fewest groups whose shared operands fit half of the L2") {
  CHECK(tile_groups(256, 256 * 1024, 50 << 20) == 3);  // 100 pairs per 25 MiB: 256 in 3 groups
  CHECK(tile_groups(64, 2 << 20, 50 << 20) == 6);      // 12 per group
  CHECK(tile_groups(8, 1024, 50 << 20) == 1);          // all pairs fit: one group
  CHECK(tile_groups(8, 100 << 20, 50 << 20) == 8);     // one pair exceeds it: one pair per group
  CHECK(tile_groups(8, 0, 0) == 8);
}
