#define BOOST_TEST_MODULE fnn_data
#include <boost/test/unit_test.hpp>
