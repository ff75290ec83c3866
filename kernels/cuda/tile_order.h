// The order in which the flash kernels' blocks start. Each block owns one tile (a query tile, or
// the dk/dv kernel's key block) of one (batch, head) pair, and under a causal mask tiles differ in
// length: the last query tile walks every key, the first one tile. Blocks start in the order of
// their linear index, so the grid is one-dimensional and laid out here:
// - longest first: every pair's longest tile (rank 0) starts before any pair's second, so the
//   last blocks to start are the shortest and the grid ends without a tail;
// - in groups of pairs: over the whole grid, the blocks running together would read the
//   operands of every pair at once, more than the L2 cache holds at long sequences; a group's
//   pairs, whose shared operands fit half of it, start all their tiles before the next group's.
//   Groups differ in size by one pair at most (a small last group would start its longest tiles
//   late and leave a tail again).
// By a list-scheduling model of the gpu-scale and benchmark shapes (tiles of 128 or 64 rows, one
// to three blocks per SM on 132 SMs), the (pair, tile) order the grids had before ends 3 to 26%
// past the ideal makespan, this one 0.5 to 3%.
// Pure arithmetic for the host and the device (tests check it on the CPU).
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__CUDACC__)
#define LATTE_TILE_ORDER_FN __host__ __device__ inline
#else
#define LATTE_TILE_ORDER_FN inline
#endif

namespace latte::kernels::cuda {

struct TileSlot {
  int rank;  // 0: the pair's first tile to start (the longest)
  int pair;  // batch * heads + head
};

// Block `block` of a grid of tiles x pairs blocks started in `groups` groups of pairs: the first
// pairs % groups groups hold pairs / groups + 1 pairs, the others pairs / groups.
LATTE_TILE_ORDER_FN TileSlot tile_slot(int block, int tiles, int pairs, int groups) {
  const int small = pairs / groups, large_groups = pairs % groups;
  const int large_blocks = large_groups * (small + 1) * tiles;
  int size, first, within;
  if (block < large_blocks) {
    size = small + 1;
    const int g = block / (size * tiles);
    first = g * size;
    within = block - g * size * tiles;
  } else {
    size = small;
    const int rest = block - large_blocks, g = rest / (size * tiles);
    first = large_groups * (small + 1) + g * size;
    within = rest - g * size * tiles;
  }
  return {within / size, first + within % size};
}

// How many groups: the fewest whose pairs each share at most half of `l2_bytes` when every
// pair's blocks read `pair_bytes` in common; at least one, at most one per pair.
inline int tile_groups(int64_t pairs, int64_t pair_bytes, int64_t l2_bytes) {
  const int64_t per_group = std::max<int64_t>(l2_bytes / 2 / std::max<int64_t>(pair_bytes, 1), 1);
  return static_cast<int>(
      std::clamp<int64_t>((pairs + per_group - 1) / per_group, 1, std::max<int64_t>(pairs, 1)));
}

}  // namespace latte::kernels::cuda

#undef LATTE_TILE_ORDER_FN
