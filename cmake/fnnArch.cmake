# The architecture flag fnn::fnn gives its users, shared by the build (CMakeLists.txt) and the installed
# package (fnnConfig.cmake). fnn's kernels pick their SIMD width when they are compiled, from what the
# compiler targets: a build without an -march compiles them for baseline x86-64 (SSE2) and the README's
# network trains 3-4x slower (11.2 ms per step against 2.7-3.8 ms with -march=native). So fnn::fnn adds
# -march=native unless the user chose otherwise:
#
#   FNN_ARCH=native   (default) -march=native, skipped when cross-compiling or when CMAKE_CXX_FLAGS already
#                     carry an -march=/-mcpu= of their own
#   FNN_ARCH=none     no flag: the compiler's default target
#   FNN_ARCH=<value>  -march=<value> (x86-64-v3, skylake-avx512, armv8.2-a, ...), also when cross-compiling
#
# fnn::portable is fnn without any flag, for binaries that must run on other CPUs (it also silences the
# baseline-ISA note of fnn/simd/simd.hpp).
set(FNN_ARCH "native" CACHE STRING
    "fnn::fnn's -march: native (this CPU; default), none (the compiler's default target) or an -march value")

# Sets <out> to the compile options fnn::fnn adds (empty for none) and says why when it adds none.
function(fnn_arch_options out)
  set(${out} "" PARENT_SCOPE)
  if(FNN_ARCH STREQUAL "" OR FNN_ARCH STREQUAL "none")
    return()
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(STATUS "fnn: FNN_ARCH=${FNN_ARCH} ignored: ${CMAKE_CXX_COMPILER_ID} takes no -march")
    return()
  endif()
  string(TOUPPER "${CMAKE_BUILD_TYPE}" config)
  set(flags "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${config}}")
  if(flags MATCHES "(^| )-(march|mcpu)=")
    message(STATUS "fnn: fnn::fnn adds no -march: CMAKE_CXX_FLAGS carry their own -march/-mcpu")
    return()
  endif()
  if(FNN_ARCH STREQUAL "native" AND CMAKE_CROSSCOMPILING)
    message(STATUS "fnn: fnn::fnn adds no -march when cross-compiling; set FNN_ARCH to the target's -march value")
    return()
  endif()
  include(CheckCXXCompilerFlag)
  string(MAKE_C_IDENTIFIER "FNN_CXX_HAS_MARCH_${FNN_ARCH}" has_flag)
  check_cxx_compiler_flag("-march=${FNN_ARCH}" ${has_flag})
  if(NOT ${has_flag})
    message(WARNING "fnn: the compiler rejects -march=${FNN_ARCH} (FNN_ARCH): fnn's kernels get the compiler's "
                    "default target")
    return()
  endif()
  message(STATUS "fnn: fnn::fnn compiles with -march=${FNN_ARCH} (FNN_ARCH=none or fnn::portable for portable "
                 "binaries)")
  set(${out} "-march=${FNN_ARCH}" PARENT_SCOPE)
endfunction()
