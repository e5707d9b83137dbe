#pragma once
// Thread count used by fnn's kernels: set_num_threads / num_threads, defined with the pass splitting they
// drive in expr/parallel.hpp (kernels may include expr; the element-wise passes live there).
#include "fnn/expr/parallel.hpp"
