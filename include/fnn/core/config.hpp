#pragma once
// Basic types shared by every layer of fnn.
#include <cstddef>

namespace fnn {

using index_t = std::ptrdiff_t;

// Alignment of every buffer fnn allocates: one AVX-512 register / one cache line.
inline constexpr std::size_t buffer_alignment = 64;

// Train mode uses batch statistics and dropout; eval mode uses running statistics and no dropout.
enum class mode { train, eval };

}  // namespace fnn
