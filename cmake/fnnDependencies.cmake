# Dependencies of fnn::fnn, shared by the build (CMakeLists.txt) and the installed package (fnnConfig.cmake).
include(CMakeFindDependencyMacro)
find_dependency(Boost 1.74)
# Debian's xsimd 8.1 target names "xtl" as a link library although xsimd only needs xtl for its
# optional xtl::xcomplex support. Use xtl's package when present, else an empty stand-in, so that
# linking does not try -lxtl.
find_package(xtl QUIET CONFIG)
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED)
endif()
find_dependency(xsimd 8.1)
find_dependency(ZLIB)
