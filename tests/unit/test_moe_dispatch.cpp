// MoE dispatch kernels: the counting sort by expert (offsets, stability, inverse map), capacity
// drops, gather and combine against hand values, and their backward passes against finite
// differences.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/moe_dispatch.h"
#include "support/finite_difference.h"
#include "support/random_expert_ids.h"

namespace {

namespace k = latte::kernels::cpu;
using latte::test::random_expert_ids;

// The outputs of build_dispatch for one set of expert ids.
struct Dispatch {
  std::vector<int64_t> offsets, sorted, position;
  int64_t dropped = 0;
};

Dispatch dispatch(const std::vector<int32_t>& ids, int64_t top_k, int64_t n_experts,
                  int64_t capacity) {
  const int64_t n_assignments = static_cast<int64_t>(ids.size());
  Dispatch d{std::vector<int64_t>(n_experts + 1), std::vector<int64_t>(n_assignments),
             std::vector<int64_t>(n_assignments), 0};
  d.dropped = k::build_dispatch(ids.data(), n_assignments / top_k, top_k, n_experts, capacity,
                                d.offsets.data(), d.sorted.data(), d.position.data());
  return d;
}

// Five tokens, K = 2, E = 5 (expert 4 receives nothing). Assignment a = 2·token + k:
//   a:      0  1  2  3  4  5  6  7  8  9
//   expert: 2  0  0  3  2  1  0  2  3  0
// Grouped by expert, in assignment order: e0: 1 2 6 9 | e1: 5 | e2: 0 4 7 | e3: 3 8 | e4: -
const std::vector<int32_t> kIds = {2, 0, 0, 3, 2, 1, 0, 2, 3, 0};

}  // namespace

TEST_CASE("build_dispatch is a stable counting sort with offsets and an inverse map") {
  const Dispatch d = dispatch(kIds, 2, 5, k::kDroplessCapacity);
  CHECK(d.dropped == 0);
  CHECK(d.offsets == std::vector<int64_t>{0, 4, 5, 8, 10, 10});
  CHECK(d.sorted == std::vector<int64_t>{1, 2, 6, 9, 5, 0, 4, 7, 3, 8});
  // position is the inverse of sorted: a -> its row among the sorted rows.
  CHECK(d.position == std::vector<int64_t>{5, 0, 1, 8, 6, 4, 2, 7, 9, 3});
}

TEST_CASE("build_dispatch drops assignments beyond the capacity in token order and counts them") {
  // Capacity 2: expert 0 keeps a = 1, 2 and drops 6, 9; expert 2 keeps 0, 4 and drops 7;
  // experts 1 and 3 fit. Kept rows first, then the dropped ones grouped by expert.
  const Dispatch d = dispatch(kIds, 2, 5, 2);
  CHECK(d.dropped == 3);
  CHECK(d.offsets == std::vector<int64_t>{0, 2, 3, 5, 7, 7});
  CHECK(d.sorted == std::vector<int64_t>{1, 2, 5, 0, 4, 3, 8, 6, 9, 7});
  CHECK(d.position == std::vector<int64_t>{3, 0, 1, 5, 4, 2, -1, -1, 6, -1});

  // Capacity 0 drops everything; a capacity above every load drops nothing.
  const Dispatch none = dispatch(kIds, 2, 5, 0);
  CHECK(none.dropped == 10);
  CHECK(none.offsets == std::vector<int64_t>(6, 0));
  CHECK(none.sorted == std::vector<int64_t>{1, 2, 6, 9, 5, 0, 4, 7, 3, 8});
  CHECK(std::all_of(none.position.begin(), none.position.end(), [](int64_t p) { return p < 0; }));
  CHECK(dispatch(kIds, 2, 5, 4).dropped == 0);
}

