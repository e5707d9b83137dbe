# `cmake --install` of a freshly configured fnn tree whose tools were never built (the README's
# `cmake --preset release && cmake --install build/release`): must install the package and skip the tools.
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: step failed (${rc}): ${ARGN}")
  endif()
endfunction()
file(REMOVE_RECURSE ${WORK})
step(${CMAKE_COMMAND} -S ${FNN_SOURCE} -B ${WORK}/build -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX}
     -DFNN_BUILD_TESTS=OFF -DFNN_BUILD_EXAMPLES=ON)
step(${CMAKE_COMMAND} --install ${WORK}/build --prefix ${WORK}/prefix)
foreach(file IN ITEMS include/fnn/fnn.hpp lib/cmake/fnn/fnnConfig.cmake lib/cmake/fnn/fnnArch.cmake
                      lib/cmake/fnn/fnnTargets.cmake)
  if(NOT EXISTS ${WORK}/prefix/${file})
    message(FATAL_ERROR "install test: ${file} was not installed")
  endif()
endforeach()
if(EXISTS ${WORK}/prefix/bin/fnn-train)
  message(FATAL_ERROR "install test: installed an fnn-train that was never built")
endif()
