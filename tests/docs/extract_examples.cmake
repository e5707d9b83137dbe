# Extracts every ```cpp block of the Markdown pages in DOCS_DIR into ONE C++ file OUT, so that all examples of
# the API reference cost one compile:
#   - each block becomes `static void doc_<page>_<n>()`, called from main() in page order;
#   - a block whose first line is `// at namespace scope` is emitted at namespace scope instead (types, helpers);
#   - `#include` lines are hoisted to the top of the file (an include inside a function body is not C++);
#   - a #line directive before every block makes the compiler name the page and line of a broken example.
# Usage: cmake -DDOCS_DIR=<dir> -DOUT=<file.cpp> -P extract_examples.cmake
if(NOT DOCS_DIR OR NOT OUT)
  message(FATAL_ERROR "extract_examples.cmake needs -DDOCS_DIR=<dir> and -DOUT=<file>")
endif()

file(GLOB pages LIST_DIRECTORIES false "${DOCS_DIR}/*.md")
list(SORT pages)

set(includes "")
set(bodies "")
set(calls "")
set(block_count 0)

foreach(page IN LISTS pages)
  get_filename_component(page_name "${page}" NAME_WE)
  string(MAKE_C_IDENTIFIER "${page_name}" page_id)
  file(READ "${page}" text)
  # CMake lists split on ';' and treat '[' ']' specially: protect them, then split the text into lines.
  string(REPLACE ";" "@FNN_SEMICOLON@" text "${text}")
  string(REPLACE "[" "@FNN_LBRACKET@" text "${text}")
  string(REPLACE "]" "@FNN_RBRACKET@" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")

  set(in_block FALSE)
  set(line_no 0)
  set(n 0)
  foreach(line IN LISTS lines)
    math(EXPR line_no "${line_no} + 1")
    string(REPLACE "@FNN_SEMICOLON@" ";" line "${line}")
    string(REPLACE "@FNN_LBRACKET@" "[" line "${line}")
    string(REPLACE "@FNN_RBRACKET@" "]" line "${line}")
    if(NOT in_block)
      if(line MATCHES "^```cpp[ \t]*$")
        set(in_block TRUE)
        set(first TRUE)
        set(namespace_scope FALSE)
        set(block "")
        math(EXPR n "${n} + 1")
        math(EXPR start "${line_no} + 1")
      elseif(line MATCHES "^```c\\+\\+" OR line MATCHES "^```C")
        message(FATAL_ERROR "${page}:${line_no}: tag C++ blocks as ```cpp so the docs test compiles them")
      endif()
      continue()
    endif()
    if(line MATCHES "^```[ \t]*$")
      set(in_block FALSE)
      if(namespace_scope)
        string(APPEND bodies "#line ${start} \"${page}\"\n${block}\n")
      else()
        string(APPEND bodies "static void doc_${page_id}_${n}() {\n#line ${start} \"${page}\"\n${block}}\n\n")
        string(APPEND calls "  doc_${page_id}_${n}();\n")
      endif()
      math(EXPR block_count "${block_count} + 1")
      continue()
    endif()
    if(first AND line MATCHES "^// at namespace scope")
      set(namespace_scope TRUE)
    endif()
    set(first FALSE)
    if(line MATCHES "^[ \t]*#[ \t]*include")
      string(STRIP "${line}" inc)
      string(FIND "${includes}" "${inc}\n" seen)
      if(seen EQUAL -1)
        string(APPEND includes "${inc}\n")
      endif()
      set(line "")  # keeps the #line numbering of the block exact
    endif()
    string(APPEND block "${line}\n")
  endforeach()
  if(in_block)
    message(FATAL_ERROR "${page}: a ```cpp block is not closed")
  endif()
endforeach()

if(block_count EQUAL 0)
  message(FATAL_ERROR "no ```cpp blocks found in ${DOCS_DIR}/*.md")
endif()

set(prelude [=[
// Generated from docs/api/*.md by tests/docs/extract_examples.cmake: do not edit, edit the pages.
#include <cstdio>
#include <cstdlib>
@INCLUDES@
// The examples' one helper: a documented claim that does not hold aborts the test with its message.
[[maybe_unused]] static void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "docs example failed: %s\n", what);
    std::abort();
  }
}

]=])
string(REPLACE "@INCLUDES@" "${includes}" prelude "${prelude}")
set(main_text "int main() {\n${calls}  std::printf(\"%d documented examples ran\\n\", ${block_count});\n}\n")
set(content "${prelude}${bodies}${main_text}")

# Rewrite only on change, so an edit of the prose alone does not rebuild the test.
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL content)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${content}")
