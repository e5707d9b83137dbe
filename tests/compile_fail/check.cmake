# Compiles one program that must not compile and checks the compiler's output (cmake -P):
#   -DCOMMAND=<compiler;flags;file>  the compile command (a list)
#   -DEXPECT=<regex>                 the diagnostic the output must contain
# Fails unless the compile fails, the output matches EXPECT and there is exactly one "error:" line: one
# error per mistake, no follow-on errors. The output is echoed so that ctest shows it.
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
string(REGEX MATCHALL "error:" errors "${out}")
list(LENGTH errors error_count)
if(rc EQUAL 0)
  message(FATAL_ERROR "compile_fail: the program compiled, it must not")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "compile_fail: the output does not contain the expected diagnostic (EXPECT)")
endif()
if(NOT error_count EQUAL 1)
  message(FATAL_ERROR "compile_fail: ${error_count} \"error:\" lines, expected exactly 1 (a follow-on error)")
endif()
