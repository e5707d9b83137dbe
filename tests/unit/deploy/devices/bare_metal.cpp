// The device check as a bare-metal Cortex-M image (startup.hpp): runs it, prints one pass/fail line with
// integers printed by hand (newlib's printf("%f") costs ~22 KB and pulls in malloc), exits with the result.
// SysTick under -icount shift=0 (one instruction per virtual nanosecond) counts instructions: the ticks of a
// calibration loop of a known instruction count give the instructions per tick of the board (40 on mps2's 25 MHz,
// 62.5 on microbit's 16 MHz), so the count needs no board constant.
// The stack is painted at reset and scanned after the run to measure its peak.
#include <cstdint>

#if defined(FNN_DEVICE_INT8)
#include "int8_check.hpp"
#else
#include "device_check.hpp"
#endif
#include "startup.hpp"

namespace {
void write(std::uint32_t v) {
  char b[12];
  int i = 11;
  b[i] = 0;
  do {
    b[--i] = char('0' + v % 10);
  } while ((v /= 10) != 0);
  write(b + i);
}

}  // namespace

namespace {
std::uint32_t systick() { return reg(0xE000E018u); }  // counts down
std::uint32_t ticks_since(std::uint32_t t0) { return (t0 - systick()) & 0x00FFFFFFu; }

// 2 * n instructions (subs, bne per iteration) plus a few.
constexpr std::uint32_t calibration_iterations = 1000000;
void calibration_loop() {
  std::uint32_t n = calibration_iterations;
#if defined(__thumb2__)
#define FNN_ASM_UNIFIED(code) code
#else  // GCC assembles Thumb-1 inline asm in divided syntax
#define FNN_ASM_UNIFIED(code) ".syntax unified\n" code "\n.syntax divided"
#endif
  asm volatile(FNN_ASM_UNIFIED("1: subs %0, %0, #1\n   bne 1b") : "+l"(n) : : "cc");
}
}  // namespace

int main() {
  reg(0xE000E014u) = 0x00FFFFFFu;  // SysTick LOAD
  reg(0xE000E018u) = 0;            // VAL
  reg(0xE000E010u) = 0x5u;         // CTRL: enable, processor clock, no interrupt
  std::uint32_t t0 = systick();
  calibration_loop();
  const std::uint32_t calibration_ticks = ticks_since(t0);
  t0 = systick();
  const auto r = device_check::run();
  const std::uint32_t ticks = ticks_since(t0);
  std::uint32_t* p = __bss_end;
  while (p < __stack_top && *p == paint) ++p;
  const bool ok = device_check::passed(r);
  write(device_check::name);
  write(device_check::self_test ? " self test " : " ");
  write(ok ? "pass: " : "FAIL: ");
  write(std::uint32_t(r.images)), write(" images, argmax mismatches "), write(std::uint32_t(r.argmax_mismatches));
  write(", out of tolerance "), write(std::uint32_t(r.out_of_tolerance)), write(", exact logits "), write(r.exact);
  write(", worst "), write(r.worst_ulps), write(device_check::worst_unit), write(", right "), write(std::uint32_t(r.right));
  if (calibration_ticks > 0) {
    const std::uint64_t instructions = std::uint64_t(ticks) * (2u * calibration_iterations) / calibration_ticks;
    write(", instructions per inference ");
    write(std::uint32_t(instructions / std::uint32_t(r.images)));
  } else {
    write(", no SysTick");
  }
  write(", peak stack ");
  write(std::uint32_t(reinterpret_cast<std::uintptr_t>(__stack_top) - reinterpret_cast<std::uintptr_t>(p)));
  write(" bytes\n");
  return ok ? 0 : 1;
}
