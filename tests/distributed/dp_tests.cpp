// Data-parallel training over MPI, run by CTest as `mpirun -np 2 fnn_distributed_tests`. Every rank runs every
// test case; the checks never abort a case early (BOOST_CHECK, not REQUIRE), so all ranks make the same
// collective calls in the same order even when a check fails.
#define BOOST_TEST_MODULE fnn_distributed
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "fnn/distributed/data_parallel.hpp"
#include "fnn/fnn.hpp"
#include "fnn/optim/optim.hpp"

namespace {

struct mpi_fixture {
  mpi_fixture() : env(boost::unit_test::framework::master_test_suite().argc,
                      boost::unit_test::framework::master_test_suite().argv) {}
  fnn::distributed::environment env;
};
BOOST_TEST_GLOBAL_FIXTURE(mpi_fixture);

// The same data on every rank (seeded): a global batch of n rows; rank r trains on rows [r n/N, (r+1) n/N).
struct batch final {
  fnn::matrix<float> x;
  std::vector<std::int32_t> y;
};
batch make_batch(fnn::index_t n, fnn::index_t features, int classes, std::uint32_t seed) {
  batch b{fnn::matrix<float>(n, features), std::vector<std::int32_t>(std::size_t(n))};
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (fnn::index_t i = 0; i < n; ++i) {
    for (fnn::index_t j = 0; j < features; ++j) b.x(i, j) = normal(gen);
    b.y[std::size_t(i)] = std::int32_t(gen() % std::uint32_t(classes));
  }
  return b;
}
struct slice final {
  fnn::const_matrix_view<float> x;
  std::vector<std::int32_t> y;
};
slice local_slice(const batch& b, const fnn::distributed::communicator& c) {
  const fnn::index_t per = b.x.rows() / c.size(), first = per * c.rank();
  return {b.x.view().rows_slice(first, per),
          std::vector<std::int32_t>(b.y.begin() + first, b.y.begin() + first + per)};
}

template <class Net>
std::vector<float> parameters_of(Net& net) {
  std::vector<float> all;
  net.for_each_parameter([&](fnn::parameter_ref<float>& p) { all.insert(all.end(), p.value.begin(), p.value.end()); });
  return all;
}
template <class Net>
std::vector<float> gradients_of(Net& net) {
  std::vector<float> all;
  net.for_each_parameter([&](fnn::parameter_ref<float>& p) { all.insert(all.end(), p.grad.begin(), p.grad.end()); });
  return all;
}
template <class Net>
std::vector<float> statistics_of(Net& net) {
  std::vector<float> all;
  net.for_each_buffer([&](fnn::buffer_ref<float>& b) { all.insert(all.end(), b.value.begin(), b.value.end()); });
  return all;
}
double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  BOOST_CHECK_EQUAL(a.size(), b.size());
  double m = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}
double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float v : a) m = std::max(m, std::abs(double(v)));
  return m;
}

using plain_net = fnn::sequential<fnn::input<24>, fnn::dense<32>, fnn::gelu, fnn::dense<16>, fnn::tanh,
                                  fnn::dense<5>>;
// The main job's network (784-256-256-10, dense + batch_norm + gelu twice).
using main_net = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<256>,
                                 fnn::batch_norm, fnn::gelu, fnn::dense<10>>;

}  // namespace

BOOST_AUTO_TEST_CASE(runs_on_two_ranks) {
  fnn::distributed::communicator world;
  BOOST_CHECK_EQUAL(world.size(), 2);  // the CTest command line asks for -np 2
  BOOST_CHECK_EQUAL(world.sum(world.rank() + 1), 3);
}

BOOST_AUTO_TEST_CASE(construction_gives_every_rank_rank_zeros_parameters) {
  fnn::distributed::communicator world;
  plain_net net{fnn::seed{100 + std::uint64_t(world.rank())}};  // deliberately different per rank
  const auto before = world.allgather(fnn::distributed::data_parallel<plain_net>::state_checksum_of(net));
  BOOST_CHECK(before[0] != before[1]);
  fnn::distributed::data_parallel dp(net, world);
  const auto after = world.allgather(dp.state_checksum());
  BOOST_CHECK_EQUAL(after[0], after[1]);
  BOOST_CHECK_EQUAL(after[0], before[0]);
  BOOST_CHECK_NO_THROW(dp.check_replicas_identical());
}

