#define BOOST_TEST_MODULE fnn_io
#include <boost/test/unit_test.hpp>
