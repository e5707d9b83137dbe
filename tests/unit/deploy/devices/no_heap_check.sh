#!/bin/sh
# no_heap_check.sh <nm> <elf or object>: fails (and lists them) if the file defines or references an allocator,
# operator new, the C++ ABI runtime (__cxa_*) or the unwinder (_Unwind_*).
nm="$1"
file="$2"
symbols=$("$nm" "$file") || { echo "no_heap_check: $nm $file failed"; exit 2; }
found=$(printf '%s\n' "$symbols" | grep -E ' (_?_?(wrap_)?malloc|_malloc_r|calloc|realloc|_Znw[jm].*|_Zna[jm].*|__cxa_[a-z_]+|_Unwind_[A-Za-z_]+)$')
if [ -n "$found" ]; then
  echo "no_heap_check FAIL: $file has allocation / C++ runtime symbols:"
  printf '%s\n' "$found"
  exit 1
fi
echo "no_heap_check pass: $file has no malloc, operator new, __cxa_* or _Unwind_* symbol"