BOOST_AUTO_TEST_CASE(two_ranks_of_half_batches_match_one_process_of_the_whole_batch) {
  fnn::distributed::communicator world;
  const batch data = make_batch(64, 24, 5, 7);
  const slice mine = local_slice(data, world);
  plain_net single{fnn::seed{3}}, shared{fnn::seed{3}};
  fnn::distributed::data_parallel dp(shared, world, {.check_replicas_every = 1});
  fnn::optim::sgd opt_single{{.lr = 0.1f, .momentum = 0.9f}}, opt_shared{{.lr = 0.1f, .momentum = 0.9f}};
  double worst_loss = 0;
  for (int step = 0; step < 20; ++step) {
    const float l1 = single.train_step(data.x.view(), data.y, fnn::loss::softmax_cross_entropy{}, opt_single);
    const float l2 = dp.train_step(mine.x, mine.y, fnn::loss::softmax_cross_entropy{}, opt_shared);
    worst_loss = std::max(worst_loss, std::abs(double(l1) - double(l2)));
  }
  const auto p1 = parameters_of(single), p2 = parameters_of(shared);
  const double diff = max_abs_difference(p1, p2);
  BOOST_TEST_MESSAGE("rank " << world.rank() << ": max |parameter difference| after 20 steps " << diff
                             << " (largest parameter " << max_abs(p1) << "), max loss difference " << worst_loss);
  BOOST_CHECK_LT(diff, 2e-5 * std::max(1.0, max_abs(p1)));
  BOOST_CHECK_LT(worst_loss, 1e-5);
  // ...and not because nothing moved: the parameters travelled far further than the tolerance.
  plain_net initial{fnn::seed{3}};
  BOOST_CHECK_GT(max_abs_difference(parameters_of(initial), p1), 1e-2);
  BOOST_CHECK_NO_THROW(dp.check_replicas_identical());
}

BOOST_AUTO_TEST_CASE(bucketed_overlapped_all_reduce_gives_the_bits_of_one_all_reduce_after_backward) {
  fnn::distributed::communicator world;
  const batch data = make_batch(128, 784, 10, 11);
  const slice mine = local_slice(data, world);
  main_net a{fnn::seed{5}}, b{fnn::seed{5}};
  // 64 KB buckets split the 784x256 weight alone into its own bucket and make several more;
  // one bucket of everything, started after the whole backward, is the plain reference.
  fnn::distributed::data_parallel overlapped(a, world, {.bucket_bytes = 64 << 10, .overlap = true});
  fnn::distributed::data_parallel plain(b, world, {.bucket_bytes = std::size_t(1) << 30, .overlap = false});
  BOOST_CHECK_GT(overlapped.bucket_count(), 3u);
  BOOST_CHECK_EQUAL(plain.bucket_count(), 1u);
  fnn::optim::adamw opt_a{{.lr = 1e-3f}}, opt_b{{.lr = 1e-3f}};
  for (int step = 0; step < 5; ++step) {
    overlapped.train_step(mine.x, mine.y, fnn::loss::softmax_cross_entropy{}, opt_a);
    plain.train_step(mine.x, mine.y, fnn::loss::softmax_cross_entropy{}, opt_b);
    const auto ga = gradients_of(a), gb = gradients_of(b);
    BOOST_CHECK(ga.size() == gb.size() && std::memcmp(ga.data(), gb.data(), ga.size() * sizeof(float)) == 0);
  }
  const auto pa = parameters_of(a), pb = parameters_of(b);
  BOOST_CHECK(std::memcmp(pa.data(), pb.data(), pa.size() * sizeof(float)) == 0);
  BOOST_CHECK(statistics_of(a) == statistics_of(b));
  BOOST_CHECK_NO_THROW(overlapped.check_replicas_identical());
}

BOOST_AUTO_TEST_CASE(batch_norm_without_sync_sees_per_rank_statistics) {
  // The main job's network, 2 ranks x 64 against 1 process x 128, 20 AdamW steps: the linear layers agree
  // only as far as per-rank batch statistics allow. This measures that gap (it is what SyncBatchNorm closes).
  fnn::distributed::communicator world;
  const batch data = make_batch(128, 784, 10, 13);
  const slice mine = local_slice(data, world);
  main_net single{fnn::seed{9}}, shared{fnn::seed{9}};
  fnn::distributed::data_parallel dp(shared, world);
  fnn::optim::adamw opt_single{{.lr = 1e-3f}}, opt_shared{{.lr = 1e-3f}};
  for (int step = 0; step < 20; ++step) {
    single.train_step(data.x.view(), data.y, fnn::loss::softmax_cross_entropy{}, opt_single);
    dp.train_step(mine.x, mine.y, fnn::loss::softmax_cross_entropy{}, opt_shared);
  }
  const double params = max_abs_difference(parameters_of(single), parameters_of(shared));
  const double stats = max_abs_difference(statistics_of(single), statistics_of(shared));
  BOOST_TEST_MESSAGE("rank " << world.rank() << ": without SyncBatchNorm, 2x64 vs 1x128 after 20 steps: max |parameter"
                             << " difference| " << params << ", max |running statistic difference| " << stats);
  BOOST_CHECK_GT(stats, 1e-4);  // per-rank batch statistics: measurably not the global ones
  BOOST_CHECK_NO_THROW(dp.check_replicas_identical());  // yet every rank holds the same state
}

