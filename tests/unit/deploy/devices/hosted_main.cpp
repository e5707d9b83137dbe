// The device check as a hosted program (aarch64 under qemu-user, or x86 natively): one pass/fail line, the
// exit status is the result.
#include <cstdio>

#if defined(FNN_DEVICE_INT8)
#include "int8_check.hpp"
#else
#include "device_check.hpp"
#endif

int main() {
  const auto r = device_check::run();
#if defined(FNN_DEVICE_EXPECT_EXACT) && !defined(FNN_DEVICE_SELF_TEST)
  // Same compiler, same C library as the reference: nothing may differ, not even in the last bit.
  const bool ok = device_check::passed(r) && r.exact == unsigned(r.images * 10);
#else
  const bool ok = device_check::passed(r);
#endif
  std::printf(
      "%s%s %s: %d images, argmax mismatches %d, out of tolerance %d, exact logits %u/%d, worst %u%s, "
      "right %d\n",
      device_check::name, device_check::self_test ? " self test" : "", ok ? "pass" : "FAIL", r.images,
      r.argmax_mismatches, r.out_of_tolerance, unsigned(r.exact), r.images * 10, unsigned(r.worst_ulps),
      device_check::worst_unit, r.right);
  return ok ? 0 : 1;
}
