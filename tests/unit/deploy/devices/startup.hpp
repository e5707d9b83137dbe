#pragma once
// Start-up of the bare-metal Cortex-M images for qemu-system-arm (one translation unit per image includes it):
// vector table, .data copy and .bss zeroing, the FPU enabled through CPACR (on M4F; without it the first VFP
// instruction faults), a fault handler that exits non-zero, output through semihosting SYS_WRITE0 (qemu's
// stderr) and the exit status through SYS_EXIT_EXTENDED (qemu's exit status). The free stack is painted at reset
// so that its peak can be measured. The copy loops are kept as loops (no memcpy / memset pulled in).
#include <cstdint>

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
[[maybe_unused]] volatile std::uint32_t& reg(std::uint32_t address) {
  return *reinterpret_cast<volatile std::uint32_t*>(address);
}

}  // namespace

extern "C" void fault_handler() {
  write("deploy FAIL: fault\n");
  exit_with(3);
}

extern "C" [[noreturn]] __attribute__((optimize("no-tree-loop-distribute-patterns"))) void reset_handler() {
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

// The vector table: initial stack pointer, reset, then NMI, HardFault, MemManage, BusFault, UsageFault.
__attribute__((section(".vectors"), used)) void (*const vector_table[16])() = {
    reinterpret_cast<void (*)()>(__stack_top),
    reset_handler,
    fault_handler,
    fault_handler,
    fault_handler,
    fault_handler,
    fault_handler};