TEST_CASE("build_dispatch: random ids give a permutation, sorted by expert, stable") {
  const int64_t n = 37, top_k = 3, e = 7;
  const std::vector<int32_t> ids = random_expert_ids(n, top_k, e, 5);
  for (int64_t capacity : {k::kDroplessCapacity, int64_t{9}, int64_t{14}}) {
    CAPTURE(capacity);
    const Dispatch d = dispatch(ids, top_k, e, capacity);
    std::vector<int64_t> seen = d.sorted;
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(n * top_k);
    std::iota(all.begin(), all.end(), int64_t{0});
    CHECK(seen == all);
    int64_t dropped = 0;
    for (int64_t x = 0; x < e; ++x) {
      const int64_t routed = std::count(ids.begin(), ids.end(), static_cast<int32_t>(x));
      const int64_t kept = d.offsets[x + 1] - d.offsets[x];
      CHECK(kept == (capacity < 0 ? routed : std::min(routed, capacity)));
      dropped += routed - kept;
      for (int64_t p = d.offsets[x]; p < d.offsets[x + 1]; ++p) {
        CHECK(ids[d.sorted[p]] == x);
        CHECK(d.position[d.sorted[p]] == p);
        if (p > d.offsets[x]) CHECK(d.sorted[p - 1] < d.sorted[p]);  // token order within e
      }
    }
    CHECK(d.dropped == dropped);
  }
}

TEST_CASE("build_dispatch rejects an expert id outside 0..E-1") {
  const std::vector<int32_t> bad = {0, 1, 4, 2};
  std::vector<int64_t> offsets(5), sorted(4), position(4);
  CHECK_THROWS_WITH_AS(k::build_dispatch(bad.data(), 2, 2, 4, k::kDroplessCapacity, offsets.data(),
                                         sorted.data(), position.data()),
                       doctest::Contains("expert id 4 of token 1"), latte::Error);
}

TEST_CASE("expert_capacity is ceil(factor * N * K / E), dropless for factor <= 0") {
  CHECK(k::expert_capacity(5, 2, 4, 1.0) == 3);   // ceil(2.5)
  CHECK(k::expert_capacity(5, 2, 4, 1.25) == 4);  // ceil(3.125)
  CHECK(k::expert_capacity(8, 2, 4, 1.0) == 4);   // exactly 4
  CHECK(k::expert_capacity(5, 2, 4, 0.0) == k::kDroplessCapacity);
}

TEST_CASE("gather_rows and combine_forward on the hand-built dispatch") {
  // x[t] = (10t, 10t + 1). Dropless: the sorted rows hold tokens a/2 for a = 1 2 6 9 5 0 4 7 3 8.
  const int64_t n = 5, top_k = 2, dim = 2;
  std::vector<double> x(n * dim);
  for (int64_t t = 0; t < n; ++t) x[t * dim] = 10.0 * t, x[t * dim + 1] = 10.0 * t + 1;
  const Dispatch d = dispatch(kIds, top_k, 5, k::kDroplessCapacity);
  std::vector<double> x_sorted(n * top_k * dim, -1);
  k::gather_rows(x.data(), d.sorted.data(), d.offsets[5], top_k, dim, x_sorted.data());
  const std::vector<int64_t> tokens = {0, 1, 3, 4, 2, 0, 2, 3, 1, 4};
  for (size_t p = 0; p < tokens.size(); ++p) {
    CHECK(x_sorted[p * dim] == 10.0 * tokens[p]);
    CHECK(x_sorted[p * dim + 1] == 10.0 * tokens[p] + 1);
  }

  // Combine with capacity 2: expert outputs are row p -> (p, -p); weights w[a] = a + 1.
  // Token 3 has a = 6 (dropped) and a = 7 (dropped): y = (0, 0).
  // Token 0: a = 0 at row 3, a = 1 at row 0: y = 1·(3, -3) + 2·(0, 0) = (3, -3).
  // Token 1: a = 2 at row 1, a = 3 at row 5: y = 3·(1, -1) + 4·(5, -5) = (23, -23).
  // Token 2: a = 4 at row 4, a = 5 at row 2: y = 5·(4, -4) + 6·(2, -2) = (32, -32).
  // Token 4: a = 8 at row 6, a = 9 dropped: y = 9·(6, -6) = (54, -54).
  // combine writes all of y, which starts at 100 everywhere.
  const Dispatch capped = dispatch(kIds, top_k, 5, 2);
  std::vector<double> out(capped.offsets[5] * dim), w(n * top_k), y(n * dim, 100.0);
  for (int64_t p = 0; p < capped.offsets[5]; ++p) out[p * dim] = p, out[p * dim + 1] = -p;
  std::iota(w.begin(), w.end(), 1.0);
  k::combine_forward(out.data(), w.data(), capped.position.data(), n, top_k, dim, y.data());
  const std::vector<double> expected = {3, -3, 23, -23, 32, -32, 0, 0, 54, -54};
  CHECK(y == expected);  // small integers: exact
}

