# Runs one libFuzzer harness for a bounded time and fails on any finding. Used by the fuzz_* tests and by
# scripts/fuzz.sh:
#   cmake -DFUZZER=<exe> -DSEEDS=<dir> -DWORK=<dir> -DSECONDS=<n> [-DINPUT_TIMEOUT=<n>] [-DDICT=<file>] -P run_fuzzer.cmake
# WORK/corpus collects the inputs libFuzzer finds interesting (kept between runs); findings land in WORK.
foreach(var IN ITEMS FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED INPUT_TIMEOUT)
  set(INPUT_TIMEOUT 10)
endif()
if(NOT EXISTS ${FUZZER})
  message(FATAL_ERROR "${FUZZER} does not exist: build the fnn_fuzzers target first")
endif()
if(NOT IS_DIRECTORY ${SEEDS})
  message(FATAL_ERROR "no seed corpus at ${SEEDS}: build the fnn_fuzzers target first")
endif()
file(MAKE_DIRECTORY ${WORK}/corpus)
set(dict_option "")
if(DEFINED DICT AND EXISTS ${DICT})
  set(dict_option -dict=${DICT})
endif()

# The exit codes are set to 1 explicitly: libFuzzer's default for a crash is 77, which CTest would read as a
# skip in a test that had SKIP_RETURN_CODE 77. -malloc_limit_mb catches a reader that allocates what a forged
# header claims instead of what the data holds (no valid input of a few kB needs 256 MB).
set(ENV{ASAN_OPTIONS} "detect_leaks=1:allocator_may_return_null=0:$ENV{ASAN_OPTIONS}")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1:$ENV{UBSAN_OPTIONS}")
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=${INPUT_TIMEOUT} -rss_limit_mb=2048 -malloc_limit_mb=256
          -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 -artifact_prefix=${WORK}/ ${dict_option}
          ${WORK}/corpus ${SEEDS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} found a defect (exit status ${rc}); the input is saved in ${WORK} "
                      "(crash-*, leak-*, timeout-*, oom-*): reproduce with ${FUZZER} <that file>")
endif()
