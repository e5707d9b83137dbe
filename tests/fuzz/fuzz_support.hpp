#pragma once
// Shared by the libFuzzer harnesses: a failed property is reported as a crash (abort), so that libFuzzer
// saves the input and the CTest run fails.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

namespace fnn_fuzz {

[[noreturn]] inline void property_failed(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fnn fuzz: property failed: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

inline void check(bool ok, const char* what, std::string_view detail = {}) {
  if (!ok) property_failed(what, detail);
}

// Every reader error must be an fnn error that starts with the input's name: "fnn: <name>: ...".
inline void check_names_input(const std::exception& e, std::string_view name) {
  const std::string_view what = e.what();
  const std::string_view prefix = "fnn: ";
  check(what.substr(0, prefix.size()) == prefix && what.substr(prefix.size(), name.size()) == name &&
            what.substr(prefix.size() + name.size(), 2) == ": ",
        "the error message does not start with the input's name", what);
}

}  // namespace fnn_fuzz