TEST_CASE("gather_rows_backward matches finite differences, dropped rows get zeros") {
  const int64_t n = 9, top_k = 2, e = 4, dim = 3;
  const std::vector<int32_t> ids = random_expert_ids(n, top_k, e, 7);
  const Dispatch d = dispatch(ids, top_k, e, 3);
  REQUIRE(d.dropped > 0);  // 18 assignments over 4 experts of capacity 3
  const int64_t kept = d.offsets[e];
  std::vector<double> x = latte::test::random_vector(n * dim, 8);
  const std::vector<double> upstream = latte::test::random_vector(kept * dim, 9);
  auto loss = [&] {
    std::vector<double> x_sorted(kept * dim);
    k::gather_rows(x.data(), d.sorted.data(), kept, top_k, dim, x_sorted.data());
    double total = 0;
    for (int64_t i = 0; i < kept * dim; ++i) total += upstream[i] * x_sorted[i];
    return total;
  };
  std::vector<double> dx(n * dim, 7.0);  // overwritten
  k::gather_rows_backward(upstream.data(), d.position.data(), n, top_k, dim, dx.data());
  const std::vector<double> numeric = latte::test::numeric_gradient(loss, x);
  // 1e-8: the loss is linear in x, so central differences are exact up to ~1e-10 rounding.
  CHECK(latte::test::max_relative_error(dx, numeric) < 1e-8);
}

TEST_CASE("combine_backward matches finite differences for expert outputs and weights") {
  const int64_t n = 8, top_k = 3, e = 5, dim = 4;
  const std::vector<int32_t> ids = random_expert_ids(n, top_k, e, 13);
  for (int64_t capacity : {k::kDroplessCapacity, int64_t{4}}) {
    CAPTURE(capacity);
    const Dispatch d = dispatch(ids, top_k, e, capacity);
    if (capacity >= 0) REQUIRE(d.dropped > 0);  // 24 assignments over 5 experts of capacity 4
    const int64_t kept = d.offsets[e];
    std::vector<double> out = latte::test::random_vector(kept * dim, 14);
    std::vector<double> w = latte::test::random_vector(n * top_k, 15);
    const std::vector<double> upstream = latte::test::random_vector(n * dim, 16);
    auto loss = [&] {
      std::vector<double> y(n * dim);
      k::combine_forward(out.data(), w.data(), d.position.data(), n, top_k, dim, y.data());
      double total = 0;
      for (int64_t i = 0; i < n * dim; ++i) total += upstream[i] * y[i];
      return total;
    };
    std::vector<double> d_out(kept * dim, 7.0), dw(n * top_k, 7.0);  // overwritten
    k::combine_backward(upstream.data(), out.data(), w.data(), d.position.data(), n, top_k, dim,
                        d_out.data(), dw.data());
    // 1e-8: the loss is bilinear, so central differences are exact up to ~1e-10 rounding.
    CHECK(latte::test::max_relative_error(d_out, latte::test::numeric_gradient(loss, out)) < 1e-8);
    CHECK(latte::test::max_relative_error(dw, latte::test::numeric_gradient(loss, w)) < 1e-8);
    for (int64_t a = 0; a < n * top_k; ++a)
      if (d.position[a] < 0) CHECK(dw[a] == 0.0);  // a dropped assignment has no effect
  }
}
