// The flash kernels' block order (kernels/cuda/tile_order.h), checked on the CPU: every (tile,
// pair) is one block's, ranks start in order within each group of pairs, groups start one after
// the other, and the group size follows the L2 budget.
#include <doctest/doctest.h>

#include <set>
#include <utility>
#include <vector>

#include "kernels/cuda/tile_order.h"

using latte::kernels::cuda::tile_group;
using latte::kernels::cuda::tile_slot;
using latte::kernels::cuda::TileSlot;

TEST_CASE("tile_slot orders blocks longest first within groups of pairs") {
  struct Grid {
    int tiles, pairs, group;
  };
  for (const auto& [tiles, pairs, group] : std::vector<Grid>{
           {8, 256, 97}, {8, 256, 256}, {3, 10, 4}, {5, 7, 1}, {1, 9, 2}, {17, 5, 5}}) {
    INFO("tiles " << tiles << ", pairs " << pairs << ", group " << group);
    std::set<std::pair<int, int>> seen;
    int previous_group = 0, previous_rank = 0;
    for (int block = 0; block < tiles * pairs; ++block) {
      const TileSlot s = tile_slot(block, tiles, pairs, group);
      REQUIRE(s.rank >= 0);
      REQUIRE(s.rank < tiles);
      REQUIRE(s.pair >= 0);
      REQUIRE(s.pair < pairs);
      CHECK(seen.insert({s.rank, s.pair}).second);
      // Groups start one after the other; within a group, ranks never go back.
      const int g = s.pair / group;
      CHECK(g >= previous_group);
      if (g == previous_group) CHECK(s.rank >= previous_rank);
      previous_rank = g == previous_group ? s.rank : 0;
      previous_group = g;
    }
    CHECK(static_cast<int>(seen.size()) == tiles * pairs);
  }
  // One group: every pair's rank-0 tile starts before any rank-1 tile.
  for (int block = 0; block < 6; ++block) CHECK(tile_slot(block, 4, 6, 6).rank == 0);
  CHECK(tile_slot(6, 4, 6, 6).rank == 1);
}

TEST_CASE("tile_group fits a group's shared operands into half of the L2") {
  CHECK(tile_group(256, 256 * 1024, 50 << 20) == 100);  // 25 MiB / 256 KiB
  CHECK(tile_group(64, 2 << 20, 50 << 20) == 12);
  CHECK(tile_group(8, 1024, 50 << 20) == 8);       // all pairs fit: one group
  CHECK(tile_group(8, 100 << 20, 50 << 20) == 1);  // one pair exceeds it: one pair per group
  CHECK(tile_group(8, 0, 0) == 1);
}
