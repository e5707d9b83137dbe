#define BOOST_TEST_MODULE fnn_kernels
#include <boost/test/unit_test.hpp>
