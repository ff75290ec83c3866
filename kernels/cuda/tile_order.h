// The order in which the flash kernels' blocks start. Each block owns one tile (a query tile, or
// the dk/dv kernel's key block) of one (batch, head) pair, and under a causal mask tiles differ in
// length: the last query tile walks every key, the first one tile. Blocks start in the order of
// their linear index, so the grid is one-dimensional and laid out here:
// - longest first: every pair's longest tile (rank 0) starts before any pair's second, so the
//   last blocks to start are the shortest and the grid ends without a tail (in (pair, tile)
//   order the longest tiles of the last pairs started last: 3 to 26% over the ideal makespan by
//   a list-scheduling model of the gpu-scale and benchmark shapes, against under 1%);
// - in groups of pairs: over the whole grid, the blocks running together would read the
//   operands of every pair at once, more than the L2 cache holds at long sequences; a group's
//   pairs, whose shared operands fit half of it, start all their tiles before the next group.
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

// Block `block` of a grid of tiles x pairs blocks started in groups of `group` pairs (the last
// group may hold fewer).
LATTE_TILE_ORDER_FN TileSlot tile_slot(int block, int tiles, int pairs, int group) {
  const int per_group = group * tiles;
  const int g = block / per_group, first = g * group;
  const int in_group = pairs - first < group ? pairs - first : group;
  const int within = block - g * per_group;
  return {within / in_group, first + within % in_group};
}

// Pairs per group: as many as share half of `l2_bytes` when each pair's blocks read
// `pair_bytes` in common, at least one, at most all.
inline int tile_group(int64_t pairs, int64_t pair_bytes, int64_t l2_bytes) {
  const int64_t fit = l2_bytes / 2 / std::max<int64_t>(pair_bytes, 1);
  return static_cast<int>(std::clamp<int64_t>(fit, 1, std::max<int64_t>(pairs, 1)));
}

}  // namespace latte::kernels::cuda

#undef LATTE_TILE_ORDER_FN
