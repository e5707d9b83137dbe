// The device check as a hosted program (aarch64 under qemu-user, or x86 natively): one pass/fail line, the
// exit status is the result.
#include <cstdio>

#include "device_check.hpp"

int main() {
  const auto r = device_check::run();
#if defined(FNN_DEVICE_EXPECT_EXACT) && !defined(FNN_DEVICE_SELF_TEST)
  // Same compiler, same C library as the reference: nothing may differ, not even in the last bit.
  const bool ok = device_check::passed(r) && r.exact == unsigned(r.images * 10);
#else
  const bool ok = device_check::passed(r);
#endif
  std::printf(
      "deploy%s %s: %d images, argmax mismatches %d, out of tolerance %d, exact logits %u/%d, worst %u ulp, "
      "right %d\n",
      device_check::self_test ? " self test" : "", ok ? "pass" : "FAIL", r.images, r.argmax_mismatches,
      r.out_of_tolerance, unsigned(r.exact), r.images * 10, unsigned(r.worst_ulps), r.right);
  return ok ? 0 : 1;
}
