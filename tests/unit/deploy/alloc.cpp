// predict() allocates nothing: every operator new and malloc-family call of the process is counted while a
// flag is set, around predict(). A second case allocates on purpose inside the same counting window and must
// be seen, so the counter is known to work (the zero is not an artefact of the counting).
#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#include "fnn/deploy/freeze.hpp"
#include "fnn/fnn.hpp"
#include "helpers.hpp"

namespace {
[[maybe_unused]] bool counting = false;
std::size_t allocations = 0;
[[maybe_unused]] void note() {
  if (counting) ++allocations;
}
}  // namespace

// Under AddressSanitizer the sanitizer owns malloc and operator new: replacing them would break it, so the
// counting (and both cases) is compiled out and the cases are reported as skipped.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FNN_DEPLOY_NO_COUNTING 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FNN_DEPLOY_NO_COUNTING 1
#endif
#endif
#if defined(FNN_DEPLOY_NO_COUNTING)
constexpr bool can_count = false;
#else
constexpr bool can_count = true;

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);
extern "C" void* __libc_memalign(std::size_t, std::size_t);
extern "C" void __libc_free(void*);

extern "C" void* malloc(std::size_t n) {
  note();
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t n, std::size_t s) {
  note();
  return __libc_calloc(n, s);
}
extern "C" void* realloc(void* p, std::size_t n) {
  note();
  return __libc_realloc(p, n);
}
extern "C" void* aligned_alloc(std::size_t a, std::size_t n) {
  note();
  return __libc_memalign(a, n);
}
extern "C" int posix_memalign(void** p, std::size_t a, std::size_t n) {
  note();
  *p = __libc_memalign(a, n);
  return *p ? 0 : 12;
}
void* operator new(std::size_t n) {
  note();
  if (void* p = __libc_malloc(n ? n : 1)) return p;
  throw std::bad_alloc{};
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  note();
  if (void* p = __libc_memalign(std::size_t(a), n ? n : 1)) return p;
  throw std::bad_alloc{};
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
#endif

namespace {
using net_t = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<256>,
                              fnn::batch_norm, fnn::gelu, fnn::dense<10>>;

// Runs f with counting on; returns the number of allocations it made.
template <class F>
std::size_t allocations_in(F&& f) {
  allocations = 0;
  counting = true;
  f();
  counting = false;
  return allocations;
}
void* volatile sink = nullptr;  // keeps the deliberate allocations from being optimized away
}  // namespace

BOOST_AUTO_TEST_SUITE(allocation)

BOOST_AUTO_TEST_CASE(predict_allocates_nothing, *boost::unit_test::enable_if<can_count>()) {
  net_t net{fnn::seed{1}};
  fnn_deploy_test::randomize(net, 2);
  const auto m = fnn::deploy::freeze<fnn::deploy::static_batch<2>>(net);
  const auto x = fnn_deploy_test::random_input<float>(2 * 784, 3);
  std::vector<float> y(2 * 10);
  const std::size_t n = allocations_in([&] {
    for (int i = 0; i < 3; ++i) m->predict(x.data(), y.data());
    (void)m->predict_rows(x.data(), 1, y.data());
  });
  BOOST_TEST(n == 0u);
  BOOST_TEST(y[0] == y[0]);  // ran (not NaN)
}

// The counter's own check: the same window with an allocation in it counts it, through each route.
BOOST_AUTO_TEST_CASE(the_counter_sees_an_added_allocation, *boost::unit_test::enable_if<can_count>()) {
  BOOST_TEST(allocations_in([] { sink = std::malloc(16); }) == 1u);
  std::free(sink);
  BOOST_TEST(allocations_in([] { sink = ::operator new(16); }) == 1u);
  ::operator delete(sink);
  BOOST_TEST(allocations_in([] {
               std::vector<float> v(1000);
               sink = v.data();
             }) == 1u);
  net_t net{fnn::seed{1}};  // and the network's own inference, which does allocate, is seen
  const auto x = fnn_deploy_test::random_input<float>(2 * 784, 3);
  const std::size_t n = allocations_in([&] { (void)net.infer(fnn::const_matrix_view<float>(x.data(), 2, 784)); });
  BOOST_TEST(n > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