BOOST_AUTO_TEST_CASE(sync_batch_norm_matches_one_process_of_the_whole_batch) {
  // The acceptance test: the main job's network, 2 ranks x 64 against 1 process x 128, 20 AdamW steps,
  // SyncBatchNorm on: parameters, running statistics and losses agree to float tolerance.
  fnn::distributed::communicator world;
  const batch data = make_batch(128, 784, 10, 13);
  const slice mine = local_slice(data, world);
  main_net single{fnn::seed{9}}, shared{fnn::seed{9}};
  fnn::distributed::data_parallel dp(shared, world, {.sync_batch_norm = true});
  // The first gradients, before AdamW's normalization can magnify rounding differences of tiny components.
  single.compute_gradients(data.x.view(), data.y, fnn::loss::softmax_cross_entropy{}, fnn::mode::train);
  dp.compute_gradients(mine.x, mine.y, fnn::loss::softmax_cross_entropy{});
  const auto g1 = gradients_of(single);
  const double grad_diff = max_abs_difference(g1, gradients_of(shared)) / max_abs(g1);
  BOOST_TEST_MESSAGE("rank " << world.rank() << ": with SyncBatchNorm, first gradients: max |difference| / max |g| "
                             << grad_diff);
  BOOST_CHECK_LT(grad_diff, 1e-5);
  fnn::optim::adamw opt_single{{.lr = 1e-3f}}, opt_shared{{.lr = 1e-3f}};
  double worst_loss = 0;
  for (int step = 0; step < 20; ++step) {
    const float l1 = single.train_step(data.x.view(), data.y, fnn::loss::softmax_cross_entropy{}, opt_single);
    const float l2 = dp.train_step(mine.x, mine.y, fnn::loss::softmax_cross_entropy{}, opt_shared);
    worst_loss = std::max(worst_loss, std::abs(double(l1) - double(l2)));
  }
  const auto p1 = parameters_of(single), s1 = statistics_of(single);
  const double params = max_abs_difference(p1, parameters_of(shared));
  const double stats = max_abs_difference(s1, statistics_of(shared));
  BOOST_TEST_MESSAGE("rank " << world.rank() << ": with SyncBatchNorm, 2x64 vs 1x128 after 20 steps: max |parameter"
                             << " difference| " << params << ", max |running statistic difference| " << stats
                             << ", max loss difference " << worst_loss);
  BOOST_CHECK_LT(params, 3e-4);  // AdamW magnifies rounding in tiny gradient components; without sync: ~4e-2
  BOOST_CHECK_LT(stats, 1e-4 * std::max(1.0, max_abs(s1)));
  BOOST_CHECK_LT(worst_loss, 1e-4);
  BOOST_CHECK_NO_THROW(dp.check_replicas_identical());
  std::int64_t tracked_single = 0, tracked_shared = 0;
  single.for_each_buffer([&](fnn::buffer_ref<float>& b) { if (b.counter) tracked_single += *b.counter; });
  shared.for_each_buffer([&](fnn::buffer_ref<float>& b) { if (b.counter) tracked_shared += *b.counter; });
  BOOST_CHECK_EQUAL(tracked_single, tracked_shared);
}

BOOST_AUTO_TEST_CASE(sync_batch_norm_in_the_unfused_reference_layers_too) {
  // The same comparison through batch_norm's own (reference) forward and backward: the unfused policy.
  using ref_net = fnn::unfused_sequential<fnn::input<40>, fnn::dense<24>, fnn::batch_norm, fnn::relu, fnn::dense<6>>;
  fnn::distributed::communicator world;
  const batch data = make_batch(32, 40, 6, 17);
  const slice mine = local_slice(data, world);
  ref_net single{fnn::seed{4}}, shared{fnn::seed{4}};
  fnn::distributed::data_parallel dp(shared, world, {.sync_batch_norm = true});
  fnn::optim::sgd opt_single{{.lr = 0.05f, .momentum = 0.9f}}, opt_shared{{.lr = 0.05f, .momentum = 0.9f}};
  for (int step = 0; step < 20; ++step) {
    single.train_step(data.x.view(), data.y, fnn::loss::softmax_cross_entropy{}, opt_single);
    dp.train_step(mine.x, mine.y, fnn::loss::softmax_cross_entropy{}, opt_shared);
  }
  const auto p1 = parameters_of(single);
  const double params = max_abs_difference(p1, parameters_of(shared));
  const double stats = max_abs_difference(statistics_of(single), statistics_of(shared));
  BOOST_TEST_MESSAGE("rank " << world.rank() << ": unfused SyncBatchNorm: max |parameter difference| " << params
                             << ", max |running statistic difference| " << stats);
  BOOST_CHECK_LT(params, 1e-4);
  BOOST_CHECK_LT(stats, 1e-4);
}

BOOST_AUTO_TEST_CASE(a_diverged_replica_is_named) {
  fnn::distributed::communicator world;
  plain_net net{fnn::seed{21}};
  fnn::distributed::data_parallel dp(net, world);
  BOOST_CHECK_NO_THROW(dp.check_replicas_identical());
  if (world.rank() == 1) net.layer<0>().weight()[5] += 1e-3f;  // as a bit flip or a missed all-reduce would
  bool named = false;
  try {
    dp.check_replicas_identical();
  } catch (const fnn::distributed_error& e) {
    named = std::string(e.what()).find("rank 1's parameters or statistics differ from rank 0's") != std::string::npos;
  }
  BOOST_CHECK(named);
}
