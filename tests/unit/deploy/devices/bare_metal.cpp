// A bare-metal Cortex-M image for qemu-system-arm: vector table, .data copy and .bss zeroing, the FPU enabled
// through CPACR (on M4F; without it the first VFP instruction faults), fault handlers that exit non-zero, output
// through semihosting SYS_WRITE0 (qemu's stderr) and the result through SYS_EXIT_EXTENDED (qemu's exit status).
// No C library start-up, no printf (newlib's %f costs ~22 KB and pulls in malloc): integers printed by hand.
// SysTick with -icount shift=0 counts instructions exactly on mps2 (40 per tick of its 25 MHz clock); the
// microbit image leaves the count out (FNN_DEVICE_SYSTICK unset: its tick rate under qemu was not measured).
// The stack is painted at reset and scanned after the run to measure its peak.
#include <cstdint>

#include "device_check.hpp"

extern "C" {
extern std::uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_top[];
extern void (*__init_array_start[])(), (*__init_array_end[])();
int main();
[[noreturn]] void reset_handler();
void fault_handler();
}

namespace {

constexpr std::uint32_t paint = 0xC0DEC0DEu;

int semihost(int op, const void* arg) {
  register int r0 asm("r0") = op;
  register const void* r1 asm("r1") = arg;
  asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
[[noreturn]] void exit_with(int code) {
  const std::uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, std::uint32_t(code)};
  semihost(0x20 /* SYS_EXIT_EXTENDED */, block);
  for (;;) {
  }
}
void write(const char* s) { semihost(0x04 /* SYS_WRITE0 */, s); }
void write(std::uint32_t v) {
  char b[12];
  int i = 11;
  b[i] = 0;
  do {
    b[--i] = char('0' + v % 10);
  } while ((v /= 10) != 0);
  write(b + i);
}

[[maybe_unused]] volatile std::uint32_t& reg(std::uint32_t address) {
  return *reinterpret_cast<volatile std::uint32_t*>(address);
}

}  // namespace

extern "C" void fault_handler() {
  write("deploy FAIL: fault\n");
  exit_with(3);
}

extern "C" [[noreturn]] void reset_handler() {
  for (std::uint32_t *s = __data_load, *d = __data_start; d < __data_end;) *d++ = *s++;
  for (std::uint32_t* d = __bss_start; d < __bss_end;) *d++ = 0;
#if defined(__ARM_FP)
  reg(0xE000ED88u) |= 0xFu << 20;  // CPACR: full access to CP10 and CP11 (the FPU)
  asm volatile("dsb\n isb" ::: "memory");
#endif
  // Paint the free stack (up to 256 bytes below the current frame) to measure the peak later.
  std::uint32_t* sp;
  asm volatile("mov %0, sp" : "=r"(sp));
  for (std::uint32_t* p = __bss_end; p < sp - 64; ++p) *p = paint;
  for (auto f = __init_array_start; f < __init_array_end; ++f) (*f)();
  exit_with(main());
}

int main() {
#if defined(FNN_DEVICE_SYSTICK)
  reg(0xE000E014u) = 0x00FFFFFFu;  // SysTick LOAD
  reg(0xE000E018u) = 0;            // VAL
  reg(0xE000E010u) = 0x5u;         // CTRL: enable, processor clock, no interrupt
  const std::uint32_t t0 = reg(0xE000E018u);
#endif
  const auto r = device_check::run();
#if defined(FNN_DEVICE_SYSTICK)
  const std::uint32_t t1 = reg(0xE000E018u);
  const std::uint32_t ticks = (t0 - t1) & 0x00FFFFFFu;
#endif
  std::uint32_t* p = __bss_end;
  while (p < __stack_top && *p == paint) ++p;
  const bool ok = device_check::passed(r);
  write(device_check::self_test ? "deploy self test " : "deploy ");
  write(ok ? "pass: " : "FAIL: ");
  write(std::uint32_t(r.images)), write(" images, argmax mismatches "), write(std::uint32_t(r.argmax_mismatches));
  write(", out of tolerance "), write(std::uint32_t(r.out_of_tolerance)), write(", exact logits "), write(r.exact);
  write(", worst "), write(r.worst_ulps), write(" ulp, right "), write(std::uint32_t(r.right));
#if defined(FNN_DEVICE_SYSTICK)
  write(", instructions per inference "), write(ticks * 40u / std::uint32_t(r.images));
#endif
  write(", peak stack ");
  write(std::uint32_t(reinterpret_cast<std::uintptr_t>(__stack_top) - reinterpret_cast<std::uintptr_t>(p)));
  write(" bytes\n");
  return ok ? 0 : 1;
}

// The vector table: initial stack pointer, reset, then NMI, HardFault, MemManage, BusFault, UsageFault.
__attribute__((section(".vectors"), used)) void (*const vector_table[16])() = {
    reinterpret_cast<void (*)()>(__stack_top),
    reset_handler,
    fault_handler,
    fault_handler,
    fault_handler,
    fault_handler,
    fault_handler};
